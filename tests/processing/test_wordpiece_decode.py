"""BERT WordPiece decoding gives numbers, dates, codes and amounts back as they were written (up to case), so a
document answer like "6,681.33" is not scored as "6, 681. 33"."""

from __future__ import annotations

import string

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

from vlmkit.processing.text import TextTokenizer, rejoin_wordpiece, train_bpe_tokenizer

WORDS = ["total", "due", "invoice", "march", "thanks", "ann", "mail", "example", "said", "brien"]


@pytest.fixture(scope="module")
def bert() -> TextTokenizer:
    """A tiny uncased BERT tokenizer: every character as a word and as a ``##`` piece, plus a few words."""
    chars = string.ascii_lowercase + string.digits + string.punctuation + "£€"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *chars, *(f"##{c}" for c in chars if c.isalnum()), *WORDS]
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    return TextTokenizer(tokenizer, max_length=64, pad_id=0, eos_id=3, bos_id=2)


def _round_trip(tokenizer: TextTokenizer, text: str) -> str:
    return tokenizer.decode(tokenizer.tokenizer.encode(text, add_special_tokens=False).ids)


@pytest.mark.parametrize(
    "text",
    [
        "6,681.33",
        "$12.50",
        "2024-03-01",
        "14/09/2025",
        "17.12.2021",
        "INV-97192",
        "(240) 453-5098",
        "10:30",
        "50%",
        "O'Brien's",
        "March 5, 2024",
        "Total due: 1,234.00. Thanks, Ann",
        "ann@mail.example",
    ],
)
def test_written_forms_come_back(bert: TextTokenizer, text: str) -> None:
    assert _round_trip(bert, text) == text.lower()


def test_raw_wordpiece_decode_spaces_punctuation(bert: TextTokenizer) -> None:
    """What the rules repair: the library's own decode of the same ids."""
    ids = bert.tokenizer.encode("6,681.33 INV-97192", add_special_tokens=False).ids
    assert bert.tokenizer.decode(ids) == "6, 681. 33 inv - 97192"


def test_prose_spacing_stays() -> None:
    assert rejoin_wordpiece("total: 12, thanks. see you") == "total: 12, thanks. see you"
    assert rejoin_wordpiece("a & b") == "a & b"


def test_growing_decode_never_rewrites_released_text(bert: TextTokenizer) -> None:
    """Generation streams text token by token and releases each decode's new tail: every decode of a prefix
    of the ids must be a prefix of the full decode."""
    ids = bert.tokenizer.encode(
        "On March 5, 2024 ann@mail.example paid $6,681.33 (INV-97192) at 10:30", add_special_tokens=False
    ).ids
    full = bert.decode(ids)
    for end in range(1, len(ids)):
        assert full.startswith(bert.decode(ids[:end])), bert.decode(ids[:end])


def test_other_tokenizers_decode_unchanged() -> None:
    """Byte-level BPE keeps its spaces: nothing is taken out of its decode."""
    tokenizer = train_bpe_tokenizer(["a - b / c", "1, 2 and 3 : 4"] * 20, vocab_size=300)
    assert _round_trip(tokenizer, "a - b / c 1, 2") == "a - b / c 1, 2"
