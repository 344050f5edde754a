"""A tiny random DiT with a real tokenizer, for the text-to-image tests (builds in milliseconds)."""

from __future__ import annotations

from testkit import perturb, tiny_tokenizer
from vlmkit.config import TextConfig
from vlmkit.config.dit import DiTConfig
from vlmkit.models.dit import DiT


def tiny_dit_config(vocab_size: int, eos: int, pad: int, **overrides) -> DiTConfig:
    text = TextConfig(
        vocab_size=vocab_size,
        context_length=16,
        width=24,
        layers=1,
        heads=2,
        mlp_dim=48,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    settings = dict(image_size=16, patch_size=4, width=32, layers=2, heads=2, mlp_dim=64, frequency_dim=32, text=text)
    settings.update(overrides)
    return DiTConfig(**settings)


def tiny_dit(perturbed: bool = True, **overrides) -> DiT:
    """A random DiT (perturbed out of its zero init, so it predicts something) with a tokenizer attached."""
    tokenizer = tiny_tokenizer()
    model = DiT(tiny_dit_config(tokenizer.vocab_size, tokenizer.eos_id, tokenizer.pad_id, **overrides)).eval()
    model.tokenizer = tokenizer
    return perturb(model) if perturbed else model
