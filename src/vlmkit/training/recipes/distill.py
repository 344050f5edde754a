"""``distill``: a CLIP or SigLIP student that learns from a frozen teacher as well as from its captions.

The student is built and fed exactly as ``train clip`` builds and feeds it (a preset from scratch, or
``--from``; the same batches and held-out evaluation); this recipe adds what it learns from a teacher
(``training.distill_losses``):

- ``image_weight``: the student's image embedding, mapped to the teacher's width by a learned linear map
  (when the widths differ), matches the teacher's image target (``teacher_image``: its embedding, or its
  tower's pooled features; ``match``: cosine or MSE);
- ``text_weight``: the same for the caption's embedding;
- ``similarity_weight``: the student's in-batch image-text softmax matches the teacher's (KL, both
  directions, at ``temperature``);
- ``contrastive_weight``: the student's own CLIP / SigLIP loss (0: distillation alone).

The teacher may be any dual encoder: a bigger vlmkit CLIP directory, or ``vlmkit:conse-effnet-minilm``
(an EfficientNet and a MiniLM). It runs in eval mode without gradients, outside the trained modules (so
it is never optimised, checkpointed or exported); its image targets are computed once per training set
and cached (``training.teacher``), its text targets once per distinct caption. The maps are training-only
modules of the objective: checkpointed for resume, dropped on export.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from vlmkit.config.base import option
from vlmkit.data.sources import PreloadedImages
from vlmkit.devices import resolve_device
from vlmkit.errors import ConfigError
from vlmkit.training.batches import ImageTextBatch
from vlmkit.training.distill_losses import MatchKind, embedding_match, similarity_kl
from vlmkit.training.objective import Objective, ObjectiveOutput, Prepared
from vlmkit.training.recipes.clip import ClipRecipe, ContrastiveBatches
from vlmkit.training.teacher import DualTeacher, ImageTarget


@dataclass
class DistillBatch(ImageTextBatch):
    """A contrastive batch plus what the teacher says about it: cached image targets (None when that
    loss is off) and the captions as text, for the teacher's own tokenizer."""

    teacher_images: torch.Tensor | None = None  # (B, D) the matched target (embedding or features)
    teacher_image_embeds: torch.Tensor | None = None  # (B, D') the teacher's embeddings, for the similarity KL
    texts: tuple[str, ...] = ()


class DistillBatches:
    """``train clip``'s batches, each with the teacher's targets of its images and its captions' text."""

    def __init__(
        self,
        inner: ContrastiveBatches,
        teacher_images: torch.Tensor | None,
        teacher_image_embeds: torch.Tensor | None,
        texts: bool,
    ) -> None:
        self.inner, self.with_texts = inner, texts
        self.teacher_images, self.teacher_image_embeds = teacher_images, teacher_image_embeds

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return self.inner.batches_per_epoch(micro_batch, world_size)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> DistillBatch:
        batch = self.inner.batch(epoch, index, micro_batch, rank, world_size)
        items = self.inner.draws.items(epoch, index, micro_batch, rank, world_size)
        rows = batch.images
        # The captions as the student read them (truncation included), decoded rather than drawn again, so
        # they are the batch's own whatever way the contrastive batches choose them.
        texts = tuple(self.inner.tokenizer.decode(ids) for ids in batch.input_ids[:rows]) if self.with_texts else ()
        fields = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
        return DistillBatch(
            **fields,
            teacher_images=self.teacher_images[items] if self.teacher_images is not None else None,
            teacher_image_embeds=self.teacher_image_embeds[items] if self.teacher_image_embeds is not None else None,
            texts=texts,
        )


def width_map(student: int, teacher: int) -> nn.Module:
    """The student -> teacher map: none when the widths agree, else a learned linear map."""
    return nn.Identity() if student == teacher else nn.Linear(student, teacher)


