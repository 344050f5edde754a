"""Tiny random models for the server benchmarks (`serve.py`, `soak.py`), saved where `vlmkit serve` loads them.

Both scripts measure the server, not the models, so any small dual encoder and VLM will do; their tokenizers
are trained on ShapesWorld captions so prompts tokenize like real text.
"""

from __future__ import annotations

import socket
from pathlib import Path

import torch

from vlmkit.checkpoints import save_pretrained
from vlmkit.config import clip_config, tiny_vlm_config
from vlmkit.models import DualEncoder, VisionLanguageModel
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.text import train_bpe_tokenizer


def save_served_models(
    root: Path, captions: list[str], image_size: int, width: int, layers: int, embed_dim: int, vocab_size: int,
    chat_context: int,
) -> tuple[DualEncoder, VisionLanguageModel]:  # fmt: skip
    """A CLIP-shaped dual encoder in ``root/encoder`` and a tiny VLM in ``root/vlm``, seeded."""
    torch.manual_seed(0)
    text = train_bpe_tokenizer(captions, vocab_size=vocab_size, max_length=32)
    config = clip_config(
        vision_width=width, vision_layers=layers, vision_heads=4, patch_size=8, image_size=image_size,
        text_width=width, text_layers=layers, text_heads=4, embed_dim=embed_dim, vocab_size=text.vocab_size,
        context_length=32,
    )  # fmt: skip
    config.text.eos_token_id, config.text.pad_token_id = text.eos_id, text.pad_id
    encoder = DualEncoder(config).eval()
    encoder.tokenizer, encoder.image_processor = text, ImagePreprocessor.clip(image_size)
    save_pretrained(encoder, root / "encoder")

    chat_text = train_bpe_tokenizer(
        captions, vocab_size=vocab_size, special_tokens=["<image>"], max_length=chat_context
    )
    vlm_config = tiny_vlm_config(
        vocab_size=chat_text.vocab_size, image_token_id=chat_text.tokenizer.token_to_id("<image>"),
        image_size=image_size, bos_token_id=chat_text.bos_id, eos_token_id=chat_text.eos_id,
        pad_token_id=chat_text.pad_id,
    )  # fmt: skip
    vlm = VisionLanguageModel(vlm_config).eval()
    vlm.tokenizer, vlm.image_processor = chat_text, ImagePreprocessor.clip(image_size)
    save_pretrained(vlm, root / "vlm")
    return encoder, vlm


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
