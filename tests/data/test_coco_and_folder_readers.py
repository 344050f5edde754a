"""COCO captions/instances and caption-folder readers -> canonical records."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from vlmkit.data.coco import read_coco_captions, read_coco_instances
from vlmkit.data.folder import read_caption_folder
from vlmkit.data.records import read_records, write_records
from vlmkit.errors import InputError

IMAGES = [
    {"id": 7, "file_name": "000007.jpg", "width": 64, "height": 48},
    {"id": 9, "file_name": "000009.jpg", "width": 32, "height": 32},
]


def _json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_captions_grouped_per_image_in_file_order(tmp_path: Path) -> None:
    annotations = [
        {"id": 1, "image_id": 9, "caption": "A dog. "},
        {"id": 2, "image_id": 7, "caption": "a cat"},
        {"id": 3, "image_id": 9, "caption": "a brown dog\n"},
    ]
    path = _json(tmp_path / "captions_val.json", {"images": IMAGES, "annotations": annotations})
    records, problems = read_coco_captions(path, image_dir="val2017")
    assert problems == []
    assert [r.to_dict() for r in records] == [
        {"image": "val2017/000007.jpg", "captions": ["a cat"], "meta": {"coco_id": 7, "width": 64, "height": 48}},
        {
            "image": "val2017/000009.jpg",
            "captions": ["A dog.", "a brown dog"],
            "meta": {"coco_id": 9, "width": 32, "height": 32},
        },
    ]
    # What the reader returns is valid canonical data: it survives write + validating read.
    write_records(tmp_path, records)
    assert read_records(tmp_path).records == records


def test_captions_unknown_image_id(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    annotations = [{"id": 1, "image_id": 7, "caption": "a cat"}, {"id": 2, "image_id": 999, "caption": "ghost"}]
    path = _json(tmp_path / "captions.json", {"images": IMAGES, "annotations": annotations})
    with pytest.raises(InputError, match=r"captions.json:annotations\[1\]: image_id: 999 is not the id"):
        read_coco_captions(path)
    with caplog.at_level(logging.WARNING):
        records, problems = read_coco_captions(path, on_error="skip")
    assert records[0].captions == ["a cat"] and records[1].captions == []
    assert [(p.location, p.field) for p in problems] == [("annotations[1]", "image_id")]
    assert "skipped 1 bad item(s)" in caplog.text


def test_instances_boxes_to_xyxy_with_names_and_masks(tmp_path: Path) -> None:
    polygon = [[10, 10, 20, 10, 20, 30]]
    rle = {"counts": "abc", "size": [48, 64]}
    data = {
        "images": IMAGES,
        "categories": [{"id": 1, "name": "cat"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {
                "id": 5,
                "image_id": 7,
                "category_id": 18,
                "bbox": [10, 5, 20.5, 30],
                "segmentation": polygon,
                "iscrowd": 0,
            },
            {"id": 6, "image_id": 7, "category_id": 1, "bbox": [0, 0, 4, 4], "segmentation": rle, "iscrowd": 1},
        ],
    }
    records, problems = read_coco_instances(_json(tmp_path / "instances.json", data))
    assert problems == []
    assert [o.to_dict() for o in records[0].objects] == [
        {"label": "dog", "box": [10, 5, 30.5, 35], "mask": polygon, "coco_id": 5, "iscrowd": 0},
        {"label": "cat", "box": [0, 0, 4, 4], "mask": rle, "coco_id": 6, "iscrowd": 1},
    ]
    assert records[1].objects == []  # an image without annotations is a negative, not dropped


@pytest.mark.parametrize(
    ("annotation", "field"),
    [
        ({"id": 1, "image_id": 12345, "category_id": 1, "bbox": [0, 0, 1, 1]}, "image_id"),
        ({"id": 1, "image_id": 7, "category_id": 99, "bbox": [0, 0, 1, 1]}, "category_id"),
        ({"id": 1, "image_id": 7, "category_id": 1, "bbox": [0, 0, -1, 1]}, "bbox"),
        ({"id": 1, "image_id": 7, "category_id": 1, "bbox": [0, 0, 1]}, "bbox"),
    ],
)
def test_instances_bad_annotation_names_field(tmp_path: Path, annotation: dict, field: str) -> None:
    data = {"images": IMAGES, "categories": [{"id": 1, "name": "cat"}], "annotations": [annotation]}
    with pytest.raises(InputError, match=rf"instances.json:annotations\[0\]: {field}: "):
        read_coco_instances(_json(tmp_path / "instances.json", data))


def test_coco_file_level_errors(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"images": [', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.json: not a valid JSON"):
        read_coco_captions(tmp_path / "broken.json")
    with pytest.raises(InputError, match="categories: expected a list"):
        read_coco_instances(_json(tmp_path / "caps.json", {"images": [], "annotations": []}))
    with pytest.raises(InputError, match="not found"):
        read_coco_captions(tmp_path / "missing.json")


def test_caption_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "sub/a.JPG", "c.png", ".hidden.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG")
    (tmp_path / "b.txt").write_text("first caption\n\n  second caption  \n", encoding="utf-8")
    (tmp_path / "sub" / "a.txt").write_text("only one", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        records, problems = read_caption_folder(tmp_path)
    assert [r.to_dict() for r in records] == [
        {"image": "b.png", "captions": ["first caption", "second caption"]},
        {"image": "c.png"},
        {"image": "sub/a.JPG", "captions": ["only one"]},
    ]
    assert problems == [] and "1 image(s) have no .txt caption file" in caplog.text


def test_caption_folder_empty_caption_file(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match=r":a.txt: captions: caption file is empty"):
        read_caption_folder(tmp_path)
    assert read_caption_folder(tmp_path, on_error="skip").records == []
