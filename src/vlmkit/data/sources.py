"""Records and their images for training and evaluation: the one data path, preloaded or streamed.

A training run needs two things from its data: every record up front (the text, cheap: tokenizers,
caption statistics and class names are built from it) and the pixels of a batch's images when that
batch is drawn. ``open_images`` gives both from a dataset folder or from WebDataset shards:

- **memory** decodes every image once, in a process pool, into one uint8 tensor; a step then costs only
  the model. Right for anything that fits (ShapesWorld's 10,000 images at 64 px are 123 MB).
- **stream** keeps only the records; a folder's images are decoded per batch, and shards are read in
  windows of ``buffer`` samples whose raw bytes are held while their batches are drawn.

Both give the same epoch order (``sampling.epoch_order``): the stream, cut into windows, each window
permuted by (seed, epoch, window). A folder or a preloaded set is one window, so when a stream's
buffer holds the whole set, streaming the shards of a folder trains exactly as the folder does. A
batch is a function of (seed, epoch, position), never of what was read before, so a resumed run
reads the batches the uninterrupted run read. Pixels come out of ``ImagePreprocessor.to_uint8`` and
are normalised per batch by the same processor that serves inference.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from vlmkit.data.records import RECORDS_FILE, Record, RecordDataset
from vlmkit.data.sampling import epoch_order
from vlmkit.data.webdataset import expand_shards, iter_webdataset
from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.progress import progress

DataMode = Literal["auto", "memory", "stream"]
MEMORY_BUDGET = 2 * 2**30
"""``auto`` preloads a set whose uint8 pixels fit in this many bytes, and streams a larger one."""

ImageRef = str | bytes  # a file path, or the undecoded bytes of a shard member


class ImageRecords(Protocol):
    """Records with their images, as every training recipe and its evaluation read them."""

    records: list[Record]

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        """Indices into ``records`` in the order epoch ``epoch`` visits them."""

    def pixels(self, items: Sequence[int]) -> torch.Tensor:
        """uint8 ``(len(items), 3, H, W)`` of those records' images, by the processor given at opening."""


# ---------------------------------------------------------------------------------------- decoding

_WORKER_PROCESSOR: ImagePreprocessor | None = None


def _init_worker(processor: ImagePreprocessor) -> None:
    global _WORKER_PROCESSOR
    _WORKER_PROCESSOR = processor
    torch.set_num_threads(1)


def _decode(named: tuple[str, ImageRef]) -> np.ndarray:
    assert _WORKER_PROCESSOR is not None
    return decode(_WORKER_PROCESSOR, *named).numpy()


def decode(processor: ImagePreprocessor, name: str, source: ImageRef) -> torch.Tensor:
    """One image as uint8 ``(3, H, W)``; an undecodable one is an ``InputError`` that names it."""
    try:
        return processor.to_uint8([source])[0]
    except InputError as error:
        if isinstance(source, bytes):
            raise InputError(f"{name}: {error}") from None
        raise


def decode_all(
    processor: ImagePreprocessor,
    named: Iterable[tuple[str, ImageRef]],
    count: int,
    workers: int | None = None,
    desc: str = "",
) -> torch.Tensor:
    """``count`` images from ``named`` (name, path or bytes) as uint8 ``(count, 3, H, W)``, decoded in a
    process pool when there are many, a chunk at a time so a stream of shard members is never all in memory."""
    height, width = processor.size
    out = torch.empty((count, 3, height, width), dtype=torch.uint8)
    workers = workers or min(os.cpu_count() or 1, 8)
    bar = progress(total=count, desc=desc or "decode", unit="img", leave=False, disable=count < 500)
    items = iter(named)
    if workers <= 1 or count < 500:
        for i, (name, source) in enumerate(itertools.islice(items, count)):
            out[i] = decode(processor, name, source)
            bar.update(1)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker, initargs=(processor,)) as pool:
            done = 0
            while chunk := list(itertools.islice(items, min(4096, count - done))):
                for array in pool.imap(_decode, chunk, chunksize=64):
                    out[done] = torch.from_numpy(array)
                    done += 1
                    bar.update(1)
    bar.close()
    return out


