"""Every refusal over raw HTTP: OpenAI's error shape, the documented status, a clear message, and the
server still serving afterwards. Also the limits that need time: queue full, timeout, a client that
leaves mid-stream, and a graceful shutdown."""

from __future__ import annotations

import base64
import json
import threading
import time

import httpx
import pytest
import torch
from serving_live import (  # noqa: F401 - server is a fixture
    API_KEY,
    CHAT_ID,
    ENCODER_ID,
    TEST_LIMITS,
    data_url,
    generated_tokens,
    png_bytes,
    serve,
    server,
    slow_down,
    tiny_chat_model,
    tiny_encoder,
)

from vlmkit.serving import ServedModels, ServerLimits, create_app
from vlmkit.serving.encoder import CallPayload


def chat(content, **fields) -> dict:
    return {"model": CHAT_ID, "messages": [{"role": "user", "content": content}], **fields}


def image_chat(url: str) -> dict:
    return chat([{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "what is it?"}])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
CASES = {
    # name: (path, json body or raw bytes, status, words in the message, param)
    "malformed json": (CHAT, b'{"model": "tiny-vlm", "messages": [', 400, "not valid JSON", None),
    "body not an object": (CHAT, b"[1, 2]", 400, "valid dictionary", None),
    "messages of the wrong type": (CHAT, {"model": CHAT_ID, "messages": "hello"}, 400, "valid list", "messages"),
    "max_tokens of the wrong type": (CHAT, chat("hi", max_tokens="ten"), 400, "integer", "max_tokens"),
    "unknown role": (
        CHAT,
        {"model": CHAT_ID, "messages": [{"role": "robot", "content": "x"}]},
        400,
        "",
        "messages[0].role",
    ),
    "unknown chat model": (CHAT, {**chat("hi"), "model": "gpt-9"}, 404, "'gpt-9' is not served", "model"),
    "unknown embedding model": (EMBED, {"model": "ada", "input": "x"}, 404, "'ada' is not served", "model"),
    "chat model asked for embeddings": (EMBED, {"model": CHAT_ID, "input": "x"}, 404, "not served", "model"),
    "too many tokens": (CHAT, chat("hi", max_tokens=17), 400, "exceeds this server's cap of 16", "max_tokens"),
    "n above one": (CHAT, chat("hi", n=2), 400, "n=1", "n"),
    "temperature too small to divide by": (CHAT, chat("hi", temperature=1e-9), 400, "at least 1e-06", "temperature"),
    "too many stop strings": (CHAT, chat("hi", stop=["a", "b", "c", "d", "e"]), 400, "at most 4", "stop"),
    "prompt longer than the context": (CHAT, chat("red circle " * 80), 400, "context holds 128", "messages"),
    "image placeholder in text": (CHAT, chat("<image> hi"), 400, "must not contain <image>", "messages[0].content"),
    "corrupt base64": (CHAT, image_chat("data:image/png;base64,iVBOR%%%w0K"), 400, "invalid base64", None),
    "not base64 at all": (CHAT, image_chat("data:image/png,rawbytes"), 400, "base64", None),
    "non-image bytes": (CHAT, image_chat(data_url(b"hello, I am not a picture")), 400, "not a readable image", None),
    "truncated image": (CHAT, image_chat(data_url(png_bytes(40, 40)[:60])), 400, "image", None),
    "image over the pixel limit": (CHAT, image_chat(data_url(png_bytes(300, 300))), 400, "exceeds the limit", None),
    "http image url": (CHAT, image_chat("http://169.254.169.254/latest"), 400, "not fetched", None),
    "ftp image url": (CHAT, image_chat("ftp://example.org/a.png"), 400, "unsupported image URL scheme", None),
    "image in an assistant turn": (
        CHAT,
        {
            "model": CHAT_ID,
            "messages": [{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        },
        400,
        "user messages only",
        "messages[0].content[0]",
    ),
    "token id embedding input": (EMBED, {"model": ENCODER_ID, "input": [1, 2, 3]}, 400, "token-id inputs", "input"),
    "empty embedding input": (EMBED, {"model": ENCODER_ID, "input": []}, 400, "must not be empty", "input"),
    "wrong dimensions": (
        EMBED,
        {"model": ENCODER_ID, "input": "x", "dimensions": 8},
        400,
        "dimensions must be 24",
        "dimensions",
    ),
    "image embedding of text": (
        EMBED,
        {"model": ENCODER_ID, "input": "a cat", "input_type": "image"},
        400,
        "scheme",
        "input",
    ),
    "classify without image": ("/v1/classify", {"labels": ["a"]}, 400, "Field required", "image"),
    "classify with repeated labels": ("/v1/classify", {"image": "x", "labels": ["a", "a"]}, 400, "distinct", "labels"),
    "search with neither text nor image": ("/v1/search", {"k": 3}, 400, "exactly one", "text"),
    "search with a huge k": ("/v1/search", {"text": "x", "k": 100000}, 400, "less than or equal", "k"),
}


def assert_openai_error(response: httpx.Response, status: int, words: str = "", param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["code"], str) and error["code"], error  # a client branches on it, never on the text
    assert words in error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize("case", list(CASES))
def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(server, case):  # noqa: F811
    path, body, status, words, param = CASES[case]
    send = {"content": body, "headers": {**server.headers(), "Content-Type": "application/json"}}
    if not isinstance(body, bytes):
        send = {"json": body, "headers": server.headers()}
    error = assert_openai_error(httpx.post(server.url + path, **send), status, words, param)
    assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
    ok = httpx.post(server.url + CHAT, json=chat("hi", max_tokens=2), headers=server.headers())
    assert ok.status_code == 200


def test_files_only_inside_the_allowed_folder(server, tmp_path):  # noqa: F811
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes(8, 8))
    link = server.folder / "link.png"
    link.symlink_to(outside)
    for url, words in [
        (outside.as_uri(), "outside the allowed folder"),
        (link.as_uri(), "outside the allowed folder"),  # a symlink is judged by where it leads
        (f"file://{server.folder}/../{tmp_path.name}/secret.png", "'..'"),
        ((server.folder / "missing.png").as_uri(), "does not exist"),
        ("file://otherhost/etc/passwd", "local path"),
    ]:
        response = httpx.post(server.url + CHAT, json=image_chat(url), headers=server.headers())
        assert_openai_error(response, 400, words)


def test_api_key_is_required_and_compared_exactly(server):  # noqa: F811
    body = chat("hi", max_tokens=2)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {API_KEY}"},
                    {"Authorization": f"Bearer {API_KEY}x"}):  # fmt: skip
        error = assert_openai_error(httpx.post(server.url + CHAT, json=body, headers=headers), 401, "API key")
        assert error["code"] == "invalid_api_key"
    assert httpx.get(server.url + "/v1/models").status_code == 401
    assert httpx.get(server.url + "/healthz").status_code == 200  # probes need no key
    assert httpx.post(server.url + CHAT, json=body, headers=server.headers()).status_code == 200


