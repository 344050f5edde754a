"""``MaeConfig``: a masked autoencoder, a ViT encoder plus a light decoder (``models.mae``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vlmkit.config.base import ConfigBase, _positive
from vlmkit.config.encoders import VisionConfig
from vlmkit.errors import ConfigError


@dataclass
class MaeConfig(ConfigBase):
    """MAE (He et al., 2022): the encoder sees only the visible patches; a narrower, shallower decoder
    gets their states plus a shared mask token at every hidden position and predicts each patch's pixels.
    Only the encoder is what the model is for: ``train clip --vision-from`` and ``train align
    --vision-from`` take it as their image tower.

    Fields:
        vision: the encoder, an ordinary ViT (the same config a dual encoder's image tower has).
        decoder_width, decoder_layers, decoder_heads, decoder_mlp_dim: the decoder's blocks (MAE's
            decoder is about a tenth of the encoder's compute per token; 512 wide and 8 deep for ViT-L).
    """

    vision: VisionConfig = field(default_factory=VisionConfig)
    decoder_width: int = 64
    decoder_layers: int = 2
    decoder_heads: int = 4
    decoder_mlp_dim: int = 256

    @property
    def patch_pixels(self) -> int:
        """Values one patch's prediction holds: patch_size**2 * channels."""
        return self.vision.patch_size**2 * self.vision.channels

    def validate(self, where: str) -> None:
        _positive(
            where,
            decoder_width=self.decoder_width,
            decoder_layers=self.decoder_layers,
            decoder_heads=self.decoder_heads,
            decoder_mlp_dim=self.decoder_mlp_dim,
        )
        if self.decoder_width % self.decoder_heads:
            raise ConfigError(
                f"{where}.decoder_width: {self.decoder_width} is not divisible by decoder_heads {self.decoder_heads}"
            )
