"""DocWorld folders: the same bytes for any worker count, safe re-runs, refusals, and splits that never meet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmkit.data.docworld import CONFIG_FILE, GENERATOR_VERSION, DocWorldConfig, generate_split
from vlmkit.data.generator_folder import generate_splits
from vlmkit.data.records import read_records
from vlmkit.errors import ConfigError, InputError

CONFIG = DocWorldConfig()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_split(
        tmp_path_factory.mktemp("dw") / "train", CONFIG, "train", 6, seed=3, workers=1, progress=False
    )


def test_folder_layout_and_records(dataset: Path) -> None:
    files = _files(dataset)
    assert sorted(files) == [CONFIG_FILE, *(f"images/{i:06d}.jpg" for i in range(6)), "records.jsonl"]
    records = read_records(dataset, check_images=True).records
    assert [r.image for r in records] == [f"images/{i:06d}.jpg" for i in range(6)]
    assert [r.meta["index"] for r in records] == list(range(6))
    assert all(r.qa and {"document", "fields", "tables"} <= set(r.extra) for r in records)
    spec = json.loads(files[CONFIG_FILE])
    assert (spec["n"], spec["seed"], spec["split"], spec["version"]) == (6, 3, "train", GENERATOR_VERSION)
    assert DocWorldConfig.from_dict(spec["config"]) == CONFIG


def test_same_bytes_for_any_worker_count(dataset: Path, tmp_path: Path) -> None:
    parallel = generate_split(tmp_path / "p", CONFIG, "train", 6, seed=3, workers=2, progress=False, chunk_size=2)
    assert _files(parallel) == _files(dataset)


def test_a_rerun_rewrites_the_same_bytes_and_finishes_a_stopped_run(dataset: Path, tmp_path: Path) -> None:
    before = _files(dataset)
    generate_split(dataset, CONFIG, "train", 6, seed=3, workers=1, progress=False)
    assert _files(dataset) == before
    stopped = tmp_path / "stopped"
    generate_split(stopped, CONFIG, "train", 6, seed=3, workers=1, progress=False)
    (stopped / "records.jsonl").unlink()
    (stopped / "images" / "000004.jpg").unlink()
    (stopped / "images" / ".000005.jpg.abcd1234.tmp").write_bytes(b"half")  # a killed write
    generate_split(stopped, CONFIG, "train", 6, seed=3, workers=1, progress=False)
    assert _files(stopped) == before


def test_refuses_other_datasets_and_bad_arguments(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="other settings"):
        generate_split(dataset, CONFIG, "train", 7, seed=3, workers=1, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "records.jsonl").write_text('{"image": "a.png"}\n')
    with pytest.raises(InputError, match="already holds a dataset"):
        generate_split(foreign, CONFIG, "train", 2, workers=1, progress=False)
    assert (foreign / "records.jsonl").read_text() == '{"image": "a.png"}\n'
    for kwargs, field in (({"n": 0}, "number of pages"), ({"split": "dev"}, "split"), ({"workers": 0}, "workers")):
        arguments = {"split": "train", "n": 2, "workers": 1, **kwargs}
        with pytest.raises(ConfigError, match=field):
            generate_split(tmp_path / "bad", CONFIG, progress=False, **arguments)
    assert not (tmp_path / "bad").exists()


def test_splits_never_share_a_page(tmp_path: Path) -> None:
    clean = DocWorldConfig(clean=True)
    folders = generate_splits(
        generate_split, tmp_path, clean, {"train": 4, "val": 3, "test": 3}, seed=0, workers=1, progress=False
    )
    assert sorted(folders) == ["test", "train", "val"]
    images = {}
    for split, folder in folders.items():
        records = read_records(folder, check_images=True).records
        assert {r.meta["split"] for r in records} == {split}
        assert all(r.image.endswith(".png") for r in records)
        for record in records:
            images.setdefault((folder / record.image).read_bytes(), []).append(split)
    assert len(images) == 10, "a page appears in two splits"
