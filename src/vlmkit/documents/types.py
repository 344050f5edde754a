"""What reading a document gives back: pages of lines of words, each with a box in page pixels.

One schema serves three jobs: the OCR engines fill it, DocWorld writes its exact ground truth in it, and
the metrics compare the two. ``Document.to_dict()`` is the JSON that ``vlmkit read --json`` prints and that a
DocWorld record carries under ``document``; ``from_dict`` reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vlmkit.errors import InputError

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in page pixels


def _box(value: Any, where: str) -> Box:
    if not isinstance(value, (list, tuple)) or len(value) != 4 or not all(isinstance(v, (int, float)) for v in value):
        raise InputError(f"{where}: expected a box [x0, y0, x1, y1] of numbers, got {value!r}")
    x0, y0, x1, y1 = (float(v) for v in value)
    return (x0, y0, x1, y1)


def union(boxes: list[Box]) -> Box:
    """The smallest box holding all of ``boxes`` (a line's box from its words)."""
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


@dataclass(frozen=True)
class Word:
    text: str
    box: Box
    confidence: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "box": [round(v, 1) for v in self.box], "confidence": round(self.confidence, 4)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Word:
        return cls(str(data["text"]), _box(data.get("box"), f"{where}.box"), float(data.get("confidence", 1.0)))


@dataclass(frozen=True)
class Line:
    """Words left to right; ``text`` joins them with single spaces."""

    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)

    @property
    def box(self) -> Box:
        return union([word.box for word in self.words])

    @property
    def confidence(self) -> float:
        return min(word.confidence for word in self.words)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "box": [round(v, 1) for v in self.box],
            "confidence": round(self.confidence, 4),
            "words": [word.to_dict() for word in self.words],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Line:
        words = data.get("words")
        if not isinstance(words, list) or not words:
            raise InputError(f"{where}.words: expected a non-empty list of words")
        return cls(tuple(Word.from_dict(w, f"{where}.words[{i}]") for i, w in enumerate(words)))


@dataclass(frozen=True)
class Page:
    """One page: its size in pixels, its lines in reading order, and where the text came from
    (``"text-layer"`` for a PDF's embedded text, else the OCR engine's name, or ``"truth"`` for DocWorld)."""

    width: int
    height: int
    lines: tuple[Line, ...]
    source: str

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def words(self) -> list[Word]:
        return [word for line in self.lines for word in line.words]

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "source": self.source,
            "lines": [line.to_dict() for line in self.lines],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "page") -> Page:
        lines = data.get("lines", [])
        if not isinstance(lines, list):
            raise InputError(f"{where}.lines: expected a list")
        return cls(
            int(data["width"]),
            int(data["height"]),
            tuple(Line.from_dict(line, f"{where}.lines[{i}]") for i, line in enumerate(lines)),
            str(data.get("source", "")),
        )


@dataclass(frozen=True)
class Document:
    path: str
    pages: tuple[Page, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        """All pages in order, separated by a form feed (as ``pdftotext`` does)."""
        return "\f".join(page.text for page in self.pages)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "pages": [page.to_dict() for page in self.pages]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "document") -> Document:
        pages = data.get("pages")
        if not isinstance(pages, list):
            raise InputError(f"{where}.pages: expected a list of pages")
        parsed = tuple(Page.from_dict(page, f"{where}.pages[{i}]") for i, page in enumerate(pages))
        return cls(str(data.get("path", "")), parsed)
