"""Writing a vlmkit model directory: ``save_pretrained``, and the names of the files it holds.

A vlmkit model directory holds ``config.json`` (with ``"architecture"``), ``model.safetensors``,
and, when the model has them, ``tokenizer.json`` and ``preprocessor.json``. Saving is apart from
loading (``load``) because building the built-in models (``builtin``) saves, and loading resolves
``vlmkit:`` names through them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from safetensors.torch import save as safetensors_bytes
from torch import nn

from vlmkit.checkpoints.weights import WEIGHTS
from vlmkit.config import ConfigBase, architecture_of
from vlmkit.files import atomic_write_bytes, atomic_write_json
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.jinja_chat import JinjaChatTemplate
from vlmkit.processing.text import TextTokenizer
from vlmkit.version import __version__

CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
PREPROCESSOR = "preprocessor.json"


def save_pretrained(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` (its config, weights, tokenizer and preprocessor) so that it reloads bit-identically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config: ConfigBase = model.config  # type: ignore[assignment]
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    atomic_write_bytes(directory / WEIGHTS, safetensors_bytes(tensors, metadata={"format": "pt"}))
    tokenizer: TextTokenizer | None = getattr(model, "tokenizer", None)
    processor: ImagePreprocessor | None = getattr(model, "image_processor", None)
    preprocessing: dict[str, Any] = {}
    if tokenizer is not None:
        tokenizer.save(directory / TOKENIZER)
        preprocessing["text"] = tokenizer.to_dict()
    if processor is not None:
        preprocessing["image"] = processor.to_dict()
    jinja_template: JinjaChatTemplate | None = getattr(model, "jinja_template", None)
    if jinja_template is not None:
        preprocessing["chat_template"] = jinja_template.to_dict()
    if preprocessing:
        atomic_write_json(directory / PREPROCESSOR, preprocessing)
    # config.json last: its presence marks a complete directory.
    atomic_write_json(
        directory / CONFIG, {"architecture": architecture_of(config), "vlmkit_version": __version__, **config.to_dict()}
    )
    return directory
