"""A masked autoencoder (He et al., 2022): vlmkit's ViT encodes the visible patches, a light decoder
predicts the pixels of every patch (see ``MaeConfig``).

The encoder is an unchanged ``VisionTransformer``: the visible patches are its ``patch_keep``, so the
tower this trains is the one a dual encoder or a VLM uses, weight for weight. Hidden patches are also
zeroed in the pixels the encoder reads: with a conv stem, whose 3x3 kernels reach a pixel or two into
neighbouring patches, a visible token would otherwise carry a trace of the hidden pixels it is asked to
predict. (Zero is the dataset mean after normalisation; a plain patch projection never sees them anyway.)
"""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.config.mae import MaeConfig
from vlmkit.models.vision import VisionTransformer
from vlmkit.nn import TransformerStack


def patchify(pixels: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, patch*patch*C), patches in raster order, each row-major with channels last
    (MAE's layout, so per-patch statistics cover all of a patch's values)."""
    b, c, h, w = pixels.shape
    x = pixels.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, channels: int = 3) -> torch.Tensor:
    """The inverse of ``patchify`` for a square grid."""
    b, n, _ = patches.shape
    grid = int(n**0.5)
    x = patches.reshape(b, grid, grid, patch, patch, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, channels, grid * patch, grid * patch)


def hidden_mask(patch_keep: torch.Tensor, patches: int) -> torch.Tensor:
    """(B, N) bool, True where a patch is hidden (not in ``patch_keep``)."""
    hidden = torch.ones(patch_keep.shape[0], patches, dtype=torch.bool, device=patch_keep.device)
    return hidden.scatter(1, patch_keep, False)


class MaskedAutoencoder(nn.Module):
    def __init__(self, config: MaeConfig) -> None:
        super().__init__()
        self.config = config
        vision, width = config.vision, config.decoder_width
        self.encoder = VisionTransformer(vision)
        self.decoder_embed = nn.Linear(vision.width, width)
        self.mask_token = nn.Parameter(torch.zeros(width))
        self.decoder_position = nn.Parameter(torch.zeros(vision.num_tokens, width))
        self.decoder = TransformerStack(
            config.decoder_layers, width, config.decoder_heads, config.decoder_mlp_dim, vision.act, vision.norm_eps
        )
        self.decoder_norm = nn.LayerNorm(width, eps=vision.norm_eps)
        self.decoder_pred = nn.Linear(width, config.patch_pixels)
        self.image_processor = None
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.decoder_position, std=width**-0.5)

    @property
    def device(self) -> torch.device:
        return self.mask_token.device

    def forward(self, pixels: torch.Tensor, patch_keep: torch.Tensor) -> torch.Tensor:
        """Predicted pixels of every patch, (B, N, patch_size**2 * channels), from the ``patch_keep``
        patches (B, K) alone; only the hidden ones' predictions are meant to be scored."""
        vision = self.config.vision
        hidden = hidden_mask(patch_keep, vision.grid**2)
        spread = hidden.view(-1, 1, vision.grid, 1, vision.grid, 1)
        spread = spread.expand(-1, 1, -1, vision.patch_size, -1, vision.patch_size).reshape(
            -1, 1, vision.image_size, vision.image_size
        )
        tokens = self.encoder.encode_tokens(pixels.masked_fill(spread, 0.0), patch_keep)
        x = self.decoder_embed(self.encoder.post_norm(tokens))
        prefix = int(vision.class_token)
        full = self.mask_token.to(x.dtype).expand(x.shape[0], vision.grid**2, -1).clone()
        full = full.scatter(1, patch_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]), x[:, prefix:])
        x = torch.cat([x[:, :prefix], full], dim=1) + self.decoder_position
        x = self.decoder_norm(self.decoder(x))  # type: ignore[arg-type]
        return self.decoder_pred(x[:, prefix:])
