"""Grounding conversations from a record's objects: what a VLM is trained on to write boxes and masks.

Four kinds of turn, each in the words the tasks ask with (``processing.locations``), so a model is
asked at inference exactly as it was taught:

- ``all``: ``detect every object`` -> every object, each with its label (Florence-2's all-objects task);
- ``detect``: ``detect a ; b`` for a random subset of the scene's labels -> every instance of those;
- ``refer``: ``detect EXPRESSION`` -> the one object a referring expression names (``refexp`` in
  ShapesWorld, ``expression`` in RefCOCO-style records), written with the expression as its label;
- ``segment``: ``segment EXPRESSION`` -> its box and 16 mask codes, when the record's masks were encoded.

Objects in an answer go in reading order, top to bottom by top edge, then left to right: a fixed order is
easier to learn than drawing order, and the metrics do not depend on it. This one makes the first
coordinate a model writes (the first object's y0) the top edge of the whole scene, which a decoder finds
from the row-major order of the image tokens; left to right, it had to find the leftmost object first,
and a convolutional tower's tokens carry no column (docs/results.md, Grounding). Boxes are normalised by the stored
image's size, which a record gives in ``meta`` (``width``, ``height``: COCO) or in its RLE masks
(``size``: ShapesWorld); a record with neither yields no grounding turn.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from vlmkit.data.records import ObjectAnnotation, Record
from vlmkit.processing.locations import (
    ALL_OBJECTS_PROMPT,
    detect_prompt,
    format_object,
    format_objects,
    segment_prompt,
)

Turn = tuple[str, str]
Kind = Literal["all", "detect", "refer", "segment"]
KINDS: tuple[Kind, ...] = ("all", "detect", "refer", "segment")


def record_size(record: Record) -> tuple[int, int] | None:
    """(width, height) of the record's stored image, from its metadata or its masks, or None."""
    meta = record.meta or {}
    if isinstance(meta.get("width"), int) and isinstance(meta.get("height"), int):
        return meta["width"], meta["height"]
    for item in record.objects or []:
        if isinstance(item.mask, dict) and len(item.mask.get("size") or ()) == 2:
            height, width = item.mask["size"]
            return int(width), int(height)
    return None


def expressions(item: ObjectAnnotation) -> list[str]:
    """An object's referring expressions: ShapesWorld's ``refexp`` list or a RefCOCO-style ``expression``."""
    found = item.extra.get("refexp") or item.extra.get("expression") or []
    return [found] if isinstance(found, str) else [e for e in found if isinstance(e, str) and e]


def reading_order(objects: Sequence[ObjectAnnotation]) -> list[ObjectAnnotation]:
    return sorted(objects, key=lambda o: (o.box[1], o.box[0]))


def grounding_turns(
    record: Record,
    rng: random.Random,
    count: int,
    codes: Sequence[Sequence[int] | None] | None = None,
    kinds: Sequence[Kind] = KINDS,
) -> list[Turn]:
    """Up to ``count`` (prompt, answer) turns about ``record``'s objects, kinds drawn from ``kinds``.

    ``codes[i]`` are object ``i``'s 16 mask codes (None where it has no mask); without them there is no
    ``segment`` turn. Returns [] for a record without objects or a known image size.
    """
    size = record_size(record)
    objects = list(record.objects or [])
    if size is None or not objects:
        return []
    width, height = size
    referable = [i for i, o in enumerate(objects) if expressions(o)]
    coded = [i for i in referable if codes is not None and codes[i] is not None]
    available = [
        k for k in kinds if k in ("all", "detect") or (k == "refer" and referable) or (k == "segment" and coded)
    ]
    if not available:
        return []

    def boxes(chosen: Sequence[ObjectAnnotation], label: str | None = None) -> str:
        return format_objects([format_object(label or o.label, o.box, width, height) for o in reading_order(chosen)])

    turns: list[Turn] = []
    for _ in range(count):
        kind = rng.choice(available)
        if kind == "all":
            turns.append((ALL_OBJECTS_PROMPT, boxes(objects)))
        elif kind == "detect":
            labels = sorted({o.label for o in objects})
            asked = sorted(rng.sample(labels, rng.randint(1, len(labels))))
            turns.append((detect_prompt(asked), boxes([o for o in objects if o.label in asked])))
        else:
            index = rng.choice(coded if kind == "segment" else referable)
            target = objects[index]
            expression = rng.choice(expressions(target))
            if kind == "refer":
                turns.append((detect_prompt(expression), boxes([target], expression)))
            else:
                answer = format_object(expression, target.box, width, height, codes[index])  # type: ignore[index]
                turns.append((segment_prompt(expression), answer))
    return turns
