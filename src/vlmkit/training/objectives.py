"""The training objectives recipes use: contrastive (CLIP / SigLIP, with an optional caption-word head)
and next-token prediction (the language model and both LLaVA stages).

Each reads what it needs from the model's outputs (``logit_scale`` and ``logit_bias`` come with a dual
encoder's output), so no objective unwraps DDP or reaches into the model. A head that only training
needs lives here, on the objective: it trains and is checkpointed with the model but never exported.
"""

from __future__ import annotations

from torch import nn

from vlmkit.models.decoder import answer_blocks, causal_lm_loss
from vlmkit.training.batches import ChatBatch, ImageTextBatch
from vlmkit.training.caption_words import CaptionWordHead, caption_word_loss
from vlmkit.training.losses import ClipLoss, SigLipLoss
from vlmkit.training.objective import Objective, ObjectiveOutput


class ContrastiveObjective(Objective):
    """CLIP's softmax or SigLIP's sigmoid loss on a dual encoder, hard negatives included when the batch
    has them; with ``word_head`` also SuperClass's caption-word loss, weighted by ``word_weight``."""

    def __init__(self, sigmoid: bool, word_head: CaptionWordHead | None = None, word_weight: float = 0.0) -> None:
        super().__init__()
        self.loss = SigLipLoss() if sigmoid else ClipLoss()
        self.word_head, self.word_weight = word_head, word_weight

    def forward(self, model: nn.Module, batch: ImageTextBatch) -> ObjectiveOutput:
        out = model(batch.pixels, batch.input_ids, batch.attention_mask, batch.patch_keep, batch.vision_tokens)
        rows = batch.images
        texts = out.text_embeds[:rows]
        negatives = out.text_embeds[rows:] if batch.hard_negatives is not None else None
        if out.logit_bias is None:
            loss = self.loss(out.image_embeds, texts, out.logit_scale, negatives)
        else:
            loss = self.loss(out.image_embeds, texts, out.logit_scale, out.logit_bias, negatives)
        metrics = {"logit_scale": out.logit_scale.item()}
        if self.word_head is not None and batch.word_targets is not None:
            word_loss = caption_word_loss(self.word_head(out.image_embeds), batch.word_targets)
            loss = loss + self.word_weight * word_loss
            metrics["caption_word_loss"] = word_loss.item()
        if out.logit_bias is not None:
            metrics["logit_bias"] = out.logit_bias.item()
        return ObjectiveOutput(loss, metrics)


class NextTokenObjective(Objective):
    """Mean cross-entropy of the labelled tokens; the images come as pixels (with what the model reads beside
    them, by the Hugging Face names: ``ChatBatch.image_arguments``), cached tower tokens, or not at all (a
    text-only decoder)."""

    def forward(self, model: nn.Module, batch: ChatBatch) -> ObjectiveOutput:
        if batch.pixels is None and batch.vision_tokens is None:
            logits = model(batch.input_ids, segments=answer_blocks(batch.labels))  # blocks: for a prefix-LM only
            return ObjectiveOutput(causal_lm_loss(logits, batch.labels))
        images = {"pixel_values": batch.pixels, **batch.image_arguments}
        if batch.vision_tokens is not None:
            images["vision_tokens"] = batch.vision_tokens
        return ObjectiveOutput(model(batch.input_ids, labels=batch.labels, return_logits=False, **images).loss)
