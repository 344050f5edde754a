"""``vlmkit demo`` end to end at toy size: the pipeline `make demo` runs, minus the waiting."""

from __future__ import annotations

import pytest

from vlmkit.cli import main


@pytest.mark.parametrize("tower", [[], ["--imagenet-cnn"]])
def test_demo_runs_and_draws_its_pictures(tmp_path, capsys, tower):
    out = tmp_path / "demo"
    argv = [
        "demo",
        "--out",
        str(out),
        "--train-images",
        "64",
        "--test-images",
        "16",
        "--steps",
        "2",
        "--batch-size",
        "16",
        "--vlm-steps",
        "2",
        *tower,
    ]
    assert main(argv) == 0
    for picture in ("retrieval.png", "zero_shot.png", "vlm_answers.png"):
        assert (out / picture).stat().st_size > 1000
    for stage in ("clip", "lm", "align", "instruct"):  # every run leaves its record and its curves
        assert (out / f"{stage}_run" / "run.json").exists() and (out / f"{stage}_run" / "metrics.png").exists()
    printed = capsys.readouterr().out
    assert ("on a frozen ImageNet CNN" in printed) == bool(tower)
    assert "zero-shot top-1 over" in printed and "VQA accuracy" in printed  # a summary, not raw metrics
    assert "{" not in printed.split("what the CLIP learned")[1].split("\n==")[0]
