"""Words for a clip: event clauses, captions, temporal questions and grounding queries, all from the script.

An object is named by its colour and shape as they are when the event begins ("the red circle turns
blue", then "the blue circle moves up"); shapes are distinct within a clip, so every name is unique.
Questions follow ShapesWorld's rules: each type builds every question the clip answers without ambiguity,
then ``questions_per_type`` are drawn balanced over answers (``draw_balanced``); answers are one word or a
number, with multiple-choice options. A clause that two events share ("the star moves left", twice) is
never asked about by time, and never becomes a grounding query.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from vlmkit.data.shapesworld.language import NUMBER_WORDS, join_list, with_article
from vlmkit.data.shapesworld.questions import Question, draw_balanced
from vlmkit.data.videoworld.config import VideoWorldConfig
from vlmkit.data.videoworld.script import DIRECTIONS, Clip, Event

QUESTION_TYPES = ("direction", "order", "count", "when", "change")
PARTS = ("start", "middle", "end")
"""Answers of "when" questions: the third of the clip an event lies wholly inside."""

_VERBS = {"move": ("moves", "move"), "appear": ("appears", "appear"), "disappear": ("disappears", "disappear")}
_VERBS["recolor"] = ("turns", "turn")


def name(clip: Clip, event: Event) -> str:
    """ "red circle": the event's object as it looks when the event begins."""
    obj, _ = clip.state(event.actor, event.start)
    return f"{obj.color} {obj.shape}"


def predicate(event: Event, base: bool = False) -> str:
    """ "moves left", "turns blue", "appears" (``base``: "move left", for a question's "does ...")."""
    verb = _VERBS[event.kind][1 if base else 0]
    detail = event.direction or event.color
    return f"{verb} {detail}" if detail else verb


def clause(clip: Clip, event: Event, base: bool = False) -> str:
    return f"the {name(clip, event)} {predicate(event, base)}"


def seconds(frame: int, config: VideoWorldConfig) -> float:
    return round(frame / config.fps, 4)


def event_facts(clip: Clip, config: VideoWorldConfig) -> list[dict[str, Any]]:
    """The record's ``events``: when (seconds) and what, one per event in time order."""
    facts = []
    for event in clip.events:
        obj, _ = clip.state(event.actor, event.start)
        fact: dict[str, Any] = {
            "kind": event.kind,
            "start": seconds(event.start, config),
            "end": seconds(event.end, config),
            "object": f"{obj.color} {obj.shape}",
            "text": clause(clip, event),
        }
        if event.kind == "move":
            fact["direction"] = event.direction
        if event.kind == "recolor":
            fact["to"] = event.color
        facts.append(fact)
    return facts


def captions(clip: Clip, rng: np.random.Generator) -> list[str]:
    """The canonical caption ("a red circle moves left, then a blue star appears": an object's first mention
    takes "a", later ones "the"), then the same story told with "first ... then ... finally", then one that
    counts the events."""
    seen: set[int] = set()
    parts = []
    for event in clip.events:
        noun = name(clip, event)
        parts.append(f"{'the ' + noun if event.actor in seen else with_article(noun)} {predicate(event)}")
        seen.add(event.actor)
    n = len(parts)
    told = [f"first {parts[0]}", *[f"then {p}" for p in parts[1:]]]
    if n > 2:
        told[-1] = f"and finally {parts[-1]}"
    counted = f"{'one thing happens' if n == 1 else NUMBER_WORDS[n] + ' things happen'}: {join_list(parts)}"
    result = [", then ".join(parts), ", ".join(told) if n > 1 else f"in this clip {parts[0]}", counted]
    return [result[0], *[result[1 + i] for i in rng.permutation(2)]]


def _unique(clip: Clip) -> list[Event]:
    texts = Counter(clause(clip, e) for e in clip.events)
    return [e for e in clip.events if texts[clause(clip, e)] == 1]


def _part(event: Event, config: VideoWorldConfig) -> str | None:
    """The third of the clip the event lies wholly inside, or None if it crosses a boundary."""
    third = config.frames / 3
    for index, part in enumerate(PARTS):
        if index * third <= event.start and event.end < (index + 1) * third:
            return part
    return None


def _by_actor(clip: Clip, kind: str) -> dict[int, list[Event]]:
    grouped: dict[int, list[Event]] = {}
    for event in clip.events:
        if event.kind == kind:
            grouped.setdefault(event.actor, []).append(event)
    return grouped


