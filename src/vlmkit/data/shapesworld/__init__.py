"""ShapesWorld: a synthetic image benchmark whose ground truth is exact for every VLM task.

Scenes of coloured shapes are sampled from a seed, drawn with antialiasing, and annotated from the
scene itself: captions, questions with answers and multiple-choice options, boxes, COCO RLE masks,
referring expressions and class labels. A ``compositional`` split holds (colour, shape) pairs that the
other splits never show. Module map: config (knobs), geometry (outlines), scene (sampling), render
(pixels + masks), masks (RLE), language (captions, referring expressions), questions (QA), example
(one image end to end), generate (folders, workers), mmbench (TSV export), grid (contact sheet).
"""

from vlmkit.data.shapesworld.config import (
    COLORS,
    GENERATOR_VERSION,
    SHAPES,
    SIZES,
    SPLITS,
    ShapesWorldConfig,
)
from vlmkit.data.shapesworld.example import make_example
from vlmkit.data.shapesworld.generate import generate_split, regenerate, vocabulary
from vlmkit.data.shapesworld.grid import draw_grid
from vlmkit.data.shapesworld.masks import mask_box, rle_decode, rle_encode
from vlmkit.data.shapesworld.mmbench import write_mmbench_tsv
from vlmkit.data.shapesworld.render import Rendering, render_scene
from vlmkit.data.shapesworld.scene import Scene, SceneObject, sample_scene

__all__ = [
    "COLORS",
    "GENERATOR_VERSION",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "Rendering",
    "Scene",
    "SceneObject",
    "ShapesWorldConfig",
    "draw_grid",
    "generate_split",
    "make_example",
    "mask_box",
    "regenerate",
    "render_scene",
    "rle_decode",
    "rle_encode",
    "sample_scene",
    "vocabulary",
    "write_mmbench_tsv",
]
