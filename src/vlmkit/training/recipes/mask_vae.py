"""``mask-vae``: PaliGemma's mask tokenizer (``models.mask_tokenizer``) trained on a dataset's object masks.

Every object of a record that has a mask (COCO uncompressed RLE, as ShapesWorld writes its exact masks)
gives one training item: the mask cut to the object's box and resized to 64x64 (``processing.masks``),
as big_vision prepares PaliGemma's segmentation targets. The crops are made once, up front, and kept as
uint8 (4 KiB a mask), so an epoch costs no decoding. The held-out evaluation reports what the tokenizer
is for: the IoU (threshold 0.5) of each mask against its reconstruction through the 16 codes, both in the
64x64 crop and pasted back into its box at the image's size, and how much of the codebook is in use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from vlmkit.config.base import option
from vlmkit.config.mask_tokenizer import NUM_CODES, MaskTokenizerConfig
from vlmkit.data.records import ObjectAnnotation, Record
from vlmkit.data.sampling import Draws, epoch_order
from vlmkit.data.shapesworld.masks import rle_decode
from vlmkit.data.sources import scan_records
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import MaskTokenizer
from vlmkit.processing.masks import box_pixels, mask_crop, paste_mask
from vlmkit.training.objective import Prepared
from vlmkit.training.recipes.base import Recipe
from vlmkit.training.vq import MaskBatch, VqObjective, code_usage

EVAL_BATCH = 256


@dataclass
class MaskVaeRecipe(Recipe):
    """A ``MaskTokenizer`` trained on the masks of a dataset's objects."""

    name: ClassVar[str] = "mask-vae"
    summary: ClassVar[str] = "PaliGemma's mask tokenizer (VQ-VAE: 64x64 mask crops <-> 16 of 128 codes) on masks"

    embedding_dim: int = option(32, "size of a code vector")
    width: int = option(64, "channels of the widest conv layers (the others halve down to width / 8)")
    commitment: float = option(0.25, "weight of the commitment loss (latents pulled to their codes)", research=True)
    ema_decay: float = option(0.95, "decay of the codebook's moving averages", research=True)
    restart_below: float = option(
        1.0, "restart a code used by fewer latents per batch than this, on average (0: never)", research=True
    )
    eval_masks: int = option(2000, "held-out masks evaluated (the first of eval_data)")

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.width < 8 or self.width % 8:
            raise ConfigError(
                f"{where}.width: expected a multiple of 8 (the layers halve three times), got {self.width}"
            )
        if self.embedding_dim < 1 or self.eval_masks < 1:
            raise ConfigError(f"{where}: embedding_dim and eval_masks must be positive")
        if not 0 < self.ema_decay < 1:
            raise ConfigError(f"{where}.ema_decay: expected a number in (0, 1), got {self.ema_decay}")
        if self.commitment < 0 or self.restart_below < 0:
            raise ConfigError(f"{where}: commitment and restart_below must be >= 0")

    def model_config(self) -> MaskTokenizerConfig:
        w = self.width
        return MaskTokenizerConfig(
            num_codes=NUM_CODES,
            embedding_dim=self.embedding_dim,
            encoder_channels=(w // 8, w // 4, w // 2, w),
            decoder_channels=(w, w // 2, w // 4, w // 8),
        )

    def prepare(self) -> Prepared:
        crops = [_to_uint8(crop) for crop, _, _ in object_masks(self.data)]  # uint8 at once: 4 KiB a mask
        if not crops:
            raise InputError(f"{self.data}: no objects with masks (COCO uncompressed RLE) to train on")
        torch.manual_seed(self.train.seed)
        config = self.model_config()
        model = MaskTokenizer(config)
        objective = VqObjective(
            config.num_codes, config.embedding_dim, self.commitment, self.ema_decay, self.restart_below
        )
        evaluate = reconstruction_evaluation(self.eval_data, self.eval_masks) if self.eval_data else None
        return Prepared(model, objective, MaskCrops(torch.from_numpy(np.stack(crops)), self.train.seed), evaluate)


class MaskCrops:
    """Mask crops served by (epoch, index) from the epoch order of ``data.sampling``."""

    def __init__(self, crops: torch.Tensor, seed: int) -> None:
        self.crops = crops  # (N, 64, 64) uint8
        self.draws = Draws(lambda epoch: epoch_order(len(crops), seed, epoch))

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.crops) // (micro_batch * world_size)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> MaskBatch:
        items = self.draws.items(epoch, index, micro_batch, rank, world_size)
        return MaskBatch(self.crops[items].float() / 255.0)


def _to_uint8(crop: np.ndarray) -> np.ndarray:
    return np.round(crop * 255.0).astype(np.uint8)


def object_masks(spec: str, limit: int | None = None) -> Iterator[tuple[np.ndarray, list[float], dict[str, Any]]]:
    """(64x64 crop, box, RLE) of each object with a mask in the records of ``spec``, in record order;
    objects whose box is empty are skipped (nothing to tokenize)."""
    records = scan_records(spec, _has_mask)[0]
    count = 0
    for record in records:
        for position, annotation in enumerate(record.objects or []):
            if limit is not None and count >= limit:
                return
            if annotation.mask is None:
                continue
            full = _full_mask(annotation, f"{record.image}: objects[{position}].mask")
            x0, y0, x1, y1 = box_pixels(annotation.box, *full.shape)
            if x1 == x0 or y1 == y0:
                continue
            count += 1
            yield mask_crop(full, annotation.box), list(annotation.box), annotation.mask


def _has_mask(record: Record) -> bool:
    return any(a.mask is not None for a in record.objects or [])


def _full_mask(annotation: ObjectAnnotation, where: str) -> np.ndarray:
    mask = annotation.mask
    if not isinstance(mask, dict) or not isinstance(mask.get("counts"), list):
        kind = "polygons" if isinstance(mask, list) else "compressed RLE"
        raise InputError(f"{where}: {kind}; the mask-vae recipe reads COCO uncompressed RLE ({{'size', 'counts'}})")
    try:
        return rle_decode(mask)
    except InputError as error:
        raise InputError(f"{where}: {error}") from None


def reconstruction_evaluation(spec: str, limit: int) -> Callable[[nn.Module], dict[str, float]]:
    """The held-out evaluation: masks of ``spec`` (the first ``limit``) read once, scored at each call."""
    held_out = list(object_masks(spec, limit))
    if not held_out:
        raise InputError(f"{spec}: no objects with masks (COCO uncompressed RLE) to evaluate on")
    crops = torch.from_numpy(np.stack([crop for crop, _, _ in held_out]))

    def evaluate(model: nn.Module) -> dict[str, float]:
        return reconstruction_scores(model, crops, [(box, rle) for _, box, rle in held_out])  # type: ignore[arg-type]

    return evaluate


def reconstruction_scores(
    model: MaskTokenizer, crops: torch.Tensor, objects: list[tuple[list[float], dict[str, Any]]]
) -> dict[str, float]:
    """Mean IoU at 0.5 of each crop against ``decode(encode(crop))`` (``iou``) and of each exact mask
    against the reconstruction pasted into its box (``image_iou``); code perplexity and codes used."""
    codes = torch.cat([model.encode(crops[i : i + EVAL_BATCH]) for i in range(0, len(crops), EVAL_BATCH)])
    decoded = torch.cat([model.decode(codes[i : i + EVAL_BATCH]) for i in range(0, len(codes), EVAL_BATCH)])
    crop_iou = iou(decoded.float().cpu().numpy() > 0.5, crops.numpy() > 0.5)
    image_ious = []
    for reconstruction, (box, rle) in zip(decoded, objects, strict=True):
        exact = rle_decode(rle)
        pasted = paste_mask(reconstruction, box, exact.shape)
        image_ious.append(iou(pasted[None] > 0.5, exact[None])[0])
    perplexity, used = code_usage(codes, model.config.num_codes)
    return {
        "iou": float(crop_iou.mean()),
        "image_iou": float(np.mean(image_ious)),
        "perplexity": perplexity,
        "codes_used": float(used),
    }


def iou(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-mask IoU of two (N, H, W) boolean stacks; a pair with an empty union agrees fully (1.0)."""
    intersection = (predicted & target).sum(axis=(1, 2))
    union = (predicted | target).sum(axis=(1, 2))
    return np.where(union > 0, intersection / np.maximum(union, 1), 1.0)
