r"""Contrastive losses for dual encoders: CLIP's softmax (InfoNCE) and SigLIP's sigmoid.

Both take L2-normalised image and text features of one batch, where row ``i`` of each is a matching
pair, plus the learnable temperature (and, for SigLIP, bias) owned by the model. Neither loss owns a
parameter, so the same module serves any model and any number of processes.

Notation: ``x_i`` image features, ``y_j`` text features, ``s = exp(t)`` the inverse temperature with
``t`` the model's ``logit_scale`` parameter, ``z_ij = s * <x_i, y_j>`` the pair logits.

Distributed training
--------------------
Under ``torchrun`` with ``P`` processes, each holds a shard of ``b`` rows of the global batch
``B = P * b``. A contrastive loss needs every pair of the global batch, so each rank gathers the
features of all ranks (``all_gather_with_grad``, whose backward returns to every rank the gradient of
all ranks' losses with respect to its own rows) and computes the loss of *its own rows* against *all
columns* (open_clip's "local loss"). The diagonal of rank ``r``'s rows sits at column ``r * b + i``.

Why that reproduces single-process training exactly: both losses below are a sum over rows divided
by the row count, ``L = (1/B) sum_i l_i``. Rank ``r`` computes ``L_r = (1/b) sum_{i in shard r} l_i``,
so the mean over ranks is ``(1/P) sum_r L_r = (1/(P b)) sum_i l_i = L``. DDP averages parameter
gradients over ranks, and the gather's backward has already summed, into each rank's features, the
gradient of every ``L_q``; hence the averaged gradient is ``d/dtheta (1/P) sum_q L_q = dL/dtheta``.
Each rank's returned loss is its shard's share; ``distributed.all_reduce_mean`` of it is ``L``.
Every rank must hold the same ``b`` (drop the last incomplete batch).

Hard negatives
--------------
Both losses accept ``negative_text_features``: texts known to be wrong for the batch's images (NegCLIP,
Yuksekgonul et al. 2023: a caption with one attribute word swapped). They are gathered like the texts
and appended as extra columns of every image row: more wrong answers for each image, none for the
texts. In-batch negatives alone can leave a concept unlearned when other cues already tell the batch's
captions apart (on ShapesWorld, colours do, so shape was never needed); a negative that differs from
the truth only in that concept makes it necessary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.errors import InputError
from vlmkit.training.distributed import all_gather_with_grad, get_rank

CLIP_INIT_LOGIT_SCALE = math.log(1 / 0.07)
"""CLIP's initial ``t``: temperature 0.07, i.e. ``s`` of about 14.3."""
CLIP_MAX_LOGIT_SCALE = 100.0
"""CLIP caps ``s`` at 100: larger values make the softmax near one-hot and training unstable."""
SIGLIP_INIT_LOGIT_SCALE = math.log(10.0)
"""SigLIP's initial ``t``: ``s = 10``."""
SIGLIP_INIT_LOGIT_BIAS = -10.0
"""SigLIP's initial bias; see ``SigLipLoss`` for why it starts so negative."""


def _check_pair(image_features: torch.Tensor, text_features: torch.Tensor) -> None:
    if image_features.ndim != 2 or image_features.shape != text_features.shape:
        raise InputError(
            "contrastive loss: image and text features must both be (batch, dim) with equal shapes, got "
            f"{tuple(image_features.shape)} and {tuple(text_features.shape)}"
        )


def _scale(logit_scale: torch.Tensor | float, max_scale: float | None) -> torch.Tensor:
    """``exp(t)``, with ``t`` clamped to ``log(max_scale)`` in the forward pass.

    Clamping the log value (rather than rewriting the parameter after each optimiser step) keeps the
    parameter untouched and its gradient intact while ``t < log(max_scale)``; beyond the cap the
    gradient is zero, so the optimiser stops pushing ``t`` further (weight decay never applies to it).
    """
    t = torch.as_tensor(logit_scale)
    if max_scale is not None:
        t = torch.clamp(t, max=math.log(max_scale))
    return t.exp()


def _negative_columns(
    image_features: torch.Tensor, all_texts: torch.Tensor, negative_text_features: torch.Tensor | None
) -> torch.Tensor:
    """The columns an image row is scored against: the global batch's texts, then any hard negatives."""
    if negative_text_features is None:
        return all_texts
    if negative_text_features.ndim != 2 or negative_text_features.shape[1] != image_features.shape[1]:
        raise InputError(
            f"contrastive loss: hard negatives must be (n, {image_features.shape[1]}), "
            f"got {tuple(negative_text_features.shape)}"
        )
    return torch.cat([all_texts, all_gather_with_grad(negative_text_features)])


