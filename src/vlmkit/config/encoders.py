"""The encoder towers (ViT, text transformer, EfficientNet-Lite) and the dual encoder joining two of them.

The towers are shared: ``VlmConfig`` reuses ``VisionConfig`` or ``EfficientNetConfig``, ``ConSEConfig``
reuses ``EfficientNetConfig`` and ``TextConfig``; they live here, beside each other, for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vlmkit.config.base import (
    Activation,
    ConfigBase,
    _at_least_zero,
    _finite,
    _layers,
    _patch_grid,
    _positive,
    _size,
)
from vlmkit.errors import ConfigError


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
    # Channels double per layer up to ``width``.
    conv_stem: int = 0
    # "batch": BatchNorm after each stem convolution, as in Xiao et al. On ShapesWorld it is what lets a tiny
    # tower learn shape at all in a CPU budget (supervised probe: 55% vs 15% after 300 steps).
    conv_stem_norm: Literal["none", "batch"] = "none"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.grid**2 + int(self.class_token)

    def parameter_count(self) -> int:
        """About how many parameters the tower has (blocks, embeddings, a pooling head): for size checks."""
        w = self.width
        stem = w * (self.channels * self.patch_size**2 + 9 * w * self.conv_stem)
        return stem + w * self.num_tokens + (self.layers + 1) * (4 * w * w + 2 * w * self.mlp_dim)

    def validate(self, where: str) -> None:
        _positive(
            where,
            image_size=self.image_size,
            patch_size=self.patch_size,
            channels=self.channels,
            width=self.width,
            layers=self.layers,
            heads=self.heads,
            mlp_dim=self.mlp_dim,
            norm_eps=self.norm_eps,
        )
        _layers(where, layers=self.layers)
        _patch_grid(where, self.image_size, self.patch_size, self.width, self.heads)
        if self.conv_stem < 0 or self.patch_size % 2**self.conv_stem:
            raise ConfigError(f"{where}.conv_stem: patch_size {self.patch_size} must be divisible by 2**conv_stem")
        if self.pooling == "cls" and not self.class_token:
            raise ConfigError(f"{where}: pooling 'cls' needs class_token=true")
        _size(
            where,
            self.parameter_count(),
            image_size=self.image_size,
            patch_size=self.patch_size,
            width=self.width,
            layers=self.layers,
            mlp_dim=self.mlp_dim,
        )


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

    def parameter_count(self) -> int:
        """About how many parameters the tower has (embeddings and blocks): for size checks."""
        w = self.width
        embeddings = w * (self.vocab_size + self.context_length + self.type_vocab_size)
        return embeddings + self.layers * (4 * w * w + 2 * w * self.mlp_dim)

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
            norm_eps=self.norm_eps,
        )
        _at_least_zero(where, eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id)
        _layers(where, layers=self.layers)
        if self.width % self.heads:
            raise ConfigError(f"{where}: width {self.width} is not a multiple of heads {self.heads}")
        _size(
            where,
            self.parameter_count(),
            vocab_size=self.vocab_size,
            context_length=self.context_length,
            width=self.width,
            layers=self.layers,
            mlp_dim=self.mlp_dim,
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
        num_classes: rows of the final linear classifier (1000 for ImageNet-1k); 0 builds the network
            without it, as a feature extractor (a VLM's vision tower reads the feature map).
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

    @property
    def grid(self) -> int:
        """Side of the final feature map for ``image_size`` inputs."""
        return self.feature_shape(-1)[1]

    @property
    def feature_levels(self) -> int:
        """How many feature maps the network computes: the stem's, one per stage, the head's."""
        return len(self.stages) + 2

    def feature_shape(self, level: int) -> tuple[int, int]:
        """(channels, side) of feature map ``level`` (Python indexing over stem, stages, head) for
        ``image_size`` inputs: every stride-2 layer rounds up."""
        if not -self.feature_levels <= level < self.feature_levels:
            raise ConfigError(
                f"feature map {level}: the network has {self.feature_levels} (stem, {len(self.stages)} stages, head), "
                f"so expected {-self.feature_levels}..{self.feature_levels - 1}"
            )
        level %= self.feature_levels
        side = -(-self.image_size // 2)
        channels = self.stem_channels
        for _, stride, _, stage_channels, _ in self.stages[:level]:
            side, channels = -(-side // stride), stage_channels
        return (self.head_channels if level == self.feature_levels - 1 else channels), side

    def parameter_count(self) -> int:
        """About how many parameters the network has (MBConv blocks, stem, head, classifier): for size checks."""
        total, channels = 27 * self.stem_channels, self.stem_channels
        for kernel, _, expand, out, repeats in self.stages:
            for c_in, blocks in ((channels, 1), (out, repeats - 1)):  # the stage's first block, then the rest
                hidden = c_in * expand
                total += blocks * (c_in * hidden + hidden * kernel * kernel + hidden * out)
            channels = out
        return total + channels * self.head_channels + self.head_channels * self.num_classes

    def validate(self, where: str) -> None:
        _positive(
            where,
            image_size=self.image_size,
            stem_channels=self.stem_channels,
            head_channels=self.head_channels,
            bn_eps=self.bn_eps,
        )
        if self.num_classes < 0:
            raise ConfigError(f"{where}.num_classes: must be >= 0, got {self.num_classes}")
        for i, stage in enumerate(self.stages):
            if len(stage) != 5 or any(v <= 0 for v in stage):
                raise ConfigError(
                    f"{where}.stages[{i}]: expected 5 positive ints [kernel, stride, expand, channels, repeats]"
                )
        _layers(where, **{"stages (blocks in all)": sum(stage[4] for stage in self.stages)})
        _size(
            where,
            self.parameter_count(),
            stem_channels=self.stem_channels,
            head_channels=self.head_channels,
            num_classes=self.num_classes,
            **{"largest stage channels": max((s[3] for s in self.stages), default=0)},
        )


@dataclass
class ImagePoolConfig(ConfigBase):
    """The trainable head that turns a CNN's feature map into one image vector (``models.cnn_tower``).

    The feature map's cells, projected to ``width`` and given learned positions, pass through ``layers``
    transformer blocks and SigLIP's attention pooling (a probe token attends over them). Attention, not a
    mean: in a scene of several objects, which cell holds the object a caption is about depends on the
    image, and a global average would blend every object's shape and colour into one vector.

    ``feature_level`` picks the map (``EfficientNetConfig.feature_shape``'s levels; -1 the head's): an earlier,
    finer map keeps each object's colour and shape in the cells it covers, which the head's 7x7 map blurs.
    ``cell_colours`` adds each cell's mean colour (the input pixels averaged over the cell) to its token: an
    ImageNet CNN's last feature map keeps shape but loses much of colour (on ShapesWorld a linear probe of
    EfficientNet-Lite0's features names the subject's shape 80% of the time, its colour 57%).
    """

    width: int = 256
    heads: int = 4
    layers: int = 1
    mlp_ratio: int = 4
    act: Activation = "gelu"
    norm_eps: float = 1e-5
    feature_level: int = -1
    cell_colours: bool = False

    def validate(self, where: str) -> None:
        _positive(where, width=self.width, heads=self.heads, mlp_ratio=self.mlp_ratio, norm_eps=self.norm_eps)
        _at_least_zero(where, layers=self.layers)
        _layers(where, layers=self.layers)
        if self.width % self.heads:
            raise ConfigError(f"{where}.width: {self.width} is not divisible by heads ({self.heads})")

    def parameter_count(self, channels: int, cells: int) -> int:
        w = self.width
        block = 4 * w * w + 2 * w * w * self.mlp_ratio
        return channels * w + cells * w + 3 * w * self.cell_colours + (self.layers + 1) * block


@dataclass
class DualEncoderConfig(ConfigBase):
    """A contrastive image-text model (CLIP or SigLIP).

    ``head="softmax"``: similarity logits are ``exp(logit_scale) * cos`` (CLIP). ``head="sigmoid"``:
    ``exp(logit_scale) * cos + logit_bias``, read as independent probabilities (SigLIP).
    Projections map each tower's pooled vector to ``embed_dim``: ``"none"`` keeps the pooled vector
    as is (SigLIP's image tower), ``"linear"`` has no bias (CLIP), ``"linear_bias"`` has one (SigLIP's
    text head). The image tower is a ViT, or a CNN (``EfficientNetConfig`` without a classifier) whose
    feature map ``image_pool`` turns into the pooled vector: a pretrained ImageNet CNN sees shapes that a
    ViT trained from scratch for minutes does not.
    """

    vision: VisionConfig | EfficientNetConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    embed_dim: int = 512
    image_pool: ImagePoolConfig | None = None
    image_projection: Literal["none", "linear", "linear_bias"] = "linear"
    text_projection: Literal["none", "linear", "linear_bias"] = "linear"
    head: Literal["softmax", "sigmoid"] = "softmax"
    logit_scale_init: float = 2.6592  # ln(1/0.07), CLIP's initial temperature
    logit_bias_init: float = 0.0

    def validate(self, where: str) -> None:
        _positive(where, embed_dim=self.embed_dim)
        _finite(where, logit_scale_init=self.logit_scale_init, logit_bias_init=self.logit_bias_init)
        cnn = isinstance(self.vision, EfficientNetConfig)
        if cnn != (self.image_pool is not None):
            raise ConfigError(
                f"{where}.image_pool: a CNN image tower needs one (its feature map has no pooled vector); a ViT pools "
                "itself and takes none"
            )
        if cnn and self.vision.num_classes:  # type: ignore[union-attr]
            raise ConfigError(f"{where}.vision.num_classes: a dual encoder's CNN has no classifier; expected 0")
        projections = self.embed_dim * (self.image_width + self.text.width)
        pool = 0
        if self.image_pool is not None:
            channels, side = self.vision.feature_shape(self.image_pool.feature_level)  # type: ignore[union-attr]
            pool = self.image_pool.parameter_count(channels, side * side)
        parameters = self.vision.parameter_count() + pool + self.text.parameter_count() + projections
        _size(where, parameters, embed_dim=self.embed_dim)
        for tower, projection, width in (
            ("image", self.image_projection, self.image_width),
            ("text", self.text_projection, self.text.width),
        ):
            if projection == "none" and width != self.embed_dim:
                raise ConfigError(
                    f"{where}.{tower}_projection: 'none' needs the tower width ({width}) to "
                    f"equal embed_dim ({self.embed_dim})"
                )

    @property
    def image_width(self) -> int:
        """Width of the image tower's pooled vector: the ViT's, or the CNN's pooling head's."""
        return self.image_pool.width if self.image_pool is not None else self.vision.width  # type: ignore[union-attr]
