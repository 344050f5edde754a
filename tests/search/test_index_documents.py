"""Documents in the indexer: a page per item with its text, found by words; incremental like images; broken,
encrypted and over-long PDFs listed, never fatal; OCR for images only when asked, multi-page TIFFs always.

Born-digital PDFs (a text layer, no OCR) throughout, but for the one OCR test of three small pages. The model is
tiny and random: these check what is read and stored, and that words find it.
"""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

from doc_scans import clean_page, write_text_pdf
from testkit import tiny_model
from vlmkit.checkpoints import save_pretrained
from vlmkit.search.indexer import index_folder
from vlmkit.search.query import search_text
from vlmkit.search.store import DATABASE

pytest.importorskip("pypdfium2")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_model")
    save_pretrained(tiny_model(), directory)
    return directory


def write_pages_pdf(path, pages: list[list[str]]) -> None:
    """A born-digital PDF whose pages hold different lines (``write_text_pdf``'s pages, joined)."""
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    for number, lines in enumerate(pages):
        part = path.with_name(f".{path.stem}-{number}.pdf")
        write_text_pdf(part, lines)
        writer.append(str(part))
        part.unlink()
    with path.open("wb") as handle:
        writer.write(handle)


def stored_texts(index_dir) -> list[tuple[str, int | None, str]]:
    """(file name, page, text) of every item with a text, as the database holds them."""
    with sqlite3.connect(index_dir / DATABASE) as db:
        rows = db.execute("SELECT i.path, i.page, t.text FROM texts t JOIN items i ON i.id = t.rowid ORDER BY i.id")
        return [(path.rsplit("/", 1)[-1], page, text) for path, page, text in rows]


def text_count(index_dir) -> int:
    with sqlite3.connect(index_dir / DATABASE) as db:
        return db.execute("SELECT COUNT(*) FROM texts").fetchone()[0]


def found(index_dir, query: str, **options) -> list[tuple[str, int | None, str | None]]:
    return [(hit.path.rsplit("/", 1)[-1], hit.page, hit.line) for hit in search_text(index_dir, query, **options)]


@pytest.fixture
def library(tmp_path):
    """Two photos, a two-page report, a memo, and three PDFs that cannot be indexed."""
    from PIL import Image

    folder = tmp_path / "library"
    folder.mkdir()
    for name, colour in (("red.jpg", (200, 30, 30)), ("green.png", (30, 200, 30))):
        Image.new("RGB", (48, 32), colour).save(folder / name)
    write_pages_pdf(folder / "report.pdf", [["Quarterly report 2026", "Revenue grew by 12 percent"], ["Outlook"]])
    write_text_pdf(folder / "memo.pdf", ["Staff meeting on Friday", "Bring the invoice 4471"])
    (folder / "broken.pdf").write_bytes((folder / "memo.pdf").read_bytes()[:300])
    pypdf = pytest.importorskip("pypdf")
    locked = pypdf.PdfWriter(clone_from=str(folder / "memo.pdf"))
    locked.encrypt("secret")
    with (folder / "locked.pdf").open("wb") as handle:
        locked.write(handle)
    write_text_pdf(folder / "long.pdf", ["page"], pages=3)
    return folder


def test_pdf_pages_are_items_found_by_their_words(library, tmp_path, model_dir):
    index_dir = tmp_path / "index"
    report = index_folder(library, index_dir, str(model_dir), workers=1, max_pages=2, progress=False)
    assert (report.added, report.items) == (4, 5)  # two photos, report's two pages, memo's one
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in report.failed}
    assert sorted(reasons) == ["broken.pdf", "locked.pdf", "long.pdf"]
    assert "not a readable PDF" in reasons["broken.pdf"] and "encrypted" in reasons["locked.pdf"]
    assert "3 pages exceeds the limit of 2 (--max-pages)" in reasons["long.pdf"]
    assert stored_texts(index_dir) == [  # photos are not OCR'd unless asked
        ("memo.pdf", 1, "Staff meeting on Friday\nBring the invoice 4471"),
        ("report.pdf", 1, "Quarterly report 2026\nRevenue grew by 12 percent"),
        ("report.pdf", 2, "Outlook"),
    ]
    assert found(index_dir, "invoice 4471", k=1) == [("memo.pdf", 1, "Bring the invoice 4471")]
    assert found(index_dir, "OUTLOOK", k=1) == [("report.pdf", 2, "Outlook")]
    assert found(index_dir, "revenue", mode="text") == [("report.pdf", 1, "Revenue grew by 12 percent")]
    hits = search_text(index_dir, "revenue", k=10)
    assert len(hits) == 5 and {hit.path.rsplit("/", 1)[-1] for hit in hits if hit.page is None} == {
        "red.jpg",
        "green.png",
    }  # hybrid: pictures still come back through their embeddings


def test_documents_are_indexed_incrementally(library, tmp_path, model_dir):
    index_dir = tmp_path / "index"
    index_folder(library, index_dir, str(model_dir), workers=0, max_pages=2, progress=False)
    again = index_folder(library, index_dir, str(model_dir), workers=0, max_pages=2, progress=False)
    assert (again.added, again.updated, again.unchanged, again.items) == (0, 0, 4, 0)  # not even opened

    write_text_pdf(library / "report.pdf", ["Annual summary"])  # one page now, other words
    (library / "memo.pdf").unlink()
    later = time.time() + 5
    os.utime(library / "red.jpg", (later, later))  # touched: same bytes
    third = index_folder(library, index_dir, str(model_dir), workers=1, max_pages=2, progress=False)
    assert (third.added, third.updated, third.reused, third.removed, third.unchanged) == (0, 2, 1, 1, 1)
    assert stored_texts(index_dir) == [("report.pdf", 1, "Annual summary")]  # old pages and memo's text gone
    assert found(index_dir, "invoice", mode="text") == []
    assert found(index_dir, "annual summary", k=1) == [("report.pdf", 1, "Annual summary")]

    (library / "report.pdf").write_bytes(b"%PDF-1.4 truncated")  # an indexed document that broke
    fourth = index_folder(library, index_dir, str(model_dir), workers=0, max_pages=2, progress=False)
    assert fourth.removed == 1 and text_count(index_dir) == 0


def test_ocr_reads_images_when_asked_and_multipage_tiffs_always(tmp_path, model_dir):
    pytest.importorskip("rapidocr_onnxruntime")
    folder, index_dir = tmp_path / "scans", tmp_path / "index"
    folder.mkdir()
    clean_page("first page").save(folder / "pages.tiff", save_all=True, append_images=[clean_page("second page")])
    clean_page("meeting at noon").save(folder / "note.png")
    report = index_folder(folder, index_dir, str(model_dir), workers=1, ocr=True, progress=False)
    assert (report.added, report.items, report.failed) == (2, 3, [])
    assert stored_texts(index_dir) == [
        ("note.png", None, "meeting at noon"),
        ("pages.tiff", 1, "first page"),
        ("pages.tiff", 2, "second page"),
    ]
    assert found(index_dir, "second", mode="text") == [("pages.tiff", 2, "second page")]
    (hit,) = search_text(index_dir, "noon", k=1, mode="text")
    assert hit.page is None and hit.box is not None and hit.box[2] > hit.box[0]
