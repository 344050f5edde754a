"""Words for a scene: noun phrases, spatial relations, captions and referring expressions.

Everything is computed from ``Thing`` facts (attributes plus the centre of the visible box), never
from a model. Two rules keep the text true:

- a phrase with "the" is used only if exactly one object fits it;
- a relation (left of, above, ...) is stated only when the box centres differ by more than ``margin``
  pixels, and a relation used to single an object out must not hold even loosely for any rival.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlmkit.data.shapesworld.config import SIZES

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
PLURALS = {"cross": "crosses"}
ATTRIBUTES = ("size", "color", "shape")

NAMING = (("shape",), ("color", "shape"), ("size", "shape"), ("size", "color", "shape"))
"""Attribute sets tried, shortest first, when an object must be named uniquely."""

RELATIONS = ("left of", "right of", "above", "below")
RELATION_WORDS = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}


@dataclass(frozen=True)
class Thing:
    """What language may say about one object: attributes and visible-box centre in pixels."""

    shape: str
    color: str
    size: str
    cx: float
    cy: float

    def attr(self, name: str) -> str:
        return str(getattr(self, name))


def plural(shape: str) -> str:
    return PLURALS.get(shape, shape + "s")


def interchangeable_words(colors: Sequence[str], shapes: Sequence[str]) -> list[list[str]]:
    """Groups of mutually exclusive words: swapping one for another in a true caption makes it false
    (the hard negatives of contrastive training)."""
    return [list(colors), list(shapes), [plural(s) for s in shapes], list(SIZES)]


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def join_list(items: Sequence[str]) -> str:
    """ "x", "x and y", "x, y and z"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe(thing: Thing, attrs: Sequence[str]) -> str:
    """Noun phrase without article, attributes in English order: "large red circle", "red object"."""
    words = [thing.attr(a) for a in ATTRIBUTES if a in attrs]
    return " ".join(words if "shape" in attrs else [*words, "object"])


def matching(things: Sequence[Thing], target: Thing, attrs: Sequence[str]) -> list[int]:
    """Indices of the things that agree with ``target`` on every attribute in ``attrs``."""
    return [i for i, t in enumerate(things) if all(t.attr(a) == target.attr(a) for a in attrs)]


def unique_attrs(things: Sequence[Thing], index: int, options: Sequence[Sequence[str]]) -> tuple[str, ...] | None:
    """The first attribute set in ``options`` that fits only ``things[index]``, or None."""
    for attrs in options:
        if matching(things, things[index], attrs) == [index]:
            return tuple(attrs)
    return None


def relation_holds(a: Thing, b: Thing, relation: str, margin: float) -> bool:
    """Whether ``a`` is ``relation`` ``b`` by more than ``margin`` pixels (margin 0: loosely)."""
    if relation == "left of":
        return a.cx < b.cx - margin
    if relation == "right of":
        return a.cx > b.cx + margin
    if relation == "above":
        return a.cy < b.cy - margin
    if relation == "below":
        return a.cy > b.cy + margin
    raise ValueError(f"unknown relation {relation!r}")


def clear_relation(a: Thing, b: Thing, margin: float) -> str | None:
    """The clearest relation of ``a`` to ``b`` (larger offset wins), or None if neither axis is clear."""
    dx, dy = a.cx - b.cx, a.cy - b.cy
    if max(abs(dx), abs(dy)) <= margin:
        return None
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def full_phrase(thing: Thing) -> str:
    return with_article(describe(thing, ATTRIBUTES))


def canonical_caption(things: Sequence[Thing], margin: float) -> str:
    """One caption naming every object by size, colour and shape; a function of the scene alone,
    so it can serve as the single ground-truth text for retrieval."""
    ordered = sorted(things, key=lambda t: (t.cx, t.cy))
    if len(ordered) == 1:
        return full_phrase(ordered[0])
    if len(ordered) == 2:
        a, b = ordered
        relation = clear_relation(a, b, margin)
        if relation is None:
            return f"{full_phrase(a)} and {full_phrase(b)}"
        return f"{full_phrase(a)} {RELATION_WORDS[relation]} {full_phrase(b)}"
    return "from left to right: " + join_list([full_phrase(t) for t in ordered])


