"""Rectified flow: the samplers against diffusers' FlowMatchEulerDiscreteScheduler, step by step, and
against paths whose answer is known."""

from __future__ import annotations

import pytest
import torch

from vlmkit.models.flow import euler, flow_sigmas, guided, heun, integrate, interpolate, velocity_target

diffusers = pytest.importorskip("diffusers")


def field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A made-up model: any deterministic function of x and t will do for a step-by-step comparison."""
    return torch.tanh(x * 1.3 + t.view(-1, 1, 1, 1)) - 0.5 * x


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_euler_equals_diffusers_step_for_step(shift):
    """The mapping: vlmkit's t is diffusers' sigma (1 -> 0), diffusers' timestep is 1000 sigma, both step
    ``x + (sigma_next - sigma) v``. diffusers shifts the sigmas it is given; vlmkit's flow_sigmas shifts
    the same evenly spaced ones, so the schedules (and every intermediate sample) agree."""
    steps = 7
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift)
    unshifted = torch.linspace(1.0, 0.0, steps + 1)[:-1].tolist()
    scheduler.set_timesteps(sigmas=unshifted)
    sigmas = flow_sigmas(steps, shift)
    torch.testing.assert_close(scheduler.sigmas, sigmas, atol=1e-6, rtol=0)
    torch.testing.assert_close(scheduler.timesteps, 1000 * sigmas[:-1], atol=1e-3, rtol=0)

    x0 = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ours, theirs = x0.clone(), x0.clone()
    for i, timestep in enumerate(scheduler.timesteps):
        ours = euler(field, ours, sigmas[i : i + 2])  # one vlmkit step
        theirs = scheduler.step(field(theirs, torch.full((2,), float(sigmas[i]))), timestep, theirs).prev_sample
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    torch.testing.assert_close(euler(field, x0.clone(), sigmas), theirs, atol=1e-6, rtol=0)


def test_straight_path_is_recovered_in_one_step():
    """x_t on the straight line and the exact velocity ``noise - x0``: one Euler step from t=1 lands on x0."""
    x0, noise = torch.randn(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    t = torch.tensor([0.0, 0.5, 1.0])
    xt = interpolate(x0, noise, t)
    torch.testing.assert_close(xt[0], x0[0])
    torch.testing.assert_close(xt[2], noise[2])
    torch.testing.assert_close(xt[1], 0.5 * (x0[1] + noise[1]))
    v = velocity_target(x0, noise)
    for sampler in ("euler", "heun"):
        out = integrate(lambda x, t: v, noise, steps=1 if sampler == "euler" else 4, sampler=sampler)
        torch.testing.assert_close(out, x0, atol=1e-6, rtol=0)


def test_heun_is_second_order_where_euler_is_first():
    """dx/dt = x from t=1 (x=1) to t=0: exactly x(0) = e^-1. Halving the step quarters Heun's error but
    only halves Euler's."""
    target = torch.exp(torch.tensor(-1.0, dtype=torch.float64))

    def error(method, steps):
        x = torch.ones(1, dtype=torch.float64)
        # Heun's last step is Euler by design; integrate on [1, 0.001] to measure the method itself.
        sigmas = torch.linspace(1.0, 0.001, steps + 1, dtype=torch.float64)
        out = method(lambda x, t: x, x, sigmas)
        return abs(float(out) - float(target * torch.exp(torch.tensor(0.001, dtype=torch.float64))))

    assert 1.8 < error(euler, 16) / error(euler, 32) < 2.2
    assert 3.6 < error(heun, 16) / error(heun, 32) < 4.4


def test_guidance_mixes_the_two_predictions():
    cond = lambda x, t: torch.ones_like(x)  # noqa: E731
    both = lambda x, t: torch.cat([torch.zeros_like(x[: len(x) // 2]), torch.ones_like(x[len(x) // 2 :])])  # noqa: E731
    x, t = torch.zeros(2, 3), torch.zeros(2)
    assert guided(cond, both, 1.0) is cond
    torch.testing.assert_close(guided(cond, both, 3.0)(x, t), torch.full((2, 3), 3.0))
    torch.testing.assert_close(guided(cond, both, 0.0)(x, t), torch.zeros(2, 3))


def test_sigmas_refuse_no_steps():
    with pytest.raises(ValueError):
        flow_sigmas(0)
