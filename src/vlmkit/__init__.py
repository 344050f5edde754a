"""vlmkit: vision-language models end to end, in plain PyTorch.

``vlmkit.load(dir_or_hub_id)`` returns a ready model (weights, tokenizer, image processor);
``vlmkit.tasks`` has what to do with it. The names below are re-exports of the subpackages'.
"""

from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import (
    DecoderConfig,
    DualEncoderConfig,
    TextConfig,
    VisionConfig,
    VlmConfig,
    clip_config,
    siglip_config,
)
from vlmkit.models import Decoder, DualEncoder, TextTransformer, VisionLanguageModel, VisionTransformer
from vlmkit.models.generation import GenerationConfig
from vlmkit.version import __version__

load = from_pretrained

__all__ = [
    "Decoder",
    "DecoderConfig",
    "DualEncoder",
    "DualEncoderConfig",
    "GenerationConfig",
    "TextConfig",
    "TextTransformer",
    "VisionConfig",
    "VisionLanguageModel",
    "VisionTransformer",
    "VlmConfig",
    "__version__",
    "clip_config",
    "from_pretrained",
    "load",
    "save_pretrained",
    "siglip_config",
]
