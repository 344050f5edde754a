"""What answers the prompts: a vlmkit model, or a transformers model through its own processor.

Both take the same prompts (the user turn's text with ``IMAGE_TOKEN`` where each image goes, and the images) and
answer greedily, so a figure means the same thing whichever ran it. The vlmkit backend formats the turn with the
model's chat template (``tasks.chat``); the transformers one with the processor's ``apply_chat_template`` (an
image entry per placeholder; the BOS added unless the template writes it, as transformers does), then
``generate``. On one LLaVA checkpoint the two write
the same prompt ids, so they answer alike (``tests/bench/test_bench_backends.py``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from vlmkit.bench.tasks import Prompt
from vlmkit.errors import ConfigError
from vlmkit.evaluation.runner import model_fingerprint
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.images import load_image
from vlmkit.processing.jinja_chat import content_parts
from vlmkit.tasks.chat import chat_encoder, check_generative, respond


class Backend(Protocol):
    """Answers a batch of prompts; ``fingerprint`` identifies the weights, so cached answers are reused only for
    the same model."""

    name: str
    fingerprint: str

    def answer(self, prompts: Sequence[Prompt], max_new_tokens: int) -> list[str]: ...


class VlmkitBackend:
    """A ``VisionLanguageModel`` (or text-only ``Decoder``) as ``vlmkit.load`` returns it."""

    def __init__(self, model: torch.nn.Module, name: str) -> None:
        check_generative(model)
        self.model = model.eval()
        self.name = name
        self.fingerprint = model_fingerprint(model)
        self.encoder = chat_encoder(model)  # type: ignore[arg-type]

    def answer(self, prompts: Sequence[Prompt], max_new_tokens: int) -> list[str]:
        ids = [
            self.encoder.encode([{"role": "user", "content": text}], add_generation_prompt=True).input_ids
            for text, _ in prompts
        ]
        images = [image for _, row in prompts for image in row]
        config = GenerationConfig(max_new_tokens=max_new_tokens)
        return [answer.strip() for answer in respond(self.model, ids, images, config)]  # type: ignore[arg-type]


def _conversation(prompt: Prompt) -> list[dict]:
    """One user message in transformers' content-list form, made as vlmkit makes it for a Jinja template."""
    text, images = prompt
    return [{"role": "user", "content": content_parts(text, [load_image(image) for image in images])}]


class TransformersBackend:
    """A local transformers directory through ``AutoModelForImageTextToText`` and ``AutoProcessor``; the
    processor must carry a ``chat_template``. Batches are padded on the left, as generation needs."""

    def __init__(self, directory: str | Path, device: str = "cpu") -> None:
        try:
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError:
            raise ConfigError("--backend transformers needs transformers: pip install transformers") from None
        try:
            self.processor = AutoProcessor.from_pretrained(directory)
            self.model = AutoModelForImageTextToText.from_pretrained(directory).to(device).eval()
        except (OSError, ValueError) as error:
            why = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ConfigError(f"{directory}: transformers cannot load it as an image-text model ({why})") from None
        if not getattr(self.processor, "chat_template", None):
            raise ConfigError(f"{directory}: the processor has no chat_template, so prompts cannot be formatted")
        self.processor.tokenizer.padding_side = "left"
        self.name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(directory).name) or "model"
        self.fingerprint = model_fingerprint(self.model)
        self.device = device

    def answer(self, prompts: Sequence[Prompt], max_new_tokens: int) -> list[str]:
        padding = {"padding": True}
        if "processor_kwargs" in inspect.signature(self.processor.apply_chat_template).parameters:
            padding = {"processor_kwargs": padding}  # transformers 5 takes the processor's own arguments so
        inputs = self.processor.apply_chat_template(
            [_conversation(prompt) for prompt in prompts],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            **padding,
        ).to(self.device)
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = output[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.processor.batch_decode(new, skip_special_tokens=True)]
