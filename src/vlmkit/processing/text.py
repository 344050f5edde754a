"""Text in, token ids out: a ``tokenizers`` tokenizer plus the few rules that differ between families.

The ``tokenizer.json`` file says how text becomes sub-word ids; it does not say how a model wants them
framed. Those framing rules (which special tokens go around the text, how long a sequence may be,
whether to pad to a fixed length) are the settings of ``TextTokenizer``, stored in vlmkit's
``preprocessor.json`` next to the weights, so that a checkpoint's text side is fully described by two
files. vlmkit adds the special tokens itself instead of trusting the ``tokenizer.json`` post-processor,
so the rules are the same whatever tool wrote the file.

Family rules, matching ``transformers`` with ``truncation=True``:

- CLIP: ``<|startoftext|> text <|endoftext|>``, at most 77 ids; a long text loses its tail but keeps the
  end token. Batches are padded to the longest text (the causal text tower never looks past the end
  token) with the pad id, which for OpenAI checkpoints is the end token itself.
- SigLIP: ``text </s>``, no start token, at most 64 ids, always padded to 64 (its text tower pools the
  last position, so every sequence must have the same length). ``SiglipTokenizer`` canonicalises text
  first: lowercase, delete ASCII punctuation (``string.punctuation``), collapse runs of whitespace to
  one space and strip; vlmkit does the same when ``lowercase`` / ``remove_punctuation`` are set.
"""

from __future__ import annotations

import dataclasses
import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from vlmkit.errors import CheckpointError, ConfigError, InputError
from vlmkit.files import atomic_write_text

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_WHITESPACE = re.compile(r"\s+")
# BERT's pre-tokenizer splits every punctuation mark off as its own word, so its WordPiece decode puts a space
# on both sides of each ("6, 681. 33", "inv - 97192"); ``rejoin_wordpiece`` takes out the ones written text
# almost never has.
_GLUE_BEFORE = frozenset("%)]}:;/@-")
_GLUE_AFTER = frozenset("([{$£€#/@-")
_NUMBER_MARK = re.compile(r"\d[.,:]$")
_DATE_COMMA = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2},$", re.IGNORECASE)
_INNER_APOSTROPHE = re.compile(r"\w'$")
_EMAIL_DOT = re.compile(r"@[\w.-]*\w\.$")

