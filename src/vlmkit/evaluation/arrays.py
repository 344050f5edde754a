"""Turning the score matrices callers hand in (torch or numpy) into checked numpy arrays.

Metrics run on numpy so they behave the same whatever produced the scores: a model on GPU in bf16,
a cached ``.npy`` file, or a hand-written test matrix. Checking shape and finiteness here means a
NaN from a diverged model is reported as bad input instead of silently ranking last or first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vlmkit.errors import InputError


def to_numpy(values: Any, name: str, ndim: int, *, finite: bool = True) -> np.ndarray:
    """Return ``values`` as a numpy array with ``ndim`` dimensions, raising ``InputError`` otherwise.

    Half-precision tensors are widened to float32 because numpy has no bfloat16; float64 is kept
    so that callers comparing against a reference implementation lose no precision.
    """
    if isinstance(values, torch.Tensor):
        tensor = values.detach().cpu()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()
        array = tensor.numpy()
    else:
        array = np.asarray(values)
    if array.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-d array, got shape {tuple(array.shape)}")
    if finite and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{name}: contains NaN or infinite values")
    return array
