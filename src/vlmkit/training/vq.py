"""Training a vector-quantised autoencoder (the mask tokenizer): its batch and its objective.

The loss is the VQ-VAE's (van den Oord et al., 2017) without the codebook term: reconstruction plus
``commitment * ||latents - sg(codebook rows)||^2``, gradients passing the quantizer straight through.
The codebook moves by exponential moving averages of the latents assigned to each code (the paper's
appendix; Razavi et al., 2019), which needs no learning rate and no weight decay.

Codebook collapse (a few codes take every latent, the rest never move again) is the usual failure of
small VQ-VAEs. Two remedies live here: the codebook starts as latents of the first batch (so every code
starts where the data is), and a code whose moving-average usage falls below ``restart_below`` latents
per batch is restarted at a random latent of the current batch. The moving averages are the objective's
(training-only) buffers, so they are checkpointed with the run and never exported with the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vlmkit.training.batches import Batch
from vlmkit.training.distributed import is_distributed
from vlmkit.training.objective import Objective, ObjectiveOutput


@dataclass
class MaskBatch(Batch):
    """Mask crops in [0, 1], (B, 64, 64) float32."""

    masks: torch.Tensor


def code_usage(codes: torch.Tensor, num_codes: int) -> tuple[float, int]:
    """Perplexity of the code histogram (``exp`` of its entropy: ``num_codes`` when all are used evenly,
    1 when one takes all) and how many codes occur at all."""
    counts = torch.bincount(codes.flatten(), minlength=num_codes).double()
    probabilities = counts / counts.sum().clamp_min(1)
    entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum()
    return float(math.exp(float(entropy))), int((counts > 0).sum())


def _all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor


def _same_on_every_rank(tensor: torch.Tensor) -> torch.Tensor:
    """Random draws (initial codes, restarts) differ by rank; rank 0's win."""
    if is_distributed():
        dist.broadcast(tensor, 0)
    return tensor


class VqObjective(Objective):
    """Reconstruction + commitment loss of a ``MaskTokenizer``, with the EMA codebook update and
    dead-code restarts applied in training mode."""

    def __init__(self, num_codes: int, dim: int, commitment: float, decay: float, restart_below: float) -> None:
        super().__init__()
        self.commitment, self.decay, self.restart_below = commitment, decay, restart_below
        self.register_buffer("usage", torch.ones(num_codes))  # EMA of latents per code per batch
        self.register_buffer("sums", torch.zeros(num_codes, dim))  # EMA of their sum
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def forward(self, model: nn.Module, batch: MaskBatch) -> ObjectiveOutput:
        if self.training and not bool(self.started):
            self._start(model, batch)
        out = model(batch.masks)
        if model.config.output == "signed":
            reconstruction = F.mse_loss(out.decoded.float(), 2.0 * batch.masks - 1.0)
        else:
            reconstruction = F.binary_cross_entropy_with_logits(out.decoded.float(), batch.masks)
        commitment = F.mse_loss(out.latents.float(), model.lookup(out.codes).detach().float())
        metrics = {"reconstruction": reconstruction.item(), "commitment": commitment.item()}
        perplexity, used = code_usage(out.codes, model.codebook.shape[0])
        metrics.update(perplexity=perplexity, codes_used=float(used))
        if self.training:
            metrics["restarts"] = float(self._update(model, out.latents.detach().float(), out.codes))
        return ObjectiveOutput(reconstruction + self.commitment * commitment, metrics)

    @torch.no_grad()
    def _start(self, model: nn.Module, batch: MaskBatch) -> None:
        """The codebook as random latents of the first batch (and their moving averages as one use each)."""
        flat = _flat(model.encoder(batch.masks).float())
        picks = flat[torch.randint(0, flat.shape[0], (self.sums.shape[0],), device=flat.device)]
        model.codebook.copy_(_same_on_every_rank(picks.to(model.codebook.dtype)))
        self.sums.copy_(model.codebook.float())
        self.usage.fill_(1.0)
        self.started.fill_(True)

    @torch.no_grad()
    def _update(self, model: nn.Module, latents: torch.Tensor, codes: torch.Tensor) -> int:
        """One EMA step of the codebook; returns how many codes were restarted."""
        flat, codes = _flat(latents), codes.flatten()
        counts = _all_reduce_sum(torch.bincount(codes, minlength=self.usage.shape[0]).float())
        sums = _all_reduce_sum(torch.zeros_like(self.sums).index_add_(0, codes, flat))
        self.usage.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.sums.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        codebook = self.sums / self.usage.clamp_min(1e-6)[:, None]
        dead = self.usage < self.restart_below
        restarts = int(dead.sum())
        if restarts:
            picks = flat[torch.randint(0, flat.shape[0], (restarts,), device=flat.device)]
            codebook[dead] = _same_on_every_rank(picks)
            self.sums[dead] = codebook[dead]
            self.usage[dead] = 1.0
        model.codebook.copy_(codebook.to(model.codebook.dtype))
        return restarts


def _flat(latents: torch.Tensor) -> torch.Tensor:
    """(N, D, h, w) -> (N * h * w, D), in the quantizer's row-major order."""
    return latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
