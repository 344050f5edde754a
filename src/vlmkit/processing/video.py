"""Video files in, timestamped RGB frames out: vlmkit's one video decoder and frame sampler (PyAV).

Everything that reads a video (a VLM's input, the search indexer, thumbnails of video hits) goes through
``decode_frames``: it decodes the first video stream in order and keeps, for each target time, the first
frame shown at or after it (within a quarter of a frame, so float rounding of a target never skips a
frame). Only kept frames are converted to RGB, and nothing else is held, so memory is bounded by the kept
frames whatever the length of the file.

Where the targets come from:

- ``uniform``: ``frames`` frames spread over the whole clip, the middle frame of each of ``frames`` equal
  parts (TSN's segment sampling; LLaVA-Video and Qwen2-VL take ``linspace`` from the first frame to the last,
  which differs only in where the ends fall);
- ``fps``: one frame every ``1 / fps`` seconds from the start, at most ``frames`` of them (the budget); a
  clip that would give more is sampled uniformly with the budget instead (Qwen2-VL likewise caps its
  fps-derived frame count at ``max_frames``).

What is refused, each with one line (``InputError``) naming the file: a file FFmpeg cannot open (damaged,
cut short before its index, not a video), one without a video stream, a codec this FFmpeg cannot decode,
a clip longer than ``max_seconds``, frames larger than ``max_pixels``, and a stream that ends well before the
duration its header gives (a file cut short after its index).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from vlmkit.errors import ConfigError, InputError

VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"})
MISSING_PYAV = "video support needs PyAV, which is not installed: pip install 'vlmkit[video]'"
DEFAULT_MAX_SECONDS = 3600.0
DEFAULT_MAX_PIXELS = 3840 * 2160
"""A 4K frame: the largest ``decode_frames`` accepts by default (one such RGB frame is ~25 MB)."""


def import_av() -> Any:
    """PyAV, or the one line that says which extra installs it."""
    try:
        import av
    except ImportError:
        raise InputError(MISSING_PYAV) from None
    return av


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoLimits:
    """What a video may be: ``max_seconds`` long, ``max_pixels`` a frame (None: no limit); frames whose longer
    side passes ``max_side`` are scaled down while they are converted (cheaper than after, and smaller)."""

    max_seconds: float | None = DEFAULT_MAX_SECONDS
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_side: int | None = None


@dataclass(frozen=True)
class FrameSampling:
    """Which frames a model sees: ``uniform`` (``frames`` of them) or ``fps`` (every 1/fps s, ``frames`` at most)."""

    mode: Literal["uniform", "fps"] = "uniform"
    frames: int = 8
    fps: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("uniform", "fps"):
            raise ConfigError(f"frame sampling mode: expected 'uniform' or 'fps', got {self.mode!r}")
        if self.frames < 1:
            raise ConfigError(f"frame sampling frames: expected an integer >= 1, got {self.frames}")
        if not self.fps > 0:
            raise ConfigError(f"frame sampling fps: expected a rate > 0, got {self.fps}")


@dataclass(frozen=True)
class VideoInfo:
    """What the header says: seconds (None: not given, as in some live recordings), frame rate (frames per
    second; 0: not given), frame size, codec name."""

    path: str
    duration: float | None
    fps: float
    width: int
    height: int
    codec: str


@dataclass(frozen=True)
class Frame:
    """One decoded frame and the time it is shown, in seconds from the start of the stream."""

    time: float
    image: Image.Image


def _open(path: str | Path) -> Any:
    av = import_av()
    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (av.FFmpegError, OSError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InputError(f"{path}: not a readable video ({reason}): damaged, cut short, or not a video") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        container.close()
        raise InputError(f"{path}: its video codec is not one this FFmpeg (PyAV {av.__version__}) can decode")
    return container


def _info(path: str | Path, stream: Any, container: Any) -> VideoInfo:
    if stream.duration is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    else:
        duration = None
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    context = stream.codec_context
    return VideoInfo(str(path), duration, fps, context.width, context.height, context.name)


def _check(info: VideoInfo, limits: VideoLimits) -> None:
    if limits.max_seconds is not None and info.duration is not None and info.duration > limits.max_seconds:
        raise InputError(f"{info.path}: lasts {info.duration:.1f} s; the limit is {limits.max_seconds:g} s")
    pixels = info.width * info.height
    if limits.max_pixels is not None and pixels > limits.max_pixels:
        raise InputError(
            f"{info.path}: frames of {info.width}x{info.height} = {pixels} pixels; the limit is {limits.max_pixels}"
        )


def probe(path: str | Path, limits: VideoLimits | None = None) -> VideoInfo:
    """The header's facts about ``path``, checked against ``limits`` (default: ``VideoLimits()``)."""
    with _open(path) as container:
        info = _info(path, container.streams.video[0], container)
    _check(info, limits or VideoLimits())
    return info


