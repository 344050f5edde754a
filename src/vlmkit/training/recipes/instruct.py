"""``instruct`` (LLaVA stage 2): the decoder of an aligned VLM trained on multi-turn conversations that mix
open questions, multiple-choice questions (answered by letter) and caption requests, fully or through
LoRA adapters that are merged into the weights on export."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config.base import option
from vlmkit.data.pages import page_lines
from vlmkit.data.records import Record
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.chat import with_page_text
from vlmkit.training.lora import apply_lora, merge_lora
from vlmkit.training.objective import Prepared
from vlmkit.training.objectives import NextTokenObjective
from vlmkit.training.recipes.chat import (
    ConversationRecipe,
    Messages,
    image_first,
    vlm_evaluation,
)

LORA_TARGETS = ["qkv", "out", "gate_up", "down"]


@dataclass
class InstructRecipe(ConversationRecipe):
    """LLaVA stage 2: instruction tuning of an aligned VLM."""

    name: ClassVar[str] = "instruct"
    summary: ClassVar[str] = "LLaVA stage 2: instruction tuning (full or LoRA) of an aligned VLM"

    init_from: str = option("", "the VLM from the align stage", flag="--from")
    lora_rank: int = option(0, "train LoRA adapters of this rank (0: the whole decoder)")
    lora_alpha: float = option(16.0, "LoRA scale numerator (the update is scaled by alpha / rank)")
    train_vision: bool = option(False, "unfreeze the vision tower")
    page_text: bool = option(
        False, "OCR-augmented document QA: a record's page text (its `document`) comes before its first question"
    )

    def validate(self, where: str) -> None:
        super().validate(where)
        if not self.init_from:
            raise ConfigError(f"{where}.init_from: the instruct recipe needs the VLM from align (--from)")

    def messages(self, record: Record, rng: random.Random) -> Messages:
        messages = super().messages(record, rng)
        if self.page_text:
            messages[0] = dict(messages[0], content=with_page_text(messages[0]["content"], page_lines(record)))
        return image_first(messages)

    def prepare(self) -> Prepared:
        torch.manual_seed(self.train.seed)
        model = from_pretrained(self.init_from)
        if not isinstance(model, VisionLanguageModel):
            raise InputError(f"{self.init_from}: --from needs a VLM (e.g. the output of `vlmkit train align`)")
        model.vision.requires_grad_(self.train_vision)
        if self.lora_rank:
            model.decoder.requires_grad_(False)
            apply_lora(model.decoder, LORA_TARGETS, rank=self.lora_rank, alpha=self.lora_alpha)
        model.train()
        batches = self.image_chat_batches(model, self.train_vision)
        return Prepared(model, NextTokenObjective(), batches, vlm_evaluation(self.eval_data, self.eval_images, "vqa"))

    def export(self, model: nn.Module, run_dir: Path) -> Path:
        """LoRA adapters are merged into the weights first, so the saved model is a plain VLM."""
        merge_lora(model.decoder)  # type: ignore[arg-type]
        return save_pretrained(model, run_dir / "model")
