"""Text tokenizer: CLIP parity with transformers, SigLIP framing rules, loading and training."""

from __future__ import annotations

import dataclasses
import json
import string
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from vlmkit.errors import CheckpointError, ConfigError, InputError
from vlmkit.processing.text import TextTokenizer, train_bpe_tokenizer

TEXTS = [
    "A photo of a cat.",
    "the  CAT sat on the mat!",
    "x",
    "",
    "café 42",
    "the cat sat on the mat " * 12,  # far longer than 77 tokens
]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIP tokenizer written by transformers itself: characters plus a few merges."""
    transformers = pytest.importorskip("transformers")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + string.punctuation:
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    merges = [("t", "h"), ("th", "e</w>"), ("c", "a"), ("ca", "t</w>"), ("a", "t</w>")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    directory = tmp_path_factory.mktemp("clip_tokenizer")
    transformers.CLIPTokenizer(vocab=vocab, merges=merges).save_pretrained(directory)
    return directory


def _hf(clip_dir: Path):
    return pytest.importorskip("transformers").CLIPTokenizer.from_pretrained(clip_dir)


def test_clip_matches_transformers_padding_to_longest(clip_dir: Path) -> None:
    ours = TextTokenizer.from_hf_dir(clip_dir)
    assert (ours.bos_id, ours.eos_id, ours.pad_id, ours.max_length) == (0, 1, 1, 77)
    assert not ours.pad_to_max_length
    expected = _hf(clip_dir)(TEXTS, padding=True, truncation=True, max_length=77)
    got = ours(TEXTS)
    assert got.input_ids.shape == (len(TEXTS), 77)
    assert got.input_ids.tolist() == expected["input_ids"]
    assert got.attention_mask.tolist() == expected["attention_mask"]
    assert got.input_ids[-1, -1].item() == ours.eos_id  # truncation kept the end token


def test_clip_matches_transformers_padding_to_max_length(clip_dir: Path) -> None:
    ours = dataclasses.replace(TextTokenizer.from_hf_dir(clip_dir), max_length=9, pad_to_max_length=True)
    expected = _hf(clip_dir)(TEXTS, padding="max_length", truncation=True, max_length=9)
    got = ours(TEXTS)
    assert got.input_ids.tolist() == expected["input_ids"]
    assert got.attention_mask.tolist() == expected["attention_mask"]


def test_clip_short_batch_pads_only_to_its_longest_text(clip_dir: Path) -> None:
    got = TextTokenizer.from_hf_dir(clip_dir)(["the cat", "a"])
    assert got.input_ids.shape == (2, 4)
    assert got.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


# ------------------------------------------------------------------------------------------ SigLIP

SIGLIP_WORDS = ["hello", "world", "a", "cat", "sat"]


@pytest.fixture
def siglip_dir(tmp_path: Path) -> Path:
    """A word-level stand-in for SigLIP's sentencepiece model, with SigLIP's tokenizer_config.json."""
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(SIGLIP_WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    config = {
        "tokenizer_class": "SiglipTokenizer",
        "eos_token": "</s>",
        "pad_token": "</s>",
        "unk_token": "<unk>",
        "model_max_length": 64,
        "do_lower_case": True,
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    return tmp_path


def _word_ids(words: list[str]) -> list[int]:
    return [SIGLIP_WORDS.index(w) + 3 if w in SIGLIP_WORDS else 2 for w in words]


def test_siglip_rules(siglip_dir: Path) -> None:
    """No start token, end token kept on truncation, always 64 long, SigLIP canonicalisation."""
    ours = TextTokenizer.from_hf_dir(siglip_dir)
    assert (ours.bos_id, ours.eos_id, ours.pad_id, ours.max_length) == (None, 1, 1, 64)
    assert ours.pad_to_max_length and ours.lowercase and ours.remove_punctuation
    assert ours.canonicalize("  Hello, World!!\t A   cat's ") == "hello world a cats"

    got = ours(["Hello, World!  A   cat.", "cat " * 100])
    assert got.input_ids.shape == got.attention_mask.shape == (2, 64)
    first = [*_word_ids(["hello", "world", "a", "cat"]), 1]
    assert got.input_ids[0].tolist() == first + [1] * (64 - len(first))
    assert got.attention_mask[0].tolist() == [1] * len(first) + [0] * (64 - len(first))
    assert got.input_ids[1].tolist() == _word_ids(["cat"]) * 63 + [1]
    assert got.attention_mask[1].sum().item() == 64


def test_siglip_class_defaults_fill_in_missing_special_tokens(siglip_dir: Path) -> None:
    (siglip_dir / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "SiglipTokenizer"}))
    ours = TextTokenizer.from_hf_dir(siglip_dir)
    assert (ours.bos_id, ours.eos_id, ours.pad_id, ours.max_length) == (None, 1, 1, 64)


def test_missing_tokenizer_json_explains_what_to_do(siglip_dir: Path, tmp_path: Path) -> None:
    (siglip_dir / "tokenizer.json").unlink()
    (siglip_dir / "spiece.model").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"tokenizer\.json is needed.*spiece\.model.*from_spm"):
        TextTokenizer.from_hf_dir(siglip_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=r"tokenizer\.json is needed.*save_pretrained"):
        TextTokenizer.from_hf_dir(empty)


def test_special_token_missing_from_vocabulary(siglip_dir: Path) -> None:
    config = json.loads((siglip_dir / "tokenizer_config.json").read_text())
    (siglip_dir / "tokenizer_config.json").write_text(json.dumps({**config, "eos_token": "<end>"}))
    with pytest.raises(CheckpointError, match="'<end>'"):
        TextTokenizer.from_hf_dir(siglip_dir)


# -------------------------------------------------------------------------------- own tokenizers

CAPTIONS = [
    "A red circle left of a blue square.",
    "A green triangle above the red circle.",
    "Two blue squares and one yellow circle.",
] * 20


def test_trained_bpe_round_trips_through_files(tmp_path: Path) -> None:
    trained = train_bpe_tokenizer(CAPTIONS, 300, ["<image>"], max_length=16)
    batch = trained(["A red circle left of a blue square.", "<image> two squares"])
    ids = batch.input_ids
    assert ids[0, 0].item() == trained.bos_id
    assert trained.decode(ids[0]) == "a red circle left of a blue square."
    assert trained.decode(ids[1], skip_special_tokens=False).startswith("<bos><image> two squares<eos>")

    trained.save(tmp_path / "tokenizer.json")
    settings = json.loads(json.dumps(trained.to_dict()))
    loaded = TextTokenizer.from_file(tmp_path / "tokenizer.json", settings)
    assert loaded.to_dict() == trained.to_dict()
    assert torch.equal(loaded(CAPTIONS[:3]).input_ids, trained(CAPTIONS[:3]).input_ids)


def test_trained_bpe_learns_merges() -> None:
    trained = train_bpe_tokenizer(CAPTIONS, 320)
    # "circle" is frequent enough to end up one token (plus the start and end tokens).
    assert trained(["circle"]).input_ids.shape == (1, 3)


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    trained = train_bpe_tokenizer(CAPTIONS, 300)
    with pytest.raises(ConfigError, match="vocab_size must exceed 259"):
        train_bpe_tokenizer(CAPTIONS, 200)
    with pytest.raises(ConfigError, match="'eos_id'"):
        TextTokenizer.from_dict({**trained.to_dict(), "eos_id": 10_000}, trained.tokenizer)
    with pytest.raises(ConfigError, match="'max_length'"):
        TextTokenizer.from_dict({**trained.to_dict(), "max_length": 2}, trained.tokenizer)
    with pytest.raises(ConfigError, match="'casing'"):
        TextTokenizer.from_dict({**trained.to_dict(), "casing": True}, trained.tokenizer)
    with pytest.raises(InputError, match="text #1"):
        trained(["fine", 3])  # type: ignore[list-item]
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{}")
    with pytest.raises(CheckpointError, match=r"not a valid tokenizer\.json"):
        TextTokenizer.from_file(broken, trained.to_dict())
