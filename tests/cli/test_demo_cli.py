"""``vlmkit demo`` end to end at toy size: the pipeline `make demo` runs, minus the waiting."""

from __future__ import annotations

from vlmkit.cli import main


def test_demo_runs_and_draws_its_pictures(tmp_path, capsys):
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
    ]
    assert main(argv) == 0
    for picture in ("retrieval.png", "zero_shot.png", "vlm_answers.png", "clip_run/metrics.png"):
        assert (out / picture).stat().st_size > 1000
    assert "zero_shot_top1" in capsys.readouterr().out