def sample_times(info: VideoInfo, sampling: FrameSampling) -> list[float]:
    """Target times (seconds) of ``sampling`` over a clip; each is a frame's own time when the rate is known."""
    if info.duration is None:
        raise InputError(f"{info.path}: its header gives no duration, so frames cannot be spread over it")
    step = 1.0 / info.fps if info.fps > 0 else 0.0
    last = max(0.0, info.duration - step)  # the last frame is shown at duration - 1/fps
    if sampling.mode == "fps":
        count = math.floor(info.duration * sampling.fps - 1e-9) + 1
        if count <= sampling.frames:
            return [min(k / sampling.fps, last) for k in range(count)]
    count = sampling.frames
    if step == 0.0:
        return [last * (i + 0.5) / count for i in range(count)]
    total = max(1, round(info.duration * info.fps))
    return sorted({min(math.floor((i + 0.5) * total / count), total - 1) * step for i in range(count)})


def _scaled(width: int, height: int, max_side: int | None) -> dict[str, int]:
    if max_side is None or max(width, height) <= max_side:
        return {}
    scale = max_side / max(width, height)
    return {"width": max(1, round(width * scale)), "height": max(1, round(height * scale))}


def decode_frames(
    path: str | Path, times: Iterable[float], limits: VideoLimits | None = None, *, strict: bool = False
) -> Iterator[Frame]:
    """For each target in ``times`` (ascending, possibly endless), the first frame shown at or after it.

    A frame that reaches several targets is given once. ``strict`` is for targets taken from the header's
    duration: a stream whose last frame comes more than two frames or 5% of the duration before the one the
    header promises was cut short after its index, an error; a smaller shortfall (headers round, and a
    container's duration may be its audio's) gives the last frame for the targets past it."""
    limits = limits or VideoLimits()
    av = import_av()
    targets = iter(times)
    target = next(targets, None)
    if target is None:
        return
    with _open(path) as container:
        stream = container.streams.video[0]
        info = _info(path, stream, container)
        _check(info, limits)
        stream.thread_type = "AUTO"
        slack = 0.25 / info.fps if info.fps > 0 else 1e-6
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        resize, seconds, last, given = _scaled(info.width, info.height, limits.max_side), 0.0, None, True
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                last, given = frame, False
                seconds = max(0.0, float(frame.pts * stream.time_base) - start)
                if limits.max_seconds is not None and seconds > limits.max_seconds:
                    raise InputError(f"{path}: runs past the limit of {limits.max_seconds:g} s (its header said less)")
                if seconds + slack < target:
                    continue
                yield Frame(round(seconds, 3), frame.to_image(**resize).convert("RGB"))
                given = True
                while target is not None and target <= seconds + slack:
                    target = next(targets, None)
                if target is None:
                    return
        except av.FFmpegError as error:
            raise InputError(f"{path}: cannot decode ({error}): damaged or cut short") from None
        if not strict:
            return
        step = 1.0 / info.fps if info.fps > 0 else 0.0
        short = (info.duration or 0.0) - step - seconds  # how far before its promised last frame it stopped
        if last is None or short > max(2 * step, 0.05 * (info.duration or 0.0)):
            told = f"{info.duration:.2f} s" if info.duration is not None else "end"
            raise InputError(
                f"{path}: cut short or damaged: frames stop at {seconds:.2f} s, before the {told} its header gives"
            )
        if not given:
            yield Frame(round(seconds, 3), last.to_image(**resize).convert("RGB"))


def read_video(
    path: str | Path, sampling: FrameSampling | None = None, limits: VideoLimits | None = None
) -> list[Frame]:
    """The frames ``sampling`` picks from ``path`` (default: 8 uniform), decoded within ``limits``."""
    info = probe(path, limits)
    times = sample_times(info, sampling or FrameSampling())
    return list(decode_frames(path, times, limits, strict=True))
