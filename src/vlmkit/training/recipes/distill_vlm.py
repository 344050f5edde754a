"""``distill-vlm``: a student VLM learns a teacher VLM's next-token distributions on the same conversations.

Instruction tuning (``instruct``: the same conversations, the same held-out VQA, full or LoRA) with a
second loss, the token-level KL between the teacher's and the student's softmax at every answer token
(``training.distill_losses.token_kl``, at ``temperature``), mixed with the student's own next-token loss:
``loss = next_token_weight * CE + kl_weight * KL``.

Teacher and student must share a tokenizer: a KL between distributions over different vocabularies
means nothing, so differing vocabularies are refused in one line. Everything else may differ (towers,
image size, image-token count, decoder shape): the teacher gets its own encoding of each conversation,
drawn from the same (seed, epoch, item) and so the same words, with its own image tokens and its own
frozen tower's cached tokens, and the two are compared at their answer tokens, which are the same
tokens in the same order (per conversation, as many as both encodings hold after their decoders' cuts).
The teacher runs in eval mode without gradients, outside the trained modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from vlmkit.checkpoints import from_pretrained
from vlmkit.config.base import option
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.chat import IGNORE_INDEX
from vlmkit.training.batches import Batch, ChatBatch
from vlmkit.training.distill_losses import token_kl
from vlmkit.training.objective import BatchSource, Objective, ObjectiveOutput, Prepared
from vlmkit.training.recipes.instruct import InstructRecipe


@dataclass
class PairedChatBatch(Batch):
    """One micro-batch of conversations, encoded for the student and for the teacher."""

    student: ChatBatch
    teacher: ChatBatch

    def to(self, device: torch.device) -> PairedChatBatch:
        return PairedChatBatch(self.student.to(device), self.teacher.to(device))


class PairedChatBatches:
    """Two chat batch sources over the same records, seed and order: the student's and the teacher's."""

    def __init__(self, student: BatchSource, teacher: BatchSource) -> None:
        self.student, self.teacher = student, teacher

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return self.student.batches_per_epoch(micro_batch, world_size)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> PairedChatBatch:
        return PairedChatBatch(
            self.student.batch(epoch, index, micro_batch, rank, world_size),
            self.teacher.batch(epoch, index, micro_batch, rank, world_size),
        )


def answer_logits(model: nn.Module, batch: ChatBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model's logits ``(B, L - 1, vocab)`` at the positions that predict a token, where a label is
    ``(B, L - 1)``, and its next-token loss."""
    out = model(batch.input_ids, batch.pixels, labels=batch.labels, vision_tokens=batch.vision_tokens)
    return out.logits[:, :-1], batch.labels[:, 1:] != IGNORE_INDEX, out.loss


def first_answers(labelled: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``labelled`` (B, T) kept only at each row's first ``counts[row]`` labelled positions."""
    return labelled & (labelled.cumsum(1) <= counts[:, None])


def check_vocabularies(student: VisionLanguageModel, teacher: VisionLanguageModel, source: str) -> None:
    """Refuse a teacher whose tokens are not the student's, in one line."""
    ours, theirs = student.tokenizer.tokenizer.get_vocab(), teacher.tokenizer.tokenizer.get_vocab()  # type: ignore[union-attr]
    rows = student.config.decoder.vocab_size, teacher.config.decoder.vocab_size
    if ours != theirs or rows[0] != rows[1]:
        raise InputError(
            f"{source}: the teacher's vocabulary ({len(theirs)} tokens, {rows[1]} rows) is not the student's "
            f"({len(ours)} tokens, {rows[0]} rows); token-level distillation needs one shared tokenizer"
        )


class TokenDistillObjective(Objective):
    """``next_token_weight * CE + kl_weight * KL(teacher || student)`` at the answer tokens."""

    def __init__(self, teacher: VisionLanguageModel, kl_weight: float, next_token_weight: float, temperature: float):
        super().__init__()
        self._teacher = (teacher.eval().requires_grad_(False),)  # no submodule: never trained, saved or exported
        self.kl_weight, self.next_token_weight, self.temperature = kl_weight, next_token_weight, temperature

    def forward(self, model: nn.Module, batch: PairedChatBatch) -> ObjectiveOutput:
        teacher = self._teacher[0]
        if teacher.device != batch.student.input_ids.device:
            teacher.to(batch.student.input_ids.device)
        student_logits, student_labelled, ce = answer_logits(model, batch.student)
        with torch.no_grad():
            teacher_logits, teacher_labelled, _ = answer_logits(teacher, batch.teacher)
        # The same answer tokens in the same order; a longer encoding (more image tokens) may be cut
        # sooner by its decoder's positions, so each row is compared over the answers both still hold.
        common = torch.minimum(student_labelled.sum(1), teacher_labelled.sum(1))
        student_answers = student_logits[first_answers(student_labelled, common)]
        teacher_answers = teacher_logits[first_answers(teacher_labelled, common)]
        kl = token_kl(student_answers, teacher_answers, self.temperature)
        loss = self.next_token_weight * ce + self.kl_weight * kl
        return ObjectiveOutput(loss, {"next_token_loss": ce.item(), "kl_loss": kl.item()})


@dataclass
class DistillVlmRecipe(InstructRecipe):
    """Instruction tuning of a student VLM with a teacher VLM's token distributions."""

    name: ClassVar[str] = "distill-vlm"
    summary: ClassVar[str] = "a student VLM learns a teacher VLM's next-token distributions (same tokenizer)"

    teacher: str = option("", "the teacher VLM directory (it must share the student's tokenizer)")
    kl_weight: float = option(1.0, "weight of the KL to the teacher's token distributions")
    next_token_weight: float = option(1.0, "weight of the student's own next-token loss (0: off)")
    temperature: float = option(1.0, "softmax temperature of the KL", research=True)

    def validate(self, where: str) -> None:
        super().validate(where)
        if not self.teacher:
            raise ConfigError(f"{where}.teacher: a teacher VLM is required (--teacher)")
        if self.kl_weight <= 0 or self.next_token_weight < 0:
            raise ConfigError(
                f"{where}: kl_weight must be > 0 and next_token_weight >= 0, "
                f"got {self.kl_weight} and {self.next_token_weight}"
            )
        if self.temperature <= 0:
            raise ConfigError(f"{where}.temperature: must be positive, got {self.temperature}")

    def prepare(self) -> Prepared:
        prepared = super().prepare()
        teacher = from_pretrained(self.teacher)
        if not isinstance(teacher, VisionLanguageModel):
            raise InputError(f"{self.teacher}: --teacher needs a VLM (e.g. the output of `vlmkit train instruct`)")
        check_vocabularies(prepared.model, teacher, self.teacher)  # type: ignore[arg-type]
        teacher.eval()
        teacher_batches = self.image_chat_batches(teacher, train_vision=False)
        objective = TokenDistillObjective(teacher, self.kl_weight, self.next_token_weight, self.temperature)
        return Prepared(
            prepared.model, objective, PairedChatBatches(prepared.batches, teacher_batches), prepared.evaluate
        )
