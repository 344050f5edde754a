"""``mae``: masked image modelling (He et al., 2022), a ViT image tower pretrained without text.

Each image shows the encoder a random ``1 - mask_ratio`` of its patches (drawn per (seed, epoch, index),
so resume is exact); a light decoder predicts the hidden ones' pixels, normalised per patch
(``training.masked_image``). The tower has the shape ``train clip`` would build from the same preset,
image size and stem, so ``train clip --vision-from RUN`` and ``train align --vision-from RUN`` start from
it. The held-out evaluation is the same loss on the first ``eval_images`` of ``eval_data`` under one fixed
mask; at the end, ``reconstructions.png`` in the run directory shows a few of them masked, reconstructed
and whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
from PIL import Image
from torch import nn

from vlmkit.checkpoints import save_pretrained
from vlmkit.config import clip_config
from vlmkit.config.base import option
from vlmkit.config.mae import MaeConfig
from vlmkit.data.sampling import Draws
from vlmkit.data.sources import ImageRecords, open_images
from vlmkit.errors import ConfigError
from vlmkit.models import MaskedAutoencoder
from vlmkit.models.mae import hidden_mask, patchify, unpatchify
from vlmkit.models.vision import random_patch_keep
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.training.masked_image import MaskedImageBatch, MaskedImageObjective, masked_mse, patch_targets
from vlmkit.training.objective import Prepared
from vlmkit.training.recipes.base import Recipe
from vlmkit.training.recipes.clip import PRESETS, default_eval_folder, seed_of
from vlmkit.visualize import Row, Tile, result_sheet, save_png

EVAL_SEED = 0
"""The held-out mask is the same at every evaluation, so the curve compares like with like."""
PICTURE = "reconstructions.png"


@dataclass
class MaeRecipe(Recipe):
    """A masked autoencoder on a dataset's images (captions, if any, are not used)."""

    name: ClassVar[str] = "mae"
    summary: ClassVar[str] = "masked image modelling (MAE): a ViT tower for `train clip/align --vision-from`"

    preset: Literal["tiny", "small", "base"] = option("tiny", "encoder shape (the clip recipe's presets)")
    image_size: int = option(64, "image side in pixels")
    mask_ratio: float = option(0.75, "share of each image's patches hidden from the encoder")
    conv_stem: int = option(0, "stride-2 conv layers before the patch projection", research=True)
    conv_stem_norm: Literal["none", "batch"] = option("none", "normalisation in the conv stem", research=True)
    decoder_width: int = option(64, "width of the light decoder", research=True)
    decoder_layers: int = option(2, "blocks of the light decoder", research=True)
    norm_pix_loss: bool = option(True, "targets normalised per patch (MAE's norm_pix_loss)", research=True)
    eval_images: int = option(256, "held-out images scored at each evaluation")
    pictures: int = option(8, "held-out images drawn in reconstructions.png (0: none)")

    def validate(self, where: str) -> None:
        super().validate(where)
        if not 0 < self.mask_ratio < 1:
            raise ConfigError(
                f"{where}.mask_ratio: expected a share in (0, 1) (MAE scores hidden patches), got {self.mask_ratio}"
            )
        if self.eval_images < 1 or self.pictures < 0:
            raise ConfigError(f"{where}: eval_images must be positive and pictures >= 0")

    def model_config(self) -> MaeConfig:
        p = PRESETS[self.preset]
        vision = clip_config(
            vision_width=p["width"],
            vision_layers=p["layers"],
            vision_heads=p["heads"],
            patch_size=p["patch_size"],
            image_size=self.image_size,
            act="gelu",
        ).vision
        vision.conv_stem, vision.conv_stem_norm = self.conv_stem, self.conv_stem_norm
        width = self.decoder_width
        return MaeConfig.from_dict(
            dict(
                vision=vision.to_dict(),
                decoder_width=width,
                decoder_layers=self.decoder_layers,
                decoder_heads=max(1, width // 32),
                decoder_mlp_dim=4 * width,
            ),
            where=type(self).__name__,
        )

    def prepare(self) -> Prepared:
        torch.manual_seed(self.train.seed)
        processor = ImagePreprocessor.clip(self.image_size)
        images = open_images(self.data, processor, mode=self.data_mode, buffer=self.shuffle_buffer)  # type: ignore[arg-type]
        model = MaskedAutoencoder(self.model_config())
        model.image_processor = processor  # type: ignore[assignment]
        patch = model.config.vision.patch_size
        objective = MaskedImageObjective(patch, self.norm_pix_loss)
        batches = MaskedImages(images, processor, self.train.seed, self.mask_ratio, model.config.vision.grid**2)
        eval_folder = self.eval_data or default_eval_folder(self.data)
        self._held_out = held_out_pixels(eval_folder, processor, self.eval_images) if eval_folder else None

        def evaluate(trained: nn.Module) -> dict[str, float]:
            if self._held_out is None:
                return {}
            batch = self._held_out_batch(processor, model.config.vision.grid**2).to(trained.device)  # type: ignore[arg-type]
            predicted = trained(batch.pixels, batch.patch_keep)
            target = patch_targets(batch.pixels, patch, self.norm_pix_loss)
            hidden = hidden_mask(batch.patch_keep, target.shape[1])
            return {"reconstruction_loss": masked_mse(predicted, target, hidden).item()}

        return Prepared(model, objective, batches, evaluate)

    def _held_out_batch(self, processor: ImagePreprocessor, patches: int, limit: int | None = None) -> MaskedImageBatch:
        pixels = self._held_out[:limit]  # type: ignore[index]
        keep = random_patch_keep(len(pixels), patches, self.mask_ratio, torch.Generator().manual_seed(EVAL_SEED))
        return MaskedImageBatch(processor.normalize(pixels), keep)

    def export(self, model: nn.Module, run_dir: Path) -> Path:
        if self.pictures and self._held_out is not None:
            save_png(self.reconstruction_sheet(model), run_dir / PICTURE)  # type: ignore[arg-type]
        return save_pretrained(model, run_dir / "model")

    def _predicted_label(self) -> str:
        return "pred+orig stats" if self.norm_pix_loss else "reconstruction"

    def reconstruction_sheet(self, model: MaskedAutoencoder) -> Image.Image:
        """One row per held-out image: the encoder's view (hidden patches grey), the reconstruction (visible
        patches as they are, hidden ones predicted) and the original. With ``norm_pix_loss`` the model predicts
        only each patch's standardised pattern, so a hidden patch is drawn with the original's mean and
        variance: its colour comes from the original, its pattern from the model."""
        processor: ImagePreprocessor = model.image_processor  # type: ignore[assignment]
        vision = model.config.vision
        batch = self._held_out_batch(processor, vision.grid**2, self.pictures).to(model.device)
        with torch.inference_mode():
            model.eval()
            predicted = model(batch.pixels, batch.patch_keep).float()
        original = patchify(batch.pixels.float(), vision.patch_size)
        if self.norm_pix_loss:  # predictions are standardised patches: give them the original's statistics
            mean, var = original.mean(dim=-1, keepdim=True), original.var(dim=-1, keepdim=True)
            predicted = predicted * (var + 1e-6) ** 0.5 + mean
        hidden = hidden_mask(batch.patch_keep, original.shape[1]).unsqueeze(-1)
        grey = torch.zeros_like(original)  # zero is the mean colour after normalisation
        views = [torch.where(hidden, grey, original), torch.where(hidden, predicted, original), original]
        columns = [_to_pil(unpatchify(v, vision.patch_size, vision.channels), processor) for v in views]
        return result_sheet(
            [
                Row(
                    "",
                    [
                        Tile(images[i], label)
                        for images, label in zip(columns, ("masked", self._predicted_label(), "original"), strict=True)
                    ],
                )
                for i in range(len(batch.pixels))
            ],
            tile=96,
            caption_lines=1,
        )


def held_out_pixels(spec: str, processor: ImagePreprocessor, limit: int) -> torch.Tensor:
    """The first ``limit`` images of ``spec`` as uint8 (N, 3, H, W)."""
    images = open_images(spec, processor, mode="memory", limit=limit)
    return images.pixels(range(len(images.records)))


def _to_pil(pixels: torch.Tensor, processor: ImagePreprocessor) -> list[Image.Image]:
    """Normalised (B, 3, H, W) pixels back to images (the inverse of ``ImagePreprocessor.normalize``)."""
    std = torch.tensor(processor.std).view(1, 3, 1, 1)
    mean = torch.tensor(processor.mean).view(1, 3, 1, 1)
    values = ((pixels.cpu() * std + mean) / processor.rescale_factor).clamp(0, 255).round().to(torch.uint8)
    return [Image.fromarray(v.permute(1, 2, 0).numpy()) for v in values]


class MaskedImages:
    """Images and their visible patches, served by (epoch, index) from the epoch order of ``data.sampling``."""

    def __init__(
        self, images: ImageRecords, processor: ImagePreprocessor, seed: int, mask_ratio: float, patches: int
    ) -> None:
        self.images, self.processor, self.seed = images, processor, seed
        self.mask_ratio, self.patches = mask_ratio, patches
        self.draws = Draws(lambda epoch: images.order(seed, epoch))

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.images.records) // (micro_batch * world_size)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> MaskedImageBatch:
        items = self.draws.items(epoch, index, micro_batch, rank, world_size)
        generator = torch.Generator().manual_seed(seed_of(self.seed, epoch, index, rank))
        keep = random_patch_keep(len(items), self.patches, self.mask_ratio, generator)
        return MaskedImageBatch(self.processor.normalize(self.images.pixels(items)), keep)
