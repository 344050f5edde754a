"""``align`` (LLaVA stage 1): a new projector between a vision tower and a decoder, trained on captions.

The tower comes from a dual encoder (a ``train clip`` run) or is the ImageNet EfficientNet of
``vlmkit:conse-effnet-minilm`` without its classifier; the decoder from ``train lm``, or ``vlmkit:minilm``
(the pretrained MiniLM as a prefix-LM, which learns in-context lookup in a hundred steps where a decoder
trained from scratch does not in thousands; docs/results.md). Both stay frozen unless ``train_vision`` /
``train_decoder`` say otherwise; a decoder too small to route information from its context learns only a
caption prior when frozen.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from vlmkit.checkpoints import from_pretrained
from vlmkit.config import ProjectorConfig
from vlmkit.config.base import option
from vlmkit.config.vlm import token_grid
from vlmkit.data.records import Record
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import Decoder, DualEncoder, MaskedAutoencoder, VisionLanguageModel
from vlmkit.models.cnn_tower import CnnTower
from vlmkit.models.conse import ConSEModel
from vlmkit.models.efficientnet import without_classifier
from vlmkit.models.vlm import VisionTower
from vlmkit.processing.chat import CAPTION_PROMPT
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.training.objective import Prepared
from vlmkit.training.objectives import NextTokenObjective
from vlmkit.training.recipes.chat import ChatRecipe, Messages, image_first, vlm_evaluation


def vision_tower(source: str) -> tuple[VisionTower, ImagePreprocessor]:
    """The image tower of a dual encoder or a masked autoencoder, or the ImageNet CNN of a ConSE model, with
    its preprocessing."""
    path = Path(source)
    model = from_pretrained(path / "model" if (path / "model" / "config.json").exists() else path)
    if isinstance(model, DualEncoder):
        tower = model.vision.backbone if isinstance(model.vision, CnnTower) else model.vision
        return tower, model.image_processor  # type: ignore[return-value]
    if isinstance(model, MaskedAutoencoder):
        return model.encoder, model.image_processor  # type: ignore[return-value]
    if isinstance(model, ConSEModel):
        # Squash rather than ConSE's resize-and-crop: a crop would cut off objects at the image's edges.
        side = model.config.vision.image_size
        processor = dataclasses.replace(
            model.image_processor, size=(side, side), resize_mode="squash", shortest_edge=None
        )
        return without_classifier(model.vision), processor  # type: ignore[arg-type]
    raise InputError(
        f"{source}: --vision-from needs a dual encoder (e.g. a `vlmkit train clip` run), a masked autoencoder "
        "(a `vlmkit train mae` run) or a ConSE model "
        "(vlmkit:conse-effnet-minilm, for its ImageNet CNN)"
    )


@dataclass
class AlignRecipe(ChatRecipe):
    """LLaVA stage 1: projector alignment on captions."""

    name: ClassVar[str] = "align"
    summary: ClassVar[str] = "LLaVA stage 1: a projector between a vision tower and a decoder, on captions"

    vision_from: str = option(
        "", "a dual encoder (a `train clip` run or model directory), or vlmkit:conse-effnet-minilm for its CNN"
    )
    decoder_from: str = option(
        "", "a decoder: a `train lm` model directory, or vlmkit:minilm (pretrained MiniLM, prefix-LM)"
    )
    train_decoder: bool = option(False, "train the decoder too, not only the projector")
    train_vision: bool = option(False, "unfreeze the vision tower")
    vision_layer: int = option(
        -1,
        "the tower's output that feeds the projector: a ViT block (-1: the last) or a CNN feature map "
        "(0 stem, 1-7 stages, -1 head)",
        research=True,
    )
    pixel_shuffle: int | None = option(
        None, "merge each r x r block of vision tokens into one (default: 2 where it divides the grid)", research=True
    )
    fresh_decoder: bool = option(
        False, "with train_decoder: re-initialise --decoder-from's weights, keeping its tokenizer", research=True
    )

    def validate(self, where: str) -> None:
        super().validate(where)
        for name in ("vision_from", "decoder_from"):
            if not getattr(self, name):
                raise ConfigError(f"{where}.{name}: the align recipe needs it")
        if self.fresh_decoder and not self.train_decoder:
            raise ConfigError(f"{where}.fresh_decoder: only with train_decoder (a re-initialised decoder must learn)")

    def keep(self, record: Record) -> bool:
        return bool(record.captions)

    def messages(self, record: Record, rng: random.Random) -> Messages:
        return image_first(
            [
                {"role": "user", "content": CAPTION_PROMPT},
                {"role": "assistant", "content": rng.choice(record.captions or [])},
            ]
        )

    def prepare(self) -> Prepared:
        torch.manual_seed(self.train.seed)
        model = self._build()
        batches = self.image_chat_batches(model, self.train_vision)
        evaluate = vlm_evaluation(self.eval_data, self.eval_images, "captioning")
        return Prepared(model, NextTokenObjective(), batches, evaluate)

    def _build(self) -> VisionLanguageModel:
        tower, processor = vision_tower(self.vision_from)
        decoder = from_pretrained(self.decoder_from)
        if not isinstance(decoder, Decoder) or decoder.tokenizer is None:
            raise InputError(
                f"{self.decoder_from}: --decoder-from needs a decoder with a tokenizer (`train lm`, or vlmkit:minilm)"
            )
        if self.fresh_decoder:
            # A tiny decoder pretrained on the captions' text learns to read image tokens several times slower
            # than a random one (docs/results.md, "reading the image"); its tokenizer and shape are what is kept.
            decoder.reset_parameters()
        try:
            grid = token_grid(tower.config, self.vision_layer)
        except ConfigError as error:
            raise ConfigError(f"AlignRecipe.vision_layer: {error}") from None
        shuffle = self.pixel_shuffle or (2 if grid % 2 == 0 else 1)
        # The tower's post-norm brings its residual stream (std ~20 in a small CLIP) to unit scale; without it
        # the projected image tokens dwarf the text embeddings and the decoder learns to ignore them.
        projector = ProjectorConfig(kind="mlp", vision_layer=self.vision_layer, vision_norm=True, pixel_shuffle=shuffle)
        model = VisionLanguageModel.from_parts(tower, decoder, projector, image_processor=processor)
        model.vision.requires_grad_(self.train_vision)
        model.decoder.requires_grad_(self.train_decoder)
        return model.train()
