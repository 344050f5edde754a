"""A frozen dual-encoder teacher for distillation: its image and text targets, computed once.

Any model with ``encode_image`` / ``encode_text``, a tokenizer and an image processor can teach: a vlmkit
CLIP or SigLIP of any width, or the offline ``vlmkit:conse-effnet-minilm`` (an EfficientNet and a MiniLM,
a different architecture altogether). The teacher sees the student's own images (the uint8 pixels the
student trains on), brought to its own input size and normalisation by its own preprocessor.

Two kinds of image target:

- ``embedding``: the teacher's image embedding (``encode_image``), in the space its texts share; the
  similarity loss needs this one.
- ``features``: the image tower's pooled output before any projection or classifier (a ViT's pooled
  token; a CNN's globally averaged last feature map). For the ConSE model this is what carries shape:
  a logistic-regression probe on EfficientNet-Lite0's pooled features names a ShapesWorld subject's
  shape 83% of the time (docs/results.md), while its ConSE embedding is a mixture of ImageNet class names.

The teacher never changes, so its image targets for a training set are computed once, stored under
``$VLMKIT_CACHE/teacher-targets/`` by a hash of everything they depend on (the teacher's weights and
buffers, its preprocessing, the kind, and the student's pixels), and reloaded in seconds by the next
run, as ``vision_cache`` does for a frozen tower's tokens. Text targets are cheap per caption and
repeat across epochs, so they are kept in memory per distinct string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from PIL import Image
from safetensors.torch import load_file, save
from torch import nn

from vlmkit.checkpoints import cache_root, from_pretrained
from vlmkit.errors import InputError
from vlmkit.files import atomic_write_bytes
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.text import TextTokenizer
from vlmkit.progress import progress
from vlmkit.training.vision_cache import computation_key

ImageTarget = Literal["embedding", "features"]
FORMAT = 1  # bump when the stored targets change meaning


class DualTeacher:
    """A frozen dual encoder, in eval mode, whose outputs a student learns from (no gradient ever)."""

    def __init__(self, model: nn.Module, source: str = "teacher") -> None:
        if not all(hasattr(model, name) for name in ("encode_image", "encode_text", "vision")):
            raise InputError(
                f"{source}: a dual-encoder teacher needs encode_image and encode_text (a CLIP, SigLIP or ConSE model)"
            )
        if model.tokenizer is None or model.image_processor is None:
            raise InputError(f"{source}: the teacher needs its tokenizer and image processor (a saved model directory)")
        self.model = model.eval().requires_grad_(False)
        self.source = source
        self.tokenizer: TextTokenizer = model.tokenizer
        self.processor: ImagePreprocessor = model.image_processor
        self._texts: dict[str, torch.Tensor] = {}

    @classmethod
    def load(cls, source: str) -> DualTeacher:
        return cls(from_pretrained(source), source)

    def to(self, device: torch.device) -> DualTeacher:
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def images(self, pixels: torch.Tensor, kind: ImageTarget) -> torch.Tensor:
        """Targets ``(N, D)`` float32 of the student's uint8 ``pixels`` ``(N, 3, H, W)``."""
        views = [Image.fromarray(p.permute(1, 2, 0).contiguous().numpy()) for p in pixels]
        x = self.processor.normalize(self.processor.to_uint8(views)).to(self.device)
        if kind == "embedding":
            return self.model.encode_image(x).float()
        if isinstance(self.model.vision, EfficientNet):
            return self.model.vision.feature_map(x).mean(dim=(2, 3)).float()
        return self.model.vision(x).float()

    @torch.inference_mode()
    def texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit text embeddings ``(N, D)`` float32 on the teacher's device, each distinct text encoded once."""
        missing = sorted({t for t in texts if t not in self._texts})
        if missing:
            batch = self.tokenizer(missing)
            mask = batch.attention_mask.to(self.device) if self.model.config.text.uses_attention_mask else None
            embeds = self.model.encode_text(batch.input_ids.to(self.device), mask).float()
            self._texts.update(zip(missing, embeds, strict=True))
        return torch.stack([self._texts[t] for t in texts])

    def targets_key(self, pixels: torch.Tensor, kind: ImageTarget) -> str:
        """A hash of everything ``images(pixels, kind)`` depends on."""
        settings = {"format": FORMAT, "kind": kind, "processor": self.processor.to_dict(), "pixels": list(pixels.shape)}
        return computation_key(settings, self.model, pixels)

    def cached_images(self, pixels: torch.Tensor, kind: ImageTarget, chunk: int = 64) -> torch.Tensor:
        """``images`` of every one of a training set's uint8 ``pixels``, float32 on the CPU, from the cache
        when an earlier run computed them."""
        path = cache_root() / "teacher-targets" / f"{self.targets_key(pixels, kind)}.safetensors"
        if path.is_file():
            print(f"teacher targets: reusing {path}")
            return load_file(path)["targets"]
        parts = [
            self.images(pixels[start : start + chunk], kind).cpu()
            for start in progress(range(0, len(pixels), chunk), desc=f"teacher {kind}", unit="batch")
        ]
        targets = torch.cat(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, save({"targets": targets}))
        print(f"teacher targets: saved {tuple(targets.shape)} to {path}")
        return targets
