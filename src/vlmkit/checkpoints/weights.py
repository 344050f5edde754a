"""Reading safetensors weights: a single file or a sharded set with an index. Never pickles."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from vlmkit.errors import CheckpointError

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"


def read_safetensors(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a directory's single ``model.safetensors`` or of its sharded index."""
    index_path = directory / WEIGHTS_INDEX
    if index_path.exists():
        weight_map = _read_index(index_path)
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index_path}: missing the 'weight_map' object")
        files = sorted(set(weight_map.values()))
    elif (directory / WEIGHTS).exists():
        files = [WEIGHTS]
    else:
        found = sorted(p.name for p in directory.glob("*.safetensors"))
        if len(found) != 1:
            raise CheckpointError(f"{directory}: no {WEIGHTS} (only safetensors weights are loaded, never pickles)")
        files = found
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        tensors.update(read_safetensors_file(directory / name))
    return tensors


def read_safetensors_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise CheckpointError(f"{path}: weights file is missing")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None


def _read_index(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("weight_map")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise CheckpointError(f"{path}: not a valid safetensors index ({error})") from None
