"""``vlmkit caption | ask | chat`` on a saved tiny VLM."""

from __future__ import annotations

import io

import torch

from testkit import tiny_model
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main


def test_caption_ask_chat(tmp_path, photo_files, capsys, monkeypatch):
    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    model = str(tmp_path / "vlm")
    images = list(map(str, photo_files[:2]))
    assert main(["caption", *images, "--model", model, "--max-new-tokens", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == images
    assert main(["ask", images[0], "what colour is it?", "--model", model, "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.endswith("\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n/reset\nhi again\n/quit\n"))
    assert main(["chat", images[0], "--model", model, "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert "(conversation reset)" in out and out.count("\n") == 3


def test_a_dual_encoder_cannot_generate(tmp_path, photo_files, capsys):
    save_pretrained(tiny_model(), tmp_path / "clip")
    assert main(["ask", str(photo_files[0]), "q", "--model", str(tmp_path / "clip")]) == 2
    assert "is a dual encoder (DualEncoder), but ask needs a vision-language model" in capsys.readouterr().err


def test_device_option(tmp_path, photo_files, capsys):
    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    ask = ["ask", str(photo_files[0]), "what colour is it?", "--model", str(tmp_path / "vlm"), "--max-new-tokens", "2"]
    assert main([*ask, "--device", "cpu"]) == 0
    capsys.readouterr()
    if not torch.cuda.is_available():
        assert main([*ask, "--device", "cuda"]) == 2
        assert "--device cuda: torch sees no CUDA device" in capsys.readouterr().err


def test_dtype_option(tmp_path, photo_files):
    from vlmkit.cli import VLM, load_model

    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    model = load_model(str(tmp_path / "vlm"), "cpu", "ask", [VLM], "bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    ask = ["ask", str(photo_files[0]), "what colour is it?", "--model", str(tmp_path / "vlm"), "--max-new-tokens", "2"]
    assert main([*ask, "--dtype", "bfloat16"]) == 0
