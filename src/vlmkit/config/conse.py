"""ConSE: an EfficientNet-Lite ImageNet classifier and a sentence encoder joined by class names."""

from __future__ import annotations

from dataclasses import dataclass, field

from vlmkit.config.base import ConfigBase, _positive
from vlmkit.config.encoders import TextConfig
from vlmkit.errors import ConfigError


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

    def validate(self, where: str) -> None:
        _positive(
            where,
            image_size=self.image_size,
            stem_channels=self.stem_channels,
            head_channels=self.head_channels,
        )
        if self.num_classes < 0:
            raise ConfigError(f"{where}.num_classes: must be >= 0, got {self.num_classes}")
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
