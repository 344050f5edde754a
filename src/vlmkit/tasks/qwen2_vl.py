"""Single-turn answers from a ``Qwen2VLModel``: the checkpoint's own chat template, images at their own resolution.

Each image's ``<|vision_start|><|image_pad|><|vision_end|>`` (what a Qwen chat template renders for an image part)
gets as many pad tokens as its grid has merged tokens, as ``Qwen2VLProcessor`` expands it, and the model
generates with its M-RoPE positions. ``vlmkit.tasks.chat.ask`` and ``answer_images`` come here for this model.
A video clip's sampled frames go in as one video (``<|video_pad|>``, temporal patches of two frames), not as
separate images; ``vlmkit.tasks.video.ask_frames`` comes here.
"""

from __future__ import annotations

from collections.abc import Sequence

from vlmkit.errors import InputError
from vlmkit.models.generation import GenerationConfig
from vlmkit.models.qwen2_vl import Qwen2VLModel
from vlmkit.processing.chat import with_image
from vlmkit.processing.images import ImageSource
from vlmkit.processing.jinja_chat import JinjaChatEncoder, JinjaChatTemplate
from vlmkit.processing.video import Frame


def _template(model: Qwen2VLModel) -> JinjaChatTemplate:
    template = getattr(model, "jinja_template", None)
    if model.tokenizer is None or template is None:
        raise InputError("a Qwen2-VL model needs its tokenizer and its checkpoint's chat template (load its directory)")
    return template


def _encoder(model: Qwen2VLModel, layouts: list[list[int]]) -> JinjaChatEncoder:
    return JinjaChatEncoder(model.tokenizer, _template(model), model.config.image_token_id, 0, True, layouts)  # type: ignore[arg-type]


def answer_images(
    model: Qwen2VLModel,
    texts: Sequence[str],
    images: Sequence[ImageSource | None],
    config: GenerationConfig | None = None,
    batch_size: int = 8,
) -> list[str]:
    """One answer per (text, image) (an image may be None: a text-only turn), ``batch_size`` rows per call."""
    if len(texts) != len(images):
        raise InputError(f"answer_images: {len(texts)} texts for {len(images)} images; expected one each")
    if model.image_processor is None:
        raise InputError("this model has no image processor; load it with vlmkit.load() or set model.image_processor")
    answers: list[str] = []
    for start in range(0, len(texts), batch_size):
        rows = list(zip(texts[start : start + batch_size], images[start : start + batch_size], strict=True))
        pictures = [image for _, image in rows if image is not None]
        inputs = model.image_processor(pictures) if pictures else {}
        grids = iter(inputs["image_grid_thw"].tolist() if pictures else [])
        prompts = []
        for text, image in rows:
            layouts = (
                [] if image is None else [[model.config.image_token_id] * model.image_processor.tokens(next(grids))]
            )
            message = {"role": "user", "content": text if image is None else with_image(text)}
            prompts.append(_encoder(model, layouts).encode([message], add_generation_prompt=True).input_ids)
        outputs = model.generate(
            prompts,
            config,
            pixel_values=inputs.get("pixel_values"),
            image_grid_thw=inputs.get("image_grid_thw"),
            tokenizer=model.tokenizer,
        )
        answers += [model.tokenizer.decode(ids) for ids in outputs]  # type: ignore[union-attr]
    return answers


def ask(model: Qwen2VLModel, image: ImageSource | None, question: str, config: GenerationConfig | None = None) -> str:
    """The model's answer to ``question`` about ``image`` (None for a text-only question)."""
    return answer_images(model, [question], [image], config)[0]


def ask_frames(
    model: Qwen2VLModel, frames: Sequence[Frame], question: str, config: GenerationConfig | None = None
) -> str:
    """The model's answer to ``question`` about a clip's decoded ``frames`` (in time order), read as one video.

    For Qwen2.5-VL, ``second_per_grid_ts`` is the time one temporal patch spans: ``temporal_patch_size`` frames
    at the frames' mean spacing (1 s for a single frame), as transformers' processor derives it from the fps."""
    if not frames:
        raise InputError("ask_frames: a clip needs at least one frame")
    processor = model.image_processor
    if processor is None:
        raise InputError("this model has no image processor; load it with vlmkit.load() or set model.image_processor")
    inputs = processor.videos([[frame.image for frame in frames]])
    spacing = (frames[-1].time - frames[0].time) / (len(frames) - 1) if len(frames) > 1 else 1.0
    seconds = [processor.temporal_patch_size * spacing]
    message = {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}
    text = _template(model).render([message], True)
    tokenizer = model.tokenizer.tokenizer  # type: ignore[union-attr]
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    tokens = model.config
    ids = processor.expand(ids, tokens.image_token_id, None, tokens.video_token_id, inputs["video_grid_thw"])
    out = model.generate([ids], config, **inputs, second_per_grid_ts=seconds, tokenizer=model.tokenizer)[0]
    return model.tokenizer.decode(out)  # type: ignore[union-attr]
