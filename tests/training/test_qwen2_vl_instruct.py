"""``vlmkit train instruct --from DIR`` fine-tunes a transformers-saved tiny Qwen2-VL on ShapesWorld.

Each image keeps its own resolution (its patches and ``image_grid_thw`` go into the batch) and each conversation
is encoded with the checkpoint's chat template and that image's pad-token count. The loss falls, the result
loads as a Qwen2-VL again and answers; LoRA merges back into plain weights; vlmkit-only tasks are refused.
"""

from __future__ import annotations

import json

import pytest
import torch

import vlmkit
from qwen2_vl_kit import hf_qwen2_vl, save_tiny_processor
from vlmkit.cli import main
from vlmkit.data.records import RecordDataset
from vlmkit.models import Qwen2VLModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.tasks.chat import ask


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
