"""`vlmkit train` flags come from the recipe's fields: every setting is one flag, `none` clears an optional
one, `--no-X` turns a switch off over a --config, and a resumed run keeps its settings."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from vlmkit.cli import main
from vlmkit.cli.recipe_flags import add_recipe_flags, settings_from_flags
from vlmkit.devices import resolve_device
from vlmkit.errors import ConfigError
from vlmkit.training.recipes import RECIPES, ClipRecipe


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_recipe_flags(parser, ClipRecipe)
    return parser.parse_args(argv)


def test_every_recipe_field_with_a_flag_form_has_one_and_round_trips():
    for recipe in RECIPES.values():
        parser = argparse.ArgumentParser()
        add_recipe_flags(parser, recipe)  # no two fields claim one flag (argparse would raise)
    base = {"lock_image": True, "eval_data": "val", "train": {"grad_clip": 1.0, "steps": 7}}
    args = _parse(["--no-lock-image", "--eval-data", "none", "--grad-clip", "none", "--lr", "0.01"])
    settings = settings_from_flags(args, ClipRecipe, base)
    assert settings["lock_image"] is False and settings["eval_data"] is None
    assert settings["train"] == {"grad_clip": None, "steps": 7, "lr": 0.01}
    recipe = ClipRecipe.from_dict({"data": "d", **settings})
    assert ClipRecipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


def test_per_module_lr_takes_prefix_number_pairs(capsys):
    args = _parse(["--per-module-lr", "projector=1e-3", "text=2e-5"])
    settings = settings_from_flags(args, ClipRecipe, {})
    assert settings["train"]["per_module_lr"] == {"projector": 1e-3, "text": 2e-5}
    with pytest.raises(SystemExit):
        _parse(["--per-module-lr", "projector"])
    assert "expected PREFIX=NUMBER" in capsys.readouterr().err


def test_a_resumed_run_refuses_other_settings(shapes_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "clip", "--data", str(shapes_dataset / "train"), "--out", str(out), "--image-size", "32"]
    args += ["--vocab-size", "300", "--steps", "2", "--batch-size", "8", "--eval-images", "8"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--resume", "--lr", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "was trained with train.lr=0.0005, this run asks for 0.1" in err and "Traceback" not in err
    assert main([*args, "--resume", "--eval-images", "4"]) == 0  # what is measured may change


def test_device_rules(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda", local_rank=1, world_size=2) == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="under torchrun each process takes its local GPU"):
        resolve_device("cuda:0", local_rank=1, world_size=2)
    with pytest.raises(ConfigError, match="GPU 3 does not exist"):
        resolve_device("cuda:3")
