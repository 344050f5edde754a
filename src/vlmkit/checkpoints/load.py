"""Loading a model: ``from_pretrained``, and ``resolve`` from a source to a directory.

``from_pretrained`` reads a vlmkit model directory (the layout ``save`` writes), or takes a Hugging
Face CLIP/SigLIP, Llama/Mistral/Qwen2 or LLaVA directory (single or sharded safetensors; see
``hf``) or an open_clip directory (see ``openclip``) and converts on load. A source may also be a
built-in ``vlmkit:NAME`` (see ``builtin``) or a hub id, downloaded through ``huggingface_hub`` when
online.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from vlmkit.checkpoints.builtin import PREFIX, ensure_offline_model
from vlmkit.checkpoints.hf import convert_hf
from vlmkit.checkpoints.keymap import dtype_problem
from vlmkit.checkpoints.openclip import CONFIG as OPEN_CLIP_CONFIG
from vlmkit.checkpoints.openclip import image_processor as open_clip_image_processor
from vlmkit.checkpoints.openclip import read as read_open_clip
from vlmkit.checkpoints.save import CONFIG, PREPROCESSOR, TOKENIZER
from vlmkit.checkpoints.weights import read_safetensors
from vlmkit.config import ConfigBase, config_from_json
from vlmkit.errors import CheckpointError
from vlmkit.files import read_json_object
from vlmkit.models import build_model
from vlmkit.processing.anyres import image_processor_from_dict, image_processor_from_hf
from vlmkit.processing.jinja_chat import JinjaChatTemplate, read_chat_template
from vlmkit.processing.text import TextTokenizer

HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]


def from_pretrained(
    source: str | os.PathLike[str], device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> nn.Module:
    """Load a vlmkit, Hugging Face or open_clip model directory, or a hub id, in eval mode."""
    directory = resolve(source)
    config_path = directory / CONFIG
    config: ConfigBase
    if (directory / OPEN_CLIP_CONFIG).exists() and not config_path.exists():
        config, model = read_open_clip(directory)
    elif not config_path.exists():
        raise CheckpointError(f"{directory}: no {CONFIG}; expected a vlmkit, Hugging Face or open_clip model directory")
    else:
        raw = read_json_object(config_path)
        if "architecture" in raw:
            config = config_from_json(config_path)
            model = build_model(config, device="meta")
            _assign(model, read_safetensors(directory, dtype), str(directory))
        elif "model_type" in raw:
            config, model = convert_hf(raw, directory, dtype)
        else:
            raise CheckpointError(
                f"{config_path}: neither a vlmkit config (no 'architecture') nor a Hugging Face one (no 'model_type')"
            )
    _attach_preprocessing(model, directory, config)
    model.to(device=device, dtype=dtype)
    return model.eval()


def _assign(model: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{k} has shape {tuple(tensors[k].shape)}, expected {tuple(expected[k].shape)}"
        for k in expected
        if k in tensors and tensors[k].shape != expected[k].shape
    ]
    dtypes = [f"{k} {issue}" for k in expected if k in tensors and (issue := dtype_problem(tensors[k], expected[k]))]
    if missing or unexpected or wrong or dtypes:
        parts = [
            f"missing tensors: {', '.join(missing[:6])}" if missing else "",
            f"unexpected tensors: {', '.join(unexpected[:6])}" if unexpected else "",
            f"wrong shapes: {'; '.join(wrong[:4])}" if wrong else "",
            f"wrong dtypes: {'; '.join(dtypes[:4])}" if dtypes else "",
        ]
        raise CheckpointError(f"{where}: " + "; ".join(p for p in parts if p))
    model.load_state_dict(tensors, strict=True, assign=True)


def _attach_preprocessing(model: nn.Module, directory: Path, config: ConfigBase) -> None:
    """Set ``model.tokenizer``, ``model.image_processor`` and ``model.jinja_template`` (a checkpoint's own
    chat template) from whichever files the directory has."""
    settings = read_json_object(directory / PREPROCESSOR) if (directory / PREPROCESSOR).exists() else {}
    if "image" in settings:
        model.image_processor = image_processor_from_dict(settings["image"])
    elif (directory / "preprocessor_config.json").exists():
        hf_settings = read_json_object(directory / "preprocessor_config.json")
        model.image_processor = image_processor_from_hf(hf_settings)
    elif isinstance(nested := _hf_processor_settings(directory).get("image_processor"), dict):
        model.image_processor = image_processor_from_hf(nested)
    elif (directory / OPEN_CLIP_CONFIG).exists():
        model.image_processor = open_clip_image_processor(directory)
    if (directory / TOKENIZER).exists():
        if "text" in settings:
            model.tokenizer = TextTokenizer.from_file(directory / TOKENIZER, settings["text"])
        else:
            model.tokenizer = TextTokenizer.from_hf_dir(directory, default_max_length=_context_length(config))
    if "chat_template" in settings:
        model.jinja_template = JinjaChatTemplate.from_dict(settings["chat_template"])
    elif getattr(model, "tokenizer", None) is not None and (template := read_chat_template(directory)) is not None:
        model.jinja_template = template


def _context_length(config: ConfigBase) -> int | None:
    """A decoder's context, the longest text its tokenizer can be asked to encode."""
    decoder = getattr(config, "decoder", config)
    return getattr(decoder, "max_positions", None)


def _hf_processor_settings(directory: Path) -> dict:
    """transformers 5 saves a processor as one ``processor_config.json``, the image processor nested in it."""
    path = directory / "processor_config.json"
    return read_json_object(path) if path.exists() else {}


def resolve(source: str | os.PathLike[str]) -> Path:
    """A local directory as is; ``vlmkit:NAME`` built into the cache (see ``builtin``); anything else
    is taken as a hub id and downloaded (cached)."""
    text = str(source)
    if text.startswith(PREFIX):
        return ensure_offline_model(text)
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: expected a model directory, got a file")
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise CheckpointError(f"{text}: no such model directory (and not a hub id of the form 'org/name')")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(text, allow_patterns=HUB_PATTERNS))
    except Exception as error:  # huggingface_hub raises many types for offline / missing repos
        raise CheckpointError(
            f"{text}: not a local directory, and downloading it from the Hugging Face Hub failed "
            f"({type(error).__name__}); check the id, or that this machine is online, or pass a "
            "local directory"
        ) from None
