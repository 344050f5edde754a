"""WebDataset shards: exact round trip from a canonical folder, foreign shards, damaged shards."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from vlmkit.data.records import Record, RecordDataset, write_records
from vlmkit.data.webdataset import expand_braces, expand_shards, iter_webdataset, write_webdataset
from vlmkit.errors import InputError


def _dataset(root: Path, count: int) -> RecordDataset:
    records = []
    for index in range(count):
        name = f"img/{index}.{'png' if index % 2 else 'jpg'}"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (6 + index, 5), (index * 20, 0, 0)).save(root / name)
        records.append(
            Record.from_dict(
                {
                    "image": name,
                    "captions": [f"caption {index}", "another"] if index != 1 else [],
                    "objects": [{"label": "thing", "box": [0, 0, 2, 3], "mask": [[0, 0, 1, 1, 2, 2]]}],
                    "meta": {"index": index},
                    "custom": {"kept": True},
                }
            )
        )
    write_records(root, records)
    return RecordDataset(root)


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_round_trip_preserves_records_and_image_bytes(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "ds", 5)
    shards = write_webdataset(dataset, dataset.root, str(tmp_path / "wds" / "part-%03d.tar"), max_per_shard=2)
    assert [p.name for p in shards] == ["part-000.tar", "part-001.tar", "part-002.tar"]
    assert not list((tmp_path / "wds").glob("*.tmp"))
    samples = list(iter_webdataset(tmp_path / "wds"))
    assert [s.record for s in samples] == dataset.records
    assert [s.image_bytes for s in samples] == [dataset.image_path(r).read_bytes() for r in dataset]
    assert [s.key for s in samples] == [f"{i:09d}" for i in range(5)]
    assert samples[2].shard == str(shards[1])


def test_writing_is_deterministic(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "ds", 3)
    first = write_webdataset(dataset, dataset.root, str(tmp_path / "a-%d.tar"))
    second = write_webdataset(dataset, dataset.root, str(tmp_path / "b-%d.tar"))
    assert first[0].read_bytes() == second[0].read_bytes()


def test_writer_reports_missing_image_and_bad_pattern(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gone.png: image named by record 0 not found"):
        write_webdataset([Record(image="gone.png")], tmp_path, str(tmp_path / "s-%d.tar"))
    assert not list(tmp_path.glob("*.tar")) and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(InputError, match="%-pattern"):
        write_webdataset([], tmp_path, str(tmp_path / "fixed.tar"))


def test_foreign_shard_with_txt_and_json(tmp_path: Path) -> None:
    png = _png()
    path = _tar(
        tmp_path / "laion.tar",
        [
            ("00/0001.png", png),
            ("00/0001.txt", b" a photo of a cat \n"),
            ("00/0001.json", json.dumps({"url": "http://x", "similarity": 0.3}).encode()),
            ("00/0002.webp", png),
        ],
    )
    first, second = iter_webdataset(path)
    assert first.record.to_dict() == {
        "image": "00/0001.png",
        "captions": ["a photo of a cat"],
        "url": "http://x",
        "similarity": 0.3,
    }
    assert first.image_bytes == png
    assert second.record.to_dict() == {"image": "00/0002.webp"}


BAD_MEMBERS = [
    ("a.png", _png()),
    ("b.json", b"{}"),
    ("c.png", _png()),
    ("c.json", b"{not json"),
    ("d.png", _png()),
    ("d.json", json.dumps({"objects": [{"label": "x", "box": [3, 0, 1, 1]}]}).encode()),
    ("e.png", _png()),
]


@pytest.mark.parametrize(
    ("key", "message"),
    [("b", r"no image member \(found: json\)"), ("c", "json: invalid JSON"), ("d", r"objects\[0\].box: ")],
)
def test_bad_sample_names_shard_key_and_field(tmp_path: Path, key: str, message: str) -> None:
    members = [member for member in BAD_MEMBERS if member[0].startswith(("a.", f"{key}."))]
    path = _tar(tmp_path / "bad.tar", members)
    with pytest.raises(InputError, match=rf"bad.tar:{key}: {message}"):
        list(iter_webdataset(path))


def test_skip_drops_only_bad_samples(tmp_path: Path) -> None:
    path = _tar(tmp_path / "bad.tar", BAD_MEMBERS)
    assert [s.key for s in iter_webdataset(path, on_error="skip")] == ["a", "e"]


@pytest.mark.parametrize("cut", ["in_data", "in_header", "at_header"])
def test_truncated_shard(tmp_path: Path, cut: str) -> None:
    dataset = _dataset(tmp_path / "ds", 4)
    (shard,) = write_webdataset(dataset, dataset.root, str(tmp_path / "s-%d.tar"))
    data = shard.read_bytes()
    with tarfile.open(shard) as tar:
        offsets = [m.offset for m in tar.getmembers()]
    # tarfile raises on a cut inside member data but stops quietly on one at or inside a header.
    end = offsets[6] + {"in_data": tarfile.BLOCKSIZE + 50, "in_header": 100, "at_header": 0}[cut]
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[:end])
    with pytest.raises(InputError, match=r"truncated.tar:.*truncated or corrupt tar"):
        list(iter_webdataset(truncated))
    samples = list(iter_webdataset(truncated, on_error="skip"))
    assert [s.record for s in samples] == dataset.records[: len(samples)]
    assert 1 <= len(samples) < 4


def test_expand_shards(tmp_path: Path) -> None:
    for name in ("b.tar", "a.tar", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert expand_shards(tmp_path) == [tmp_path / "a.tar", tmp_path / "b.tar"]
    assert expand_shards(str(tmp_path / "*.tar")) == [tmp_path / "a.tar", tmp_path / "b.tar"]
    assert expand_shards([tmp_path / "b.tar", tmp_path / "a.tar"]) == [tmp_path / "b.tar", tmp_path / "a.tar"]
    with pytest.raises(InputError, match="shard not found"):
        expand_shards(tmp_path / "nope.tar")
    with pytest.raises(InputError, match="no shards"):
        expand_shards(str(tmp_path / "*.tgz"))


def test_brace_patterns_name_shards_as_webdataset_does(tmp_path: Path) -> None:
    expected = ["s/train-000000.tar", "s/train-000001.tar", "s/train-000002.tar"]
    assert expand_braces("s/train-{000000..000002}.tar") == expected
    assert expand_braces("{a,b}-{8..10}") == ["a-8", "a-9", "a-10", "b-8", "b-9", "b-10"]
    for name in ("a.tar", "b.tar"):
        (tmp_path / name).write_bytes(b"")
    assert expand_shards(str(tmp_path / "{a,b}.tar")) == [tmp_path / "a.tar", tmp_path / "b.tar"]
    with pytest.raises(InputError, match="expected a range"):
        expand_braces("train-{9..1}.tar")