def _questions(clip: Clip, config: VideoWorldConfig, rng: np.random.Generator) -> dict[str, list[Question]]:
    unique = _unique(clip)
    moves, recolors = _by_actor(clip, "move"), _by_actor(clip, "recolor")
    appears, disappears = _by_actor(clip, "appear"), _by_actor(clip, "disappear")
    shape = {i: obj.shape for i, obj in enumerate(clip.actors)}
    direction = [
        (f"which way does the {name(clip, e[0])} move?", e[0].direction) for e in moves.values() if len(e) == 1
    ]
    order = []
    for i, a in enumerate(unique):
        for b in unique[i + 1 :]:
            first, second = (a, b) if rng.integers(2) else (b, a)
            answer = "before" if first.start < second.start else "after"
            order.append((f"does {clause(clip, first, base=True)} before or after {clause(clip, second)}?", answer))
    count = [("how many things happen in the video?", str(len(clip.events)))]
    for kind, grouped in (("move", moves), ("appear", appears), ("disappear", disappears)):
        if kind in config.event_kinds:
            count.append((f"how many objects {kind}?", str(len(grouped))))
    if "recolor" in config.event_kinds:
        count.append(("how many objects change color?", str(len(recolors))))
    count += [
        ("how many objects are there at the start?", str(len(clip.on_screen(0)))),
        ("how many objects are there at the end?", str(len(clip.on_screen(clip.frames - 1)))),
    ]
    when = [(f"when does {clause(clip, e, base=True)}?", part) for e in unique if (part := _part(e, config))]
    change = []
    for actor, events in recolors.items():
        if len(events) == 1:
            change.append((f"what color does the {shape[actor]} turn?", events[0].color))
            change.append(
                (f"what color is the {shape[actor]} before it changes color?", name(clip, events[0]).split()[0])
            )
    for verb, grouped in (("appears", appears), ("disappears", disappears)):
        if len(grouped) == 1:
            (actor,) = grouped
            change.append((f"which shape {verb}?", shape[actor]))
            change.append((f"what color is the shape that {verb}?", name(clip, grouped[actor][0]).split()[0]))
    return {"direction": direction, "order": order, "count": count, "when": when, "change": change}


def _choices(answer: str, qtype: str, config: VideoWorldConfig, rng: np.random.Generator) -> list[str]:
    """``answer`` and distractors of its kind, shuffled: nearest numbers for counts, the vocabulary otherwise."""
    if qtype == "count":
        value = int(answer)
        pool = [str(n) for n in sorted(range(value + config.num_choices), key=lambda n: (abs(n - value), n))]
    else:
        vocabularies: Sequence[Sequence[str]] = (tuple(DIRECTIONS), ("before", "after"), PARTS, config.colors)
        vocabulary = next((v for v in vocabularies if answer in v), config.shapes)
        others = [v for v in vocabulary if v != answer]
        pool = [answer, *[others[i] for i in rng.permutation(len(others))]]
    options = [answer, *[p for p in pool if p != answer]][: config.num_choices]
    return [options[i] for i in rng.permutation(len(options))]


def questions(clip: Clip, config: VideoWorldConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Up to ``questions_per_type`` questions of each of ``QUESTION_TYPES``, with ``choices``."""
    pools = _questions(clip, config, rng)
    return [
        {"question": q, "answer": a, "type": qtype, "choices": _choices(a, qtype, config, rng)}
        for qtype in QUESTION_TYPES
        for q, a in draw_balanced(pools[qtype], config.questions_per_type, rng)
    ]


def grounding(clip: Clip, config: VideoWorldConfig) -> list[dict[str, Any]]:
    """Temporal grounding items: an event's clause -> the seconds it spans (its first to its last frame)."""
    return [
        {"query": clause(clip, e), "start": seconds(e.start, config), "end": seconds(e.end, config)}
        for e in _unique(clip)
    ]


def names_held_out(clip: Clip, config: VideoWorldConfig) -> bool:
    """Whether some event names a held-out (colour, shape) pair, before or after it happens."""
    held = set(config.held_out)
    for event in clip.events:
        obj, _ = clip.state(event.actor, event.start)
        if (obj.color, obj.shape) in held or (event.color, obj.shape) in held:
            return True
    return False
