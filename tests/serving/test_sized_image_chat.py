"""Chat completions for models whose image tokens follow each image (LLaVA-NeXT's tiling, SmolVLM's splitting):
the server encodes a prompt with its images, so several images of different sizes in one message each get their
own tokens, as transformers' processors lay them out, and a served answer is ``ask``'s."""

from __future__ import annotations

import base64
import io

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import idefics3_kit
import llava_next_kit
import vlmkit
from testkit import noise_image
from vlmkit.models.generation import GenerationConfig
from vlmkit.serving import ServedModels, ServerLimits, create_app
from vlmkit.serving.chat_routes import conversation
from vlmkit.serving.openai_schema import ChatRequest
from vlmkit.tasks.chat import ask

QUESTION = "what is this ?"


def _png(width: int, height: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    noise_image(width, height, seed).save(buffer, format="PNG")
    return buffer.getvalue()


def _url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module", params=["llava_next", "smolvlm"])
def family(request, tmp_path_factory):
    """(transformers processor, loaded vlmkit model, the prompt text transformers builds for n images)."""
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp(request.param)
    if request.param == "llava_next":
        llava_next_kit.hf_llava_next().save_pretrained(directory)
        processor = llava_next_kit.save_tiny_processor(directory)

        def text(n: int) -> str:
            return "USER: " + "<image>\n" * n + f"{QUESTION} ASSISTANT:"

    else:
        idefics3_kit.hf_idefics3("smolvlm").save_pretrained(directory)
        processor = idefics3_kit.save_tiny_processor(directory, "smolvlm")

        def text(n: int) -> str:
            content = [*({"type": "image"} for _ in range(n)), {"type": "text", "text": QUESTION}]
            return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)

    return processor, vlmkit.load(directory), text


def _app(model) -> TestClient:
    limits = ServerLimits()
    return TestClient(create_app(ServedModels(chat=model, chat_id="m"), limits))


def _messages(images: list[bytes]) -> list[dict]:
    parts = [
        *({"type": "image_url", "image_url": {"url": _url(i)}} for i in images),
        {"type": "text", "text": QUESTION},
    ]
    return [{"role": "user", "content": parts}]


def test_a_prompt_with_images_of_two_sizes_is_the_processors(family):
    processor, model, text = family
    images = [_png(90, 40, 1), _png(40, 70, 2)]
    with _app(model) as client:
        service = client.app.state.vlmkit.chat
        body = ChatRequest.model_validate({"model": "m", "messages": _messages(images)})
        turns = conversation(body.messages, service).turns
        decoded = [Image.open(io.BytesIO(i)).convert("RGB") for i in images]
        prompt = service.encode(turns, decoded)
    images_arg = decoded if "<image>\n" in text(1) else [decoded]
    expected = processor(text=text(2), images=images_arg, return_tensors="pt")["input_ids"][0].tolist()
    assert prompt == expected
    assert prompt.count(model.config.image_token_id) > 2 * model.config.tokens_per_image  # each image in full


def test_a_served_answer_is_asks(family, tmp_path):
    _, model, _ = family
    image = _png(90, 40, 3)
    path = tmp_path / "wide.png"
    path.write_bytes(image)
    expected = ask(model, str(path), QUESTION, GenerationConfig(max_new_tokens=6))
    with _app(model) as client:
        reply = client.post(
            "/v1/chat/completions", json={"model": "m", "messages": _messages([image]), "max_tokens": 6}
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"].strip() == expected.strip()
