"""``vlmkit info | classify | embed``: output on good input, one clear line and exit 2 on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from testkit import tiny_model
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main


def test_classify_embed_info(tmp_path, photo_files, capsys):
    save_pretrained(tiny_model(), tmp_path / "model")
    model = str(tmp_path / "model")
    assert main(["classify", *map(str, photo_files[:2]), "--labels", "cat, dog", "--model", model, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["image"] for line in lines] == [str(p) for p in photo_files[:2]]
    assert {p["label"] for p in lines[0]["predictions"]} == {"cat", "dog"}
    assert abs(sum(p["probability"] for p in lines[0]["predictions"]) - 1) < 1e-4  # softmax over the labels
    assert main(["embed", "--model", model, *map(str, photo_files), "--out", str(tmp_path / "e.npy")]) == 0
    vectors = np.load(tmp_path / "e.npy")
    assert vectors.shape == (4, 24) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert main(["info", model]) == 0
    assert "DualEncoder" in capsys.readouterr().out


def test_errors_are_one_line_with_exit_2(tmp_path, photo_files, capsys):
    save_pretrained(tiny_model(), tmp_path / "model")
    model = str(tmp_path / "model")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(photo_files[0].read_bytes()[:200])
    cases = [
        (["classify", str(tmp_path / "missing.jpg"), "--labels", "a", "--model", model], "missing.jpg"),
        (["classify", str(corrupt), "--labels", "a", "--model", model], "corrupt.jpg"),
        (["classify", str(photo_files[0]), "--labels", " , ", "--model", model], "--labels is empty"),
        (["info", str(tmp_path / "nowhere")], "no such model directory"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_export_help_names_every_family_it_writes(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # the help's lines joined as one text
    for name in ("LlamaForCausalLM", "LlavaForConditionalGeneration", "Idefics3ForConditionalGeneration"):
        assert name in shown
    assert "Qwen2VLForConditionalGeneration / Qwen2_5_VLForConditionalGeneration" in shown
