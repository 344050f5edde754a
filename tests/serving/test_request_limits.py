"""What one request may cost, over HTTP: text measured before tokenizing (and tokenized off the event
loop), images counted and measured from their headers after admission and decoded reduced, classify
templates taken literally, inputs that used to give 500s answered 400, API keys beyond ASCII, and
search hits that do not reveal the server's paths."""

from __future__ import annotations

import io
import threading
import time

import httpx
import pytest
import torch
from PIL import Image
from serving_live import (
    CHAT_ID,
    ENCODER_ID,
    TEST_LIMITS,
    build_index,
    data_url,
    png_bytes,
    serve,
    tiny_chat_model,
    tiny_encoder,
)
from test_errors import assert_openai_error, chat, image_chat

from vlmkit.errors import ConfigError
from vlmkit.serving import ServedModels, ServerLimits, create_app
from vlmkit.serving.encoder import CallPayload
from vlmkit.serving.search import SearchService

CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
CLASSIFY = "/v1/classify"
LIMITS = {
    **TEST_LIMITS,
    "max_text_chars": 2000,
    "max_images": 2,
    "max_image_pixels": 4_100_000,  # a 2000 x 2000 image passes alone...
    "max_request_pixels": 5_000_000,  # ...but not two of them
}


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """Both models, no key, under ``LIMITS``; yields (base URL, app)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tight")
    models = ServedModels(encoder=tiny_encoder(), encoder_id=ENCODER_ID, chat=tiny_chat_model(), chat_id=CHAT_ID)
    app = create_app(models, ServerLimits(**LIMITS, allow_local_folder=folder))
    with serve(app) as url:
        yield url, app


def jpeg_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 160, 90)).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def images_chat(*images: bytes) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": data_url(image, "image/jpeg")}} for image in images]
    return chat([*parts, {"type": "text", "text": "what is it?"}], max_tokens=2)


# ------------------------------------------------------------------------------------------ text


def test_text_over_the_cap_is_refused_before_tokenizing(tight):
    url, app = tight
    service = app.state.vlmkit.chat
    encode = service.encode
    service.encode = lambda turns: pytest.fail("a prompt over the cap was tokenized")  # type: ignore[method-assign]
    try:
        error = assert_openai_error(httpx.post(url + CHAT, json=chat("x" * 2001)), 400, "at most 2000", "messages")
        assert error["code"] == "text_too_long"
        stops = chat("x" * 1990, stop=["y" * 11])  # stop strings count too
        assert_openai_error(httpx.post(url + CHAT, json=stops), 400, "characters of text")
    finally:
        service.encode = encode  # type: ignore[method-assign]
    inputs = {"model": ENCODER_ID, "input": ["a" * 1000, "b" * 1001]}
    assert_openai_error(httpx.post(url + EMBED, json=inputs), 400, "at most 2000", "input")
    assert httpx.post(url + EMBED, json={"model": ENCODER_ID, "input": "a" * 2000}).status_code == 200


@pytest.mark.parametrize("route", ["chat", "embeddings"])
def test_tokenizing_runs_off_the_event_loop(tight, route):
    """A slow tokenization (here 1.5 s) must not stop the server answering others meanwhile."""
    url, app = tight
    state = app.state.vlmkit
    service, name = (state.chat, "encode") if route == "chat" else (state.encoder, "count_tokens")
    original = getattr(service, name)

    def slow(*args):
        time.sleep(1.5)
        return original(*args)

    setattr(service, name, slow)
    body = chat("hi", max_tokens=2) if route == "chat" else {"model": ENCODER_ID, "input": "a red circle"}
    replies: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: replies.append(httpx.post(url + (CHAT if route == "chat" else EMBED),
                                                                       json=body, timeout=30)))  # fmt: skip
    try:
        worker.start()
        time.sleep(0.4)  # the request is tokenizing now
        started = time.monotonic()
        assert httpx.get(url + "/healthz", timeout=30).status_code == 200
        assert time.monotonic() - started < 0.9, "the event loop was blocked by tokenization"
        worker.join(30)
    finally:
        setattr(service, name, original)
    assert replies and replies[0].status_code == 200


# ---------------------------------------------------------------------------------------- images


def test_image_count_and_total_pixels_are_capped(tight):
    url, _ = tight
    small = png_bytes(8, 8)
    three = chat([{"type": "image_url", "image_url": {"url": data_url(small)}}] * 3, max_tokens=2)
    error = assert_openai_error(httpx.post(url + CHAT, json=three), 400, "at most 2 images", "messages")
    assert error["code"] == "too_many_images"
    embeds = {"model": ENCODER_ID, "input": [data_url(small)] * 3, "input_type": "image"}
    assert_openai_error(httpx.post(url + EMBED, json=embeds), 400, "at most 2 images", "input")

    big = jpeg_bytes(2000, 2000)
    assert httpx.post(url + CHAT, json=images_chat(big), timeout=30).status_code == 200  # one fits
    error = assert_openai_error(httpx.post(url + CHAT, json=images_chat(big, big)), 400, "5000000 pixels together")
    assert error["code"] == "too_many_pixels" and error["param"] == "messages[0].content[1].image_url.url"


def test_admission_comes_before_decoding(tight):
    """With the queue full, a request is refused (503) before its images are even looked at."""
    url, app = tight
    encoder = app.state.vlmkit.encoder
    release, started = threading.Event(), threading.Event()
    blocker = encoder.batcher.submit(CallPayload(lambda: (started.set(), release.wait(10))))
    assert started.wait(5)
    fillers = [encoder.batcher.submit(CallPayload(lambda: None)) for _ in range(LIMITS["queue"])]
    broken = "data:image/png;base64,%%%"
    try:
        bodies = [
            (EMBED, {"model": ENCODER_ID, "input": broken, "input_type": "image"}),
            (CLASSIFY, {"image": broken, "labels": ["circle", "square"]}),
        ]
        for path, body in bodies:
            error = assert_openai_error(httpx.post(url + path, json=body), 503, "queue is full")
            assert error["code"] == "queue_full"
    finally:
        release.set()
    for job in [blocker, *fillers]:
        job.future.result(10)
    response = httpx.post(url + EMBED, json={"model": ENCODER_ID, "input": broken, "input_type": "image"})
    assert_openai_error(response, 400, "invalid base64")  # with room in the queue, the image is judged


def test_large_images_are_decoded_reduced_towards_the_model_size(tight):
    url, app = tight
    encoder = app.state.vlmkit.encoder
    submit, sizes = encoder.submit_images, []

    def record(images):
        sizes.extend(image.size for image in images)
        return submit(images)

    encoder.submit_images = record  # type: ignore[method-assign]
    try:
        body = {"model": ENCODER_ID, "input": [data_url(jpeg_bytes(2000, 1500), "image/jpeg")], "input_type": "image"}
        assert httpx.post(url + EMBED, json=body, timeout=30).status_code == 200
    finally:
        encoder.submit_images = submit  # type: ignore[method-assign]
    (width, height), = sizes  # fmt: skip
    # The model takes 32 px: decoded at least twice that a side, far below 2000 x 1500.
    assert min(width, height) >= 64 and max(width, height) <= 256
    assert abs(width / height - 2000 / 1500) < 0.05


def test_eps_is_not_handed_to_ghostscript(tight):
    url, _ = tight
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    response = httpx.post(url + CHAT, json=image_chat(data_url(eps, "image/x-eps")))
    assert_openai_error(response, 400, "not a readable image")


# ------------------------------------------------------------------------------------- templates


def test_classify_templates_are_literal_and_capped(tight):
    url, _ = tight
    image = data_url(png_bytes(32, 32))
    hostile = ["{{}}{:>5000000}", "{} {1}", "{}{__class__}", "{0} and {}"]
    started = time.monotonic()
    reply = httpx.post(url + CLASSIFY, json={"image": image, "labels": ["circle", "square"], "templates": hostile})
    assert reply.status_code == 200, reply.text
    assert time.monotonic() - started < 5
    assert sorted(row["label"] for row in reply.json()["data"]) == ["circle", "square"]

    long = {"image": image, "labels": ["a"], "templates": ["a photo of a {}" + "." * 300]}
    assert_openai_error(httpx.post(url + CLASSIFY, json=long), 400, "at most 256 characters", "templates")
    many = {"image": image, "labels": ["a"], "templates": ["{}"] * 33}
    assert_openai_error(httpx.post(url + CLASSIFY, json=many), 400, "at most 32", "templates")
    holes = {"image": image, "labels": ["x" * 100, "y" * 100], "templates": ["{}" * 12]}  # 2 * 1200 characters
    assert_openai_error(httpx.post(url + CLASSIFY, json=holes), 400, "at most 2000", "labels")


# ---------------------------------------------------------------------------- 400s, not 500s


@pytest.mark.parametrize(
    ("body", "words", "param"),
    [
        (chat("hi", temperature=1e-40, max_tokens=2), "temperature must be 0", "temperature"),
        (chat("hi", temperature=1e-300, max_tokens=2), "temperature must be 0", "temperature"),
        (chat("hi", temperature=1.0, seed=2**63, max_tokens=2), "less than", "seed"),
        (chat("hi", temperature=1.0, seed=2**64, max_tokens=2), "less than", "seed"),
        (chat("hi", temperature=1.0, seed=-(2**63) - 1, max_tokens=2), "greater than", "seed"),
    ],
)
def test_extreme_sampling_settings_are_400(tight, body, words, param):
    url, _ = tight
    assert_openai_error(httpx.post(url + CHAT, json=body), 400, words, param)


def test_sampling_settings_at_the_edges_still_work(tight):
    url, _ = tight
    for fields in ({"temperature": 1e-6, "seed": 2**63 - 1}, {"temperature": 1.0, "seed": -(2**63)}):
        assert httpx.post(url + CHAT, json=chat("hi", max_tokens=2, **fields)).status_code == 200


@pytest.mark.parametrize(
    ("path", "raw", "param"),
    [
        (CHAT, '{"model": "tiny-vlm", "messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages[0].content"),
        (
            CHAT,
            '{"model": "tiny-vlm", "messages": [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}]}',
            None,
        ),
        (CHAT, '{"model": "tiny-vlm", "stop": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}', "stop"),
        (EMBED, '{"model": "tiny-clip", "input": ["ok", "\\ud83d"]}', None),
        (CLASSIFY, '{"image": "data:image/png;base64,AA==", "labels": ["\\ud800"]}', None),
    ],
)
def test_lone_surrogates_are_400(tight, path, raw, param):
    url, _ = tight
    response = httpx.post(url + path, content=raw.encode(), headers={"Content-Type": "application/json"})
    error = assert_openai_error(response, 400, "lone surrogate", param)
    assert error["param"] and "function-after" not in error["param"]


def test_nul_byte_in_a_file_url_is_400(tight):
    url, app = tight
    folder = app.state.vlmkit.limits.allow_local_folder
    for image in (f"file://{folder}/a%00b.png", f"file://{folder}/a\x00b.png"):
        assert_openai_error(httpx.post(url + CHAT, json=image_chat(image)), 400, "NUL byte")


# -------------------------------------------------------------------------------------- API keys


@pytest.mark.parametrize("key", ["clé-secrète", "ключ-🔑"])
def test_api_keys_beyond_ascii_match_their_bytes(key):
    torch.manual_seed(0)
    app = create_app(ServedModels(encoder=tiny_encoder(), encoder_id=ENCODER_ID), ServerLimits(api_key=key))
    with serve(app) as url:
        models = url + "/v1/models"
        assert httpx.get(models, headers={"Authorization": b"Bearer " + key.encode("utf-8")}).status_code == 200
        try:
            as_latin1 = key.encode("latin-1")  # what a browser sends for such a key
        except UnicodeEncodeError:
            pass
        else:
            assert httpx.get(models, headers={"Authorization": b"Bearer " + as_latin1}).status_code == 200
        wrong = (key + "x").encode("utf-8")
        assert httpx.get(models, headers={"Authorization": b"Bearer " + wrong}).status_code == 401
        assert httpx.get(models, headers={"Authorization": b"Bearer \xff\xfe"}).status_code == 401


def test_keys_that_cannot_be_sent_are_refused_at_startup():
    for key in ("two words", "tab\there", "new\nline"):
        with pytest.raises(ConfigError, match="spaces or control characters"):
            ServerLimits(api_key=key)


# ---------------------------------------------------------------------------------- search paths


def test_search_hits_name_files_relative_to_the_index_root(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    encoder = tiny_encoder()
    store = build_index(folder, encoder, count=3, absolute=True)  # absolute paths, as the indexer writes
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    app = create_app(ServedModels(encoder=encoder, encoder_id=ENCODER_ID, index=store, images_root=elsewhere))
    with serve(app) as url:
        hits = httpx.post(url + "/v1/search", json={"text": "a red circle", "k": 3}).json()["data"]
    assert sorted(hit["path"] for hit in hits) == ["shape0.png", "shape1.png", "shape2.png"]
    assert all(hit["thumbnail"].startswith("data:image/jpeg") for hit in hits)  # still read from the disk

    absolute = (folder / "shape1.png").resolve().as_posix()
    assert SearchService(store, tmp_path.resolve(), 10**6).shown_path(absolute) == "photos/shape1.png"
    assert SearchService(store, elsewhere, 10**6).shown_path(absolute) == "shape1.png"
    assert SearchService(store, elsewhere, 10**6, absolute_paths=True).shown_path(absolute) == absolute
    assert SearchService(store, folder, 10**6, absolute_paths=True).shown_path("shape2.png") == (
        (folder / "shape2.png").as_posix()
    )
