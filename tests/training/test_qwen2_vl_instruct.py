"""``vlmkit train instruct --from DIR`` fine-tunes a transformers-saved tiny Qwen2-VL on ShapesWorld.

Each image keeps its own resolution (its patches and ``image_grid_thw`` go into the batch) and each conversation
is encoded with the checkpoint's chat template and that image's pad-token count. The loss falls, the result
loads as a Qwen2-VL again and answers; LoRA merges back into plain weights; vlmkit-only tasks are refused.
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import vlmkit
from qwen2_vl_kit import hf_qwen2_vl, save_tiny_processor
from vlmkit.cli import main
from vlmkit.data.records import RecordDataset
from vlmkit.models import Qwen2VLModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.jinja_chat import content_parts
from vlmkit.tasks.chat import ask
from vlmkit.training.recipes.chat import ProcessedChatBatches


def _qwen2_vl(directory):
    torch.manual_seed(0)
    hf_qwen2_vl().save_pretrained(directory)
    save_tiny_processor(directory)
    return directory


def _losses(run) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines() if "loss" in line]


@pytest.mark.parametrize("lora", [0, 4], ids=["full", "lora"])
def test_instruct_fine_tunes_a_qwen2_vl(shapes_dataset, tmp_path, capsys, lora):
    source = _qwen2_vl(tmp_path / "qwen2_vl")
    out = tmp_path / "run"
    argv = ["train", "instruct", "--from", str(source), "--data", str(shapes_dataset / "train"), "--out", str(out)]
    argv += ["--steps", "16", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "0", "--log-every", "2"]
    argv += ["--lora-rank", str(lora)] if lora else ["--train-vision"]
    assert main(argv) == 0, capsys.readouterr().err
    losses = _losses(out)
    assert len(losses) == 8 and losses[-1] < 0.6 * losses[0], losses
    model = vlmkit.load(out / "model")
    assert isinstance(model, Qwen2VLModel)
    assert not any("lora" in key for key in model.state_dict())
    image = shapes_dataset / "train" / RecordDataset(shapes_dataset / "train").records[0].image
    assert isinstance(ask(model, str(image), "what is this ?", GenerationConfig(max_new_tokens=3)), str)


def test_vlmkit_only_tasks_are_refused(shapes_dataset, tmp_path, capsys):
    source = _qwen2_vl(tmp_path / "qwen2_vl")
    argv = ["train", "instruct", "--from", str(source), "--data", str(shapes_dataset / "train")]
    argv += ["--out", str(tmp_path / "run"), "--steps", "1", "--grounding-share", "0.5"]
    assert main(argv) == 2
    assert "grounding_share: not supported for a Qwen2VLModel" in capsys.readouterr().err


def test_a_batch_is_what_transformers_processor_gives(shapes_dataset, tmp_path):
    """Each row's ids are the processor's for its own image (pad tokens for its grid), its labels the answer and the
    end of turn, and the batch's patches and grids are the processor's, image after image."""
    source = _qwen2_vl(tmp_path / "qwen2_vl")
    processor = save_tiny_processor(tmp_path / "again")
    model = vlmkit.load(source)
    dataset = RecordDataset(shapes_dataset / "train")
    records = dataset.records[:2]
    paths = [str(dataset.image_path(record)) for record in records]
    chat = [{"role": "user", "content": "<image>\nwhat is this ?"}, {"role": "assistant", "content": "a red star"}]
    batches = ProcessedChatBatches(records, paths, model, lambda record, rng: chat, seed=0, max_length=512)
    batch = batches.batch(0, 0, 2, 0, 1)
    order = batches.draws.items(0, 0, 2, 0, 1)
    images = [Image.open(paths[item]).convert("RGB") for item in order]
    messages = [{"role": m["role"], "content": content_parts(m["content"])} for m in chat]
    text = processor.apply_chat_template(messages, tokenize=False)
    expected = processor(text=[text, text], images=images, return_tensors="pt", padding=True, padding_side="right")
    assert torch.equal(batch.input_ids, expected["input_ids"])
    assert torch.allclose(batch.pixels, expected["pixel_values"], atol=1e-5)
    assert torch.equal(batch.image_grid_thw, expected["image_grid_thw"])
    answer = processor.tokenizer("a red star<|im_end|>", add_special_tokens=False)["input_ids"]
    assert [token for token in batch.labels[0].tolist() if token != -100][: len(answer)] == answer
