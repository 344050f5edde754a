"""CLIP and SigLIP training: from scratch on a vlmkit dataset, or fine-tuning a loaded model.

From scratch, the recipe trains a byte-level BPE tokenizer on the training captions and builds the
model from a named preset; from ``init_from`` it keeps the loaded model's tokenizer and image
processor. ``lock_image`` is LiT (a frozen image tower, projection included); ``lock_text`` freezes
the text side.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import ConfigBase, DualEncoderConfig, clip_config, siglip_config
from vlmkit.data.records import RecordDataset
from vlmkit.data.shapesworld.generate import vocabulary
from vlmkit.data.shapesworld.language import LABEL_PARTS, ZERO_SHOT_TEMPLATE, interchangeable_words
from vlmkit.errors import ConfigError, InputError
from vlmkit.evaluation.zero_shot import retrieval_recall, zero_shot_accuracy
from vlmkit.models import DualEncoder
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.text import TextTokenizer, train_bpe_tokenizer
from vlmkit.training.caption_words import CaptionWordHead, CaptionWordTargets, caption_word_loss
from vlmkit.training.data import normalize, preload_images
from vlmkit.training.losses import ClipLoss, SigLipLoss
from vlmkit.training.negatives import WordSwapper
from vlmkit.training.trainer import TrainConfig, epoch_indices, shard

# Tower shapes by preset; image size and vocabulary come from the data.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(width=128, layers=4, heads=4, patch_size=8, text_width=128, text_layers=4, embed_dim=128),
    "small": dict(width=256, layers=6, heads=8, patch_size=8, text_width=256, text_layers=6, embed_dim=256),
    "base": dict(width=768, layers=12, heads=12, patch_size=32, text_width=512, text_layers=12, embed_dim=512),
}


@dataclass
class ContrastiveRecipe(ConfigBase):
    """Everything that defines a contrastive run; saved as ``run.json`` next to its checkpoints."""

    family: Literal["clip", "siglip"] = "clip"
    data: str = ""  # dataset folder (records.jsonl + images)
    eval_data: str | None = None  # held-out dataset folder; default: a sibling "val" folder if present
    preset: Literal["tiny", "small", "base"] = "tiny"
    image_size: int = 64
    conv_stem: int = 0  # stride-2 conv layers before the patch projection (from scratch only)
    conv_stem_norm: Literal["none", "batch"] = "none"
    init_from: str | None = None  # pretrained model directory or hub id to fine-tune
    lock_image: bool = False
    lock_text: bool = False
    hard_negatives: bool = False  # one word-swapped false caption per image (ShapesWorld data)
    caption_word_loss: float = 0.0  # weight of the image tower's caption-word classification loss (0: off)
    vocab_size: int = 512  # of the tokenizer trained from the captions (from scratch only)
    label_key: str = "color_shape"  # record["labels"][label_key] is the zero-shot target
    templates: list[str] = field(default_factory=lambda: [ZERO_SHOT_TEMPLATE])
    eval_images: int = 1000
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self, where: str) -> None:
        if not self.data:
            raise ConfigError(f"{where}.data: a dataset folder is required")


def build_model(recipe: ContrastiveRecipe, captions: list[str]) -> DualEncoder:
    if recipe.init_from:
        model = from_pretrained(recipe.init_from)
        if not isinstance(model, DualEncoder) or model.tokenizer is None or model.image_processor is None:
            raise InputError(f"{recipe.init_from}: fine-tuning needs a dual encoder with a tokenizer and processor")
        return model.train()
    siglip = recipe.family == "siglip"
    tokenizer = train_bpe_tokenizer(captions, recipe.vocab_size, max_length=64, pad_to_max_length=siglip)
    longest = int(tokenizer(captions[:2000]).attention_mask.sum(1).max()) if captions else 16
    context = min(64, longest + 8)
    tokenizer = TextTokenizer.from_dict({**tokenizer.to_dict(), "max_length": context}, tokenizer.tokenizer)
    p = PRESETS[recipe.preset]
    if siglip:
        config = siglip_config(
            width=p["width"],
            layers=p["layers"],
            heads=p["heads"],
            patch_size=p["patch_size"],
            image_size=recipe.image_size,
            vocab_size=tokenizer.vocab_size,
            context_length=context,
        )
    else:
        config = clip_config(
            vision_width=p["width"],
            vision_layers=p["layers"],
            vision_heads=p["heads"],
            patch_size=p["patch_size"],
            image_size=recipe.image_size,
            text_width=p["text_width"],
            text_layers=p["text_layers"],
            text_heads=p["heads"],
            embed_dim=p["embed_dim"],
            vocab_size=tokenizer.vocab_size,
            context_length=context,
            act="gelu",
        )
    config.vision.conv_stem = recipe.conv_stem
    config.vision.conv_stem_norm = recipe.conv_stem_norm
    config.text.eos_token_id = tokenizer.eos_id  # type: ignore[assignment]
    config.text.pad_token_id = tokenizer.pad_id
    DualEncoderConfig.from_dict(config.to_dict())  # validate
    model = DualEncoder(config)
    model.tokenizer = tokenizer
    model.image_processor = (ImagePreprocessor.siglip if siglip else ImagePreprocessor.clip)(recipe.image_size)
    return model


def lock_towers(model: DualEncoder, lock_image: bool, lock_text: bool) -> None:
    for locked, modules in (
        (lock_image, (model.vision, model.image_projection)),
        (lock_text, (model.text, model.text_projection, model.text.token_embedding)),
    ):
        if locked:
            for module in modules:
                module.requires_grad_(False)


@dataclass
class ImageTextSplit:
    pixels: torch.Tensor  # uint8 (N, 3, H, W)
    captions: list[list[str]]
    labels: list[str | None]


def load_split(
    folder: str | Path, processor: ImagePreprocessor, label_key: str, limit: int | None = None
) -> ImageTextSplit:
    dataset = RecordDataset(folder)
    records = [r for r in dataset.records if r.captions][:limit]
    if not records:
        raise InputError(f"{folder}: no records with captions")
    pixels = preload_images([dataset.image_path(r) for r in records], processor, desc=f"decode {Path(folder).name}")
    labels = [(r.labels or {}).get(label_key) for r in records]
    return ImageTextSplit(pixels, [list(r.captions or []) for r in records], labels)


def swapper_for(recipe: ContrastiveRecipe) -> WordSwapper | None:
    """The hard-negative maker for the recipe's data: its colour, shape and size words."""
    if not recipe.hard_negatives:
        return None
    words = vocabulary(recipe.data)
    if words is None:
        raise ConfigError(
            f"hard_negatives: {recipe.data} is not a ShapesWorld folder (no shapesworld.json), so there are no "
            "known groups of interchangeable words to swap"
        )
    return WordSwapper(interchangeable_words(*words))


