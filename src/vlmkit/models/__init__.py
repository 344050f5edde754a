"""Model towers and their combinations. Imports nothing from tasks, training, evaluation or serving."""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.config import ConfigBase, architecture_of
from vlmkit.models.dual_encoder import DualEncoder, DualEncoderOutput
from vlmkit.models.text import TextTransformer
from vlmkit.models.vision import VisionTransformer

MODEL_CLASSES: dict[str, type[nn.Module]] = {"dual_encoder": DualEncoder}


def build_model(config: ConfigBase, device: str | torch.device | None = None) -> nn.Module:
    """The model of ``config``'s architecture; ``device="meta"`` skips random init before loading weights."""
    with torch.device(device or "cpu"):
        return MODEL_CLASSES[architecture_of(config)](config)


__all__ = ["DualEncoder", "DualEncoderOutput", "TextTransformer", "VisionTransformer", "build_model"]