# ------------------------------------------------------------------------------------------ sources


class PreloadedImages:
    """Every image decoded once into memory; the epoch order is one permutation of the whole set."""

    def __init__(self, records: list[Record], pixels: torch.Tensor) -> None:
        self.records, self.all_pixels = records, pixels

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        return epoch_order(len(self.records), seed, epoch)

    def pixels(self, items: Sequence[int]) -> torch.Tensor:
        return self.all_pixels[list(items)]


class FolderStream:
    """A dataset folder's images decoded when their batch is drawn (random access, nothing held)."""

    def __init__(self, records: list[Record], paths: list[str], processor: ImagePreprocessor) -> None:
        self.records, self.paths, self.processor = records, paths, processor

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        return epoch_order(len(self.records), seed, epoch)

    def pixels(self, items: Sequence[int]) -> torch.Tensor:
        return torch.stack([decode(self.processor, self.paths[i], self.paths[i]) for i in items])


class ShardStream:
    """WebDataset shards read in windows of ``buffer`` samples.

    Each epoch the shards are visited in an order shuffled by (seed, epoch) (unless one window holds
    them all, where a global permutation mixes everything already), the samples are cut into windows,
    and each window is permuted. Drawing a batch loads the raw bytes of the window(s) it falls in by
    reading their shards; only the batch's own images are decoded.
    """

    def __init__(
        self,
        records: list[Record],
        locations: list[tuple[int, int]],
        shards: list[Path],
        processor: ImagePreprocessor,
        buffer: int,
    ) -> None:
        if buffer < 1:
            raise ConfigError(f"shuffle_buffer: must be positive, got {buffer}")
        self.records, self.locations, self.shards = records, locations, shards
        self.processor, self.buffer = processor, buffer
        self._by_shard: dict[int, list[int]] = {}
        for item, (shard, _) in enumerate(locations):
            self._by_shard.setdefault(shard, []).append(item)
        self._epoch: tuple[int, int] | None = None
        self._window_of: dict[int, int] = {}
        self._windows: list[list[int]] = []
        self._loaded: dict[int, dict[int, bytes]] = {}

    def _stream(self, seed: int, epoch: int) -> list[int]:
        shards = sorted(self._by_shard)
        if len(self.records) > self.buffer:
            random.Random(f"{seed}/{epoch}/shards").shuffle(shards)
        return [item for shard in shards for item in self._by_shard[shard]]

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        stream = self._stream(seed, epoch)
        order = torch.tensor(stream, dtype=torch.long)[epoch_order(len(stream), seed, epoch, self.buffer)]
        if self._epoch != (seed, epoch):
            self._epoch, self._loaded = (seed, epoch), {}
            self._windows = [order[i : i + self.buffer].tolist() for i in range(0, len(order), self.buffer)]
            self._window_of = {item: w for w, window in enumerate(self._windows) for item in window}
        return order

    def _window_bytes(self, window: int) -> dict[int, bytes]:
        if window not in self._loaded:
            by_location = {self.locations[item]: item for item in self._windows[window]}
            found = {by_location[location]: data for location, data in member_bytes(self.shards, by_location)}
            self._loaded = {window: found}  # one window held at a time
        return self._loaded[window]

    def pixels(self, items: Sequence[int]) -> torch.Tensor:
        if self._epoch is None:
            raise RuntimeError("ShardStream.pixels before order(): the window layout is per epoch")
        images = []
        for item in items:
            shard, position = self.locations[item]
            name = f"{self.shards[shard]}:{position}"
            images.append(decode(self.processor, name, self._window_bytes(self._window_of[item])[item]))
        return torch.stack(images)


