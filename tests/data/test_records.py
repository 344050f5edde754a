"""The canonical record and records.jsonl: schema, exact round trips, and error messages that point."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from vlmkit.data.records import (
    QA,
    ObjectAnnotation,
    Record,
    RecordDataset,
    RecordError,
    read_records,
    write_records,
)
from vlmkit.errors import InputError

FULL = {
    "image": "images/a.png",
    "captions": ["a red square", "a square"],
    "qa": [
        {"question": "what colour?", "answer": "red", "choices": ["red", "blue"], "type": "colour"},
        {"question": "how many?", "answer": "1", "difficulty": 3},
    ],
    "objects": [{"label": "square", "box": [1, 2, 5.5, 6], "mask": [[1, 2, 5, 2, 5, 6]], "score": 0.9}],
    "labels": {"shape": "square"},
    "meta": {"source": "test", "nested": {"x": [1, 2]}},
    "license": "cc-by",
}


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_record_round_trip_keeps_every_key_including_unknown_ones() -> None:
    record = Record.from_dict(FULL)
    assert record.qa[0] == QA("what colour?", "red", ["red", "blue"], "colour")
    assert record.qa[1].extra == {"difficulty": 3}
    assert record.objects[0].extra == {"score": 0.9}
    assert record.extra == {"license": "cc-by"}
    assert record.to_dict() == FULL
    assert Record.from_dict({"image": "x.jpg", "captions": []}).to_dict() == {"image": "x.jpg", "captions": []}
    assert Record(image="x.jpg").to_dict() == {"image": "x.jpg"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"captions": ["a"]}, "image"),
        ({"image": 3}, "image"),
        ({"image": "/abs/a.png"}, "image"),
        ({"image": "../a.png"}, "image"),
        ({"image": "a.png", "captions": "a cat"}, "captions"),
        ({"image": "a.png", "captions": ["ok", 7]}, "captions[1]"),
        ({"image": "a.png", "qa": [{"question": "q"}]}, "qa[0].answer"),
        ({"image": "a.png", "qa": [{"question": "q", "answer": "a", "choices": "ab"}]}, "qa[0].choices"),
        ({"image": "a.png", "objects": [{"label": "x", "box": [5, 0, 1, 3]}]}, "objects[0].box"),
        ({"image": "a.png", "objects": [{"label": "x", "box": [0, 0, 1]}]}, "objects[0].box"),
        ({"image": "a.png", "objects": [{"label": "x", "box": [0, True, 1, 2]}]}, "objects[0].box"),
        ({"image": "a.png", "objects": [{"box": [0, 0, 1, 1]}]}, "objects[0].label"),
        ({"image": "a.png", "labels": {"shape": 1}}, "labels.shape"),
        ({"image": "a.png", "meta": []}, "meta"),
    ],
)
def test_from_dict_names_the_bad_field(data: dict, field: str) -> None:
    with pytest.raises(RecordError) as caught:
        Record.from_dict(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    records = [Record.from_dict(FULL), Record(image="b.jpg", captions=["β caption"])]
    path = write_records(tmp_path, records)
    assert path == tmp_path / "records.jsonl"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    loaded, problems = read_records(tmp_path)
    assert loaded == records
    assert problems == []


def test_write_records_validates_dicts(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"records\[1\]: objects\[0\].box"):
        write_records(
            tmp_path, [{"image": "a.png"}, {"image": "b.png", "objects": [{"label": "x", "box": [2, 0, 1, 1]}]}]
        )
    assert not (tmp_path / "records.jsonl").exists()


BAD_LINES = [
    '{"image": "ok.png", "captions": ["fine"]}',
    '{"image": "broken.png", "captions": [',
    '{"captions": ["no image"]}',
    '{"image": "t.png", "captions": "not a list"}',
    '{"image": "b.png", "objects": [{"label": "x", "box": [9, 0, 1, 4]}]}',
    '["not", "an", "object"]',
    "",
    '{"image": "ok2.png"}',
]
EXPECTED_PROBLEMS = [(2, None), (3, "image"), (4, "captions"), (5, "objects[0].box"), (6, None)]


@pytest.mark.parametrize(("line", "field"), EXPECTED_PROBLEMS)
def test_raise_mode_names_file_line_and_field(tmp_path: Path, line: int, field: str | None) -> None:
    # A good line and a blank one first: the bad record sits on line 3 and must be reported there.
    path = _write_lines(tmp_path / "records.jsonl", [BAD_LINES[0], "", BAD_LINES[line - 1]])
    with pytest.raises(InputError) as caught:
        read_records(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ")
    if field:
        assert message.startswith(f"{path}:3: {field}: ")


def test_skip_mode_counts_reports_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_lines(tmp_path / "records.jsonl", BAD_LINES)
    with caplog.at_level(logging.WARNING):
        records, problems = read_records(tmp_path, on_error="skip")
    assert [r.image for r in records] == ["ok.png", "ok2.png"]
    assert [(int(p.location), p.field) for p in problems] == EXPECTED_PROBLEMS
    assert "invalid JSON" in problems[0].reason
    assert "skipped 5 bad item(s)" in caplog.text


def test_non_utf8_line_is_reported_by_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"image": "a.png"}\n{"image": "\xff.png"}\n')
    with pytest.raises(InputError, match=r"records.jsonl:2: not UTF-8"):
        read_records(path)


def test_check_images_reports_missing_file(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "here.png")
    _write_lines(tmp_path / "records.jsonl", ['{"image": "here.png"}', '{"image": "gone.png"}'])
    assert len(read_records(tmp_path).records) == 2  # existence is not checked by default
    with pytest.raises(InputError, match=r"records.jsonl:2: image: file not found: .*gone.png"):
        read_records(tmp_path, check_images=True)
    records, problems = read_records(tmp_path, check_images=True, on_error="skip")
    assert [r.image for r in records] == ["here.png"] and len(problems) == 1


def test_missing_records_file_and_bad_on_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="records file not found"):
        read_records(tmp_path)
    _write_lines(tmp_path / "records.jsonl", ['{"image": "a.png"}'])
    with pytest.raises(ValueError, match="on_error"):
        read_records(tmp_path, on_error="ignore")


def test_record_dataset_resolves_image_paths(tmp_path: Path) -> None:
    write_records(tmp_path / "ds", [Record(image="img/a.png"), Record(image="b.png", objects=[])])
    dataset = RecordDataset(tmp_path / "ds" / "records.jsonl")
    assert len(dataset) == 2
    assert dataset.root == tmp_path / "ds"
    assert dataset.image_path(0) == tmp_path / "ds" / "img" / "a.png"
    assert dataset.image_path(dataset[1]) == tmp_path / "ds" / "b.png"
    assert [r.image for r in dataset] == ["img/a.png", "b.png"]
    assert dataset[1].objects == [] and dataset.problems == []


def test_object_annotation_rejects_bad_mask() -> None:
    with pytest.raises(RecordError, match=r"objects\.mask"):
        ObjectAnnotation.from_dict({"label": "x", "box": [0, 0, 1, 1], "mask": "rle"})
    assert json.dumps(ObjectAnnotation("x", [0, 0, 1, 1]).to_dict()) == '{"label": "x", "box": [0, 0, 1, 1]}'
