"""Instruction tuning of a ``Qwen2VLModel`` (``vlmkit train instruct --from`` a Qwen2-VL directory).

Its images have no fixed size: each keeps its own resolution (``QwenImageProcessor``), so a micro-batch is the
images' flattened patches plus their ``image_grid_thw``, and each conversation is encoded with the checkpoint's
chat template and that image's number of pad tokens. The images are decoded and patched once, on first use.
The tower trains or stays frozen (``train_vision``); the decoder trains fully or through LoRA.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from vlmkit.data.records import Record
from vlmkit.data.sampling import Draws, epoch_order
from vlmkit.data.sources import scan_records
from vlmkit.errors import ConfigError, InputError
from vlmkit.models.qwen2_vl import Qwen2VLModel
from vlmkit.processing.chat import pad_right
from vlmkit.processing.images import load_image
from vlmkit.processing.jinja_chat import JinjaChatEncoder
from vlmkit.training.batches import ChatBatch
from vlmkit.training.lora import apply_lora

if TYPE_CHECKING:
    from vlmkit.training.recipes.instruct import InstructRecipe

Messages = list[dict[str, str]]


class QwenChatBatches:
    """Tokenised conversations with labels on the answers, each about one record's image at its own size."""

    def __init__(
        self,
        data: str,
        model: Qwen2VLModel,
        keep: Callable[[Record], bool],
        messages: Callable[[Record, random.Random], Messages],
        seed: int,
        max_length: int,
    ) -> None:
        template = getattr(model, "jinja_template", None)
        if model.tokenizer is None or model.image_processor is None or template is None:
            raise InputError("a Qwen2-VL model trains with its tokenizer, image processor and chat template")
        self.records, self.paths, locations = scan_records(data, keep)
        if locations or not self.records:
            raise InputError(f"{data}: a Qwen2-VL model trains on a dataset folder with records to train on")
        self.model, self.template, self.messages = model, template, messages
        self.seed, self.max_length = seed, min(max_length, model.config.decoder.max_positions)
        self.draws = Draws(lambda epoch: epoch_order(len(self.records), seed, epoch))
        self._patches: dict[int, tuple[torch.Tensor, list[int]]] = {}

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.records) // (micro_batch * world_size)

    def _image(self, item: int) -> tuple[torch.Tensor, list[int]]:
        if item not in self._patches:
            inputs = self.model.image_processor([load_image(self.paths[item])])  # type: ignore[misc]
            self._patches[item] = inputs["pixel_values"], inputs["image_grid_thw"][0].tolist()
        return self._patches[item]

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> ChatBatch:
        items = self.draws.items(epoch, index, micro_batch, rank, world_size)
        rows, patches, grids = [], [], []
        image_token = self.model.config.image_token_id
        for item in items:
            pixels, grid = self._image(item)
            layout = [image_token] * self.model.image_processor.tokens(grid)  # type: ignore[union-attr]
            encoder = JinjaChatEncoder(self.model.tokenizer, self.template, image_token, 0, True, [layout])  # type: ignore[arg-type]
            rng = random.Random(f"{self.seed}/{epoch}/{item}")
            encoded = encoder.encode(self.messages(self.records[item], rng), max_length=self.max_length)
            rows.append((encoded.input_ids, encoded.labels))
            patches.append(pixels)
            grids.append(grid)
        ids, labels = pad_right(rows, self.model.tokenizer.pad_id)  # type: ignore[union-attr]
        return ChatBatch(ids, labels, pixels=torch.cat(patches), image_grid_thw=torch.tensor(grids))


def prepare_qwen2_vl(
    model: Qwen2VLModel, recipe: InstructRecipe, lora_targets: list[str]
) -> tuple[Qwen2VLModel, QwenChatBatches]:
    """The model set up for training by the instruct ``recipe`` (tower frozen or not, LoRA on the decoder), and
    its batches. Grounding and the OCR task, which need vlmkit's own token layout, are refused by name."""
    for name in ("grounding_share", "ocr_share"):
        if getattr(recipe, name, 0):
            raise ConfigError(f"instruct.{name}: not supported for a Qwen2-VL model")
    model.vision.requires_grad_(recipe.train_vision)
    if recipe.lora_rank:
        model.decoder.requires_grad_(False)
        apply_lora(model.decoder, lora_targets, rank=recipe.lora_rank, alpha=recipe.lora_alpha)
    model.train()
    batches = QwenChatBatches(recipe.data, model, recipe.keep, recipe.messages, recipe.train.seed, recipe.max_length)
    return model, batches
