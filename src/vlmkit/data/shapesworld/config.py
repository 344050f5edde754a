"""The generator config: every knob that changes the bytes ShapesWorld writes.

A dataset folder carries its config in ``shapesworld.json`` so that anyone can regenerate it
byte-identically; that is why this is one flat dataclass with a JSON round trip and why
``GENERATOR_VERSION`` goes up whenever the same config would start producing different bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from vlmkit.data.generator_config import GeneratorConfig

GENERATOR_VERSION = 3

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "hexagon", "cross", "heart")
"""Shapes chosen to stay distinct under +-20 degree rotation (no square-vs-diamond confusion)."""

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (245, 140, 25),
    "yellow": (240, 220, 45),
    "green": (45, 170, 60),
    "cyan": (45, 205, 220),
    "blue": (45, 85, 225),
    "purple": (145, 65, 205),
    "pink": (250, 140, 200),
    "brown": (140, 85, 40),
    "white": (240, 240, 240),
}
"""Named colours, far enough apart that ``color_jitter`` never makes one look like another, all of them
readable on the dark neutral backgrounds the renderer draws."""

SIZES: dict[str, float] = {"small": 0.15, "medium": 0.22, "large": 0.31}
"""Diameter of the equal-area circle, as a fraction of the image side. Every shape is scaled to the
area of that circle, so "larger" means larger area whatever the shapes (ratio ~2x between steps)."""

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2, "compositional": 3}
"""Split name -> code mixed into every image's seed, so splits never share images."""

BACKGROUNDS = ("plain", "textured", "mixed")

DEFAULT_HELD_OUT: tuple[tuple[str, str], ...] = (
    ("red", "triangle"),
    ("blue", "star"),
    ("green", "heart"),
    ("yellow", "cross"),
    ("purple", "hexagon"),
)


@dataclass(frozen=True)
class ShapesWorldConfig(GeneratorConfig):
    """What a ShapesWorld image looks like and which annotations it gets.

    Attributes:
        image_size: side of the square images in pixels (64 for tiny models, 224 for standard ones).
        min_objects: fewest objects per image.
        max_objects: most objects per image; 1 gives clean single-object images for zero-shot tests.
        shapes: shape vocabulary (subset of ``SHAPES``).
        colors: colour vocabulary (subset of ``COLORS``).
        held_out: (colour, shape) pairs that appear only in the ``compositional`` split, never in
            train/val/test images or questions.
        background: "plain" (flat grey), "textured" (gradient + pixel noise) or "mixed" (either, per image).
        noise_std: pixel noise standard deviation of textured backgrounds, in 0-255 units.
        color_jitter: each object's RGB is its named colour plus a uniform offset in +-this per channel.
        max_rotation: objects are rotated uniformly in +-this many degrees.
        max_overlap: the largest fraction of an object's area that later-drawn objects may hide.
        supersample: objects are drawn this many times larger and box-filtered down (antialiasing).
        position_margin: box centres must differ by this fraction of the image side before a
            relation (left of, above...) is stated; nearer pairs are never asked about.
        num_choices: options per multiple-choice question (2-5; yes/no questions always get 2).
        questions_per_type: most questions of each type per image.
    """

    LABEL: ClassVar[str] = "ShapesWorld"

    image_size: int = 64
    min_objects: int = 1
    max_objects: int = 6
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[str, ...] = tuple(COLORS)
    held_out: tuple[tuple[str, str], ...] = DEFAULT_HELD_OUT
    background: str = "mixed"
    noise_std: float = 6.0
    color_jitter: int = 12
    max_rotation: float = 20.0
    max_overlap: float = 0.15
    supersample: int = 4
    position_margin: float = 0.08
    num_choices: int = 4
    questions_per_type: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", tuple(self.shapes))
        object.__setattr__(self, "colors", tuple(self.colors))
        object.__setattr__(self, "held_out", tuple((str(c), str(s)) for c, s in self.held_out))
        self.check(16 <= self.image_size <= 1024, "image_size", "an integer in 16..1024", self.image_size)
        self.check(
            1 <= self.min_objects <= self.max_objects <= 12,
            "min_objects/max_objects",
            "1 <= min_objects <= max_objects <= 12",
            (self.min_objects, self.max_objects),
        )
        self.check(
            len(self.shapes) >= 2 and set(self.shapes) <= set(SHAPES) and len(set(self.shapes)) == len(self.shapes),
            "shapes",
            f"2+ distinct names from {SHAPES}",
            self.shapes,
        )
        self.check(
            len(self.colors) >= 2 and set(self.colors) <= set(COLORS) and len(set(self.colors)) == len(self.colors),
            "colors",
            f"2+ distinct names from {tuple(COLORS)}",
            self.colors,
        )
        for color, shape in self.held_out:
            self.check(
                color in self.colors and shape in self.shapes,
                "held_out",
                "(colour, shape) pairs from the configured vocabularies",
                (color, shape),
            )
        self.check(
            len(self.held_out) < len(self.colors) * len(self.shapes),
            "held_out",
            "at least one pair left for train/val/test",
            len(self.held_out),
        )
        self.check(self.background in BACKGROUNDS, "background", f"one of {BACKGROUNDS}", self.background)
        self.check(0 <= self.noise_std <= 64, "noise_std", "a number in 0..64", self.noise_std)
        self.check(0 <= self.color_jitter <= 30, "color_jitter", "an integer in 0..30", self.color_jitter)
        self.check(0 <= self.max_rotation <= 180, "max_rotation", "degrees in 0..180", self.max_rotation)
        self.check(0 <= self.max_overlap < 0.5, "max_overlap", "a fraction in [0, 0.5)", self.max_overlap)
        self.check(1 <= self.supersample <= 8, "supersample", "an integer in 1..8", self.supersample)
        self.check(0 < self.position_margin < 0.5, "position_margin", "a fraction in (0, 0.5)", self.position_margin)
        self.check(2 <= self.num_choices <= 5, "num_choices", "an integer in 2..5", self.num_choices)
        self.check(
            0 <= self.questions_per_type <= 10, "questions_per_type", "an integer in 0..10", self.questions_per_type
        )

    def allowed_pairs(self, split: str) -> list[tuple[str, str]]:
        """(colour, shape) pairs an object may take in ``split``: held-out ones only in compositional."""
        held = set(self.held_out)
        pairs = [(c, s) for c in self.colors for s in self.shapes]
        return pairs if split == "compositional" else [p for p in pairs if p not in held]
