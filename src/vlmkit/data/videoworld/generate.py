"""Writing VideoWorld dataset folders, in parallel, byte-for-byte reproducibly, and safe to run again.

A split folder holds ``videos/NNNNNN.mp4``, ``frames/NNNNNN/KKK.png`` (the exact frames the MP4 was encoded
from: lossless ground truth, and what image-only tools read), ``records.jsonl`` and ``videoworld.json``
(config with its codec resolved, seed, split, count, generator version: all it takes to regenerate the
folder). Workers render and encode chunks of clips; the parent writes the records in index order, last
(``data.generator_folder``), so the bytes never depend on the worker count and a stopped run is finished
by running it again. A record's ``image`` is its clip's first frame, so every reader of the shared record
format (``read_records``, ``vlmkit data show``) takes a VideoWorld folder as it is.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import Any

from PIL import Image

from vlmkit.data.chunks import chunked
from vlmkit.data.generator_folder import check_run, claimed_folder, drain, read_spec
from vlmkit.data.records import write_records
from vlmkit.data.shapesworld.example import PNG_COMPRESS_LEVEL
from vlmkit.data.videoworld.config import GENERATOR_VERSION, SPLITS, VideoWorldConfig
from vlmkit.data.videoworld.encode import encode_mp4, resolve_codec
from vlmkit.data.videoworld.example import make_example
from vlmkit.files import atomic_write_bytes, remove_stale_temps
from vlmkit.progress import progress as progress_bar

CONFIG_FILE = "videoworld.json"
CHUNK = 16
"""Most clips per worker task (a 16-frame clip takes ~0.1 s): enough to amortise the hand-off."""


def _stem(index: int, n: int) -> str:
    return f"{index:0{max(6, len(str(n - 1)))}d}"


def _png(pixels: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _write_chunk(
    out_dir: str, config: dict[str, Any], seed: int, split: str, start: int, stop: int, n: int
) -> list[dict[str, Any]]:
    """Render, encode and save clips ``start..stop-1``; return their records (picklable)."""
    cfg = VideoWorldConfig.from_dict(config)
    root = Path(out_dir)
    records = []
    for index in range(start, stop):
        frames, record = make_example(cfg, seed, split, index)
        stem = _stem(index, n)
        folder = root / "frames" / stem
        folder.mkdir(exist_ok=True)
        remove_stale_temps(folder)  # a killed run's; the parent holds the folder's lock
        for number, pixels in enumerate(frames):
            atomic_write_bytes(folder / f"{number:03d}.png", _png(pixels))
        atomic_write_bytes(root / "videos" / f"{stem}.mp4", encode_mp4(frames, cfg.fps, cfg.codec, cfg.crf))
        video = {"image": f"frames/{stem}/000.png", "video": f"videos/{stem}.mp4", "frames": f"frames/{stem}"}
        records.append({**video, **record})
    return records


def generate_split(
    out_dir: str | os.PathLike[str],
    config: VideoWorldConfig,
    split: str,
    n: int,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    chunk_size: int = CHUNK,
) -> Path:
    """Write ``n`` clips of ``split`` into ``out_dir`` and return the folder.

    ``workers`` processes (default: all CPUs, capped by the number of chunks; 1 runs in this process) share
    the work in chunks of at most ``chunk_size`` clips; the output is identical for any value of either.
    """
    check_run("VideoWorld", SPLITS, split, n, "clips", seed, workers, chunk_size)
    config = dataclasses.replace(config, codec=resolve_codec(config.codec))
    spec = {"generator": "videoworld", "version": GENERATOR_VERSION, "split": split, "n": n, "seed": seed}
    spec["config"] = config.to_dict()
    with claimed_folder(Path(out_dir), spec, CONFIG_FILE, "VideoWorld", ("videos", "frames")) as folder:
        remove_stale_temps(folder / "videos")
        job = (str(folder), config.to_dict(), seed, split)
        bar = progress_bar(total=n, desc=f"videoworld {split}", unit="clip", disable=not progress)
        write_records(folder, drain(chunked(_write_chunk, job, n, chunk_size, workers), bar))
        bar.close()
    return folder


def regenerate(
    config_file: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Rebuild the folder a ``videoworld.json`` describes, byte-identical (with the same PyAV), into ``out_dir``."""
    config, split, n, seed = read_spec(config_file, VideoWorldConfig, GENERATOR_VERSION)
    return generate_split(out_dir, config, split, n, seed, workers, progress)