# ------------------------------------------------------------------------------------------ opening


def is_folder(spec: str) -> bool:
    return (Path(spec) / RECORDS_FILE).is_file()


def shard_paths(spec: str) -> list[Path]:
    """The shards ``spec`` names; a folder that holds neither records nor shards is one clear error."""
    if Path(spec).is_dir() and not any(Path(spec).glob("*.tar*")):
        raise InputError(f"{spec}: neither a dataset folder (no {RECORDS_FILE}) nor a folder of WebDataset shards")
    if not Path(spec).exists() and not any(c in spec for c in "*?[{"):
        raise InputError(f"{spec}: no such dataset folder (records.jsonl + images) or WebDataset shard")
    return expand_shards(spec)


def scan_records(
    spec: str, keep: Callable[[Record], bool], limit: int | None = None
) -> tuple[list[Record], list[str], list[tuple[int, int]]]:
    """The first ``limit`` kept records of a folder or of shards, with their image paths (a folder) or
    their (shard, position) (shards; the image bytes are skipped, not held)."""
    if is_folder(spec):
        dataset = RecordDataset(spec)
        records = [r for r in dataset.records if keep(r)][:limit]
        return records, [str(dataset.image_path(r)) for r in records], []
    records: list[Record] = []
    locations: list[tuple[int, int]] = []
    for shard_index, shard in enumerate(shard_paths(spec)):
        for position, sample in enumerate(iter_webdataset(shard)):
            if limit is not None and len(records) >= limit:
                return records, [], locations
            if keep(sample.record):
                records.append(sample.record)
                locations.append((shard_index, position))
    return records, [], locations


def member_bytes(shards: list[Path], locations: Iterable[tuple[int, int]]) -> Iterator[tuple[tuple[int, int], bytes]]:
    """The image bytes at each (shard, position) of ``locations``, shard by shard in position order; a location
    the shard no longer holds is one clear error (the shard changed since it was scanned)."""
    wanted: dict[int, set[int]] = {}
    for shard, position in locations:
        wanted.setdefault(shard, set()).add(position)
    for shard in sorted(wanted):
        found = set()
        for position, sample in enumerate(iter_webdataset(shards[shard])):
            if position in wanted[shard]:
                found.add(position)
                yield (shard, position), sample.image_bytes
        if missing := sorted(wanted[shard] - found):
            raise InputError(f"{shards[shard]}: sample {missing[0]} is gone; did the shard change since it was read?")


def open_images(
    spec: str,
    processor: ImagePreprocessor,
    keep: Callable[[Record], bool] = lambda record: True,
    *,
    mode: DataMode = "auto",
    buffer: int = 10_000,
    limit: int | None = None,
) -> ImageRecords:
    """The records of ``spec`` that ``keep`` accepts (the first ``limit``), with their images.

    ``spec`` is a dataset folder (``records.jsonl`` + images) or WebDataset shards: a folder of
    ``*.tar``, a glob, or a brace pattern such as ``shards/train-{000000..000009}.tar``. ``auto`` preloads
    a set whose uint8 pixels fit in ``MEMORY_BUDGET`` and streams a larger one.
    """
    records, paths, locations = scan_records(spec, keep, limit)
    if not records:
        raise InputError(f"{spec}: no records to train on (none has what this recipe needs)")
    if mode == "auto":
        height, width = processor.size
        mode = "memory" if len(records) * height * width * 3 <= MEMORY_BUDGET else "stream"
    shards = shard_paths(spec) if locations else []
    if mode == "memory":
        named = (
            ((f"{shards[shard]}:{position}", data) for (shard, position), data in member_bytes(shards, locations))
            if locations
            else ((path, path) for path in paths)
        )
        return PreloadedImages(records, decode_all(processor, named, len(records), desc=Path(spec).name))
    if not locations:
        return FolderStream(records, paths, processor)
    return ShardStream(records, locations, shards, processor, buffer)
