"""A static key/value cache: one preallocated buffer per batch, written in place as tokens arrive.

Growing a cache by ``torch.cat`` every step copies everything written so far; a static buffer of
``capacity`` positions is written once per token and read as a view (``keys[:, :, :length]``), so a
decoding step costs the same at position 10 and at position 1000 apart from attention itself.

Besides keys and values the cache remembers, per row, which positions hold real tokens
(``valid``: left padding is False) and how many real tokens each row has seen (``seen``: the next
token's rotary position). With them a decoding step needs no mask or position arguments. A model whose
positions are not token counts (Qwen2-VL's M-RoPE packs an image into fewer positions than tokens) ``shift``s
each row's next position once after its prefill, and every later token follows on from it.
"""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer, ``(layers, batch, kv_heads, capacity, head_dim)`` each."""

    def __init__(
        self,
        layers: int,
        batch: int,
        kv_heads: int,
        head_dim: int,
        capacity: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.keys = torch.zeros(layers, batch, kv_heads, capacity, head_dim, device=device, dtype=dtype)
        self.values = torch.zeros_like(self.keys)
        self.valid = torch.ones(batch, capacity, dtype=torch.bool, device=device)
        self.seen = torch.zeros(batch, dtype=torch.long, device=device)
        self.offset = torch.zeros(batch, dtype=torch.long, device=device)  # ``shift``s so far, per row
        self.length = 0  # positions written (real tokens and padding alike)
        self.padded = False  # whether any written position is padding
        self.shifted = False  # whether ``seen`` differs from the real-token counts

    @property
    def batch(self) -> int:
        return self.keys.shape[1]

    @property
    def capacity(self) -> int:
        return self.keys.shape[3]

    def layer(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The (keys, values) buffers of one layer, each ``(batch, kv_heads, capacity, head_dim)``."""
        return self.keys[index], self.values[index]

    def reserve(self, extra: int, limit: int | None = None) -> None:
        """Make room for ``extra`` more positions, reallocating (at least doubling) when full."""
        needed = self.length + extra
        if needed <= self.capacity:
            return
        capacity = max(needed, 2 * self.capacity)
        capacity = min(capacity, limit) if limit is not None else capacity
        capacity = max(capacity, needed)
        shape = (*self.keys.shape[:3], capacity, self.keys.shape[4])
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_zeros(shape)
            new[:, :, :, : self.length] = old[:, :, :, : self.length]
            setattr(self, name, new)
        valid = self.valid.new_ones(self.batch, capacity)
        valid[:, : self.length] = self.valid[:, : self.length]
        self.valid = valid

    def positions(self, attention_mask: torch.Tensor | None, length: int) -> torch.Tensor | slice:
        """Rotary positions of ``length`` new tokens: a slice when every row counts alike, else (B, L)."""
        if attention_mask is None and not (self.padded or self.shifted):
            return slice(self.length, self.length + length)
        if attention_mask is None:
            return self.seen[:, None] + torch.arange(length, device=self.seen.device)
        return (self.seen[:, None] + attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def append(self, attention_mask: torch.Tensor | None, length: int) -> None:
        """Record ``length`` new positions (after every layer has written its keys and values)."""
        end = self.length + length
        if attention_mask is None:
            self.valid[:, self.length : end] = True
            self.seen += length
        else:
            mask = attention_mask.bool()
            self.valid[:, self.length : end] = mask
            self.seen += mask.sum(-1)
            self.padded = self.padded or not bool(mask.all())
        self.length = end

    def trim(self, length: int) -> None:
        """Forget every position from ``length`` on (a chat rewinding to a shared prefix)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot trim a cache of {self.length} positions to {length}")
        self.length = length
        self.seen = self.valid[:, :length].sum(-1) + self.offset
        self.padded = not bool(self.valid[:, :length].all())

    def shift(self, deltas: torch.Tensor) -> None:
        """Move each row's next rotary position by ``deltas`` (B,): M-RoPE's rope deltas after a prefill."""
        deltas = deltas.to(self.seen.device, torch.long).reshape(self.batch)
        self.seen = self.seen + deltas
        self.offset = self.offset + deltas
        self.shifted = self.shifted or bool(deltas.any())
