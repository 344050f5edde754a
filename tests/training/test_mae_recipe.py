"""`vlmkit train mae` through the one trainer, its tower in `train clip --vision-from` and `train align
--vision-from`, and FLIP's `--mask-ratio` on the contrastive recipes (dropped in training, never in eval)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from PIL import Image

from vlmkit.checkpoints import from_pretrained
from vlmkit.cli import main
from vlmkit.models import MaskedAutoencoder
from vlmkit.training.metrics import read_metrics
from vlmkit.training.recipes import RECIPES, ClipRecipe, MaeRecipe
from vlmkit.training.recipes.align import vision_tower
from vlmkit.training.recipes.clip import ContrastiveBatches
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig


def _mae(data, steps=4, **settings) -> MaeRecipe:
    train = TrainConfig(steps=steps, batch_size=16, lr=2e-3, warmup_steps=1, log_every=1, eval_every=2, save_every=2)
    return MaeRecipe(
        data=str(data / "train"), image_size=32, decoder_width=32, eval_images=8, pictures=2, train=train, **settings
    )


def _losses(run_dir):
    return [(line["step"], line["loss"]) for line in read_metrics(run_dir / "metrics.jsonl") if "loss" in line]


def test_mae_is_a_registered_recipe():
    assert RECIPES["mae"] is MaeRecipe


def test_mae_resumes_exactly_and_exports_a_tower_and_a_picture(shapes_dataset, tmp_path):
    straight = run(_mae(shapes_dataset), tmp_path / "straight", device="cpu")
    run(_mae(shapes_dataset), tmp_path / "resumed", device="cpu", until=2)
    run(_mae(shapes_dataset), tmp_path / "resumed", device="cpu", resume=True)
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    assert any("eval/reconstruction_loss" in line for line in read_metrics(tmp_path / "straight" / "metrics.jsonl"))
    exported = from_pretrained(straight.model_dir)
    assert isinstance(exported, MaskedAutoencoder) and exported.image_processor is not None
    picture = tmp_path / "straight" / "reconstructions.png"
    assert Image.open(picture).size[1] > 2 * 96  # two rows of masked / reconstruction / original


def test_mae_loss_decreases_on_a_tiny_run(shapes_dataset, tmp_path):
    recipe = _mae(shapes_dataset, steps=40)
    recipe.train = replace(recipe.train, log_every=5, eval_every=0, save_every=0)
    run(recipe, tmp_path / "run", device="cpu")
    losses = [loss for _, loss in _losses(tmp_path / "run")]
    assert losses[-1] < 0.8 * losses[0], losses  # predicting zeros scores ~1 on standardised patches


def test_the_mae_tower_starts_clip_and_align(shapes_dataset, tmp_path):
    mae = run(_mae(shapes_dataset, steps=2), tmp_path / "mae", device="cpu")
    encoder = mae.model.encoder.state_dict()
    clip = ClipRecipe(data=str(shapes_dataset / "train"), vocab_size=300, vision_from=str(tmp_path / "mae"))
    model = clip.prepare().model
    assert model.config.vision == mae.model.config.vision  # the tower's shape, not the preset's
    for key, value in model.vision.state_dict().items():
        torch.testing.assert_close(value, encoder[key], rtol=0, atol=0)
    assert model.image_processor == mae.model.image_processor
    tower, processor = vision_tower(str(tmp_path / "mae"))  # what `train align --vision-from` reads
    assert processor == mae.model.image_processor
    for key, value in tower.state_dict().items():
        torch.testing.assert_close(value, encoder[key], rtol=0, atol=0)


def test_flip_drops_patches_in_training_only(shapes_dataset, tmp_path):
    """Count the tokens the image tower's blocks see: a half of the patches in each training step, all of
    them in the held-out evaluation."""
    seen: list[tuple[bool, int]] = []

    class Spied(ClipRecipe):
        def prepare(self):
            prepared = super().prepare()
            blocks = prepared.model.vision.transformer
            blocks.register_forward_pre_hook(lambda module, args: seen.append((module.training, args[0].shape[1])))
            return prepared

    train = TrainConfig(steps=2, batch_size=8, lr=1e-3, warmup_steps=0, log_every=1, eval_every=0, save_every=0)
    recipe = Spied(data=str(shapes_dataset / "train"), image_size=32, vocab_size=300, mask_ratio=0.5, train=train)
    run(recipe, tmp_path / "run", device="cpu")
    assert [tokens for training, tokens in seen if training] == [1 + 8, 1 + 8]  # class token + 8 of 16 patches
    assert {tokens for training, tokens in seen if not training} == {1 + 16}
    assert any("eval/" in key for line in read_metrics(tmp_path / "run" / "metrics.jsonl") for key in line)


def test_flip_patches_are_drawn_per_image_and_reproducibly(shapes_dataset):
    recipe = ClipRecipe(data=str(shapes_dataset / "train"), image_size=32, vocab_size=300, mask_ratio=0.75)
    prepared = recipe.prepare()
    batches: ContrastiveBatches = prepared.batches  # type: ignore[assignment]
    first, again = batches.batch(0, 0, 8, 0, 1), batches.batch(0, 0, 8, 0, 1)
    assert first.patch_keep.shape == (8, 4)
    assert torch.equal(first.patch_keep, again.patch_keep)
    assert not torch.equal(first.patch_keep, batches.batch(0, 1, 8, 0, 1).patch_keep)
    unmasked = ClipRecipe(data=str(shapes_dataset / "train"), image_size=32, vocab_size=300).prepare()
    assert unmasked.batches.batch(0, 0, 8, 0, 1).patch_keep is None


@pytest.mark.parametrize(
    ("recipe", "ratio", "message"),
    [
        ("clip", "1", "--mask-ratio: expected a share in [0, 1), got 1.0"),
        ("siglip", "-0.1", "--mask-ratio: expected a share in [0, 1), got -0.1"),
        ("mae", "0", "--mask-ratio: expected a share in (0, 1)"),
        ("mae", "1.5", "--mask-ratio: expected a share in (0, 1)"),
    ],
)
def test_bad_mask_ratios_are_one_line(shapes_dataset, tmp_path, capsys, recipe, ratio, message):
    args = ["train", recipe, "--data", str(shapes_dataset / "train"), "--out", str(tmp_path / "run")]
    assert main([*args, "--mask-ratio", ratio]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_vision_from_is_only_from_scratch(shapes_dataset, tmp_path, capsys):
    args = ["train", "clip", "--data", str(shapes_dataset / "train"), "--out", str(tmp_path / "run")]
    assert main([*args, "--from", "x", "--vision-from", "y"]) == 2
    assert "--vision-from: only from scratch" in capsys.readouterr().err
