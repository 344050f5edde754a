"""In-memory image-text data for CPU-scale training runs.

Datasets of up to ~100k small images (ShapesWorld at 64 px is 12 KB an image) fit in memory as
uint8, so each image is decoded and resized once, in a process pool, instead of once per epoch;
a training step then costs only the model. Normalisation happens per batch, in float32.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vlmkit.processing.images import ImagePreprocessor, load_image

_PROCESSOR: ImagePreprocessor | None = None


def _init_worker(processor: ImagePreprocessor) -> None:
    global _PROCESSOR
    _PROCESSOR = processor
    torch.set_num_threads(1)


def _decode(path: str) -> np.ndarray:
    assert _PROCESSOR is not None
    return np.asarray(_PROCESSOR.resize_and_crop(load_image(path)), dtype=np.uint8)


def preload_images(
    paths: Sequence[str | Path], processor: ImagePreprocessor, workers: int | None = None, desc: str = "decode"
) -> torch.Tensor:
    """All images resized and cropped, as uint8 (N, 3, H, W)."""
    height, width = processor.size
    out = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    workers = workers or min(os.cpu_count() or 1, 8)
    names = [str(p) for p in paths]
    bar = tqdm(total=len(names), desc=desc, unit="img", leave=False, disable=len(names) < 500)
    if workers <= 1 or len(names) < 500:
        _init_worker(processor)
        for i, name in enumerate(names):
            out[i] = _decode(name)
            bar.update(1)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker, initargs=(processor,)) as pool:
            for i, array in enumerate(pool.imap(_decode, names, chunksize=64)):
                out[i] = array
                bar.update(1)
    bar.close()
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def normalize(pixels: torch.Tensor, processor: ImagePreprocessor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> the float32 input ``processor`` would have produced."""
    mean = torch.tensor(processor.mean).view(1, 3, 1, 1) / processor.rescale_factor
    std = torch.tensor(processor.std).view(1, 3, 1, 1) / processor.rescale_factor
    return (pixels.float() - mean) / std


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (inside tuples, lists and dicts too) moved to ``device``.

    Tasks build batches on the CPU, where the preloaded data lives; the trainer moves each one to the
    model's device, so no task needs to know where training runs.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch
