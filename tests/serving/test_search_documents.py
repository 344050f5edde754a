"""``/v1/search`` over an index of PDF pages: text queries rank by words and looks together, and each hit names
its page and the line that matched, with that line's box and a thumbnail of the page."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
import torch
from PIL import Image
from serving_live import ENCODER_ID, data_url, serve, shapes_png, tiny_encoder

from doc_scans import write_text_pdf
from vlmkit.search.indexer import index_folder
from vlmkit.search.store import SearchStore
from vlmkit.serving import ServedModels, create_app

pytest.importorskip("pypdfium2")


def test_text_search_over_pages_carries_page_line_and_box(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "docs"
    folder.mkdir()
    write_text_pdf(folder / "memo.pdf", ["Staff meeting on Friday", "Bring the invoice 4471"])
    write_text_pdf(folder / "report.pdf", ["Quarterly report 2026", "Revenue grew by 12 percent"], pages=2)
    (folder / "shape.png").write_bytes(shapes_png(0))
    encoder = tiny_encoder()
    report = index_folder(folder, tmp_path / "index", encoder, model_id=ENCODER_ID, workers=0, progress=False)
    assert (report.added, report.items) == (3, 4)
    store = SearchStore.open(tmp_path / "index", ENCODER_ID)
    app = create_app(ServedModels(encoder=encoder, encoder_id=ENCODER_ID, index=store, images_root=folder))
    with serve(app) as url:
        hits = httpx.post(url + "/v1/search", json={"text": "invoice 4471", "k": 4}).json()["data"]
        by_image = httpx.post(url + "/v1/search", json={"image": data_url(shapes_png(0)), "k": 4}).json()["data"]
    first = hits[0]
    assert (first["path"], first["page"], first["line"]) == ("memo.pdf", 1, "Bring the invoice 4471")
    x0, y0, x1, y1 = first["box"]
    assert 0 < x0 < x1 < 800 and 0 < y0 < y1 < 600  # page pixels (4 x 3 in at 200 dpi)
    page = Image.open(io.BytesIO(base64.b64decode(first["thumbnail"].split(",", 1)[1])))
    assert page.size == (160, 120)  # the page itself, rendered and fitted
    assert sorted((hit["path"], hit["page"]) for hit in hits[1:]) == [
        ("report.pdf", 1),
        ("report.pdf", 2),
        ("shape.png", None),
    ]
    assert all(hit["line"] is None and hit["box"] is None for hit in hits[1:])  # no word of theirs matched
    shape = next(hit for hit in by_image if hit["path"] == "shape.png")
    assert shape["score"] == pytest.approx(1.0, abs=1e-4) and shape["page"] is None  # images search as before