class ContrastiveTask:
    """Random caption per image per epoch (plus, with a ``swapper``, a false twin of it); loss on the
    model's own temperature (and bias)."""

    def __init__(
        self,
        model: DualEncoder,
        train: ImageTextSplit,
        evaluation: ImageTextSplit | None,
        recipe: ContrastiveRecipe,
        swapper: WordSwapper | None = None,
    ) -> None:
        self.model, self.train, self.evaluation, self.recipe = model, train, evaluation, recipe
        self.swapper = swapper
        self.tokenizer: TextTokenizer = model.tokenizer  # type: ignore[assignment]
        self.word_targets = CaptionWordTargets(train.captions, self.tokenizer) if recipe.caption_word_loss else None
        self.processor: ImagePreprocessor = model.image_processor  # type: ignore[assignment]
        self.loss_fn: nn.Module = SigLipLoss() if model.config.head == "sigmoid" else ClipLoss()
        self._order: tuple[int, torch.Tensor] | None = None
        known = {label for label in train.labels + (evaluation.labels if evaluation else []) if label}
        self.classnames = sorted(known)

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.train.captions) // (micro_batch * world_size)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> Any:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_indices(len(self.train.captions), self.recipe.train.seed, epoch))
        items = shard(self._order[1], index, micro_batch, rank, world_size)
        rngs = [random.Random(f"{self.recipe.train.seed}/{epoch}/{i}") for i in items]
        texts = [rng.choice(self.train.captions[i]) for rng, i in zip(rngs, items, strict=True)]
        if self.swapper is not None:
            # A caption with nothing to swap borrows its neighbour's: an ordinary in-batch negative.
            swapped = [self.swapper(text, rng) for text, rng in zip(texts, rngs, strict=True)]
            texts += [s if s is not None else texts[(k + 1) % len(items)] for k, s in enumerate(swapped)]
        tokens = self.tokenizer(texts)
        words = self.word_targets.rows(items) if self.word_targets is not None else None
        return normalize(self.train.pixels[items], self.processor), tokens.input_ids, tokens.attention_mask, words

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        pixels, ids, mask, words = batch
        raw: DualEncoder = model.module if hasattr(model, "module") else model  # type: ignore[assignment]
        out = model(pixels, ids, mask if raw.config.text.causal else None)
        rows = pixels.shape[0]
        texts, negatives = out.text_embeds[:rows], (out.text_embeds[rows:] if self.swapper is not None else None)
        if raw.logit_bias is None:
            loss = self.loss_fn(out.image_embeds, texts, raw.logit_scale, negatives)
        else:
            loss = self.loss_fn(out.image_embeds, texts, raw.logit_scale, raw.logit_bias, negatives)
        extras = {"logit_scale": raw.logit_scale.item()}
        if words is not None:
            word_loss = caption_word_loss(raw.caption_word_head(out.image_embeds), words)
            loss = loss + self.recipe.caption_word_loss * word_loss
            extras["caption_word_loss"] = word_loss.item()
        if raw.logit_bias is not None:
            extras["logit_bias"] = raw.logit_bias.item()
        return loss, extras

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        split = self.evaluation
        if split is None:
            return {}
        parts = LABEL_PARTS.get(self.recipe.label_key, ())
        return evaluate_split(model, split, self.classnames, self.recipe.templates, parts)  # type: ignore[arg-type]


