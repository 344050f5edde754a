"""Typed training batches: what a recipe's data hands its objective, moved to the device by the trainer.

A batch is a dataclass of tensors, not a tuple, so an objective reads ``batch.labels`` instead of
unpacking positions that differ between recipes, and ``to(device)`` moves every tensor field at once:
data is built on the CPU, where the preloaded images live, and no recipe needs to know where training
runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


class Batch:
    """Base of every batch dataclass: ``to(device)`` returns a copy with its tensors on ``device``."""

    def to(self, device: torch.device):
        moved = {
            f.name: value.to(device, non_blocking=True)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if isinstance(value := getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)  # type: ignore[type-var]


@dataclass
class ImageTextBatch(Batch):
    """Images and their captions for a contrastive loss.

    ``input_ids`` may hold more rows than ``pixels``: rows past ``len(pixels)`` are one false caption
    per image (hard negatives). ``attention_mask`` is None for towers that read the padded sequence
    (SigLIP pads to a fixed length and pools the last token). ``word_targets`` are the caption-word
    loss's target distributions, when that loss is on. ``patch_keep`` names the patches the image tower
    sees (FLIP's patch dropping), None for all. ``vision_tokens`` stand in for ``pixels`` when a CNN
    tower's frozen backbone was run once and cached (``training.vision_cache``).
    """

    pixels: torch.Tensor | None  # (B, 3, H, W) float32, normalised
    input_ids: torch.Tensor  # (B or 2B, T)
    attention_mask: torch.Tensor | None = None
    word_targets: torch.Tensor | None = None  # (B, vocab)
    patch_keep: torch.Tensor | None = None  # (B, K) patch indices
    vision_tokens: torch.Tensor | None = None  # (B, cells, channels) float16

    @property
    def images(self) -> int:
        return len(self.pixels if self.pixels is not None else self.vision_tokens)  # type: ignore[arg-type]

    @property
    def hard_negatives(self) -> torch.Tensor | None:
        """The rows of text beyond one per image, or None."""
        return None if self.input_ids.shape[0] == self.images else self.input_ids[self.images :]


@dataclass
class ChatBatch(Batch):
    """Token sequences with next-token labels (-100 where no loss is taken), and the images they show:
    pixels for a tower that trains, or a frozen tower's cached tokens, or neither for text alone.

    Images their processor lays out one by one come as the processor gives a batch of them, with what the
    model reads beside the pixels by its Hugging Face name (``image_arguments``), so an objective passes them
    on without knowing the family.
    """

    input_ids: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T)
    pixels: torch.Tensor | None = None  # (B, 3, H, W) float32, normalised; or the processor's pixel_values
    vision_tokens: torch.Tensor | None = None  # (B, N, D) the tower's output, before the projector
    image_sizes: torch.Tensor | None = None  # (N, 2) LLaVA-NeXT: pixels are (N, 1 + most tiles, 3, S, S)
    image_grid_thw: torch.Tensor | None = None  # (N, 3) Qwen2-VL: pixels are the images' flattened patches
    pixel_attention_mask: torch.Tensor | None = None  # (N, most crops, S, S) Idefics3: pixels (N, crops, 3, S, S)

    @property
    def image_arguments(self) -> dict[str, torch.Tensor]:
        """What the model reads beside the pixels, by its Hugging Face name (nothing for fixed-size images)."""
        names = ("image_sizes", "image_grid_thw", "pixel_attention_mask")
        return {name: value for name in names if (value := getattr(self, name)) is not None}
