"""A clip's script: which objects, which events, when; pure data, no pixels.

A clip is its objects as they look when they are first on screen (ShapesWorld ``SceneObject``s, so the
ShapesWorld renderer draws them), a background, and events. Events happen one after another over frame
steps ``[start, end]``: the state at frame ``start`` is the one before, at ``end`` the one after, and in
between the change is linear (a move slides, an appearance fades in, a colour blends). Nothing changes
between events, so "then" in a caption and "before"/"after" in a question are always exact.

The objects of a clip have distinct shapes: "the star" names one object for the whole clip even when it
changes colour, which keeps every question unambiguous without tracking identities in language.
Everything random is drawn from one ``numpy.random.Generator``, in a fixed order, so the seed fixes the script.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vlmkit.data.shapesworld.config import COLORS
from vlmkit.data.shapesworld.geometry import place_outline
from vlmkit.data.shapesworld.scene import Background, SceneObject, sample_background, sample_object
from vlmkit.data.videoworld.config import VideoWorldConfig

PLACEMENT_ATTEMPTS = 10
"""Places tried for an appearing object before the sampler draws another kind of event."""

DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
"""Direction word -> unit step in image axes (y grows downwards)."""


@dataclass(frozen=True)
class Event:
    """One change over frame steps ``[start, end]``: a ``move`` by ``offset`` (fractions of the side) in
    ``direction``, an ``appear``, a ``disappear``, or a ``recolor`` to ``color`` (drawn as ``rgb``)."""

    kind: str
    actor: int
    start: int
    end: int
    direction: str = ""
    offset: tuple[float, float] = (0.0, 0.0)
    color: str = ""
    rgb: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class Clip:
    """Objects (as first seen, in drawing order), their events in time order, the background."""

    actors: tuple[SceneObject, ...]
    events: tuple[Event, ...]
    background: Background
    frames: int

    def appears(self, actor: int) -> bool:
        """Whether ``actor`` is off screen at the start (its first event is its appearance)."""
        return any(e.actor == actor and e.kind == "appear" for e in self.events)

    def state(self, actor: int, frame: int) -> tuple[SceneObject, float]:
        """How ``actor`` looks at ``frame`` and its opacity (0: not on screen, 1: fully drawn).

        The object's ``color`` is the colour name language may use: the new one only once a change is done."""
        obj, alpha = self.actors[actor], 0.0 if self.appears(actor) else 1.0
        for event in self.events:
            if event.actor != actor or frame <= event.start:
                continue
            p = min(1.0, (frame - event.start) / (event.end - event.start))
            if event.kind == "move":
                x, y = obj.center
                obj = dataclasses.replace(obj, center=(x + p * event.offset[0], y + p * event.offset[1]))
            elif event.kind == "recolor":
                rgb = tuple(round(a + p * (b - a)) for a, b in zip(obj.rgb, event.rgb, strict=True))
                obj = dataclasses.replace(obj, rgb=rgb, color=event.color if p == 1.0 else obj.color)
            else:
                alpha = p if event.kind == "appear" else 1.0 - p
        return obj, alpha

    def on_screen(self, frame: int) -> list[int]:
        return [i for i in range(len(self.actors)) if self.state(i, frame)[1] > 0.0]


def sample_segments(rng: np.random.Generator, frames: int, count: int, min_steps: int) -> list[tuple[int, int]]:
    """``count`` frame spans ``[start, end]`` of at least ``min_steps`` steps in ``0..frames-1``, in order, each
    ending before the next starts; the spare frames are spread uniformly (stars and bars) over the lead, the
    events, the gaps and the tail."""
    spare = frames - count * (min_steps + 1)
    bins = 2 * count + 1
    bars = np.sort(rng.choice(spare + bins - 1, size=bins - 1, replace=False))
    parts = np.diff(np.concatenate([[-1], bars, [spare + bins - 1]])) - 1
    lead, lengths, gaps = int(parts[0]), parts[1 : count + 1], [*parts[count + 1 : 2 * count], 0]
    spans, start = [], lead
    for length, gap in zip(lengths, gaps, strict=True):
        end = start + min_steps + int(length)
        spans.append((start, end))
        start = end + 1 + int(gap)
    return spans


def _extent(obj: SceneObject) -> tuple[np.ndarray, np.ndarray]:
    outline = place_outline(obj.shape, obj.center, obj.radius, obj.rotation)
    return outline.min(axis=0), outline.max(axis=0)


def _jittered(rng: np.random.Generator, config: VideoWorldConfig, color: str) -> tuple[int, int, int]:
    jitter = rng.integers(-config.color_jitter, config.color_jitter + 1, size=3)
    return tuple(int(v) for v in np.clip(np.array(COLORS[color]) + jitter, 0, 255))  # type: ignore[return-value]


