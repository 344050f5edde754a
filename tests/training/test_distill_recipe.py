"""``train distill`` (dual encoders) and ``train distill-vlm`` on tiny models and data."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from testkit import tiny_clip_config, tiny_conse, tiny_tokenizer
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import DualEncoder
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.text import train_bpe_tokenizer
from vlmkit.training.recipes import RECIPES, ClipRecipe, DistillRecipe, DistillVlmRecipe
from vlmkit.training.recipes.distill import DistillBatch, DistillObjective
from vlmkit.training.run import run
from vlmkit.training.teacher import DualTeacher
from vlmkit.training.trainer import TrainConfig

STEPS = TrainConfig(steps=3, batch_size=8, warmup_steps=0, log_every=1)


def _log(run_dir):
    """The training rows of a run's metrics (evaluation rows left out)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if "loss" in row]


@pytest.fixture(scope="module")
def conse_dir(tmp_path_factory):
    """A tiny ConSE teacher (EfficientNet + BERT text): a different architecture from the student's."""
    path = tmp_path_factory.mktemp("conse")
    save_pretrained(tiny_conse(with_tokenizer=True), path)
    return path


def _distill(data, teacher, **settings):
    return DistillRecipe(data=data, image_size=32, vocab_size=300, teacher=str(teacher), train=STEPS, **settings)


def test_registered_and_validated(shapes_dataset, conse_dir):
    assert RECIPES["distill"] is DistillRecipe and RECIPES["distill-vlm"] is DistillVlmRecipe
    data = str(shapes_dataset / "train")
    with pytest.raises(ConfigError, match="teacher"):
        DistillRecipe(data=data).validate("distill")
    with pytest.raises(ConfigError, match="train clip"):
        _distill(data, conse_dir, image_weight=0).validate("distill")
    with pytest.raises(ConfigError, match=">= 0"):
        _distill(data, conse_dir, text_weight=-1).validate("distill")


def test_a_conse_teacher_distils_through_the_trainer_and_resumes(shapes_dataset, conse_dir, tmp_path):
    """All three terms against a CNN + BERT teacher; the export is a plain CLIP that `train clip --from` takes,
    and a run stopped at step 2 and resumed logs what the uninterrupted run logged."""
    recipe = _distill(
        str(shapes_dataset / "train"), conse_dir, teacher_image="features", text_weight=1.0, similarity_weight=1.0
    )
    whole = run(recipe, tmp_path / "whole", device="cpu")
    log = _log(tmp_path / "whole")
    assert {"contrastive_loss", "image_loss", "text_loss", "similarity_loss"} <= set(log[0])
    objective = recipe.prepare().objective
    assert objective.image_map.weight.shape == (16, 128)  # EfficientNet features (16) <- student embedding (128)
    assert objective.text_map.weight.shape == (32, 128)  # BERT embedding (32)
    exported = from_pretrained(whole.model_dir)
    assert isinstance(exported, DualEncoder)
    assert not any("map" in key for key in exported.state_dict())
    ClipRecipe(data=str(shapes_dataset / "train"), init_from=str(whole.model_dir)).prepare()

    run(recipe, tmp_path / "cut", device="cpu", until=2)
    run(recipe, tmp_path / "cut", device="cpu", resume=True)
    assert _log(tmp_path / "cut")[-1]["loss"] == pytest.approx(log[-1]["loss"], rel=1e-5)


def test_a_wider_clip_teacher_and_its_cached_targets(shapes_dataset, tmp_path, capsys):
    tokenizer = tiny_tokenizer()
    teacher = DualEncoder(tiny_clip_config(embed_dim=24, vocab_size=tokenizer.vocab_size)).eval()
    teacher.tokenizer, teacher.image_processor = tokenizer, ImagePreprocessor.clip(32)
    save_pretrained(teacher, tmp_path / "teacher")
    recipe = _distill(str(shapes_dataset / "train"), tmp_path / "teacher", text_weight=1.0)
    objective = recipe.prepare().objective
    assert objective.image_map.weight.shape == (24, 128)
    assert "saved" in capsys.readouterr().out
    recipe.prepare()
    assert "reusing" in capsys.readouterr().out  # the teacher's image targets come from the cache


def test_the_losses_vanish_when_the_student_is_its_own_teacher(shapes_dataset):
    """Same model, same pixels: the similarity KL and the (identity-mapped) embedding match are zero."""
    recipe = ClipRecipe(data=str(shapes_dataset / "train"), image_size=32, vocab_size=300, train=STEPS)
    prepared = recipe.prepare()
    student = prepared.model.eval()
    teacher = DualTeacher(copy.deepcopy(student))
    inner = prepared.batches
    batch = inner.batch(0, 0, 8, 0, 1)
    items = inner.draws.items(0, 0, 8, 0, 1)
    embeds = teacher.images(inner.images.pixels(items), "embedding")
    texts = tuple(inner.tokenizer.decode(ids) for ids in batch.input_ids)
    distill_batch = DistillBatch(
        pixels=batch.pixels,
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        teacher_images=embeds,
        teacher_image_embeds=embeds,
        texts=texts,
    )
    weights = {"contrastive": 0.0, "image": 1.0, "text": 1.0, "similarity": 1.0}
    objective = DistillObjective(prepared.objective, teacher, 128, 128, 128, weights, "cosine", 0.1)
    metrics = objective(student, distill_batch).metrics
    assert metrics["image_loss"] < 1e-5 and metrics["text_loss"] < 1e-5 and metrics["similarity_loss"] < 1e-5


def _vlm_dir(path, **settings):
    save_pretrained(tiny_vlm(**settings), path)
    return str(path)


def _distill_vlm(shapes_dataset, student, teacher, **settings):
    train = TrainConfig(steps=2, batch_size=4, warmup_steps=0, log_every=1)
    data = str(shapes_dataset / "train")
    return DistillVlmRecipe(data=data, init_from=student, teacher=teacher, train=train, **settings)


def test_distill_vlm_kl_is_zero_against_itself_and_positive_against_another(shapes_dataset, tmp_path):
    student = _vlm_dir(tmp_path / "student")
    run(_distill_vlm(shapes_dataset, student, student), tmp_path / "self", device="cpu")
    assert _log(tmp_path / "self")[0]["kl_loss"] < 1e-5  # step 1 is logged from the forward before any update
    # Another teacher with four times the image tokens (no pixel shuffle) and its own weights.
    torch.manual_seed(1)
    teacher = _vlm_dir(tmp_path / "teacher", pixel_shuffle=1)
    result = run(_distill_vlm(shapes_dataset, student, teacher), tmp_path / "other", device="cpu")
    first = _log(tmp_path / "other")[0]
    assert first["kl_loss"] > 1e-3 and first["next_token_loss"] > 0
    assert result.model_dir is not None and from_pretrained(result.model_dir).config.projector.pixel_shuffle == 2


def test_distill_vlm_refuses_a_teacher_with_another_vocabulary(shapes_dataset, tmp_path):
    student = _vlm_dir(tmp_path / "student")
    other = tiny_vlm()
    tokenizer = train_bpe_tokenizer(["a different corpus entirely"] * 4, 300, special_tokens=["<image>"])
    other.tokenizer = tokenizer
    save_pretrained(other, tmp_path / "teacher")
    with pytest.raises(InputError, match="one shared tokenizer"):
        _distill_vlm(shapes_dataset, student, str(tmp_path / "teacher")).prepare()