def test_bodies_over_the_limit_are_refused_early(server):  # noqa: F811
    big = json.dumps(chat("x" * (300 * 1024))).encode()
    declared = httpx.post(
        server.url + CHAT, content=big, headers={**server.headers(), "Content-Type": "application/json"}
    )
    assert_openai_error(declared, 413, "exceeds the limit of 262144 bytes")

    def chunks():  # no Content-Length: the limit is enforced while reading
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    chunked = httpx.post(
        server.url + CHAT, content=chunks(), headers={**server.headers(), "Content-Type": "application/json"}
    )
    assert "content-length" not in chunked.request.headers
    assert_openai_error(chunked, 413, "exceeds the limit")
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_unknown_routes_and_methods_answer_in_the_same_shape(server):  # noqa: F811
    assert_openai_error(httpx.get(server.url + "/v1/nothing", headers=server.headers()), 404)
    assert_openai_error(httpx.get(server.url + CHAT, headers=server.headers()), 405)
    assert_openai_error(httpx.get(server.url + "/v1/models/gpt-9", headers=server.headers()), 404, "gpt-9")


def test_a_full_queue_answers_503_with_retry_after(server):  # noqa: F811
    encoder = server.app.state.vlmkit.encoder
    release = threading.Event()
    started = threading.Event()

    def hold() -> None:
        started.set()
        release.wait(10)

    blocker = encoder.batcher.submit(CallPayload(hold))
    assert started.wait(5)
    fillers = [encoder.batcher.submit(CallPayload(lambda: None)) for _ in range(TEST_LIMITS["queue"])]
    try:
        response = httpx.post(server.url + EMBED, json={"model": ENCODER_ID, "input": "x"}, headers=server.headers())
        error = assert_openai_error(response, 503, "queue is full")
        assert error["code"] == "queue_full" and response.headers["retry-after"] == "1"
    finally:
        release.set()
    for job in [blocker, *fillers]:
        job.future.result(10)
    ok = httpx.post(server.url + EMBED, json={"model": ENCODER_ID, "input": "x"}, headers=server.headers())
    assert ok.status_code == 200


@pytest.fixture
def slow_app():
    """A chat-only server whose decoder takes 40 ms a step (60 tokens: 2.4 s), with a 1.5 s request timeout."""
    torch.manual_seed(0)
    model = tiny_chat_model()
    slow_down(model.decoder, 0.04)
    limits = ServerLimits(**{**TEST_LIMITS, "max_tokens_cap": 60, "timeout_s": 1.5})
    return create_app(ServedModels(chat=model, chat_id=CHAT_ID), limits)


def test_a_client_leaving_mid_stream_stops_its_generation(slow_app):
    body = chat("describe the image.", max_tokens=60, stop=["\u2603"], stream=True)
    with serve(slow_app) as url:
        with httpx.stream("POST", url + CHAT, json=body) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")  # the role chunk: generation is under way
            next(lines)
        # Closed after the first chunk. A later request waits for the worker to be free again.
        after = httpx.post(url + CHAT, json=chat("hi", max_tokens=1), timeout=30)
        assert after.status_code == 200
        assert generated_tokens(url) < 30, "the abandoned stream kept generating"


def test_requests_past_the_timeout_get_504(slow_app):
    with serve(slow_app) as url:
        response = httpx.post(url + CHAT, json=chat("describe the image.", max_tokens=60, stop=["\u2603"]), timeout=30)
        error = assert_openai_error(response, 504, "limit of 1.5 s")
        assert error["code"] == "timeout"
        assert httpx.post(url + CHAT, json=chat("hi", max_tokens=2), timeout=30).status_code == 200


def test_shutdown_lets_the_request_in_flight_finish(slow_app):
    results: list[httpx.Response] = []
    with serve(slow_app) as url:
        body = chat("describe the image.", max_tokens=20, stop=["\u2603"])
        worker = threading.Thread(target=lambda: results.append(httpx.post(url + CHAT, json=body, timeout=30)))
        worker.start()
        time.sleep(0.2)  # the request is generating when the server is told to stop
    worker.join(30)
    assert results and results[0].status_code == 200
    assert results[0].json()["choices"][0]["finish_reason"] in ("length", "stop")
