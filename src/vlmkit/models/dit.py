"""A text-conditioned diffusion transformer (DiT) in pixel space, predicting a flow-matching velocity.

Image patches are tokens; each block is adaLN-Zero self-attention (Peebles & Xie, 2023), then
cross-attention to the text tower's token states (PixArt-alpha), then an adaLN-Zero MLP. The
conditioning vector of adaLN is the time's embedding plus the pooled text. The gates, the
cross-attention's output and the last layer start at zero, so an untrained DiT is the identity on its
residual stream and predicts zero velocity (or, predicting x0, a grey image): training starts from a
stable point.

Classifier-free guidance needs an unconditional prediction: ``null_condition`` is a learned token and
a learned pooled vector standing in for any text (training drops the text to it at random, see
``training.flow_objective``). ``encode_text`` runs the text tower once per prompt, so a sampler calls
``velocity`` many times without re-encoding.

The conventions are those of rectified flow as diffusers uses them (``models.flow``): ``t`` in [0, 1],
``x_t = (1 - t) x_0 + t noise``, and ``velocity`` returns ``v = noise - x_0``: what the last layer
predicts directly, or, with ``prediction="x0"``, derived from its prediction of the clean image as
``(x_t - x_0) / t`` (``t`` held at ``X0_MIN_T`` or above, as JiT does, so the division stays tame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.config.dit import DiTConfig
from vlmkit.models.text import TextTransformer
from vlmkit.nn import Attention
from vlmkit.nn.mlp import MLP

X0_MIN_T = 0.05
"""Smallest ``t`` the velocity of an x0-predicting DiT divides by (the last 5% of the path to the data)."""


@dataclass
class TextCondition:
    """What the blocks read of a prompt: token states (B, L, width), their mask (B, L) or None, pooled (B, width)."""

    tokens: torch.Tensor
    mask: torch.Tensor | None
    pooled: torch.Tensor

    def where(self, drop: torch.Tensor, null: TextCondition) -> TextCondition:
        """Rows where ``drop`` (B,) is True replaced by ``null``: classifier-free guidance's dropout."""
        keep = ~drop
        tokens = torch.where(keep[:, None, None], self.tokens, null.tokens.expand_as(self.tokens))
        mask = None if self.mask is None else self.mask | drop[:, None]  # a null row attends to every (null) key
        return TextCondition(tokens, mask, torch.where(keep[:, None], self.pooled, null.pooled.expand_as(self.pooled)))

    @staticmethod
    def cat(first: TextCondition, second: TextCondition) -> TextCondition:
        """Two conditions as one batch (conditional and unconditional rows in one forward)."""
        length = max(first.tokens.shape[1], second.tokens.shape[1])
        tokens = torch.cat([_pad_length(first.tokens, length), _pad_length(second.tokens, length)])
        masks = [c.mask if c.mask is not None else _ones(c) for c in (first, second)]
        mask = torch.cat([F.pad(m, (0, length - m.shape[1])) for m in masks])
        return TextCondition(tokens, mask, torch.cat([first.pooled, second.pooled]))


def _pad_length(tokens: torch.Tensor, length: int) -> torch.Tensor:
    return F.pad(tokens, (0, 0, 0, length - tokens.shape[1]))


def _ones(condition: TextCondition) -> torch.Tensor:
    return torch.ones(condition.tokens.shape[:2], dtype=torch.bool, device=condition.tokens.device)


