"""``/v1/read``: a page image in, its lines and words with boxes out; off unless the server was started with
--read; a full queue is 503 before any image is decoded."""

from __future__ import annotations

import io

import httpx
from serving_live import data_url, serve

from doc_scans import clean_page
from vlmkit.serving import ServedModels, create_app


def _png(text: str) -> bytes:
    buffer = io.BytesIO()
    clean_page(text, size=28).save(buffer, format="PNG")
    return buffer.getvalue()


def test_read_returns_lines_and_word_boxes_in_the_sent_image_s_pixels():
    app = create_app(ServedModels(read_engine="ppocr"))
    with serve(app) as url:
        assert httpx.get(url + "/healthz").json()["read"] is True
        reply = httpx.post(url + "/v1/read", json={"image": data_url(_png("Total due 128.50"))}, timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "page" and body["engine"] == "ppocr" and body["text"] == "Total due 128.50"
    (line,) = body["lines"]
    assert [word["text"] for word in line["words"]] == ["Total", "due", "128.50"]
    assert all(0 <= w["box"][0] < w["box"][2] <= body["width"] for w in line["words"])


def test_read_is_off_without_read_and_a_full_queue_is_503(tmp_path):
    import pytest

    from testkit import tiny_model
    from vlmkit.serving.errors import ApiError
    from vlmkit.serving.reading import ReadService

    with serve(create_app(ServedModels(encoder=tiny_model()))) as url:
        reply = httpx.post(url + "/v1/read", json={"image": data_url(_png("a"))})
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "no_reader"
    service = ReadService("ppocr", queue=2)
    service.admit()
    service.admit()
    with pytest.raises(ApiError) as refused:
        service.admit()
    assert refused.value.status == 503
    service.leave()
    service.admit()  # a place came free
