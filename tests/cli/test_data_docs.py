"""``vlmkit data docs``: writes the folders, says how fast, and turns bad arguments into one line and exit 2."""

from __future__ import annotations

import re
import sys

import pytest

from vlmkit.cli import main
from vlmkit.data.docworld import fonts
from vlmkit.data.records import read_records


def test_docs_writes_a_split(tmp_path, capsys) -> None:
    out = tmp_path / "docs"
    assert main(["data", "docs", "--out", str(out), "--n", "3", "--seed", "5", "--clean", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert re.fullmatch(rf"wrote 3 pages to {re.escape(str(out))} in \d+\.\d s \(\d+ pages/s\)\n", printed)
    records = read_records(out, check_images=True).records
    assert len(records) == 3 and all(r.image.endswith(".png") and r.meta["seed"] == 5 for r in records)
    assert all(r.meta["clean"] for r in records)


def test_docs_all_splits_with_kinds_and_width(tmp_path, capsys) -> None:
    out = tmp_path / "all"
    argv = ["data", "docs", "--out", str(out), "--n", "4", "--split", "all", "--n-val", "2", "--workers", "1"]
    assert main([*argv, "--kinds", "receipt,table", "--width", "600"]) == 0
    assert "wrote 7 pages" in capsys.readouterr().out  # test: max(1, 4 // 10)
    counts = {split: len(read_records(out / split, check_images=True).records) for split in ("train", "val", "test")}
    assert counts == {"train": 4, "val": 2, "test": 1}
    records = read_records(out / "train").records
    assert {r.meta["kind"] for r in records} <= {"receipt", "table"}
    assert all(r.image.endswith(".jpg") for r in records)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n", "0"], "number of pages: expected an integer >= 1"),
        (["--kinds", "receipt,poster"], "'kinds'"),
        (["--width", "50"], "'page_width'"),
        (["--workers", "0"], "workers"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys, extra, message) -> None:
    assert main(["data", "docs", "--out", str(tmp_path / "x"), *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("vlmkit data: error: ") and captured.err.count("\n") == 1
    assert message in captured.err
    assert not (tmp_path / "x").exists()


def test_missing_matplotlib_names_the_docs_extra(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    fonts.font_dir.cache_clear()
    try:
        assert main(["data", "docs", "--out", str(tmp_path / "x"), "--n", "2"]) == 2
    finally:
        fonts.font_dir.cache_clear()
    err = capsys.readouterr().err
    assert "pip install 'vlmkit[docs]'" in err and err.count("\n") == 1
