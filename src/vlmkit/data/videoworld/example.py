"""One VideoWorld clip: (seed, split, index) -> script -> frames -> record.

This is the unit of determinism, as in ShapesWorld: each clip draws from its own generator seeded by
``SeedSequence(seed, spawn_key=(split code, index))``, so a clip does not depend on how many clips,
workers or chunks there are, and no two splits share a stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vlmkit.data.videoworld.config import GENERATOR_VERSION, SPLITS, VideoWorldConfig
from vlmkit.data.videoworld.frames import render_clip
from vlmkit.data.videoworld.language import captions, event_facts, grounding, names_held_out, questions
from vlmkit.data.videoworld.script import Clip, sample_clip

CLIP_ATTEMPTS = 500
"""Scripts drawn per clip before giving up (moves across crowded frames are the usual reason to redraw)."""


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS[split], index)))


def make_clip(config: VideoWorldConfig, rng: np.random.Generator, split: str) -> tuple[Clip, list[np.ndarray]]:
    """Draw scripts from ``rng`` until one renders with every object clearly visible in every frame (and, in
    the compositional split, has an event naming a held-out pair); deterministic given the generator."""
    for _ in range(CLIP_ATTEMPTS):
        clip = sample_clip(rng, config, split)
        if clip is None or (split == "compositional" and not names_held_out(clip, config)):
            continue
        frames = render_clip(clip, config)
        if frames is not None:
            return clip, frames
    raise RuntimeError(f"VideoWorld: no acceptable clip in {CLIP_ATTEMPTS} tries; loosen the config")


def make_example(
    config: VideoWorldConfig, seed: int, split: str, index: int
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The frames (uint8 RGB) and record (its file names left for the writer) of clip ``index`` of ``split``."""
    rng = clip_rng(seed, split, index)
    clip, frames = make_clip(config, rng, split)
    record = {
        "captions": captions(clip, rng),
        "events": event_facts(clip, config),
        "qa": questions(clip, config, rng),
        "grounding": grounding(clip, config),
        "meta": {
            "generator": "videoworld",
            "version": GENERATOR_VERSION,
            "seed": seed,
            "split": split,
            "index": index,
            "frames": config.frames,
            "fps": config.fps,
            "duration": config.duration,
            "background": clip.background.kind,
            "num_objects": len(clip.actors),
            "num_events": len(clip.events),
        },
    }
    return frames, record
