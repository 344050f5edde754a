"""The scene reader on real ShapesWorld renders: drawn scenes read back to their exact objects."""

from __future__ import annotations

import numpy as np
import pytest

from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split
from vlmkit.data.shapesworld.config import COLORS, SHAPES
from vlmkit.data.shapesworld.render import render_scene
from vlmkit.data.shapesworld.scene import Background, Scene, SceneObject
from vlmkit.evaluation.geneval import validate_reader
from vlmkit.evaluation.scene_reader import colour_fit, object_seeds, read_scene

COLORS_BY_INDEX = list(COLORS)

PLAIN = Background("plain", (50, 52, 49), 0.0, 0.0, 0.0, 0)


def _object(shape: str, color: str, rgb, center, size="large", rotation=0.0) -> SceneObject:
    radius = {"small": 0.075, "medium": 0.11, "large": 0.155}[size]
    return SceneObject(shape, color, size, rgb, center, radius, rotation)


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_alone_is_read_with_its_colour_size_and_place(shape):
    scene = Scene((_object(shape, "blue", (45, 85, 225), (0.4, 0.6), rotation=10.0),), PLAIN)
    (found,) = read_scene(render_scene(scene, 64).image)
    assert (found.shape, found.color, found.size) == (shape, "blue", "large")
    assert abs(found.center[0] - 0.4 * 64) <= 2 and abs(found.center[1] - 0.6 * 64) <= 2


def test_touching_objects_of_one_colour_are_two_and_a_cut_object_is_one():
    """Same named colour, different jitter: two objects. An object split by one on top: still one."""
    touching = Scene(
        (
            _object("square", "red", (215, 40, 40), (0.35, 0.5)),
            _object("circle", "red", (205, 48, 35), (0.62, 0.5)),
        ),
        PLAIN,
    )
    assert sorted(o.shape for o in read_scene(render_scene(touching, 64).image)) == ["circle", "square"]
    # An object cut in two by one drawn over it: two pieces of one exact colour are one object.
    pixels = np.full((64, 64, 3), 50, dtype=np.uint8)
    pixels[10:30, 10:20] = pixels[10:30, 24:34] = (45, 170, 60)
    pixels[10:30, 20:24] = (240, 240, 240)
    interior, _ = colour_fit(pixels)
    seeds = object_seeds(pixels, interior, min_pixels=10)
    assert sorted((COLORS_BY_INDEX[c], int(m.sum())) for c, m in seeds) == [("green", 400), ("white", 80)]


def test_a_background_has_no_objects():
    assert read_scene(np.full((64, 64, 3), 60, dtype=np.uint8)) == []


def test_the_reader_agrees_with_the_ground_truth_of_a_generated_split(tmp_path):
    """The measure reported with ``vlmkit geneval --validate-reader`` (on 1000 test renders: see the notes)."""
    config = ShapesWorldConfig(image_size=64, max_objects=3)
    folder = generate_split(tmp_path / "val", config, "val", 24, seed=3, workers=1, progress=False)
    result = validate_reader(folder)
    assert result["n"] == 24
    assert result["images"] >= 0.9 and result["objects"] >= 0.95
