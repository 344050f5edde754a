"""Binary masks as COCO uncompressed RLE, and their tight boxes.

COCO's convention: ``{"size": [h, w], "counts": [...]}`` where counts are alternating run lengths of
0s and 1s over the mask read column by column (Fortran order), always starting with a run of 0s (which
may be empty). Written here rather than taken from pycocotools so that reading and writing datasets
needs no compiled dependency; the tests check equality with pycocotools.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vlmkit.errors import InputError


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE of a 2-D boolean mask."""
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D mask, got shape {mask.shape}")
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(r) for r in runs]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Boolean (h, w) mask from COCO uncompressed RLE; raises ``InputError`` if it is malformed."""
    try:
        height, width = (int(v) for v in rle["size"])
        counts = np.asarray(rle["counts"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(
            f"mask: expected uncompressed RLE {{'size': [h, w], 'counts': [...]}}, got {rle!r:.80}"
        ) from error
    if counts.ndim != 1 or (counts < 0).any() or int(counts.sum()) != height * width:
        raise InputError(f"mask: RLE counts must be non-negative and sum to h*w = {height * width}")
    values = np.arange(counts.size) % 2 == 1
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order="F")


def mask_box(mask: np.ndarray) -> list[int]:
    """Tight box ``[x0, y0, x1, y1]`` in pixel-edge coordinates (x1, y1 exclusive, so
    ``x1 - x0`` is the width, as in COCO's ``[x, y, w, h]``); ``[0, 0, 0, 0]`` for an empty mask."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return [0, 0, 0, 0]
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
