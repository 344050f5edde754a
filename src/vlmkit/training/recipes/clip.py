"""CLIP and SigLIP training: from scratch on a vlmkit dataset, or fine-tuning a loaded model.

From scratch, the recipe trains a byte-level BPE tokenizer on the training captions and builds the
model from a named preset; from ``init_from`` it keeps the loaded model's tokenizer and image
processor. ``vision_from`` starts the image tower from another run's (a ``train mae`` or ``train clip``
model), keeping its shape and preprocessing; or, from ``vlmkit:conse-effnet-minilm`` (or a CLIP built so), takes
that ImageNet CNN as a frozen backbone whose tokens are computed once and cached, and trains only the head that
pools them (``models.cnn_tower``) with the text tower. ``mask_ratio`` is FLIP: each training image shows its ViT a
random subset of its patches (drawn per (seed, epoch, index), so resume is exact); evaluation sees them
all. ``lock_image`` is LiT (a frozen image tower, projection included); ``lock_text`` freezes
the text side. ``siglip`` is the same recipe with the sigmoid head and SigLIP's preprocessing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch

from vlmkit.checkpoints import from_pretrained
from vlmkit.config import (
    DualEncoderConfig,
    EfficientNetConfig,
    ImagePoolConfig,
    VisionConfig,
    clip_config,
    siglip_config,
)
from vlmkit.config.base import option
from vlmkit.data.records import Record
from vlmkit.data.sampling import Draws
from vlmkit.data.shapesworld.generate import vocabulary
from vlmkit.data.shapesworld.language import LABEL_PARTS, ZERO_SHOT_TEMPLATE, interchangeable_words
from vlmkit.data.sources import ImageRecords, PreloadedImages, open_images
from vlmkit.errors import ConfigError, InputError
from vlmkit.evaluation.zero_shot import retrieval_recall, zero_shot_accuracy
from vlmkit.models import DualEncoder, VisionTransformer
from vlmkit.models.cnn_tower import CnnTower
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.models.vision import random_patch_keep
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.text import TextTokenizer, train_bpe_tokenizer
from vlmkit.training.batches import ImageTextBatch
from vlmkit.training.caption_words import CaptionWordHead, CaptionWordTargets
from vlmkit.training.negatives import WordSwapper
from vlmkit.training.objective import Prepared
from vlmkit.training.objectives import ContrastiveObjective
from vlmkit.training.recipes.align import vision_tower
from vlmkit.training.recipes.base import Recipe
from vlmkit.training.vision_cache import frozen_vision_tokens

# Tower shapes by preset; image size and vocabulary come from the data.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(width=128, layers=4, heads=4, patch_size=8, text_width=128, text_layers=4, embed_dim=128),
    "small": dict(width=256, layers=6, heads=8, patch_size=8, text_width=256, text_layers=6, embed_dim=256),
    "base": dict(width=768, layers=12, heads=12, patch_size=32, text_width=512, text_layers=12, embed_dim=512),
}


def _has_captions(record: Record) -> bool:
    return bool(record.captions)


ImageTower = VisionTransformer | EfficientNet


def image_tower(source: str) -> tuple[ImageTower, ImagePreprocessor]:
    """The image tower of a run or model (``align.vision_tower``) for a dual encoder to start from: a ViT, or a
    CNN that becomes the frozen backbone of a ``CnnTower``."""
    tower, processor = vision_tower(source)
    if not isinstance(tower, ImageTower):
        raise InputError(f"{source}: --vision-from needs a ViT or an EfficientNet tower, got {type(tower).__name__}")
    return tower, processor


@dataclass
class ClipRecipe(Recipe):
    """Contrastive image-text training with CLIP's softmax loss."""

    name: ClassVar[str] = "clip"
    summary: ClassVar[str] = "contrastive CLIP training or fine-tuning"
    sigmoid: ClassVar[bool] = False

    preset: Literal["tiny", "small", "base"] = option("tiny", "tower shapes, from scratch")
    image_size: int = option(64, "image side in pixels, from scratch")
    init_from: str | None = option(None, "pretrained model directory or hub id to fine-tune", flag="--from")
    vision_from: str | None = option(
        None,
        "start the image tower from a `train mae` or `train clip` run (its shape replaces the preset's), or take "
        "vlmkit:conse-effnet-minilm's ImageNet CNN as a frozen backbone under a trained pooling head",
    )
    vision_layer: int = option(
        -1, "with a CNN from --vision-from: the feature map its pooling head reads (-1: the head's; 5: stage 5's 14x14)"
    )
    cell_colours: bool = option(
        False, "with a CNN from --vision-from: the pooling head also reads each feature-map cell's mean colour"
    )
    mask_ratio: float = option(0.0, "FLIP: share of image patches dropped per image in training (eval sees all)")
    lock_image: bool = option(False, "freeze the image tower (LiT)")
    lock_text: bool = option(False, "freeze the text tower")
    eval_images: int = option(1000, "held-out images scored at each evaluation")
    conv_stem: int = option(0, "stride-2 conv layers before the patch projection (from scratch)", research=True)
    conv_stem_norm: Literal["none", "batch"] = option("none", "normalisation in the conv stem", research=True)
    hard_negatives: bool = option(
        False, "add a one-word-swapped false caption per image (ShapesWorld colour/shape/size words)", research=True
    )
    caption_word_loss: float = option(
        0.0, "weight of a loss that predicts caption words from the image (0: off)", research=True
    )
    vocab_size: int = option(512, "size of the tokenizer trained on the captions (from scratch)", research=True)
    label_key: str = option("color_shape", "record['labels'][KEY] is the zero-shot target", research=True)
    templates: list[str] = option(factory=lambda: [ZERO_SHOT_TEMPLATE], help="zero-shot prompt templates", cli=False)

    def validate(self, where: str) -> None:
        super().validate(where)
        if not 0 <= self.mask_ratio < 1:
            raise ConfigError(f"{where}.mask_ratio: expected a share in [0, 1), got {self.mask_ratio}")
        if self.vision_from and self.init_from:
            raise ConfigError(f"{where}.vision_from: only from scratch; --from already brings an image tower")

    def prepare(self) -> Prepared:
        torch.manual_seed(self.train.seed)  # the initial weights are part of what the seed reproduces
        pretrained = self._pretrained()
        tower = image_tower(self.vision_from) if self.vision_from else None
        if not (tower and isinstance(tower[0], EfficientNet)) and (self.cell_colours or self.vision_layer != -1):
            raise ConfigError(
                "cell_colours, vision_layer: set the pooling head of a CNN tower, which needs --vision-from a CNN "
                "(e.g. vlmkit:conse-effnet-minilm)"
            )
        processor = pretrained.image_processor if pretrained else tower[1] if tower else self.image_processor()
        images = open_images(self.data, processor, _has_captions, mode=self.data_mode, buffer=self.shuffle_buffer)  # type: ignore[arg-type]
        captions = [c for r in images.records for c in r.captions or []]
        model = pretrained or self.new_model(captions[:50_000], processor, tower[0] if tower else None)  # type: ignore[arg-type]
        self._lock(model)
        tokenizer: TextTokenizer = model.tokenizer  # type: ignore[assignment]
        word_head = CaptionWordHead(model.config.embed_dim, tokenizer.vocab_size) if self.caption_word_loss else None
        eval_folder = self.eval_data or default_eval_folder(self.data)
        held_out = (
            ImageTextSplit.load(eval_folder, processor, self.label_key, self.eval_images) if eval_folder else None
        )
        batches = ContrastiveBatches(
            images, model, self.train.seed, self._swapper(), word_head is not None, self.mask_ratio
        )
        known = [(r.labels or {}).get(self.label_key) for r in images.records]
        classnames = sorted({label for label in known + (held_out.labels if held_out else []) if label})

        def evaluate(trained: torch.nn.Module) -> dict[str, float]:
            if held_out is None:
                return {}
            parts = LABEL_PARTS.get(self.label_key, ())
            return evaluate_split(trained, held_out, classnames, self.templates, parts)  # type: ignore[arg-type]

        objective = ContrastiveObjective(self.sigmoid, word_head, self.caption_word_loss)
        return Prepared(model, objective, batches, evaluate)

    def _pretrained(self) -> DualEncoder | None:
        """The model to fine-tune (``init_from``), or None to build one from scratch."""
        if not self.init_from:
            return None
        model = from_pretrained(self.init_from)
        if not isinstance(model, DualEncoder) or model.tokenizer is None or model.image_processor is None:
            raise InputError(f"{self.init_from}: fine-tuning needs a dual encoder with a tokenizer and processor")
        return model.train()

    def image_processor(self) -> ImagePreprocessor:
        return (ImagePreprocessor.siglip if self.sigmoid else ImagePreprocessor.clip)(self.image_size)

    def new_model(
        self, captions: list[str], processor: ImagePreprocessor, image_tower: ImageTower | None = None
    ) -> DualEncoder:
        """A model of the preset's shape, with a BPE tokenizer trained on ``captions``; with ``image_tower``,
        the image tower is a copy of that one (shape and weights), or, for a CNN, the backbone of a
        ``CnnTower`` whose pooling head has the preset's width."""
        tokenizer = train_bpe_tokenizer(captions, self.vocab_size, max_length=64, pad_to_max_length=self.sigmoid)
        longest = int(tokenizer(captions[:2000]).attention_mask.sum(1).max()) if captions else 16
        context = min(64, longest + 8)
        tokenizer = TextTokenizer.from_dict({**tokenizer.to_dict(), "max_length": context}, tokenizer.tokenizer)
        p = PRESETS[self.preset]
        tower = dict(patch_size=p["patch_size"], image_size=self.image_size, vocab_size=tokenizer.vocab_size)
        if self.sigmoid:
            config = siglip_config(
                width=p["width"], layers=p["layers"], heads=p["heads"], context_length=context, **tower
            )
        else:
            config = clip_config(
                vision_width=p["width"],
                vision_layers=p["layers"],
                vision_heads=p["heads"],
                text_width=p["text_width"],
                text_layers=p["text_layers"],
                text_heads=p["heads"],
                embed_dim=p["embed_dim"],
                context_length=context,
                act="gelu",
                **tower,
            )
        config.vision.conv_stem = self.conv_stem
        config.vision.conv_stem_norm = self.conv_stem_norm
        if isinstance(image_tower, EfficientNet):
            config.vision = EfficientNetConfig.from_dict(image_tower.config.to_dict())
            config.image_pool = ImagePoolConfig(
                width=p["width"], heads=p["heads"], feature_level=self.vision_layer, cell_colours=self.cell_colours
            )
        elif image_tower is not None:
            config.vision = VisionConfig.from_dict(image_tower.config.to_dict())
        config.text.eos_token_id = tokenizer.eos_id  # type: ignore[assignment]
        config.text.pad_token_id = tokenizer.pad_id
        DualEncoderConfig.from_dict(config.to_dict())  # validate
        model = DualEncoder(config)
        if image_tower is not None:
            target = model.vision.backbone if isinstance(model.vision, CnnTower) else model.vision
            target.load_state_dict(image_tower.state_dict())
        model.tokenizer = tokenizer
        model.image_processor = processor
        return model

    def _lock(self, model: DualEncoder) -> None:
        """LiT's locks; and a CNN backbone is always frozen: it is the pretrained part a CNN tower borrows (its
        tokens are cached), and a few thousand synthetic images would only wear its ImageNet features down."""
        if isinstance(model.vision, CnnTower):
            model.vision.backbone.requires_grad_(False)
        for locked, modules in (
            (self.lock_image, (model.vision, model.image_projection)),
            (self.lock_text, (model.text, model.text_projection, model.text.token_embedding)),
        ):
            if locked:
                for module in modules:
                    module.requires_grad_(False)

    def _swapper(self) -> WordSwapper | None:
        """The hard-negative maker for the recipe's data: its colour, shape and size words."""
        if not self.hard_negatives:
            return None
        words = vocabulary(self.data)
        if words is None:
            raise ConfigError(
                f"hard_negatives: {self.data} is not a ShapesWorld folder (no shapesworld.json), so there are no "
                "known groups of interchangeable words to swap"
            )
        return WordSwapper(interchangeable_words(*words))


