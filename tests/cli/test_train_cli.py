"""``vlmkit train clip`` flags reach the recipe and the saved run config."""

from __future__ import annotations

import json

from vlmkit.cli import main


def test_hard_negatives_and_conv_stem_flags_train_and_are_saved(shapes_dataset, tmp_path):
    out = tmp_path / "run"
    args = ["train", "clip", "--data", str(shapes_dataset / "train"), "--out", str(out), "--image-size", "32"]
    args += ["--steps", "2", "--batch-size", "8", "--warmup-steps", "0", "--hard-negatives", "--conv-stem", "1"]
    assert main(args) == 0
    saved = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert saved["hard_negatives"] is True and saved["conv_stem"] == 1
    assert (out / "model" / "config.json").exists()
