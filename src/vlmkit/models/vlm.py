"""Generative vision-language model: vision tower -> projector -> decoder (the LLaVA and PaliGemma layouts).

Prompts carry ``image_tokens(size)`` copies of the image token per image (the chat template or processor
expands each ``<image>``); their input embeddings are replaced, in order, by the projected vision tokens
of the images, and the decoder runs on the result as on any text. The count is fixed
(``tokens_per_image``) unless the config tiles images (LLaVA-NeXT's ``image_grid_pinpoints``), where it
follows each image's size and the image's features are its base view's tokens, then the packed tile map
with an ``image_newline`` after every row (``_pack_tiles``; ``modeling_llava_next.py``'s
``pack_image_features`` in transformers 5.24). With ``image_splitting`` (Idefics3 / SmolVLM) an image is
several tower-sized crops, each ``tokens_per_image`` tokens, and all-zero crops are padding
(``get_image_features`` in ``modeling_idefics3.py``). ``vision``, ``projector`` and
``decoder`` are plain submodules, so a training recipe freezes a part with ``requires_grad_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from vlmkit.config import ProjectorConfig, VlmConfig
from vlmkit.errors import ConfigError, InputError
from vlmkit.models.decoder import Decoder, answer_blocks, answer_loss
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.models.frame_delta import frame_deltas
from vlmkit.models.generation import GenerationConfig, generate, pad_left
from vlmkit.models.location_code import add_location_code
from vlmkit.models.projector import Projector
from vlmkit.models.vision import VisionTransformer
from vlmkit.nn.kv_cache import KVCache
from vlmkit.processing.anyres import anyres_token_count, tile_grid, unpadded_span
from vlmkit.processing.chat import IMAGE_TOKEN

if TYPE_CHECKING:
    from vlmkit.processing.images import ImagePreprocessor
    from vlmkit.processing.text import TextTokenizer


@dataclass
class VlmOutput:
    logits: torch.Tensor | None  # (B, L, vocab), or (B, 1, vocab) with last_only; None unless return_logits
    loss: torch.Tensor | None = None  # mean next-token cross-entropy where labels != -100


VisionTower = VisionTransformer | EfficientNet


class VisionLanguageModel(nn.Module):
    """``vision`` (a ViT or a CNN), ``projector``, ``decoder``; ``tokenizer``/``image_processor`` when loaded."""

    def __init__(self, config: VlmConfig, vision: VisionTower | None = None, decoder: Decoder | None = None) -> None:
        super().__init__()
        self.config = config
        if vision is None:
            vision = EfficientNet(config.vision) if config.convolutional else VisionTransformer(config.vision)  # type: ignore[arg-type]
        self.vision = vision
        self.projector = Projector(config.projector, config.vision_width, config.decoder.width)
        self.decoder = decoder if decoder is not None else Decoder(config.decoder)
        # Ends each row of a tiled image's feature map (LLaVA-NeXT); absent without tiling.
        self.image_newline = nn.Parameter(torch.zeros(config.decoder.width)) if config.image_grid_pinpoints else None
        self.tokenizer: TextTokenizer | None = None
        self.image_processor: ImagePreprocessor | None = None

    @classmethod
    def from_parts(
        cls,
        vision: VisionTower,
        decoder: Decoder,
        projector: ProjectorConfig | None = None,
        *,
        image_token_id: int | None = None,
        tokenizer: TextTokenizer | None = None,
        image_processor: ImagePreprocessor | None = None,
        chat_template: str = "vlmkit",
    ) -> VisionLanguageModel:
        """A VLM around an existing vision tower (e.g. a trained ``DualEncoder.vision``) and decoder.

        The parts are used as they are (not copied); only the projector is new. ``image_token_id``
        defaults to the id of ``<image>`` in ``tokenizer`` (or the decoder's tokenizer).
        """
        tokenizer = tokenizer if tokenizer is not None else decoder.tokenizer
        if image_token_id is None:
            found = tokenizer.tokenizer.token_to_id(IMAGE_TOKEN) if tokenizer is not None else None
            if found is None:
                raise ConfigError(f"from_parts: pass image_token_id, or a tokenizer that has an {IMAGE_TOKEN} token")
            image_token_id = found
        config = VlmConfig(
            vision=vision.config,
            projector=projector or ProjectorConfig(),
            decoder=decoder.config,
            image_token_id=image_token_id,
            chat_template=chat_template,
        )
        config.validate("VisionLanguageModel.from_parts")
        model = cls(config, vision=vision, decoder=decoder)
        model.projector.to(device=decoder.device, dtype=decoder.dtype)
        model.tokenizer = tokenizer
        model.image_processor = image_processor
        return model

    @property
    def tokens_per_image(self) -> int:
        return self.image_tokens()

    def image_tokens(self, image_size: tuple[int, int] | None = None) -> int:
        """Image tokens one image takes in a prompt: the fixed count, or with tiling the count for an image
        of ``image_size`` (height, width), which it then needs."""
        if self.config.image_splitting:
            raise InputError(
                "this model splits images into tiles (Idefics3 / SmolVLM): an image's tokens are laid out by its "
                "processor (vlmkit.processing.image_splitting), not counted from its size"
            )
        if not self.config.image_grid_pinpoints:
            return self.config.tokens_per_image
        if image_size is None:
            raise InputError(
                "this model tiles images (image_grid_pinpoints), so an image's token count depends on its size; "
                "give the image's (height, width)"
            )
        height, width = image_size
        vision = self.config.vision
        return anyres_token_count(
            height,
            width,
            self.config.image_grid_pinpoints,
            vision.image_size,
            vision.grid,
            self.config.tokens_per_image,
        )

    @property
    def device(self) -> torch.device:
        return self.decoder.device

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.dtype

    def vision_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """The tower's tokens that feed the projector, ``(N, T, vision width)``, for pixels ``(N, C, H, W)``.

        A ViT gives the configured hidden state; a CNN the configured feature map, one token per cell in
        row-major order (so pixel shuffle merges spatial neighbours as it does for patches).
        """
        settings = self.config.projector
        if isinstance(self.vision, EfficientNet):
            return self.vision.feature_map(pixels, settings.vision_layer).flatten(2).transpose(1, 2)
        tokens = self.vision.hidden_states(pixels)[settings.vision_layer]
        if settings.vision_norm:
            tokens = self.vision.post_norm(tokens)
        if self.vision.config.class_token and settings.drop_class_token:
            tokens = tokens[:, 1:]
        return tokens

    def encode_images(
        self,
        pixels: torch.Tensor,
        image_sizes: torch.Tensor | None = None,
        pixel_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Projected image tokens ``(N, tokens_per_image, decoder width)`` for pixels ``(N, C, H, W)``.

        With tiling, ``pixels`` are the processor's ``(N, 1 + tiles, C, H, W)`` (trailing zero crops are
        padding) or those crops concatenated ``(crops, C, H, W)``, and ``image_sizes`` ``(N, 2)`` give each
        image's (height, width); the result is every image's tokens in order, ``(tokens, decoder width)``.
        With image splitting, see ``_encode_crops``.
        """
        if self.config.image_splitting:
            return self._encode_crops(pixels, pixel_attention_mask)
        if not self.config.image_grid_pinpoints:
            return self.projector(self.vision_tokens(pixels))
        if image_sizes is None:
            raise InputError("this model tiles images (image_grid_pinpoints): pass image_sizes with pixel_values")
        sizes = [(int(h), int(w)) for h, w in image_sizes.tolist()]
        tile = self.config.vision.image_size
        crops = [
            1 + rows * cols
            for rows, cols in (tile_grid(h, w, self.config.image_grid_pinpoints, tile) for h, w in sizes)
        ]
        if pixels.dim() == 5:
            if pixels.shape[0] != len(sizes) or pixels.shape[1] < max(crops):
                raise InputError(
                    f"pixel_values {tuple(pixels.shape)}: expected {len(sizes)} images of up to {max(crops)} crops"
                )
            pixels = torch.cat([views[:count] for views, count in zip(pixels, crops, strict=True)])
        if pixels.shape[0] != sum(crops):
            raise InputError(f"pixel_values hold {pixels.shape[0]} crops but the image_sizes need {sum(crops)}")
        features = self.projector(self.vision_tokens(pixels)).split(crops)
        return torch.cat([self._pack_tiles(f, size) for f, size in zip(features, sizes, strict=True)])

    def _encode_crops(self, pixels: torch.Tensor, pixel_attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Every real crop's tokens in order, ``(tokens, decoder width)``, for the processor's ``(B, crops, C, S, S)``
        (a crop whose values are all 0 is padding, as in transformers) or the real crops ``(crops, C, S, S)``.
        ``pixel_attention_mask`` (B, crops, S, S) may only mark whole crops: a partly padded crop would need the
        tower's attention mask and fractional positions, which vlmkit's ViT does not have."""
        if pixels.dim() == 5:
            crops = pixels.flatten(0, 1)
            real = crops.flatten(1).ne(0).any(1)
            if pixel_attention_mask is not None and not pixel_attention_mask.flatten(0, 1)[real].bool().all():
                raise InputError("pixel_attention_mask: a crop is partly padding; only whole crops are supported")
            pixels = crops[real]
        side = self.config.vision.image_size
        if pixels.shape[-2:] != (side, side):
            raise InputError(
                f"crops of {pixels.shape[-2]}x{pixels.shape[-1]} px, but the tower reads {side} px: the processor's "
                "max_image_size must equal the tower's image_size"
            )
        return self.projector(self.vision_tokens(pixels)).flatten(0, 1)

    def _pack_tiles(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """One image's ``(1 + tiles, grid^2, D)`` features as its token sequence: the base view's tokens, then
        the tiles' map (rows of tiles, each ``grid`` x ``grid``) cropped to the image, a newline per row."""
        grid, width = self.config.vision.grid, features.shape[-1]
        rows, cols = tile_grid(*size, self.config.image_grid_pinpoints, self.config.vision.image_size)
        tiles = features[1:].view(rows, cols, grid, grid, width).permute(0, 2, 1, 3, 4)
        tiles = tiles.reshape(rows * grid, cols * grid, width)
        kept_rows, kept_cols = unpadded_span(*size, rows * grid, cols * grid)
        tiles = tiles[kept_rows, kept_cols]
        newline = self.image_newline.to(tiles.dtype).expand(tiles.shape[0], 1, width)  # type: ignore[union-attr]
        return torch.cat([features[0], torch.cat([tiles, newline], dim=1).reshape(-1, width)])

    def embed(self, input_ids: torch.Tensor, image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder input embeddings with the image tokens' rows replaced by ``image_features`` in order."""
        embeds = self.decoder.embed(input_ids)
        slots = input_ids == self.config.image_token_id
        found = int(slots.sum())
        images = 0 if image_features is None else image_features.shape[0]
        if image_features is not None and image_features.dim() == 2:  # tiled images' tokens, concatenated
            if found != images:
                how = (
                    "lay out each image as its processor does (image_prompt_ids of its rows and cols)"
                    if self.config.image_splitting
                    else "expand each <image> to image_tokens((height, width)) of its image"
                )
                raise InputError(f"the prompt holds {found} image tokens but the images given fill {images}; {how}")
        elif found != images * self.config.tokens_per_image:
            each = self.config.tokens_per_image
            raise InputError(
                f"the prompt holds {found} image tokens but {images} image(s) were given, which need "
                f"{images * each} ({each} each); give one image per <image>"
            )
        if image_features is None or not found:
            return embeds
        if self.config.frame_delta != "none":  # a clip's later frames as what changed; one place for every path
            each, shape = self.config.tokens_per_image, image_features.shape  # (N, T, D) or a chat's (N * T, D)
            frames = image_features.reshape(-1, each, shape[-1])
            image_features = frame_deltas(frames, slots.sum(1) // each, self.config.frame_delta).reshape(shape)
        if self.config.location_code_token is not None:
            image_features = add_location_code(
                image_features,
                self.decoder.embed.weight,
                self.config.location_code_token,
                self.config.tokens_per_image,
                self.config.location_code_column_scale,
            )
        return embeds.masked_scatter(slots[..., None], image_features.to(embeds.dtype))

    def forward(
        self,
        input_ids: torch.Tensor,
        pixels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        pixel_values: torch.Tensor | None = None,
        image_sizes: torch.Tensor | None = None,
        pixel_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        vision_tokens: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
        return_logits: bool = True,
    ) -> VlmOutput:
        """Logits, and the loss when ``labels`` (B, L) are given (-100 where not predicted).

        ``pixels`` (N, C, H, W; or by its Hugging Face name ``pixel_values``) hold the images of the whole
        batch in order of appearance; a tiling model takes the processor's ``(N, 1 + tiles, C, H, W)`` with
        ``image_sizes`` (N, 2), as LLaVA-NeXT's processor gives them (see ``encode_images``); a splitting model
        takes Idefics3's ``(B, crops, C, S, S)`` with ``pixel_attention_mask``.
        Instead, ``image_features`` (from ``encode_images``) reuse a whole encoding, and ``vision_tokens``
        (from ``vision_tokens``) reuse a frozen tower's output while the projector still trains.
        ``labels`` also give a prefix-LM decoder its attention blocks (``answer_blocks``), so
        teacher-forced logits never see the answer, unless ``token_type_ids`` (B, L) give them as the
        PaliGemma processor does (0 on the prefix, read bidirectionally; 1 on the suffix, read causally).
        ``return_logits=False`` (training) skips the output head everywhere but at the labels.
        """
        if pixel_values is not None:
            if pixels is not None:
                raise InputError("pass the images once: as pixels or as pixel_values, not both")
            pixels = pixel_values
        if vision_tokens is not None and image_features is None:
            image_features = self.projector(vision_tokens.to(self.projector.fc1.weight.dtype))
        if pixels is not None and image_features is None:
            image_features = self.encode_images(pixels, image_sizes, pixel_attention_mask)
        embeds = self.embed(input_ids, image_features)
        hidden = self.decoder.hidden_states(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            cache=cache,
            segments=_segments(token_type_ids, labels),  # read by a prefix-LM only
            last_only=last_only,
        )
        loss = None if labels is None else answer_loss(self.decoder, hidden, labels)
        return VlmOutput(self.decoder.head(hidden) if return_logits or labels is None else None, loss)

    def prepare(
        self,
        prompts: Sequence[Sequence[int]],
        pixels: torch.Tensor | None = None,
        image_sizes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Left-padded ids, their mask, and input embeddings with the images spliced in, for generation."""
        ids, mask = pad_left(prompts, self.config.decoder.pad_token_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            features = None if pixels is None else self.encode_images(pixels.to(self.device), image_sizes)
            return ids, mask, self.embed(ids, features)

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        pixels: torch.Tensor | None = None,
        config: GenerationConfig | None = None,
        token_type_ids: Sequence[Sequence[int]] | None = None,
        image_sizes: torch.Tensor | None = None,
        **options: Any,
    ) -> list[list[int]]:
        """Generated ids per prompt (token lists with expanded image tokens); images in prompt order.

        ``token_type_ids`` (one list per prompt, as PaliGemma's processor gives them) let a prefix-LM's
        prompt end in a suffix already begun, read causally; without them the prompt is one block.
        ``image_sizes`` (N, 2) come with a tiling model's pixels (see ``encode_images``).
        ``options`` go to ``vlmkit.models.generation.generate`` (``tokenizer`` for stop strings).
        """
        ids, mask, embeds = self.prepare(prompts, pixels, image_sizes)
        segments = None
        if token_type_ids is not None:
            if [len(t) for t in token_type_ids] != [len(p) for p in prompts]:
                raise InputError("token_type_ids: expected one list per prompt, as long as the prompt")
            segments = _segments(pad_left(token_type_ids, 0)[0].to(self.device), None)
        return generate(
            self.decoder, ids, config, attention_mask=mask, inputs_embeds=embeds, segments=segments, **options
        )


def _segments(token_type_ids: torch.Tensor | None, labels: torch.Tensor | None) -> torch.Tensor | None:
    """A prefix-LM's attention blocks: from PaliGemma's token types (the prefix one block, each suffix
    token its own, so the suffix is causal), else from training labels (``answer_blocks``), else None."""
    if token_type_ids is not None:
        return token_type_ids.long().cumsum(-1)
    return None if labels is None else answer_blocks(labels)
