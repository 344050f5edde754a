"""Questions and conversations about an image with a generative model: ``ask`` and ``Chat``.

Works with a ``VisionLanguageModel`` (an image optional) or a text-only ``Decoder``, as loaded by
``vlmkit.load`` (tokenizer and, for images, image processor attached); ``ask`` and ``answer_images`` also take a
``Qwen2VLModel`` (``vlmkit.tasks.qwen2_vl``). ``Chat`` encodes its image
once and keeps the decoder's KV cache between turns, so a new turn only prefills its own tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from vlmkit.errors import InputError
from vlmkit.models import Decoder, Qwen2VLModel, VisionLanguageModel
from vlmkit.models.generation import GenerationConfig, generate_text, stream_text
from vlmkit.nn.kv_cache import KVCache
from vlmkit.processing.chat import ChatEncoder, ChatTemplate, template_named, with_image
from vlmkit.processing.image_splitting import SplitImagePreprocessor, image_prompt_ids
from vlmkit.processing.images import ImageSource
from vlmkit.processing.jinja_chat import JinjaChatEncoder, JinjaChatTemplate
from vlmkit.processing.text import TextTokenizer
from vlmkit.tasks import qwen2_vl

Model = VisionLanguageModel | Decoder


def check_generative(model: object) -> None:
    """Raise one line unless ``model`` generates text: a ``VisionLanguageModel`` or a ``Decoder``."""
    if not isinstance(model, (VisionLanguageModel, Qwen2VLModel)) and not hasattr(model, "new_cache"):
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


def jinja_template_of(model: Model) -> JinjaChatTemplate | None:
    """The checkpoint's own Jinja template (``vlmkit.load`` attaches it as ``model.jinja_template``)."""
    return getattr(model, "jinja_template", None)


def chat_encoder(
    model: Model,
    image_size: tuple[int, int] | None = None,
    *,
    images: bool = True,
    image_layouts: Sequence[Sequence[int]] = (),
) -> ChatEncoder | JinjaChatEncoder:
    """The encoder matching a model's tokenizer, prompt format and image geometry.

    A checkpoint that ships its own Jinja template is prompted through it; vlmkit's own models (and
    checkpoints without one) use their named ``ChatTemplate``. A model whose image token count follows
    the image's size (LLaVA-NeXT's tiling) needs that ``image_size`` (height, width), unless the
    conversation holds no image (``images=False``). A model that splits images (Idefics3) takes each image's
    ids from ``image_layouts`` instead (``image_layouts_of``).
    """
    check_generative(model)
    tokenizer = _tokenizer(model)
    if images and not image_layouts and isinstance(model, VisionLanguageModel) and model.config.image_splitting:
        image_layouts = _unsplit_layout(model)
    image_token_id, tokens_per_image = (
        (model.config.image_token_id, model.image_tokens(image_size) if images and not image_layouts else 0)
        if isinstance(model, VisionLanguageModel)
        else (None, 0)
    )
    jinja = jinja_template_of(model)
    if jinja is not None:
        multimodal = isinstance(model, VisionLanguageModel)
        return JinjaChatEncoder(tokenizer, jinja, image_token_id, tokens_per_image, multimodal, image_layouts)
    eos = tokenizer.eos_id if tokenizer.eos_id is not None else _decoder(model).config.eos_token_ids[0]
    return ChatEncoder(tokenizer, template_of(model), eos, image_token_id, tokens_per_image, image_layouts)


def with_template_stops(model: Model, config: GenerationConfig | None) -> GenerationConfig:
    """``config`` with the named template's stop strings when it names none itself (a Jinja template's
    turns end with the end-of-turn token the model emits)."""
    config = config or GenerationConfig()
    if config.stop or jinja_template_of(model) is not None:
        return config
    return dataclasses.replace(config, stop=template_of(model).stop)


