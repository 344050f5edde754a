"""M-RoPE positions (Qwen2-VL, Qwen2.5-VL): three rotary positions per token, temporal, height and width.

The rule of transformers 5.24's ``get_rope_index`` (``modeling_qwen2_vl.py`` and ``modeling_qwen2_5_vl.py``):

- Text tokens count on from the previous position, the same on all three axes.
- A run of image (or video) tokens, one per merged token of a ``t x h x w`` patch grid, starts at the next
  position ``p``: a token at temporal index ``k`` and merged row and column ``i, j`` gets
  ``(p + floor(k * interval), p + i, p + j)``, ``interval`` 1 for images and Qwen2-VL videos, and for Qwen2.5-VL
  videos ``tokens_per_second * second_per_grid_ts`` (the seconds one temporal patch spans).
- The text after it continues at ``p + max(h, w) / merge``, so an image costs only as many positions as its
  longer side.
- Padding (``attention_mask`` 0) is skipped and gets position 0; the runs are read from the real tokens.

A row's ``delta`` is ``max position + 1 - real tokens``: the generated tokens that follow get the plain
1-D position (their count of real tokens so far) plus ``delta`` on all three axes (``KVCache.shift``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import torch

from vlmkit.errors import InputError

TEXT, IMAGE, VIDEO = 0, 1, 2
Grid = tuple[int, int, int]


def token_types(input_ids: torch.Tensor, image_token_id: int, video_token_id: int) -> torch.Tensor:
    """The processor's ``mm_token_type_ids``: 0 for text, 1 for an image token, 2 for a video token."""
    types = torch.zeros_like(input_ids)
    types[input_ids == image_token_id] = IMAGE
    types[input_ids == video_token_id] = VIDEO
    return types


def mrope_positions(
    types: torch.Tensor,
    image_grids: Sequence[Grid],
    video_grids: Sequence[Grid],
    merge: int,
    attention_mask: torch.Tensor | None = None,
    video_intervals: Sequence[float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (3, B, L) and deltas (B,) for token ``types`` (B, L) whose image and video runs take the grids
    (patch grids, before merging) in order across the batch; ``video_intervals`` one per video (default 1)."""
    batch, length = types.shape
    positions = torch.zeros(3, batch, length, dtype=torch.long)
    deltas = torch.zeros(batch, dtype=torch.long)
    grids: dict[int, Iterator[Grid]] = {IMAGE: iter(image_grids), VIDEO: iter(video_grids)}
    intervals = iter(video_intervals if video_intervals is not None else [1.0] * len(video_grids))
    for row in range(batch):
        real = torch.ones(length, dtype=torch.bool) if attention_mask is None else attention_mask[row].cpu().bool()
        row_types = types[row].cpu()[real].tolist()
        pieces, start = [], 0
        for kind, run in itertools.groupby(row_types):
            count = len(list(run))
            if kind == TEXT:
                pieces.append(torch.arange(start, start + count).expand(3, -1))
                start += count
                continue
            grid = next(grids[kind], None)
            name = "image" if kind == IMAGE else "video"
            if grid is None:
                raise InputError(f"the prompts hold more {name} runs than {name}_grid_thw gives grids")
            interval = next(intervals, 1.0) if kind == VIDEO else 1.0
            piece = _grid_positions(grid, merge, start, interval)
            if piece.shape[1] != count:
                raise InputError(
                    f"a run of {count} {name} tokens does not match its grid {list(grid)} ({piece.shape[1]} merged "
                    f"tokens); expand each {name} to t * h * w / {merge * merge} pad tokens"
                )
            pieces.append(piece)
            start += max(grid[1], grid[2]) // merge
        row_positions = torch.cat(pieces, dim=1) if pieces else torch.zeros(3, 0, dtype=torch.long)
        positions[:, row, real] = row_positions
        deltas[row] = (int(row_positions.max()) + 1 if row_positions.numel() else 0) - len(row_types)
    return positions.to(types.device), deltas.to(types.device)


def _grid_positions(grid: Grid, merge: int, start: int, interval: float) -> torch.Tensor:
    t, h, w = grid[0], grid[1] // merge, grid[2] // merge
    temporal = (torch.arange(t) * interval).long() + start
    frame, row, col = torch.meshgrid(temporal, torch.arange(h) + start, torch.arange(w) + start, indexing="ij")
    return torch.stack([frame, row, col]).reshape(3, -1)
