"""Files to pages: images (multi-page TIFF included) and PDFs, within page and pixel limits.

A PDF page is rendered with pypdfium2 (PDFium, the renderer of Chrome), and its embedded text layer, when it
has one, is read with exact character boxes, so a born-digital PDF needs no OCR. Every failure (missing file,
encrypted or broken PDF, too many pages, too many pixels) is one ``InputError`` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vlmkit.documents.types import Line, Word, union
from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.images import DEFAULT_MAX_PIXELS, load_image, open_image

DEFAULT_MAX_PAGES = 200
PDF_DPI = 200  # rendering resolution: text of 10 pt becomes ~28 px tall, what the recognisers read best
POINTS_PER_INCH = 72


@dataclass(frozen=True)
class SourcePage:
    """One page as found in the file: its pixels and, for a PDF with a text layer, that layer's lines."""

    number: int  # 1-based
    image: Image.Image
    text_layer: list[Line] | None = None


def open_pages(
    path: str | Path, *, max_pages: int = DEFAULT_MAX_PAGES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[SourcePage]:
    """The pages of ``path`` in order (a PDF by its extension or its ``%PDF`` signature; anything else an image)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    with path.open("rb") as handle:
        is_pdf = handle.read(5) == b"%PDF-"
    if is_pdf or path.suffix.lower() == ".pdf":
        yield from _pdf_pages(path, max_pages, max_pixels)
    else:
        yield from _image_pages(path, max_pages, max_pixels)


def _image_pages(path: Path, max_pages: int, max_pixels: int) -> Iterator[SourcePage]:
    with open_image(path) as opened:
        frames = getattr(opened, "n_frames", 1)
        if frames > max_pages:
            raise InputError(f"{path}: {frames} pages exceeds the limit of {max_pages} (--max-pages)")
        for index in range(frames):
            opened.seek(index)
            width, height = opened.size
            if width * height > max_pixels:  # checked on the frame's header, before its pixels are decoded
                raise InputError(f"{path}: page {index + 1} is {width}x{height} pixels, over the limit of {max_pixels}")
            frame = load_image(opened.copy(), max_pixels=max_pixels)
            yield SourcePage(index + 1, frame)


def _pdf_pages(path: Path, max_pages: int, max_pixels: int) -> Iterator[SourcePage]:
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise ConfigError(
            "reading PDFs needs pypdfium2, which is not installed; install it with: pip install 'vlmkit[docs]'"
        ) from None
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as error:
        encrypted = "password" in str(error).lower()
        reason = "encrypted (a password is needed)" if encrypted else f"not a readable PDF ({error})"
        raise InputError(f"{path}: {reason}") from None
    try:
        if len(document) > max_pages:
            raise InputError(f"{path}: {len(document)} pages exceeds the limit of {max_pages} (--max-pages)")
        scale = PDF_DPI / POINTS_PER_INCH
        for index in range(len(document)):
            page = document[index]
            width, height = page.get_size()
            if width * scale * height * scale > max_pixels:
                raise InputError(
                    f"{path}: page {index + 1} ({width:.0f}x{height:.0f} pt) exceeds {max_pixels} pixels "
                    f"at {PDF_DPI} dpi"
                )
            try:
                image = page.render(scale=scale).to_pil().convert("RGB")
                lines = _text_layer(page.get_textpage(), height, scale)
            except pdfium.PdfiumError as error:
                raise InputError(f"{path}: page {index + 1} cannot be rendered ({error})") from None
            yield SourcePage(index + 1, image, lines or None)
    finally:
        document.close()


def _text_layer(textpage: object, page_height: float, scale: float) -> list[Line]:
    """The page's embedded text as lines of words, boxes in rendered pixels (PDF y grows upwards)."""
    count = textpage.count_chars()  # type: ignore[attr-defined]
    lines: list[Line] = []
    words: list[Word] = []
    letters: list[str] = []
    boxes: list[tuple[float, float, float, float]] = []

    def end_word() -> None:
        if letters:
            words.append(Word("".join(letters), union(boxes)))
            letters.clear()
            boxes.clear()

    def end_line() -> None:
        end_word()
        if words:
            lines.append(Line(tuple(words)))
            words.clear()

    for index in range(count):
        char = textpage.get_text_range(index, 1)  # type: ignore[attr-defined]
        if char in ("\r", "\n"):
            end_line()
        elif not char or char.isspace():
            end_word()
        else:
            left, bottom, right, top = textpage.get_charbox(index)  # type: ignore[attr-defined]
            letters.append(char)
            boxes.append((left * scale, (page_height - top) * scale, right * scale, (page_height - bottom) * scale))
    end_line()
    return lines
