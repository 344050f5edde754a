"""RMSNorm: LayerNorm without the mean and the bias, in the Llama and the Gemma flavours."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """``weight * x / sqrt(mean(x^2) + eps)``, or with ``unit_offset`` Gemma's ``(1 + weight) * ...``.

    The statistics are taken in float32: in bfloat16 the mean of squares would otherwise lose the
    precision the normalisation exists to provide. The two references differ in where they round
    back to the input dtype, and a checkpoint expects its own: Llama casts the normalised ``x`` back
    before the weight multiplies it, Gemma multiplies by ``1 + weight`` in float32 and casts the
    product. Gemma's weights are stored as offsets from one, so they start at zero.
    """

    def __init__(self, dim: int, eps: float = 1e-6, unit_offset: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim) if unit_offset else torch.ones(dim))
        self.eps = eps
        self.unit_offset = unit_offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unit_offset:
            scale = 1.0 + self.weight.float()
            return F.rms_norm(x.float(), self.weight.shape, scale, self.eps).to(x.dtype)
        if x.dtype == torch.float32:
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        return self.weight * F.rms_norm(x.float(), self.weight.shape, eps=self.eps).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}{', unit_offset' if self.unit_offset else ''}"
