"""Questions and conversations about an image with a generative model: ``ask`` and ``Chat``.

Works with a ``VisionLanguageModel`` or a ``Qwen2VLModel`` (images optional) or a text-only ``Decoder``, as
loaded by ``vlmkit.load`` (tokenizer and, for images, image processor attached). ``Chat`` encodes each image
once and keeps the decoder's KV cache between turns, so a new turn only prefills its own tokens.

Each image becomes the ids its processor lays out for it and its tokens, computed once (``tasks.image_prompts``:
what images and a prompt become as a model's inputs); a model whose positions follow its images (Qwen2-VL) prefills
its own prompts there (``image_prompts.start``) and the shared generation loop continues.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from vlmkit.errors import InputError
from vlmkit.models import Decoder, VisionLanguageModel
from vlmkit.models.generation import GenerationConfig, generate_text, stream_text
from vlmkit.nn.kv_cache import KVCache
from vlmkit.processing.chat import IMAGE_TOKEN, ChatEncoder, ChatTemplate, template_named, with_image
from vlmkit.processing.images import ImageSource
from vlmkit.processing.jinja_chat import JinjaChatEncoder, JinjaChatTemplate
from vlmkit.tasks.image_prompts import (
    IMAGE_MODELS,
    ImageModel,
    Model,
    encode_images,
    image_ids_of,
    image_inputs,
    image_layouts_of,
    size_of,
    start,
    tokenizer_of,
    unsplit_layout,
)


def check_generative(model: object) -> None:
    """Raise one line unless ``model`` generates text: a vision-language model or a ``Decoder``."""
    if not isinstance(model, IMAGE_MODELS) and not hasattr(model, "new_cache"):
        raise InputError(
            f"a {type(model).__name__} cannot generate text; captions, questions and chats need a vision-language "
            "model (a `vlmkit train instruct` run or a LLaVA checkpoint), or a text-only Decoder without images"
        )


def takes_images(model: object) -> bool:
    return isinstance(model, IMAGE_MODELS)


def decoder_of(model: Model) -> Decoder:
    return model.decoder if isinstance(model, IMAGE_MODELS) else model


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
    tokenizer = tokenizer_of(model)
    if images and not image_layouts and isinstance(model, VisionLanguageModel) and model.config.image_splitting:
        image_layouts = unsplit_layout(model)
    image_token_id, tokens_per_image = (
        (model.config.image_token_id, model.image_tokens(image_size) if images and not image_layouts else 0)
        if isinstance(model, IMAGE_MODELS)
        else (None, 0)
    )
    jinja = jinja_template_of(model)
    if jinja is not None:
        multimodal = isinstance(model, IMAGE_MODELS)
        return JinjaChatEncoder(tokenizer, jinja, image_token_id, tokens_per_image, multimodal, image_layouts)
    eos = tokenizer.eos_id if tokenizer.eos_id is not None else decoder_of(model).config.eos_token_ids[0]
    return ChatEncoder(tokenizer, template_of(model), eos, image_token_id, tokens_per_image, image_layouts)


def with_template_stops(model: Model, config: GenerationConfig | None) -> GenerationConfig:
    """``config`` with the named template's stop strings when it names none itself (a Jinja template's
    turns end with the end-of-turn token the model emits)."""
    config = config or GenerationConfig()
    if config.stop or jinja_template_of(model) is not None:
        return config
    return dataclasses.replace(config, stop=template_of(model).stop)


def images_encoder(
    model: Model, inputs: dict[str, torch.Tensor], rows: Sequence[int]
) -> ChatEncoder | JinjaChatEncoder:
    """The chat encoder of a conversation holding the processed images ``rows`` of ``inputs``, in order: each image
    laid out for its own size or split, so images of different sizes in one conversation each get their own tokens."""
    if not rows:
        return chat_encoder(model, images=False)
    layouts = [layout for row in rows for layout in image_layouts_of(model, inputs, row)]
    sizes = {size_of(inputs, row) for row in rows}
    if layouts or len(sizes) == 1:
        return chat_encoder(model, next(iter(sizes)), image_layouts=layouts)
    counts = [[model.config.image_token_id] * model.image_tokens(size_of(inputs, row)) for row in rows]  # type: ignore[union-attr]
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
    tokenizer = tokenizer_of(model)
    if isinstance(model, IMAGE_MODELS):
        ids, mask, embeds, cache = start(model, prompts, inputs, config.max_new_tokens)
        options = {"attention_mask": mask, "inputs_embeds": embeds, "cache": cache}
        return generate_text(model.decoder, ids, tokenizer, config, **options)
    return generate_text(model, prompts, tokenizer, config)


def answer_images(
    model: ImageModel,
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
    if len(texts) != len(images):
        raise InputError(f"answer_images: {len(texts)} texts for {len(images)} images; expected one each")
    answers: list[str] = []
    for first in range(0, len(texts), batch_size):
        inputs = image_inputs(model, list(images[first : first + batch_size]))
        prompts = [
            chat_encoder(model, size_of(inputs, row), image_layouts=image_layouts_of(model, inputs, row))
            .encode([{"role": "user", "content": with_image(text)}], add_generation_prompt=True)
            .input_ids
            for row, text in enumerate(texts[first : first + batch_size])
        ]
        answers += _respond(model, prompts, inputs, config)
    return answers


def ask(model: Model, image: ImageSource | None, question: str, config: GenerationConfig | None = None) -> str:
    """The model's answer to ``question`` about ``image`` (None for a text-only question)."""
    check_generative(model)
    text = question if image is None else with_image(question)
    inputs = {} if image is None else image_inputs(model, [image])
    layouts = image_layouts_of(model, inputs)
    prompt = chat_encoder(model, size_of(inputs), images=image is not None, image_layouts=layouts).encode(
        [{"role": "user", "content": text}], add_generation_prompt=True
    )
    return _respond(model, [prompt.input_ids], inputs, config)[0]


