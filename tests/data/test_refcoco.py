"""RefCOCO-style refs + COCO instances -> records whose objects carry their expressions, and `vlmkit data coco`."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from vlmkit.cli import main
from vlmkit.data.grounding import grounding_turns
from vlmkit.data.records import RecordDataset
from vlmkit.data.refcoco import read_refcoco
from vlmkit.errors import InputError
from vlmkit.processing.locations import parse_objects


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def _instances(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "instances.json",
        {
            "images": [
                {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
                {"id": 2, "file_name": "b.jpg", "width": 80, "height": 80},
                {"id": 3, "file_name": "c.jpg", "width": 80, "height": 80},
            ],
            "annotations": [
                {"id": 10, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 0},
                {"id": 11, "image_id": 1, "category_id": 2, "bbox": [50, 10, 20, 30], "iscrowd": 0},
                {"id": 20, "image_id": 2, "category_id": 1, "bbox": [10, 10, 10, 10], "iscrowd": 0},
                {"id": 30, "image_id": 3, "category_id": 2, "bbox": [1, 1, 5, 5], "iscrowd": 0},
            ],
            "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
        },
    )


def _ref(ref_id: int, image_id: int, ann_id: int, split: str, *sentences: str) -> dict:
    """A ref as the refer release stores it (its per-ref file_name included, which readers ignore)."""
    return {
        "ref_id": ref_id,
        "ann_id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "split": split,
        "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
        "sent_ids": list(range(len(sentences))),
        "sentences": [
            {"sent": s, "raw": s.upper(), "sent_id": i, "tokens": s.split()} for i, s in enumerate(sentences)
        ],
    }


REFS = [
    _ref(0, 1, 11, "val", "dog on the right", "brown dog"),
    _ref(1, 2, 20, "train", "the man"),
    _ref(2, 1, 10, "val", "left person"),
]


def test_refs_attach_expressions_to_their_objects_in_the_split(tmp_path):
    refs = _write(tmp_path / "refs.json", REFS)
    records, problems = read_refcoco(refs, _instances(tmp_path), split="val", image_dir="images")
    assert problems == []
    assert [r.image for r in records] == ["images/a.jpg"]  # image 2 has only a train ref, image 3 none
    by_label = {o.label: o for o in records[0].objects}
    assert by_label["dog"].extra["expression"] == ["dog on the right", "brown dog"]
    assert by_label["dog"].extra["ref_id"] == 0 and by_label["dog"].box == [50, 10, 70, 40]
    assert by_label["person"].extra["expression"] == ["left person"]
    everything, _ = read_refcoco(refs, _instances(tmp_path))
    assert sorted(r.meta["coco_id"] for r in everything) == [1, 2]


def test_referring_turns_come_out_of_the_records(tmp_path):
    refs = _write(tmp_path / "refs.json", REFS)
    record = read_refcoco(refs, _instances(tmp_path), split="val").records[0]
    turns = grounding_turns(record, random.Random(0), 20, kinds=("refer",))
    asked = {prompt for prompt, _ in turns}
    assert asked <= {"detect dog on the right", "detect brown dog", "detect left person"} and len(asked) > 1
    for prompt, answer in turns:
        (parsed,) = parse_objects(answer, 100, 50).objects
        expected = [50, 10, 70, 40] if "dog" in prompt else [0, 0, 50, 50]
        assert parsed.label == prompt.removeprefix("detect ")
        assert [round(v) for v in parsed.box] == expected


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        (_ref(5, 9, 10, "val", "x"), "image_id"),
        (_ref(5, 1, 20, "val", "x"), "ann_id"),  # an annotation of another image
        ({**_ref(5, 1, 10, "val"), "sentences": []}, "sentences"),
    ],
)
def test_a_bad_ref_is_named(tmp_path, ref, field):
    refs = _write(tmp_path / "refs.json", [ref])
    with pytest.raises(InputError, match=rf"refs\[0\].*{field}"):
        read_refcoco(refs, _instances(tmp_path))
    records, problems = read_refcoco(refs, _instances(tmp_path), on_error="skip")
    assert records == [] and [p.field for p in problems] == [field]


def test_a_pickle_or_an_unknown_split_is_one_line(tmp_path):
    pickled = tmp_path / "refs(unc).p"
    pickled.write_bytes(b"\x80\x04\x95\x00\x00")
    with pytest.raises(InputError, match=r"not a valid JSON file \(a refs\(\*\)\.p pickle\? convert it"):
        read_refcoco(pickled, _instances(tmp_path))
    with pytest.raises(InputError, match="no ref has split 'testA'"):
        read_refcoco(_write(tmp_path / "refs.json", REFS), _instances(tmp_path), split="testA")


def test_data_coco_writes_a_dataset_folder_that_opens(tmp_path, capsys):
    images = tmp_path / "coco" / "val2014"
    images.mkdir(parents=True)
    for name, size in (("a.jpg", (100, 50)), ("b.jpg", (80, 80)), ("c.jpg", (80, 80))):
        Image.new("RGB", size).save(images / name)
    refs = _write(tmp_path / "refs.json", REFS)
    out = tmp_path / "coco" / "refcoco_val.jsonl"
    argv = ["data", "coco", "--instances", str(_instances(tmp_path)), "--refs", str(refs), "--split", "val"]
    assert main([*argv, "--images", str(images), "--out", str(out)]) == 0
    assert "wrote 1 records" in capsys.readouterr().out
    dataset = RecordDataset(out)
    assert dataset.image_path(0).resolve() == (images / "a.jpg").resolve()
    assert dataset.records[0].objects[1].extra["expression"] == ["dog on the right", "brown dog"]
    plain = tmp_path / "coco"
    assert (
        main(["data", "coco", "--instances", str(_instances(tmp_path)), "--images", str(images), "--out", str(plain)])
        == 0
    )
    assert len(RecordDataset(plain)) == 3
    assert (
        main(["data", "coco", "--captions", str(refs), "--split", "val", "--images", str(images), "--out", str(plain)])
        == 2
    )
    assert "--refs/--split" in capsys.readouterr().err
    outside = ["--images", str(images), "--out", str(tmp_path / "elsewhere")]
    assert main(["data", "coco", "--instances", str(_instances(tmp_path)), *outside]) == 2
    assert "must be in a folder that holds --images" in capsys.readouterr().err
