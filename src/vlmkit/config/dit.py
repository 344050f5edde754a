"""``DiTConfig``: a text-conditioned diffusion transformer in pixel space (``models.dit``).

The text side is a vlmkit ``TextConfig``, so the tower can be a CLIP or SigLIP text tower (copied from
a dual encoder, frozen or not) or one trained from scratch with the DiT; the DiT reads its token states
through cross-attention and its pooled vector through adaLN-Zero, beside the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vlmkit.config.base import ConfigBase, _layers, _patch_grid, _positive, _size
from vlmkit.config.encoders import TextConfig
from vlmkit.errors import ConfigError

PREDICTIONS = ("velocity", "x0")


@dataclass
class DiTConfig(ConfigBase):
    """A DiT (Peebles & Xie, 2023) over image patches, with cross-attention to text (as in PixArt-alpha).

    Fields:
        image_size: side of the square images it generates, in pixels.
        patch_size: side of a patch; the sequence is ``(image_size / patch_size) ** 2`` tokens.
        channels: image channels (3: RGB in [-1, 1]).
        width, layers, heads, mlp_dim: the transformer's shape.
        norm_eps: epsilon of every LayerNorm.
        text: the text tower whose token states the blocks attend to.
        frequency_dim: size of the sinusoidal embedding of the time before its MLP.
        prediction: what the last layer outputs. ``velocity``: the flow's velocity itself. ``x0``: the clean
            image, from which the velocity ``(x_t - x0) / t`` follows (Li & He, 2025, "Back to Basics: Let
            Denoising Generative Models Denoise"). A patch of ``channels * patch_size**2`` values wider than
            ``width`` cannot carry a velocity (it holds the noise, which fills every dimension), while clean
            images lie in far fewer: use ``x0`` there.
    """

    image_size: int = 64
    patch_size: int = 4
    channels: int = 3
    width: int = 256
    layers: int = 6
    heads: int = 4
    mlp_dim: int = 1024
    norm_eps: float = 1e-6
    frequency_dim: int = 256
    text: TextConfig = field(default_factory=TextConfig)
    prediction: str = "velocity"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    def parameter_count(self) -> int:
        """About how many parameters the DiT has without its text tower: for size checks."""
        w = self.width
        patch = self.channels * self.patch_size**2
        block = 8 * w * w + 2 * w * self.mlp_dim + 6 * w * w  # self + cross attention, MLP, adaLN
        return self.layers * block + 2 * w * patch + w * self.grid**2 + w * self.text.width

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
            frequency_dim=self.frequency_dim,
        )
        _layers(where, layers=self.layers)
        _patch_grid(where, self.image_size, self.patch_size, self.width, self.heads)
        if self.prediction not in PREDICTIONS:
            raise ConfigError(f"{where}.prediction: expected one of {list(PREDICTIONS)}, got {self.prediction!r}")
        if self.width % 4 or self.frequency_dim % 2:
            raise ConfigError(f"{where}: width must be a multiple of 4 and frequency_dim even (sin-cos embeddings)")
        _size(where, self.parameter_count(), image_size=self.image_size, width=self.width, layers=self.layers)
