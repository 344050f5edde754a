"""The Qwen2-VL / Qwen2.5-VL vision tower: images and videos of any size as flattened patches -> merged tokens.

Facts from transformers 5.24 (``modeling_qwen2_vl.py``, ``modeling_qwen2_5_vl.py``, ``vision_utils.py``):

- Input is the processor's ``pixel_values`` (patches, C * T * P * P): each row one patch of ``temporal_patch_size``
  frames, in the order of a Conv3d's (C, T, P, P) kernel, so the bias-free Conv3d patch embedding is one matmul.
  Rows come ``merge x merge`` block by block, so the merger reads ``merge^2`` consecutive rows as one token.
- Attention is full within a frame (``cu_seqlens``: one segment per temporal patch of each image or video) and never
  across frames or images. Qwen2.5-VL also has window attention: tokens are reordered window by window
  (``get_vision_window_index``: ``window_size // merge // patch`` merged tokens a side, row-major within a
  window, windows row-major, frames in order), blocks outside ``fullatt_block_indexes`` attend within a window,
  and the merged tokens are put back in order at the end.
- 2-D rotary: of a head's ``d`` channels the first ``d/4`` frequencies rotate by the patch's row, the next ``d/4``
  by its column (``theta^(-2i/(d/2))``), in the "rotate half" layout, computed in float32.
- The merger: a norm (LayerNorm or RMSNorm, eps 1e-6) per patch, then ``merge^2`` patches concatenated,
  linear, exact GELU, linear to the decoder's width.
"""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.config.qwen2_vl import QwenVisionConfig
from vlmkit.errors import InputError
from vlmkit.nn.attention import Attention
from vlmkit.nn.mlp import MLP, GatedMLP
from vlmkit.nn.norms import RMSNorm
from vlmkit.nn.rope import rotary_tables

Rope = tuple[torch.Tensor, torch.Tensor]


def _norm(config: QwenVisionConfig, dim: int) -> nn.Module:
    return RMSNorm(dim, eps=config.norm_eps) if config.norm == "rms" else nn.LayerNorm(dim, eps=config.norm_eps)


class QwenVisionBlock(nn.Module):
    """``x + attn(norm1(x))`` with 2-D rotary, then ``x + mlp(norm2(x))``."""

    def __init__(self, config: QwenVisionConfig) -> None:
        super().__init__()
        self.norm1 = _norm(config, config.width)
        self.attn = Attention(config.width, config.heads, bias=True)
        self.norm2 = _norm(config, config.width)
        self.mlp: nn.Module = (
            GatedMLP(config.width, config.mlp_dim, config.act, bias=True)
            if config.mlp == "gated"
            else MLP(config.width, config.mlp_dim, config.act)
        )

    def forward(self, x: torch.Tensor, rope: Rope, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask=mask, rope=rope)
        return x + self.mlp(self.norm2(x))


class PatchMerger(nn.Module):
    """Norm each patch, concatenate each ``merge^2`` consecutive patches, then linear, GELU, linear."""

    def __init__(self, config: QwenVisionConfig) -> None:
        super().__init__()
        merged = config.width * config.merge_size**2
        self.norm = _norm(config, config.width)
        self.fc1 = nn.Linear(merged, merged)
        self.fc2 = nn.Linear(merged, config.out_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x).reshape(-1, self.fc1.in_features)
        return self.fc2(nn.functional.gelu(self.fc1(x)))


