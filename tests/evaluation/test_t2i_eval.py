"""``evaluate`` on a text-to-image model: GenEval, CLIPScore and the Frechet distance on one set of images,
each equal to its own function run directly, cached by key, and reported like every other evaluation."""

from __future__ import annotations

import json

import pytest
import torch

import vlmkit.evaluation.t2i as t2i_module
from t2i_kit import tiny_dit
from testkit import TINY_EFFNET, perturb, tiny_model
from vlmkit.config import EfficientNetConfig
from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split
from vlmkit.errors import InputError
from vlmkit.evaluation.clip_score import clip_score
from vlmkit.evaluation.frechet import image_frechet_distance
from vlmkit.evaluation.geneval import TASKS, evaluate_model
from vlmkit.evaluation.runner import evaluate
from vlmkit.evaluation.t2i import AT_SPLIT_SIDE, T2IEvaluation, _renders
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.tasks.imagine import ImagineSettings


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    config = ShapesWorldConfig(image_size=64, max_objects=3)
    return generate_split(tmp_path_factory.mktemp("sw") / "test", config, "test", 60, seed=3, workers=1, progress=False)


@pytest.fixture(scope="module")
def scorers():
    torch.manual_seed(0)
    clip = perturb(tiny_model(), 0.2)
    extractor = EfficientNet(EfficientNetConfig(**{**TINY_EFFNET.to_dict(), "num_classes": 0})).eval()
    return clip, extractor


def _options(scorers, **overrides) -> T2IEvaluation:
    clip, extractor = scorers
    settings = dict(per_task=1, images_per_prompt=2, settings=ImagineSettings(steps=2), clip=clip, extractor=extractor)
    return T2IEvaluation(**{**settings, **overrides})


def test_one_set_of_images_gives_all_three_scores(split, scorers, tmp_path):
    model = tiny_dit()
    options = _options(scorers, clip_name="tiny-clip")
    report = evaluate(model, split, tmp_path, t2i=options)
    assert report["model_type"] == "DiT" and set(report["tasks"]) == {"geneval", "clip_score", "frechet_distance"}
    scores, prompts, images = evaluate_model(model, split, 1, 2, ImagineSettings(steps=2))
    geneval = report["tasks"]["geneval"]
    assert {t: geneval[t] for t in [*TASKS, "overall"]} == scores
    assert geneval["prompts"] == len(prompts) == report["records"] and geneval["images"] == 2 * len(prompts)
    flat = [image for group in images for image in group]
    texts = [p.prompt for p in prompts for _ in range(2)]
    clip = report["tasks"]["clip_score"]
    assert clip["clip_score"] == pytest.approx(clip_score(scorers[0], flat, texts), abs=1e-5)
    assert clip["real_renders"] == pytest.approx(
        clip_score(scorers[0], _renders(split, prompts), [p.prompt for p in prompts]), abs=1e-5
    )
    assert clip["scorer"] == "tiny-clip" and clip["weight"] == 100 and set(clip["per_task"]) == set(TASKS)
    frechet = report["tasks"]["frechet_distance"]
    direct = image_frechet_distance(scorers[1], flat, _renders(split, prompts), "a given extractor" + AT_SPLIT_SIDE)
    assert frechet == pytest.approx(direct)
    assert frechet["generated"] == 2 * len(prompts) and frechet["reference"] == len(prompts)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["tasks"]["geneval"]["overall"] == scores["overall"]
    markdown = (tmp_path / "report.md").read_text()
    assert "## geneval" in markdown and "## clip_score" in markdown and "| fd |" in markdown


def test_a_repeated_run_reuses_the_cache_and_a_new_setting_does_not(split, scorers, tmp_path, monkeypatch):
    model = tiny_dit()
    evaluate(model, split, tmp_path, t2i=_options(scorers))
    calls = []
    original = t2i_module.evaluate_model
    monkeypatch.setattr(t2i_module, "evaluate_model", lambda *a, **k: calls.append(1) or original(*a, **k))
    evaluate(model, split, tmp_path, t2i=_options(scorers))
    assert calls == []
    evaluate(model, split, tmp_path, t2i=_options(scorers, settings=ImagineSettings(steps=3)))
    assert calls == [1]  # drawn once for all three tasks


def test_without_a_scorer_there_is_no_clip_score(split, scorers, tmp_path):
    report = evaluate(tiny_dit(), split, tmp_path, t2i=_options(scorers, clip=None))
    assert set(report["tasks"]) == {"geneval", "frechet_distance"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(per_task=0), "per_task"),
        (dict(images_per_prompt=65), "images_per_prompt"),
        (dict(settings=ImagineSettings(steps=-1)), "steps"),
        (dict(settings=ImagineSettings(guidance=float("nan"))), "guidance"),
    ],
)
def test_bad_settings_are_one_line(split, scorers, tmp_path, overrides, message):
    with pytest.raises(InputError, match=message) as error:
        evaluate(tiny_dit(), split, tmp_path, t2i=_options(scorers, **overrides))
    assert "\n" not in str(error.value)


def test_a_split_that_is_not_shapesworld_and_a_limit_are_refused(split, scorers, tmp_path):
    with pytest.raises(InputError, match="ShapesWorld split"):
        evaluate(tiny_dit(), tmp_path, tmp_path / "out", t2i=_options(scorers))
    with pytest.raises(InputError, match="prompts per task"):
        evaluate(tiny_dit(), split, tmp_path, limit=5, t2i=_options(scorers))