def text_token_states(
    text: TextTransformer, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(token states (B, L, width), pooled (B, width)) of a vlmkit text tower, in one pass.

    ``TextTransformer.forward`` returns only the pooled vector; cross-attention needs the states before
    pooling, which are the output of the tower's ``final_norm``. A forward hook keeps them, so the tower's
    own forward (and its pooling, whatever the family) runs unchanged and once.
    """
    kept: list[torch.Tensor] = []
    handle = text.final_norm.register_forward_hook(lambda _module, _inputs, output: kept.append(output))
    try:
        pooled = text(input_ids, attention_mask)
    finally:
        handle.remove()
    return kept[0], pooled


def time_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of ``t`` (B,) in [0, 1], scaled by 1000 as DiT's integer timesteps were."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings (grid*grid, dim): half the channels per axis."""
    quarter = dim // 4
    omega = 1.0 / 10_000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(
        torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij"
    )
    parts = [f(axis.reshape(-1, 1) * omega) for axis in (ys, xs) for f in (torch.sin, torch.cos)]
    return torch.cat(parts, dim=1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """adaLN-Zero self-attention, cross-attention to the text, adaLN-Zero MLP."""

    def __init__(self, width: int, heads: int, mlp_dim: int, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps, elementwise_affine=False)
        self.attn = Attention(width, heads)
        self.norm_cross = nn.LayerNorm(width, eps=eps)
        self.cross = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=eps, elementwise_affine=False)
        self.mlp = MLP(width, mlp_dim, "gelu_tanh")
        self.ada = nn.Linear(width, 6 * width)

    def forward(self, x: torch.Tensor, c: torch.Tensor, text: TextCondition) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(c)).chunk(6, dim=-1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1))
        mask = None if text.mask is None else text.mask[:, None, None, :]
        x = x + self.cross(self.norm_cross(x), mask=mask, context=text.tokens)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class DiT(nn.Module):
    """``forward(x_t, t, input_ids, attention_mask)`` -> the velocity (B, C, H, W).

    A loaded model also carries ``tokenizer`` (set by ``from_pretrained``), so tasks can go from prompts
    to images.
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        w, p = config.width, config.patch_size
        self.text = TextTransformer(config.text)
        self.patch = nn.Conv2d(config.channels, w, p, stride=p)
        self.position = nn.Parameter(sincos_2d(config.grid, w)[None])
        self.time_mlp = nn.Sequential(nn.Linear(config.frequency_dim, w), nn.SiLU(), nn.Linear(w, w))
        self.text_tokens = nn.Linear(config.text.width, w)
        self.text_pooled = nn.Linear(config.text.width, w)
        self.null_tokens = nn.Parameter(torch.zeros(1, 1, config.text.width))
        self.null_pooled = nn.Parameter(torch.zeros(1, config.text.width))
        self.blocks = nn.ModuleList(
            DiTBlock(w, config.heads, config.mlp_dim, config.norm_eps) for _ in range(config.layers)
        )
        self.final_norm = nn.LayerNorm(w, eps=config.norm_eps, elementwise_affine=False)
        self.final_ada = nn.Linear(w, 2 * w)
        self.head = nn.Linear(w, p * p * config.channels)
        self._init_weights()
        self.tokenizer = None

    def _init_weights(self) -> None:
        """DiT's: Xavier-uniform linear layers with zero biases (the text tower keeps its own init), then
        the adaLN-Zero zeros: every gate, the cross-attention outputs, the last layer."""
        text = set(self.text.modules())
        for module in self.modules():
            if isinstance(module, nn.Linear) and module not in text:
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.null_tokens, std=0.02)
        nn.init.normal_(self.null_pooled, std=0.02)
        for block in self.blocks:
            for zero in (block.ada, block.cross.out):
                nn.init.zeros_(zero.weight)
                nn.init.zeros_(zero.bias)
        for zero in (self.final_ada, self.head):
            nn.init.zeros_(zero.weight)
            nn.init.zeros_(zero.bias)

    @property
    def device(self) -> torch.device:
        return self.position.device

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TextCondition:
        """The prompt as the blocks read it. SigLIP-style towers (no mask use) attend to their padding."""
        mask = attention_mask if self.config.text.uses_attention_mask else None
        states, pooled = text_token_states(self.text, input_ids, mask)
        return TextCondition(states, None if mask is None else mask.bool(), pooled)

    def null_condition(self, batch: int) -> TextCondition:
        """The unconditional prompt: one learned token, a learned pooled vector."""
        return TextCondition(self.null_tokens.expand(batch, -1, -1), None, self.null_pooled.expand(batch, -1))

    def velocity(self, x: torch.Tensor, t: torch.Tensor, text: TextCondition) -> torch.Tensor:
        """The predicted velocity at ``x`` (B, C, H, W) and time ``t`` (B,) given an encoded prompt."""
        batch, channels, height, width = x.shape
        p, grid = self.config.patch_size, self.config.grid
        h = self.patch(x).flatten(2).transpose(1, 2) + self.position  # (B, N, w)
        c = self.time_mlp(time_embedding(t, self.config.frequency_dim).to(h.dtype)) + self.text_pooled(text.pooled)
        projected = TextCondition(self.text_tokens(text.tokens), text.mask, text.pooled)
        for block in self.blocks:
            h = block(h, c, projected)
        shift, scale = self.final_ada(F.silu(c)).chunk(2, dim=-1)
        h = self.head(modulate(self.final_norm(h), shift, scale))  # (B, N, p*p*C)
        h = h.view(batch, grid, grid, p, p, channels).permute(0, 5, 1, 3, 2, 4)
        out = h.reshape(batch, channels, height, width)
        if self.config.prediction == "x0":
            return (x - out) / t.to(out.dtype).clamp(min=X0_MIN_T)[:, None, None, None]
        return out

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity for ``x`` at ``t`` given token ids; rows where ``drop`` (B,) is True get no text."""
        text = self.encode_text(input_ids, attention_mask)
        if drop is not None:
            text = text.where(drop, self.null_condition(x.shape[0]))
        return self.velocity(x, t, text)
