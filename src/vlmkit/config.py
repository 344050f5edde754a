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
        if self.pooling == "cls" and not self.class_token:
            raise ConfigError(f"{where}: pooling 'cls' needs class_token=true")


@dataclass
class TextConfig(ConfigBase):
    """A transformer text encoder.

    CLIP flavour: ``causal=True, pooling="eos"`` (the hidden state at the first EOS token).
    SigLIP flavour: ``causal=False, pooling="last"`` (the last position, which may be padding: SigLIP
    was trained on text padded to ``context_length``).
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

    def validate(self, where: str) -> None:
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


ARCHITECTURES: dict[str, type[ConfigBase]] = {"dual_encoder": DualEncoderConfig}


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
