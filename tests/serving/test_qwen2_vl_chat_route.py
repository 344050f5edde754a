"""Chat completions served by a transformers-saved tiny Qwen2-VL: the prompt laid out with each image's pad tokens,
the model's own M-RoPE prefill, then the shared batched loop. A served answer is ``ask``'s, a two-turn conversation
with an image in each turn is ``Chat``'s (itself transformers' answer: tests/tasks/test_qwen2_vl_chat.py), and
requests batched together (left-padded, images of other sizes) answer as they do alone."""

from __future__ import annotations

import base64
import io
import json
import threading

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import vlmkit
from qwen2_vl_kit import hf_qwen2_vl, save_tiny_processor
from testkit import noise_image
from vlmkit.cli import build_parser
from vlmkit.cli.serve import build_app
from vlmkit.models.generation import GenerationConfig
from vlmkit.serving import ServedModels, ServerLimits, create_app
from vlmkit.serving.chat import ChatService, Finished, Piece
from vlmkit.serving.metrics import Metrics
from vlmkit.tasks.chat import Chat, ask

QUESTION, FOLLOW_UP = "what is this ?", "describe it and this"
TOKENS = 8


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("qwen2_vl")
    hf_qwen2_vl().save_pretrained(directory)
    save_tiny_processor(directory)
    return directory


@pytest.fixture(scope="module")
def model(directory):
    return vlmkit.load(directory)


def _picture(width: int, height: int, seed: int) -> tuple[Image.Image, str]:
    """A picture and its PNG as a data URL."""
    image = noise_image(width, height, seed)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return image, "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _user(url: str, text: str) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]
    return {"role": "user", "content": parts}


def _post(model, messages: list[dict], stream: bool = False, app=None) -> str:
    with TestClient(app or create_app(ServedModels(chat=model, chat_id="m"), ServerLimits())) as client:
        body = {"model": "m", "messages": messages, "max_tokens": TOKENS, "stream": stream}
        reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    if not stream:
        return reply.json()["choices"][0]["message"]["content"]
    chunks = [json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: {")]
    return "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks if chunk["choices"])


def test_a_served_answer_is_asks(model):
    image, url = _picture(56, 24, 1)
    expected = ask(model, image, QUESTION, GenerationConfig(max_new_tokens=TOKENS))
    assert expected.split()  # a real answer to compare
    assert _post(model, [_user(url, QUESTION)]) == expected
    assert _post(model, [_user(url, QUESTION)], stream=True) == expected


def test_vlmkit_serve_loads_a_qwen2_vl_directory(directory, model):
    image, url = _picture(56, 24, 1)
    app = build_app(build_parser().parse_args(["serve", "--vlm", str(directory), "--vlm-name", "m"]))
    expected = ask(model, image, QUESTION, GenerationConfig(max_new_tokens=TOKENS))
    assert _post(None, [_user(url, QUESTION)], app=app) == expected


def test_a_two_turn_conversation_with_two_images_is_chats(model):
    (first_image, first_url), (second_image, second_url) = _picture(56, 24, 1), _picture(24, 40, 2)
    chat = Chat(model, first_image, config=GenerationConfig(max_new_tokens=TOKENS))
    first = chat.send(QUESTION)
    second = chat.send(FOLLOW_UP, image=second_image)
    assert second.split()
    messages = [_user(first_url, QUESTION), {"role": "assistant", "content": first}, _user(second_url, FOLLOW_UP)]
    assert _post(model, messages) == second


def test_requests_batched_together_answer_as_alone(model):
    """Two prompts of other lengths (images of other sizes) in one left-padded batch: each row's M-RoPE positions
    and rope delta are its own."""
    service = ChatService(model, "m", max_batch=4, wait_s=1.0, queue=8, metrics=Metrics())
    pictures = [noise_image(56, 24, 1), noise_image(24, 40, 2)]
    config = GenerationConfig(max_new_tokens=TOKENS)
    expected = [ask(model, picture, QUESTION, config) for picture in pictures]
    answers: list[list[str]] = [[], []]
    done = [threading.Event(), threading.Event()]

    def emit(row: int):
        def on(event) -> None:
            if isinstance(event, Piece):
                answers[row].append(event.text)
            elif isinstance(event, Finished):
                done[row].set()

        return on

    try:
        for row, picture in enumerate(pictures):
            prompt = service.encode([{"role": "user", "content": f"<image>\n{QUESTION}"}], [picture])
            service.submit(prompt, [picture], config, emit(row))
        assert all(event.wait(60) for event in done)
        assert service.batcher.batches == 1  # both rows ran as one batch
    finally:
        service.close()
    assert ["".join(pieces) for pieces in answers] == expected
