"""Clients that are slow or leave: a body that does not arrive in time (408), bodies that together
exceed the buffer budget (503), headers that never finish (closed), the connection limit, and a
non-streaming chat whose client leaves (its generation stops). Also the ``vlmkit serve`` options."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
import torch
from serving_live import CHAT_ID, ENCODER_ID, TEST_LIMITS, generated_tokens, serve, slow_down, tiny_chat_model
from serving_live import tiny_encoder as make_encoder
from test_errors import assert_openai_error, chat

from vlmkit.cli import build_parser
from vlmkit.cli.serve import limits_from, uvicorn_options
from vlmkit.errors import ConfigError
from vlmkit.serving import ServedModels, ServerLimits, create_app

EMBED = "/v1/embeddings"


def encoder_app(**limits):
    torch.manual_seed(0)
    return create_app(ServedModels(encoder=make_encoder(), encoder_id=ENCODER_ID), ServerLimits(**limits))


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def start_post(url: str, path: str, length: int, sent: bytes) -> socket.socket:
    """A POST declaring ``length`` body bytes of which only ``sent`` is sent (so far)."""
    sock = connect(url)
    head = f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    sock.sendall(head.encode() + sent)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_all_response(sock: socket.socket) -> bytes:
    """One response on a kept-alive connection: headers, then Content-Length bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closes():
    with serve(encoder_app(body_timeout_s=0.5)) as url:
        sock = start_post(url, EMBED, 100, b'{"model": ')
        started = time.monotonic()
        answer = read_all(sock)  # returns because the server closes the connection
        sock.close()
        assert 0.4 < time.monotonic() - started < 5
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == "body_timeout"
        assert "within 0.5 s" in error["message"]
        assert httpx.get(url + "/healthz").status_code == 200


def test_bodies_in_flight_share_one_buffer_budget():
    limits = {"max_body_bytes": 1000, "max_buffered_bytes": 1000, "body_timeout_s": 10}
    with serve(encoder_app(**limits)) as url:
        first = {"model": ENCODER_ID, "input": "a" * 700}
        raw = json.dumps(first).encode()
        slow = start_post(url, EMBED, len(raw), raw[:-10])  # 700-odd bytes held, the rest still to come
        time.sleep(0.3)
        second = {"model": ENCODER_ID, "input": "b" * 400}
        busy = httpx.post(url + EMBED, json=second)
        error = assert_openai_error(busy, 503, "too many request bodies")
        assert error["code"] == "server_busy" and busy.headers["retry-after"] == "1"
        slow.sendall(raw[-10:])  # the first request completes and releases its share
        assert read_all_response(slow).startswith(b"HTTP/1.1 200")
        slow.close()
        assert httpx.post(url + EMBED, json=second).status_code == 200
    with pytest.raises(ConfigError, match="at least max_body_bytes"):
        ServerLimits(max_body_bytes=1000, max_buffered_bytes=999)


def serve_args(*extra: str):
    return build_parser().parse_args(["serve", "--model", "unused", *extra])


def test_serve_options_and_their_defaults():
    args = serve_args()
    limits = limits_from(args)
    assert (limits.max_text_chars, limits.max_images, limits.max_request_pixels) == (1_000_000, 32, 64_000_000)
    assert limits.body_timeout_s == 30 and limits.max_buffered_bytes == 128 * 1024 * 1024
    options = uvicorn_options(args)
    assert options["limit_concurrency"] == 128 and options["timeout_keep_alive"] == 5
    assert options["http"].header_timeout_s == 10
    assert args.absolute_paths is False
    changed = serve_args("--max-text-chars", "50", "--max-images", "3", "--max-request-pixels", "99",
                         "--body-timeout-s", "2", "--max-buffered-mb", "64", "--limit-concurrency", "7",
                         "--timeout-keep-alive", "2", "--header-timeout-s", "1.5", "--absolute-paths")  # fmt: skip
    limits, options = limits_from(changed), uvicorn_options(changed)
    assert (limits.max_text_chars, limits.max_images, limits.max_request_pixels) == (50, 3, 99)
    assert limits.body_timeout_s == 2 and limits.max_buffered_bytes == 64 * 1024 * 1024
    assert (options["limit_concurrency"], options["timeout_keep_alive"]) == (7, 2)
    assert options["http"].header_timeout_s == 1.5 and changed.absolute_paths
    with pytest.raises(ConfigError, match="limit-concurrency"):
        uvicorn_options(serve_args("--limit-concurrency", "0"))


def test_serve_help_documents_the_options(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--max-text-chars", "--max-images", "--max-request-pixels", "--body-timeout-s",
                   "--header-timeout-s", "--max-buffered-mb", "--limit-concurrency", "--timeout-keep-alive",
                   "--absolute-paths"):  # fmt: skip
        assert option in text
    assert "default 128" in text and "408" in text


def test_headers_that_never_finish_close_the_connection_and_the_limit_holds():
    args = serve_args("--header-timeout-s", "0.5", "--limit-concurrency", "3")
    with serve(encoder_app(), **uvicorn_options(args)) as url:
        trickle = connect(url)
        trickle.sendall(b"GET /healthz HTTP/1.1\r\nHost: te")  # and nothing more
        silent = connect(url)  # sends nothing at all
        started = time.monotonic()
        assert read_all(trickle) == b"" and read_all(silent) == b""  # closed by the server, unanswered
        assert time.monotonic() - started < 5
        trickle.close()
        silent.close()
        with httpx.Client() as client:  # a prompt client on a kept-alive connection is unaffected
            assert client.get(url + "/healthz").status_code == 200
            time.sleep(0.2)
            assert client.get(url + "/healthz").status_code == 200
        held = [connect(url) for _ in range(3)]
        time.sleep(0.1)
        assert httpx.get(url + "/healthz").status_code == 503  # past --limit-concurrency
        for sock in held:
            sock.close()
        time.sleep(0.1)
        assert httpx.get(url + "/healthz").status_code == 200


def test_a_client_leaving_a_plain_chat_stops_its_generation():
    """Not streamed: the server notices the disconnect while generating and stops (status 499 is logged)."""
    torch.manual_seed(0)
    model = tiny_chat_model()
    slow_down(model.decoder, 0.04)  # 60 tokens take 2.4 s; the deadline alone would stop it at ~37
    limits = ServerLimits(**{**TEST_LIMITS, "max_tokens_cap": 60, "timeout_s": 1.5})
    app = create_app(ServedModels(chat=model, chat_id=CHAT_ID), limits)
    with serve(app) as url:
        body = chat("describe the image.", max_tokens=60, stop=["\u2603"])
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/chat/completions", json=body, timeout=httpx.Timeout(30, read=0.4))
        after = httpx.post(url + "/v1/chat/completions", json=chat("hi", max_tokens=1), timeout=30)
        assert after.status_code == 200
        assert generated_tokens(url) < 30, "the abandoned request kept generating"
        assert app.state.vlmkit.metrics.requests("/v1/chat/completions", 499) == 1
