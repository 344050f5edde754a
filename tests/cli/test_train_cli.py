"""``vlmkit train clip`` flags reach the recipe and the saved run config."""

from __future__ import annotations

import json

import pytest
import torch

from vlmkit.checkpoints import from_pretrained
from vlmkit.cli import main
from vlmkit.training.metrics import read_metrics


def test_shape_learning_flags_train_and_are_saved(shapes_dataset, tmp_path):
    out = tmp_path / "run"
    args = ["train", "clip", "--data", str(shapes_dataset / "train"), "--out", str(out), "--image-size", "32"]
    args += ["--steps", "2", "--batch-size", "8", "--warmup-steps", "0", "--hard-negatives", "--conv-stem", "1"]
    args += ["--conv-stem-norm", "batch", "--caption-word-loss", "0.5"]
    assert main(args) == 0
    saved = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert saved["hard_negatives"] is True and saved["conv_stem"] == 1 and saved["conv_stem_norm"] == "batch"
    assert saved["caption_word_loss"] == 0.5
    assert all("caption_word_loss" in line for line in read_metrics(out / "metrics.jsonl") if "loss" in line)
    model = from_pretrained(out / "model")  # the training-only word head is not exported
    assert model.config.vision.conv_stem_norm == "batch" and not hasattr(model, "caption_word_head")


def test_device_cuda_without_a_gpu_is_a_clear_error(shapes_dataset, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("checks the message on machines without CUDA")
    args = ["train", "clip", "--data", str(shapes_dataset / "train"), "--out", str(tmp_path / "run")]
    assert main([*args, "--device", "cuda"]) == 2
    assert "--device cuda: torch sees no CUDA device" in capsys.readouterr().err
