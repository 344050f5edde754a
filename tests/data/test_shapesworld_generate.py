"""Dataset folders: determinism across workers, regeneration, splits, MMBench export and the CLI."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from vlmkit.cli import main
from vlmkit.data.records import read_records
from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split, regenerate, write_mmbench_tsv
from vlmkit.errors import ConfigError, InputError

CONFIG = ShapesWorldConfig()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_split(
        tmp_path_factory.mktemp("sw") / "train", CONFIG, "train", 12, seed=3, workers=1, progress=False
    )


def test_records_follow_the_shared_schema(dataset: Path) -> None:
    parsed = read_records(dataset, check_images=True).records
    assert [r.to_dict() for r in parsed] == _records(dataset)
    assert all(r.labels and r.objects and r.qa and r.captions for r in parsed)


def test_same_bytes_for_any_worker_count(dataset: Path, tmp_path: Path) -> None:
    parallel = generate_split(tmp_path / "p", CONFIG, "train", 12, seed=3, workers=2, progress=False, chunk_size=5)
    assert _files(parallel) == _files(dataset)
    assert len(_files(dataset)) == 12 + 2


def test_regenerate_from_config_file(dataset: Path, tmp_path: Path) -> None:
    spec = json.loads((dataset / "shapesworld.json").read_text())
    assert spec["split"] == "train" and spec["n"] == 12 and spec["seed"] == 3
    assert ShapesWorldConfig.from_dict(spec["config"]) == CONFIG
    assert _files(regenerate(dataset / "shapesworld.json", tmp_path / "again", workers=1, progress=False)) == _files(
        dataset
    )


def test_seed_and_split_change_the_data(dataset: Path, tmp_path: Path) -> None:
    other_seed = generate_split(tmp_path / "s", CONFIG, "train", 3, seed=4, workers=1, progress=False)
    val = generate_split(tmp_path / "v", CONFIG, "val", 3, seed=3, workers=1, progress=False)
    first = _files(dataset)["images/000000.png"]
    assert _files(other_seed)["images/000000.png"] != first
    assert _files(val)["images/000000.png"] != first
    assert [r["meta"]["index"] for r in _records(dataset)] == list(range(12))


def test_refuses_to_overwrite_and_bad_config(dataset: Path) -> None:
    with pytest.raises(InputError, match="already holds"):
        generate_split(dataset, CONFIG, "train", 2, workers=1, progress=False)
    with pytest.raises(ConfigError, match="held_out"):
        ShapesWorldConfig(held_out=(("red", "octagon"),))
    with pytest.raises(ConfigError, match="unknown field"):
        ShapesWorldConfig.from_dict({"image_sise": 64})


def test_mmbench_tsv(dataset: Path, tmp_path: Path) -> None:
    records = _records(dataset)
    out = tmp_path / "mmbench.tsv"
    rows = write_mmbench_tsv(records, dataset, out)
    with out.open(newline="") as handle:
        table = list(csv.DictReader(handle, delimiter="\t"))
    assert list(table[0]) == ["index", "question", "A", "B", "C", "D", "E", "answer", "category", "image"]
    questions = [(r, qa) for r in records for qa in r["qa"]]
    assert rows == len(table) == len(questions)
    for row, (record, qa) in zip(table, questions, strict=True):
        assert row["question"] == qa["question"] and row["category"] == qa["type"]
        assert row[row["answer"]] == qa["answer"]
        assert [row[c] for c in "ABCDE" if row[c]] == qa["choices"]
        assert base64.b64decode(row["image"]) == (dataset / record["image"]).read_bytes()


def test_cli_shapes_all_show_and_mmbench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sw"
    assert (
        main(
            [
                "data",
                "shapes",
                "--out",
                str(out),
                "--n",
                "4",
                "--split",
                "all",
                "--n-val",
                "2",
                "--n-test",
                "1",
                "--n-compositional",
                "3",
                "--objects",
                "3",
                "--size",
                "48",
                "--workers",
                "1",
                "--held-out",
                "red circle,blue square",
            ]
        )
        == 0
    )
    counts = {split: len(_records(out / split)) for split in ("train", "val", "test", "compositional")}
    assert counts == {"train": 4, "val": 2, "test": 1, "compositional": 3}
    for record in _records(out / "compositional"):
        assert record["labels"]["color_shape"] in ("red circle", "blue square")
        assert len(record["objects"]) <= 3
    grid = tmp_path / "grid.png"
    assert main(["data", "show", str(out / "train"), "--n", "4", "--out", str(grid)]) == 0
    with Image.open(grid) as image:
        assert image.width > 2 * 48 * 2
    assert main(["data", "mmbench", str(out / "val"), "--out", str(tmp_path / "q.tsv")]) == 0
    assert main(["data", "shapes", "--out", str(tmp_path / "x"), "--n", "2", "--held-out", "red"]) == 2
    assert "--held-out" in capsys.readouterr().err