# tokenizer_config.json "tokenizer_class" -> rules the class applies in code, outside tokenizer.json.
# "tokens" are the class defaults that apply when the config files leave a special token out.
_FAMILIES: dict[str, dict[str, Any]] = {
    "clip": {
        "max_length": 77,
        "bos": True,
        "eos": True,
        "pad_to_max_length": False,
        "punctuation": False,
        "tokens": {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
    },
    "siglip": {
        "max_length": 64,
        "bos": False,
        "eos": True,
        "pad_to_max_length": True,
        "punctuation": True,
        "tokens": {"eos_token": "</s>", "pad_token": "</s>"},
    },
}
_MAX_SANE_LENGTH = 1_000_000  # transformers writes ~1e30 as model_max_length when it has no limit


@dataclass(frozen=True)
class TextBatch:
    """Token ids and their mask, both ``(B, L)`` int64; the mask is 1 on real tokens, 0 on padding."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def to(self, device: torch.device | str) -> TextBatch:
        return TextBatch(self.input_ids.to(device), self.attention_mask.to(device))


@dataclass
class TextTokenizer:
    """Turn a batch of strings into padded id tensors under one family's rules.

    Attributes:
        tokenizer: the ``tokenizers.Tokenizer`` (from ``tokenizer.json``). Its own padding and
            truncation settings are switched off: this class applies them.
        max_length: most ids per text, special tokens included; longer texts are cut before the end token.
        pad_id: id that fills padding positions.
        eos_id: id appended to every text, or ``None`` for none.
        bos_id: id prepended to every text, or ``None`` for none.
        pad_to_max_length: pad every batch to ``max_length`` instead of to its longest text.
        lowercase: lowercase text in Python before tokenising, for tokenizers whose ``tokenizer.json``
            does not do it itself (SigLIP's sentencepiece model relies on the caller).
        remove_punctuation: SigLIP canonicalisation: drop ASCII punctuation and collapse whitespace.
    """

    tokenizer: Tokenizer = field(repr=False, compare=False)
    max_length: int
    pad_id: int
    eos_id: int | None
    bos_id: int | None = None
    pad_to_max_length: bool = False
    lowercase: bool = False
    remove_punctuation: bool = False

    def __post_init__(self) -> None:
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        vocab_size = self.vocab_size
        for name in ("pad_id", "eos_id", "bos_id"):
            value = getattr(self, name)
            if value is None and name != "pad_id":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < vocab_size:
                raise ConfigError(f"text tokenizer field {name!r}: expected an id below {vocab_size}, got {value!r}")
        specials = (self.bos_id is not None) + (self.eos_id is not None)
        if not isinstance(self.max_length, int) or self.max_length <= specials:
            raise ConfigError(
                f"text tokenizer field 'max_length': expected an int > {specials}, got {self.max_length!r}"
            )

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    # ------------------------------------------------------------------------------- encode / decode

    def __call__(self, texts: str | Sequence[str]) -> TextBatch:
        """Tokenise, frame, truncate and right-pad ``texts`` into a ``TextBatch``."""
        if isinstance(texts, str):
            texts = [texts]
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(f"text #{i}: expected a string, got {type(text).__name__}")
        prepared = [self.canonicalize(t) for t in texts]
        encodings = self.tokenizer.encode_batch(prepared, add_special_tokens=False)
        head = [] if self.bos_id is None else [self.bos_id]
        tail = [] if self.eos_id is None else [self.eos_id]
        room = self.max_length - len(head) - len(tail)
        rows = [head + enc.ids[:room] + tail for enc in encodings]
        width = self.max_length if self.pad_to_max_length else max(map(len, rows), default=0)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return TextBatch(torch.from_numpy(ids), torch.from_numpy(mask))

    def canonicalize(self, text: str) -> str:
        """The text as the tokenizer model sees it (SigLIP rules when switched on, else unchanged)."""
        if self.lowercase:
            text = text.lower()
        if self.remove_punctuation:
            text = _WHITESPACE.sub(" ", text.translate(_PUNCTUATION)).strip()
        return text

    def decode(self, ids: Sequence[int] | torch.Tensor, *, skip_special_tokens: bool = True) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        text = self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
        if isinstance(self.tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer):
            text = rejoin_wordpiece(text)
        return text

    # ------------------------------------------------------------------------------- files

    def to_dict(self) -> dict[str, Any]:
        """The framing settings (everything but the tokenizer itself), for ``preprocessor.json``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "tokenizer"}

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any], tokenizer: Tokenizer) -> TextTokenizer:
        known = {f.name for f in dataclasses.fields(cls)} - {"tokenizer"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"text tokenizer: unknown field {unknown[0]!r} (known: {sorted(known)})")
        try:
            return cls(tokenizer, **settings)
        except TypeError as exc:
            raise ConfigError(f"text tokenizer: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path, settings: Mapping[str, Any]) -> TextTokenizer:
        """Load ``tokenizer.json`` at ``path`` and apply ``settings`` (a ``to_dict`` result)."""
        return cls.from_dict(settings, _read_tokenizer(Path(path)))

    def save(self, path: str | Path) -> None:
        """Write the tokenizer to ``path`` (a ``tokenizer.json``) atomically; settings go via ``to_dict``."""
        atomic_write_text(path, self.tokenizer.to_str(pretty=True))

    @classmethod
    def from_hf_dir(
        cls, directory: str | Path, *, max_length: int | None = None, default_max_length: int | None = None
    ) -> TextTokenizer:
        """Build from a Hugging Face tokenizer folder (``tokenizer.json`` + ``tokenizer_config.json``).

        Special tokens and the length limit come from ``tokenizer_config.json`` and
        ``special_tokens_map.json``; the family (``tokenizer_class`` CLIP or SigLIP) decides the framing
        rules listed in the module docstring. Other classes add a start or end token only when their
        config's ``add_bos_token`` / ``add_eos_token`` says so. ``max_length`` overrides the limit;
        ``default_max_length`` (a decoder's context) stands in when the config has none usable (transformers
        writes about 1e30 for "no limit", as hub decoders' configs often say).
        """
        directory = Path(directory)
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise CheckpointError(_missing_tokenizer_message(directory))
        tokenizer = _read_tokenizer(path)
        config = {
            **_read_json(directory / "special_tokens_map.json"),
            **_read_json(directory / "tokenizer_config.json"),
        }
        tokenizer_class = str(config.get("tokenizer_class") or "")
        family = _FAMILIES.get(tokenizer_class.lower().removesuffix("fast").removesuffix("tokenizer"))
        if family:
            config = {**family["tokens"], **config}

        def token_id(key: str) -> int | None:
            token = config.get(key)
            if isinstance(token, Mapping):  # serialised AddedToken
                token = token.get("content")
            if token is None:
                return None
            found = tokenizer.token_to_id(str(token))
            if found is None:
                raise CheckpointError(
                    f"{directory}: {key} {token!r} from tokenizer_config.json is not in tokenizer.json"
                )
            return found

        def adds(key: str, token: int | None) -> bool:
            """Whether texts get this special token: the family's rule, the config's ``add_*_token``, or else
            what tokenizer.json's own post-processor does (transformers 5 and Llama 3 keep it there)."""
            if family:
                return bool(family[key.removesuffix("_token")])
            if config.get(f"add_{key}") is not None:
                return bool(config[f"add_{key}"])
            probe = tokenizer.encode("a", add_special_tokens=True).ids
            return token is not None and (probe[0] == token if key == "bos_token" else probe[-1] == token)

        eos_id = token_id("eos_token") if adds("eos_token", token_id("eos_token")) else None
        bos_id = token_id("bos_token") if adds("bos_token", token_id("bos_token")) else None
        pad_id = token_id("pad_token")
        pad_id = pad_id if pad_id is not None else token_id("eos_token")
        if pad_id is None:
            raise CheckpointError(f"{directory}: tokenizer_config.json names neither a pad_token nor an eos_token")
        if max_length is None:
            limit = config.get("model_max_length")
            sane = isinstance(limit, int) and 0 < limit <= _MAX_SANE_LENGTH
            max_length = limit if sane else (family["max_length"] if family else default_max_length)
        if max_length is None:
            raise CheckpointError(
                f"{directory}: tokenizer_config.json gives no usable model_max_length; pass max_length"
            )
        return cls(
            tokenizer,
            max_length=max_length,
            pad_id=pad_id,
            eos_id=eos_id,
            bos_id=bos_id,
            pad_to_max_length=bool(family and family["pad_to_max_length"]),
            lowercase=bool(family and family["punctuation"] and config.get("do_lower_case", True)),
            remove_punctuation=bool(family and family["punctuation"]),
        )


def rejoin_wordpiece(text: str) -> str:
    """A BERT WordPiece decode without the spaces its pre-tokenizer invented around punctuation: none before
    closing marks, after opening marks and currency, around - / @ and a word's apostrophe, inside a number,
    date or time ("6,681.33", "2024-03-01", "10:30", "$12.50"; not "March 5, 2024"), after the dots of an
    e-mail domain. Prose spacing ("total: 12", "a, b") stays.

    Each space is judged by the text before it and the one character after it: WordPiece writes a space
    only with the word that follows it, so a decode that grows token by token (generation's ``TextStream``)
    never changes text it has already released."""
    words = text.split(" ")
    out = words[0]
    for word in words[1:]:
        out += word if word and _glued(out[-64:], word[0]) else " " + word
    return out


def _glued(left: str, after: str) -> bool:
    """Whether the space between ``left`` (the tail of the text so far) and the character ``after`` goes."""
    if after in _GLUE_BEFORE or (after == "'" and left[-1:].isalnum()) or left[-1:] in _GLUE_AFTER:
        return True
    if not after.isalnum():
        return False
    if after.isdigit() and _NUMBER_MARK.search(left) and not _DATE_COMMA.search(left):
        return True
    return bool(_INNER_APOSTROPHE.search(left) or _EMAIL_DOT.search(left))


def _read_tokenizer(path: Path) -> Tokenizer:
    if not path.is_file():
        raise CheckpointError(f"{path}: tokenizer file not found")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises a bare Exception for every parse failure
        raise CheckpointError(f"{path}: not a valid tokenizer.json ({exc})") from None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return value


def _missing_tokenizer_message(directory: Path) -> str:
    if (directory / "spiece.model").is_file():
        return (
            f"{directory}: tokenizer.json is needed but only the sentencepiece file spiece.model is present "
            "(SigLIP checkpoints ship no fast tokenizer); convert it once, e.g. "
            "tokenizers.SentencePieceUnigramTokenizer.from_spm('spiece.model').save('tokenizer.json') "
            "(needs protobuf and sentencepiece_model_pb2.py)"
        )
    return (
        f"{directory}: tokenizer.json is needed; write one with transformers: "
        "AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)"
    )


# ------------------------------------------------------------------------------------------ training


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    special_tokens: Sequence[str] = (),
    *,
    max_length: int = 64,
    pad_token: str = "<pad>",
    bos_token: str = "<bos>",
    eos_token: str = "<eos>",
    pad_to_max_length: bool = False,
) -> TextTokenizer:
    """Train a small lowercasing byte-level BPE tokenizer for vlmkit's own corpora (e.g. ShapesWorld).

    Byte-level means every string is encodable (no unknown token) and decodes back exactly, up to case,
    so captioning models trained on it can print what they generate. The 256 byte symbols are always in
    the vocabulary, so ``vocab_size`` must exceed 256 plus the special tokens. ``special_tokens`` are
    extra reserved tokens (such as ``"<image>"``) that are never split.
    """
    reserved = [pad_token, bos_token, eos_token, *special_tokens]
    if len(set(reserved)) != len(reserved):
        raise ConfigError(f"train_bpe_tokenizer: special tokens must be distinct, got {reserved}")
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size <= len(alphabet) + len(reserved):
        raise ConfigError(
            f"train_bpe_tokenizer: vocab_size must exceed {len(alphabet) + len(reserved)} "
            f"(256 bytes + {len(reserved)} special tokens), got {vocab_size}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    # The prefix space makes a word's first token the same at the start and mid-sentence; strip it on decode.
    tokenizer.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=reserved, initial_alphabet=alphabet, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return TextTokenizer(
        tokenizer,
        max_length=max_length,
        pad_id=tokenizer.token_to_id(pad_token),
        bos_id=tokenizer.token_to_id(bos_token),
        eos_id=tokenizer.token_to_id(eos_token),
        pad_to_max_length=pad_to_max_length,
    )
