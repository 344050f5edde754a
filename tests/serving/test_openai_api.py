"""The OpenAI-compatible endpoints driven by the official ``openai`` client, and vlmkit's classify/search."""

from __future__ import annotations

import base64
import io
import threading

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from serving_live import API_KEY, CHAT_ID, ENCODER_ID, data_url, png_bytes, server, shapes_png  # noqa: F401

from vlmkit.processing.chat import with_image
from vlmkit.serving.chat_routes import conversation
from vlmkit.serving.openai_schema import Message
from vlmkit.tasks import embed_images, embed_texts

openai = pytest.importorskip("openai")

QUESTION = "what colour is it?"


@pytest.fixture(scope="module")
def client(server):  # noqa: F811
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30)


def state_of(server):  # noqa: F811
    return server.app.state.vlmkit


def image_message(image: bytes, text: str = QUESTION) -> list[dict]:
    parts = [{"type": "image_url", "image_url": {"url": data_url(image)}}, {"type": "text", "text": text}]
    return [{"role": "user", "content": parts}]


def test_models_are_listed(client):
    models = {model.id: model for model in client.models.list().data}
    assert set(models) == {CHAT_ID, ENCODER_ID}
    assert client.models.retrieve(CHAT_ID).id == CHAT_ID


def test_chat_completion_reports_usage_of_the_image_prompt(client, server):  # noqa: F811
    messages = image_message(png_bytes(48, 40))
    reply = client.chat.completions.create(model=CHAT_ID, messages=messages, max_tokens=5)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == CHAT_ID
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert 1 <= reply.usage.completion_tokens <= 5 or choice.finish_reason == "stop"
    chat = state_of(server).chat
    expected = chat.encode([{"role": "user", "content": f"<image>\n{QUESTION}"}])
    assert reply.usage.prompt_tokens == len(expected)
    assert expected.count(chat.model.config.image_token_id) == chat.model.tokens_per_image
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_content_part_order_does_not_change_the_prompt_or_the_answer(client, server):  # noqa: F811
    """Text before ``image_url`` (the README's example) is asked exactly as ``vlmkit ask`` asks: image first."""
    image = {"type": "image_url", "image_url": {"url": data_url(shapes_png(2))}}
    text = {"type": "text", "text": QUESTION}
    chat = state_of(server).chat
    orders = {"image first": [image, text], "text first": [text, image]}
    turns = {name: conversation([Message(role="user", content=parts)], chat).turns for name, parts in orders.items()}
    assert turns["image first"] == turns["text first"] == [{"role": "user", "content": with_image(QUESTION)}]
    replies = {
        name: client.chat.completions.create(model=CHAT_ID, messages=[{"role": "user", "content": parts}], max_tokens=8)
        for name, parts in orders.items()
    }
    first, second = replies["image first"], replies["text first"]
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage
    assert first.usage.prompt_tokens == len(chat.encode([{"role": "user", "content": with_image(QUESTION)}]))


