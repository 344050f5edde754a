"""Weight storage for one-row matmuls on the CPU: the layout batch-1 decoding reads fastest.

Decoding one token multiplies a single row by every weight matrix, so a step takes as long as reading
the matrices does. ``nn.Linear`` stores its weight ``(out, in)`` row-major and computes
``x @ weight.t()``. For that operand MKL's one-row float32 kernel reads a decoder's 512-wide rows at
about 9 GB/s on one core of the shared machine this was measured on, while the same values stored
``(in, out)`` row-major (``weight.t()`` contiguous) are read at about 13-16 GB/s (the figures and the
command are in the decode notes of issue #21). Re-laying the storage keeps every value, the shape and
the parameter object; only the strides change, so optimisers, state dicts and saving (which makes
tensors contiguous) are unaffected. Matmuls of many rows (prefill, training) read either layout alike.

Only float32 CPU weights are re-laid: that is the case measured; CUDA and reduced-precision kernels
have other preferences.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def prefers_transposed(weight: torch.Tensor) -> bool:
    """Whether ``weight`` is a 2-D float32 CPU matrix still stored row-major (``(out, in)`` contiguous)."""
    return (
        weight.ndim == 2
        and weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and min(weight.shape) > 1
        and weight.is_contiguous()
    )


def transpose_storage_(weights: Iterable[torch.Tensor]) -> int:
    """Re-lay each matrix in place so that ``weight.t()`` is contiguous; the number re-laid.

    Idempotent: a re-laid matrix is no longer row-major, so a second call skips it. Runs outside
    inference mode even when called inside it, so the weights stay usable for training afterwards.
    """
    count = 0
    with torch.inference_mode(False), torch.no_grad():
        for weight in weights:
            if prefers_transposed(weight):
                weight.data = weight.data.t().contiguous().t()
                count += 1
    return count
