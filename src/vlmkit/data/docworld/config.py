"""The generator config: every knob that changes the bytes DocWorld writes.

A dataset folder carries its config in ``docworld.json`` so that anyone can regenerate it byte-identically;
that is why this is one flat frozen dataclass with a JSON round trip, and why ``GENERATOR_VERSION`` goes up
whenever the same config would start producing different bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from vlmkit.data.generator_config import GeneratorConfig

GENERATOR_VERSION = 2  # 2: records carry a caption
GENERATOR = f"docworld-{GENERATOR_VERSION}"
"""What ``meta.generator`` says: the name and the version that made a page."""

KINDS: tuple[str, ...] = ("receipt", "invoice", "form", "letter", "table")

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
"""Split name -> code mixed into every page's seed, so splits never share pages."""

REFERENCE_WIDTH = 800
"""``text_size`` is given for pages this wide; other widths scale every size, so layouts keep their shape."""


@dataclass(frozen=True)
class DocWorldConfig(GeneratorConfig):
    """What a DocWorld page looks like and how hard the scan makes it to read.

    Attributes:
        page_width: width of letters, forms, invoices and tables in pixels (height: A4's 1.414 times that);
            receipts are 0.6 of it wide and as tall as their contents.
        kinds: document kinds to draw from (subset of ``KINDS``); each page picks one uniformly.
        text_size: (smallest, largest) cap height of body text in pixels at ``page_width`` 800; each page
            draws one, headings are larger. 12-16 px is small print that stays readable after a rough scan.
        clean: no degradation at all: the page is saved exactly as drawn, as PNG (the knobs below are ignored).
        max_rotation: skew, drawn uniformly in +-this many degrees (the canvas grows, filled white).
        blur: Gaussian blur radius in pixels, drawn uniformly in [0, blur].
        noise: pixel noise standard deviation in 0-255 units, drawn uniformly in [0, noise].
        lighting: uneven lighting: the darkest corner loses up to this fraction of its brightness.
        jpeg_quality: (lowest, highest) JPEG quality the page is saved at, drawn uniformly; None saves PNG.
    """

    LABEL: ClassVar[str] = "DocWorld"

    page_width: int = REFERENCE_WIDTH
    kinds: tuple[str, ...] = KINDS
    text_size: tuple[int, int] = (12, 16)
    clean: bool = False
    max_rotation: float = 2.0
    blur: float = 0.8
    noise: float = 6.0
    lighting: float = 0.2
    jpeg_quality: tuple[int, int] | None = (60, 95)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "text_size", tuple(self.text_size))
        if self.jpeg_quality is not None:
            object.__setattr__(self, "jpeg_quality", tuple(self.jpeg_quality))
        self.check(400 <= self.page_width <= 3200, "page_width", "an integer in 400..3200", self.page_width)
        self.check(
            len(self.kinds) >= 1 and set(self.kinds) <= set(KINDS) and len(set(self.kinds)) == len(self.kinds),
            "kinds",
            f"1+ distinct names from {KINDS}",
            self.kinds,
        )
        sizes = self.text_size
        ok = len(sizes) == 2 and 8 <= sizes[0] <= sizes[1] <= 32
        self.check(ok, "text_size", "(smallest, largest) with 8 <= smallest <= largest <= 32", sizes)
        self.check(isinstance(self.clean, bool), "clean", "true or false", self.clean)
        self.check(0 <= self.max_rotation <= 10, "max_rotation", "degrees in 0..10", self.max_rotation)
        self.check(0 <= self.blur <= 3, "blur", "a radius in 0..3 pixels", self.blur)
        self.check(0 <= self.noise <= 40, "noise", "a standard deviation in 0..40", self.noise)
        self.check(0 <= self.lighting <= 0.6, "lighting", "a fraction in 0..0.6", self.lighting)
        if self.jpeg_quality is not None:
            ok = len(self.jpeg_quality) == 2 and 10 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100
            self.check(
                ok, "jpeg_quality", "(lowest, highest) with 10 <= lowest <= highest <= 100, or null", self.jpeg_quality
            )

    @property
    def image_extension(self) -> str:
        """The file extension: ".jpg" when the last step is a JPEG encode (the file is that encode), else ".png"."""
        return ".png" if self.clean or self.jpeg_quality is None else ".jpg"
