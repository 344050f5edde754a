"""The same models on a GPU give the CPU's results: embeddings, tasks, greedy generation and chat.

These run only where torch sees a CUDA device (CI has none, so they skip there); they exist to catch
tensors left on the wrong device in code paths that CPU tests cannot reach. TF32 is switched off so
that float32 results can be compared closely.
"""

from __future__ import annotations

import copy

import pytest
import torch

from testkit import tiny_model
from tiny_vlm import tiny_vlm
from vlmkit.models.generation import GenerationConfig
from vlmkit.tasks import classify, embed_images, embed_texts
from vlmkit.tasks.caption import caption
from vlmkit.tasks.chat import Chat, ask

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

GREEDY = GenerationConfig(max_new_tokens=8)


@pytest.fixture(autouse=True)
def exact_float32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def on_gpu(model: torch.nn.Module) -> torch.nn.Module:
    """A CUDA copy that shares the CPU model's tokenizer and image processor."""
    gpu = copy.deepcopy(model).to("cuda")
    gpu.tokenizer, gpu.image_processor = model.tokenizer, model.image_processor
    return gpu


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_dual_encoder_tasks_match_the_cpu(photo_files, family):
    cpu = tiny_model(family)
    gpu = on_gpu(cpu)
    texts = ["a red circle", "a cat", "two blue squares"]
    torch.testing.assert_close(embed_images(gpu, photo_files).cpu(), embed_images(cpu, photo_files), atol=1e-4, rtol=0)
    torch.testing.assert_close(embed_texts(gpu, texts).cpu(), embed_texts(cpu, texts), atol=1e-4, rtol=0)
    expected = [[p.label for p in row] for row in classify(cpu, photo_files, texts, top_k=2)]
    assert [[p.label for p in row] for row in classify(gpu, photo_files, texts, top_k=2)] == expected


def sharpened_vlm() -> torch.nn.Module:
    torch.manual_seed(0)
    vlm = tiny_vlm()
    with torch.no_grad():  # a sharper random model, so greedy answers differ between images
        for param in vlm.decoder.parameters():
            param.mul_(6 if param.ndim > 1 else 1)
    return vlm


def test_vlm_generation_and_chat_match_the_cpu(photo_files):
    cpu = sharpened_vlm()
    gpu = on_gpu(cpu)
    assert caption(gpu, photo_files[:3], batch_size=2, config=GREEDY) == caption(cpu, photo_files[:3], config=GREEDY)
    chats = [Chat(model, photo_files[0], config=GREEDY) for model in (cpu, gpu)]
    for question in ("what colour is it?", "and the shape?"):
        assert chats[1].send(question) == chats[0].send(question)
    sampled = GenerationConfig(max_new_tokens=8, temperature=1.0, top_k=20, top_p=0.9, seed=3)
    assert ask(gpu, photo_files[1], "what is it?", sampled) == ask(gpu, photo_files[1], "what is it?", sampled)


def test_bf16_decoder_runs_on_the_gpu(photo_files):
    gpu = on_gpu(sharpened_vlm()).to(torch.bfloat16)
    assert isinstance(caption(gpu, photo_files[:2], config=GREEDY)[0], str)
