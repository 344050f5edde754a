"""Rotary position embeddings (RoPE), with the "linear" and "llama3" frequency scalings.

Each pair of channels ``(i, i + d/2)`` of a query or key is rotated by the angle ``position * f_i``
with ``f_i = theta^(-2i/d)`` (the "rotate half" layout of the Llama checkpoints, not the
interleaved one of the original paper). A query-key dot product then depends only on the distance
between their positions.

Scalings stretch the frequencies so a model reaches past its training context:

- ``linear``: every ``f_i`` divided by ``factor`` (position interpolation).
- ``llama3``: frequencies whose wavelength ``2 pi / f_i`` exceeds ``original / low_freq_factor`` are
  divided by ``factor``, those shorter than ``original / high_freq_factor`` are kept, and the band
  between blends the two with weight ``s = (original / wavelength - low) / (high - low)``:
  ``(1 - s) f / factor + s f``.

The cos/sin tables are computed once per device and dtype and kept outside the state dict, so a
model built on the meta device and loaded with ``assign=True`` needs no extra step.

M-RoPE (Qwen2-VL) gives each token three positions (temporal, height, width) and rotates consecutive
bands of the ``d/2`` frequencies by one of them each (``sections``: the band widths, cycling t, h, w;
transformers 5.24's ``Qwen2VLRotaryEmbedding.recomposition_frequencies``). When the three positions are
equal (text) this is plain RoPE, so only a (3, B, L) position tensor takes that path.
"""

from __future__ import annotations

import math

import torch

from vlmkit.config import DecoderConfig


def inverse_frequencies(config: DecoderConfig) -> torch.Tensor:
    """The ``d/2`` rotation frequencies ``f_i`` (float32), after the config's scaling."""
    dim = config.dim_per_head
    freqs = config.rope_theta ** -(torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)
    if config.rope_scaling == "linear":
        return freqs / config.rope_factor
    if config.rope_scaling == "llama3":
        original = config.rope_original_max_positions
        low, high = config.rope_low_freq_factor, config.rope_high_freq_factor
        wavelength = 2 * math.pi / freqs
        scaled = torch.where(wavelength > original / low, freqs / config.rope_factor, freqs)
        blend = (original / wavelength - low) / (high - low)
        smoothed = (1 - blend) * scaled / config.rope_factor + blend * scaled
        in_band = (wavelength >= original / high) & (wavelength <= original / low)
        return torch.where(in_band, smoothed, scaled)
    return freqs


class RotaryEmbedding:
    """Cos/sin tables for positions ``0 .. max_positions + position_offset - 1``, looked up per call.

    The sin table carries the sign of ``rotate_half`` (``-sin`` on the first half), so that
    ``rotate`` is ``x cos + roll(x, d/2) sin``: three elementwise ops instead of six.
    """

    def __init__(self, config: DecoderConfig, sections: tuple[int, ...] = ()) -> None:
        self.config = config
        self.sections = sections
        self._tables: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, signed sin)``, one row per position, each ``head_dim`` wide in ``dtype``: computed in float32,
        then cast."""
        key = (device, dtype)
        if key not in self._tables:
            freqs = inverse_frequencies(self.config)
            rows = self.config.max_positions + self.config.position_offset
            cos, sin = rotary_tables(torch.outer(torch.arange(rows, dtype=torch.float32), freqs))
            self._tables[key] = (cos.to(device, dtype), sin.to(device, dtype))
        return self._tables[key]

    def __call__(
        self, positions: torch.Tensor | slice, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cos and signed sin for ``positions``, shaped to broadcast over (B, L, heads, d).

        A (B, L) tensor gives (B, L, 1, d); a slice gives a (1, L, 1, d) view into the table, which
        is what one decoding step of an unpadded batch needs. With ``sections``, a (3, B, L) tensor holds
        M-RoPE's temporal, height and width positions, computed in float32 directly (not from the table:
        a video's temporal positions may pass ``max_positions``).
        """
        if self.sections and isinstance(positions, torch.Tensor) and positions.dim() == 3:
            axis = torch.cat([torch.full((n,), i % 3, device=device) for i, n in enumerate(self.sections)])
            per_channel = positions.to(device).permute(1, 2, 0)[..., axis]  # (B, L, d/2): each band's position
            cos, sin = rotary_tables(per_channel.float() * inverse_frequencies(self.config).to(device))
            return cos.to(dtype)[:, :, None], sin.to(dtype)[:, :, None]
        cos, sin = self.tables(device, dtype)
        if isinstance(positions, slice):
            return cos[positions][None, :, None], sin[positions][None, :, None]
        return cos[positions][:, :, None], sin[positions][:, :, None]


def rotary_tables(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, signed sin)`` of ``angles`` (..., d/2), each (..., d) in the "rotate half" layout ``rotate`` reads."""
    cos, sin = angles.cos(), angles.sin()
    return torch.cat([cos, cos], dim=-1), torch.cat([-sin, sin], dim=-1)


def rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (..., d): ``x cos + rotate_half(x) sin``, with ``rotate_half(x) sin = roll(x) signed_sin``."""
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), signed_sin)
