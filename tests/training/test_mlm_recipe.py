"""``train mlm``: BERT's masking statistics, a falling loss on a tiny run, and an export ``train clip`` takes."""

from __future__ import annotations

import json

import pytest
import torch

from testkit import tiny_clip_config, tiny_tokenizer
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.errors import ConfigError
from vlmkit.models import DualEncoder
from vlmkit.processing.chat import IGNORE_INDEX
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.training.recipes import RECIPES, ClipRecipe, MlmRecipe
from vlmkit.training.recipes.mlm import mask_tokens
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig

MASK, VOCAB = 3, 50


def _mask(seed: int, ids: torch.Tensor, eligible: torch.Tensor):
    return mask_tokens(ids, eligible, MASK, VOCAB, torch.Generator().manual_seed(seed))


def test_masking_statistics_follow_bert_and_the_seed():
    ids = torch.randint(4, VOCAB, (400, 60), generator=torch.Generator().manual_seed(0))
    eligible = torch.ones_like(ids, dtype=torch.bool)
    eligible[:, 50:] = False  # say, padding
    corrupted, labels = _mask(1, ids, eligible)
    chosen = labels != IGNORE_INDEX
    assert not chosen[:, 50:].any() and (corrupted[:, 50:] == ids[:, 50:]).all()
    assert chosen.float().sum() / eligible.sum() == pytest.approx(0.15, abs=0.01)
    assert (labels[chosen] == ids[chosen]).all()
    masked = (corrupted[chosen] == MASK).float().mean()
    kept = (corrupted[chosen] == ids[chosen]).float().mean()  # kept, or replaced by itself (1/50 of 10%)
    assert masked == pytest.approx(0.8, abs=0.03) and kept == pytest.approx(0.1 + 0.1 / VOCAB, abs=0.02)
    assert (corrupted[~chosen] == ids[~chosen]).all()
    again, again_labels = _mask(1, ids, eligible)
    assert torch.equal(again, corrupted) and torch.equal(again_labels, labels)
    assert not torch.equal(_mask(2, ids, eligible)[1], labels)


def test_every_row_with_tokens_gets_a_target():
    ids = torch.full((64, 5), 10)
    eligible = torch.zeros_like(ids, dtype=torch.bool)
    eligible[:, 1:3] = True
    eligible[0] = False  # nothing to mask in row 0
    _, labels = _mask(0, ids, eligible)
    assert (labels[1:] != IGNORE_INDEX).any(1).all() and (labels[0] == IGNORE_INDEX).all()


def _recipe(shapes_dataset, steps: int, **settings) -> MlmRecipe:
    train = TrainConfig(steps=steps, batch_size=16, lr=3e-3, warmup_steps=2, log_every=1)
    return MlmRecipe(data=str(shapes_dataset / "train"), image_size=32, vocab_size=300, train=train, **settings)


def test_validated_and_registered(shapes_dataset):
    assert RECIPES["mlm"] is MlmRecipe
    with pytest.raises(ConfigError, match="mask_prob"):
        _recipe(shapes_dataset, 1, mask_prob=0).validate("mlm")


def test_the_loss_falls_on_a_loaded_dual_encoder(shapes_dataset, tmp_path):
    """A tiny CLIP (--from) without a mask token: one is added, and 30 steps lower the loss."""
    tokenizer = tiny_tokenizer()
    model = DualEncoder(tiny_clip_config(vocab_size=tokenizer.vocab_size, image_size=32))
    model.tokenizer, model.image_processor = tokenizer, ImagePreprocessor.clip(32)
    save_pretrained(model, tmp_path / "clip")
    result = run(_recipe(shapes_dataset, 30, init_from=str(tmp_path / "clip")), tmp_path / "mlm", device="cpu")
    rows = [json.loads(line) for line in (tmp_path / "mlm" / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:3]) / 3
    assert "eval/mlm_accuracy" in rows[-1]
    assert from_pretrained(result.model_dir).config.text.vocab_size == tokenizer.vocab_size + 1


def test_the_export_trains_in_clip(shapes_dataset, tmp_path):
    result = run(_recipe(shapes_dataset, 2), tmp_path / "mlm", device="cpu")
    model = from_pretrained(result.model_dir)
    assert isinstance(model, DualEncoder) and not model.config.text.causal  # bidirectional, as trained
    assert model.tokenizer.pad_to_max_length  # it reads its padding, so the padding is always the same
    assert model.tokenizer.tokenizer.token_to_id("<mask>") == model.config.text.vocab_size - 1
    assert not any(key.startswith("head") for key in model.state_dict())  # the MLM head was dropped
    train = TrainConfig(steps=1, batch_size=8, warmup_steps=0)
    clip = ClipRecipe(data=str(shapes_dataset / "train"), init_from=str(result.model_dir), train=train)
    assert run(clip, tmp_path / "clip", device="cpu").model_dir is not None


def test_a_causal_tower_can_stay_causal(shapes_dataset):
    prepared = _recipe(shapes_dataset, 1, bidirectional=False).prepare()
    assert prepared.model.config.text.causal
    batch = prepared.batches.batch(0, 0, 8, 0, 1)
    assert batch.attention_mask is not None  # a causal tower pools at EOS and reads the mask
    assert prepared.objective(prepared.model, batch).loss.isfinite()
