"""VideoWorld's words and pixels on a hand-made clip: every caption, question, answer and moment checked by hand."""

from __future__ import annotations

import itertools

import numpy as np

from vlmkit.data.shapesworld.scene import Background, SceneObject
from vlmkit.data.videoworld import VideoWorldConfig
from vlmkit.data.videoworld.frames import render_frame
from vlmkit.data.videoworld.language import captions, event_facts, grounding, questions
from vlmkit.data.videoworld.script import Clip, Event, sample_segments

CONFIG = VideoWorldConfig(frames=12, fps=4, questions_per_type=10)
PLAIN = Background("plain", (50, 50, 50), 0.0, 0.0, 0.0, 0)


def _object(shape: str, color: str, rgb: tuple[int, int, int], center: tuple[float, float]) -> SceneObject:
    return SceneObject(shape, color, "medium", rgb, center, 0.11, 0.0)


# a red circle moves left over frames 0-3, a blue star appears over 5-7, the circle turns green over 9-11
CLIP = Clip(
    actors=(_object("circle", "red", (215, 40, 40), (0.7, 0.3)), _object("star", "blue", (45, 85, 225), (0.5, 0.75))),
    events=(
        Event("move", 0, 0, 3, direction="left", offset=(-0.4, 0.0)),
        Event("appear", 1, 5, 7),
        Event("recolor", 0, 9, 11, color="green", rgb=(45, 170, 60)),
    ),
    background=PLAIN,
    frames=12,
)


def test_events_and_moments_in_seconds() -> None:
    facts = event_facts(CLIP, CONFIG)
    assert [(f["text"], f["start"], f["end"]) for f in facts] == [
        ("the red circle moves left", 0.0, 0.75),
        ("the blue star appears", 1.25, 1.75),
        ("the red circle turns green", 2.25, 2.75),
    ]
    assert grounding(CLIP, CONFIG)[1] == {"query": "the blue star appears", "start": 1.25, "end": 1.75}


def test_captions_tell_the_events_in_order() -> None:
    texts = captions(CLIP, np.random.default_rng(0))
    assert texts[0] == "a red circle moves left, then a blue star appears, then the red circle turns green"
    assert sorted(texts[1:]) == [
        "first a red circle moves left, then a blue star appears, and finally the red circle turns green",
        "three things happen: a red circle moves left, a blue star appears and the red circle turns green",
    ]


def test_every_question_has_its_exact_answer() -> None:
    asked = {q["question"]: (q["answer"], q["type"]) for q in questions(CLIP, CONFIG, np.random.default_rng(0))}
    expected = {
        "which way does the red circle move?": ("left", "direction"),
        "how many things happen in the video?": ("3", "count"),
        "how many objects move?": ("1", "count"),
        "how many objects appear?": ("1", "count"),
        "how many objects disappear?": ("0", "count"),
        "how many objects change color?": ("1", "count"),
        "how many objects are there at the start?": ("1", "count"),
        "how many objects are there at the end?": ("2", "count"),
        "when does the red circle move left?": ("start", "when"),  # frames 0-3 of 12: the first third
        "when does the blue star appear?": ("middle", "when"),  # frames 5-7: the second third
        "when does the red circle turn green?": ("end", "when"),
        "what color does the circle turn?": ("green", "change"),
        "what color is the circle before it changes color?": ("red", "change"),
        "which shape appears?": ("star", "change"),
        "what color is the shape that appears?": ("blue", "change"),
    }
    assert {q: a for q, a in asked.items() if a[1] != "order"} == expected
    orders = {q: a for q, (a, t) in asked.items() if t == "order"}
    assert len(orders) == 3
    starts = {"the red circle move left": 0, "the blue star appear": 5, "the red circle turn green": 9}
    starts |= {"the red circle moves left": 0, "the blue star appears": 5, "the red circle turns green": 9}
    for question, answer in orders.items():  # each pair asked once, whichever way round the draw put it
        a, b = question.removeprefix("does ").removesuffix("?").split(" before or after ")
        assert answer == ("before" if starts[a] < starts[b] else "after")


def test_frames_show_the_state_of_each_moment() -> None:
    def centre_x(pixels: np.ndarray, rgb: tuple[int, int, int]) -> float:
        hit = np.abs(pixels.astype(int) - rgb).sum(axis=2) < 30
        return float(np.nonzero(hit)[1].mean())

    first, moved = render_frame(CLIP, 0, CONFIG), render_frame(CLIP, 3, CONFIG)
    assert first is not None and moved is not None
    shift = centre_x(first, (215, 40, 40)) - centre_x(moved, (215, 40, 40))
    assert abs(shift - 0.4 * CONFIG.image_size) < 1.5  # moved left by 40% of the side
    star = (45, 85, 225)
    before, half, after = (render_frame(CLIP, f, CONFIG) for f in (5, 6, 7))
    assert not (np.abs(before.astype(int) - star).sum(axis=2) < 30).any()  # not there yet
    assert (np.abs(after.astype(int) - star).sum(axis=2) < 30).sum() > 50  # fully drawn
    mid = half[48, 32].astype(float)  # the star's centre, half faded in over the background
    assert np.allclose(mid, (np.array(star) + 50) / 2, atol=2)
    assert np.abs(render_frame(CLIP, 11, CONFIG)[19, 19].astype(int) - (45, 170, 60)).sum() < 4  # green at the end


def test_segments_are_ordered_and_long_enough() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        spans = sample_segments(rng, 16, 3, 3)
        assert all(end - start >= 3 for start, end in spans)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
        assert spans[0][0] >= 0 and spans[-1][1] <= 15
