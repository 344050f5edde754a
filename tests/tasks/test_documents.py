"""The issue's figures on real and realistic scans, both engines: scikit-image's photographed book page, a
noisy rotated paragraph made here, and a born-digital PDF read exactly from its text layer."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from doc_scans import LINES, PARAGRAPH, scanned_page, write_text_pdf
from vlmkit.errors import InputError
from vlmkit.evaluation.documents import word_recall
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import with_page_text
from vlmkit.tasks.documents import read, read_image

# scikit-image's data.page(): a photographed textbook page under uneven light (the last, cut-off line left out)
BOOK_PAGE = (Path(__file__).parent / "book_page.txt").read_text(encoding="utf-8")

ENGINES = [
    "ppocr",
    pytest.param(
        "tesseract",
        marks=pytest.mark.skipif(shutil.which("tesseract") is None, reason="apt-get install tesseract-ocr"),
    ),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_photographed_book_page_is_read_with_word_recall_of_0_8(engine, tmp_path):
    from skimage import data

    path = tmp_path / "page.png"
    Image.fromarray(data.page()).save(path)
    document = read(path, engine=engine)
    assert word_recall(document.text, BOOK_PAGE) >= 0.8, document.text


@pytest.mark.parametrize("engine", ENGINES)
def test_without_enhancement_the_book_page_loses_lines(engine):
    """What the preprocessing is for: the dark right half of the page hides whole lines from both engines."""
    from skimage import data

    page = read_image(Image.fromarray(data.page()).convert("RGB"), engine=engine, enhance=False)
    assert word_recall(page.text, BOOK_PAGE) < 0.8


@pytest.mark.parametrize("engine", ENGINES)
def test_a_noisy_rotated_scan_is_read_with_word_recall_of_0_9_and_boxes_on_its_ink(engine):
    scan = scanned_page(angle=2.5)
    page = read_image(scan, engine=engine)
    assert word_recall(page.text, PARAGRAPH) >= 0.9, page.text
    grey = np.asarray(scan.convert("L"))
    inside = []
    for word in page.words:
        x0, y0, x1, y1 = (round(v) for v in word.box)
        assert 0 <= x0 < x1 <= scan.width and 0 <= y0 < y1 <= scan.height
        inside.append((grey[y0:y1, x0:x1] < 100).mean())
    assert np.median(inside) > 0.1  # word boxes sit on the ink of the page as given, not of the straightened one


def test_a_pdf_text_layer_is_exact_and_needs_no_engine(tmp_path):
    path = tmp_path / "report.pdf"
    write_text_pdf(path, pages=2)
    document = read(path, engine="no-such-engine")  # never built: both pages have text
    assert [page.source for page in document.pages] == ["text-layer", "text-layer"]
    assert document.text == "\n".join(LINES) + "\f" + "\n".join(LINES)


def test_ask_document_puts_the_page_text_before_the_question(tmp_path, monkeypatch):
    import vlmkit.tasks.documents as documents

    path = tmp_path / "report.pdf"
    write_text_pdf(path, pages=2)
    asked = []
    monkeypatch.setattr(documents, "ask", lambda model, image, prompt, config: asked.append((image, prompt)) or "ok")
    fitted = []  # (the cutting to the context is tested in tests/evaluation/test_docvqa.py)
    monkeypatch.setattr(
        documents, "page_text_prompt", lambda model, q, lines, tokens: fitted.append(tokens) or with_page_text(q, lines)
    )
    assert documents.ask_document(None, path, "How much did revenue grow?", page=2) == "ok"
    ((image, prompt),) = asked
    assert prompt == "Page text: " + " | ".join(LINES) + "\nQuestion: How much did revenue grow?"
    assert image.size[0] > 100 and fitted == [GenerationConfig().max_new_tokens]
    with pytest.raises(InputError, match="has no page 3"):
        documents.ask_document(None, path, "?", page=3)
