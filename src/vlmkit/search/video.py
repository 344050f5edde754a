"""Video files as timestamped frames, through PyAV (the optional ``video`` extra).

A video is indexed as the frames shown at ``0, every, 2 * every, ...`` seconds: each sampled frame
becomes one item of the index, found with its timestamp. Frames are decoded in order and kept only
when they reach the next sampling time, so a sample is the first frame at or after that time.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import floor
from pathlib import Path

from PIL import Image

from vlmkit.errors import InputError

VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"})
MISSING_PYAV = "video support needs PyAV, which is not installed: pip install 'vlmkit[video]'"


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _av():
    try:
        import av
    except ImportError:
        raise InputError(MISSING_PYAV) from None
    return av


def sample_frames(path: str | Path, every: float, max_frames: int | None = None) -> Iterator[tuple[float, Image.Image]]:
    """``(seconds, RGB frame)`` every ``every`` seconds from the start of the first video stream."""
    if every <= 0:
        raise InputError(f"frame interval must be > 0 seconds; got {every}")
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            next_time, taken = 0.0, 0
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                seconds = float(frame.pts * stream.time_base) - start
                if seconds + 1e-6 < next_time:
                    continue
                yield round(max(seconds, 0.0), 3), frame.to_image().convert("RGB")
                taken += 1
                if max_frames is not None and taken >= max_frames:
                    return
                next_time = every * (1 + floor(seconds / every + 1e-9))  # the next multiple after this frame
    except av.FFmpegError as error:
        raise InputError(f"{path}: not a readable video ({error})") from None


def frame_at(path: str | Path, seconds: float) -> Image.Image:
    """The first frame at or after ``seconds`` (for thumbnails of video hits)."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            for frame in container.decode(stream):
                if frame.pts is not None and float(frame.pts * stream.time_base) - start + 1e-6 >= seconds:
                    return frame.to_image().convert("RGB")
    except (av.FFmpegError, IndexError) as error:
        raise InputError(f"{path}: cannot read a frame at {seconds} s ({error})") from None
    raise InputError(f"{path}: the video ends before {seconds} s")
