"""The one data path: records and images from a folder or from shards, preloaded or streamed, in one order."""

from __future__ import annotations

import pytest
import torch

from vlmkit.cli import main
from vlmkit.data.records import RecordDataset
from vlmkit.data.sampling import epoch_order
from vlmkit.data.sources import FolderStream, PreloadedImages, ShardStream, open_images
from vlmkit.data.webdataset import write_webdataset
from vlmkit.errors import InputError
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.training.metrics import read_metrics
from vlmkit.training.recipes import ClipRecipe
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig

PROCESSOR = ImagePreprocessor.clip(32)


@pytest.fixture(scope="module")
def shards(shapes_dataset, tmp_path_factory):
    """The training folder packed into four shards of 16 samples."""
    out = tmp_path_factory.mktemp("shards")
    dataset = RecordDataset(shapes_dataset / "train")
    paths = write_webdataset(dataset.records, dataset.root, str(out / "train-%06d.tar"), 16)
    assert len(paths) == 4
    return out


def _losses(run_dir) -> list[tuple[int, float]]:
    return [(line["step"], line["loss"]) for line in read_metrics(run_dir / "metrics.jsonl") if "loss" in line]


def test_streamed_shards_train_exactly_as_the_folder(shapes_dataset, shards, tmp_path):
    """`vlmkit train clip --data 'shards/train-{000000..000003}.tar'` streams the shards and gives the folder
    run's losses, step for step, when its buffer holds the set (one window: the same epoch order)."""
    settings = dict(image_size=32, vocab_size=300, eval_data=str(shapes_dataset / "val"), eval_images=8)
    train = TrainConfig(steps=5, batch_size=16, lr=1e-3, warmup_steps=1, log_every=1)  # 4 batches an epoch
    run(ClipRecipe(data=str(shapes_dataset / "train"), train=train, **settings), tmp_path / "folder", device="cpu")
    args = ["train", "clip", "--data", str(shards / "train-{000000..000003}.tar"), "--data-mode", "stream"]
    args += ["--image-size", "32", "--vocab-size", "300", "--eval-data", str(shapes_dataset / "val")]
    args += ["--eval-images", "8", "--steps", "5", "--batch-size", "16", "--lr", "1e-3", "--warmup-steps", "1"]
    args += ["--log-every", "1", "--device", "cpu", "--out", str(tmp_path / "stream")]
    assert main(args) == 0
    assert [s for s, _ in _losses(tmp_path / "folder")] == [1, 2, 3, 4, 5]
    assert _losses(tmp_path / "stream") == _losses(tmp_path / "folder")


def test_every_source_gives_the_same_pixels(shapes_dataset, shards):
    folder = shapes_dataset / "train"
    preloaded = open_images(str(folder), PROCESSOR, mode="memory")
    streamed = open_images(str(folder), PROCESSOR, mode="stream")
    from_shards = open_images(str(shards), PROCESSOR, mode="stream", buffer=10)
    assert isinstance(preloaded, PreloadedImages) and isinstance(streamed, FolderStream)
    assert isinstance(from_shards, ShardStream)
    assert [r.to_dict() for r in from_shards.records] == [r.to_dict() for r in preloaded.records]
    order = from_shards.order(seed=3, epoch=1)
    items = order[20:30].tolist()
    assert torch.equal(from_shards.pixels(items), preloaded.pixels(items))
    assert torch.equal(streamed.pixels(items), preloaded.pixels(items))
    assert preloaded.pixels([0]).dtype == torch.uint8 and preloaded.pixels([0]).shape == (1, 3, 32, 32)


def test_a_small_buffer_shuffles_within_windows_and_resumes_anywhere(shards):
    stream = open_images(str(shards), PROCESSOR, mode="stream", buffer=10)
    orders = [stream.order(seed=0, epoch=e) for e in (0, 1)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(64))  # every item once per epoch
    assert not torch.equal(orders[0], orders[1])  # shard order and windows reshuffle each epoch
    # A fresh reader (a resumed run) gives the same late batch without reading the ones before it.
    late = orders[1][50:58].tolist()
    fresh = open_images(str(shards), PROCESSOR, mode="stream", buffer=10)
    assert torch.equal(fresh.order(seed=0, epoch=1), orders[1])
    assert torch.equal(fresh.pixels(late), stream.pixels(late))


def test_epoch_order_windows_permute_within_themselves():
    assert torch.equal(epoch_order(10, 1, 2), epoch_order(10, 1, 2, window=10))
    windowed = epoch_order(10, 1, 2, window=4)
    assert [sorted(windowed[i : i + 4].tolist()) for i in (0, 4, 8)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert not torch.equal(epoch_order(10, 1, 2), epoch_order(10, 1, 3))


def test_a_folder_without_records_or_shards_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="neither a dataset folder"):
        open_images(str(tmp_path), PROCESSOR)
    with pytest.raises(InputError, match=r"train-000000\.tar: shard not found"):
        open_images(str(tmp_path / "train-{000000..000001}.tar"), PROCESSOR)
