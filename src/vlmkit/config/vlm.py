"""The generative side: a Llama-family decoder (Gemma by field values), and the VLM joining it to a vision
tower by a projector."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from vlmkit.config.base import Activation, ConfigBase, _layers, _positive, _size
from vlmkit.config.encoders import EfficientNetConfig, VisionConfig
from vlmkit.errors import ConfigError


@dataclass
class DecoderConfig(ConfigBase):
    """A language model of the Llama family (Llama, SmolLM2, Mistral, Qwen2 by field values), or a BERT
    turned into one (BLIP initialises its text decoder from BERT the same way).

    Fields:
        vocab_size: rows of the token embedding (and of the output head).
        width: hidden size of the residual stream.
        layers: number of transformer blocks.
        heads: query heads per attention layer.
        kv_heads: key/value heads; fewer than ``heads`` is grouped-query attention (GQA).
        head_dim: size of each head; ``None`` means ``width // heads`` (a few checkpoints differ).
        mlp_dim: hidden size of the gated (SwiGLU) MLP.
        act: activation of the MLP's gate ("silu" for SwiGLU).
        norm_eps: epsilon of every RMSNorm.
        max_positions: longest sequence (prompt + generated) the model accepts.
        rope_theta: base wavelength of the rotary embedding (10000 for Llama 2, 100000 for SmolLM2).
        rope_scaling: how rotary frequencies are stretched for longer contexts: "none", "linear"
            (positions divided by ``rope_factor``) or "llama3" (low frequencies divided by
            ``rope_factor``, high ones kept, a smooth ramp between; see ``vlmkit.nn.rope``).
        rope_factor: the stretch factor of "linear" and "llama3" scaling.
        rope_low_freq_factor, rope_high_freq_factor, rope_original_max_positions: the "llama3"
            ramp: wavelengths longer than ``original / low`` are scaled, shorter than
            ``original / high`` kept.
        qkv_bias: biases on the query/key/value projection (Qwen2: true).
        out_bias: bias on the attention output projection (Llama's ``attention_bias`` sets both).
        mlp_bias: biases on the MLP projections.
        tie_embeddings: the output head reuses the token embedding matrix (SmolLM2: true).
        bos_token_id: id a prompt starts with, or None.
        eos_token_ids: ids that end generation (several for chat models with end-of-turn tokens).
        pad_token_id: id used to fill left padding during batched generation.
        family: "llama" (pre-norm RMSNorm blocks, rotary positions, gated MLP) or "bert": learned
            absolute positions (``max_positions`` rows, ``rope_*`` unused), token-type row 0 added and a
            LayerNorm on the embeddings, post-norm LayerNorm blocks with a plain MLP and biases
            (``qkv_bias``/``out_bias``/``mlp_bias`` must be true), and BERT's prediction-head
            transform (dense, ``act``, LayerNorm) before the output, which has a bias.
        attention: "causal", or "prefix" (the prefix-LM of PaliGemma): a prompt is read
            bidirectionally, answers causally. In training a new block starts at each labelled token
            and at the first prompt token after one; in generation each prefill is one block.
        type_vocab_size: rows of the token-type embedding ("bert"; only row 0 is used).
        norm: the RMSNorm flavour: "rms" (Llama: ``weight * x_hat``, ``x_hat`` cast back to the input dtype
            first; weights start at one) or "rms_unit_offset" (Gemma: ``x_hat * (1 + weight)``, all in float32
            and cast after; weights start at zero).
        embed_scale: token embeddings are multiplied by ``sqrt(width)``, the factor rounded to the weight
            dtype first (Gemma). Embeddings spliced in by a caller (a VLM's image features) are not scaled.
        position_offset: position of the first token (PaliGemma: 1); explicit ``position_ids`` are used as
            given. Rotary attention depends only on distances, so the offset changes float rounding alone,
            which it keeps as transformers has it.

    Gemma is the "llama" family with ``norm="rms_unit_offset"``, ``embed_scale=True``, ``act="gelu_tanh"``
    (GeGLU), its own ``head_dim`` and tied embeddings.
    """

    vocab_size: int = 32000
    width: int = 576
    layers: int = 30
    heads: int = 9
    kv_heads: int = 3
    head_dim: int | None = None
    mlp_dim: int = 1536
    act: Activation = "silu"
    norm_eps: float = 1e-5
    max_positions: int = 2048
    rope_theta: float = 10000.0
    rope_scaling: Literal["none", "linear", "llama3"] = "none"
    rope_factor: float = 1.0
    rope_low_freq_factor: float = 1.0
    rope_high_freq_factor: float = 4.0
    rope_original_max_positions: int = 8192
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    tie_embeddings: bool = True
    bos_token_id: int | None = 1
    eos_token_ids: tuple[int, ...] = (2,)
    pad_token_id: int = 0
    family: Literal["llama", "bert"] = "llama"
    attention: Literal["causal", "prefix"] = "causal"
    type_vocab_size: int = 0
    norm: Literal["rms", "rms_unit_offset"] = "rms"
    embed_scale: bool = False
    position_offset: int = 0

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.width // self.heads

    def parameter_count(self) -> int:
        """About how many parameters the decoder has (embeddings, head, blocks): for size checks."""
        w, d = self.width, self.dim_per_head
        attention = w * d * (2 * self.heads + 2 * self.kv_heads)
        mlp = (3 if self.family == "llama" else 2) * w * self.mlp_dim
        positions = self.max_positions * w if self.family == "bert" else 0
        return self.vocab_size * w * (1 if self.tie_embeddings else 2) + positions + self.layers * (attention + mlp)

    def validate(self, where: str) -> None:
        _positive(
            where,
            vocab_size=self.vocab_size,
            width=self.width,
            layers=self.layers,
            heads=self.heads,
            kv_heads=self.kv_heads,
            mlp_dim=self.mlp_dim,
            norm_eps=self.norm_eps,
            max_positions=self.max_positions,
            rope_theta=self.rope_theta,
            rope_factor=self.rope_factor,
            rope_low_freq_factor=self.rope_low_freq_factor,
            rope_high_freq_factor=self.rope_high_freq_factor,
            rope_original_max_positions=self.rope_original_max_positions,
        )
        if self.head_dim is not None:
            _positive(where, head_dim=self.head_dim)
        if self.position_offset < 0:
            raise ConfigError(f"{where}.position_offset: must be >= 0, got {self.position_offset}")
        if self.rope_scaling == "llama3" and self.rope_high_freq_factor <= self.rope_low_freq_factor:
            raise ConfigError(
                f"{where}.rope_high_freq_factor: must exceed rope_low_freq_factor ({self.rope_low_freq_factor}) "
                f"for llama3 scaling, got {self.rope_high_freq_factor}"
            )
        _layers(where, layers=self.layers)
        if self.heads % self.kv_heads:
            raise ConfigError(f"{where}: heads {self.heads} is not a multiple of kv_heads {self.kv_heads}")
        if self.head_dim is None and self.width % self.heads:
            raise ConfigError(f"{where}: width {self.width} is not a multiple of heads {self.heads}")
        if self.family == "llama" and self.dim_per_head % 2:
            raise ConfigError(f"{where}: head size {self.dim_per_head} must be even for rotary embeddings")
        if self.family == "bert":
            if self.kv_heads != self.heads or not (self.qkv_bias and self.out_bias and self.mlp_bias):
                raise ConfigError(f"{where}: a bert-family decoder has kv_heads == heads and every bias set")
            if self.type_vocab_size < 1:
                raise ConfigError(f"{where}.type_vocab_size: a bert-family decoder needs at least 1")
        for name in ("bos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ConfigError(f"{where}.{name}: {value} is not below vocab_size {self.vocab_size}")
        if not self.eos_token_ids or not all(0 <= i < self.vocab_size for i in self.eos_token_ids):
            raise ConfigError(f"{where}.eos_token_ids: expected ids below vocab_size, got {self.eos_token_ids}")
        _size(
            where,
            self.parameter_count(),
            vocab_size=self.vocab_size,
            width=self.width,
            layers=self.layers,
            heads=self.heads,
            head_dim=self.dim_per_head,
            mlp_dim=self.mlp_dim,
        )


@dataclass
class ProjectorConfig(ConfigBase):
    """How vision tokens become decoder input embeddings (LLaVA's connector).

    Fields:
        kind: "linear" (one matrix, LLaVA 1.0) or "mlp" (linear, activation, linear: LLaVA 1.5's
            ``mlp2x_gelu``).
        act: activation between the two layers of "mlp".
        bias: biases on the projector's linear layers.
        vision_layer: which entry of ``VisionTransformer.hidden_states`` feeds the projector: -1 is
            the last block's output, -2 (LLaVA's default) the penultimate one. Taken before the
            tower's post-norm unless ``vision_norm``. For a convolutional tower it picks a feature map
            (stem, one per stage, head; -1 the head's), one token per cell: an earlier, finer map keeps
            each object's colour and shape in the cells it covers, which the head's 7x7 map blurs.
        vision_norm: apply the vision tower's post-norm to the selected tokens (SmolVLM-style
            towers whose last layer is used post-normed). Does not apply to a convolutional tower,
            nor does the next field.
        drop_class_token: drop the class token, keeping only patch tokens (LLaVA's "default"
            ``vision_feature_select_strategy``; "full" keeps it). Ignored for towers without one.
        pixel_shuffle: token reduction factor r: each r x r block of neighbouring patch tokens
            becomes one token with r*r times the features (Idefics3 / SmolVLM), so an image costs
            r*r times fewer decoder positions. 1 disables it; needs the class token dropped.
    """

    kind: Literal["linear", "mlp"] = "mlp"
    act: Activation = "gelu"
    bias: bool = True
    vision_layer: int = -2
    vision_norm: bool = False
    drop_class_token: bool = True
    pixel_shuffle: int = 1

    def validate(self, where: str) -> None:
        _positive(where, pixel_shuffle=self.pixel_shuffle)


def token_grid(vision: VisionConfig | EfficientNetConfig, vision_layer: int) -> int:
    """Side of the square grid of tokens that output ``vision_layer`` of a tower gives, before pixel shuffle:
    a ViT's patch grid whatever the block, a CNN's chosen feature map."""
    if isinstance(vision, EfficientNetConfig):
        return vision.feature_shape(vision_layer)[1]
    return vision.grid


@dataclass
class VlmConfig(ConfigBase):
    """A generative vision-language model: vision tower -> projector -> decoder (LLaVA layout).

    Fields:
        vision: the image encoder: a ViT (typically the vision tower of a CLIP/SigLIP model), or an
            EfficientNet-Lite without its classifier (an ImageNet CNN whose final feature map gives
            one image token per cell).
        projector: the connector from vision tokens to decoder embeddings.
        decoder: the causal language model.
        image_token_id: the token id of the ``<image>`` placeholder. Prompts hold
            ``tokens_per_image`` copies of it per image (``vlmkit.processing.chat`` expands each
            ``<image>`` in the text); their embeddings are replaced by the projected image tokens.
        chat_template: name of the prompt format in ``vlmkit.processing.chat.TEMPLATES``
            ("vlmkit" for models trained with vlmkit, "llava" for LLaVA 1.5 checkpoints).
        image_grid_pinpoints: LLaVA-NeXT's "anyres" tiling when not empty: the (height, width) resolutions,
            multiples of the tower's ``image_size``, one of which each image is tiled at
            (``vlmkit.processing.anyres``). The tower then reads a base view plus the tiles, the tile
            features are packed into one map cropped to the image, and a learned ``image_newline`` ends
            each of its rows, so an image's token count depends on its size (``image_tokens``). Empty:
            one view, ``tokens_per_image`` tokens.
        image_splitting: Idefics3 / SmolVLM: an image arrives as tower-sized crops (tiles and a global view,
            ``vlmkit.processing.image_splitting``), ``pixel_values`` (B, crops, 3, S, S) with all-zero crops as
            padding, each crop ``tokens_per_image`` tokens; the processor lays those out between marker
            tokens, so the prompt's layout comes from it, not from ``image_tokens``.
        location_code_token: the id of ``<loc0000>`` (the 1024 location tokens follow it in order) when each
            image token carries a location code: the decoder's embeddings of the location tokens of its
            grid cell's centre, row and column, are added to it (``models.location_code``). None: no code.
            Needs one square grid of tokens per image (no tiling, splitting or class token).
        location_code_column_scale: the weight of the column's embedding in that code. At 1 the code of cell
            (r, c) equals that of its mirror (c, r); another value tells them apart.
        frame_delta: "none", or how a sequence's images after its first reach the decoder when they are a
            clip's frames: each cell's projected features minus those of the previous image ("previous") or of
            the sequence's first ("first"), so static cells cancel (``models.frame_delta``). Needs a fixed
            token count per image (no tiling or splitting).
    """

    vision: VisionConfig | EfficientNetConfig = field(default_factory=VisionConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    image_token_id: int = 32000
    chat_template: str = "vlmkit"
    image_grid_pinpoints: tuple[tuple[int, int], ...] = ()
    image_splitting: bool = False
    location_code_token: int | None = None
    location_code_column_scale: float = 1.0
    frame_delta: Literal["none", "previous", "first"] = "none"

    @property
    def convolutional(self) -> bool:
        return isinstance(self.vision, EfficientNetConfig)

    @property
    def vision_width(self) -> int:
        """Features per vision token, before the projector."""
        if isinstance(self.vision, EfficientNetConfig):
            return self.vision.feature_shape(self.projector.vision_layer)[0]
        return self.vision.width

    @property
    def vision_grid(self) -> int:
        """Side of the square grid of vision tokens, before pixel shuffle."""
        return token_grid(self.vision, self.projector.vision_layer)

    @property
    def keeps_class_token(self) -> bool:
        return isinstance(self.vision, VisionConfig) and self.vision.class_token and not self.projector.drop_class_token

    @property
    def tokens_per_image(self) -> int:
        return (self.vision_grid**2 + int(self.keeps_class_token)) // self.projector.pixel_shuffle**2

    def validate(self, where: str) -> None:
        if isinstance(self.vision, EfficientNetConfig):
            if self.vision.num_classes:
                raise ConfigError(f"{where}.vision.num_classes: a VLM's convolutional tower has no classifier (0)")
            levels = self.vision.feature_levels
            if not -levels <= self.projector.vision_layer < levels:
                raise ConfigError(
                    f"{where}.projector.vision_layer: {self.projector.vision_layer} is outside the convolutional "
                    f"tower's {levels} feature maps (stem, {len(self.vision.stages)} stages, head)"
                )
        elif not -(self.vision.layers + 1) <= self.projector.vision_layer <= self.vision.layers:
            raise ConfigError(
                f"{where}.projector.vision_layer: {self.projector.vision_layer} is outside the vision "
                f"tower's {self.vision.layers + 1} hidden states"
            )
        shuffle = self.projector.pixel_shuffle
        if shuffle > 1:
            if self.keeps_class_token:
                raise ConfigError(f"{where}.projector: pixel_shuffle needs drop_class_token=true")
            if self.vision_grid % shuffle:
                raise ConfigError(
                    f"{where}.projector.pixel_shuffle: {shuffle} does not divide the {self.vision_grid}x"
                    f"{self.vision_grid} token grid"
                )
        if self.image_grid_pinpoints:
            self._validate_anyres(where)
        if self.image_splitting and (not isinstance(self.vision, VisionConfig) or self.image_grid_pinpoints):
            raise ConfigError(f"{where}.image_splitting: needs a ViT tower and no image_grid_pinpoints")
        self._validate_location_code(where)
        if self.frame_delta not in ("none", "previous", "first"):
            raise ConfigError(f"{where}.frame_delta: expected none, previous or first, got {self.frame_delta!r}")
        if self.frame_delta != "none" and (self.image_grid_pinpoints or self.image_splitting):
            raise ConfigError(f"{where}.frame_delta: needs a fixed token count per image (no tiling or splitting)")
        if not 0 <= self.image_token_id < self.decoder.vocab_size:
            raise ConfigError(
                f"{where}.image_token_id: {self.image_token_id} is not below the decoder's vocab_size "
                f"{self.decoder.vocab_size}"
            )
        features, width = self.vision_width * shuffle**2, self.decoder.width
        projector = features * width + (width * width if self.projector.kind == "mlp" else 0)
        total = self.vision.parameter_count() + self.decoder.parameter_count() + projector
        _size(where, total, **{"projector input (vision width x pixel_shuffle^2)": features, "decoder.width": width})

    def _validate_location_code(self, where: str) -> None:
        from vlmkit.processing.locations import LOC_BINS  # a token-format fact; processing imports config

        scale = self.location_code_column_scale
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ConfigError(f"{where}.location_code_column_scale: expected a finite number above 0, got {scale!r}")
        first = self.location_code_token
        if first is None:
            return
        if self.image_grid_pinpoints or self.image_splitting or self.keeps_class_token:
            raise ConfigError(
                f"{where}.location_code_token: a location code needs one square token grid per image "
                "(no image_grid_pinpoints, image_splitting or kept class token)"
            )
        if not 0 <= first <= self.decoder.vocab_size - LOC_BINS:
            raise ConfigError(
                f"{where}.location_code_token: {first} leaves no room for {LOC_BINS} location tokens below the "
                f"decoder's vocab_size {self.decoder.vocab_size}"
            )

    def _validate_anyres(self, where: str) -> None:
        """Tiling needs a ViT whose tile tokens form its patch grid (no class token kept, no shuffle) and
        resolutions that are whole tiles."""
        if not isinstance(self.vision, VisionConfig) or self.keeps_class_token or self.projector.pixel_shuffle > 1:
            raise ConfigError(
                f"{where}.image_grid_pinpoints: anyres tiling needs a ViT tower with its class token dropped "
                "and no pixel_shuffle"
            )
        tile = self.vision.image_size
        for pair in self.image_grid_pinpoints:
            if len(pair) != 2 or any(side <= 0 or side % tile for side in pair):
                raise ConfigError(
                    f"{where}.image_grid_pinpoints: {list(pair)} is not [height, width] in whole {tile} px tiles"
                )