def _similarities(rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``rows @ columns.T`` in float32, even under autocast.

    A bf16 dot product of unit vectors carries about 3 significant digits; multiplied by ``s`` up to
    100, that is an error of several tenths of a logit. The ``b x B`` product is cheap next to the
    towers, so it is always done in float32.
    """
    with torch.autocast(device_type=rows.device.type, enabled=False):
        return rows.float() @ columns.float().T


class ClipLoss(nn.Module):
    r"""Symmetric InfoNCE over the global batch (CLIP, Radford et al. 2021).

    Each image must pick its own caption among all ``B`` captions of the batch, and each caption its
    own image. With ``z_ij = s <x_i, y_j>``, the image-to-text term is a ``B``-way cross-entropy per row,

        l^img_i = -log( exp(z_ii) / sum_j exp(z_ij) ),

    the text-to-image term the same over columns (``l^txt_j`` with ``z_jj`` against ``sum_i z_ij``),
    and ``L = (1/2) [ (1/B) sum_i l^img_i + (1/B) sum_j l^txt_j ]``. Lowering ``L`` raises the matched
    similarity against every other pair of the batch, so bigger batches give more negatives.

    ``s = exp(t)`` sets the sharpness of the softmax; the model learns ``t`` (``CLIP_INIT_LOGIT_SCALE``)
    and the forward caps ``s`` at ``max_logit_scale`` (``CLIP_MAX_LOGIT_SCALE``; ``None`` for no cap).
    Hard negatives (see the module docstring) join the sum over ``j`` of the image-to-text term only.
    Logits are computed in float32 whatever the feature dtype or autocast (see ``_similarities``).
    """

    def __init__(self, max_logit_scale: float | None = CLIP_MAX_LOGIT_SCALE) -> None:
        super().__init__()
        self.max_logit_scale = max_logit_scale

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
        negative_text_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of this rank's rows, a scalar; features ``(b, dim)``, ``logit_scale`` the log value."""
        _check_pair(image_features, text_features)
        scale = _scale(logit_scale, self.max_logit_scale)
        all_images = all_gather_with_grad(image_features)
        all_texts = all_gather_with_grad(text_features)
        columns = _negative_columns(image_features, all_texts, negative_text_features)
        logits_per_image = scale * _similarities(image_features, columns)
        logits_per_text = scale * _similarities(text_features, all_images)
        rows = image_features.shape[0]
        labels = torch.arange(rows, device=image_features.device) + get_rank() * rows
        return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


class SigLipLoss(nn.Module):
    r"""Pairwise sigmoid loss (SigLIP, Zhai et al. 2023).

    Every image-text pair of the batch is an independent binary question, "do these match?", with
    label ``l_ij = +1`` on the diagonal and ``-1`` elsewhere, logit ``z_ij = s <x_i, y_j> + b``, and

        L = -(1/B) sum_i sum_j log sigmoid(l_ij z_ij).

    Unlike the softmax, no term normalises over the batch, so the loss needs no global view of a
    row: each rank only needs all *texts* for its own images (the paper's chunked ring exchange saves
    memory for huge batches; gathering is the simple equivalent). The ``1/B`` (not ``1/B^2``)
    normalisation follows the paper.

    The model owns ``t`` (``SIGLIP_INIT_LOGIT_SCALE``, ``s = 10``) and ``b`` (``SIGLIP_INIT_LOGIT_BIAS``
    = -10). The very negative bias matters at the start: of the ``B^2`` pairs only ``B`` are positive,
    so with ``b = 0`` the first steps would be spent pushing all negatives apart; starting near
    ``sigmoid(-10)`` the negatives are already "right" and learning focuses on the positives.
    ``max_logit_scale`` caps ``s`` like CLIP's, off by default as in the paper. Hard negatives are extra
    columns with label -1.
    """

    def __init__(self, max_logit_scale: float | None = None) -> None:
        super().__init__()
        self.max_logit_scale = max_logit_scale

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
        logit_bias: torch.Tensor | float,
        negative_text_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of this rank's rows, a scalar; features ``(b, dim)``, ``logit_scale`` the log value."""
        _check_pair(image_features, text_features)
        scale = _scale(logit_scale, self.max_logit_scale)
        all_texts = all_gather_with_grad(text_features)
        columns = _negative_columns(image_features, all_texts, negative_text_features)
        logits = scale * _similarities(image_features, columns) + logit_bias
        rows = image_features.shape[0]
        own = torch.arange(rows, device=logits.device)
        labels = torch.full_like(logits, -1.0)
        labels[own, own + get_rank() * rows] = 1.0
        return -F.logsigmoid(labels * logits).sum() / rows
