"""``vlmkit imagine`` on a saved tiny DiT: a sheet, per-image files, the same pixels for the same seed,
and one line with exit 2 for each bad request."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from t2i_kit import tiny_dit
from testkit import tiny_model
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(save_pretrained(tiny_dit(), tmp_path_factory.mktemp("dit") / "model"))


def test_imagine_writes_a_sheet_and_the_images(model_dir, tmp_path, capsys):
    args = ["imagine", "a red circle", "a blue square", "--model", model_dir, "-n", "2", "--seed", "3", "--steps", "3"]
    assert main([*args, "--out", str(tmp_path / "grid.png"), "--images", str(tmp_path / "a")]) == 0
    assert "4 image(s) of 16 px" in capsys.readouterr().out
    assert Image.open(tmp_path / "grid.png").size[0] > 2 * 128
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["000_000.png", "000_001.png", "001_000.png", "001_001.png"]
    assert main([*args, "--out", str(tmp_path / "again.png"), "--images", str(tmp_path / "b")]) == 0
    for name in files:
        assert np.array_equal(
            np.asarray(Image.open(tmp_path / "a" / name)), np.asarray(Image.open(tmp_path / "b" / name))
        )


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["", "--steps", "2"], "prompts[0]"),
        (["a dog", "--steps", "-1"], "steps"),
        (["a dog", "--guidance", "nan"], "guidance"),
        (["a dog", "-n", "1000"], "at most 64"),
        (["a dog", "--sampler", "ddim"], "sampler"),
    ],
)
def test_bad_requests_are_one_line_and_exit_2(model_dir, tmp_path, capsys, flags, expected):
    assert main(["imagine", *flags, "--model", model_dir, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_a_dual_encoder_cannot_imagine(tmp_path, capsys):
    save_pretrained(tiny_model(), tmp_path / "clip")
    assert main(["imagine", "a dog", "--model", str(tmp_path / "clip"), "--out", str(tmp_path / "x.png")]) == 2
    assert "needs a text-to-image model" in capsys.readouterr().err


def test_geneval_validates_the_reader_and_scores_a_model(model_dir, tmp_path, capsys):
    import json

    from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split

    split = generate_split(
        tmp_path / "test",
        ShapesWorldConfig(image_size=64, max_objects=2),
        "test",
        30,
        seed=2,
        workers=1,
        progress=False,
    )
    assert main(["geneval", "--data", str(split), "--validate-reader", "--limit", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 4
    args = ["geneval", "--data", str(split), "--model", model_dir, "--per-task", "1", "-n", "1", "--steps", "2"]
    assert main([*args, "--sheet", str(tmp_path / "sheet.png")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["overall"] <= 1.0 and (tmp_path / "sheet.png").exists()
