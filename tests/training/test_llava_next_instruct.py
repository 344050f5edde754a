"""``vlmkit train instruct --from DIR`` fine-tunes a transformers-saved tiny LLaVA-NeXT (anyres tiling) on ShapesWorld.

A tiled image's crop count and prompt tokens follow its size, so its images are processed batch by batch
(``ProcessedChatBatches``): each conversation gets its own image's token count, and a batch holds the crops
zero-padded to the most tiles with ``image_sizes``, as transformers' processor gives a batch, which the objective
passes on by their Hugging Face names. The loss falls and the result loads and answers.
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import vlmkit
from llava_next_kit import IMAGE, hf_llava_next, save_tiny_processor
from testkit import noise_image
from vlmkit.cli import main
from vlmkit.data.records import RecordDataset
from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.tasks.chat import ask
from vlmkit.training.recipes.chat import ProcessedChatBatches

QUESTION = "what is this ?"


def _llava_next(directory):
    torch.manual_seed(0)
    hf_llava_next().save_pretrained(directory)
    save_tiny_processor(directory)
    return directory


@pytest.mark.parametrize("flags", [["--train-vision"], ["--lora-rank", "4"]], ids=["full", "lora"])
def test_instruct_fine_tunes_a_llava_next(shapes_dataset, tmp_path, capsys, flags):
    source = _llava_next(tmp_path / "llava_next")
    out = tmp_path / "run"
    argv = ["train", "instruct", "--from", str(source), "--data", str(shapes_dataset / "train"), "--out", str(out)]
    argv += ["--steps", "16", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "0", "--log-every", "2", *flags]
    assert main(argv) == 0, capsys.readouterr().err
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if "loss" in line]
    assert len(losses) == 8 and losses[-1] < 0.7 * losses[0], losses
    model = vlmkit.load(out / "model")
    assert isinstance(model, VisionLanguageModel) and model.config.image_grid_pinpoints
    assert not any("lora" in key for key in model.state_dict())
    image = shapes_dataset / "train" / RecordDataset(shapes_dataset / "train").records[0].image
    assert isinstance(ask(model, str(image), QUESTION, GenerationConfig(max_new_tokens=3)), str)


def test_a_tiled_batch_is_what_transformers_processor_gives(shapes_dataset, tmp_path):
    """Two images of other sizes: each row's prompt is the processor's for its own image (its own count of image
    tokens), and the crops and sizes are the processor's for the pair (the fewer tiles zero-padded)."""
    source = _llava_next(tmp_path / "llava_next")
    processor = save_tiny_processor(tmp_path / "again")
    model = vlmkit.load(source)
    paths = [tmp_path / "wide.png", tmp_path / "square.png"]
    noise_image(90, 40).save(paths[0])
    noise_image(32, 32).save(paths[1])
    records = RecordDataset(shapes_dataset / "train").records[:2]
    chat = [{"role": "user", "content": f"<image>\n{QUESTION}"}, {"role": "assistant", "content": "a red star"}]
    batches = ProcessedChatBatches(records, [str(p) for p in paths], model, lambda r, rng: chat, seed=0, max_length=512)
    batch = batches.batch(0, 0, 2, 0, 1)
    images = [Image.open(paths[item]) for item in batches.draws.items(0, 0, 2, 0, 1)]
    text = [f"USER: <image>\n{QUESTION} ASSISTANT:"] * 2
    expected = processor(text=text, images=images, return_tensors="pt", padding=True, padding_side="right")
    for row, prompt, mask in zip(batch.input_ids, expected["input_ids"], expected["attention_mask"], strict=True):
        assert row[: int(mask.sum())].tolist() == prompt[mask.bool()].tolist()
    counts = [row.count(IMAGE) for row in batch.input_ids.tolist()]
    assert counts[0] != counts[1]  # each image its own count
    assert batch.pixels.shape == expected["pixel_values"].shape and batch.pixels.shape[1] > 1
    torch.testing.assert_close(batch.pixels, expected["pixel_values"], atol=1e-5, rtol=0)
    assert torch.equal(batch.image_sizes, expected["image_sizes"])
    assert sorted(batch.image_arguments) == ["image_sizes"]
