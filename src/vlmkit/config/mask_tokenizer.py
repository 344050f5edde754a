"""``MaskTokenizerConfig``: the VQ-VAE that turns a 64x64 mask crop into 16 codes (``models.mask_tokenizer``).

PaliGemma writes a segmentation mask as 16 ``<segNNN>`` tokens: the mask, cropped to its box and
resized to 64x64, goes through a conv encoder to a 4x4 grid of vectors, each replaced by the nearest
of 128 codebook vectors. The grid and the codebook size are fixed by that token format; the widths are
free (a model trained here, or the ones read from big_vision's published checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vlmkit.config.base import ConfigBase, _positive
from vlmkit.errors import ConfigError

MASK_SIZE = 64
"""Side of the mask crop the tokenizer reads and writes (PaliGemma's)."""
GRID = 4
"""Side of the code grid: 16 codes per mask, row-major."""
NUM_CODES = 128
"""Codebook size: the 128 ``<segNNN>`` tokens."""
DOWNSAMPLINGS = 4
"""Stride-2 layers from 64 to 4 (and back)."""

MaskOutput = Literal["logits", "signed"]


@dataclass
class MaskTokenizerConfig(ConfigBase):
    """A conv VQ-VAE over 64x64 masks with a 4x4 grid of codes. The defaults are the ``mask-vae`` recipe's
    (sized to train on two CPU cores); big_vision's published decoder is 128 wide (widths are read from its file).

    Fields:
        num_codes: codebook size (128 for PaliGemma's ``<seg000>``..``<seg127>``).
        embedding_dim: size of each code vector (the encoder's output channels).
        encoder_channels: output channels of the four stride-2 encoder convolutions (64 -> 32 -> 16 ->
            8 -> 4); the last is also the width of the encoder's residual blocks.
        encoder_kernel: kernel side of those convolutions (padded as TensorFlow's ``SAME``, as big_vision
            encodes).
        decoder_channels: output channels of the four stride-2 transposed convolutions (4 -> ... -> 64);
            the first is also the width of the decoder's residual blocks.
        res_blocks: residual blocks on each side (conv 3x3, ReLU, conv 3x3, ReLU, conv 1x1, + input).
        output: what the decoder's one output channel means. ``logits``: sigmoid gives the mask
            probability (trained with binary cross-entropy here). ``signed``: big_vision's convention,
            a value in [-1, 1] whose ``clip(x / 2 + 0.5, 0, 1)`` is the probability.
    """

    num_codes: int = NUM_CODES
    embedding_dim: int = 32
    encoder_channels: tuple[int, ...] = (8, 16, 32, 64)
    encoder_kernel: int = 4
    decoder_channels: tuple[int, ...] = (64, 32, 16, 8)
    res_blocks: int = 2
    output: MaskOutput = "logits"

    def validate(self, where: str) -> None:
        _positive(
            where,
            num_codes=self.num_codes,
            embedding_dim=self.embedding_dim,
            encoder_kernel=self.encoder_kernel,
            res_blocks=self.res_blocks,
        )
        for name in ("encoder_channels", "decoder_channels"):
            channels = getattr(self, name)
            if len(channels) != DOWNSAMPLINGS or min(channels) <= 0:
                raise ConfigError(
                    f"{where}.{name}: expected {DOWNSAMPLINGS} positive widths (64 -> 4 is four stride-2 "
                    f"layers), got {list(channels)}"
                )
            if max(channels) > 65536:
                raise ConfigError(f"{where}.{name}: widths past 65536 are a typo, got {list(channels)}")
        if self.num_codes > 65536 or self.embedding_dim > 65536 or self.encoder_kernel > MASK_SIZE:
            raise ConfigError(f"{where}: num_codes, embedding_dim or encoder_kernel is absurdly large")
        if self.res_blocks > 64:
            raise ConfigError(f"{where}.res_blocks: at most 64, got {self.res_blocks}")
