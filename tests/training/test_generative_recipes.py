"""The generative pipeline end to end on tiny data: lm -> align -> instruct (LoRA) -> eval."""

from __future__ import annotations

import pytest
import torch

from vlmkit.checkpoints import from_pretrained
from vlmkit.evaluation.runner import evaluate
from vlmkit.models import VisionLanguageModel
from vlmkit.tasks.chat import ask
from vlmkit.training.distributed import init_distributed
from vlmkit.training.recipes import contrastive, generative
from vlmkit.training.trainer import TrainConfig, Trainer


def _train(module, recipe, run_dir):
    model, task = module.prepare(recipe)
    Trainer(model, task, recipe.train, run_dir, init_distributed("cpu")).fit()
    return model, module.export(model, run_dir)


STEPS = TrainConfig(steps=2, batch_size=8, warmup_steps=0, log_every=1)


@pytest.fixture(scope="module")
def parts(shapes_dataset, tmp_path_factory):
    """A 2-step CLIP run and a 2-step LM: the inputs of the align stage."""
    root = tmp_path_factory.mktemp("parts")
    data = str(shapes_dataset / "train")
    _train(
        contrastive, contrastive.ContrastiveRecipe(data=data, image_size=32, vocab_size=300, train=STEPS), root / "clip"
    )
    _, lm_dir = _train(
        generative, generative.GenerativeRecipe(stage="lm", data=data, vocab_size=300, train=STEPS), root / "lm"
    )
    return str(root / "clip"), str(lm_dir)


def test_align_can_train_the_decoder(shapes_dataset, parts):
    clip_dir, lm_dir = parts
    recipe = generative.GenerativeRecipe(
        stage="align", data=str(shapes_dataset / "train"), vision_from=clip_dir, decoder_from=lm_dir, train_decoder=True
    )
    model, _ = generative.prepare(recipe)
    assert all(p.requires_grad for p in model.decoder.parameters())
    assert not any(p.requires_grad for p in model.vision.parameters())


def test_lm_align_instruct_eval(shapes_dataset, parts, tmp_path):
    data = str(shapes_dataset / "train")
    steps = STEPS
    clip_dir, lm_dir = parts
    align = generative.GenerativeRecipe(
        stage="align", data=data, vision_from=clip_dir, decoder_from=lm_dir, train=steps
    )
    model, task = generative.prepare(align)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model, task, align.train, tmp_path / "align", init_distributed("cpu")).fit()
    after = model.state_dict()
    frozen = [k for k in before if k.startswith(("vision.", "decoder."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("projector."))
    align_dir = generative.export(model, tmp_path / "align")

    instruct = generative.GenerativeRecipe(
        stage="instruct",
        data=data,
        init_from=str(align_dir),
        lora_rank=4,
        eval_data=str(shapes_dataset / "val"),
        eval_images=2,
        train=steps,
    )
    model, vlm_dir = _train(generative, instruct, tmp_path / "vlm")
    loaded = from_pretrained(vlm_dir)
    assert isinstance(loaded, VisionLanguageModel)
    assert not any("lora" in key for key in loaded.state_dict())  # adapters merged on export
    image = shapes_dataset / "val" / "images" / "000000.png"
    assert isinstance(ask(loaded, image, "what color is the circle?"), str)

    report = evaluate(loaded, shapes_dataset / "val", tmp_path / "eval", limit=2, batch_size=4)
    assert 0 <= report["tasks"]["vqa"]["accuracy"] <= 1
    assert "circular_accuracy" in report["tasks"]["multiple_choice"]
    assert "cider_d" in report["tasks"]["captioning"]
    assert report["tasks"]["image_reliance"]["caption_loss"] > 0
