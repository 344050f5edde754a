"""Text-to-image sampling speed: vlmkit's Euler sampler against diffusers' FlowMatchEulerDiscreteScheduler
loop running the same DiT weights, in one run (images/s and their ratio; the pixels must agree).

Both sides do the same work per step (one DiT forward over the conditional and unconditional halves,
classifier-free guidance, one Euler update) from the same noise; the difference is the loop around
the model: vlmkit's ``integrate`` against diffusers' scheduler (``set_timesteps`` + ``step``). The
model is the t2i recipe's preset (random weights, or ``--model``) at 64 px by default.

    python benchmarks/t2i_speed.py
    python benchmarks/t2i_speed.py --model RUN/model --batch 16 --steps 20 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from vlmkit.checkpoints import from_pretrained
from vlmkit.config import TextConfig
from vlmkit.config.dit import DiTConfig
from vlmkit.models.dit import DiT, TextCondition
from vlmkit.tasks.imagine import ImagineSettings, initial_noise, sample
from vlmkit.training.recipes.t2i import PRESETS


def random_dit(preset: str, image_size: int, patch_size: int) -> DiT:
    p = PRESETS[preset]
    text = TextConfig(vocab_size=512, context_length=32, width=p["width"], layers=p["text_layers"], heads=p["heads"])
    config = DiTConfig(
        image_size=image_size,
        patch_size=patch_size,
        width=p["width"],
        layers=p["layers"],
        heads=p["heads"],
        mlp_dim=p["mlp_dim"],
        text=text,
    )
    model = DiT(config).eval()
    with torch.no_grad():  # out of the zero init, so the velocity is not trivially zero
        for param in model.parameters():
            param.add_(0.02 * torch.randn_like(param))
    return model


def diffusers_loop(model: DiT, text: TextCondition, noise: torch.Tensor, steps: int, guidance: float) -> torch.Tensor:
    """The same guided sampling as diffusers' pipelines write it, with its scheduler stepping."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(sigmas=torch.linspace(1.0, 0.0, steps + 1)[:-1].tolist(), device=noise.device)
    both = TextCondition.cat(model.null_condition(noise.shape[0]), text)
    x = noise
    for timestep in scheduler.timesteps:
        t = (timestep / 1000).expand(2 * x.shape[0])  # diffusers' timestep is 1000 sigma
        v_uncond, v_cond = model.velocity(torch.cat([x, x]), t, both).chunk(2)
        x = scheduler.step(v_uncond + guidance * (v_cond - v_uncond), timestep, x).prev_sample
    return x


def timed(run, repeats: int, clock) -> tuple[float, torch.Tensor]:
    """Best time by ``clock`` of ``repeats`` runs (after one warm-up) and the last output."""
    out = run()
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        out = run()
        if out.is_cuda:
            torch.cuda.synchronize()
        best = min(best, clock() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a trained t2i model directory (default: random weights)")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: process CPU seconds (a shared machine's wall "
        "time mostly measures other jobs); the images/s are then per CPU second",
    )
    args = parser.parse_args()

    device = torch.device(args.device)
    model = from_pretrained(args.model) if args.model else random_dit(args.preset, args.image_size, args.patch_size)
    model = model.to(device).eval()
    size = model.config.image_size
    ids = torch.randint(3, model.config.text.vocab_size, (args.batch, 12), device=device)
    mask = torch.ones_like(ids)
    noise = initial_noise(args.batch, (model.config.channels, size, size), seed=0).to(device)
    settings = ImagineSettings(steps=args.steps, guidance=args.guidance)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        text = model.encode_text(ids, mask)
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        ours_s, ours = timed(lambda: sample(model, text, noise, settings), args.repeats, clock)
        loop = lambda: diffusers_loop(model, text, noise, args.steps, args.guidance)  # noqa: E731
        theirs_s, theirs = timed(loop, args.repeats, clock)
    difference = (ours.float() - theirs.float()).abs().max().item()
    print(
        f"{size} px, batch {args.batch}, {args.steps} Euler steps, guidance {args.guidance}, {device.type}, "
        f"{args.clock} clock, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters"
    )
    print(f"vlmkit    {args.batch / ours_s:8.2f} images/s")
    print(f"diffusers {args.batch / theirs_s:8.2f} images/s")
    print(f"ratio (vlmkit / diffusers) {theirs_s / ours_s:.3f}; max |pixel difference| {difference:.2e}")


if __name__ == "__main__":
    main()
