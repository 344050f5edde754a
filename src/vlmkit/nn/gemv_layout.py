"""Weight storage for few-row matmuls on the CPU: the layout batch-1 decoding reads fastest.

Decoding one token multiplies a single row by every weight matrix, so a step takes as long as reading
the matrices does. ``nn.Linear`` stores its weight ``(out, in)`` row-major and computes
``x @ weight.t()``. For that operand MKL's float32 kernel reads a decoder's 512-wide rows at about 10 GB/s on
one core of the shared machine this was measured on, while the same values stored ``(in, out)``
row-major (``weight.t()`` contiguous) are read at about 16 GB/s; with two rows the transposed storage is
still twice as fast (9.6 against 5.0 GB/s), from four rows on row-major is ~10% faster (8 rows: 5.7
against 4.9 GB/s), and at 32 rows they are alike (the figures and the commands are in the decode notes
of issue #21). So the layout follows the batch: ``TRANSPOSED_UP_TO`` rows or fewer, transposed storage;
more, row-major.

Re-laying keeps every value, the shape and the parameter object; only the strides change, so
optimisers, state dicts and saving (which makes tensors contiguous) are unaffected. Only float32 CPU
matrices are re-laid: that is the case measured; CUDA and reduced-precision kernels have other
preferences.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

TRANSPOSED_UP_TO = 2  # rows per matmul up to which the transposed storage is read faster


def _relayable(weight: torch.Tensor) -> bool:
    return weight.ndim == 2 and weight.device.type == "cpu" and weight.dtype == torch.float32 and min(weight.shape) > 1


def lay_out_(weights: Iterable[torch.Tensor], transposed: bool) -> int:
    """Store each matrix so that ``weight.t()`` (``transposed``) or ``weight`` is contiguous; the number
    re-laid.

    A matrix already laid out so, or in neither layout (a strided view), is left alone; a second call
    changes nothing. Runs outside inference mode even when called inside it, so the weights stay
    usable for training afterwards.
    """
    count = 0
    with torch.inference_mode(False), torch.no_grad():
        for weight in weights:
            if not _relayable(weight):
                continue
            if transposed and weight.is_contiguous():
                weight.data = weight.data.t().contiguous().t()
            elif not transposed and weight.t().is_contiguous() and not weight.is_contiguous():
                weight.data = weight.data.contiguous()
            else:
                continue
            count += 1
    return count