def test_streamed_answer_equals_the_plain_one(client):
    messages = image_message(shapes_png(1))
    plain = client.chat.completions.create(model=CHAT_ID, messages=messages, max_tokens=12)
    stream = client.chat.completions.create(
        model=CHAT_ID, messages=messages, max_tokens=12, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    finishing = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishing == [plain.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2 or len(text) <= 1


def test_concurrent_requests_get_their_own_answers(client):
    """Requests that may share a batch (left-padded) get what they get alone, in any order."""
    conversations = [image_message(shapes_png(i), text) for i, text in enumerate(["red?", "a square", QUESTION])]
    conversations.append([{"role": "user", "content": "describe the image."}])  # text only, in the same batch
    alone = [client.chat.completions.create(model=CHAT_ID, messages=m, max_tokens=8) for m in conversations]
    together: list = [None] * len(conversations)

    def ask(i: int) -> None:
        together[i] = client.chat.completions.create(model=CHAT_ID, messages=conversations[i], max_tokens=8)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(conversations))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for solo, shared in zip(alone, together, strict=True):
        assert shared.choices[0].message.content == solo.choices[0].message.content
        assert shared.usage == solo.usage


def test_text_and_image_embeddings_match_the_model(client, server):  # noqa: F811
    encoder = state_of(server).encoder.model
    texts = ["a red circle", "a blue square", "two yellow stars"]
    expected = embed_texts(encoder, texts).numpy()
    packed = client.embeddings.create(model=ENCODER_ID, input=texts)  # the client asks for base64
    plain = client.embeddings.create(model=ENCODER_ID, input=texts, encoding_format="float")
    for reply in (packed, plain):
        got = np.array([item.embedding for item in sorted(reply.data, key=lambda d: d.index)])
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert plain.usage.prompt_tokens == int(encoder.tokenizer(texts).attention_mask.sum())
    single = client.embeddings.create(model=ENCODER_ID, input="a red circle", encoding_format="float")
    np.testing.assert_allclose(single.data[0].embedding, expected[0], atol=1e-5)

    pictures = [shapes_png(0), shapes_png(3)]
    images = client.embeddings.create(
        model=ENCODER_ID,
        input=[data_url(p) for p in pictures],
        encoding_format="float",
        extra_body={"input_type": "image"},
    )
    reference = embed_images(encoder, pictures).numpy()
    np.testing.assert_allclose(np.array([d.embedding for d in images.data]), reference, atol=1e-5)


def test_classify_returns_a_distribution_over_the_labels(server):  # noqa: F811
    labels = ["circle", "square", "triangle"]
    body = {"image": data_url(shapes_png(2)), "labels": labels}
    reply = httpx.post(server.url + "/v1/classify", json=body, headers=server.headers()).json()
    probabilities = [row["probability"] for row in reply["data"]]
    assert sorted(row["label"] for row in reply["data"]) == sorted(labels)
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)  # CLIP: softmax over the labels


def test_classify_reads_files_inside_the_allowed_folder(server):  # noqa: F811
    url = (server.folder / "shape0.png").resolve().as_uri()
    body = {"image": url, "labels": ["circle", "square"], "top_k": 1}
    reply = httpx.post(server.url + "/v1/classify", json=body, headers=server.headers())
    assert reply.status_code == 200 and len(reply.json()["data"]) == 1


def test_search_by_text_and_by_image_returns_thumbnails(server):  # noqa: F811
    by_text = httpx.post(server.url + "/v1/search", json={"text": "a red circle", "k": 4}, headers=server.headers())
    hits = by_text.json()["data"]
    assert len(hits) == 4
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    header, encoded = hits[0]["thumbnail"].split(",", 1)
    assert header == "data:image/jpeg;base64"
    assert max(Image.open(io.BytesIO(base64.b64decode(encoded))).size) <= 160

    picture = (server.folder / "shape3.png").read_bytes()
    by_image = httpx.post(server.url + "/v1/search", json={"image": data_url(picture)}, headers=server.headers())
    hits = by_image.json()["data"]
    assert len(hits) == 6
    same = next(h for h in hits if h["path"] == "shape3.png")
    assert same["score"] == pytest.approx(1.0, abs=1e-4)  # the query is the indexed image itself


def test_health_page_and_metrics(server):  # noqa: F811
    health = httpx.get(server.url + "/healthz").json()
    assert health["status"] == "ok" and health["chat"] and health["embeddings"] and health["search"]
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "<title>vlmkit</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(server.url + "/static/app.js").status_code == 200

    assert httpx.get(server.url + "/metrics").status_code == 401  # behind the key like /v1
    httpx.post(server.url + "/v1/embeddings", json={"model": ENCODER_ID, "input": "x"}, headers=server.headers())
    httpx.post(server.url + "/v1/embeddings", json={"model": "nope", "input": "x"}, headers=server.headers())
    text = httpx.get(server.url + "/metrics", headers=server.headers()).text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert int(samples['vlmkit_requests_total{endpoint="/v1/embeddings",status="200"}']) >= 1
    assert int(samples['vlmkit_requests_total{endpoint="/v1/embeddings",status="404"}']) >= 1
    assert int(samples['vlmkit_requests_total{endpoint="/metrics",status="401"}']) >= 1
    assert (
        samples['vlmkit_request_duration_seconds_bucket{endpoint="/v1/embeddings",le="+Inf"}']
        == samples['vlmkit_request_duration_seconds_count{endpoint="/v1/embeddings"}']
    )
    assert float(samples['vlmkit_queue_depth{worker="encoder"}']) == 0
    assert float(samples["vlmkit_generated_tokens_total"]) >= 0
    assert torch.isfinite(torch.tensor(float(samples["vlmkit_generation_tokens_per_second"])))
