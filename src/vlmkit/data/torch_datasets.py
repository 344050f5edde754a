"""PyTorch datasets over canonical records, for the training recipes.

The datasets know records and images, not models: pixels come from an ``image_transform`` and
tokens from a ``tokenize`` callable that the recipe passes in, so any model's preprocessing plugs in
and this module imports nothing from ``models``.

What one record turns into is a *view* (``ImageTextView``, ``ImageQAView``, ``ImageBoxesView``):
how many items it yields and how to build each. The same view serves both a map-style dataset over
a folder (``RecordItemsDataset`` and the three named ones) and the streaming
``WebDatasetIterable``, so the two paths cannot drift apart.

Randomness (which caption to show) comes from a generator seeded by (seed, epoch, item position)
and nothing else, so results do not depend on the number of DataLoader workers or on which worker
built an item. The epoch lives in shared memory: ``set_epoch`` reaches persistent workers too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from vlmkit.data.records import QA, OnError, ProblemLog, Record, RecordDataset
from vlmkit.data.webdataset import ShardSpec, expand_shards, iter_webdataset
from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.images import load_image as decode_image

logger = logging.getLogger(__name__)

T_co = TypeVar("T_co", covariant=True)
ImageLoader = Callable[[Path | bytes, str], Image.Image]


def load_image(source: Path | bytes, name: str) -> Image.Image:
    """Decode a file or bytes to an upright RGB image; ``name`` is what an error message shows.

    The decoding rules (EXIF orientation, RGB, size limit) are ``processing.images.load_image``'s;
    this wrapper only puts the shard member's name on errors about in-memory bytes.
    """
    try:
        return decode_image(source)
    except InputError as error:
        if isinstance(source, bytes):
            raise InputError(f"{name}: {error}") from None
        raise


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB image -> float32 tensor (3, H, W) in [0, 1]: the do-nothing transform."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


class RecordView(Protocol[T_co]):
    """How one record becomes training items."""

    def count(self, record: Record) -> int:
        """Items this record yields (0 leaves it out: e.g. no captions in an image-text set)."""

    def item(self, record: Record, image: Image.Image, sub_index: int, rng: random.Random) -> T_co:
        """Item ``sub_index`` of ``record`` (``image`` already decoded)."""


CaptionChoice = Literal["random", "first", "all"]


@dataclass
class ImageTextView:
    """(pixels, caption) per captioned image, for contrastive and captioning training.

    ``caption_choice``: ``"random"`` picks one caption per item per epoch (COCO has five; showing a
    different one each epoch is free augmentation), ``"first"`` is fixed (evaluation), ``"all"``
    returns every caption (retrieval evaluation; needs a custom ``collate_fn`` since counts vary).
    With ``tokenize`` the caption comes back as token ids, otherwise as text.
    """

    image_transform: Callable[[Image.Image], torch.Tensor]
    tokenize: Callable[[list[str]], torch.Tensor] | None = None
    caption_choice: CaptionChoice = "random"

    def __post_init__(self) -> None:
        if self.caption_choice not in ("random", "first", "all"):
            raise ConfigError(f"caption_choice: expected 'random', 'first' or 'all', got {self.caption_choice!r}")

    def count(self, record: Record) -> int:
        return 1 if record.captions else 0

    def item(self, record: Record, image: Image.Image, sub_index: int, rng: random.Random) -> tuple[torch.Tensor, Any]:
        captions = record.captions or []
        if self.caption_choice == "all":
            texts = list(captions)
        elif self.caption_choice == "first":
            texts = [captions[0]]
        else:
            texts = [captions[rng.randrange(len(captions))]]
        pixels = self.image_transform(image)
        if self.tokenize is None:
            return pixels, texts if self.caption_choice == "all" else texts[0]
        tokens = self.tokenize(texts)
        return pixels, tokens if self.caption_choice == "all" else tokens[0]


def format_question(qa: QA) -> str:
    """Default prompt: the question, then the choices one per line as "A. red" (MMBench style)."""
    if not qa.choices:
        return qa.question
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "\n".join([qa.question, *(f"{letters[i]}. {choice}" for i, choice in enumerate(qa.choices))])


@dataclass
class ImageQAView:
    """(pixels, prompt text, answer text), one item per QA pair, for instruction tuning and VQA."""

    image_transform: Callable[[Image.Image], torch.Tensor]
    prompt: Callable[[QA], str] = format_question

    def count(self, record: Record) -> int:
        return len(record.qa or [])

    def item(
        self, record: Record, image: Image.Image, sub_index: int, rng: random.Random
    ) -> tuple[torch.Tensor, str, str]:
        qa = record.qa[sub_index]
        return self.image_transform(image), self.prompt(qa), qa.answer


@dataclass
class ImageBoxesView:
    """(pixels, boxes (N, 4) float32 [x0, y0, x1, y1], labels), for grounding and detection.

    Geometry transforms must move the boxes with the pixels, so ``transform`` takes and returns
    both; the default only converts the image and keeps pixel coordinates. Labels are the names,
    or an int64 tensor when ``label_ids`` maps names to class indices. Records with an empty
    ``objects`` list are kept (negative images); records without the key are left out.
    """

    transform: Callable[[Image.Image, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    label_ids: Mapping[str, int] | None = None

    def count(self, record: Record) -> int:
        return 0 if record.objects is None else 1

    def item(
        self, record: Record, image: Image.Image, sub_index: int, rng: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor, list[str] | torch.Tensor]:
        objects = record.objects or []
        boxes = torch.tensor([obj.box for obj in objects], dtype=torch.float32).reshape(-1, 4)
        names = [obj.label for obj in objects]
        if self.transform is None:
            pixels = image_to_tensor(image)
        else:
            pixels, boxes = self.transform(image, boxes)
        if self.label_ids is None:
            return pixels, boxes, names
        unknown = [name for name in names if name not in self.label_ids]
        if unknown:
            raise InputError(f"{record.image}: object label {unknown[0]!r} is not in label_ids")
        return pixels, boxes, torch.tensor([self.label_ids[name] for name in names], dtype=torch.int64)


class _SharedEpoch:
    """An epoch counter in shared memory, so DataLoader workers (persistent ones too) see set_epoch."""

    def __init__(self) -> None:
        self._value = multiprocessing.Value("q", 0, lock=False)

    def get(self) -> int:
        return int(self._value.value)

    def set(self, epoch: int) -> None:
        self._value.value = epoch


def _rng(*parts: int) -> random.Random:
    """A generator that depends only on ``parts``: same numbers in any process, any worker count."""
    return random.Random(":".join(str(part) for part in parts))


class RecordItemsDataset(Dataset[T_co]):
    """Map-style dataset: every item ``view`` makes from every record of a dataset folder.

    Item ``i`` is the same on every call for a given (seed, epoch), whatever the worker layout.
    """

    def __init__(
        self,
        source: RecordDataset | str | os.PathLike[str],
        view: RecordView[T_co],
        *,
        seed: int = 0,
        load_image: ImageLoader = load_image,
    ) -> None:
        self.records = source if isinstance(source, RecordDataset) else RecordDataset(source)
        self.view = view
        self.seed = seed
        self.load_image = load_image
        self._epoch = _SharedEpoch()
        self._index = [
            (position, sub) for position, record in enumerate(self.records) for sub in range(view.count(record))
        ]
        left_out = sum(1 for record in self.records if view.count(record) == 0)
        if left_out:
            logger.info("%s: %d record(s) give no %s items", self.records.root, left_out, type(view).__name__)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.set(epoch)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, index: int) -> T_co:
        position, sub = self._index[index]
        record = self.records[position]
        path = self.records.image_path(record)
        image = self.load_image(path, str(path))
        return self.view.item(record, image, sub, _rng(self.seed, self._epoch.get(), index))


class ImageTextDataset(RecordItemsDataset[tuple[torch.Tensor, Any]]):
    """(image tensor, caption tokens or text) per captioned record; see ``ImageTextView``."""

    def __init__(
        self,
        source: RecordDataset | str | os.PathLike[str],
        image_transform: Callable[[Image.Image], torch.Tensor],
        tokenize: Callable[[list[str]], torch.Tensor] | None = None,
        caption_choice: CaptionChoice = "random",
        *,
        seed: int = 0,
        load_image: ImageLoader = load_image,
    ) -> None:
        view = ImageTextView(image_transform, tokenize, caption_choice)
        super().__init__(source, view, seed=seed, load_image=load_image)


class ImageQADataset(RecordItemsDataset[tuple[torch.Tensor, str, str]]):
    """(image tensor, prompt, answer), one item per QA pair; see ``ImageQAView``."""

    def __init__(
        self,
        source: RecordDataset | str | os.PathLike[str],
        image_transform: Callable[[Image.Image], torch.Tensor],
        prompt: Callable[[QA], str] = format_question,
        *,
        seed: int = 0,
        load_image: ImageLoader = load_image,
    ) -> None:
        super().__init__(source, ImageQAView(image_transform, prompt), seed=seed, load_image=load_image)


class ImageBoxesDataset(RecordItemsDataset[tuple[torch.Tensor, torch.Tensor, Any]]):
    """(image tensor, boxes (N, 4), labels) per record with ``objects``; see ``ImageBoxesView``."""

    def __init__(
        self,
        source: RecordDataset | str | os.PathLike[str],
        transform: Callable[[Image.Image, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        label_ids: Mapping[str, int] | None = None,
        *,
        seed: int = 0,
        load_image: ImageLoader = load_image,
    ) -> None:
        super().__init__(source, ImageBoxesView(transform, label_ids), seed=seed, load_image=load_image)


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class WebDatasetIterable(IterableDataset[T_co]):
    """Stream ``view`` items from WebDataset shards, split across ranks and DataLoader workers.

    Each epoch the shard order is shuffled by (seed, epoch) — identically on every rank — then rank
    ``r`` of ``w`` takes every ``w``-th shard and its workers split those the same way. Shards are
    the unit of splitting, so there must be at least as many shards as ranks (a rank with nothing
    to read would stall the others in DDP); keep shards >= ranks x workers to keep workers busy.
    An item's randomness depends on (seed, epoch, shard, position in shard), so the set of items is
    the same for any number of workers; only their interleaving differs. ``on_error="skip"`` drops
    bad samples, undecodable images included, and logs a count per shard.
    """

    def __init__(
        self,
        shards: ShardSpec,
        view: RecordView[T_co],
        *,
        seed: int = 0,
        shuffle_shards: bool = True,
        on_error: OnError = "raise",
        load_image: ImageLoader = load_image,
    ) -> None:
        self.shards = expand_shards(shards)
        self.view = view
        self.seed = seed
        self.shuffle_shards = shuffle_shards
        self.on_error = on_error
        self.load_image = load_image
        self._epoch = _SharedEpoch()

    def set_epoch(self, epoch: int) -> None:
        self._epoch.set(epoch)

    def _my_shards(self, epoch: int) -> list[int]:
        rank, world = _rank_and_world()
        if len(self.shards) < world:
            raise InputError(f"{len(self.shards)} shard(s) cannot feed {world} ranks; write at least {world}")
        order = list(range(len(self.shards)))
        if self.shuffle_shards:
            _rng(self.seed, epoch).shuffle(order)
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker else (0, 1)
        return order[rank::world][worker_id::workers]

    def __iter__(self) -> Iterator[T_co]:
        epoch = self._epoch.get()
        for shard_index in self._my_shards(epoch):
            shard = self.shards[shard_index]
            bad_images = ProblemLog(shard, "skip")
            for position, sample in enumerate(iter_webdataset(shard, on_error=self.on_error)):
                count = self.view.count(sample.record)
                if count == 0:
                    continue
                name = f"{sample.shard}:{sample.key}"
                try:
                    image = self.load_image(sample.image_bytes, name)
                except InputError as error:
                    if self.on_error == "raise":
                        raise
                    bad_images.add(sample.key, "image", str(error).removeprefix(f"{name}: "))
                    continue
                for sub in range(count):
                    rng = _rng(self.seed, epoch, shard_index, position, sub)
                    yield self.view.item(sample.record, image, sub, rng)
            bad_images.finish()
