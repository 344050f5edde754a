"""Text to image: ``generate_images(model, prompts)`` samples a DiT with classifier-free guidance.

Image ``k`` of a call starts from noise seeded by ``seed + k`` alone, so the same seed gives the same
pixels whatever the batch size or how many images are asked for (on one device; CPU and GPU kernels
differ in the last bits). On a GPU the model runs under bf16 autocast; on the CPU in float32.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vlmkit.errors import InputError
from vlmkit.models.dit import DiT, TextCondition
from vlmkit.models.flow import SAMPLERS, Sampler, guided, integrate
from vlmkit.processing.text import TextTokenizer

MAX_IMAGES = 64
"""Most images one call (or one HTTP request) may ask for."""
MAX_STEPS = 1000


@dataclass(frozen=True)
class ImagineSettings:
    """How to sample; ``check`` refuses what cannot be meant (one line naming the field)."""

    steps: int = 20
    guidance: float = 3.0
    sampler: Sampler = "euler"
    shift: float = 1.0
    seed: int = 0

    def check(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise InputError(f"steps: expected an integer in 1..{MAX_STEPS}, got {self.steps!r}")
        if not (isinstance(self.guidance, (int, float)) and math.isfinite(self.guidance) and 0 <= self.guidance <= 100):
            raise InputError(f"guidance: expected a finite number in 0..100, got {self.guidance!r}")
        if not (isinstance(self.shift, (int, float)) and math.isfinite(self.shift) and self.shift > 0):
            raise InputError(f"shift: expected a positive finite number, got {self.shift!r}")
        if self.sampler not in SAMPLERS:
            raise InputError(f"sampler: expected one of {list(SAMPLERS)}, got {self.sampler!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63 - MAX_IMAGES:
            raise InputError(f"seed: expected a non-negative integer, got {self.seed!r}")


def check_prompts(prompts: Sequence[str], images_per_prompt: int) -> None:
    if isinstance(prompts, str):
        raise InputError("prompts: expected a list of strings; wrap a single prompt in a list")
    if not prompts:
        raise InputError("prompts: expected at least one prompt")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f"prompts[{i}]: expected a non-empty string, got {prompt!r}")
    if isinstance(images_per_prompt, bool) or not isinstance(images_per_prompt, int) or images_per_prompt < 1:
        raise InputError(f"images per prompt: expected a positive integer, got {images_per_prompt!r}")
    if len(prompts) * images_per_prompt > MAX_IMAGES:
        raise InputError(
            f"{len(prompts)} prompt(s) x {images_per_prompt} image(s) is {len(prompts) * images_per_prompt} images; "
            f"at most {MAX_IMAGES} per call"
        )


def initial_noise(count: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """(count, C, H, W) standard normal noise, image ``k`` from a CPU generator seeded ``seed + k``."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed + k)) for k in range(count)])


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Samples in [-1, 1] (the DiT's pixel range) -> uint8 (B, 3, H, W)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


@torch.inference_mode()
def generate_images(
    model: DiT,
    prompts: Sequence[str],
    images_per_prompt: int = 1,
    settings: ImagineSettings | None = None,
    batch_size: int = 16,
) -> torch.Tensor:
    """uint8 images (len(prompts) * images_per_prompt, 3, H, W), prompt-major (prompt 0's images first)."""
    settings = settings or ImagineSettings()
    settings.check()
    check_prompts(prompts, images_per_prompt)
    tokenizer: TextTokenizer | None = model.tokenizer
    if tokenizer is None:
        raise InputError("the model has no tokenizer (load it with vlmkit.load or from_pretrained)")
    config = model.config
    texts = [p for p in prompts for _ in range(images_per_prompt)]
    noise = initial_noise(len(texts), (config.channels, config.image_size, config.image_size), settings.seed)
    device = model.device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    out = []
    try:
        with autocast:
            for start in range(0, len(texts), batch_size):
                tokens = tokenizer(texts[start : start + batch_size]).to(device)
                text = model.encode_text(tokens.input_ids, tokens.attention_mask)
                x = noise[start : start + batch_size].to(device)
                out.append(to_uint8(sample(model, text, x, settings)))
    finally:
        model.train(was_training)
    return torch.cat(out)


def sample(model: DiT, text: TextCondition, noise: torch.Tensor, settings: ImagineSettings) -> torch.Tensor:
    """Integrate the guided flow from ``noise`` to images in [-1, 1] (float, on the model's device)."""
    both = TextCondition.cat(model.null_condition(noise.shape[0]), text)
    velocity = guided(
        lambda x, t: model.velocity(x, t, text),
        lambda x, t: model.velocity(x, t, both),
        settings.guidance,
    )
    return integrate(velocity, noise, settings.steps, settings.sampler, settings.shift).float()
