"""Configs for every model part, as plain dataclasses with a JSON round trip.

Families (CLIP, SigLIP, ...) differ by the values of these fields, never by subclass: the shared
blocks in ``vlmkit.nn`` read them. ``config.json`` of a saved model is ``to_dict()`` of its top-level
config plus ``"architecture"``, and carries everything needed to rebuild the model.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from vlmkit.errors import ConfigError

Activation = Literal["quick_gelu", "gelu", "gelu_tanh", "silu"]

T = TypeVar("T", bound="ConfigBase")


class ConfigBase:
    """JSON round trip with validation: unknown or mistyped fields raise ConfigError naming them."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}")
        values = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in data.items()}
        try:
            config = cls(**values)
        except TypeError as error:  # a required field is missing
            raise ConfigError(f"{where}: {error}") from None
        config.validate(where)  # type: ignore[attr-defined]
        return config

    def validate(self, where: str) -> None:
        """Cross-field checks; subclasses extend. Raises ConfigError."""


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint`` (nested configs become dataclasses)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: expected one of {list(allowed)}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {type(value).__name__}")
        _, value_hint = typing.get_args(hint)
        return {str(k): _coerce(value_hint, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        items = [_coerce(item_hint, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if isinstance(hint, type) and issubclass(hint, ConfigBase):
        return hint.from_dict(value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint) and not _is_bool_for_number(hint, value)):
        return value
    raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _is_bool_for_number(hint: type, value: Any) -> bool:
    return hint in (int, float) and isinstance(value, bool)


def _positive(where: str, **values: int | float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{where}.{name}: must be positive, got {value}")


@dataclass
class VisionConfig(ConfigBase):
    """A ViT image encoder.

    CLIP flavour: ``class_token=True, pre_norm=True, pooling="cls", patch_bias=False``.
    SigLIP flavour: ``class_token=False, pre_norm=False, pooling="map", patch_bias=True`` (the pooled
    vector is the output of a multihead-attention-pooling head over all tokens).
    """

    image_size: int = 224
    patch_size: int = 32
    channels: int = 3
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    act: Activation = "quick_gelu"
    norm_eps: float = 1e-5
    class_token: bool = True
    pre_norm: bool = True  # LayerNorm on the embeddings before the first block (CLIP's pre_layrnorm)
    pooling: Literal["cls", "map", "mean"] = "cls"
    # "pooled": post-LN only on the pooled token (CLIP); "all": on every token before pooling (SigLIP)
    post_norm: Literal["pooled", "all"] = "pooled"
    patch_bias: bool = False
    # Stride-2 3x3 convolutions (with GELU) before the patch projection, whose stride shrinks to match
    # (Xiao et al., 2021). Small objects span few patches; a conv stem lets the tower see their shape.
    conv_stem: int = 0

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.grid**2 + int(self.class_token)

    def validate(self, where: str) -> None:
        _positive(
            where,
            image_size=self.image_size,
            patch_size=self.patch_size,
            width=self.width,
            layers=self.layers,
            heads=self.heads,
            mlp_dim=self.mlp_dim,
        )
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"{where}: image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        if self.width % self.heads:
            raise ConfigError(f"{where}: width {self.width} is not a multiple of heads {self.heads}")
        if self.conv_stem < 0 or self.patch_size % 2**self.conv_stem:
            raise ConfigError(f"{where}.conv_stem: patch_size {self.patch_size} must be divisible by 2**conv_stem")
        if self.pooling == "cls" and not self.class_token:
            raise ConfigError(f"{where}: pooling 'cls' needs class_token=true")


@dataclass
class TextConfig(ConfigBase):
    """A transformer text encoder.

    CLIP flavour: ``causal=True, pooling="eos"`` (the hidden state at the first EOS token).
    SigLIP flavour: ``causal=False, pooling="last"`` (the last position, which may be padding: SigLIP
    was trained on text padded to ``context_length``).
    BERT flavour (sentence encoders such as all-MiniLM-L6-v2): ``causal=False, pooling="mean"`` (the
    mean over real tokens), ``norm_position="post"``, ``embedding_norm=True``, ``type_vocab_size=2``.

    Fields of the BERT flavour:
        norm_position: "pre" normalises each block's input (``x + f(norm(x))``, CLIP/SigLIP, with a
            final LayerNorm after the last block); "post" normalises after each residual sum
            (``norm(x + f(x))``, BERT, no final LayerNorm).
        embedding_norm: a LayerNorm over the summed token and position embeddings (BERT).
        type_vocab_size: rows of a token-type ("segment") embedding added to every position; single
            texts use type 0. 0 means none (CLIP/SigLIP).
    """

    vocab_size: int = 49408
    context_length: int = 77
    width: int = 512
    layers: int = 12
    heads: int = 8
    mlp_dim: int = 2048
    act: Activation = "quick_gelu"
    norm_eps: float = 1e-5
    causal: bool = True
    pooling: Literal["eos", "last", "mean"] = "eos"
    eos_token_id: int = 49407
    # Old CLIP configs have eos_token_id=2 and pool at argmax(input_ids): the EOS had the largest id.
    pool_at_argmax: bool = False
    pad_token_id: int = 0
    norm_position: Literal["pre", "post"] = "pre"
    embedding_norm: bool = False
    type_vocab_size: int = 0

    @property
    def uses_attention_mask(self) -> bool:
        """Whether the tower was trained with padding masked out (SigLIP attends to its padding)."""
        return self.causal or self.pooling == "mean"

    def validate(self, where: str) -> None:
        if self.type_vocab_size < 0:
            raise ConfigError(f"{where}.type_vocab_size: must be >= 0, got {self.type_vocab_size}")
        _positive(
            where,
            vocab_size=self.vocab_size,
            context_length=self.context_length,
            width=self.width,
            layers=self.layers,
            heads=self.heads,
            mlp_dim=self.mlp_dim,
        )
        if self.width % self.heads:
            raise ConfigError(f"{where}: width {self.width} is not a multiple of heads {self.heads}")


@dataclass
class DualEncoderConfig(ConfigBase):
    """A contrastive image-text model (CLIP or SigLIP).

    ``head="softmax"``: similarity logits are ``exp(logit_scale) * cos`` (CLIP). ``head="sigmoid"``:
    ``exp(logit_scale) * cos + logit_bias``, read as independent probabilities (SigLIP).
    Projections map each tower's pooled vector to ``embed_dim``: ``"none"`` keeps the pooled vector
    as is (SigLIP's image tower), ``"linear"`` has no bias (CLIP), ``"linear_bias"`` has one (SigLIP's
    text head).
    """

    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    embed_dim: int = 512
    image_projection: Literal["none", "linear", "linear_bias"] = "linear"
    text_projection: Literal["none", "linear", "linear_bias"] = "linear"
    head: Literal["softmax", "sigmoid"] = "softmax"
    logit_scale_init: float = 2.6592  # ln(1/0.07), CLIP's initial temperature
    logit_bias_init: float = 0.0

    def validate(self, where: str) -> None:
        _positive(where, embed_dim=self.embed_dim)
        for tower, projection, width in (
            ("image", self.image_projection, self.vision.width),
            ("text", self.text_projection, self.text.width),
        ):
            if projection == "none" and width != self.embed_dim:
                raise ConfigError(
                    f"{where}.{tower}_projection: 'none' needs the tower width ({width}) to "
                    f"equal embed_dim ({self.embed_dim})"
                )


@dataclass
class EfficientNetConfig(ConfigBase):
    """An EfficientNet-Lite image classifier (the Lite variants: ReLU6, no squeeze-excitation, and a
    stem and head that keep their width whatever the scaling). The defaults are EfficientNet-Lite0.

    Fields:
        image_size: side of the square input the classifier was trained at.
        stem_channels: output channels of the stride-2 3x3 stem convolution.
        stages: one ``[kernel, stride, expand_ratio, out_channels, repeats]`` per stage of MBConv
            blocks; the stride applies to a stage's first block only.
        head_channels: channels of the 1x1 convolution before global pooling.
        num_classes: rows of the final linear classifier (1000 for ImageNet-1k).
        bn_eps: epsilon of every BatchNorm (1e-3 in the TensorFlow-trained checkpoints).
        same_padding: TensorFlow "SAME" padding (asymmetric on stride-2 layers, extra row and column
            at the bottom/right), which checkpoints trained in TensorFlow expect; False pads
            ``kernel // 2`` on every side.
    """

    image_size: int = 224
    stem_channels: int = 32
    stages: tuple[tuple[int, int, int, int, int], ...] = (
        (3, 1, 1, 16, 1),
        (3, 2, 6, 24, 2),
        (5, 2, 6, 40, 2),
        (3, 2, 6, 80, 3),
        (5, 1, 6, 112, 3),
        (5, 2, 6, 192, 4),
        (3, 1, 6, 320, 1),
    )
    head_channels: int = 1280
    num_classes: int = 1000
    bn_eps: float = 1e-3
    same_padding: bool = True

    def validate(self, where: str) -> None:
        _positive(
            where,
            image_size=self.image_size,
            stem_channels=self.stem_channels,
            head_channels=self.head_channels,
            num_classes=self.num_classes,
        )
        for i, stage in enumerate(self.stages):
            if len(stage) != 5 or any(v <= 0 for v in stage):
                raise ConfigError(
                    f"{where}.stages[{i}]: expected 5 positive ints [kernel, stride, expand, channels, repeats]"
                )


@dataclass
class ConSEConfig(ConfigBase):
    """A training-free image-text model by convex combination of semantic embeddings (ConSE,
    Norouzi et al., 2014): an ImageNet classifier and a sentence encoder joined by class names.

    An image's embedding is the probability-weighted mean of the sentence embeddings of its
    ``top_k`` most likely classes, renormalised, so images land in the sentence encoder's space
    where text queries already are. It is not CLIP: it knows only what the class names say (good for
    object-like queries, blind to relations, counts, colours and text in images).

    Fields:
        vision: the classifier (its ``num_classes`` rows of logits).
        text: the sentence encoder (BERT flavour, mean pooling); its width is the embedding size.
        top_k: how many classes mix into an image embedding (T in the paper).
        logit_scale_init: ``similarity`` multiplies cosines by ``exp(logit_scale)``; sentence
            embeddings spread cosines over a narrower range than CLIP's, hence a larger scale.
    """

    vision: EfficientNetConfig = field(default_factory=EfficientNetConfig)
    text: TextConfig = field(default_factory=TextConfig)
    top_k: int = 10
    logit_scale_init: float = 4.6052  # ln(100)

    @property
    def embed_dim(self) -> int:
        return self.text.width

    def validate(self, where: str) -> None:
        if not 1 <= self.top_k <= self.vision.num_classes:
            raise ConfigError(f"{where}.top_k: expected 1..{self.vision.num_classes}, got {self.top_k}")


@dataclass
class DecoderConfig(ConfigBase):
    """A causal language model of the Llama family (Llama, SmolLM2, Mistral, Qwen2 by field values).

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

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.width // self.heads

    def validate(self, where: str) -> None:
        _positive(
            where,
            vocab_size=self.vocab_size,
            width=self.width,
            layers=self.layers,
            heads=self.heads,
            kv_heads=self.kv_heads,
            mlp_dim=self.mlp_dim,
            max_positions=self.max_positions,
            rope_theta=self.rope_theta,
            rope_factor=self.rope_factor,
        )
        if self.heads % self.kv_heads:
            raise ConfigError(f"{where}: heads {self.heads} is not a multiple of kv_heads {self.kv_heads}")
        if self.head_dim is None and self.width % self.heads:
            raise ConfigError(f"{where}: width {self.width} is not a multiple of heads {self.heads}")
        if self.dim_per_head % 2:
            raise ConfigError(f"{where}: head size {self.dim_per_head} must be even for rotary embeddings")
        for name in ("bos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ConfigError(f"{where}.{name}: {value} is not below vocab_size {self.vocab_size}")
        if not self.eos_token_ids or not all(0 <= i < self.vocab_size for i in self.eos_token_ids):
            raise ConfigError(f"{where}.eos_token_ids: expected ids below vocab_size, got {self.eos_token_ids}")


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
            tower's post-norm unless ``vision_norm``.
        vision_norm: apply the vision tower's post-norm to the selected tokens (SmolVLM-style
            towers whose last layer is used post-normed).
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


@dataclass
class VlmConfig(ConfigBase):
    """A generative vision-language model: vision tower -> projector -> decoder (LLaVA layout).

    Fields:
        vision: the image encoder (a ViT; typically the vision tower of a CLIP/SigLIP model).
        projector: the connector from vision tokens to decoder embeddings.
        decoder: the causal language model.
        image_token_id: the token id of the ``<image>`` placeholder. Prompts hold
            ``tokens_per_image`` copies of it per image (``vlmkit.processing.chat`` expands each
            ``<image>`` in the text); their embeddings are replaced by the projected image tokens.
        chat_template: name of the prompt format in ``vlmkit.processing.chat.TEMPLATES``
            ("vlmkit" for models trained with vlmkit, "llava" for LLaVA 1.5 checkpoints).
    """

    vision: VisionConfig = field(default_factory=VisionConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    image_token_id: int = 32000
    chat_template: str = "vlmkit"

    @property
    def tokens_per_image(self) -> int:
        tokens = self.vision.grid**2
        if self.vision.class_token and not self.projector.drop_class_token:
            tokens += 1
        return tokens // self.projector.pixel_shuffle**2

    def validate(self, where: str) -> None:
        layers = self.vision.layers
        if not -(layers + 1) <= self.projector.vision_layer <= layers:
            raise ConfigError(
                f"{where}.projector.vision_layer: {self.projector.vision_layer} is outside the vision "
                f"tower's {layers + 1} hidden states"
            )
        shuffle = self.projector.pixel_shuffle
        if shuffle > 1:
            if self.vision.class_token and not self.projector.drop_class_token:
                raise ConfigError(f"{where}.projector: pixel_shuffle needs drop_class_token=true")
            if self.vision.grid % shuffle:
                raise ConfigError(
                    f"{where}.projector.pixel_shuffle: {shuffle} does not divide the {self.vision.grid}x"
                    f"{self.vision.grid} patch grid"
                )
        if not 0 <= self.image_token_id < self.decoder.vocab_size:
            raise ConfigError(
                f"{where}.image_token_id: {self.image_token_id} is not below the decoder's vocab_size "
                f"{self.decoder.vocab_size}"
            )


ARCHITECTURES: dict[str, type[ConfigBase]] = {
    "dual_encoder": DualEncoderConfig,
    "decoder": DecoderConfig,
    "vlm": VlmConfig,
    "conse": ConSEConfig,
}


def clip_config(
    vision_width: int = 768,
    vision_layers: int = 12,
    vision_heads: int = 12,
    patch_size: int = 32,
    image_size: int = 224,
    text_width: int = 512,
    text_layers: int = 12,
    text_heads: int = 8,
    embed_dim: int = 512,
    vocab_size: int = 49408,
    context_length: int = 77,
    act: Activation = "quick_gelu",
) -> DualEncoderConfig:
    """A CLIP-flavoured dual encoder; the defaults are ViT-B/32."""
    vision = VisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        width=vision_width,
        layers=vision_layers,
        heads=vision_heads,
        mlp_dim=4 * vision_width,
        act=act,
    )
    text = TextConfig(
        vocab_size=vocab_size,
        context_length=context_length,
        width=text_width,
        layers=text_layers,
        heads=text_heads,
        mlp_dim=4 * text_width,
        act=act,
        eos_token_id=vocab_size - 1,
    )
    return DualEncoderConfig(vision=vision, text=text, embed_dim=embed_dim)


def siglip_config(
    width: int = 768,
    layers: int = 12,
    heads: int = 12,
    patch_size: int = 16,
    image_size: int = 224,
    vocab_size: int = 32000,
    context_length: int = 64,
) -> DualEncoderConfig:
    """A SigLIP-flavoured dual encoder; the defaults are ViT-B/16 at 224 px."""
    vision = VisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        width=width,
        layers=layers,
        heads=heads,
        mlp_dim=4 * width,
        act="gelu_tanh",
        norm_eps=1e-6,
        class_token=False,
        pre_norm=False,
        pooling="map",
        post_norm="all",
        patch_bias=True,
    )
    text = TextConfig(
        vocab_size=vocab_size,
        context_length=context_length,
        width=width,
        layers=layers,
        heads=heads,
        mlp_dim=4 * width,
        act="gelu_tanh",
        norm_eps=1e-6,
        causal=False,
        pooling="last",
        eos_token_id=1,
        pad_token_id=1,
    )
    return DualEncoderConfig(
        vision=vision,
        text=text,
        embed_dim=width,
        image_projection="none",
        text_projection="linear_bias",
        head="sigmoid",
        logit_scale_init=2.302585,
        logit_bias_init=-10.0,
    )


def smollm2_135m_config(vocab_size: int = 49152) -> DecoderConfig:
    """SmolLM2-135M's shape: 30 blocks of width 576, 9 query and 3 key/value heads, tied embeddings."""
    return DecoderConfig(
        vocab_size=vocab_size,
        width=576,
        layers=30,
        heads=9,
        kv_heads=3,
        mlp_dim=1536,
        max_positions=8192,
        rope_theta=100000.0,
        bos_token_id=0 if vocab_size == 49152 else None,
        eos_token_ids=(0,),
        pad_token_id=0,
    )


def tiny_decoder_config(
    vocab_size: int = 2048, bos_token_id: int | None = 1, eos_token_id: int = 2, pad_token_id: int = 0
) -> DecoderConfig:
    """A ~3M-parameter decoder (6 blocks of width 192, GQA 6/2 heads) for ShapesWorld-sized data."""
    return DecoderConfig(
        vocab_size=vocab_size,
        width=192,
        layers=6,
        heads=6,
        kv_heads=2,
        mlp_dim=512,
        max_positions=512,
        rope_theta=10000.0,
        bos_token_id=bos_token_id,
        eos_token_ids=(eos_token_id,),
        pad_token_id=pad_token_id,
    )


def tiny_vlm_config(
    vocab_size: int = 2048,
    image_token_id: int = 3,
    image_size: int = 64,
    bos_token_id: int | None = 1,
    eos_token_id: int = 2,
    pad_token_id: int = 0,
) -> VlmConfig:
    """A ~4M-parameter VLM for ShapesWorld: a 4-block ViT (8 px patches), 2x2 pixel shuffle, tiny decoder.

    A 64 px image is an 8x8 patch grid, 16 decoder positions after the pixel shuffle.
    """
    vision = VisionConfig(image_size=image_size, patch_size=8, width=128, layers=4, heads=4, mlp_dim=512, act="gelu")
    return VlmConfig(
        vision=vision,
        projector=ProjectorConfig(kind="mlp", vision_layer=-1, pixel_shuffle=2),
        decoder=tiny_decoder_config(vocab_size, bos_token_id, eos_token_id, pad_token_id),
        image_token_id=image_token_id,
    )


def config_from_json(path: str | Path) -> ConfigBase:
    """Read a vlmkit ``config.json`` and build the config of its ``"architecture"``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or "architecture" not in data:
        raise ConfigError(f"{path}: missing field 'architecture' (one of {sorted(ARCHITECTURES)})")
    data = dict(data)
    architecture = data.pop("architecture")
    data.pop("vlmkit_version", None)
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"{path}: architecture {architecture!r} is not one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture].from_dict(data, where=str(path))


def architecture_of(config: ConfigBase) -> str:
    for name, cls in ARCHITECTURES.items():
        if type(config) is cls:
            return name
    raise ConfigError(f"{type(config).__name__} is not a top-level model config")