def encode_pixels(model: DualEncoder, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    processor: ImagePreprocessor = model.image_processor  # type: ignore[assignment]
    with torch.inference_mode():
        return torch.cat(
            [
                model.encode_image(normalize(pixels[i : i + batch_size], processor).to(model.device)).float().cpu()
                for i in range(0, len(pixels), batch_size)
            ]
        )


def evaluate_split(
    model: DualEncoder, split: ImageTextSplit, classnames: list[str], templates: list[str], parts: tuple[str, ...] = ()
) -> dict[str, float]:
    """Zero-shot accuracy on the split's labels and recall@K with each image's first (canonical) caption."""
    image_embeds = encode_pixels(model, split.pixels)
    metrics: dict[str, float] = {}
    labelled = [i for i, label in enumerate(split.labels) if label]
    if labelled and classnames:
        metrics.update(
            zero_shot_accuracy(
                model, image_embeds[labelled], [split.labels[i] for i in labelled], classnames, templates, parts
            )
        )
    metrics.update(retrieval_recall(model, image_embeds, [c[:1] for c in split.captions], ks=(1, 5)))
    return metrics


def default_eval_folder(data: str) -> str | None:
    sibling = Path(data).parent / "val"
    return str(sibling) if (sibling / "records.jsonl").exists() and Path(data).resolve() != sibling.resolve() else None


def prepare(recipe: ContrastiveRecipe) -> tuple[DualEncoder, ContrastiveTask]:
    records = RecordDataset(recipe.data).records
    captions = [c for r in records for c in (r.captions or [])]
    torch.manual_seed(recipe.train.seed)  # the initial weights are part of what the seed reproduces
    model = build_model(recipe, captions[:50_000])
    lock_towers(model, recipe.lock_image, recipe.lock_text)
    if recipe.caption_word_loss:  # a training-only head; `export` leaves it out
        model.caption_word_head = CaptionWordHead(model.config.embed_dim, model.tokenizer.vocab_size)  # type: ignore[union-attr]
    processor: ImagePreprocessor = model.image_processor  # type: ignore[assignment]
    train = load_split(recipe.data, processor, recipe.label_key)
    eval_folder = recipe.eval_data or default_eval_folder(recipe.data)
    evaluation = load_split(eval_folder, processor, recipe.label_key, recipe.eval_images) if eval_folder else None
    return model, ContrastiveTask(model, train, evaluation, recipe, swapper_for(recipe))


def export(model: DualEncoder, run_dir: Path) -> Path:
    if hasattr(model, "caption_word_head"):
        del model.caption_word_head
    return save_pretrained(model, run_dir / "model")
