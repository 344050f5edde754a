"""Frames -> MP4 bytes through PyAV (the ``video`` extra), reproducibly.

H.264 (libx264) when the installed PyAV carries it, MPEG-4 part 2 otherwise (every FFmpeg build encodes
it); both in 4:2:0 (``yuv420p``), which every player and decoder reads. The bytes of a dataset must not
depend on the machine or its load, and x264 as PyAV 18 ships it did not quite keep that promise for these
tiny frames: the same frames gave a different stream several times in a hundred under load. Two things fixed
it, both measured on this machine: frames whose every byte is set (FFmpeg leaves the row padding past the
width uninitialised, and x264 reads it: about one time in 500 after zeroing it), and x264's plain C path instead
of its SIMD one (``asm=0``: no difference in 960 encodings by three processes at once). At 64 px the C path
costs a few milliseconds a clip; one encoder thread and one conversion thread keep the rest sequential.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from vlmkit.errors import ConfigError
from vlmkit.processing.video import import_av


def resolve_codec(codec: str) -> str:
    """``auto`` -> ``libx264`` if this PyAV can encode H.264, else ``mpeg4``; a named codec must be encodable."""
    av = import_av()
    if codec == "auto":
        return "libx264" if "libx264" in av.codecs_available else "mpeg4"
    if codec not in av.codecs_available:
        raise ConfigError(f"VideoWorld codec {codec!r}: this PyAV ({av.__version__}) cannot encode it; use 'auto'")
    return codec


def encode_mp4(frames: Sequence[np.ndarray], fps: int, codec: str, crf: int = 18) -> bytes:
    """The MP4 of ``frames`` (uint8 H x W x 3, all one even size) at ``fps``; ``crf`` is libx264's quality."""
    av = import_av()
    height, width = frames[0].shape[:2]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.codec_context.options = {"crf": str(crf), "preset": "medium", "x264-params": "asm=0"}
        else:
            stream.codec_context.qscale = 2  # MPEG-4 part 2: near the best quality it has
            stream.codec_context.flags |= "QSCALE"
        for pixels in frames:
            container.mux(stream.encode(_yuv420p(av, pixels)))
        container.mux(stream.encode())
    return buffer.getvalue()


def _yuv420p(av: Any, pixels: np.ndarray) -> Any:
    """``pixels`` as a 4:2:0 frame whose every byte is set, the row padding past the width included (zeros)."""
    converted = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24").reformat(
        format="yuv420p", threads=1
    )
    frame = av.VideoFrame(converted.width, converted.height, "yuv420p")
    for source, target in zip(converted.planes, frame.planes, strict=True):
        rows = np.frombuffer(source, np.uint8).reshape(source.height, source.line_size)[:, : source.width]
        padded = np.zeros((target.height, target.line_size), np.uint8)
        padded[:, : target.width] = rows
        target.update(padded)
    return frame
