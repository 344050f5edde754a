"""``vlmkit eval --model DIT``: GenEval, CLIPScore (``--clip``) and the Frechet distance in one report, the
same GenEval as ``vlmkit geneval``; bad settings and the wrong kind of scorer are one line, exit 2."""

from __future__ import annotations

import json

import pytest

import vlmkit.evaluation.t2i as t2i_module
from t2i_kit import tiny_dit
from testkit import TINY_EFFNET, tiny_model
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main
from vlmkit.config import EfficientNetConfig
from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split
from vlmkit.models.efficientnet import EfficientNet


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("t2i-eval")
    split = generate_split(
        root / "test", ShapesWorldConfig(image_size=64, max_objects=3), "test", 60, seed=4, workers=1, progress=False
    )
    return {
        "data": str(split),
        "dit": str(save_pretrained(tiny_dit(), root / "dit")),
        "clip": str(save_pretrained(tiny_model(), root / "clip")),
        "vlm": str(save_pretrained(tiny_vlm(), root / "vlm")),
    }


@pytest.fixture
def tiny_extractor(monkeypatch):
    """The Frechet distance on a tiny random EfficientNet instead of building the packaged Lite0."""
    network = EfficientNet(EfficientNetConfig(**{**TINY_EFFNET.to_dict(), "num_classes": 0})).eval()
    monkeypatch.setattr(t2i_module, "load_extractor", lambda device: network)


SAMPLE = ["--per-task", "1", "--images-per-prompt", "2", "--steps", "2"]


def test_eval_on_a_dit_writes_one_report_with_the_geneval_of_geneval(paths, tmp_path, capsys, tiny_extractor):
    out = tmp_path / "report"
    argv = ["eval", "--model", paths["dit"], "--data", paths["data"], "--clip", paths["clip"], *SAMPLE]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "geneval" in printed and "clip_score" in printed and "frechet_distance" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["tasks"]["clip_score"]["scorer"] == paths["clip"]
    assert report["tasks"]["frechet_distance"]["fd"] >= 0
    geneval = ["geneval", "--model", paths["dit"], "--data", paths["data"], "--per-task", "1", "-n", "2"]
    assert main([*geneval, "--steps", "2"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert alone["overall"] == report["tasks"]["geneval"]["overall"]
    assert all(alone[task] == report["tasks"]["geneval"][task] for task in t2i_module.TASKS)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--steps", "-1"], "steps: expected an integer"),
        (["--guidance", "nan"], "guidance: expected a finite number"),
        (["--images-per-prompt", "1000"], "images_per_prompt: expected an integer in 1..64"),
        (["--per-task", "0"], "per_task: expected a positive integer"),
        (["--limit", "3"], "prompts per task"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(paths, tmp_path, capsys, flags, expected):
    argv = ["eval", "--model", paths["dit"], "--data", paths["data"], "--out", str(tmp_path / "r"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "r" / "report.json").exists()


def test_the_scorer_must_be_a_dual_encoder(paths, tmp_path, capsys):
    argv = ["eval", "--model", paths["dit"], "--data", paths["data"], "--clip", paths["vlm"], *SAMPLE]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "eval --clip needs a dual encoder" in err and err.count("\n") == 1, err


def test_geneval_refuses_bad_settings_in_one_line(paths, capsys):
    for flags, expected in ((["--steps", "-1"], "steps"), (["--guidance", "nan"], "guidance"), (["-n", "1000"], "-n")):
        assert main(["geneval", "--model", paths["dit"], "--data", paths["data"], *flags]) == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, err