@dataclass(frozen=True)
class _Picture:
    """One image of a chat, encoded once: its tokens (tokens, width), its ids in the prompt, its grid (M-RoPE)."""

    features: torch.Tensor
    ids: list[int]
    grid: torch.Tensor | None


class Chat:
    """A conversation, continued turn by turn with ``send``: about the chat's ``image`` (shown in its first turn),
    and about any image a turn brings.

    Each image is encoded once. Each turn encodes the whole conversation (so a Jinja template sees it whole, as it
    expects) and the decoder's cache, kept between turns, prefills only the ids after the longest prefix it
    already holds. ``history`` lists the turns as ``{"role", "content"}`` messages, ``<image>`` where an image was
    shown.
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
        self._pictures = [] if image is None else [self._picture(image)]
        self._kept = len(self._pictures)  # the chat's own image outlives ``reset``
        self.reset()

    def reset(self) -> None:
        """Forget the conversation and the turns' images (the chat's own image encoding is kept)."""
        self.history: list[dict[str, str]] = [] if self.system is None else [{"role": "system", "content": self.system}]
        del self._pictures[self._kept :]
        self._shown = 0  # pictures placed in the history so far
        self._cached: list[int] = []
        self._cache: KVCache | None = None

    def send(self, text: str, stream: bool = False, image: ImageSource | None = None) -> str | Iterator[str]:
        """The answer to ``text`` (about ``image`` too, shown before it), or with ``stream`` an iterator of its pieces
        as they are generated."""
        if image is not None:
            self._pictures.append(self._picture(image))
        pieces = self._turn(text)
        return pieces if stream else "".join(pieces)

    def _picture(self, image: ImageSource) -> _Picture:
        inputs = image_inputs(self.model, [image])
        model: ImageModel = self.model  # type: ignore[assignment]
        return _Picture(encode_images(model, inputs), image_ids_of(model, inputs), inputs.get("image_grid_thw"))

    def _turn(self, text: str) -> Iterator[str]:
        for _ in range(len(self._pictures) - self._shown):
            text = f"{IMAGE_TOKEN}\n{text}"
        self._shown = len(self._pictures)
        turn = {"role": "user", "content": text}
        layouts = [picture.ids for picture in self._pictures]
        encoder = chat_encoder(self.model, images=bool(layouts), image_layouts=layouts)
        ids = encoder.encode([*self.history, turn], add_generation_prompt=True).input_ids
        decoder = decoder_of(self.model)
        reuse = min(_common_prefix(self._cached, ids), len(ids) - 1)
        image_token = getattr(self.model.config, "image_token_id", None)
        if self._cache is not None and self._cache.shifted and image_token in self._cached[reuse:]:
            self._cache = None  # its positions were shifted for an image it would forget: start again
        if _differences_images(self.model) and image_token in ids[reuse:] and image_token in ids[:reuse]:
            self._cache = None  # a new image's difference needs the earlier images: embed them together
        if self._cache is None:
            self._cache, self._cached, reuse = decoder.new_cache(1, len(ids) + self.config.max_new_tokens), [], 0
        self._cache.trim(reuse)
        span, embeds = self._prefill(ids, reuse)
        generated: list[int] = []
        answer: list[str] = []
        self.history.append(turn)
        try:
            for piece in stream_text(
                decoder,
                span,
                tokenizer_of(self.model),
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

    def _prefill(self, ids: list[int], reuse: int) -> tuple[list[int], torch.Tensor | None]:
        """The ids after the cached ``reuse`` that the generation loop prefills, and their embeddings (the images'
        tokens spliced in); a model whose positions follow its images (``prefill``) writes all but the last itself."""
        span = ids[reuse:]
        if not isinstance(self.model, IMAGE_MODELS):
            return span, None
        token = self.model.config.image_token_id
        before, inside = ids[:reuse].count(token), span.count(token)
        counts = [0, *itertools.accumulate(picture.ids.count(token) for picture in self._pictures)]
        shown = [p for p, end in zip(self._pictures, counts[1:], strict=True) if before < end <= before + inside]
        features = torch.cat([p.features for p in shown]) if shown else None
        span_ids = torch.tensor([span], device=self.model.device)
        prefill = getattr(self.model, "prefill", None)
        if prefill is None:
            with torch.inference_mode():
                return span, self.model.embed(span_ids, features)
        grids = torch.cat([p.grid for p in shown]) if shown else None  # type: ignore[misc]
        prefill(span_ids, None, self._cache, image_features=features, image_grid_thw=grids)
        return span[-1:], None


def _differences_images(model: Any) -> bool:
    """Whether ``model`` turns a sequence's later images into differences from earlier ones
    (``VlmConfig.frame_delta``): a turn that adds one must re-embed the images before it, as training did."""
    return getattr(getattr(model, "config", None), "frame_delta", "none") != "none"


def _common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length
