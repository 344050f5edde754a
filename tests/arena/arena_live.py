"""An arena over three tiny random VLMs, for the arena's tests (not a conftest.py: see serving_live)."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("fastapi")

import tiny_vlm
from vlmkit.arena.app import create_arena_app
from vlmkit.arena.state import Arena
from vlmkit.arena.votes import VoteStore
from vlmkit.serving import ServerLimits

NAMES = ("tiny-vlm-red", "tiny-vlm-green", "tiny-vlm-blue")
LIMITS = dict(max_tokens_cap=12, timeout_s=30, max_body_bytes=256 * 1024, max_image_pixels=256 * 256, max_images=1)


def tiny_models() -> dict:
    models = {}
    for seed, name in enumerate(NAMES):
        torch.manual_seed(seed)
        models[name] = tiny_vlm.tiny_vlm()
    return models


def arena_app(votes_path, models=None, **limits):
    arena = Arena(models or tiny_models(), VoteStore.open(votes_path), ServerLimits(**{**LIMITS, **limits}))
    return create_arena_app(arena), arena


def events(lines) -> list[dict]:
    """The JSON objects of an SSE stream's ``data:`` lines."""
    return [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
