"""The distillation losses against values worked out by hand, and zero when student equals teacher."""

from __future__ import annotations

import math

import pytest
import torch

from vlmkit.errors import InputError
from vlmkit.training.distill_losses import embedding_match, similarity_kl, token_kl


def test_embedding_match_by_hand():
    student = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    teacher = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    # Cosines 1 and 1/sqrt(2): the loss is the mean of 1 - cos.
    assert embedding_match(student, teacher, "cosine").item() == pytest.approx((0 + 1 - 2**-0.5) / 2)
    # MSE: squared differences 1, 0, 0, 1 over four entries.
    assert embedding_match(student, teacher, "mse").item() == pytest.approx(0.5)
    with pytest.raises(InputError, match="equal shapes"):
        embedding_match(student, teacher[:, :1])


def test_similarity_kl_by_hand():
    """Student cosines I, teacher cosines the swap matrix: every row and column is KL(softmax([0, 1/tau]) ||
    softmax([1/tau, 0])) = (e^a - 1) / (e^a + 1) * a with a = 1/tau, times tau^2."""
    eye = torch.eye(2)
    swapped = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    for tau in (1.0, 0.5):
        a = 1 / tau
        expected = tau**2 * a * (math.exp(a) - 1) / (math.exp(a) + 1)
        assert similarity_kl(eye, eye, eye, swapped, tau).item() == pytest.approx(expected, rel=1e-5)


def test_similarity_kl_is_zero_for_the_same_matrix_at_any_width():
    images, texts = torch.randn(5, 8), torch.randn(5, 8)
    rotation = torch.linalg.qr(torch.randn(12, 12)).Q[:8]  # 8 -> 12 dims, cosines unchanged
    loss = similarity_kl(images, texts, images @ rotation * 3, texts @ rotation, temperature=0.07)
    assert loss.abs().item() < 1e-5
    with pytest.raises(InputError, match="positive"):
        similarity_kl(images, texts, images, texts, temperature=0)


def test_token_kl_by_hand_and_vocabulary_check():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])  # softmax [3/4, 1/4]
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert token_kl(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    logits = torch.randn(7, 11)
    assert token_kl(logits, logits.clone(), temperature=2.0).abs().item() < 1e-6
    with pytest.raises(InputError, match="shared vocabulary"):
        token_kl(torch.randn(3, 11), torch.randn(3, 12))
