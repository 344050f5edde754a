"""COCO RLE encoder/decoder against pycocotools, and tight boxes."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from vlmkit.data.shapesworld.masks import mask_box, rle_decode, rle_encode
from vlmkit.errors import InputError


def _masks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    masks = [np.zeros((5, 7), bool), np.ones((4, 3), bool), rng.random((9, 11)) > 0.5, rng.random((1, 6)) > 0.3]
    corner = np.zeros((6, 6), bool)
    corner[0, 0] = True
    blob = np.zeros((16, 12), bool)
    blob[3:9, 2:7] = True
    return [*masks, corner, blob]


@pytest.mark.parametrize("mask", _masks())
def test_round_trip_and_pycocotools_agree(mask: np.ndarray) -> None:
    rle = rle_encode(mask)
    assert rle["size"] == list(mask.shape)
    assert sum(rle["counts"]) == mask.size
    np.testing.assert_array_equal(rle_decode(rle), mask)
    theirs = coco_mask.decode(coco_mask.frPyObjects(rle, *mask.shape)).astype(bool)
    np.testing.assert_array_equal(theirs, mask)
    compressed = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert coco_mask.frPyObjects(rle, *mask.shape)["counts"] == compressed["counts"]


@pytest.mark.parametrize("mask", [m for m in _masks() if m.any()])
def test_box_matches_pycocotools(mask: np.ndarray) -> None:
    x0, y0, x1, y1 = mask_box(mask)
    bbox = coco_mask.toBbox(coco_mask.encode(np.asfortranarray(mask.astype(np.uint8))))
    assert [x0, y0, x1 - x0, y1 - y0] == [int(v) for v in bbox]


def test_empty_mask_box() -> None:
    assert mask_box(np.zeros((3, 3), bool)) == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "rle", [{"size": [2, 2], "counts": [1, 2]}, {"counts": [4]}, {"size": [2, 2], "counts": [5, -1]}]
)
def test_malformed_rle_is_an_input_error(rle: dict) -> None:
    with pytest.raises(InputError, match="mask"):
        rle_decode(rle)