class DistillObjective(Objective):
    """The contrastive objective of ``train clip``, plus the distillation terms on the same forward pass."""

    def __init__(
        self,
        contrastive: Objective,
        teacher: DualTeacher,
        student_dim: int,
        image_width: int | None,
        text_width: int | None,
        weights: dict[str, float],
        match: MatchKind,
        temperature: float,
    ) -> None:
        super().__init__()
        self.contrastive = contrastive
        self.image_map = width_map(student_dim, image_width) if image_width else None
        self.text_map = width_map(student_dim, text_width) if text_width else None
        self._teacher = (teacher,)  # a tuple, so it is no submodule: never trained, moved, saved or exported
        self.weights, self.match, self.temperature = weights, match, temperature

    @property
    def teacher(self) -> DualTeacher:
        return self._teacher[0]

    def _teacher_texts(self, batch: DistillBatch, device: torch.device) -> torch.Tensor:
        if self.teacher.device != device:
            self.teacher.to(device)
        return self.teacher.texts(batch.texts).clone()  # out of inference mode, so autograd may read it

    def forward(self, model: nn.Module, batch: DistillBatch) -> ObjectiveOutput:
        outputs = []

        def forward_once(*args, **kwargs):
            # The contrastive objective runs the model as `train clip` does; its output serves both losses.
            outputs.append(model(*args, **kwargs))
            return outputs[-1]

        contrastive = self.contrastive(forward_once, batch)
        out = outputs[0]
        rows = batch.images
        images, texts = out.image_embeds, out.text_embeds[:rows]
        terms: dict[str, torch.Tensor] = {}
        if self.weights["contrastive"]:
            terms["contrastive"] = contrastive.loss
        teacher_texts = self._teacher_texts(batch, images.device) if batch.texts else None
        if self.image_map is not None and batch.teacher_images is not None:
            terms["image"] = embedding_match(self.image_map(images), batch.teacher_images, self.match)
        if self.text_map is not None and teacher_texts is not None:
            terms["text"] = embedding_match(self.text_map(texts), teacher_texts, self.match)
        if self.weights["similarity"] and batch.teacher_image_embeds is not None and teacher_texts is not None:
            terms["similarity"] = similarity_kl(
                images, texts, batch.teacher_image_embeds, teacher_texts, self.temperature
            )
        loss = sum(self.weights[name] * term for name, term in terms.items())
        metrics = {**contrastive.metrics, **{f"{name}_loss": term.item() for name, term in terms.items()}}
        metrics.setdefault("contrastive_loss", contrastive.loss.item())
        return ObjectiveOutput(loss, metrics)  # type: ignore[arg-type]


@dataclass
class DistillRecipe(ClipRecipe):
    """A CLIP / SigLIP student distilled from a dual-encoder teacher (its contrastive loss optional)."""

    name: ClassVar[str] = "distill"
    summary: ClassVar[str] = "a CLIP / SigLIP student learns a teacher's embeddings or similarities"

    teacher: str = option("", "the teacher: a dual-encoder directory or hub id, or vlmkit:conse-effnet-minilm")
    siglip: bool = option(False, "the student is a SigLIP (sigmoid loss and preprocessing), from scratch")
    teacher_image: ImageTarget = option(
        "embedding", "what the student's image embedding matches: the teacher's embedding, or its pooled features"
    )
    match: MatchKind = option("cosine", "how embeddings are matched")
    image_weight: float = option(1.0, "weight of matching the teacher's image targets (0: off)")
    text_weight: float = option(0.0, "weight of matching the teacher's text embeddings (0: off)")
    similarity_weight: float = option(0.0, "weight of the KL to the teacher's in-batch similarities (0: off)")
    contrastive_weight: float = option(1.0, "weight of the student's own contrastive loss (0: off)")
    temperature: float = option(0.1, "softmax temperature of the similarity KL (on cosines)", research=True)

    @property
    def sigmoid(self) -> bool:  # type: ignore[override]
        return self.siglip

    def validate(self, where: str) -> None:
        super().validate(where)
        if not self.teacher:
            raise ConfigError(f"{where}.teacher: a teacher model is required (--teacher)")
        weights = self._weights()
        if any(w < 0 for w in weights.values()):
            raise ConfigError(f"{where}: loss weights must be >= 0, got {weights}")
        if not any(weights[k] for k in ("image", "text", "similarity")):
            raise ConfigError(f"{where}: every distillation weight is 0; that is `vlmkit train clip`")
        if self.temperature <= 0:
            raise ConfigError(f"{where}.temperature: must be positive, got {self.temperature}")

    def _weights(self) -> dict[str, float]:
        return {
            "contrastive": self.contrastive_weight,
            "image": self.image_weight,
            "text": self.text_weight,
            "similarity": self.similarity_weight,
        }

    def prepare(self) -> Prepared:
        prepared = super().prepare()
        inner: ContrastiveBatches = prepared.batches  # type: ignore[assignment]
        if not isinstance(inner.images, PreloadedImages):
            raise ConfigError(
                "data_mode: the teacher's image targets are computed for all images at once, which needs "
                "data_mode 'memory'"
            )
        teacher = DualTeacher.load(self.teacher).to(resolve_device("auto"))
        pixels = inner.images.all_pixels
        matched = teacher.cached_images(pixels, self.teacher_image) if self.image_weight else None
        embeds = None
        if self.similarity_weight:
            embeds = matched if self.teacher_image == "embedding" and matched is not None else None
            embeds = embeds if embeds is not None else teacher.cached_images(pixels, "embedding")
        needs_texts = bool(self.text_weight or self.similarity_weight)
        text_width = teacher.texts(inner.captions[0][:1]).shape[1] if self.text_weight else None
        objective = DistillObjective(
            prepared.objective,
            teacher,
            prepared.model.config.embed_dim,  # type: ignore[union-attr]
            matched.shape[1] if matched is not None else None,
            text_width,
            self._weights(),
            self.match,
            self.temperature,
        )
        batches = DistillBatches(inner, matched, embeds, needs_texts)
        return Prepared(prepared.model, objective, batches, prepared.evaluate)
