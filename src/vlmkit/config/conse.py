"""ConSE: an EfficientNet-Lite ImageNet classifier and a sentence encoder joined by class names."""

from __future__ import annotations

from dataclasses import dataclass, field

from vlmkit.config.base import ConfigBase, _finite, _size
from vlmkit.config.encoders import EfficientNetConfig, TextConfig
from vlmkit.errors import ConfigError


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
        _finite(where, logit_scale_init=self.logit_scale_init)
        class_embeddings = self.vision.num_classes * self.embed_dim
        total = self.vision.parameter_count() + self.text.parameter_count() + class_embeddings
        _size(where, total, **{"vision.num_classes": self.vision.num_classes, "text.width": self.embed_dim})
