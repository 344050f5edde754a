"""Images and a prompt turned into a generative model's inputs: the processor's outputs by their Hugging Face names,
the ids each image takes in a prompt, the images' tokens, and a batch's start of generation.

What an image becomes in a prompt follows its processor (``image_layouts_of``): a fixed count of image tokens, a
tiled image's count for its size (LLaVA-NeXT), a split image's tiles between marker tokens (Idefics3), a Qwen2-VL
image's pad tokens for its grid. A model whose rotary positions follow its images (Qwen2-VL's M-RoPE: a ``prefill``
method) writes its prompts into the cache itself, all but the last token; the shared generation loop continues from
there (``start``). ``tasks.chat`` (ask, Chat), serving and training all build their inputs here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional

from vlmkit.errors import InputError
from vlmkit.models import Decoder, Qwen2VLModel, VisionLanguageModel
from vlmkit.models.generation import pad_left
from vlmkit.nn.kv_cache import KVCache
from vlmkit.processing.image_splitting import SplitImagePreprocessor, image_prompt_ids
from vlmkit.processing.images import ImageSource
from vlmkit.processing.text import TextTokenizer

ImageModel = VisionLanguageModel | Qwen2VLModel
Model = ImageModel | Decoder
IMAGE_MODELS = (VisionLanguageModel, Qwen2VLModel)
IMAGE_ARGUMENTS = ("image_sizes", "image_grid_thw", "pixel_attention_mask")  # what encode_images takes besides pixels


def tokenizer_of(model: Model) -> TextTokenizer:
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise InputError("this model has no tokenizer; load it with vlmkit.load() from a directory that has one")
    return tokenizer


def image_inputs(model: Model, images: Sequence[ImageSource]) -> dict[str, torch.Tensor]:
    """The image processor's outputs by their Hugging Face names, ``pixel_values`` on the model's device, and what
    ``encode_images`` needs with them: ``image_sizes`` (LLaVA-NeXT's tiling), ``image_grid_thw`` (Qwen2-VL),
    ``pixel_attention_mask`` (Idefics3's splitting)."""
    if not isinstance(model, IMAGE_MODELS):
        raise InputError(f"{type(model).__name__} is a text-only model; it cannot take images")
    if model.image_processor is None:
        raise InputError("this model has no image processor; load it with vlmkit.load() or set model.image_processor")
    outputs = model.image_processor(list(images))
    outputs = outputs if isinstance(outputs, dict) else {"pixel_values": outputs}
    outputs["pixel_values"] = outputs["pixel_values"].to(model.device, model.dtype)
    return outputs


def pixels_of(model: Model, images: Sequence[ImageSource]) -> torch.Tensor:
    return image_inputs(model, images)["pixel_values"]


def joined_inputs(parts: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Several images' processed inputs (each from ``image_inputs``) as one batch's, as the processor gives a list of
    images: per-image crops ``(1, crops, ...)`` zero-padded to the most crops (a zero crop is padding, and so is a
    zero ``pixel_attention_mask``), everything else (Qwen2-VL's patches, sizes, grids) concatenated in order."""
    joined: dict[str, torch.Tensor] = {}
    for name in parts[0]:
        values = [part[name] for part in parts]
        if (name == "pixel_values" and values[0].dim() == 5) or name == "pixel_attention_mask":
            most = max(value.shape[1] for value in values)
            values = [_padded_crops(value, most) for value in values]
        joined[name] = torch.cat(values)
    return joined


def _padded_crops(value: torch.Tensor, crops: int) -> torch.Tensor:
    """``value`` (B, n, ...) with zero crops appended up to ``crops``."""
    return functional.pad(value, [0, 0] * (value.dim() - 2) + [0, crops - value.shape[1]])


def size_of(inputs: dict[str, torch.Tensor], index: int = 0) -> tuple[int, int] | None:
    """Image ``index``'s (height, width) when the processor reports sizes."""
    sizes = inputs.get("image_sizes")
    return None if sizes is None else (int(sizes[index, 0]), int(sizes[index, 1]))


def image_layouts_of(model: Model, inputs: dict[str, torch.Tensor], index: int = 0) -> list[list[int]]:
    """Image ``index``'s prompt ids when the processor splits images (it reports ``rows`` and ``cols``) or keeps
    their resolution (``image_grid_thw``: the pad token once per merged patch, what replaces the one a Qwen chat
    template writes between ``<|vision_start|>`` and ``<|vision_end|>``), else none."""
    if "image_grid_thw" in inputs:
        tokens = model.image_processor.tokens(inputs["image_grid_thw"][index].tolist())  # type: ignore[union-attr]
        return [[model.config.image_token_id] * tokens]  # type: ignore[union-attr]
    if "rows" not in inputs:
        return []
    rows, cols = int(inputs["rows"][index]), int(inputs["cols"][index])
    return [image_prompt_ids(tokenizer_of(model), rows, cols, model.config.tokens_per_image)]  # type: ignore[union-attr]


def unsplit_layout(model: VisionLanguageModel) -> list[list[int]]:
    """Every image's one layout when the processor does not split images (none otherwise: it varies)."""
    processor = model.image_processor
    if not isinstance(processor, SplitImagePreprocessor) or processor.splitting:
        return []
    return [image_prompt_ids(tokenizer_of(model), 0, 0, model.config.tokens_per_image)]


def lays_out_by_size(model: object) -> bool:
    """Whether an image's prompt tokens depend on the image (LLaVA-NeXT's tiling, Idefics3's splitting, Qwen2-VL's
    own resolution), so a conversation's prompt can only be encoded once its images are processed
    (``tasks.chat.images_encoder``)."""
    if isinstance(model, Qwen2VLModel):
        return True
    return isinstance(model, VisionLanguageModel) and bool(
        model.config.image_grid_pinpoints or model.config.image_splitting
    )


def image_ids_of(model: ImageModel, inputs: dict[str, torch.Tensor], index: int = 0) -> list[int]:
    """The ids image ``index`` of ``inputs`` takes in a prompt: its layout, else its count of image tokens."""
    layouts = image_layouts_of(model, inputs, index)
    return layouts[0] if layouts else [model.config.image_token_id] * model.image_tokens(size_of(inputs, index))


def encode_images(model: ImageModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Every image's tokens in prompt order, ``(tokens, decoder width)``: what replaces its image tokens."""
    extra = {name: inputs[name] for name in IMAGE_ARGUMENTS if name in inputs}
    with torch.inference_mode():
        features = model.encode_images(inputs["pixel_values"], **extra)
    return features.reshape(-1, features.shape[-1])


def start(
    model: Model, prompts: Sequence[Sequence[int]], inputs: dict[str, torch.Tensor], max_new_tokens: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, KVCache | None]:
    """Left-padded prompts as a ``Decoding`` takes them: ids, mask, input embeddings (the images spliced in), and the
    cache to continue, which a model whose positions follow its images (``prefill``) has filled with all but the
    last column (then the ids and mask are that column's)."""
    prefill = getattr(model, "prefill", None)
    if prefill is not None:
        ids, mask = pad_left(prompts, model.config.decoder.pad_token_id)  # type: ignore[union-attr]
        cache = model.decoder.new_cache(ids.shape[0], ids.shape[1] + max_new_tokens)  # type: ignore[union-attr]
        ids, mask = prefill(ids.to(model.device), mask.to(model.device), cache, **inputs)
        return ids, mask, None, cache
    if isinstance(model, VisionLanguageModel):
        return (*model.prepare(prompts, inputs.get("pixel_values"), inputs.get("image_sizes")), None)
    ids, mask = pad_left(prompts, model.config.pad_token_id)
    return ids.to(model.device), mask.to(model.device), None, None
