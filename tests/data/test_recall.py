"""Text-only lookup tasks: MQAR examples answer with their queried keys' values; text scenes; the lm recall task."""

from __future__ import annotations

import random

import pytest

from vlmkit.data.recall import (
    KEYS,
    mqar,
    question_messages,
    recall_messages,
    scene_text,
    text_scene_messages,
)
from vlmkit.data.records import QA, Record, RecordDataset
from vlmkit.errors import ConfigError, InputError
from vlmkit.training.metrics import read_metrics
from vlmkit.training.recipes import LmRecipe
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig


@pytest.mark.parametrize("seed", range(5))
def test_mqar_answers_are_the_values_of_the_queried_keys(seed):
    example = mqar(random.Random(seed), pairs=8, queries=5)
    words = example.context.split()
    written = dict(zip(words[::2], words[1::2], strict=True))  # read the pairs back from the text itself
    assert len(written) == 8 and set(written) <= set(KEYS)  # distinct keys
    assert len(set(example.queries)) == 5 and set(example.queries) <= set(written)
    assert example.answers == tuple(written[key] for key in example.queries)


def test_mqar_is_fixed_by_the_rng_and_varies_with_it():
    assert mqar(random.Random(1), 6, 6) == mqar(random.Random(1), 6, 6)
    assert mqar(random.Random(1), 6, 6) != mqar(random.Random(2), 6, 6)


def test_recall_chat_asks_each_key_in_its_own_turn():
    example = mqar(random.Random(0), pairs=3, queries=2)
    messages = recall_messages(example)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    assert messages[0]["content"] == f"{example.context}\nwhat is {example.queries[0]}?"
    assert messages[2]["content"] == f"what is {example.queries[1]}?"
    assert (messages[1]["content"], messages[3]["content"]) == example.answers


@pytest.mark.parametrize(("pairs", "queries", "field"), [(0, 1, "pairs"), (27, 1, "pairs"), (3, 4, "queries")])
def test_impossible_examples_are_refused_in_one_line(pairs, queries, field):
    with pytest.raises(ConfigError, match=f"recall {field}: expected") as error:
        mqar(random.Random(0), pairs, queries)
    assert "\n" not in str(error.value)


def test_text_scene_writes_the_caption_before_the_first_question():
    record = Record(
        image="a.png",
        captions=["a small red star and a large blue circle", "other"],
        qa=[QA("What colour is the star?", "red", type="color"), QA("How many?", "2", type="count")],
    )
    messages = text_scene_messages(record, random.Random(0), questions=4, types=["color"])
    assert messages == question_messages(scene_text(record), [("What colour is the star?", "red")])
    assert messages[0]["content"] == "a small red star and a large blue circle\nWhat colour is the star?"
    with pytest.raises(InputError, match=r"a\.png: a text scene needs a caption"):
        scene_text(Record(image="a.png"))


def _recall_lm(data, **settings) -> LmRecipe:
    train = TrainConfig(steps=2, batch_size=8, warmup_steps=0, log_every=1, eval_every=2)
    return LmRecipe(data=str(data / "train"), vocab_size=300, task="recall", train=train, **settings)


def test_recall_task_mixes_mqar_text_scenes_and_chats(shapes_dataset):
    recipe = _recall_lm(shapes_dataset)
    record = RecordDataset(shapes_dataset / "train").records[0]
    firsts = [recipe.messages(record, random.Random(i))[0]["content"] for i in range(60)]
    scene = scene_text(record)
    mqar_like = [f for f in firsts if f.split("\n")[0].split()[0] in KEYS and f.split()[1].isdigit()]
    on_scene = [f for f in firsts if f.startswith(scene + "\n")]
    assert mqar_like and on_scene and len(mqar_like) + len(on_scene) < len(firsts)


def test_recall_lm_reports_lookup_accuracy(shapes_dataset, tmp_path):
    recipe = _recall_lm(shapes_dataset, eval_data=str(shapes_dataset / "val"), eval_images=8)
    result = run(recipe, tmp_path / "lm", device="cpu")
    scores = [line for line in read_metrics(tmp_path / "lm" / "metrics.jsonl") if "eval/mqar_accuracy" in line]
    assert scores and 0 <= scores[-1]["eval/mqar_accuracy"] <= 100
    assert {"eval/scene_color_accuracy", "eval/scene_count_accuracy"} <= set(scores[-1])
    # the tokenizer learned from MQAR text too: each key and value is one token, the same one where it is asked
    tokenizer = result.model.tokenizer.tokenizer
    assert len(tokenizer.encode(" A 4 B 7", add_special_tokens=False).ids) == 4
    chat = recall_messages(mqar(random.Random(0), pairs=3, queries=3))
    ids = tokenizer.encode(chat[0]["content"], add_special_tokens=False).ids  # "A 4 B 7 C 1\nwhat is B?"
    assert ids[-1] == tokenizer.token_to_id("?") and ids[-2] in ids[0:6:2]  # the asked key is a context key token


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"task": "copy"}, "task: expected one of chat, recall, got 'copy'"),
        ({"task": "chat", "eval_data": "val"}, "eval_data: only task recall"),  # val: the dataset's
        ({"recall_pairs": 30}, "recall_pairs: expected 1 to 26, got 30"),
    ],
)
def test_bad_lm_options_say_so_in_one_line(shapes_dataset, settings, message):
    if "eval_data" in settings:
        settings = {**settings, "eval_data": str(shapes_dataset / settings["eval_data"])}
    recipe = LmRecipe(data="d", **{"task": "recall", **settings})
    with pytest.raises(ConfigError, match=message):
        recipe.validate("LmRecipe")
