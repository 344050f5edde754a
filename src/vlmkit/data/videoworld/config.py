"""The VideoWorld generator config: every knob that changes the bytes a clip folder holds.

A clip is a ShapesWorld scene that changes over time, so the scene knobs (vocabularies, held-out pairs,
background, jitter, rotation, antialiasing) are ShapesWorld's and ``scene_config`` hands them to its scene
sampler and renderer unchanged; the fields added here are about time (frames, rate, events) and the file
(codec, quality). ``GENERATOR_VERSION`` goes up whenever the same config would start writing other bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from vlmkit.data.generator_config import GeneratorConfig
from vlmkit.data.shapesworld.config import COLORS, DEFAULT_HELD_OUT, SHAPES, SIZES, ShapesWorldConfig

GENERATOR_VERSION = 1

EVENT_KINDS: tuple[str, ...] = ("move", "appear", "disappear", "recolor")
CODECS: tuple[str, ...] = ("auto", "libx264", "mpeg4")
"""``auto`` resolves, when a split is written, to H.264 (libx264) if the installed PyAV has it, else MPEG-4
part 2, which every FFmpeg build encodes; the resolved name is what the folder's config records."""

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2, "compositional": 3}
"""Split name -> code mixed into every clip's seed, so splits never share clips."""


@dataclass(frozen=True)
class VideoWorldConfig(GeneratorConfig):
    """What a VideoWorld clip shows and how it is stored.

    Attributes:
        image_size: side of the square frames in pixels (even: H.264 and MPEG-4 store 4:2:0 chroma).
        frames: frames per clip.
        fps: frames per second; a clip lasts ``frames / fps`` seconds and frame ``i`` is shown at ``i / fps``.
        min_objects, max_objects: objects on screen at the first frame (appearing ones come on top).
        min_events, max_events: events per clip; they happen one after another, never at once, each over
            at least ``min_event_frames`` frame steps, with a still frame between two events.
        event_kinds: which events may happen (subset of ``EVENT_KINDS``).
        min_move, max_move: how far a moving object travels, as a fraction of the frame side.
        shapes, colors, held_out, background, noise_std, color_jitter, max_rotation, supersample: as in
            ``ShapesWorldConfig``; the ``held_out`` (colour, shape) pairs appear only in the compositional
            split, where every clip has an event whose object is one of them.
        sizes: size classes objects take (ShapesWorld's large ones leave little room to move in 64 px).
        max_overlap: the largest fraction of an object that others may hide, in any frame.
        codec: "auto", "libx264" or "mpeg4" (see ``CODECS``); crf: libx264's quality (0 lossless .. 51).
        num_choices: options per multiple-choice question; questions_per_type: most questions of each type.
    """

    LABEL: ClassVar[str] = "VideoWorld"

    image_size: int = 64
    frames: int = 16
    fps: int = 8
    min_objects: int = 1
    max_objects: int = 3
    min_events: int = 1
    max_events: int = 3
    min_event_frames: int = 3
    event_kinds: tuple[str, ...] = EVENT_KINDS
    min_move: float = 0.25
    max_move: float = 0.45
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[str, ...] = tuple(COLORS)
    held_out: tuple[tuple[str, str], ...] = DEFAULT_HELD_OUT
    sizes: tuple[str, ...] = ("small", "medium")
    background: str = "mixed"
    noise_std: float = 6.0
    color_jitter: int = 12
    max_rotation: float = 20.0
    max_overlap: float = 0.15
    supersample: int = 4
    codec: str = "auto"
    crf: int = 18
    num_choices: int = 4
    questions_per_type: int = 2

    def __post_init__(self) -> None:
        for name in ("event_kinds", "shapes", "colors", "sizes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "held_out", tuple((str(c), str(s)) for c, s in self.held_out))
        self.check(self.image_size % 2 == 0, "image_size", "an even number of pixels", self.image_size)
        self.check(4 <= self.frames <= 256, "frames", "an integer in 4..256", self.frames)
        self.check(1 <= self.fps <= 60, "fps", "an integer in 1..60", self.fps)
        self.check(
            1 <= self.min_objects <= self.max_objects <= 6,
            "min_objects/max_objects",
            "1 <= min_objects <= max_objects <= 6",
            (self.min_objects, self.max_objects),
        )
        self.check(1 <= self.min_event_frames <= 64, "min_event_frames", "an integer in 1..64", self.min_event_frames)
        self.check(
            1 <= self.min_events <= self.max_events <= 8,
            "min_events/max_events",
            "1 <= min_events <= max_events <= 8",
            (self.min_events, self.max_events),
        )
        self.check(
            self.events_that_fit() >= self.min_events,
            "frames",
            f"room for {self.min_events} event(s) of {self.min_event_frames} frame steps with a still frame between",
            self.frames,
        )
        self.check(
            len(self.event_kinds) >= 1 and set(self.event_kinds) <= set(EVENT_KINDS),
            "event_kinds",
            f"names from {EVENT_KINDS}",
            self.event_kinds,
        )
        moves = (self.min_move, self.max_move)
        self.check(0 < self.min_move <= self.max_move <= 0.6, "min_move/max_move", "0 < min <= max <= 0.6", moves)
        self.check(
            len(self.sizes) >= 1 and set(self.sizes) <= set(SIZES), "sizes", f"names from {tuple(SIZES)}", self.sizes
        )
        self.check(
            len(self.shapes) >= self.max_objects + self.max_events,
            "shapes",
            "at least max_objects + max_events shapes (the objects of a clip have distinct shapes)",
            self.shapes,
        )
        self.check(self.codec in CODECS, "codec", f"one of {CODECS}", self.codec)
        self.check(0 <= self.crf <= 51, "crf", "an integer in 0..51", self.crf)
        self.scene_config()  # ShapesWorld checks the scene knobs and names the field at fault

    def events_that_fit(self) -> int:
        """Most events a clip has room for: each spans ``min_event_frames`` steps, one still frame between."""
        return self.frames // (self.min_event_frames + 1)

    def scene_config(self) -> ShapesWorldConfig:
        """The ShapesWorld config that samples and draws this clip's objects and background."""
        return ShapesWorldConfig(
            image_size=self.image_size,
            shapes=self.shapes,
            colors=self.colors,
            held_out=self.held_out,
            background=self.background,
            noise_std=self.noise_std,
            color_jitter=self.color_jitter,
            max_rotation=self.max_rotation,
            max_overlap=self.max_overlap,
            supersample=self.supersample,
            num_choices=self.num_choices,
        )

    @property
    def duration(self) -> float:
        """Seconds a clip lasts (its last frame is shown for 1 / fps)."""
        return self.frames / self.fps
