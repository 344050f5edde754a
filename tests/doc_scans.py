"""Test pages made here: a paragraph rendered with a real font, optionally turned, blurred, noised and JPEG'd;
a born-digital PDF with a text layer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog near the river bank.\n"
    "Invoice number 4471 was paid on the third of March by Anna Smith.\n"
    "Please return the signed form to the office before Friday noon.\n"
    "Total due for seven items is 128.50 including all local taxes."
)


def font(size: int = 22) -> ImageFont.FreeTypeFont:
    import matplotlib

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


def clean_page(text: str = PARAGRAPH, size: int = 22, margin: int = 40) -> Image.Image:
    lines = text.splitlines()
    face = font(size)
    width = max(round(face.getlength(line)) for line in lines) + 2 * margin
    page = Image.new("L", (width, margin * 2 + len(lines) * round(size * 1.6)), 255)
    draw = ImageDraw.Draw(page)
    for index, line in enumerate(lines):
        draw.text((margin, margin + index * round(size * 1.6)), line, fill=0, font=face)
    return page


def scanned_page(text: str = PARAGRAPH, angle: float = 2.5, seed: int = 0) -> Image.Image:
    """The clean page turned by ``angle`` degrees, under a lighting gradient, blurred, noised and JPEG'd at 70."""
    page = clean_page(text).rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(0.8))
    pixels = np.asarray(page, np.float32)
    gradient = np.linspace(1.0, 0.6, pixels.shape[1])[None, :]  # a lamp on the left
    noise = np.random.default_rng(seed).normal(0, 12, pixels.shape)
    pixels = np.clip(pixels * gradient + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=70)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


LINES = ["Quarterly report 2026", "Revenue grew by 12 percent"]


def write_text_pdf(path, lines=LINES, pages: int = 1) -> None:
    """A born-digital PDF (matplotlib, TrueType fonts embedded: a real text layer) of ``lines`` per page."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        for _ in range(pages):
            figure = plt.figure(figsize=(4, 3))
            for index, line in enumerate(lines):
                figure.text(0.1, 0.8 - 0.2 * index, line, fontsize=14)
            pdf.savefig(figure)
            plt.close(figure)
