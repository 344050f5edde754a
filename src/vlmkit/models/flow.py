"""Rectified flow: the path from data to noise, how training draws times, and the samplers that go back.

Conventions (the same as diffusers' ``FlowMatchEulerDiscreteScheduler`` and Stable Diffusion 3): time
``t`` runs from 0 (data) to 1 (noise); ``x_t = (1 - t) x_0 + t noise``; the model predicts the velocity
``v = dx_t/dt = noise - x_0``. Sampling integrates ``dx/dt = v`` from ``t = 1`` down to ``t = 0``, so
each step adds ``(t_next - t) v`` with ``t_next < t``. diffusers calls ``t`` "sigma" and passes the
model ``timestep = 1000 sigma``; vlmkit passes ``t`` itself (the DiT scales it by 1000 inside its time
embedding), so a vlmkit sigma schedule is a diffusers one, value for value
(``tests/models/test_flow.py`` checks Euler against diffusers step by step).

Classifier-free guidance: ``v = v_uncond + guidance (v_cond - v_uncond)``, both from one forward over
the doubled batch; ``guidance = 1`` is the conditional model alone (and skips the unconditional half).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``velocity(x, t)`` with ``x`` (B, ...) and ``t`` (B,)."""

Sampler = Literal["euler", "heun"]
SAMPLERS: tuple[str, ...] = ("euler", "heun")


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x_t = (1 - t) x_0 + t noise``, with ``t`` (B,) broadcast over the image."""
    t = t.view(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """What the model learns to predict: ``dx_t/dt = noise - x_0``."""
    return noise - x0


def logit_normal_times(
    batch: int, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Training times ``sigmoid(N(mean, std))`` (Esser et al., 2024): more weight on the middle of the path,
    where the velocity is hardest to predict, than uniform times give."""
    return torch.sigmoid(mean + std * torch.randn(batch, generator=generator))


def flow_sigmas(steps: int, shift: float = 1.0) -> torch.Tensor:
    """``steps + 1`` times from 1 to 0, evenly spaced, then shifted by ``shift t / (1 + (shift - 1) t)``
    (diffusers' static shift; above 1 it spends more steps near the noise)."""
    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return (shift * t / (1 + (shift - 1) * t)).float()


def euler(velocity: Velocity, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """One velocity per step: ``x <- x + (t_next - t) v(x, t)``."""
    for t, t_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        x = x + (t_next - t) * velocity(x, _times(x, t))
    return x


def heun(velocity: Velocity, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Heun's second-order method: an Euler guess, then the mean of the velocities at both ends. The last
    step (to ``t = 0``) stays Euler, as in Karras et al. (2022): the model is not asked about pure data."""
    for t, t_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        v = velocity(x, _times(x, t))
        guess = x + (t_next - t) * v
        x = guess if t_next == 0 else x + (t_next - t) * 0.5 * (v + velocity(guess, _times(x, t_next)))
    return x


def _times(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.float32)


def guided(conditional: Velocity, unconditional_and_conditional: Velocity, guidance: float) -> Velocity:
    """The classifier-free guided velocity. ``unconditional_and_conditional(x2, t2)`` takes the batch twice
    over (unconditional rows first) and answers both halves in one forward."""
    if guidance == 1.0:
        return conditional

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_uncond, v_cond = unconditional_and_conditional(torch.cat([x, x]), torch.cat([t, t])).chunk(2)
        return v_uncond + guidance * (v_cond - v_uncond)

    return velocity


def integrate(
    velocity: Velocity, noise: torch.Tensor, steps: int, sampler: Sampler = "euler", shift: float = 1.0
) -> torch.Tensor:
    """From ``noise`` at ``t = 1`` to a sample at ``t = 0`` in ``steps`` steps of ``sampler``."""
    sigmas = flow_sigmas(steps, shift)
    return (euler if sampler == "euler" else heun)(velocity, noise, sigmas)
