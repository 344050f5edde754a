"""ClipLoss and SigLipLoss in one process, against the formulas written out term by term."""

import math

import pytest
import torch
import torch.nn.functional as F

from vlmkit.errors import InputError
from vlmkit.training.losses import ClipLoss, SigLipLoss


def _features(batch: int = 6, dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = F.normalize(torch.randn(batch, dim, generator=generator), dim=-1)
    texts = F.normalize(torch.randn(batch, dim, generator=generator), dim=-1)
    return images, texts


def _clip_by_hand(images: torch.Tensor, texts: torch.Tensor, scale: float) -> float:
    sims = (images @ texts.T).tolist()
    batch = len(sims)
    image_terms = [-(scale * sims[i][i] - math.log(sum(math.exp(scale * s) for s in sims[i]))) for i in range(batch)]
    text_terms = [
        -(scale * sims[j][j] - math.log(sum(math.exp(scale * sims[i][j]) for i in range(batch)))) for j in range(batch)
    ]
    return (sum(image_terms) / batch + sum(text_terms) / batch) / 2


def _siglip_by_hand(images: torch.Tensor, texts: torch.Tensor, scale: float, bias: float) -> float:
    sims = (images @ texts.T).tolist()
    batch = len(sims)
    total = 0.0
    for i in range(batch):
        for j in range(batch):
            label = 1.0 if i == j else -1.0
            total += math.log(1.0 + math.exp(-label * (scale * sims[i][j] + bias)))
    return total / batch


def test_clip_loss_matches_the_formula() -> None:
    images, texts = _features()
    t = math.log(1 / 0.07)
    loss = ClipLoss()(images, texts, torch.tensor(t))
    assert loss.item() == pytest.approx(_clip_by_hand(images, texts, math.exp(t)), rel=1e-5)


def test_siglip_loss_matches_the_formula() -> None:
    images, texts = _features()
    loss = SigLipLoss()(images, texts, torch.tensor(math.log(10.0)), torch.tensor(-3.0))
    assert loss.item() == pytest.approx(_siglip_by_hand(images, texts, 10.0, -3.0), rel=1e-5)


def test_matched_pairs_score_lower_than_shuffled_ones() -> None:
    images, _ = _features()
    texts = F.normalize(images + 0.05 * torch.randn_like(images), dim=-1)
    shuffled = texts.roll(1, dims=0)
    for loss_fn, extra in ((ClipLoss(), ()), (SigLipLoss(), (torch.tensor(-5.0),))):
        aligned = loss_fn(images, texts, torch.tensor(math.log(10.0)), *extra)
        wrong = loss_fn(images, shuffled, torch.tensor(math.log(10.0)), *extra)
        assert aligned < wrong


def test_clip_scale_is_capped_in_the_forward_with_gradient_below_the_cap() -> None:
    images, texts = _features()
    loss_fn = ClipLoss(max_logit_scale=100.0)
    above = torch.tensor(math.log(1000.0), requires_grad=True)
    loss_above = loss_fn(images, texts, above)
    loss_above.backward()
    at_cap = loss_fn(images, texts, torch.tensor(math.log(100.0)))
    assert loss_above.item() == pytest.approx(at_cap.item(), rel=1e-6)
    assert above.grad.item() == 0.0

    below = torch.tensor(math.log(10.0), requires_grad=True)
    loss_fn(images, texts, below).backward()
    assert below.grad.item() != 0.0
    assert ClipLoss(max_logit_scale=None)(images, texts, math.log(1000.0)).item() != pytest.approx(at_cap.item())


def test_logits_stay_float32_under_autocast() -> None:
    images, texts = _features(batch=16, dim=64)
    reference = ClipLoss()(images, texts, math.log(100.0)), SigLipLoss()(images, texts, math.log(100.0), -10.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = ClipLoss()(images, texts, math.log(100.0)), SigLipLoss()(images, texts, math.log(100.0), -10.0)
    for got, expected in zip(autocast, reference, strict=True):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_mismatched_features_are_an_input_error() -> None:
    images, texts = _features()
    with pytest.raises(InputError, match="equal shapes"):
        ClipLoss()(images, texts[:3], 1.0)
    with pytest.raises(InputError, match="equal shapes"):
        SigLipLoss()(images, texts[:, :4], 1.0, 0.0)


def test_clip_hard_negatives_are_extra_columns_for_images_only() -> None:
    images, texts = _features()
    _, negatives = _features(batch=4, seed=1)
    scale = 10.0
    loss = ClipLoss()(images, texts, torch.tensor(math.log(scale)), negatives)
    sims, extra = (images @ texts.T).tolist(), (images @ negatives.T).tolist()
    batch = len(sims)
    image_terms = [
        -(scale * sims[i][i] - math.log(sum(math.exp(scale * s) for s in sims[i] + extra[i]))) for i in range(batch)
    ]
    text_terms = [
        -(scale * sims[j][j] - math.log(sum(math.exp(scale * sims[i][j]) for i in range(batch)))) for j in range(batch)
    ]
    assert loss.item() == pytest.approx((sum(image_terms) + sum(text_terms)) / batch / 2, rel=1e-5)


def test_siglip_hard_negatives_are_extra_negative_pairs() -> None:
    images, texts = _features()
    _, negatives = _features(batch=3, seed=1)
    loss = SigLipLoss()(images, texts, torch.tensor(math.log(10.0)), torch.tensor(-3.0), negatives)
    extra = sum(math.log(1.0 + math.exp(10.0 * s - 3.0)) for row in (images @ negatives.T).tolist() for s in row) / len(
        images
    )
    assert loss.item() == pytest.approx(_siglip_by_hand(images, texts, 10.0, -3.0) + extra, rel=1e-5)


def test_a_hard_negative_near_the_truth_raises_the_loss() -> None:
    images, texts = _features()
    close = F.normalize(texts + 0.01 * torch.randn_like(texts), dim=-1)
    scale = torch.tensor(math.log(50.0))
    assert ClipLoss()(images, texts, scale, close) > ClipLoss()(images, texts, scale) + 0.3


def test_hard_negatives_of_the_wrong_width_are_named() -> None:
    images, texts = _features()
    with pytest.raises(InputError, match="hard negatives"):
        ClipLoss()(images, texts, 1.0, torch.zeros(2, 3))
