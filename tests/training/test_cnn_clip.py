"""`train clip --vision-from` a ConSE model: a frozen ImageNet-style CNN under a trained pooling head, its tokens
computed once and shared with a VLM built on the same CNN."""

from __future__ import annotations

import pytest
import torch

from testkit import TINY_EFFNET, tiny_conse
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.cli import main
from vlmkit.models.cnn_tower import CnnTower
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.training.recipes import ClipRecipe
from vlmkit.training.recipes.align import vision_tower
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig
from vlmkit.training.vision_cache import tokens_key


@pytest.fixture
def conse_dir(tmp_path):
    return save_pretrained(tiny_conse(with_tokenizer=True), tmp_path / "conse")


def _recipe(shapes_dataset, source, steps=6, **settings) -> ClipRecipe:
    train = TrainConfig(steps=steps, batch_size=16, lr=3e-3, warmup_steps=1, log_every=1, eval_every=steps)
    return ClipRecipe(
        data=str(shapes_dataset / "train"),
        vision_from=str(source),
        vocab_size=300,
        eval_images=8,
        train=train,
        **settings,
    )


@pytest.mark.parametrize("cell_colours", [False, True])
def test_the_backbone_stays_frozen_while_the_head_learns(shapes_dataset, conse_dir, tmp_path, cell_colours):
    source = from_pretrained(conse_dir)
    recipe = _recipe(shapes_dataset, conse_dir, steps=30, cell_colours=cell_colours)
    result = run(recipe, tmp_path / "run", device="cpu")
    tower = result.model.vision
    assert isinstance(tower, CnnTower) and tower.pool.reads_pixels == cell_colours
    for name, value in tower.backbone.state_dict().items():  # BatchNorm statistics included
        torch.testing.assert_close(value, source.vision.state_dict()[name], rtol=0, atol=0)
    losses = [
        line["loss"]
        for line in map(eval_json, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
        if "loss" in line
    ]
    assert losses[-1] < losses[0], losses
    assert "zero_shot_top1" in result.metrics and "t2i_R@1" in result.metrics


@pytest.mark.parametrize("level", [-1, 2])
def test_its_tokens_are_the_vlm_s_tokens_of_the_same_cnn(shapes_dataset, conse_dir, tmp_path, level):
    """One cache file for a CLIP's frozen CNN and a VLM's built on the same weights, preprocessing and feature
    map; another map is another file."""
    from vlmkit.config import ProjectorConfig, VlmConfig
    from vlmkit.models import VisionLanguageModel

    clip = run(_recipe(shapes_dataset, conse_dir, steps=2, vision_layer=level), tmp_path / "run", device="cpu").model
    assert clip.vision.pool.position.shape[1] == TINY_EFFNET.feature_shape(level)[1] ** 2
    backbone, processor = vision_tower(str(tmp_path / "run"))  # what `train align --vision-from RUN` reads
    assert isinstance(backbone, EfficientNet) and processor == clip.image_processor
    decoder = VlmConfig().decoder.__class__(vocab_size=64, width=32, layers=1, heads=4, kv_heads=4, mlp_dim=64)
    vlm = VisionLanguageModel(
        VlmConfig(
            vision=backbone.config, decoder=decoder, projector=ProjectorConfig(vision_layer=level), image_token_id=3
        )
    )
    vlm.vision.load_state_dict(backbone.state_dict())
    vlm.image_processor = processor
    pixels = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert tokens_key(vlm, pixels) == tokens_key(clip, pixels)
    vlm.config.projector.vision_layer = -1 - level  # the other map
    assert tokens_key(vlm, pixels) != tokens_key(clip, pixels)
    vlm.config.projector.vision_layer = level
    normalized = processor.normalize(pixels)
    with torch.no_grad():
        torch.testing.assert_close(vlm.eval().vision_tokens(normalized), clip.eval().vision.tokens(normalized))


def test_flip_on_a_cnn_is_one_line(shapes_dataset, conse_dir, tmp_path, capsys):
    code = main(
        [
            "train",
            "clip",
            "--data",
            str(shapes_dataset / "train"),
            "--vision-from",
            str(conse_dir),
            "--mask-ratio",
            "0.5",
            "--out",
            str(tmp_path / "run"),
            "--steps",
            "1",
            "--batch-size",
            "8",
        ]
    )
    assert code == 2
    assert "patch dropping (FLIP) needs a ViT image tower" in capsys.readouterr().err


def eval_json(line: str) -> dict:
    import json

    return json.loads(line)


def test_cnn_head_options_without_a_cnn_are_one_line(shapes_dataset, tmp_path, capsys):
    code = main(
        [
            *("train", "clip", "--data", str(shapes_dataset / "train"), "--cell-colours"),
            *("--out", str(tmp_path / "run"), "--steps", "1", "--batch-size", "8"),
        ]
    )
    assert code == 2
    assert "needs --vision-from a CNN" in capsys.readouterr().err