@dataclass
class SiglipRecipe(ClipRecipe):
    """Contrastive image-text training with SigLIP's sigmoid loss."""

    name: ClassVar[str] = "siglip"
    summary: ClassVar[str] = "contrastive SigLIP training or fine-tuning"
    sigmoid: ClassVar[bool] = True


class ContrastiveBatches:
    """A random caption per image per epoch (plus, with a ``swapper``, a false twin of it). A CNN tower's images
    come as its frozen backbone's tokens, computed for every image on first use and cached on disk."""

    def __init__(
        self,
        images: ImageRecords,
        model: DualEncoder,
        seed: int,
        swapper: WordSwapper | None,
        word_targets: bool,
        mask_ratio: float = 0.0,
    ) -> None:
        self.images, self.seed, self.swapper, self.mask_ratio = images, seed, swapper, mask_ratio
        self.model = model
        self.vision_tokens: torch.Tensor | None = None
        if isinstance(model.vision, CnnTower):
            if mask_ratio:
                raise ConfigError("mask_ratio: patch dropping (FLIP) needs a ViT image tower; this one is a CNN")
            if not isinstance(images, PreloadedImages):
                raise ConfigError(
                    "data_mode: a CNN backbone's tokens are computed for all images at once, which needs "
                    "data_mode 'memory'"
                )
        self.patches = model.config.vision.grid**2
        self.captions = [list(r.captions or []) for r in images.records]
        self.tokenizer: TextTokenizer = model.tokenizer  # type: ignore[assignment]
        self.processor: ImagePreprocessor = model.image_processor  # type: ignore[assignment]
        self.causal = model.config.text.causal  # a causal tower pools at EOS and needs the mask
        self.word_targets = CaptionWordTargets(self.captions, self.tokenizer) if word_targets else None
        self.draws = Draws(lambda epoch: images.order(seed, epoch))

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.captions) // (micro_batch * world_size)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> ImageTextBatch:
        items = self.draws.items(epoch, index, micro_batch, rank, world_size)
        rngs = [random.Random(f"{self.seed}/{epoch}/{i}") for i in items]
        texts = [rng.choice(self.captions[i]) for rng, i in zip(rngs, items, strict=True)]
        if self.swapper is not None:
            # A caption with nothing to swap borrows its neighbour's: an ordinary in-batch negative.
            swapped = [self.swapper(text, rng) for text, rng in zip(texts, rngs, strict=True)]
            texts += [s if s is not None else texts[(k + 1) % len(items)] for k, s in enumerate(swapped)]
        tokens = self.tokenizer(texts)
        pixels, vision_tokens = None, None
        tower = self.model.vision
        if isinstance(tower, CnnTower):
            if self.vision_tokens is None:
                self.vision_tokens = frozen_vision_tokens(self.model, self.images.all_pixels)  # type: ignore[attr-defined]
            vision_tokens = self.vision_tokens[items]
        if needs_pixels(self.model):
            pixels = self.processor.normalize(self.images.pixels(items))
        return ImageTextBatch(
            pixels=pixels,
            vision_tokens=vision_tokens,
            input_ids=tokens.input_ids,
            attention_mask=tokens.attention_mask if self.causal else None,
            word_targets=self.word_targets.rows(items) if self.word_targets is not None else None,
            patch_keep=self._patch_keep(epoch, index, rank, len(items)),
        )

    def _patch_keep(self, epoch: int, index: int, rank: int, rows: int) -> torch.Tensor | None:
        if not self.mask_ratio:
            return None
        generator = torch.Generator().manual_seed(seed_of(self.seed, epoch, index, rank))
        return random_patch_keep(rows, self.patches, self.mask_ratio, generator)


