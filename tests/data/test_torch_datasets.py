"""PyTorch adapters: item contents, seeded caption choice, DataLoader workers, shard splitting."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from vlmkit.data import torch_datasets
from vlmkit.data.records import QA, Record, RecordDataset, write_records
from vlmkit.data.torch_datasets import (
    ImageBoxesDataset,
    ImageQADataset,
    ImageTextDataset,
    ImageTextView,
    WebDatasetIterable,
    format_question,
    image_to_tensor,
    load_image,
)
from vlmkit.data.webdataset import write_webdataset
from vlmkit.errors import ConfigError, InputError

CAPTIONS_PER_IMAGE = 6


def _dataset(root: Path, count: int = 8) -> RecordDataset:
    records = []
    for index in range(count):
        Image.new("RGB", (4, 3), (index * 30, 255 - index * 30, 7)).save(root / f"{index}.png")
        qa = [{"question": "colour?", "answer": f"c{index}"}]
        if index % 2:
            qa.append({"question": "shape?", "answer": "square", "choices": ["round", "square"]})
        records.append(
            Record.from_dict(
                {
                    "image": f"{index}.png",
                    "captions": [f"image {index} caption {c}" for c in range(CAPTIONS_PER_IMAGE)],
                    "qa": qa,
                    "objects": [] if index == 0 else [{"label": "sq", "box": [0, 0, index, 2]}],
                    "meta": {"index": index},
                }
            )
        )
    records.append(Record(image="0.png"))  # no captions, qa or objects: yields no item in any view
    write_records(root, records)
    return RecordDataset(root)


def _texts(items) -> list[str]:
    return [text for _, text in items]


def test_load_image_applies_exif_orientation_and_rgb(tmp_path: Path) -> None:
    image = Image.new("RGBA", (4, 2), (10, 20, 30, 128))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.convert("RGB").save(tmp_path / "rotated.jpg", exif=exif)
    image.save(tmp_path / "alpha.png")
    assert load_image(tmp_path / "rotated.jpg", "rotated.jpg").size == (2, 4)
    loaded = load_image((tmp_path / "alpha.png").read_bytes(), "alpha.png")
    assert loaded.mode == "RGB" and loaded.size == (4, 2)


def test_load_image_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match=r"bad.png: not a readable image"):
        load_image(tmp_path / "bad.png", str(tmp_path / "bad.png"))
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="PNG")
    with pytest.raises(InputError, match=r"shard.tar:0001: .*(corrupt|truncated)"):
        load_image(buffer.getvalue()[:60], "shard.tar:0001")
    with pytest.raises(InputError, match=r"gone.png: file not found"):
        load_image(tmp_path / "gone.png", "gone.png")


def test_image_text_items(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    first = ImageTextDataset(dataset, image_to_tensor, caption_choice="first")
    assert len(first) == 8  # the caption-less record is left out
    pixels, text = first[3]
    assert pixels.shape == (3, 3, 4) and pixels.dtype == torch.float32
    assert torch.allclose(pixels[:, 0, 0], torch.tensor([90, 165, 7]) / 255)
    assert text == "image 3 caption 0"

    def tokenize(texts: list[str]) -> torch.Tensor:
        return torch.tensor([[len(t), int(t.split()[-1])] for t in texts])

    _, tokens = ImageTextDataset(dataset, image_to_tensor, tokenize, "first")[2]
    assert tokens.tolist() == [17, 0]
    _, all_tokens = ImageTextDataset(dataset, image_to_tensor, tokenize, "all")[2]
    assert all_tokens[:, 1].tolist() == list(range(CAPTIONS_PER_IMAGE))
    assert ImageTextDataset(tmp_path, image_to_tensor, caption_choice="all")[1][1][5] == "image 1 caption 5"
    with pytest.raises(ConfigError, match="caption_choice"):
        ImageTextDataset(dataset, image_to_tensor, caption_choice="longest")


def test_random_caption_is_a_function_of_seed_epoch_and_index(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    a = ImageTextDataset(dataset, image_to_tensor, seed=1)
    b = ImageTextDataset(dataset, image_to_tensor, seed=1)
    epoch0 = _texts(a[i] for i in range(len(a)))
    assert epoch0 == _texts(b[i] for i in reversed(range(len(b))))[::-1]  # access order is irrelevant
    assert all(text.startswith(f"image {i} ") for i, text in enumerate(epoch0))
    a.set_epoch(1)
    epoch1 = _texts(a[i] for i in range(len(a)))
    assert epoch1 != epoch0
    a.set_epoch(0)
    assert _texts(a[i] for i in range(len(a))) == epoch0
    other_seed = ImageTextDataset(dataset, image_to_tensor, seed=2)
    assert _texts(other_seed[i] for i in range(len(other_seed))) != epoch0


def test_dataloader_workers_give_the_same_items(tmp_path: Path) -> None:
    dataset = ImageTextDataset(_dataset(tmp_path), image_to_tensor, seed=3)
    expected = {}
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        expected[epoch] = [(p.clone(), t) for p, t in DataLoader(dataset, batch_size=None, num_workers=0)]
    loader = DataLoader(dataset, batch_size=None, num_workers=2, persistent_workers=True)
    for epoch in (0, 1):
        dataset.set_epoch(epoch)  # must reach the already-running workers
        items = list(loader)
        assert [t for _, t in items] == [t for _, t in expected[epoch]]
        assert all(torch.equal(p, q) for (p, _), (q, _) in zip(items, expected[epoch], strict=True))
    assert [t for _, t in expected[0]] != [t for _, t in expected[1]]


def test_image_qa_items(tmp_path: Path) -> None:
    dataset = ImageQADataset(_dataset(tmp_path), image_to_tensor)
    assert len(dataset) == 12  # one QA pair on even images, two on odd
    items = [dataset[i] for i in range(len(dataset))]
    assert [answer for _, _, answer in items[:5]] == ["c0", "c1", "square", "c2", "c3"]
    assert items[2][1] == "shape?\nA. round\nB. square"
    assert items[0][1] == "colour?" == format_question(QA("colour?", "x"))
    custom = ImageQADataset(tmp_path, image_to_tensor, prompt=lambda qa: f"Q: {qa.question}")
    assert custom[0][1] == "Q: colour?"


def test_image_boxes_items(tmp_path: Path) -> None:
    source = _dataset(tmp_path)
    dataset = ImageBoxesDataset(source)
    assert len(dataset) == 8
    pixels, boxes, labels = dataset[0]
    assert pixels.shape == (3, 3, 4) and boxes.shape == (0, 4) and labels == []
    _, boxes, labels = dataset[3]
    assert boxes.tolist() == [[0.0, 0.0, 3.0, 2.0]] and labels == ["sq"]

    def flip(image: Image.Image, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = image.width
        return image_to_tensor(image).flip(-1), torch.stack(
            [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1
        )

    _, flipped, ids = ImageBoxesDataset(source, flip, {"sq": 4})[3]
    assert flipped.tolist() == [[1.0, 0.0, 4.0, 2.0]] and ids.tolist() == [4]
    with pytest.raises(InputError, match=r"1.png: object label 'sq' is not in label_ids"):
        ImageBoxesDataset(source, label_ids={"circle": 0})[1]


def test_corrupt_image_raises_naming_the_file(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    (tmp_path / "2.png").write_bytes(b"garbage")
    items = ImageTextDataset(dataset, image_to_tensor)
    with pytest.raises(InputError, match=r"2\.png: not a readable image"):
        items[2]


def _shards(tmp_path: Path, per_shard: int = 2) -> list[Path]:
    (tmp_path / "ds").mkdir()
    dataset = _dataset(tmp_path / "ds")
    return write_webdataset(dataset, dataset.root, str(tmp_path / "wds" / "s-%02d.tar"), per_shard)


def test_webdataset_iterable_workers_cover_the_same_items(tmp_path: Path) -> None:
    shards = _shards(tmp_path)
    assert len(shards) == 5
    stream = WebDatasetIterable(tmp_path / "wds", ImageTextView(image_to_tensor), seed=5)
    single = _texts(DataLoader(stream, batch_size=None, num_workers=0))
    assert len(single) == 8
    assert sorted(_texts(DataLoader(stream, batch_size=None, num_workers=2))) == sorted(single)
    assert _texts(stream) == single  # same order again for the same epoch
    stream.set_epoch(1)
    again = _texts(stream)
    assert again != single
    assert {t.split(" caption")[0] for t in again} == {t.split(" caption")[0] for t in single}


def test_webdataset_iterable_splits_shards_across_ranks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _shards(tmp_path)
    stream = WebDatasetIterable(tmp_path / "wds", ImageTextView(image_to_tensor, caption_choice="first"))
    per_rank = []
    for rank in range(3):
        monkeypatch.setattr(torch_datasets, "_rank_and_world", lambda rank=rank: (rank, 3))
        per_rank.append(_texts(stream))
    assert sorted(t for texts in per_rank for t in texts) == sorted(f"image {i} caption 0" for i in range(8))
    monkeypatch.setattr(torch_datasets, "_rank_and_world", lambda: (0, 6))
    with pytest.raises(InputError, match="5 shard"):
        list(stream)


def test_webdataset_iterable_corrupt_image(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "ds").mkdir()
    dataset = _dataset(tmp_path / "ds", count=3)
    (tmp_path / "ds" / "1.png").write_bytes(b"\x89PNG truncated")
    (shard,) = write_webdataset(dataset, dataset.root, str(tmp_path / "s-%d.tar"))
    view = ImageTextView(image_to_tensor, caption_choice="first")
    with pytest.raises(InputError, match=r"s-0.tar:000000001: .*not a readable image"):
        list(WebDatasetIterable(shard, view))
    with caplog.at_level(logging.WARNING):
        items = list(WebDatasetIterable(shard, view, on_error="skip"))
    assert _texts(items) == ["image 0 caption 0", "image 2 caption 0"]
    assert "skipped 1 bad item(s)" in caplog.text and "000000001: image: image bytes" in caplog.text
