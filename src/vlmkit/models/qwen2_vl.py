"""Qwen2-VL / Qwen2.5-VL: the Qwen vision tower's merged tokens in a Qwen2 decoder with M-RoPE positions.

The forward takes what transformers' ``Qwen2VLProcessor`` returns, by its names (``input_ids``,
``attention_mask``, ``pixel_values`` + ``image_grid_thw``, ``pixel_values_videos`` + ``video_grid_thw``,
``second_per_grid_ts``, ``mm_token_type_ids``), so ``model(**processor_outputs)`` works. The image (video) pad
tokens' embeddings are replaced, in order, by the tower's tokens of the images (videos), and the decoder
reads 3-D positions from ``vlmkit.models.mrope``. ``prefill`` writes a prompt into a cache with those positions,
then shifts the cache by each row's rope delta, so that every later token (a generated one, or a chat's next
turn, prefilled the same way) continues from the right position: the shared generation loop, ``vlmkit.tasks.chat``
and the server run this model as any other once its prompt is prefilled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from vlmkit.config.qwen2_vl import Qwen2VLConfig
from vlmkit.errors import InputError
from vlmkit.models.decoder import Decoder, answer_loss
from vlmkit.models.generation import GenerationConfig, generate, pad_left
from vlmkit.models.mrope import Grid, mrope_positions, token_types
from vlmkit.models.qwen_vision import QwenVisionTower
from vlmkit.models.vlm import VlmOutput
from vlmkit.nn.kv_cache import KVCache
from vlmkit.nn.rope import RotaryEmbedding

if TYPE_CHECKING:
    from vlmkit.processing.qwen2_vl import QwenImageProcessor
    from vlmkit.processing.text import TextTokenizer


def _grids(grid_thw: torch.Tensor | None) -> list[Grid]:
    return [] if grid_thw is None else [(int(t), int(h), int(w)) for t, h, w in grid_thw.tolist()]


class Qwen2VLModel(nn.Module):
    """``vision`` (a ``QwenVisionTower``) and ``decoder`` (a Qwen2 ``Decoder`` with M-RoPE); ``tokenizer`` and
    ``image_processor`` when loaded from a directory that has them."""

    def __init__(self, config: Qwen2VLConfig) -> None:
        super().__init__()
        self.config = config
        self.vision = QwenVisionTower(config.vision)
        self.decoder = Decoder(config.decoder, rope=RotaryEmbedding(config.decoder, config.mrope_section))
        self.tokenizer: TextTokenizer | None = None
        self.image_processor: QwenImageProcessor | None = None

    @property
    def device(self) -> torch.device:
        return self.decoder.device

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.dtype

    def image_tokens(self, image_size: tuple[int, int] | None = None) -> int:
        """Refused: an image's pad tokens follow its ``image_grid_thw``, known once the processor has run."""
        raise InputError(
            "a Qwen2-VL image keeps its own resolution: its pad tokens follow its image_grid_thw, so it is laid out "
            "from its processed inputs (vlmkit.tasks.image_prompts.image_layouts_of)"
        )

    def encode_images(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
        """The tower's merged tokens of every image in order, ``(tokens, decoder width)``, which ``embed`` and
        ``forward(image_features=...)`` take (a chat encodes each image once)."""
        return self.vision(pixel_values.to(self.device), image_grid_thw)

    def embed(
        self,
        input_ids: torch.Tensor,
        image_features: torch.Tensor | None = None,
        video_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decoder input embeddings with the image and video pad tokens' rows replaced by the features in order."""
        embeds = self.decoder.embed(input_ids)
        for name, token, features in (
            ("image", self.config.image_token_id, image_features),
            ("video", self.config.video_token_id, video_features),
        ):
            slots = input_ids == token
            found, given = int(slots.sum()), 0 if features is None else features.shape[0]
            if found != given:
                raise InputError(
                    f"the prompt holds {found} {name} pad tokens but the {name}s given fill {given}; expand each "
                    f"{name} to t * h * w / {self.config.vision.merge_size**2} tokens of its {name}_grid_thw"
                )
            if features is not None and found:
                embeds = embeds.masked_scatter(slots[..., None], features.to(embeds.dtype))
        return embeds

    def positions(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_grid_thw: torch.Tensor | None = None,
        video_grid_thw: torch.Tensor | None = None,
        second_per_grid_ts: torch.Tensor | Sequence[float] | None = None,
        mm_token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """M-RoPE positions (3, B, L) and rope deltas (B,) of the prompts (``vlmkit.models.mrope``)."""
        types = mm_token_type_ids
        if types is None:
            types = token_types(input_ids, self.config.image_token_id, self.config.video_token_id)
        intervals = None
        if self.config.tokens_per_second:
            seconds = [1.0] * len(_grids(video_grid_thw)) if second_per_grid_ts is None else second_per_grid_ts
            seconds = seconds.tolist() if isinstance(seconds, torch.Tensor) else seconds
            intervals = [self.config.tokens_per_second * float(s) for s in seconds]
        return mrope_positions(
            types,
            _grids(image_grid_thw),
            _grids(video_grid_thw),
            self.config.vision.merge_size,
            attention_mask,
            intervals,
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_grid_thw: torch.Tensor | None = None,
        second_per_grid_ts: torch.Tensor | Sequence[float] | None = None,
        mm_token_type_ids: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
        return_logits: bool = True,
    ) -> VlmOutput:
        """Logits, and the loss when ``labels`` (B, L) are given (-100 where not predicted).

        With ``cache`` the prompt is prefilled into it and the cache is shifted by the rope deltas, so a
        ``Decoding`` continues it. ``image_features`` (from ``encode_images``) stand for ``pixel_values``; the
        grids are still needed, for the positions. ``return_logits=False`` (training) skips the output head but at
        the labels.
        """
        images = image_features if image_features is not None else pixel_values
        for pixels, grid, name in ((images, image_grid_thw, "image"), (pixel_values_videos, video_grid_thw, "video")):
            if (pixels is None) != (grid is None):
                raise InputError(f"pass {name} pixels together with their {name}_grid_thw")
        if image_features is None and pixel_values is not None:
            images = self.vision(pixel_values, image_grid_thw)  # type: ignore[arg-type]
        videos = None if pixel_values_videos is None else self.vision(pixel_values_videos, video_grid_thw)  # type: ignore[arg-type]
        embeds = self.embed(input_ids, images, videos)
        positions, deltas = self.positions(
            input_ids, attention_mask, image_grid_thw, video_grid_thw, second_per_grid_ts, mm_token_type_ids
        )
        if cache is not None:
            positions = positions + cache.seen.to(positions.device)[None, :, None]
        hidden = self.decoder.hidden_states(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=positions.to(embeds.device),
            cache=cache,
            last_only=last_only,
        )
        if cache is not None:
            cache.shift(deltas)
        loss = None if labels is None else answer_loss(self.decoder, hidden, labels)
        return VlmOutput(self.decoder.head(hidden) if return_logits or labels is None else None, loss)

    def prefill(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, cache: KVCache, **inputs: Any
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Writes all but the last column of the (left-padded) prompts into ``cache`` with their M-RoPE positions,
        following what it holds (a chat's earlier turns), and shifts it by the rope deltas; returns the last
        column's ids and mask, which a ``Decoding`` on the cache then prefills as text.

        ``inputs`` are ``forward``'s image and video arguments by their Hugging Face names. The last column must
        be text, as every chat template's generation prompt ends.
        """
        last = input_ids[:, -1]
        if bool((last == self.config.image_token_id).any() | (last == self.config.video_token_id).any()):
            raise InputError("a prompt ends in an image or video token; end it with text (the assistant's turn)")
        if input_ids.shape[1] > 1:
            with torch.inference_mode():
                self(
                    input_ids[:, :-1],
                    None if attention_mask is None else attention_mask[:, :-1],
                    cache=cache,
                    last_only=True,
                    return_logits=False,
                    **{name: _on(value, self.device) for name, value in inputs.items()},
                )
        return input_ids[:, -1:], None if attention_mask is None else attention_mask[:, -1:]

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        config: GenerationConfig | None = None,
        **options: Any,
    ) -> list[list[int]]:
        """Generated ids per prompt (token lists with expanded pad tokens; images and videos in prompt order).

        ``options`` are ``forward``'s image and video arguments (``pixel_values``, ``image_grid_thw``,
        ``pixel_values_videos``, ``video_grid_thw``, ``second_per_grid_ts``), then those of
        ``vlmkit.models.generation.generate`` (``tokenizer`` for stop strings). The prompts are prefilled here
        (``prefill``) and the usual loop continues from the shifted cache.
        """
        config = config or GenerationConfig()
        inputs = {name: options.pop(name) for name in VISUAL_INPUTS if name in options}
        ids, mask = pad_left(prompts, self.config.decoder.pad_token_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        cache = self.decoder.new_cache(ids.shape[0], ids.shape[1] + config.max_new_tokens)
        ids, mask = self.prefill(ids, mask, cache, **inputs)
        return generate(self.decoder, ids, config, attention_mask=mask, cache=cache, **options)


VISUAL_INPUTS = (
    "pixel_values",
    "image_grid_thw",
    "image_features",
    "pixel_values_videos",
    "video_grid_thw",
    "second_per_grid_ts",
)


def _on(value: Any, device: torch.device) -> Any:
    """Pixels and features go to the model's device; the grids, read on the CPU, stay."""
    return value.to(device) if isinstance(value, torch.Tensor) and value.is_floating_point() else value
