"""OCR engines behind one interface: an image in, recognised lines of words with boxes out.

``ppocr`` (PP-OCRv4 detection and recognition, ONNX weights shipped by ``rapidocr-onnxruntime``, run with
onnxruntime) is the default; ``tesseract`` runs the Tesseract binary when it is installed. Engines return
lines in any order and in the coordinates of the image they were given; ``documents.layout`` orders them and
``documents.enhance`` maps them back onto the page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Protocol

from PIL import Image

from vlmkit.documents.types import Line
from vlmkit.errors import ConfigError


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image) -> list[Line]:
        """The text lines found in ``image`` (RGB or L), boxes in its pixels."""
        ...


def _ppocr() -> OcrEngine:
    from vlmkit.documents.engines.ppocr import PPOCREngine

    return PPOCREngine()


def _tesseract() -> OcrEngine:
    from vlmkit.documents.engines.tesseract import TesseractEngine

    return TesseractEngine()


ENGINES: dict[str, Callable[[], OcrEngine]] = {"ppocr": _ppocr, "tesseract": _tesseract}
DEFAULT_ENGINE = "ppocr"


@cache
def get_engine(name: str = DEFAULT_ENGINE) -> OcrEngine:
    """The engine called ``name``, built once per process (loading ONNX sessions costs ~0.3 s)."""
    if name not in ENGINES:
        raise ConfigError(f"--engine: unknown OCR engine {name!r}; expected one of {', '.join(ENGINES)}")
    return ENGINES[name]()
