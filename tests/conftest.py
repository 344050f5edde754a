"""Shared fixtures. Helpers that tests import live in ``testkit`` (a unique module name: a
``from testkit import`` would find whichever conftest.py was imported last)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch) -> None:
    """What vlmkit caches (built models, vision tokens) goes to the session's temporary folder, never the
    user's ~/.cache; tests that need their own cache set VLMKIT_CACHE themselves."""
    monkeypatch.setenv("VLMKIT_CACHE", str(tmp_path_factory.getbasetemp() / "vlmkit-cache"))


@pytest.fixture
def photo_files(tmp_path):
    """A few small real-looking images on disk (scikit-image's sample photos, downscaled)."""
    from PIL import Image
    from skimage import data

    paths = []
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        path = tmp_path / f"{name}.jpg"
        Image.fromarray(getattr(data, name)()).convert("RGB").resize((64, 48)).save(path, quality=90)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory):
    """A small ShapesWorld train/val pair at 32 px, generated once per test session."""
    from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split

    root = tmp_path_factory.mktemp("shapes")
    config = ShapesWorldConfig(image_size=32, max_objects=2)
    generate_split(root / "train", config, "train", 64, seed=0, workers=1, progress=False)
    generate_split(root / "val", config, "val", 16, seed=0, workers=1, progress=False)
    return root
