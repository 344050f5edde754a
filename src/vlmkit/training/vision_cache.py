"""A frozen vision tower's tokens for a training set: computed once, kept on disk, shared by stages.

While the tower is frozen its output for an image never changes, so a training step needs only the
projector and the decoder, and the align and instruct stages (separate runs over the same images and
the same tower) would compute the same tokens twice: about five minutes for 10,000 images through an
ImageNet CNN at 224 px on 2 CPU cores. The tokens are saved under ``$VLMKIT_CACHE/vision-tokens/``,
named by a hash of everything they depend on (the tower's weights and buffers, which tokens are read,
the preprocessing, the dtype and the images' pixels), so a later run with the same inputs loads them
in seconds and a run with different ones can never pick up stale tokens.

A dual encoder whose image tower is a pretrained CNN (``models.cnn_tower``) caches its frozen backbone's
tokens the same way, and the contrastive recipe then trains only the head that pools them.

They are stored as float16: exact enough for a projector's input, half the memory of float32.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from safetensors.torch import load_file, save

from vlmkit.checkpoints import cache_root
from vlmkit.files import atomic_write_bytes
from vlmkit.models.cnn_tower import CnnTower
from vlmkit.models.dual_encoder import DualEncoder
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.models.vlm import VisionLanguageModel
from vlmkit.progress import progress

FORMAT = 1  # bump when the stored tokens change meaning


def computation_key(settings: dict[str, Any], module: torch.nn.Module, pixels: torch.Tensor) -> str:
    """A hash of a frozen module's output on preloaded uint8 ``pixels``: the settings that shape it, every weight,
    and the pixels. The one cache key of vision tokens and of a teacher's targets (``training.teacher``)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").reshape(-1).contiguous().view(torch.uint8).numpy())
    digest.update(pixels.contiguous().numpy())
    return digest.hexdigest()


def _frozen_part(model: VisionLanguageModel | DualEncoder) -> tuple[torch.nn.Module, list[Any], Any]:
    """The module whose weights decide the cached tokens, what of its output is read, and the function that
    computes them. A CNN's tokens are its feature map at one level, whichever model reads them, so a dual
    encoder's CNN backbone and a VLM's (same weights, same preprocessing) share one cache file."""
    if isinstance(model, DualEncoder):
        if not isinstance(model.vision, CnnTower):
            raise ValueError("only a CNN tower's tokens are cached for a dual encoder (a ViT trains whole)")
        return model.vision.backbone, ["feature_map", model.vision.level], model.vision.tokens
    projector = model.config.projector
    if isinstance(model.vision, EfficientNet):
        return model.vision, ["feature_map", projector.vision_layer], model.vision_tokens
    return (
        model.vision,
        [projector.vision_layer, projector.vision_norm, projector.drop_class_token],
        model.vision_tokens,
    )


def tokens_key(model: VisionLanguageModel | DualEncoder, pixels: torch.Tensor) -> str:
    """A hash of everything the frozen tower's tokens of these preloaded uint8 ``pixels`` depend on."""
    tower, selection, _ = _frozen_part(model)
    settings = {
        "format": FORMAT,
        "selection": selection,
        "processor": model.image_processor.to_dict(),  # type: ignore[union-attr]
        "dtype": str(next(tower.parameters()).dtype),
        "pixels": list(pixels.shape),
    }
    return computation_key(settings, tower, pixels)


def frozen_vision_tokens(
    model: VisionLanguageModel | DualEncoder, pixels: torch.Tensor, chunk: int = 64
) -> torch.Tensor:
    """The frozen tower's tokens of every image in ``pixels`` (uint8, preloaded), float16 on the CPU: a VLM's
    ``vision_tokens``, or a dual encoder's ``CnnTower.tokens``."""
    path = cache_root() / "vision-tokens" / f"{tokens_key(model, pixels)}.safetensors"
    if path.is_file():
        print(f"vision tokens: reusing {path}")
        return load_file(path)["tokens"]
    tower, _, compute = _frozen_part(model)
    processor = model.image_processor
    parameter = next(tower.parameters())
    was_training = tower.training
    tower.eval()
    parts = []
    with torch.inference_mode():
        for start in progress(range(0, len(pixels), chunk), desc="vision tokens", unit="batch"):
            batch = processor.normalize(pixels[start : start + chunk]).to(parameter.device, parameter.dtype)  # type: ignore[union-attr]
            parts.append(compute(batch).to("cpu", torch.float16))
    tower.train(was_training)
    tokens = torch.cat(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, save({"tokens": tokens}))
    print(f"vision tokens: saved {tokens.numel() * 2 / 2**30:.2f} GiB to {path}")
    return tokens
