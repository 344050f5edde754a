"""The simulated scan: boxes follow the skew, the knobs are the only thing that changes a page, the config
validates, and a missing matplotlib is one line naming the extra."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vlmkit.data.docworld import DocWorldConfig, Scan, generate_split, make_page
from vlmkit.data.docworld import fonts as fonts_module
from vlmkit.data.docworld.degrade import degrade
from vlmkit.documents.types import Box, Document, Page
from vlmkit.errors import ConfigError

SKEWED = DocWorldConfig(max_rotation=6)
DARK = 100  # after lighting (at most -20%), noise and JPEG, white paper stays far above this


def _page(record: dict) -> Page:
    return Document.from_dict(record["document"]).pages[0]


def _inside(pixels: np.ndarray, boxes: list[Box]) -> float:
    """The fraction of the image's dark pixels that lie in the union of ``boxes``."""
    mask = np.zeros(pixels.shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, int(y0)) : int(np.ceil(y1)), max(0, int(x0)) : int(np.ceil(x1))] = True
    dark = pixels < DARK
    return float(dark[mask].sum() / dark.sum())


def test_boxes_follow_the_skew_on_a_degraded_page() -> None:
    skewed = []
    for index in range(12):
        data, record = make_page(SKEWED, 0, "train", index, "x.jpg")
        if abs(record["meta"]["rotation"]) > 3:
            skewed.append((index, data, record))
    assert len(skewed) >= 3
    for index, data, record in skewed[:3]:
        assert data[:2] == b"\xff\xd8"  # a JPEG, at the quality the meta names
        assert 60 <= record["meta"]["jpeg_quality"] <= 95
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
        page = _page(record)
        assert pixels.shape == (page.height, page.width)
        assert _inside(pixels, [w.box for w in page.words]) >= 0.95
        # the same page's unskewed boxes, centred on the grown canvas, miss much of the ink: the check can fail
        _, flat = make_page(DocWorldConfig(clean=True), 0, "train", index, "x.png")
        flat_page = _page(flat)
        assert flat_page.text == page.text  # content and scan are separate streams
        dx, dy = (page.width - flat_page.width) / 2, (page.height - flat_page.height) / 2
        unmoved = [(x0 + dx, y0 + dy, x1 + dx, y1 + dy) for x0, y0, x1, y1 in (w.box for w in flat_page.words)]
        assert _inside(pixels, unmoved) < 0.8


def test_rotation_moves_a_box_onto_its_ink() -> None:
    image = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(image).rectangle((40, 30, 119, 59), fill=0)  # covers pixels 40..119 x 30..59
    box = (40.0, 30.0, 120.0, 60.0)
    for degrees in (10.0, -7.5):
        moved, move = degrade(image, Scan(rotation=degrees), np.random.default_rng(0))
        x0, y0, x1, y1 = move(box)
        ys, xs = np.nonzero(np.asarray(moved) < 128)
        ink = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert moved.size[0] > 300 and moved.size[1] > 200
        assert np.allclose((x0, y0, x1, y1), ink, atol=1.5), (degrees, (x0, y0, x1, y1), ink)


def test_a_scan_with_every_knob_at_zero_is_the_clean_page() -> None:
    still = DocWorldConfig(max_rotation=0, blur=0, noise=0, lighting=0, jpeg_quality=None)
    assert still.image_extension == ".png" and SKEWED.image_extension == ".jpg"
    for index in range(3):
        clean = make_page(DocWorldConfig(clean=True), 4, "test", index, "p.png")
        same = make_page(still, 4, "test", index, "p.png")
        assert same[0] == clean[0]
        assert same[1]["document"] == clean[1]["document"]
        scanned = make_page(DocWorldConfig(), 4, "test", index, "p.png")
        assert scanned[0] != clean[0] and scanned[1]["qa"] == clean[1]["qa"]
        assert make_page(DocWorldConfig(), 4, "test", index, "p.png") == scanned


def test_config_validates_and_round_trips() -> None:
    config = DocWorldConfig(page_width=640, kinds=("receipt", "table"), jpeg_quality=(70, 80))
    assert DocWorldConfig.from_dict(config.to_dict()) == config
    for bad in (
        {"kinds": ("poster",)},
        {"page_width": 100},
        {"text_size": (16, 12)},
        {"jpeg_quality": (95, 60)},
        {"max_rotation": 45},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            DocWorldConfig(**bad)
    with pytest.raises(ConfigError, match="unknown field"):
        DocWorldConfig.from_dict({"page_widht": 800})


def _overlapping(page: Page) -> list[tuple[str, str]]:
    boxes = np.array([w.box for w in page.words])
    x0, y0, x1, y1 = (boxes[:, None, k] for k in range(4))
    clash = (np.minimum(x1, x1.T) - np.maximum(x0, x0.T) > 1) & (np.minimum(y1, y1.T) - np.maximum(y0, y0.T) > 1)
    return [(page.words[i].text, page.words[j].text) for i, j in np.argwhere(np.triu(clash, k=1))]


def test_pages_too_crowded_for_their_text_size_are_redrawn_smaller() -> None:
    """At the largest text the layouts overflow; those pages come out smaller, with every word on the page
    and none over another, while pages at the largest default size keep it."""
    crowded = DocWorldConfig(page_width=400, text_size=(32, 32), clean=True)
    sizes = []
    for index in range(8):
        _, record = make_page(crowded, 0, "train", index, "i.png")
        page = _page(record)
        assert all(w.box[0] >= 0 and w.box[2] <= page.width and w.box[3] <= page.height for w in page.words)
        assert not _overlapping(page), record["meta"]["kind"]
        sizes.append(record["meta"]["cap_height"])
    assert max(sizes) < 16  # 32 px at 800 wide is 16 px at 400
    for index in range(8):
        _, record = make_page(DocWorldConfig(clean=True, text_size=(16, 16)), 0, "train", index, "i.png")
        assert record["meta"]["cap_height"] == 16 and not _overlapping(_page(record))


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    fonts_module.font_dir.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"install it with: pip install 'vlmkit\[docs\]'"):
            generate_split(tmp_path / "out", DocWorldConfig(), "train", 2, workers=1, progress=False)
    finally:
        fonts_module.font_dir.cache_clear()
    assert not (tmp_path / "out").exists()
