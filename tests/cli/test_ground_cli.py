"""``vlmkit detect | segment`` on a saved tiny grounding VLM (answers scripted), and their refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import vlmkit.checkpoints
import vlmkit.tasks.ground as ground
from grounding_kit import GridCodec, grounding_vlm, script
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main
from vlmkit.processing.locations import format_object, format_objects


@pytest.fixture
def scene(tmp_path):
    path = tmp_path / "scene.png"
    Image.new("RGB", (64, 64), (30, 30, 30)).save(path)
    return str(path)


@pytest.fixture
def model_dir(tmp_path):
    save_pretrained(grounding_vlm(), tmp_path / "vlm")
    return str(tmp_path / "vlm")


def test_detect_prints_boxes_draws_them_and_writes_json(model_dir, scene, tmp_path, capsys, monkeypatch):
    answer = format_objects(
        [format_object("star", [4, 4, 20, 20], 64, 64), format_object("circle", [30, 8, 60, 40], 64, 64)]
    )
    seen = script(monkeypatch, ground, lambda prompt: answer)
    out = tmp_path / "boxes.png"
    assert main(["detect", scene, "star ; circle", "--model", model_dir, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "star  [4.0, 4.0, 20.0, 20.0]" in printed and "circle  [30.0, 8.0, 60.0, 40.0]" in printed  # to 0.1 px
    assert "detect star ; circle" in seen[0]
    assert Image.open(out).size == (384, 384)
    assert main(["detect", scene, "star ; circle", "--model", model_dir, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [o["label"] for o in result["objects"]] == ["star", "circle"]
    assert result["objects"][0]["box"] == pytest.approx([4.0, 4.0, 20.0, 20.0], abs=0.05) and result["text"] == answer
    assert main(["detect", scene, "--model", model_dir]) == 0  # every object
    assert "detect every object" in seen[-1]
    script(monkeypatch, ground, lambda prompt: "<loc0001> nothing")
    assert main(["detect", scene, "star", "--model", model_dir]) == 0
    assert "no object found; the model wrote: '<loc0001> nothing'" in capsys.readouterr().out


@pytest.fixture
def vae(monkeypatch):
    """The mask tokenizer "vae": loading it gives the stand-in GridCodec; any other source loads as usual."""
    load = vlmkit.checkpoints.from_pretrained
    monkeypatch.setattr(
        vlmkit.checkpoints,
        "from_pretrained",
        lambda source, **kw: GridCodec() if source == "vae" else load(source, **kw),
    )
    return "vae"


def test_segment_decodes_masks_with_the_mask_tokenizer(model_dir, scene, tmp_path, capsys, monkeypatch, vae):
    codes = [127] * 16  # the whole box
    script(monkeypatch, ground, lambda prompt: format_object("the red star", [8, 8, 24, 40], 64, 64, codes))
    out = tmp_path / "masks.png"
    argv = ["segment", scene, "the red star", "--model", model_dir, "--mask-tokenizer", vae, "--out", str(out)]
    assert main(argv) == 0
    assert "the red star  [8.0, 8.0, 24.0, 40.0]  mask 512 px" in capsys.readouterr().out
    picture = np.asarray(Image.open(out))
    assert (picture[20 * 6, 12 * 6] != 30).any() and (picture[50 * 6, 50 * 6] == 30).all()
    assert main([*argv[:-2], "--json"]) == 0
    (found,) = json.loads(capsys.readouterr().out)["objects"]
    assert sum(found["mask"]["counts"][1::2]) == 512


def test_models_that_cannot_ground_are_refused_in_one_line(tmp_path, scene, capsys):
    save_pretrained(tiny_vlm(), tmp_path / "plain")
    assert main(["detect", scene, "star", "--model", str(tmp_path / "plain")]) == 2
    err = capsys.readouterr().err
    assert "has no location tokens" in err and err.count("\n") == 1


def test_eval_scores_masks_with_a_mask_tokenizer(model_dir, shapes_dataset, tmp_path, capsys, monkeypatch, vae):
    codes = [127] * 16  # every mask fills its box
    script(monkeypatch, ground, lambda prompt: format_object("the red star", [8, 8, 24, 40], 32, 32, codes))
    argv = ["eval", "--model", model_dir, "--data", str(shapes_dataset / "val"), "--limit", "2", "--json"]
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    assert "segmentation" not in json.loads(capsys.readouterr().out)["tasks"]
    assert main([*argv, "--out", str(tmp_path / "masks"), "--mask-tokenizer", vae]) == 0
    segmentation = json.loads(capsys.readouterr().out)["tasks"]["segmentation"]
    assert segmentation["expressions"] > 0 and 0.0 <= segmentation["miou"] <= 1.0
    assert main([*argv, "--mask-tokenizer", model_dir]) == 2
    err = capsys.readouterr().err
    assert "--mask-tokenizer needs a mask tokenizer" in err and err.count("\n") == 1
