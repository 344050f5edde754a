"""The indexer's reader: one file in, its items out (pixels to embed, facts and text to store).

It runs in the worker processes of a torch ``DataLoader``, so decoding, rendering and OCR overlap with the
model instead of adding to it. What a file gives:

- an image: one item; its text only with ``ocr`` (OCR costs ~1 s of CPU an image, so it is asked for);
- a video: one item per frame sampled every ``video_every`` seconds (at most ``max_frames``);
- a document (a PDF, or a TIFF of several pages): one item per page, at most ``max_pages`` of them, always
  read: a PDF page's text layer as it is, any other page by OCR (``vlmkit.tasks.documents``).

A file the index already holds whose content hash is unchanged (a ``touch``, a copy that lost its mtime) is
hashed and not decoded, rendered or OCR'd again: its stored rows stay (``Decoded.unchanged``).

Whatever goes wrong with one file (a decoder's error, an encrypted PDF, too many pages) is that file's
``Decoded.error``, never the run's.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vlmkit.documents.engines import DEFAULT_ENGINE, ENGINES
from vlmkit.documents.pages import DEFAULT_MAX_PAGES
from vlmkit.documents.types import Page
from vlmkit.errors import InputError, VlmkitError
from vlmkit.processing.images import DEFAULT_MAX_PIXELS, ImagePreprocessor, load_image, open_image
from vlmkit.search.metadata import ItemMeta
from vlmkit.search.scan import DOCUMENT_EXTENSIONS, SourceFile
from vlmkit.search.texts import TextLine
from vlmkit.search.video import is_video, sample_frames
from vlmkit.tasks.documents import read_image, read_pages

_HASH_CHUNK = 1 << 20
_TIFF = (".tif", ".tiff")
MISSING_PDFIUM = "PDFs need pypdfium2, which is not installed: pip install 'vlmkit[docs]'"
MISSING_OCR = "--ocr needs rapidocr-onnxruntime, which is not installed: pip install 'vlmkit[docs]'"


@dataclass(frozen=True)
class ReadOptions:
    """What the reader takes from each file; ``max_pixels`` (None: no limit) bounds an image, a frame or a page."""

    video_every: float = 2.0
    max_frames: int | None = 600
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    ocr: bool = False
    max_pages: int = DEFAULT_MAX_PAGES
    engine: str = DEFAULT_ENGINE  # the OCR engine of images (with ``ocr``) and of scanned document pages

    def __post_init__(self) -> None:
        if self.max_pages < 1:
            raise InputError(f"--max-pages must be >= 1; got {self.max_pages}")
        if self.engine not in ENGINES:
            raise InputError(f"--engine: unknown OCR engine {self.engine!r}; expected one of {', '.join(ENGINES)}")


@dataclass
class Decoded:
    """One file after the reader: its hash, its items with their pixels, or why it could not be read."""

    file: SourceFile
    sha256: str = ""
    pixels: torch.Tensor | None = None  # (items, 3, H, W)
    items: list[ItemMeta] = field(default_factory=list)
    error: str | None = None
    unchanged: bool = False  # same content as the index holds: nothing decoded, the stored rows stay


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_pdf(path: str) -> bool:
    return Path(path).suffix.lower() in DOCUMENT_EXTENSIONS


def _lines(page: Page) -> tuple[TextLine, ...]:
    return tuple(TextLine(line.text, line.box) for line in page.lines)


class FileReader(Dataset[Decoded]):
    """Reads one file per item; runs inside DataLoader workers."""

    def __init__(
        self,
        files: list[SourceFile],
        processor: ImagePreprocessor,
        options: ReadOptions,
        indexed: Mapping[str, str] | None = None,
    ) -> None:
        """``indexed``: the stored content hash of each file the index already holds."""
        self.files = files
        self.processor = processor
        self.options = options
        self.indexed = dict(indexed or {})

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Decoded:
        file = self.files[index]
        try:
            if file.path in self.indexed and (sha := sha256_file(file.path)) == self.indexed[file.path]:
                return Decoded(file, sha, unchanged=True)
            if is_video(file.path):
                return self._video(file)
            return self._document(file) if self._is_document(file.path) else self._image(file)
        except VlmkitError as error:  # an unreadable file, or an extra it needs that is missing
            return Decoded(file, error=str(error))
        except OSError as error:
            return Decoded(file, error=f"{file.path}: cannot read ({error.strerror or error})")
        except Exception as error:  # a decoder's own error on this one file; never the run's
            reason = " ".join(str(error).split())[:200] or "no details"
            return Decoded(file, error=f"{file.path}: cannot decode ({type(error).__name__}: {reason})")

    @staticmethod
    def _is_document(path: str) -> bool:
        if is_pdf(path):
            return True
        if not path.lower().endswith(_TIFF):
            return False
        with open_image(path) as image:  # the header only
            return getattr(image, "n_frames", 1) > 1

    def _item(self, file: SourceFile, sha256: str, size: tuple[int, int], **fields) -> ItemMeta:
        return ItemMeta(file.path, sha256, file.size, file.mtime, size[0], size[1], **fields)

    def _image(self, file: SourceFile) -> Decoded:
        data = Path(file.path).read_bytes()
        try:
            image = load_image(data, max_pixels=self.options.max_pixels)
        except InputError as error:  # its message names "image bytes (N B)"; name the file instead
            raise InputError(f"{file.path}: {str(error).split(': ', 1)[-1]}") from None
        pixels = self.processor([image], max_pixels=None)
        lines = _lines(read_image(image, engine=self.options.engine)) if self.options.ocr else ()
        sha = hashlib.sha256(data).hexdigest()
        return Decoded(file, sha, pixels, [self._item(file, sha, image.size, lines=lines)])

    def _video(self, file: SourceFile) -> Decoded:
        sha = sha256_file(file.path)
        frames = list(sample_frames(file.path, self.options.video_every, self.options.max_frames))
        if not frames:
            return Decoded(file, error=f"{file.path}: no frames could be decoded")
        pixels = self.processor([image for _, image in frames], max_pixels=None)
        items = [self._item(file, sha, frames[0][1].size, frame_time=t) for t, _ in frames]
        return Decoded(file, sha, pixels, items)

    def _document(self, file: SourceFile) -> Decoded:
        """Page by page, so only one rendered page is held at a time (one at 200 dpi is ~11 MB)."""
        sha = sha256_file(file.path)
        limit = self.options.max_pixels if self.options.max_pixels is not None else sys.maxsize
        pixels, items = [], []
        pages = read_pages(file.path, engine=self.options.engine, max_pages=self.options.max_pages, max_pixels=limit)
        for number, (image, page) in enumerate(pages, start=1):
            pixels.append(self.processor([image], max_pixels=None))
            items.append(self._item(file, sha, image.size, page=number, lines=_lines(page)))
        if not items:
            return Decoded(file, error=f"{file.path}: the document has no pages")
        return Decoded(file, sha, torch.cat(pixels), items)
