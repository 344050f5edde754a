"""Questions and conversations about an image with a generative model: ``ask`` and ``Chat``.

Works with a ``VisionLanguageModel`` (an image optional) or a text-only ``Decoder``, as loaded by
``vlmkit.load`` (tokenizer and, for images, image processor attached). ``Chat`` encodes its image
once and keeps the decoder's KV cache between turns, so a new turn only prefills its own tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from vlmkit.errors import InputError
from vlmkit.models import Decoder, VisionLanguageModel
from vlmkit.models.generation import GenerationConfig, generate_text, stream_text
from vlmkit.nn.kv_cache import KVCache
from vlmkit.processing.chat import ChatEncoder, ChatTemplate, template_named, with_image
from vlmkit.processing.images import ImageSource
from vlmkit.processing.text import TextTokenizer

Model = VisionLanguageModel | Decoder


def check_generative(model: object) -> None:
    """Raise one line unless ``model`` generates text: a ``VisionLanguageModel`` or a ``Decoder``."""
    if not isinstance(model, VisionLanguageModel) and not hasattr(model, "new_cache"):
        raise InputError(
            f"a {type(model).__name__} cannot generate text; captions, questions and chats need a vision-language "
            "model (a `vlmkit train instruct` run or a LLaVA checkpoint), or a text-only Decoder without images"
        )


def _decoder(model: Model) -> Decoder:
    return model.decoder if isinstance(model, VisionLanguageModel) else model


def _tokenizer(model: Model) -> TextTokenizer:
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise InputError("this model has no tokenizer; load it with vlmkit.load() from a directory that has one")
    return tokenizer


def template_of(model: Model) -> ChatTemplate:
    return template_named(model.config.chat_template if isinstance(model, VisionLanguageModel) else "vlmkit")


def chat_encoder(model: Model) -> ChatEncoder:
    """The ``ChatEncoder`` matching a model's tokenizer, template and image geometry."""
    check_generative(model)
    tokenizer = _tokenizer(model)
    decoder = _decoder(model)
    eos = tokenizer.eos_id if tokenizer.eos_id is not None else decoder.config.eos_token_ids[0]
    if isinstance(model, VisionLanguageModel):
        return ChatEncoder(tokenizer, template_of(model), eos, model.config.image_token_id, model.tokens_per_image)
    return ChatEncoder(tokenizer, template_of(model), eos)


def with_template_stops(model: Model, config: GenerationConfig | None) -> GenerationConfig:
    """``config`` with the template's stop strings when it names none itself."""
    config = config or GenerationConfig()
    return config if config.stop else dataclasses.replace(config, stop=template_of(model).stop)


def pixels_of(model: Model, images: Sequence[ImageSource]) -> torch.Tensor:
    if not isinstance(model, VisionLanguageModel):
        raise InputError(f"{type(model).__name__} is a text-only model; it cannot take images")
    if model.image_processor is None:
        raise InputError("this model has no image processor; load it with vlmkit.load() or set model.image_processor")
    return model.image_processor(list(images)).to(model.device, model.dtype)


def respond(
    model: Model,
    prompts: Sequence[Sequence[int]],
    images: Sequence[ImageSource] = (),
    config: GenerationConfig | None = None,
) -> list[str]:
    """Generated text for each prompt (ids with image tokens expanded); ``images`` in prompt order."""
    check_generative(model)
    pixels = pixels_of(model, images) if images else None
    config = with_template_stops(model, config)
    tokenizer = _tokenizer(model)
    if isinstance(model, VisionLanguageModel):
        ids, mask, embeds = model.prepare(prompts, pixels)
        return generate_text(model.decoder, ids, tokenizer, config, attention_mask=mask, inputs_embeds=embeds)
    return generate_text(model, prompts, tokenizer, config)


def ask(model: Model, image: ImageSource | None, question: str, config: GenerationConfig | None = None) -> str:
    """The model's answer to ``question`` about ``image`` (None for a text-only question)."""
    text = question if image is None else with_image(question)
    prompt = chat_encoder(model).encode([{"role": "user", "content": text}], add_generation_prompt=True)
    return respond(model, [prompt.input_ids], [] if image is None else [image], config)[0]


class Chat:
    """A conversation about one image (or none), continued turn by turn with ``send``.

    The image is encoded once. The decoder's cache keeps the conversation's keys and values between
    turns; each turn prefills only the ids after the longest prefix the cache already holds.
    ``history`` lists the turns as ``{"role", "content"}`` messages.
    """

    def __init__(
        self,
        model: Model,
        image: ImageSource | None = None,
        system: str | None = None,
        config: GenerationConfig | None = None,
    ) -> None:
        self.model = model
        self.config = with_template_stops(model, config)
        self.encoder = chat_encoder(model)
        self.system = system
        self.features: torch.Tensor | None = None
        if image is not None:
            with torch.inference_mode():
                self.features = model.encode_images(pixels_of(model, [image]))  # type: ignore[union-attr]
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (the image encoding is kept)."""
        self.history: list[dict[str, str]] = [] if self.system is None else [{"role": "system", "content": self.system}]
        self._ids: list[int] = []
        self._cached: list[int] = []
        self._cache: KVCache | None = None

    def send(self, text: str, stream: bool = False) -> str | Iterator[str]:
        """The answer to ``text``, or with ``stream`` an iterator of its pieces as they are generated."""
        pieces = self._turn(text)
        return pieces if stream else "".join(pieces)

    def _turn(self, text: str) -> Iterator[str]:
        first = not self._ids
        if first and self.features is not None:
            text = with_image(text)
        opening = [{"role": "system", "content": self.system}] if first and self.system is not None else []
        turn = [*opening, {"role": "user", "content": text}]
        prompt = self.encoder.encode(turn, add_generation_prompt=True, start=first)
        ids = self._ids + prompt.input_ids
        decoder = _decoder(self.model)
        if self._cache is None:
            self._cache = decoder.new_cache(1, len(ids) + self.config.max_new_tokens)
        reuse = min(_common_prefix(self._cached, ids), len(ids) - 1)
        self._cache.trim(reuse)
        span = ids[reuse:]
        embeds = self._embeds(span)
        generated: list[int] = []
        answer: list[str] = []
        self.history.append({"role": "user", "content": text})
        try:
            for piece in stream_text(
                decoder,
                span,
                _tokenizer(self.model),
                self.config,
                inputs_embeds=embeds,
                cache=self._cache,
                on_token=generated,
            ):
                answer.append(piece)
                yield piece
        finally:  # also when the caller stops reading early: the turn ends with what was said
            self._cached = (ids + generated)[: self._cache.length]
            reply = "".join(answer)
            self._ids = ids + self.encoder.encode_answer(reply)
            self.history.append({"role": "assistant", "content": reply})

    def _embeds(self, span: list[int]) -> torch.Tensor | None:
        if not isinstance(self.model, VisionLanguageModel):
            return None
        ids = torch.tensor([span], device=self.model.device)
        holds_image = self.model.config.image_token_id in span
        with torch.inference_mode():
            return self.model.embed(ids, self.features if holds_image else None)


def _common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length
