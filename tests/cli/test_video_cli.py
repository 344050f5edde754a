"""``vlmkit ask clip.mp4`` and ``vlmkit caption clip.mp4``: a video goes to the VLM as timed frames."""

from __future__ import annotations

import numpy as np
import pytest

from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main
from vlmkit.data.videoworld import encode_mp4, resolve_codec

pytest.importorskip("av")


def test_ask_and_caption_a_clip(tmp_path, photo_files, capsys):
    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    model = str(tmp_path / "vlm")
    rng = np.random.default_rng(0)
    clip = tmp_path / "clip.mp4"
    frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(8)]
    clip.write_bytes(encode_mp4(frames, 4, resolve_codec("auto")))
    assert main(["ask", str(clip), "what moves?", "--model", model, "--max-new-tokens", "3", "--frames", "2"]) == 0
    assert capsys.readouterr().out.endswith("\n")
    assert (
        main(["caption", str(photo_files[0]), str(clip), "--model", model, "--max-new-tokens", "3", "--frames", "2"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(photo_files[0]), str(clip)]
    clip.write_bytes(b"not a video")
    assert main(["ask", str(clip), "what moves?", "--model", model]) == 2
    assert "not a readable video" in capsys.readouterr().err
