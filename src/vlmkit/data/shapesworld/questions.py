"""Questions with exact answers, and their multiple-choice options.

Each question type builds every question the scene can answer without ambiguity; then up to
``questions_per_type`` are drawn per type. Open answers are one word or a number. Questions never name
a held-out (colour, shape) pair outside the compositional split, so no split leaks those words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vlmkit.data.shapesworld.config import SIZES, ShapesWorldConfig
from vlmkit.data.shapesworld.language import (
    NAMING,
    RELATION_WORDS,
    Thing,
    describe,
    plural,
    relation_holds,
    unique_attrs,
)

QUESTION_TYPES = ("color", "shape", "size", "count", "exist", "position")

Question = tuple[str, str]  # (question, answer)


def _named(things: Sequence[Thing], options: Sequence[Sequence[str]]) -> list[tuple[int, str]]:
    """(index, "the ...") for every object some attribute set in ``options`` names uniquely."""
    named = []
    for i, thing in enumerate(things):
        attrs = unique_attrs(things, i, options)
        if attrs is not None:
            named.append((i, describe(thing, attrs)))
    return named


def _attribute_questions(things: Sequence[Thing], **_: Any) -> dict[str, list[Question]]:
    """ "what color is the star?" asks only about an object named without its colour, and so on."""
    color = [
        (f"what color is the {name}?", things[i].color) for i, name in _named(things, [("shape",), ("size", "shape")])
    ]
    shape = [
        (f"what shape is the {name}?", things[i].shape) for i, name in _named(things, [("color",), ("size", "color")])
    ]
    size = [
        (f"what size is the {name}?", things[i].size) for i, name in _named(things, [("shape",), ("color", "shape")])
    ]
    return {"color": color, "shape": shape, "size": size}


def _count_questions(
    things: Sequence[Thing], config: ShapesWorldConfig, forbidden: set[tuple[str, str]], rng: np.random.Generator
) -> dict[str, list[Question]]:
    """Counts of present shapes, colours and pairs, the total, and one absent shape and pair (answer 0)."""
    shapes = list(dict.fromkeys(t.shape for t in things))
    colors = list(dict.fromkeys(t.color for t in things))
    pairs = list(dict.fromkeys((t.color, t.shape) for t in things))
    absent_shapes = [s for s in config.shapes if s not in shapes]
    absent_pairs = [
        (c, s) for c in config.colors for s in config.shapes if (c, s) not in pairs and (c, s) not in forbidden
    ]
    if absent_shapes:
        shapes.append(absent_shapes[rng.integers(len(absent_shapes))])
    if absent_pairs:
        pairs.append(absent_pairs[rng.integers(len(absent_pairs))])
    questions = [("how many objects are there?", str(len(things)))]
    questions += [(f"how many {plural(s)} are there?", str(sum(t.shape == s for t in things))) for s in shapes]
    questions += [(f"how many {c} objects are there?", str(sum(t.color == c for t in things))) for c in colors]
    questions += [
        (f"how many {c} {plural(s)} are there?", str(sum((t.color, t.shape) == (c, s) for t in things)))
        for c, s in pairs
    ]
    return {"count": questions}


def _exist_questions(
    things: Sequence[Thing], config: ShapesWorldConfig, forbidden: set[tuple[str, str]], **_: Any
) -> dict[str, list[Question]]:
    present = {(t.color, t.shape) for t in things}
    yes = [(f"is there a {c} {s}?", "yes") for c, s in sorted(present)]
    yes += [(f"is there a {s}?", "yes") for s in sorted({t.shape for t in things})]
    no = [
        (f"is there a {c} {s}?", "no")
        for c in config.colors
        for s in config.shapes
        if (c, s) not in present and (c, s) not in forbidden
    ]
    no += [(f"is there a {s}?", "no") for s in config.shapes if s not in {t.shape for t in things}]
    return {"exist": yes + no}


def _pair_questions(
    things: Sequence[Thing], config: ShapesWorldConfig, rng: np.random.Generator, **_: Any
) -> dict[str, list[Question]]:
    """Relations and size comparisons between two uniquely named objects, asked only when clear."""
    margin = config.position_margin * config.image_size
    named = _named(things, NAMING)
    position, size = [], []
    ranks = list(SIZES)
    for i, a in named:
        for j, b in named:
            if i == j:
                continue
            ta, tb = things[i], things[j]
            for axis in (("left of", "right of"), ("above", "below")):
                truth = [r for r in axis if relation_holds(ta, tb, r, margin)]
                if not truth:
                    continue
                asked = axis[rng.integers(2)]
                position.append((f"is the {a} {RELATION_WORDS[asked]} the {b}?", "yes" if asked == truth[0] else "no"))
                if i < j:
                    words = (
                        ("to the left or to the right of", "left", "right")
                        if axis[0] == "left of"
                        else ("above or below", "above", "below")
                    )
                    answer = words[1] if truth[0] == axis[0] else words[2]
                    position.append((f"is the {a} {words[0]} the {b}?", answer))
            if ranks.index(ta.size) != ranks.index(tb.size) and i < j:
                bigger = ranks.index(ta.size) > ranks.index(tb.size)
                word = ("bigger", "smaller")[rng.integers(2)]
                size.append((f"is the {a} {word} than the {b}?", "yes" if (word == "bigger") == bigger else "no"))
    return {"position": position, "size": size}


BUILDERS: tuple[Callable[..., dict[str, list[Question]]], ...] = (
    _attribute_questions,
    _count_questions,
    _exist_questions,
    _pair_questions,
)


def _choices(
    answer: str, qtype: str, things: Sequence[Thing], config: ShapesWorldConfig, rng: np.random.Generator
) -> list[str]:
    """``answer`` plus distractors, shuffled: the scene's own colours/shapes first (harder), then the
    vocabulary; nearest numbers for counts; the fixed alternatives for yes/no, sides and sizes."""
    k = config.num_choices
    if answer in ("yes", "no"):
        pool = ["yes", "no"]
    elif answer in ("left", "right"):
        pool = ["left", "right"]
    elif answer in ("above", "below"):
        pool = ["above", "below"]
    elif qtype == "count":
        value = int(answer)
        numbers = sorted(range(max(value + k, len(config.shapes))), key=lambda n: (abs(n - value), n))
        pool = [str(n) for n in numbers]
    else:
        vocabulary = {"color": config.colors, "shape": config.shapes, "size": tuple(SIZES)}[qtype]
        scene = [v for v in dict.fromkeys(t.attr(qtype) for t in things) if v != answer]
        rest = [v for v in vocabulary if v != answer and v not in scene]
        pool = [
            answer,
            *[scene[i] for i in rng.permutation(len(scene))],
            *[rest[i] for i in rng.permutation(len(rest))],
        ]
    options = [answer, *[p for p in pool if p != answer]][:k]
    return [options[i] for i in rng.permutation(len(options))]


def make_questions(
    things: Sequence[Thing], config: ShapesWorldConfig, split: str, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Up to ``config.questions_per_type`` questions of each type in ``QUESTION_TYPES``, each with
    ``choices``, drawn so that answers are as balanced as the scene allows."""
    forbidden = set() if split == "compositional" else set(config.held_out)
    pools: dict[str, list[Question]] = {qtype: [] for qtype in QUESTION_TYPES}
    for build in BUILDERS:
        for qtype, questions in build(things, config=config, forbidden=forbidden, rng=rng).items():
            pools[qtype] += questions
    return [
        {"question": q, "answer": a, "type": qtype, "choices": _choices(a, qtype, things, config, rng)}
        for qtype in QUESTION_TYPES
        for q, a in draw_balanced(pools[qtype], config.questions_per_type, rng)
    ]


def draw_balanced(pool: list[Question], n: int, rng: np.random.Generator) -> list[Question]:
    """Up to ``n`` questions without repeats: each draw first picks an answer uniformly among those
    still available, then a question with that answer. Without this, counts would mostly be "1" and
    existence mostly "no": a model could score well by guessing the common answer."""
    by_answer: dict[str, list[Question]] = {}
    for question in pool:
        by_answer.setdefault(question[1], []).append(question)
    picked = []
    while len(picked) < n and by_answer:
        answer = list(by_answer)[rng.integers(len(by_answer))]
        group = by_answer[answer]
        picked.append(group.pop(int(rng.integers(len(group)))))
        if not group:
            del by_answer[answer]
    return picked
