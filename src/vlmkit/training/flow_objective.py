"""The flow-matching objective of text-to-image training, and the exponential moving average it keeps.

Each item gets its own noise and a logit-normal time; the DiT predicts the velocity ``noise - x_0`` at
``x_t`` (``models.flow``) under a mean squared error. With probability ``drop`` an item's text is
replaced by the null condition, which is what lets the sampler guide (classifier-free guidance).

The EMA of the weights lives on the objective: a training-only module, checkpointed with the run (so
resume is exact) and never part of the trained model until the recipe exports it. It is updated at
the first micro-batch of each optimizer step, from the weights the previous step left, so it needs no
hook in the trainer; ``catch_up`` applies the last step's update before export. The noise and times
come from torch's global generator, which the trainer checkpoints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.models.dit import DiT
from vlmkit.models.flow import interpolate, logit_normal_times, velocity_target
from vlmkit.training.batches import Batch
from vlmkit.training.objective import Objective, ObjectiveOutput


@dataclass
class ImagePromptBatch(Batch):
    """Images in [-1, 1] and the token ids of one prompt each."""

    pixels: torch.Tensor  # (B, 3, H, W) float32 in [-1, 1]
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)


class FlowObjective(Objective):
    """Velocity regression with condition dropout; ``ema`` is the averaged DiT (None with ``ema_decay=0``)."""

    def __init__(
        self,
        model: DiT,
        drop: float = 0.1,
        time_mean: float = 0.0,
        time_std: float = 1.0,
        ema_decay: float = 0.999,
        grad_accum: int = 1,
    ) -> None:
        super().__init__()
        self.drop, self.time_mean, self.time_std = drop, time_mean, time_std
        self.ema_decay, self.grad_accum = ema_decay, grad_accum
        self.ema: DiT | None = copy.deepcopy(model).requires_grad_(False).eval() if ema_decay > 0 else None
        self.register_buffer("micro_steps", torch.zeros((), dtype=torch.int64))
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.int64))

    @property
    def step(self) -> int:
        """Optimizer steps taken (as far as the objective has seen)."""
        return int(self.micro_steps) // self.grad_accum

    def forward(self, model: nn.Module, batch: ImagePromptBatch) -> ObjectiveOutput:
        if self.training and torch.is_grad_enabled():
            if int(self.micro_steps) % self.grad_accum == 0:
                self.catch_up(model)
            self.micro_steps += 1
        return flow_loss(model, batch, self.drop, self.time_mean, self.time_std)

    @torch.no_grad()
    def catch_up(self, model: nn.Module) -> None:
        """Bring the EMA up to ``model``'s weights after every optimizer step taken so far."""
        if self.ema is None:
            return
        while int(self.ema_updates) < self.step:
            n = int(self.ema_updates)
            decay = min(self.ema_decay, (1 + n) / (10 + n))  # a short warm-up: early weights are noise
            for averaged, current in zip(self.ema.parameters(), model.parameters(), strict=True):
                averaged.lerp_(current.detach().to(averaged.dtype), 1 - decay)
            self.ema_updates += 1

    def averaged(self, model: DiT) -> DiT:
        """The model to sample and export: the EMA when there is one."""
        return self.ema if self.ema is not None else model


def flow_loss(
    model: nn.Module,
    batch: ImagePromptBatch,
    drop: float = 0.0,
    time_mean: float = 0.0,
    time_std: float = 1.0,
    generator: torch.Generator | None = None,
) -> ObjectiveOutput:
    """Mean squared error of the predicted velocity; ``generator`` (CPU) fixes noise, times and dropout."""
    x0 = batch.pixels
    rows, device = x0.shape[0], x0.device
    noise = torch.randn(x0.shape, generator=generator).to(device)
    t = logit_normal_times(rows, time_mean, time_std, generator).to(device)
    dropped = (torch.rand(rows, generator=generator) < drop).to(device)
    v = model(interpolate(x0, noise, t), t, batch.input_ids, batch.attention_mask, drop=dropped)
    return ObjectiveOutput(F.mse_loss(v.float(), velocity_target(x0, noise)))
