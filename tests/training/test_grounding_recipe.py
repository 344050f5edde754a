"""Grounding conversations (data.grounding) and instruct --grounding-share end to end on tiny data."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from grounding_kit import GridCodec
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.data.grounding import grounding_turns, reading_order, record_size
from vlmkit.data.records import ObjectAnnotation, Record, RecordDataset
from vlmkit.errors import ConfigError
from vlmkit.processing.locations import LOCATION_TOKENS, has_location_tokens, parse_objects
from vlmkit.training.recipes import InstructRecipe
from vlmkit.training.recipes.grounding import MaskCodes, grounding_messages
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig


@pytest.fixture(scope="module")
def records(shapes_dataset):
    return RecordDataset(shapes_dataset / "train").records


def test_every_kind_of_turn_writes_the_records_boxes(records):
    record = next(r for r in records if len(r.objects) == 2)
    assert record_size(record) == (32, 32)
    rng = random.Random(0)
    for kind in ("all", "detect", "refer"):
        for prompt, answer in grounding_turns(record, rng, 3, kinds=[kind]):
            parsed = parse_objects(answer, 32, 32)
            assert parsed.unparsed == ()
            boxes = [[round(v) for v in o.box] for o in parsed.objects]
            if kind == "all":
                assert prompt == "detect every object"
                assert boxes == [o.box for o in reading_order(record.objects)]
                assert [o.label for o in parsed.objects] == [o.label for o in reading_order(record.objects)]
            elif kind == "detect":
                asked = prompt.removeprefix("detect ").split(" ; ")
                assert boxes == [o.box for o in reading_order(record.objects) if o.label in asked]
            else:
                (found,) = parsed.objects
                expression = prompt.removeprefix("detect ")
                (target,) = [o for o in record.objects if expression in o.extra["refexp"]]
                assert found.label == expression and boxes == [target.box]


def test_segment_turns_carry_the_mask_codes(records):
    record = records[0]
    codes = MaskCodes(GridCodec())
    turns = grounding_turns(record, random.Random(1), 4, codes(record), kinds=["segment"])
    assert turns and all(p.startswith("segment the ") for p, _ in turns)
    for _, answer in turns:
        (found,) = parse_objects(answer, 32, 32).objects
        assert found.codes is not None and len(found.codes) == 16
    assert codes(record) is codes(record)  # encoded once
    assert grounding_turns(record, random.Random(1), 4, None, kinds=["segment"]) == []  # no codes, no turn
    assert MaskCodes(None)(record) is None


def test_records_without_a_size_or_objects_give_no_turns():
    assert grounding_turns(Record("a.png", captions=["x"]), random.Random(0), 3) == []
    assert grounding_messages(Record("a.png", captions=["x"]), random.Random(0), 3, MaskCodes(None)) == []


def test_recipe_settings_are_checked():
    with pytest.raises(ConfigError, match="grounding_share"):
        InstructRecipe(data="x", init_from="m", grounding_share=1.5).validate("instruct")
    with pytest.raises(ConfigError, match="mask_tokenizer"):
        InstructRecipe(data="x", init_from="m", mask_tokenizer="vae").validate("instruct")


def test_instruct_with_grounding_trains_exports_and_evaluates(shapes_dataset, tmp_path):
    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    recipe = InstructRecipe(
        data=str(shapes_dataset / "train"),
        eval_data=str(shapes_dataset / "val"),
        eval_images=2,
        init_from=str(tmp_path / "vlm"),
        grounding_share=1.0,
        max_length=128,
        train=TrainConfig(steps=2, batch_size=8, warmup_steps=0, log_every=1, eval_every=2),
    )
    messages = recipe.messages(RecordDataset(shapes_dataset / "train").records[0], random.Random(3))
    assert messages[0]["content"].startswith("<image>\n")
    result = run(recipe, tmp_path / "run", device="cpu")
    model = from_pretrained(result.model_dir)
    assert has_location_tokens(model.tokenizer)
    assert model.config.decoder.vocab_size == model.tokenizer.vocab_size
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluated = [row for row in logged if "referring_accuracy" in row or "eval/referring_accuracy" in row]
    assert evaluated, logged[-1]


@pytest.mark.parametrize("init", ["mean", "ordered"])
def test_location_init_reaches_the_new_rows(shapes_dataset, tmp_path, init):
    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    old = from_pretrained(tmp_path / "vlm").decoder.config.vocab_size
    recipe = InstructRecipe(
        data=str(shapes_dataset / "train"), init_from=str(tmp_path / "vlm"), grounding_share=1.0, location_init=init
    )
    model = recipe.prepare().model
    vocab = model.tokenizer.tokenizer
    bins = torch.tensor([vocab.token_to_id(name) for name in LOCATION_TOKENS])
    weight = model.decoder.embed.weight.detach()
    rows = torch.nn.functional.normalize(weight[bins] - weight[:old].mean(0), dim=1)
    neighbours = float((rows[:-1] * rows[1:]).sum(1).mean())
    assert (neighbours > 0.99) == (init == "ordered")


def test_an_unknown_location_init_is_refused(shapes_dataset, tmp_path):
    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    recipe = InstructRecipe(
        data=str(shapes_dataset / "train"), init_from=str(tmp_path / "vlm"), grounding_share=1.0, location_init="x"
    )
    with pytest.raises(ConfigError, match="location_init: expected one of mean, ordered"):
        recipe.prepare()


def test_location_code_reaches_the_model_and_needs_grounding(shapes_dataset, tmp_path):
    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    recipe = InstructRecipe(
        data=str(shapes_dataset / "train"), init_from=str(tmp_path / "vlm"), grounding_share=1.0, location_code=True
    )
    model = recipe.prepare().model
    assert model.config.location_code_token == model.tokenizer.tokenizer.token_to_id(LOCATION_TOKENS[0])
    assert model.config.location_code_column_scale == 1.0
    scaled = dataclasses.replace(recipe, location_code_column_scale=0.5).prepare().model
    assert scaled.config.location_code_column_scale == 0.5
    save_pretrained(scaled, tmp_path / "scaled")
    with pytest.raises(ConfigError, match=r"the model's code has 0\.5"):  # continuing keeps the model's own code
        dataclasses.replace(recipe, init_from=str(tmp_path / "scaled")).prepare()
    with pytest.raises(ConfigError, match="location_code"):
        InstructRecipe(data="x", init_from="m", location_code=True).validate("instruct")


def test_answers_list_objects_top_to_bottom_then_left_to_right():
    def item(x0: float, y0: float) -> ObjectAnnotation:
        return ObjectAnnotation("star", [x0, y0, x0 + 5, y0 + 5])

    low_left, top_right, top_left = item(0, 20), item(30, 2), item(10, 2)
    assert reading_order([low_left, top_right, top_left]) == [top_left, top_right, low_left]
