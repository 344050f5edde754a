"""vlmkit: vision-language models end to end, in plain PyTorch.

``vlmkit.load(dir_or_hub_id)`` returns a ready model (weights, tokenizer, image processor);
``vlmkit.tasks`` has what to do with it.
"""

__version__ = "0.1.0"

from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import DualEncoderConfig, TextConfig, VisionConfig, clip_config, siglip_config
from vlmkit.models import DualEncoder, TextTransformer, VisionTransformer

load = from_pretrained

__all__ = [
    "DualEncoder",
    "DualEncoderConfig",
    "TextConfig",
    "TextTransformer",
    "VisionConfig",
    "VisionTransformer",
    "__version__",
    "clip_config",
    "from_pretrained",
    "load",
    "save_pretrained",
    "siglip_config",
]
