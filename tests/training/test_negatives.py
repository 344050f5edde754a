"""Hard negatives: one swapped word, still grammatical, always false, and fed to the loss as extra texts."""

from __future__ import annotations

import random
import shutil

import pytest
import torch

from vlmkit.data.shapesworld import COLORS, SHAPES
from vlmkit.data.shapesworld.language import interchangeable_words
from vlmkit.errors import ConfigError
from vlmkit.training.negatives import WordSwapper
from vlmkit.training.recipes import ClipRecipe
from vlmkit.training.trainer import TrainConfig

SWAPPER = WordSwapper(interchangeable_words(list(COLORS), list(SHAPES)))


def _changed_words(a: str, b: str) -> list[tuple[str, str]]:
    """Word pairs that differ, articles aside (they follow the swapped word)."""
    return [(x, y) for x, y in zip(a.split(), b.split(), strict=True) if x != y and {x, y} != {"a", "an"}]


def test_exactly_one_word_changes_within_its_group() -> None:
    rng = random.Random(0)
    groups = [set(g) for g in interchangeable_words(list(COLORS), list(SHAPES))]
    caption = "from left to right: a large red diamond, two small blue crosses and a medium white star"
    for _ in range(200):
        negative = SWAPPER(caption, rng)
        (old, new), *rest = _changed_words(caption, negative)
        assert not rest
        old, new = old.rstrip(","), new.rstrip(",")
        assert any(old in g and new in g for g in groups) and old != new


def test_the_article_follows_the_new_word() -> None:
    rng = random.Random(1)
    negatives = {SWAPPER("there is an orange star", rng) for _ in range(300)}
    assert "there is a red star" in negatives and "there is an orange heart" in negatives
    assert not any(" a orange" in n or " an red" in n for n in negatives)


def test_nothing_to_swap_gives_none() -> None:
    assert SWAPPER("a picture of nothing", random.Random(0)) is None


def test_a_word_in_two_groups_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="more than one"):
        WordSwapper([["red", "blue"], ["red", "green"]])
    with pytest.raises(ConfigError, match="two distinct"):
        WordSwapper([["red"]])


def _recipe(data, hard_negatives: bool = True) -> ClipRecipe:
    return ClipRecipe(
        data=str(data),
        image_size=32,
        vocab_size=300,
        eval_images=16,
        hard_negatives=hard_negatives,
        train=TrainConfig(steps=1, batch_size=8, warmup_steps=0),
    )


def test_each_image_gets_a_false_twin_of_its_caption(shapes_dataset) -> None:
    torch.manual_seed(0)
    prepared = _recipe(shapes_dataset / "train").prepare()
    model = prepared.model
    batch = prepared.batches.batch(epoch=0, index=0, micro_batch=8, rank=0, world_size=1)
    pixels, ids, words = batch.pixels, batch.input_ids, batch.word_targets
    assert pixels.shape[0] == 8 and ids.shape[0] == 16
    decoded = model.tokenizer.tokenizer.decode_batch(ids.tolist())
    for positive, negative in zip(decoded[:8], decoded[8:], strict=True):
        assert len(_changed_words(positive, negative)) == 1
    assert words is None  # no caption-word loss asked for
    loss = prepared.objective(model, batch).loss
    loss.backward()
    assert torch.isfinite(loss) and model.logit_scale.grad is not None


def test_hard_negatives_need_word_groups(shapes_dataset, tmp_path) -> None:
    folder = shutil.copytree(shapes_dataset / "train", tmp_path / "plain")
    (folder / "shapesworld.json").unlink()
    with pytest.raises(ConfigError, match="not a ShapesWorld folder"):
        _recipe(folder).prepare()
