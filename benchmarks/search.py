"""Indexing throughput end to end (JPEG files on disk -> search index) against the model alone.

Generates JPEGs from random crops of scikit-image's sample photos, then, with the same loaded
model, measures (a) the model-only rate on tensors decoded beforehand and (b) ``index_folder`` on the
files: hashing, decoding and preprocessing in worker processes, inference, and committed writes.
The ratio (b)/(a) says how much of the decoding hides behind inference; the goal is >= 0.85.

    .venv/bin/python benchmarks/search.py [--files 800] [--model vlmkit:conse-effnet-minilm] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

import vlmkit
from vlmkit.search.indexer import default_workers, index_folder

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "horse", "hubble_deep_field")


def write_jpegs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEGs of 50-100% random crops of the sample photos, scaled to 640 px on the long side."""
    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in PHOTOS]
    paths = []
    for i in range(count):
        image = photos[i % len(photos)]
        w, h = image.size
        cw, ch = (int(side * rng.uniform(0.5, 1.0)) for side in (w, h))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = image.crop((x, y, x + cw, y + ch))
        crop.thumbnail((640, 640))
        path = folder / f"{i:05d}.jpg"
        crop.save(path, quality=90)
        paths.append(path)
    return paths


@torch.inference_mode()
def model_only_rate(model: torch.nn.Module, paths: list[Path], batch_size: int) -> float:
    """Images per second of ``encode_image`` alone, on pixels preprocessed before the clock starts."""
    pixels = model.image_processor(paths)
    model.encode_image(pixels[:batch_size])  # warm-up
    start = time.perf_counter()
    for chunk in pixels.split(batch_size):
        model.encode_image(chunk)
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=800)
    parser.add_argument("--model", default="vlmkit:conse-effnet-minilm")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    model = vlmkit.load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        paths = write_jpegs(folder, args.files)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(
            f"{args.files} JPEGs ({megabytes:.0f} MB), model {args.model}, batch {args.batch_size}, "
            f"{args.workers} decode workers, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs"
        )
        rate_model = model_only_rate(model, paths, args.batch_size)
        start = time.perf_counter()
        report = index_folder(
            folder,
            Path(tmp) / "index",
            model,
            model_id=args.model,
            batch_size=args.batch_size,
            workers=args.workers,
            progress=False,
        )
        rate_e2e = report.added / (time.perf_counter() - start)
        rate_again = model_only_rate(model, paths, args.batch_size)  # machine noise check: rerun the model alone
    reference = (rate_model + rate_again) / 2
    print(f"model only (pre-decoded tensors): {rate_model:.1f} img/s (rerun {rate_again:.1f})")
    print(
        f"end to end (files -> index):      {rate_e2e:.1f} img/s  ({report.added} indexed, {len(report.failed)} failed)"
    )
    print(f"end-to-end / model-only ratio:    {rate_e2e / reference:.2f}  (goal >= 0.85)")


if __name__ == "__main__":
    main()
