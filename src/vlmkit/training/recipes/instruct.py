"""``instruct`` (LLaVA stage 2): the decoder of an aligned VLM trained on multi-turn conversations that mix
open questions, multiple-choice questions (answered by letter) and caption requests, fully or through
LoRA adapters that are merged into the weights on export. With ``grounding_share`` that share of the
conversations is about the records' objects instead (detection, referring expressions, all objects and,
with a mask tokenizer, segmentation; ``training.recipes.grounding``); with ``ocr_share`` that share of the
conversations about pages asks for the page's text (``OCR_PROMPT``, Florence-2's reading task)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config.base import option
from vlmkit.data.pages import page_lines, page_text
from vlmkit.data.records import Record
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.chat import OCR_PROMPT, with_page_text
from vlmkit.tasks.chat import takes_images
from vlmkit.tasks.segment import load_mask_codec
from vlmkit.training.lora import apply_lora, merge_lora
from vlmkit.training.objective import Prepared
from vlmkit.training.objectives import NextTokenObjective
from vlmkit.training.recipes.chat import (
    ConversationRecipe,
    Messages,
    has_text,
    image_first,
    vlm_evaluation,
)
from vlmkit.training.recipes.grounding import (
    MaskCodes,
    enable_grounding,
    grounding_evaluation,
    grounding_messages,
)

LORA_TARGETS = ["qkv", "out", "gate_up", "down"]


@dataclass
class InstructRecipe(ConversationRecipe):
    """LLaVA stage 2: instruction tuning of an aligned VLM."""

    name: ClassVar[str] = "instruct"
    summary: ClassVar[str] = "LLaVA stage 2: instruction tuning (full or LoRA) of an aligned VLM"
    _mask_codes: ClassVar[MaskCodes] = MaskCodes(None)  # prepare() sets the run's own, with its mask tokenizer

    init_from: str = option("", "the VLM from the align stage", flag="--from")
    lora_rank: int = option(0, "train LoRA adapters of this rank (0: the whole decoder)")
    lora_alpha: float = option(16.0, "LoRA scale numerator (the update is scaled by alpha / rank)")
    train_vision: bool = option(False, "unfreeze the vision tower")
    page_text: bool = option(
        False, "OCR-augmented document QA: a record's page text (its `document`) comes before its first question"
    )
    ocr_share: float = option(
        0.0, "share of conversations with a page (a `document`) that ask <OCR> for its text in reading order"
    )
    grounding_share: float = option(
        0.0, "share of conversations about the records' objects (boxes as <loc> tokens, which are added); 0: none"
    )
    grounding_turns: int = option(3, "turns per grounding conversation", research=True)
    location_init: str = option(
        "mean", "new <loc> rows start at the vocabulary's mean, or `ordered`: smooth in the bin value", research=True
    )
    location_code: bool = option(
        False, "add each image token's cell centre, as <loc> embeddings, to it (a pointer for boxes)", research=True
    )
    location_code_column_scale: float = option(
        1.0, "weight of the column in the location code; 1 gives a cell and its mirror the same code", research=True
    )
    mask_tokenizer: str = option("", "a mask tokenizer (`train mask-vae`): adds segmentation turns (<seg> codes)")

    def validate(self, where: str) -> None:
        super().validate(where)
        if not self.init_from:
            raise ConfigError(f"{where}.init_from: the instruct recipe needs the VLM from align (--from)")
        if not 0 <= self.ocr_share <= 1:
            raise ConfigError(f"{where}.ocr_share: expected a share in [0, 1], got {self.ocr_share}")
        if not 0 <= self.grounding_share <= 1:
            raise ConfigError(f"{where}.grounding_share: expected a share in [0, 1], got {self.grounding_share}")
        if self.grounding_turns < 1:
            raise ConfigError(f"{where}.grounding_turns: must be >= 1, got {self.grounding_turns}")
        if self.mask_tokenizer and not self.grounding_share:
            raise ConfigError(f"{where}.mask_tokenizer: segmentation turns need a grounding_share above 0")
        if self.location_code and not self.grounding_share:
            raise ConfigError(f"{where}.location_code: the code is made of <loc> tokens, which need a grounding_share")

    def keep(self, record: Record) -> bool:
        return has_text(record) or bool(self.grounding_share and record.objects)

    def messages(self, record: Record, rng: random.Random) -> Messages:
        if self.grounding_share and (not has_text(record) or rng.random() < self.grounding_share):
            grounding = grounding_messages(record, rng, self.grounding_turns, self._mask_codes)
            if grounding or not has_text(record):
                return image_first(grounding)
        if self.ocr_share and "document" in record.extra and rng.random() < self.ocr_share:
            reading = [{"role": "user", "content": OCR_PROMPT}, {"role": "assistant", "content": page_text(record)}]
            return image_first(reading)
        messages = super().messages(record, rng)
        if self.page_text:
            messages[0] = dict(messages[0], content=with_page_text(messages[0]["content"], page_lines(record)))
        return image_first(messages)

    def prepare(self) -> Prepared:
        torch.manual_seed(self.train.seed)
        model = from_pretrained(self.init_from)
        if not takes_images(model):
            raise InputError(f"{self.init_from}: --from needs a VLM (e.g. the output of `vlmkit train align`)")
        if not isinstance(model, VisionLanguageModel):  # grounding and reading turns grow a VLM's own vocabulary
            for name in ("grounding_share", "ocr_share"):
                if getattr(self, name):
                    raise ConfigError(f"instruct.{name}: not supported for a {type(model).__name__}")
        model.vision.requires_grad_(self.train_vision)
        if self.lora_rank:
            model.decoder.requires_grad_(False)
            apply_lora(model.decoder, LORA_TARGETS, rank=self.lora_rank, alpha=self.lora_alpha)
        vqa = vlm_evaluation(self.eval_data, self.eval_images, "vqa") if self.grounding_share < 1 else None
        evaluate = vqa
        self._mask_codes = MaskCodes(load_mask_codec(self.mask_tokenizer) if self.mask_tokenizer else None)
        if self.grounding_share:
            enable_grounding(
                model, self.train.seed, self.location_init, self.location_code, self.location_code_column_scale
            )
            # LoRA freezes the decoder, but the new tokens' rows must learn.
            model.decoder.embed.requires_grad_(True)
            if model.decoder.lm_head is not None:
                model.decoder.lm_head.requires_grad_(True)
            evaluate = grounding_evaluation(self.eval_data, self.eval_images, self._mask_codes.codec, vqa)
        model.train()
        batches = self.image_chat_batches(model, self.train_vision)
        return Prepared(model, NextTokenObjective(), batches, evaluate)

    def export(self, model: nn.Module, run_dir: Path) -> Path:
        """LoRA adapters are merged into the weights first, so the saved model is a plain VLM."""
        merge_lora(model.decoder)  # type: ignore[arg-type]
        return save_pretrained(model, run_dir / "model")
