r"""Knowledge-distillation losses: a student matches what a frozen teacher computes.

Three ways to learn from a teacher, each a plain function of tensors (no parameters, no model):

- ``embedding_match``: the student's vector for an input should point where the teacher's does
  (FitNets' "hints", Romero et al. 2015, on the embeddings). ``cosine`` is ``mean_i (1 - cos(s_i, t_i))``,
  indifferent to scale; ``mse`` is ``mean_{i,d} (s_id - t_id)^2``, for targets whose size means something
  (a CNN's pooled features). When the widths differ, the caller maps the student first
  (``DistillObjective``'s learned linear maps).
- ``similarity_kl``: the student's in-batch similarity matrix should rank the pairs as the teacher's
  does. With cosine matrices ``S`` (student) and ``T`` (teacher) of the batch's images against its
  texts and a temperature ``tau``, each row ``i`` gives distributions ``q_i = softmax(T_i / tau)`` and
  ``p_i = softmax(S_i / tau)``, and the loss is ``tau^2 * mean_i KL(q_i || p_i)``, averaged over the
  image-to-text rows and the text-to-image columns. The ``tau^2`` keeps the gradient's size independent
  of ``tau`` (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network", section 2).
- ``token_kl``: the same KL per labelled token between a teacher's and a student's next-token logits
  (the same tokenizer, so the same vocabulary), ``tau^2 * mean_n KL(softmax(z^t_n / tau) || softmax(z^s_n / tau))``.

All are computed in float32 whatever the autocast, and are zero exactly when the student equals the teacher.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from vlmkit.errors import InputError

MatchKind = Literal["cosine", "mse"]


def _same_shape(name: str, student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.shape != teacher.shape:
        raise InputError(
            f"{name}: student and teacher must have equal shapes, got {tuple(student.shape)} and {tuple(teacher.shape)}"
        )


def _kl_rows(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``tau^2 * mean over rows of KL(softmax(teacher / tau) || softmax(student / tau))``."""
    teacher_log = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    student_log = F.log_softmax(student_logits.float() / temperature, dim=-1)
    kl = F.kl_div(student_log, teacher_log, log_target=True, reduction="sum") / student_logits.shape[0]
    return kl * temperature**2


def embedding_match(student: torch.Tensor, teacher: torch.Tensor, kind: MatchKind = "cosine") -> torch.Tensor:
    """How far the student's ``(N, D)`` vectors are from the teacher's, a scalar (see the module docstring)."""
    _same_shape("embedding_match", student, teacher)
    with torch.autocast(device_type=student.device.type, enabled=False):
        student, teacher = student.float(), teacher.float()
        if kind == "cosine":
            return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()
        return F.mse_loss(student, teacher)


def similarity_kl(
    student_images: torch.Tensor,
    student_texts: torch.Tensor,
    teacher_images: torch.Tensor,
    teacher_texts: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """KL of the in-batch softmax of the teacher's cosine matrix to the student's, both directions.

    Each side's images and texts are L2-normalised here, so the student's and teacher's widths may differ.
    """
    if temperature <= 0:
        raise InputError(f"similarity_kl: temperature must be positive, got {temperature}")
    with torch.autocast(device_type=student_images.device.type, enabled=False):
        student = F.normalize(student_images.float(), dim=-1) @ F.normalize(student_texts.float(), dim=-1).T
        teacher = F.normalize(teacher_images.float(), dim=-1) @ F.normalize(teacher_texts.float(), dim=-1).T
        _same_shape("similarity_kl", student, teacher)
        return (_kl_rows(student, teacher, temperature) + _kl_rows(student.T, teacher.T, temperature)) / 2


def token_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Mean KL over ``N`` tokens between teacher and student next-token distributions, ``(N, vocab)`` each."""
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise InputError(
            f"token_kl: the teacher predicts {teacher_logits.shape[-1]} tokens and the student "
            f"{student_logits.shape[-1]}; token-level distillation needs one shared vocabulary"
        )
    _same_shape("token_kl", student_logits, teacher_logits)
    if temperature <= 0:
        raise InputError(f"token_kl: temperature must be positive, got {temperature}")
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        return _kl_rows(student_logits, teacher_logits, temperature)
