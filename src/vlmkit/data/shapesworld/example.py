"""One ShapesWorld example: (seed, split, index) -> scene -> pixels -> record.

This is the unit of determinism. Each image draws from its own generator seeded by
``SeedSequence(seed, spawn_key=(split code, index))``, so an image does not depend on how many
images, workers or chunks there are, and no two splits share a stream.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from vlmkit.data.shapesworld.config import GENERATOR_VERSION, SPLITS, ShapesWorldConfig
from vlmkit.data.shapesworld.language import Thing, captions, referring_expressions
from vlmkit.data.shapesworld.masks import mask_box, rle_encode
from vlmkit.data.shapesworld.questions import make_questions
from vlmkit.data.shapesworld.render import Rendering, render_scene
from vlmkit.data.shapesworld.scene import Scene, sample_scene

SCENE_ATTEMPTS = 200
"""Scenes drawn per image before giving up (only absurd configs get near this)."""

MIN_VISIBLE_PIXELS = 4
PNG_COMPRESS_LEVEL = 6  # part of the byte-identical promise: change it only with GENERATOR_VERSION


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS[split], index)))


def dominant(rendering: Rendering) -> int:
    """Index of the object with the most visible pixels (the earliest-drawn on a tie)."""
    return int(np.argmax([int(m.sum()) for m in rendering.masks]))


def _acceptable(scene: Scene, rendering: Rendering, config: ShapesWorldConfig, split: str) -> bool:
    """Enough objects, each clearly visible, and in the compositional split a held-out pair on the
    dominant object (so the image's classification label is itself an unseen pair)."""
    if len(scene.objects) < config.min_objects:
        return False
    if any(int(m.sum()) < MIN_VISIBLE_PIXELS for m in rendering.masks):
        return False
    if split == "compositional":
        top = scene.objects[dominant(rendering)]
        return (top.color, top.shape) in config.held_out
    return True


def make_scene(config: ShapesWorldConfig, rng: np.random.Generator, split: str) -> tuple[Scene, Rendering]:
    """Sample scenes from ``rng`` until one is acceptable; deterministic given the generator."""
    first_pairs = list(config.held_out) if split == "compositional" else config.allowed_pairs(split)
    for _ in range(SCENE_ATTEMPTS):
        scene = sample_scene(rng, config, split, first_pairs)
        rendering = render_scene(scene, config.image_size, config.supersample)
        if _acceptable(scene, rendering, config, split):
            return scene, rendering
    raise RuntimeError(f"ShapesWorld: no acceptable scene in {SCENE_ATTEMPTS} tries; loosen the config")


def annotate(
    scene: Scene, rendering: Rendering, config: ShapesWorldConfig, split: str, rng: np.random.Generator
) -> dict[str, Any]:
    """The record (without ``image``) for a rendered scene; every field derives from the scene and the
    visible masks."""
    boxes = [mask_box(m) for m in rendering.masks]
    things = [
        Thing(o.shape, o.color, o.size, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
        for o, b in zip(scene.objects, boxes, strict=True)
    ]
    margin = config.position_margin * config.image_size
    objects = [
        {
            "label": f"{o.color} {o.shape}",
            "box": box,
            "mask": rle_encode(mask),
            "area": int(mask.sum()),
            "shape": o.shape,
            "color": o.color,
            "size": o.size,
            "rgb": list(o.rgb),
            "refexp": referring_expressions(things, i, margin),
        }
        for i, (o, box, mask) in enumerate(zip(scene.objects, boxes, rendering.masks, strict=True))
    ]
    largest = dominant(rendering)
    top = scene.objects[largest]
    return {
        "captions": captions(things, scene.background.kind, margin, rng, largest),
        "qa": make_questions(things, config, split, rng),
        "objects": objects,
        "labels": {"shape": top.shape, "color": top.color, "color_shape": f"{top.color} {top.shape}"},
    }


def make_example(config: ShapesWorldConfig, seed: int, split: str, index: int) -> tuple[bytes, dict[str, Any]]:
    """PNG bytes and record (``image`` key left for the writer) of image ``index`` of ``split``."""
    rng = image_rng(seed, split, index)
    scene, rendering = make_scene(config, rng, split)
    record = annotate(scene, rendering, config, split, rng)
    record["meta"] = {
        "generator": "shapesworld",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "split": split,
        "index": index,
        "background": scene.background.kind,
        "num_objects": len(scene.objects),
    }
    buffer = io.BytesIO()
    rendering.image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue(), record
