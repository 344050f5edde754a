"""``vlmkit eval`` for dual encoders: report files, cache reuse, and the CLI."""

from __future__ import annotations

import json

from testkit import tiny_model
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main
from vlmkit.evaluation import runner


def test_report_and_cache(shapes_dataset, tmp_path, monkeypatch):
    model = tiny_model()
    model.image_processor = type(model.image_processor).clip(32)
    report = runner.evaluate(model, shapes_dataset / "val", tmp_path / "out", batch_size=8)
    zero_shot, retrieval = report["tasks"]["zero_shot"], report["tasks"]["retrieval"]
    assert zero_shot["images"] == 16 and zero_shot["classes"] >= 50  # the whole ShapesWorld vocabulary
    assert 0 <= zero_shot["zero_shot_top1"] <= zero_shot["zero_shot_top5"] <= 1
    assert zero_shot["zero_shot_top1"] <= min(zero_shot["zero_shot_color"], zero_shot["zero_shot_shape"])
    assert retrieval["t2i_R@1"] <= retrieval["t2i_R@5"] <= retrieval["t2i_R@10"]
    assert "| t2i_R@1 |" in (tmp_path / "out" / "report.md").read_text()

    calls = []
    monkeypatch.setattr(runner, "retrieval_recall", lambda *a, **k: calls.append(1) or {})
    again = runner.evaluate(model, shapes_dataset / "val", tmp_path / "out", batch_size=8)
    assert again == report and not calls  # served from the cache
    with __import__("torch").no_grad():
        model.logit_scale.add_(1.0)
    runner.evaluate(model, shapes_dataset / "val", tmp_path / "out", batch_size=8)
    assert calls  # other weights: recomputed


def test_eval_cli(shapes_dataset, tmp_path, capsys):
    model = tiny_model()
    model.image_processor = type(model.image_processor).clip(32)
    save_pretrained(model, tmp_path / "m")
    assert (
        main(
            [
                "eval",
                "--model",
                str(tmp_path / "m"),
                "--data",
                str(shapes_dataset / "val"),
                "--limit",
                "8",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "r" / "report.json").read_text())["records"] == 8