def image_inputs(model: Model, images: Sequence[ImageSource]) -> dict[str, torch.Tensor]:
    """The image processor's outputs by their Hugging Face names, on the model's device: ``pixel_values``,
    and ``image_sizes`` from a tiling processor (LLaVA-NeXT's), which ``encode_images`` then needs."""
    if isinstance(model, Qwen2VLModel):
        raise InputError("a Qwen2-VL model answers single turns about images (ask, caption); not this task yet")
    if not isinstance(model, VisionLanguageModel):
        raise InputError(f"{type(model).__name__} is a text-only model; it cannot take images")
    if model.image_processor is None:
        raise InputError("this model has no image processor; load it with vlmkit.load() or set model.image_processor")
    outputs = model.image_processor(list(images))
    outputs = outputs if isinstance(outputs, dict) else {"pixel_values": outputs}
    outputs["pixel_values"] = outputs["pixel_values"].to(model.device, model.dtype)
    return outputs


def pixels_of(model: Model, images: Sequence[ImageSource]) -> torch.Tensor:
    return image_inputs(model, images)["pixel_values"]


def _size_of(inputs: dict[str, torch.Tensor], index: int = 0) -> tuple[int, int] | None:
    """Image ``index``'s (height, width) when the processor reports sizes."""
    sizes = inputs.get("image_sizes")
    return None if sizes is None else (int(sizes[index, 0]), int(sizes[index, 1]))


def image_layouts_of(model: Model, inputs: dict[str, torch.Tensor], index: int = 0) -> list[list[int]]:
    """Image ``index``'s prompt ids when the processor splits images (it reports ``rows`` and ``cols``), else none."""
    if "rows" not in inputs:
        return []
    rows, cols = int(inputs["rows"][index]), int(inputs["cols"][index])
    return [image_prompt_ids(_tokenizer(model), rows, cols, model.config.tokens_per_image)]  # type: ignore[union-attr]


def _unsplit_layout(model: VisionLanguageModel) -> list[list[int]]:
    """Every image's one layout when the processor does not split images (none otherwise: it varies)."""
    processor = model.image_processor
    if not isinstance(processor, SplitImagePreprocessor) or processor.splitting:
        return []
    return [image_prompt_ids(_tokenizer(model), 0, 0, model.config.tokens_per_image)]


def lays_out_by_size(model: object) -> bool:
    """Whether an image's prompt tokens depend on the image (LLaVA-NeXT's tiling, Idefics3's splitting), so a
    conversation's prompt can only be encoded once its images are processed (``images_encoder``)."""
    return isinstance(model, VisionLanguageModel) and bool(
        model.config.image_grid_pinpoints or model.config.image_splitting
    )


def images_encoder(
    model: Model, inputs: dict[str, torch.Tensor], rows: Sequence[int]
) -> ChatEncoder | JinjaChatEncoder:
    """The chat encoder of a conversation holding the processed images ``rows`` of ``inputs``, in order: each image
    laid out for its own size or split, so images of different sizes in one conversation each get their own tokens."""
    if not rows:
        return chat_encoder(model, images=False)
    layouts = [layout for row in rows for layout in image_layouts_of(model, inputs, row)]
    sizes = {_size_of(inputs, row) for row in rows}
    if layouts or len(sizes) == 1:
        return chat_encoder(model, next(iter(sizes)), image_layouts=layouts)
    counts = [[model.config.image_token_id] * model.image_tokens(_size_of(inputs, row)) for row in rows]  # type: ignore[union-attr]
    return chat_encoder(model, image_layouts=counts)


def respond(
    model: Model,
    prompts: Sequence[Sequence[int]],
    images: Sequence[ImageSource] = (),
    config: GenerationConfig | None = None,
) -> list[str]:
    """Generated text for each prompt (ids with image tokens expanded); ``images`` in prompt order."""
    check_generative(model)
    return _respond(model, prompts, image_inputs(model, images) if images else {}, config)


def _respond(
    model: Model, prompts: Sequence[Sequence[int]], inputs: dict[str, torch.Tensor], config: GenerationConfig | None
) -> list[str]:
    config = with_template_stops(model, config)
    tokenizer = _tokenizer(model)
    if isinstance(model, VisionLanguageModel):
        ids, mask, embeds = model.prepare(prompts, inputs.get("pixel_values"), inputs.get("image_sizes"))
        return generate_text(model.decoder, ids, tokenizer, config, attention_mask=mask, inputs_embeds=embeds)
    return generate_text(model, prompts, tokenizer, config)