class QwenVisionTower(nn.Module):
    """Patch embedding, blocks and merger; ``forward(pixel_values, grid_thw)`` gives the merged tokens of every
    image (or video) in order, ``(sum of t * h * w / merge^2, out_width)``."""

    def __init__(self, config: QwenVisionConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = nn.Linear(config.patch_features, config.width, bias=False)
        self.blocks = nn.ModuleList(QwenVisionBlock(config) for _ in range(config.layers))
        self.merger = PatchMerger(config)

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        config, unit = self.config, self.config.merge_size**2
        grids = [tuple(int(v) for v in row) for row in grid_thw.tolist()]
        _check(pixel_values, grids, config)
        x = self.patch_embed(pixel_values.to(self.patch_embed.weight.dtype))[None]
        cos, sin = rotary_tables(self._angles(grids, x.device))
        frames = _segment_ids([h * w for t, h, w in grids for _ in range(t)], x.device)
        order = windows = None
        if config.window_size:
            order, windows = window_order(grids, config.merge_size, config.window_size // config.patch_size)
            order, windows = order.to(x.device), windows.to(x.device)
            x, cos, sin, frames = (_gather(v, order, unit) for v in (x, cos, sin, frames))
            windows = windows.repeat_interleave(unit)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        frame_layout = _Layout(frames, cos, sin)
        window_layout = None if windows is None else _Layout(windows, cos, sin)
        width = x.shape[-1]
        for index, block in enumerate(self.blocks):
            full = window_layout is None or index in config.full_attention_blocks
            layout = frame_layout if full else window_layout
            x = block(x.reshape(layout.groups, -1, width), layout.rope, layout.mask)  # type: ignore[union-attr]
        merged = self.merger(x.reshape(-1, width))
        return merged if order is None else merged[order.argsort()]

    def _angles(self, grids: list[tuple[int, int, int]], device: torch.device) -> torch.Tensor:
        """(patches, d/2) rotary angles: ``d/4`` by row, then ``d/4`` by column, patches in the processor's order."""
        half = self.config.head_dim // 2
        base = self.config.rope_theta
        freqs = 1.0 / (base ** (torch.arange(0, half, 2, dtype=torch.float, device=device) / half))
        rows, cols = [], []
        m = self.config.merge_size
        for t, h, w in grids:
            shape = (h // m, m, w // m, m)
            row = torch.arange(h, device=device)[:, None].expand(h, w).reshape(shape).transpose(1, 2).flatten()
            col = torch.arange(w, device=device)[None, :].expand(h, w).reshape(shape).transpose(1, 2).flatten()
            rows.append(row.repeat(t))
            cols.append(col.repeat(t))
        row_angles = torch.cat(rows)[:, None].float() * freqs
        col_angles = torch.cat(cols)[:, None].float() * freqs
        return torch.cat([row_angles, col_angles], dim=-1)


def _check(pixel_values: torch.Tensor, grids: list[tuple[int, ...]], config: QwenVisionConfig) -> None:
    """One line for pixels that do not fit their grids (rather than a shape error deep in the tower)."""
    m = config.merge_size
    if any(len(grid) != 3 or min(grid) < 1 or grid[1] % m or grid[2] % m for grid in grids):
        raise InputError(f"grid_thw {grids}: expected positive (t, h, w) rows with h and w multiples of {m}")
    expected = (sum(t * h * w for t, h, w in grids), config.patch_features)
    if tuple(pixel_values.shape) != expected:
        raise InputError(
            f"pixel values {tuple(pixel_values.shape)} do not fit grid_thw {grids}: expected {expected} "
            f"(one row of channels x {config.temporal_patch_size} x {config.patch_size}^2 values per patch)"
        )


def window_order(
    grids: list[tuple[int, int, int]], merge: int, window_patches: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen2.5-VL's window attention layout, per merged token: the order that groups tokens window by window
    (``window_index``), and the window of each token in that order. ``window_patches`` is the window side in
    patches; each side holds ``window_patches // merge`` merged tokens."""
    side = window_patches // merge
    orders, windows, offset, first = [], [], 0, 0
    for t, h, w in grids:
        lh, lw = h // merge, w // merge
        frame, i, j = torch.meshgrid(torch.arange(t), torch.arange(lh), torch.arange(lw), indexing="ij")
        across, down = -(-lw // side), -(-lh // side)
        window = (frame * down + i // side) * across + j // side
        key = (window * side + i % side) * side + j % side  # window, then row-major within it
        order = key.flatten().argsort()
        orders.append(order + offset)
        windows.append(window.flatten()[order] + first)
        offset += t * lh * lw
        first += t * down * across
    return torch.cat(orders), torch.cat(windows)


def _segment_ids(lengths: list[int], device: torch.device) -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(len(lengths), device=device), torch.tensor(lengths, device=device))


def _gather(values: torch.Tensor, order: torch.Tensor, unit: int) -> torch.Tensor:
    """``values`` (patches first, or (1, patches, ...)) reordered merged token by merged token."""
    batched = values.dim() == 3 and values.shape[0] == 1
    flat = values[0] if batched else values
    grouped = flat.reshape(-1, unit, *flat.shape[1:])[order].reshape(flat.shape)
    return grouped[None] if batched else grouped


class _Layout:
    """How a block attends within segments (frames or windows, consecutive runs of ``segments``): as a batch of
    equal segments (the common case: images of one size; no mask, no wasted scores), or else as one sequence
    with a block-diagonal mask."""

    def __init__(self, segments: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
        lengths = torch.unique_consecutive(segments, return_counts=True)[1]
        equal = bool((lengths == lengths[0]).all())
        self.groups = len(lengths) if equal else 1
        self.mask = None if equal else (segments[:, None] == segments[None, :])[None, None]
        self.rope = cos.view(self.groups, -1, 1, cos.shape[-1]), sin.view(self.groups, -1, 1, sin.shape[-1])
