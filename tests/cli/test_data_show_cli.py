"""``vlmkit data show``: masks are outlined around objects, never painted over them, so colours read true."""

from __future__ import annotations

import json
import math

import numpy as np
from PIL import Image

from vlmkit.cli import main
from vlmkit.data.shapesworld.grid import MIN_TILE
from vlmkit.data.shapesworld.masks import rle_decode


def test_show_keeps_every_object_pixel_and_outlines_each_mask(shapes_dataset, tmp_path, capsys):
    dataset = shapes_dataset / "val"
    out = tmp_path / "grid.png"
    assert main(["data", "show", str(dataset), "--n", "1", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    record = json.loads((dataset / "records.jsonl").read_text().splitlines()[0])
    with Image.open(dataset / record["image"]) as opened:
        image = np.asarray(opened.convert("RGB"))
    factor = max(1, math.ceil(MIN_TILE / image.shape[1]))
    enlarged = image.repeat(factor, axis=0).repeat(factor, axis=1)
    with Image.open(out) as opened:
        drawn = np.asarray(opened.convert("RGB"))[: enlarged.shape[0], : enlarged.shape[1]]
    masks = [rle_decode(obj["mask"]).repeat(factor, axis=0).repeat(factor, axis=1) for obj in record["objects"]]
    assert masks
    occupied = np.logical_or.reduce(masks)
    assert (drawn[occupied] == enlarged[occupied]).all()  # objects exactly as in the image: nothing tinted
    assert (drawn[~occupied] != enlarged[~occupied]).any(axis=-1).sum() > 0  # outlines and boxes around them
    for mask in masks:  # every object has an outline close around it
        ys, xs = np.nonzero(mask)
        around = np.zeros_like(mask)
        around[max(ys.min() - 4, 0) : ys.max() + 5, max(xs.min() - 4, 0) : xs.max() + 5] = True
        around &= ~occupied
        assert (drawn[around] != enlarged[around]).any()