def seed_of(*parts: int) -> int:
    """A generator seed from a batch's coordinates (stable across processes, unlike ``hash``)."""
    return random.Random("/".join(map(str, parts))).getrandbits(62)


@dataclass
class ImageTextSplit:
    """A held-out split in memory: uint8 pixels, every caption, and each image's zero-shot label."""

    pixels: torch.Tensor  # uint8 (N, 3, H, W)
    captions: list[list[str]]
    labels: list[str | None]

    @classmethod
    def load(cls, spec: str, processor: ImagePreprocessor, label_key: str, limit: int | None = None) -> ImageTextSplit:
        images = open_images(spec, processor, _has_captions, mode="memory", limit=limit)
        records = images.records
        labels = [(r.labels or {}).get(label_key) for r in records]
        return cls(images.pixels(range(len(records))), [list(r.captions or []) for r in records], labels)


def needs_pixels(model: DualEncoder) -> bool:
    """Whether encoding an image needs its pixels even with its backbone's tokens cached: a ViT trains whole, and a
    CNN tower's head with ``cell_colours`` reads each cell's colour from them."""
    return not isinstance(model.vision, CnnTower) or model.vision.pool.reads_pixels


def encode_pixels(model: DualEncoder, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Image embeddings of preloaded uint8 ``pixels``; through the token cache for a CNN tower, whose frozen
    backbone would otherwise run over the same held-out images at every evaluation."""
    processor: ImagePreprocessor = model.image_processor  # type: ignore[assignment]
    tokens = frozen_vision_tokens(model, pixels) if isinstance(model.vision, CnnTower) else None
    with_pixels = needs_pixels(model)

    def chunk(start: int) -> torch.Tensor:
        rows = slice(start, start + batch_size)
        images = processor.normalize(pixels[rows]).to(model.device) if with_pixels else None
        cached = tokens[rows].to(model.device) if tokens is not None else None
        return model.encode_image(images, vision_tokens=cached).float().cpu()

    with torch.inference_mode():
        return torch.cat([chunk(start) for start in range(0, len(pixels), batch_size)])


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
