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


def test_defaults_fit_a_short_run_and_every_run_writes_its_record(shapes_dataset, tmp_path, capsys):
    """No --warmup-steps: a 3-step run warms up for a tenth of it, not the old fixed 100; --resume with nothing
    to resume from says so; the run leaves run.json (naming its recipe), metrics.jsonl and metrics.png."""
    out = tmp_path / "run"
    args = ["train", "lm", "--data", str(shapes_dataset / "train"), "--out", str(out), "--vocab-size", "300"]
    assert main([*args, "--steps", "3", "--batch-size", "8", "--resume"]) == 0
    assert "holds no checkpoint yet; starting" in capsys.readouterr().out
    saved = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert saved["recipe"] == "lm" and saved["train"]["warmup_steps"] is None
    assert (out / "metrics.png").stat().st_size > 1000 and (out / "model" / "config.json").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--steps", "0"], "--steps: must be positive, got 0"),
        (["--steps", "3", "--warmup-steps", "5"], "--warmup-steps: expected 0..steps (3), got 5"),
        (["--data-mode", "stream", "--shuffle-buffer", "0"], "--shuffle-buffer: must be positive"),
    ],
)
def test_bad_settings_name_their_flag_before_any_work(shapes_dataset, tmp_path, capsys, flags, message):
    args = ["train", "clip", "--data", str(shapes_dataset / "train"), "--out", str(tmp_path / "run"), *flags]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_data_and_missing_stage_inputs_are_one_line(tmp_path, capsys):
    assert main(["train", "clip", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run")]) == 2
    assert "no such dataset folder (records.jsonl + images) or WebDataset shard" in capsys.readouterr().err
    assert main(["train", "instruct", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "--from: the instruct recipe needs the VLM from align" in capsys.readouterr().err
