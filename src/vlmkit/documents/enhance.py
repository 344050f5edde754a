"""What real scans need before OCR, and the way back: flat lighting, upright lines, text big enough to read.

Each step is cheap and safe on a clean page (white stays white, a straight page stays straight, large text is
left alone). ``prepare`` returns the image the engine reads and a ``PageGeometry`` that maps the engine's boxes
back onto the original page, so boxes always refer to the file the user gave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from vlmkit.documents.types import Box, Line, Word

MAX_SKEW_DEGREES = 5.0
SKEW_STEP_DEGREES = 0.25
SKEW_ANALYSIS_WIDTH = 800
# a text line under this many pixels is upscaled to about this height (recognisers are trained near 32-48 px)
MIN_LINE_HEIGHT = 28.0
MAX_UPSCALE = 4.0
MIN_UPSCALE = 1.3  # a smaller factor is not worth reading the page twice (measured: DocWorld CER unchanged)


def flatten_lighting(image: Image.Image) -> Image.Image:
    """Grey page divided by its own background (a blurred max filter: the paper's brightness under the ink),
    then stretched, so a shadow or a lamp's gradient no longer hides lines of text."""
    grey = image.convert("L")
    radius = max(8, min(grey.size) // 30)
    background = grey.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.GaussianBlur(radius))
    ratio = np.asarray(grey, np.float32) / np.maximum(np.asarray(background, np.float32), 1.0)
    ratio = np.clip(ratio, 0.0, 1.0)
    low = float(np.percentile(ratio, 1))
    if low >= 0.99:  # a blank page
        return grey
    return Image.fromarray((np.clip((ratio - low) / (1.0 - low), 0.0, 1.0) * 255).astype(np.uint8))


def estimate_skew(image: Image.Image) -> float:
    """The page's rotation in degrees (counter-clockwise positive, PIL's convention): the angle whose
    horizontal projection of the ink is sharpest, as text rows are then separated by empty rows."""
    grey = image.convert("L")
    if grey.width > SKEW_ANALYSIS_WIDTH:
        grey = grey.resize((SKEW_ANALYSIS_WIDTH, max(1, round(grey.height * SKEW_ANALYSIS_WIDTH / grey.width))))
    pixels = np.asarray(grey, np.float32)
    ink = Image.fromarray(((pixels < min(pixels.mean() - pixels.std(), 160)) * 255).astype(np.uint8))
    best_angle, best_score = 0.0, -1.0
    steps = round(MAX_SKEW_DEGREES / SKEW_STEP_DEGREES)
    for step in sorted(range(-steps, steps + 1), key=abs):  # smaller angles first: a tie keeps the page as is
        angle = step * SKEW_STEP_DEGREES
        rows = np.asarray(ink.rotate(-angle, resample=Image.Resampling.NEAREST), np.float32).sum(axis=1)
        score = float(np.square(np.diff(rows)).sum())
        if score > best_score * (1 + 1e-6):
            best_angle, best_score = angle, score
    return best_angle


@dataclass(frozen=True)
class PageGeometry:
    """How the engine's image relates to the page: rotated by ``-angle`` degrees about the centre (expanding the
    canvas), then scaled by ``scale``. ``to_page`` undoes both for a box."""

    page_size: tuple[int, int]
    rotated_size: tuple[int, int]
    angle: float = 0.0
    scale: float = 1.0

    def to_page(self, box: Box) -> Box:
        x0, y0, x1, y1 = (v / self.scale for v in box)
        if self.angle == 0.0:
            return _clip((x0, y0, x1, y1), self.page_size)
        # the engine's image is the page turned by -angle; turning its points by +angle brings them back
        theta = math.radians(self.angle)
        cos, sin = math.cos(theta), math.sin(theta)
        rx, ry = self.rotated_size[0] / 2, self.rotated_size[1] / 2
        px, py = self.page_size[0] / 2, self.page_size[1] / 2
        xs, ys = [], []
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
            dx, dy = x - rx, y - ry
            xs.append(px + dx * cos + dy * sin)
            ys.append(py - dx * sin + dy * cos)
        return _clip((min(xs), min(ys), max(xs), max(ys)), self.page_size)

    def lines_to_page(self, lines: list[Line]) -> list[Line]:
        return [Line(tuple(Word(w.text, self.to_page(w.box), w.confidence) for w in line.words)) for line in lines]


def _clip(box: Box, size: tuple[int, int]) -> Box:
    width, height = size
    return (
        min(max(box[0], 0.0), width),
        min(max(box[1], 0.0), height),
        min(max(box[2], 0.0), width),
        min(max(box[3], 0.0), height),
    )


def straighten(image: Image.Image, page_size: tuple[int, int]) -> tuple[Image.Image, PageGeometry]:
    """The page turned upright (white corners) and its geometry; an unskewed page is returned as is."""
    angle = estimate_skew(image)
    if angle == 0.0:
        return image, PageGeometry(page_size, page_size)
    fill = 255 if image.mode == "L" else (255, 255, 255)
    upright = image.rotate(-angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    return upright, PageGeometry(page_size, upright.size, angle)


def upscale_for(lines: list[Line]) -> float:
    """The factor that brings this page's median text line to MIN_LINE_HEIGHT (1.0 when it is tall enough, or
    would grow by less than MIN_UPSCALE)."""
    heights = [line.box[3] - line.box[1] for line in lines]
    if not heights:
        return 1.0
    median = float(np.median(heights))
    if median <= 0 or median * MIN_UPSCALE > MIN_LINE_HEIGHT:
        return 1.0
    return min(MAX_UPSCALE, MIN_LINE_HEIGHT / median)


def resize(image: Image.Image, scale: float) -> Image.Image:
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)
