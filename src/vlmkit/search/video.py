"""Video files as timestamped frames for the index, through ``processing.video`` (vlmkit's one video decoder).

A video is indexed as the frames shown at ``0, every, 2 * every, ...`` seconds: each sampled frame
becomes one item of the index, found with its timestamp; a sample is the first frame at or after its time.
The index takes files of any length and size, as it always has, so no duration or pixel limit applies here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from PIL import Image

from vlmkit.errors import InputError
from vlmkit.processing.video import MISSING_PYAV, VIDEO_EXTENSIONS, VideoLimits, decode_frames, is_video

__all__ = ["MISSING_PYAV", "VIDEO_EXTENSIONS", "frame_at", "is_video", "sample_frames"]

UNLIMITED = VideoLimits(max_seconds=None, max_pixels=None)


def sample_frames(path: str | Path, every: float, max_frames: int | None = None) -> Iterator[tuple[float, Image.Image]]:
    """``(seconds, RGB frame)`` every ``every`` seconds from the start of the first video stream."""
    if every <= 0:
        raise InputError(f"frame interval must be > 0 seconds; got {every}")
    with closing(decode_frames(path, (k * every for k in itertools.count()), UNLIMITED)) as frames:
        for frame in itertools.islice(frames, max_frames):
            yield frame.time, frame.image


def frame_at(path: str | Path, seconds: float) -> Image.Image:
    """The first frame at or after ``seconds`` (for thumbnails of video hits)."""
    with closing(decode_frames(path, [seconds], UNLIMITED)) as frames:
        for frame in frames:
            return frame.image
    raise InputError(f"{path}: the video ends before {seconds} s")