class _Sampler:
    """Draws a script event by event, keeping the objects' current looks to check each next event against."""

    def __init__(self, rng: np.random.Generator, config: VideoWorldConfig, split: str) -> None:
        self.rng, self.config, self.split = rng, config, split
        self.scene = config.scene_config()
        self.pairs = self.scene.allowed_pairs(split)
        self.actors: list[SceneObject] = []
        self.now: list[SceneObject] = []  # each actor as it looks after the events so far
        self.present: list[int] = []

    def new_object(self, pairs: list[tuple[str, str]]) -> SceneObject | None:
        used = {a.shape for a in self.actors}
        free = [(c, s) for c, s in pairs if s not in used]
        return sample_object(self.rng, self.scene, free, self.config.sizes) if free else None

    def add(self, obj: SceneObject) -> int:
        """A new object, on screen from now on (an appearing one once its event is done)."""
        self.actors.append(obj)
        self.now.append(obj)
        self.present.append(len(self.actors) - 1)
        return len(self.actors) - 1

    def event(self, kind: str, start: int, end: int) -> Event | None:
        """An event of ``kind`` the current state allows, or None."""
        rng, present = self.rng, self.present
        if kind == "appear":
            for _ in range(PLACEMENT_ATTEMPTS):
                obj = self.new_object(self.pairs)
                if obj is not None and self.clear(obj.radius, [obj.center]):
                    return Event(kind, self.add(obj), start, end)
            return None
        if not present or (kind == "disappear" and len(present) < 2):
            return None
        actor = present[int(rng.integers(len(present)))]
        obj = self.now[actor]
        if kind == "disappear":
            present.remove(actor)
            return Event(kind, actor, start, end)
        if kind == "recolor":
            colors = [c for c, s in self.pairs if s == obj.shape and c != obj.color]
            if not colors:
                return None
            color = colors[int(rng.integers(len(colors)))]
            rgb = _jittered(rng, self.config, color)
            self.now[actor] = dataclasses.replace(obj, color=color, rgb=rgb)
            return Event(kind, actor, start, end, color=color, rgb=rgb)
        return self._move(actor, obj, start, end)

    def clear(self, radius: float, path: list[tuple[float, float]], actor: int | None = None) -> bool:
        """Whether an object of ``radius`` at every centre of ``path`` stays clear of the objects on screen but
        ``actor`` (their equal-area circles apart). A rough test, but it lets the sampler draw another change
        before the renderer's exact test throws the whole clip away: without it moves and appearances were
        the rarest events, recolourings (never in the way) the commonest."""
        for other in self.present:
            if other == actor:
                continue
            o = self.now[other]
            gap = radius + o.radius
            if any((x - o.center[0]) ** 2 + (y - o.center[1]) ** 2 < gap * gap for x, y in path):
                return False
        return True

    def _move(self, actor: int, obj: SceneObject, start: int, end: int) -> Event | None:
        """A move in the first direction (in random order) that keeps the object inside the frame and clear
        of the others."""
        distance = float(self.rng.uniform(self.config.min_move, self.config.max_move))
        lo, hi = _extent(obj)
        pad = 1.0 / self.config.image_size
        x, y = obj.center
        for index in self.rng.permutation(len(DIRECTIONS)):
            name, (dx, dy) = list(DIRECTIONS.items())[int(index)]
            offset = (dx * distance, dy * distance)
            path = [(x + t * offset[0], y + t * offset[1]) for t in np.linspace(0.0, 1.0, 9)]
            inside = (lo + offset >= pad).all() and (hi + offset <= 1.0 - pad).all()
            if inside and self.clear(obj.radius, path, actor):
                self.now[actor] = dataclasses.replace(obj, center=(x + offset[0], y + offset[1]))
                return Event("move", actor, start, end, direction=name, offset=offset)
        return None


def sample_clip(rng: np.random.Generator, config: VideoWorldConfig, split: str) -> Clip | None:
    """A script, or None when the draw left an event without a possible change (the caller draws again).

    In the compositional split the first object takes a held-out (colour, shape) pair; whether an event
    names one is checked by the caller, on the language."""
    sampler = _Sampler(rng, config, split)
    background = sample_background(rng, sampler.scene)
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    for index in range(count):
        first = split == "compositional" and index == 0
        obj = sampler.new_object(list(config.held_out) if first else sampler.pairs)
        if obj is not None:
            sampler.add(obj)
    most = min(config.max_events, config.events_that_fit())
    spans = sample_segments(rng, config.frames, int(rng.integers(config.min_events, most + 1)), config.min_event_frames)
    events = []
    for start, end in spans:
        for index in rng.permutation(len(config.event_kinds)):
            event = sampler.event(config.event_kinds[int(index)], start, end)
            if event is not None:
                events.append(event)
                break
        else:
            return None
    return Clip(tuple(sampler.actors), tuple(events), background, config.frames)
