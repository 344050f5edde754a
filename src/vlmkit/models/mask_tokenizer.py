"""``MaskTokenizer``: PaliGemma's mask VQ-VAE. A 64x64 mask crop <-> 16 codes of a 128-vector codebook.

The architecture follows big_vision, which ships the tokenizer PaliGemma was trained with
(``big_vision/pp/proj/paligemma/segmentation.py``: ``encode_to_codebook_indices``; the decoder of the
PaliGemma demo's ``_get_reconstruct_masks``):

- encoder: the mask scaled to [-1, 1] (``2 * (x - 0.5)``); four stride-2 convolutions with TensorFlow
  ``SAME`` padding, each followed by ReLU (64 -> 4); residual blocks (conv 3x3, ReLU, conv 3x3, ReLU,
  conv 1x1, plus the input); a 1x1 conv to the code dimension;
- quantizer: each of the 4x4 vectors replaced by its nearest codebook row (squared L2), the 16 indices
  read row-major;
- decoder: a 1x1 conv and ReLU, residual blocks, four transposed convolutions (kernel 4, stride 2,
  which is PyTorch's padding 1) each followed by ReLU (4 -> 64), a 1x1 conv to one channel.

Training (``training.vq``) passes gradients through the quantizer by the straight-through estimator
(van den Oord et al., 2017) and moves the codebook by exponential moving averages, so the codebook is a
buffer here, not a parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.config.mask_tokenizer import GRID, MASK_SIZE, MaskTokenizerConfig
from vlmkit.errors import InputError


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``SAME`` padding (before, after) of one axis: the output has ``ceil(size / stride)``
    positions and the odd pixel, if any, is padded after. PyTorch's symmetric padding differs for odd
    totals (a 3x3 stride-2 conv), and big_vision's codes come from TensorFlow's."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` padded as TensorFlow's ``SAME``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


class ResBlock(nn.Module):
    """conv 3x3, ReLU, conv 3x3, ReLU, conv 1x1, plus the input (big_vision's mask ``ResBlock``)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv0 = SameConv2d(width, width, 3)
        self.conv1 = SameConv2d(width, width, 3)
        self.conv2 = nn.Conv2d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(self.conv0(x)))))


class MaskEncoder(nn.Module):
    def __init__(self, config: MaskTokenizerConfig) -> None:
        super().__init__()
        widths = (1, *config.encoder_channels)
        self.downs = nn.ModuleList(
            SameConv2d(widths[i], widths[i + 1], config.encoder_kernel, stride=2) for i in range(len(widths) - 1)
        )
        self.blocks = nn.ModuleList(ResBlock(widths[-1]) for _ in range(config.res_blocks))
        self.out = nn.Conv2d(widths[-1], config.embedding_dim, 1)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        x = 2.0 * (masks[:, None] - 0.5)  # (N, 1, 64, 64) in [-1, 1]
        for down in self.downs:
            x = F.relu(down(x))
        for block in self.blocks:
            x = block(x)
        return self.out(x)  # (N, D, 4, 4)


class MaskDecoder(nn.Module):
    def __init__(self, config: MaskTokenizerConfig) -> None:
        super().__init__()
        widths = (config.decoder_channels[0], *config.decoder_channels)
        self.input = nn.Conv2d(config.embedding_dim, widths[0], 1)
        self.blocks = nn.ModuleList(ResBlock(widths[0]) for _ in range(config.res_blocks))
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i], widths[i + 1], 4, stride=2, padding=1) for i in range(len(widths) - 1)
        )
        self.out = nn.Conv2d(widths[-1], 1, 1)

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.input(quantized))
        for block in self.blocks:
            x = block(x)
        for up in self.ups:
            x = F.relu(up(x))
        return self.out(x)[:, 0]  # (N, 64, 64)


@dataclass
class MaskTokenizerOutput:
    """What a training forward gives the objective.

    ``decoded`` is the decoder's raw output (logits, or big_vision's signed values: the config's
    ``output``); ``quantized`` already carries the straight-through gradient to ``latents``.
    """

    decoded: torch.Tensor  # (N, 64, 64)
    latents: torch.Tensor  # (N, D, 4, 4) encoder output
    quantized: torch.Tensor  # (N, D, 4, 4) latents + (codebook rows - latents).detach()
    codes: torch.Tensor  # (N, 16) long


class MaskTokenizer(nn.Module):
    """``encode``: masks (N, 64, 64) in [0, 1] -> codes (N, 16) in 0..num_codes-1, a 4x4 grid row-major.
    ``decode``: codes -> mask probabilities (N, 64, 64) in [0, 1]. Both are inference (no gradient);
    ``forward`` is the training pass."""

    def __init__(self, config: MaskTokenizerConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = None  # no text and no image preprocessing: loading looks for both on every model
        self.image_processor = None
        self.encoder = MaskEncoder(config)
        self.register_buffer("codebook", torch.randn(config.num_codes, config.embedding_dim) / math.sqrt(3.0))
        self.decoder = MaskDecoder(config)

    def quantize(self, latents: torch.Tensor) -> torch.Tensor:
        """Nearest codebook rows of (N, D, 4, 4) latents, as (N, 16) indices."""
        flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)[None]
        return distances.argmin(1).view(latents.shape[0], GRID * GRID)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook rows of (N, 16) codes as an (N, D, 4, 4) grid."""
        return self.codebook[codes].view(codes.shape[0], GRID, GRID, -1).permute(0, 3, 1, 2)

    def probabilities(self, decoded: torch.Tensor) -> torch.Tensor:
        if self.config.output == "signed":
            return (decoded * 0.5 + 0.5).clamp(0.0, 1.0)
        return torch.sigmoid(decoded)

    @torch.no_grad()
    def encode(self, masks: torch.Tensor) -> torch.Tensor:
        return self.quantize(self.encoder(_checked_masks(masks, self.codebook)))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.ndim != 2 or codes.shape[1] != GRID * GRID:
            raise InputError(f"codes: expected shape (N, {GRID * GRID}), got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.num_codes):
            raise InputError(f"codes: expected values in 0..{self.config.num_codes - 1}")
        return self.probabilities(self.decoder(self.lookup(codes.long())))

    def forward(self, masks: torch.Tensor) -> MaskTokenizerOutput:
        latents = self.encoder(_checked_masks(masks, self.codebook))
        codes = self.quantize(latents.detach())
        quantized = latents + (self.lookup(codes) - latents).detach()
        return MaskTokenizerOutput(self.decoder(quantized), latents, quantized, codes)


def _checked_masks(masks: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if masks.ndim != 3 or tuple(masks.shape[1:]) != (MASK_SIZE, MASK_SIZE):
        raise InputError(f"masks: expected shape (N, {MASK_SIZE}, {MASK_SIZE}), got {tuple(masks.shape)}")
    return masks.to(device=like.device, dtype=like.dtype)
