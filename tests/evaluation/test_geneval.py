"""GenEval for ShapesWorld: prompts from captions, requirements from objects, and its scores on real
renders (which meet their own captions) and on a random model."""

from __future__ import annotations

import pytest
from PIL import Image

from t2i_kit import tiny_dit
from vlmkit.data.records import read_records
from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split
from vlmkit.evaluation.geneval import TASKS, GenEvalPrompt, evaluate_model, geneval_prompts, satisfied, score
from vlmkit.evaluation.scene_reader import ReadObject
from vlmkit.tasks.imagine import ImagineSettings


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    config = ShapesWorldConfig(image_size=64, max_objects=4)
    return generate_split(tmp_path_factory.mktemp("sw") / "test", config, "test", 80, seed=1, workers=1, progress=False)


def _obj(shape, color, x, y) -> ReadObject:
    return ReadObject(shape, color, "medium", (x - 5, y - 5, x + 5, y + 5), 100, 1.0)


def test_every_requirement_must_hold():
    position = GenEvalPrompt(
        "position", "a red star above a blue circle", (("star", "red"), ("circle", "blue")), relation="above"
    )
    star, circle = _obj("star", "red", 30, 10), _obj("circle", "blue", 30, 40)
    assert satisfied(position, [circle, star], margin=3)
    assert not satisfied(position, [_obj("star", "red", 30, 50), circle], margin=3)  # below, not above
    assert not satisfied(position, [_obj("star", "pink", 30, 10), circle], margin=3)  # wrong colour
    two = GenEvalPrompt("two_objects", "two shapes: two stars", (("star", None), ("star", None)), count=2)
    assert satisfied(two, [star, _obj("star", "blue", 5, 5)], margin=3)
    assert not satisfied(two, [star], margin=3)  # one star cannot be both
    assert not satisfied(two, [star, star, circle], margin=3)  # three objects, not two


def test_prompts_are_the_splits_captions_and_cover_the_six_tasks(split):
    prompts = geneval_prompts(split, per_task=5)
    assert {p.task for p in prompts} == set(TASKS)
    captions = {c for r in read_records(split).records for c in r.captions or []}
    assert all(p.prompt in captions for p in prompts)
    assert len({(p.task, p.prompt) for p in prompts}) == len(prompts)


def test_real_renders_meet_their_own_prompts(split):
    """The oracle: each prompt scored on the image whose caption it is must pass (up to reader errors)."""
    by_caption = {}
    for record in read_records(split).records:
        for caption in record.captions or []:
            by_caption.setdefault(caption, split / str(record.image))
    prompts = geneval_prompts(split, per_task=5)
    images = [[Image.open(by_caption[p.prompt]).convert("RGB")] for p in prompts]
    scores = score(prompts, images, margin_share=0.04)
    assert scores["overall"] >= 0.9, scores


def test_a_random_model_is_scored_on_every_task(split):
    scores, prompts, images = evaluate_model(
        tiny_dit(), split, per_task=1, images_per_prompt=1, settings=ImagineSettings(steps=2)
    )
    assert set(scores) == {*TASKS, "overall"} and len(images) == len(prompts) == 6
    assert images[0][0].size == (64, 64)  # read at the split's resolution
