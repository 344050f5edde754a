"""Model towers and their combinations. Imports nothing from tasks, training, evaluation or serving."""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.config import ConfigBase, architecture_of
from vlmkit.models.conse import ConSEModel
from vlmkit.models.decoder import Decoder
from vlmkit.models.dit import DiT
from vlmkit.models.dual_encoder import DualEncoder, DualEncoderOutput
from vlmkit.models.mae import MaskedAutoencoder
from vlmkit.models.mask_tokenizer import MaskTokenizer
from vlmkit.models.qwen2_vl import Qwen2VLModel
from vlmkit.models.text import TextTransformer
from vlmkit.models.vision import VisionTransformer
from vlmkit.models.vlm import VisionLanguageModel, VlmOutput

MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "dual_encoder": DualEncoder,
    "decoder": Decoder,
    "vlm": VisionLanguageModel,
    "conse": ConSEModel,
    "mask_tokenizer": MaskTokenizer,
    "dit": DiT,
    "mae": MaskedAutoencoder,
    "qwen2_vl": Qwen2VLModel,
}


def build_model(config: ConfigBase, device: str | torch.device | None = None) -> nn.Module:
    """The model of ``config``'s architecture; ``device="meta"`` skips random init before loading weights."""
    with torch.device(device or "cpu"):
        return MODEL_CLASSES[architecture_of(config)](config)


__all__ = [
    "ConSEModel",
    "Decoder",
    "DiT",
    "DualEncoder",
    "DualEncoderOutput",
    "MaskTokenizer",
    "MaskedAutoencoder",
    "Qwen2VLModel",
    "TextTransformer",
    "VisionLanguageModel",
    "VisionTransformer",
    "VlmOutput",
    "build_model",
]