def answer_images(
    model: VisionLanguageModel | Qwen2VLModel,
    texts: Sequence[str],
    images: Sequence[ImageSource],
    config: GenerationConfig | None = None,
    batch_size: int = 8,
) -> list[str]:
    """One single-turn answer per (text, image), ``with_image(text)`` as the user turn, ``batch_size`` at a time.

    Each prompt is encoded for its own image, so a model whose image token count follows the image's size
    (LLaVA-NeXT's tiling) gets the right count for every row of a batch.
    """
    check_generative(model)
    if isinstance(model, Qwen2VLModel):
        return qwen2_vl.answer_images(model, texts, images, config, batch_size)
    if len(texts) != len(images):
        raise InputError(f"answer_images: {len(texts)} texts for {len(images)} images; expected one each")
    answers: list[str] = []
    for start in range(0, len(texts), batch_size):
        inputs = image_inputs(model, list(images[start : start + batch_size]))
        prompts = [
            chat_encoder(model, _size_of(inputs, row), image_layouts=image_layouts_of(model, inputs, row))
            .encode([{"role": "user", "content": with_image(text)}], add_generation_prompt=True)
            .input_ids
            for row, text in enumerate(texts[start : start + batch_size])
        ]
        answers += _respond(model, prompts, inputs, config)
    return answers


def ask(
    model: Model | Qwen2VLModel, image: ImageSource | None, question: str, config: GenerationConfig | None = None
) -> str:
    """The model's answer to ``question`` about ``image`` (None for a text-only question)."""
    check_generative(model)
    if isinstance(model, Qwen2VLModel):
        return qwen2_vl.ask(model, image, question, config)
    text = question if image is None else with_image(question)
    inputs = {} if image is None else image_inputs(model, [image])
    layouts = image_layouts_of(model, inputs)
    prompt = chat_encoder(model, _size_of(inputs), images=image is not None, image_layouts=layouts).encode(
        [{"role": "user", "content": text}], add_generation_prompt=True
    )
    return _respond(model, [prompt.input_ids], inputs, config)[0]


class Chat:
    """A conversation about one image (or none), continued turn by turn with ``send``.

    The image is encoded once. Each turn encodes the whole conversation (so a Jinja template sees it
    whole, as it expects) and the decoder's cache, kept between turns, prefills only the ids after the
    longest prefix it already holds.
    ``history`` lists the turns as ``{"role", "content"}`` messages.
    """

    def __init__(
        self,
        model: Model,
        image: ImageSource | None = None,
        system: str | None = None,
        config: GenerationConfig | None = None,
    ) -> None:
        check_generative(model)
        self.model = model
        self.config = with_template_stops(model, config)
        self.system = system
        self.features: torch.Tensor | None = None
        inputs = {} if image is None else image_inputs(model, [image])
        if inputs:
            with torch.inference_mode():
                self.features = model.encode_images(inputs["pixel_values"], inputs.get("image_sizes"))  # type: ignore[union-attr]
        layouts = image_layouts_of(model, inputs)
        self.encoder = chat_encoder(model, _size_of(inputs), images=image is not None, image_layouts=layouts)
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (the image encoding is kept)."""
        self.history: list[dict[str, str]] = [] if self.system is None else [{"role": "system", "content": self.system}]
        self._cached: list[int] = []
        self._cache: KVCache | None = None

    def send(self, text: str, stream: bool = False) -> str | Iterator[str]:
        """The answer to ``text``, or with ``stream`` an iterator of its pieces as they are generated."""
        pieces = self._turn(text)
        return pieces if stream else "".join(pieces)

    def _turn(self, text: str) -> Iterator[str]:
        if self.features is not None and not any(m["role"] == "user" for m in self.history):
            text = with_image(text)
        turn = {"role": "user", "content": text}
        ids = self.encoder.encode([*self.history, turn], add_generation_prompt=True).input_ids
        decoder = _decoder(self.model)
        if self._cache is None:
            self._cache = decoder.new_cache(1, len(ids) + self.config.max_new_tokens)
        reuse = min(_common_prefix(self._cached, ids), len(ids) - 1)
        self._cache.trim(reuse)
        span = ids[reuse:]
        embeds = self._embeds(span)
        generated: list[int] = []
        answer: list[str] = []
        self.history.append(turn)
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
            self.history.append({"role": "assistant", "content": "".join(answer)})

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
