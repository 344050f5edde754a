"""The shared trainer: exact resume, torchrun equivalence, locked towers, metrics and plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from vlmkit.training.distributed import init_distributed
from vlmkit.training.metrics import plot_metrics, read_metrics
from vlmkit.training.recipes import ClipRecipe
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig, Trainer


def _recipe(data, **train) -> ClipRecipe:
    settings = dict(steps=6, batch_size=16, lr=1e-3, warmup_steps=2, log_every=1, eval_every=3, keep_last=2)
    settings.update(train)
    return ClipRecipe(
        data=str(data / "train"), image_size=32, vocab_size=300, eval_images=16, train=TrainConfig(**settings)
    )


def _losses(run_dir) -> list[tuple[int, float]]:
    return [(line["step"], line["loss"]) for line in read_metrics(run_dir / "metrics.jsonl") if "loss" in line]


def _run(recipe, run_dir, resume=False, until=None):
    torch.manual_seed(0)
    return run(recipe, run_dir, device="cpu", resume=resume, until=until)


def test_interrupted_and_resumed_run_matches_uninterrupted(shapes_dataset, tmp_path):
    recipe = _recipe(shapes_dataset)
    straight = _run(recipe, tmp_path / "straight")
    _run(recipe, tmp_path / "resumed", until=3)
    assert [s for s, _ in _losses(tmp_path / "resumed")] == [1, 2, 3]
    resumed = _run(recipe, tmp_path / "resumed", resume=True)
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    checkpoints = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir())
    assert checkpoints == ["step_000003", "step_000006"]
    metrics = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert any("eval/t2i_R@1" in line for line in metrics)
    assert plot_metrics(tmp_path / "straight").stat().st_size > 1000


def test_existing_run_needs_resume(shapes_dataset, tmp_path):
    recipe = _recipe(shapes_dataset, steps=1, warmup_steps=0)
    _run(recipe, tmp_path)
    with pytest.raises(Exception, match="--resume"):
        _run(recipe, tmp_path)


@pytest.mark.parametrize("stem_norm", ["none", "batch"])
def test_locked_image_tower_does_not_change(shapes_dataset, tmp_path, stem_norm):
    """Weights and, for a BatchNorm stem, its running statistics: a locked tower computes what it did."""
    recipe = _recipe(shapes_dataset, steps=2, warmup_steps=0)
    recipe.lock_image = True
    recipe.conv_stem, recipe.conv_stem_norm = 2, stem_norm
    torch.manual_seed(0)
    prepared = recipe.prepare()
    model = prepared.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(prepared, recipe.train, tmp_path, init_distributed("cpu")).fit()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("vision.", "image_projection.")))
    assert not torch.equal(before["text.final_norm.weight"], after["text.final_norm.weight"])


def test_two_processes_match_one_on_the_same_global_batch(shapes_dataset, tmp_path):
    """torchrun with 2 gloo processes gives the single-process losses (1e-5) step for step."""
    common = [
        "clip",
        "--data",
        str(shapes_dataset / "train"),
        "--image-size",
        "32",
        "--steps",
        "3",
        "--batch-size",
        "16",
        "--warmup-steps",
        "1",
        "--log-every",
        "1",
        "--eval-images",
        "8",
        "--device",
        "cpu",  # gloo on CPU even where there is a GPU: a machine may have only one
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    single = subprocess.run(
        [sys.executable, "-m", "vlmkit", "train", *common, "--out", str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    double = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            "29533",
            "-m",
            "vlmkit",
            "train",
            *common,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert double.returncode == 0, double.stderr[-2000:]
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert [s for s, _ in one] == [s for s, _ in two] == [1, 2, 3]
    for (_, a), (_, b) in zip(one, two, strict=True):
        assert abs(a - b) < 1e-5
    assert json.loads((tmp_path / "two" / "run.json").read_text())["train"]["steps"] == 3
