"""Reading safetensors weights: a single file or a sharded set with an index. Never pickles."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath, PureWindowsPath

import torch
from safetensors import SafetensorError, safe_open

from vlmkit.errors import CheckpointError

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"


def read_safetensors(directory: Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a directory's single ``model.safetensors`` or of its sharded index; floating-point
    ones cast to ``dtype`` as they are read when it is given."""
    index_path = directory / WEIGHTS_INDEX
    if index_path.exists():
        files = shard_files(index_path)
    elif (directory / WEIGHTS).exists():
        files = [WEIGHTS]
    else:
        found = sorted(p.name for p in directory.glob("*.safetensors"))
        if len(found) != 1:
            raise CheckpointError(f"{directory}: no {WEIGHTS} (only safetensors weights are loaded, never pickles)")
        files = found
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        tensors.update(read_safetensors_file(directory / name, dtype))
    return tensors


def read_safetensors_file(path: Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The file's tensors, memory-mapped (pages are read when first touched).

    With ``dtype``, each tensor is cast as it is read under a handle of its own: a handle's memory map
    stays resident while it is open, so casting under one handle would hold the whole file and every
    cast copy at once (1.5x the file for bfloat16); one handle per tensor holds the cast copies and one
    tensor (``benchmarks/load_memory.py``).
    """
    if not path.exists():
        raise CheckpointError(f"{path}: weights file is missing")
    try:
        with safe_open(str(path), framework="pt") as handle:
            if dtype is None:
                return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            keys = list(handle.keys())
        tensors = {}
        for key in keys:
            with safe_open(str(path), framework="pt") as handle:
                tensor = handle.get_tensor(key)
                tensors[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor.clone()
        return tensors
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({_first_line(error)})") from None


def shard_files(index_path: Path) -> list[str]:
    """The shard file names a ``model.safetensors.index.json`` maps tensors to, checked: each a relative
    path that stays inside the model directory (a symlinked shard, as in the hub cache, is fine)."""
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else _first_line(error)
        raise CheckpointError(f"{index_path}: not a valid safetensors index ({reason})") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index_path}: missing the 'weight_map' object (tensor name -> shard file)")
    for key, name in weight_map.items():
        if not isinstance(name, str) or not name.strip():
            raise CheckpointError(f"{index_path}: weight_map[{key!r}] must be a shard file name, got {name!r}")
        if _escapes(name):
            raise CheckpointError(
                f"{index_path}: weight_map[{key!r}] = {name!r} points outside the model directory; "
                "expected a file name inside it"
            )
    return sorted(set(weight_map.values()))


def _escapes(name: str) -> bool:
    """Whether ``name`` is absolute (POSIX or Windows) or climbs out with ``..``."""
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    return posix.is_absolute() or bool(windows.drive or windows.root) or ".." in posix.parts or ".." in windows.parts


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
