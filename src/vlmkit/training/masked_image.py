"""Masked image modelling (MAE): its batch and its objective.

The loss is MAE's with ``norm_pix_loss``: the mean squared error, over hidden patches only, between the
decoder's prediction and the patch's pixels normalised by the patch's own mean and variance. Normalised
targets make the task about edges and shape, not about a patch's flat colour, which He et al. found
gives the better encoder (and on ShapesWorld, where colour is the easy half, is the point).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vlmkit.models.mae import hidden_mask, patchify
from vlmkit.training.batches import Batch
from vlmkit.training.objective import Objective, ObjectiveOutput


@dataclass
class MaskedImageBatch(Batch):
    """Normalised pixels and, per image, the patches the encoder sees."""

    pixels: torch.Tensor  # (B, 3, H, W) float32, normalised
    patch_keep: torch.Tensor  # (B, K) sorted patch indices


def patch_targets(pixels: torch.Tensor, patch: int, normalize: bool, eps: float = 1e-6) -> torch.Tensor:
    """(B, N, patch*patch*C) targets; with ``normalize`` each patch standardised by its own mean and
    (unbiased) variance, as MAE's ``norm_pix_loss``."""
    target = patchify(pixels.float(), patch)
    if not normalize:
        return target
    mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps) ** 0.5


def masked_mse(predicted: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Mean over hidden patches of each patch's mean squared error."""
    per_patch = (predicted.float() - target).pow(2).mean(dim=-1)
    return (per_patch * hidden).sum() / hidden.sum().clamp_min(1)


class MaskedImageObjective(Objective):
    """MAE's reconstruction loss on a ``MaskedAutoencoder``'s predictions."""

    def __init__(self, patch_size: int, norm_pix: bool = True) -> None:
        super().__init__()
        self.patch_size, self.norm_pix = patch_size, norm_pix

    def forward(self, model: nn.Module, batch: MaskedImageBatch) -> ObjectiveOutput:
        predicted = model(batch.pixels, batch.patch_keep)
        target = patch_targets(batch.pixels, self.patch_size, self.norm_pix)
        return ObjectiveOutput(masked_mse(predicted, target, hidden_mask(batch.patch_keep, target.shape[1])))
