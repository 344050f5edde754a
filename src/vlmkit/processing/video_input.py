"""What a VLM is given for a clip, and how a moment is written: one definition for training, evaluation and
inference (as ``processing.chat`` is for images), because a model answers best when asked as it was trained.

- ``pool_frame_tokens``: each frame's grid of vision tokens pooled ``stride`` x ``stride`` before it reaches the
  decoder, so a clip of many frames fits the context. LLaVA-OneVision pools video frames 2 x 2: its own code
  (LLaVA-NeXT, ``mm_spatial_pool_mode``) averages by default; the Hugging Face port (``LlavaOnevisionModel.
  apply_pooling``) resizes bilinearly to ``ceil(h / 2) x ceil(w / 2)``. Both are here (``average``, ``bilinear``,
  plus ``max``); on even grids with stride 2 they agree exactly, since a half-size bilinear sample is the mean
  of its 2 x 2 block.
- ``video_prompt``: a user turn whose frames are ``<image>`` placeholders each introduced by its time
  ("frame at 0.5s: <image>"), then the text; the frames go to the model as that many images, in order.
- ``grounding_prompt``, ``format_moment``, ``parse_moment``: a temporal grounding question and its answer
  ("1.25 to 1.75", seconds), and reading a moment back out of whatever a model wrote.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.chat import IMAGE_TOKEN

PoolMode = Literal["average", "bilinear", "max"]
POOL_MODES: tuple[str, ...] = ("average", "bilinear", "max")
GROUNDING_TEMPLATE = "When does this happen: {query}? Answer with its start and end in seconds."
_MOMENT = re.compile(r"(\d+(?:\.\d+)?)\s*s?\s*(?:-|–|to|until)\s*(\d+(?:\.\d+)?)")


def pool_frame_tokens(
    tokens: torch.Tensor, grid: tuple[int, int], stride: int = 2, mode: PoolMode = "average"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """``tokens`` ``[frames, h * w, dim]`` (row-major over the ``grid`` ``(h, w)``) pooled to
    ``[frames, ceil(h / stride) * ceil(w / stride), dim]``, and the new grid. A window that overhangs an odd
    edge averages (or maxes) only the tokens it covers."""
    if mode not in POOL_MODES:
        raise ConfigError(f"frame token pooling mode: expected one of {POOL_MODES}, got {mode!r}")
    if stride < 1:
        raise ConfigError(f"frame token pooling stride: expected an integer >= 1, got {stride}")
    if tokens.dim() != 3:
        raise InputError(f"frame tokens: expected [frames, tokens, dim], got shape {tuple(tokens.shape)}")
    frames, count, dim = tokens.shape
    height, width = grid
    if height * width != count:
        raise InputError(f"frame tokens: a {height}x{width} grid holds {height * width} tokens, got {count}")
    if stride == 1:
        return tokens, grid
    maps = tokens.reshape(frames, height, width, dim).permute(0, 3, 1, 2)
    size = (math.ceil(height / stride), math.ceil(width / stride))
    if mode == "bilinear":
        pooled = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    elif mode == "average":
        pooled = F.avg_pool2d(maps, stride, stride, ceil_mode=True)
    else:
        pooled = F.max_pool2d(maps, stride, stride, ceil_mode=True)
    return pooled.permute(0, 2, 3, 1).reshape(frames, size[0] * size[1], dim), size


def format_seconds(seconds: float) -> str:
    """ "0.5", "1.25", "2": at most two decimals, no trailing zeros."""
    return f"{round(seconds, 2):g}"


def video_prompt(times: Sequence[float], text: str) -> str:
    """A user turn: one ``frame at {t}s: <image>`` line per sampled frame, then ``text``."""
    if not times:
        raise InputError("video prompt: expected at least one frame time")
    lines = [f"frame at {format_seconds(t)}s: {IMAGE_TOKEN}" for t in times]
    return "\n".join([*lines, text])


def grounding_prompt(query: str) -> str:
    """The question that asks for the moment a sentence describes."""
    return GROUNDING_TEMPLATE.format(query=query.rstrip(" .?"))


def format_moment(start: float, end: float) -> str:
    """A moment as an answer: ``"1.25 to 1.75"`` (seconds)."""
    return f"{format_seconds(start)} to {format_seconds(end)}"


def parse_moment(text: str) -> tuple[float, float] | None:
    """The first ``A to B`` / ``A-B`` / ``As - Bs`` in ``text`` as ``(start, end)`` seconds, ordered; None if
    there is none (the prediction then scores zero overlap)."""
    match = _MOMENT.search(text)
    if match is None:
        return None
    a, b = float(match.group(1)), float(match.group(2))
    return (a, b) if a <= b else (b, a)
