"""`vlmkit train t2i` through the one trainer: exact resume (EMA included), sample sheets, the EMA exported."""

from __future__ import annotations

import pytest
import torch

from vlmkit.checkpoints import from_pretrained
from vlmkit.errors import ConfigError
from vlmkit.models.dit import DiT
from vlmkit.training.metrics import read_metrics
from vlmkit.training.recipes import RECIPES, T2IRecipe
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig


def _recipe(data, samples=None, **train) -> T2IRecipe:
    settings = dict(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, log_every=1, eval_every=2, save_every=2)
    settings.update(train)
    return T2IRecipe(
        data=str(data / "train"),
        image_size=16,
        preset="tiny",
        vocab_size=300,
        eval_images=8,
        ema_decay=0.9,
        samples_dir=str(samples) if samples else None,
        sample_steps=2,
        sample_prompts=["a red circle", "two shapes: a star and a heart"],
        train=TrainConfig(**settings),
    )


def _run(recipe, run_dir, resume=False, until=None):
    torch.manual_seed(0)
    return run(recipe, run_dir, device="cpu", resume=resume, until=until)


def _losses(run_dir):
    return [(line["step"], line["loss"]) for line in read_metrics(run_dir / "metrics.jsonl") if "loss" in line]


def test_t2i_is_a_registered_recipe():
    assert RECIPES["t2i"] is T2IRecipe


def test_interrupted_and_resumed_run_matches_uninterrupted_and_exports_the_ema(shapes_dataset, tmp_path):
    straight = _run(_recipe(shapes_dataset, tmp_path / "samples"), tmp_path / "straight")
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    assert any("eval/flow_loss" in line for line in read_metrics(tmp_path / "straight" / "metrics.jsonl"))
    _run(_recipe(shapes_dataset), tmp_path / "resumed", until=2)
    _run(_recipe(shapes_dataset), tmp_path / "resumed", resume=True)
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    exported, again = (from_pretrained(d / "model") for d in (tmp_path / "straight", tmp_path / "resumed"))
    assert isinstance(exported, DiT) and exported.tokenizer is not None
    for key, value in exported.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0)
    trained = straight.model.state_dict()  # the raw weights: the export is their average, not them
    assert not torch.equal(exported.state_dict()["head.weight"], trained["head.weight"])


def test_a_frozen_text_tower_from_a_dual_encoder(shapes_dataset, tmp_path):
    from testkit import tiny_model
    from vlmkit.checkpoints import save_pretrained

    save_pretrained(tiny_model("clip"), tmp_path / "clip")
    recipe = _recipe(shapes_dataset, steps=2, eval_every=0)
    recipe.text_from = str(tmp_path / "clip")
    prepared = recipe.prepare()
    assert not any(p.requires_grad for p in prepared.model.text.parameters())
    before = {k: v.clone() for k, v in prepared.model.text.state_dict().items()}
    result = _run(recipe, tmp_path / "run")
    assert all(torch.equal(before[k], v) for k, v in result.model.text.state_dict().items())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("cond_dropout", 1.0, "cond_dropout"), ("ema_decay", 1.0, "ema_decay"), ("train_text", True, "train_text")],
)
def test_bad_settings_name_their_field(shapes_dataset, field, value, message):
    settings = _recipe(shapes_dataset).to_dict() | {field: value}
    with pytest.raises(ConfigError, match=message):
        T2IRecipe.from_dict(settings)


def test_training_continues_from_a_t2i_model(shapes_dataset, tmp_path):
    first = _run(_recipe(shapes_dataset, steps=2, eval_every=0), tmp_path / "first")
    recipe = _recipe(shapes_dataset, steps=2, eval_every=0)
    recipe.init_from = str(first.model_dir)
    prepared = recipe.prepare()
    exported = from_pretrained(first.model_dir)
    assert all(torch.equal(v, exported.state_dict()[k]) for k, v in prepared.model.state_dict().items())
    assert prepared.model.tokenizer.to_dict() == exported.tokenizer.to_dict()
    recipe.image_size = 32
    with pytest.raises(ConfigError, match="generates 16 px"):
        recipe.prepare()


def test_an_x0_predicting_dit_trains_and_continues_only_as_one(shapes_dataset, tmp_path):
    recipe = _recipe(shapes_dataset, steps=2, eval_every=0)
    recipe.prediction = "x0"
    first = _run(recipe, tmp_path / "first")
    assert from_pretrained(first.model_dir).config.prediction == "x0"
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss in _losses(tmp_path / "first"))
    again = _recipe(shapes_dataset, steps=2, eval_every=0)
    again.init_from = str(first.model_dir)
    with pytest.raises(ConfigError, match=r"--prediction velocity: .* predicts x0"):
        again.prepare()
