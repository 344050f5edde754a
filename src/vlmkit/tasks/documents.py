"""Reading documents: a file in, its text in reading order out, with a box for every word.

``read(path)`` takes images (multi-page TIFF too) and PDFs. A PDF page with a text layer is taken as it is
(exact, no OCR); any other page goes through ``documents.enhance`` (flat lighting, deskew) and an OCR engine,
and is read a second time, upscaled, when its text lines come out smaller than a recogniser reads well.
Boxes are always in the pixels of the page as given (a PDF page as rendered at ``documents.pages.PDF_DPI``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from vlmkit.documents.engines import DEFAULT_ENGINE, get_engine
from vlmkit.documents.enhance import PageGeometry, flatten_lighting, resize, straighten, upscale_for
from vlmkit.documents.layout import reading_order
from vlmkit.documents.pages import DEFAULT_MAX_PAGES, SourcePage, open_pages
from vlmkit.documents.types import Document, Page
from vlmkit.errors import InputError
from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import with_image, with_page_text
from vlmkit.processing.images import DEFAULT_MAX_PIXELS
from vlmkit.tasks.chat import ask, chat_encoder


def read(path: str | Path, **options: Any) -> Document:
    """Every page of ``path`` read (``options`` as ``read_pages``: engine, enhance, use_text_layer, limits)."""
    return Document(str(path), tuple(page for _, page in read_pages(path, **options)))


def read_pages(
    path: str | Path,
    *,
    engine: str = DEFAULT_ENGINE,
    enhance: bool = True,
    use_text_layer: bool = True,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[Image.Image, Page]]:
    """The pages of ``path`` one at a time, each with the image its boxes refer to (to draw on, or to index);
    ``use_text_layer=False`` OCRs born-digital PDF pages too."""
    for source in open_pages(path, max_pages=max_pages, max_pixels=max_pixels):
        yield source.image, read_source(source, engine=engine, enhance=enhance, use_text_layer=use_text_layer)


def read_source(
    source: SourcePage, *, engine: str = DEFAULT_ENGINE, enhance: bool = True, use_text_layer: bool = True
) -> Page:
    """One page as found in its file: its text layer when it has one (and ``use_text_layer``), else OCR."""
    if use_text_layer and source.text_layer:
        width, height = source.image.size
        return Page(width, height, tuple(reading_order(source.text_layer)), "text-layer")
    return read_image(source.image, engine=engine, enhance=enhance)


def read_image(image: Image.Image, *, engine: str = DEFAULT_ENGINE, enhance: bool = True) -> Page:
    """One page image read by ``engine``; boxes in ``image``'s pixels."""
    ocr = get_engine(engine)
    work: Image.Image = image
    geometry = PageGeometry(image.size, image.size)
    if enhance:
        work, geometry = straighten(flatten_lighting(image), image.size)
    lines = ocr.read(work)
    scale = upscale_for(lines) if enhance else 1.0
    if scale > 1.0:
        lines = ocr.read(resize(work, scale))
        geometry = dataclasses.replace(geometry, scale=scale)
    # ordered while upright: on a skewed page the rows of a table slope and would not group
    lines = geometry.lines_to_page(reading_order(lines))
    return Page(image.width, image.height, tuple(lines), ocr.name)


def ask_document(
    model: VisionLanguageModel,
    path: str | Path,
    question: str,
    *,
    page: int = 1,
    engine: str = DEFAULT_ENGINE,
    config: GenerationConfig | None = None,
) -> str:
    """A VLM's answer about page ``page`` of a document, OCR-augmented: the page image and its text (text
    layer or OCR) in the prompt, in the format ``instruct --page-text`` trains with."""
    config = config or GenerationConfig()
    for source in open_pages(path):
        if source.number == page:  # only this page is read: the ones before it are rendered, not OCR'd
            lines = [line.text for line in read_source(source, engine=engine).lines]
            return ask(model, source.image, page_text_prompt(model, question, lines, config.max_new_tokens), config)
    raise InputError(f"{path}: has no page {page}")


def page_text_prompt(model: VisionLanguageModel, question: str, lines: list[str], answer_tokens: int) -> str:
    """``with_page_text`` of as many of the page's lines as fit the decoder's context with the image and
    ``answer_tokens`` to spare (the last lines go first: a long page is cut, not refused)."""
    encoder = chat_encoder(model)
    budget = model.decoder.config.max_positions - answer_tokens

    def length(kept: int) -> int:
        text = with_image(with_page_text(question, lines[:kept]))
        return len(encoder.encode([{"role": "user", "content": text}], add_generation_prompt=True).input_ids)

    low, high = 0, len(lines)  # the most lines that fit: binary search, each step one encoding
    if length(high) <= budget:
        return with_page_text(question, lines)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if length(middle) <= budget else (low, middle - 1)
    return with_page_text(question, lines[:low])
