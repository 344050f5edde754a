"""OCR in the indexer: the engine is the one asked for, and a scan whose bytes did not change (a touch, a copy
that lost its mtime) is not read again; its stored text stays. OCR is a stand-in that counts its calls."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time

import pytest
from PIL import Image

import vlmkit.search.reader as reader
from testkit import tiny_model
from vlmkit.checkpoints import save_pretrained
from vlmkit.documents.types import Line, Page, Word
from vlmkit.errors import InputError
from vlmkit.search.indexer import index_folder
from vlmkit.search.reader import ReadOptions
from vlmkit.search.store import DATABASE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_model_ocr")
    save_pretrained(tiny_model(), directory)
    return directory


@pytest.fixture
def calls(monkeypatch):
    """Each OCR call's (image size, engine); every scan reads as one line naming its engine."""
    seen: list[tuple[tuple[int, int], str]] = []

    def fake_read(image, engine="ppocr"):
        seen.append((image.size, engine))
        line = Line((Word(f"read by {engine}", (0.0, 0.0, 10.0, 5.0)),))
        return Page(image.width, image.height, (line,), engine)

    monkeypatch.setattr(reader, "read_image", fake_read)
    return seen


def texts(index_dir) -> list[tuple[str, str]]:
    with sqlite3.connect(index_dir / DATABASE) as db:
        rows = db.execute("SELECT i.path, t.text FROM texts t JOIN items i ON i.id = t.rowid ORDER BY i.path")
        return [(path.rsplit("/", 1)[-1], text) for path, text in rows]


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="the index checks the tesseract binary is there")
def test_index_uses_the_engine_asked_for(tmp_path, model_dir, calls):
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.new("RGB", (40, 30), "white").save(folder / "a.png")
    options = dict(workers=0, ocr=True, progress=False)
    index_folder(folder, tmp_path / "index", str(model_dir), engine="tesseract", **options)
    assert [engine for _, engine in calls] == ["tesseract"]
    assert texts(tmp_path / "index") == [("a.png", "read by tesseract")]


def test_a_touched_scan_is_not_read_again_and_keeps_its_text(tmp_path, model_dir, calls):
    pytest.importorskip("rapidocr_onnxruntime")  # --ocr with the default engine asks for it
    folder, index_dir = tmp_path / "scans", tmp_path / "index"
    folder.mkdir()
    Image.new("RGB", (40, 30), "white").save(folder / "a.png")
    Image.new("RGB", (50, 30), "gray").save(folder / "b.png")
    options = dict(workers=0, ocr=True, progress=False)
    first = index_folder(folder, index_dir, str(model_dir), **options)
    assert (first.added, len(calls)) == (2, 2)

    later = time.time() + 5
    os.utime(folder / "a.png", (later, later))  # touched: same bytes, new mtime
    second = index_folder(folder, index_dir, str(model_dir), **options)
    assert (second.updated, second.reused, second.unchanged, second.items) == (1, 1, 1, 0)
    assert len(calls) == 2  # not OCR'd (nor decoded, nor embedded) again
    assert texts(index_dir) == [("a.png", "read by ppocr"), ("b.png", "read by ppocr")]
    third = index_folder(folder, index_dir, str(model_dir), **options)
    assert third.unchanged == 2  # the new mtime was stored: not even hashed now

    Image.new("RGB", (60, 30), "black").save(folder / "a.png")  # new content under the same name
    os.utime(folder / "a.png", (later + 5, later + 5))
    fourth = index_folder(folder, index_dir, str(model_dir), **options)
    assert (fourth.updated, fourth.reused) == (1, 0)
    assert calls[-1] == ((60, 30), "ppocr")


def test_unknown_engine_is_refused():
    with pytest.raises(InputError, match="unknown OCR engine 'easyocr'"):
        ReadOptions(engine="easyocr")