def _counted(groups: Counter[str], order: Sequence[str], noun_plural: dict[str, str]) -> str:
    parts = []
    for key in order:
        n = groups[key]
        parts.append(with_article(key) if n == 1 else f"{NUMBER_WORDS[n]} {noun_plural[key]}")
    return join_list(parts)


def count_phrase(things: Sequence[Thing], attrs: Sequence[str]) -> str:
    """ "two red circles and a blue star" (attrs color+shape) or "two circles and a star" (shape)."""
    ordered = sorted(things, key=lambda t: (t.cx, t.cy))
    keys = [describe(t, attrs) for t in ordered]
    plurals = {describe(t, attrs): " ".join([*describe(t, attrs).split()[:-1], plural(t.shape)]) for t in ordered}
    return _counted(Counter(keys), list(dict.fromkeys(keys)), plurals)


LABEL_PARTS = {"color_shape": ("color", "shape")}
"""The words of a multi-word label, so zero-shot evaluation can score each attribute on its own."""

ZERO_SHOT_TEMPLATE = "the biggest shape is the {}"
"""The prompt that turns a ``labels["color_shape"]`` class into the caption sentence naming it."""


def captions(
    things: Sequence[Thing], background: str, margin: float, rng: np.random.Generator, largest: int
) -> list[str]:
    """Several true captions: the canonical one first, then short count captions in varied templates,
    then (when one exists) a caption relating two clearly separated objects, then one naming the
    largest object (``things[largest]``, the image's classification label) with an invariant article,
    so that the zero-shot prompt "the biggest shape is the {}" is a sentence the model has read."""
    counts = count_phrase(things, ("color", "shape"))
    templates = (
        "an image of {counts}",
        "{counts} on a {background} background",
        "a picture with {counts}",
        "there is {counts}" if len(things) == 1 else "there are {counts}",
    )
    template = templates[rng.integers(len(templates))]
    n = len(things)
    shapes = count_phrase(things, ("shape",))
    shape_caption = f"a single {describe(things[0], ('shape',))}" if n == 1 else f"{NUMBER_WORDS[n]} shapes: {shapes}"
    result = [
        canonical_caption(things, margin),
        counts,
        template.format(counts=counts, background=background),
        shape_caption,
    ]
    pairs = [(a, b) for a in things for b in things if a is not b and clear_relation(a, b, margin)]
    if pairs:
        a, b = pairs[rng.integers(len(pairs))]
        relation = clear_relation(a, b, margin)
        assert relation is not None
        result.append(f"{full_phrase(a)} {RELATION_WORDS[relation]} {full_phrase(b)}")
    result.append(ZERO_SHOT_TEMPLATE.format(describe(things[largest], ("color", "shape"))))
    return list(dict.fromkeys(result))


def referring_expressions(things: Sequence[Thing], index: int, margin: float, limit: int = 4) -> list[str]:
    """Phrases that pick out ``things[index]`` alone: attribute phrases ("the red star"), then, when
    fewer than two of those work, relational ones ("the small square above the star") whose landmark is
    itself unique and whose relation holds for the target (by ``margin``) and for no rival (at all)."""
    target = things[index]
    found = [f"the {describe(target, attrs)}" for attrs in NAMING if matching(things, target, attrs) == [index]]
    if len(found) < 2:
        for attrs in NAMING[:2]:
            rivals = [i for i in matching(things, target, attrs) if i != index]
            if not rivals:
                continue
            for j, landmark in enumerate(things):
                landmark_attrs = unique_attrs(things, j, NAMING)
                if j == index or landmark_attrs is None:
                    continue
                for relation in RELATIONS:
                    if relation_holds(target, landmark, relation, margin) and not any(
                        relation_holds(things[r], landmark, relation, 0.0) for r in rivals if r != j
                    ):
                        found.append(
                            f"the {describe(target, attrs)} {RELATION_WORDS[relation]} "
                            f"the {describe(landmark, landmark_attrs)}"
                        )
    return list(dict.fromkeys(found))[:limit]
