"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a directory ``checkpoints/step_000123/`` holding ``model.safetensors`` (the weights),
``objective.safetensors`` when the training objective has parameters of its own (a head that is not
exported), and ``trainer_state.pt`` (optimizer, scheduler, counters, RNG states; only tensors and plain Python
values, so it loads with ``torch.load(weights_only=True)``). It is written under a temporary name
and renamed into place, so a crash leaves either the old set of checkpoints or the new one.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vlmkit.errors import CheckpointError

_STEP_DIR = re.compile(r"^step_(\d{6,})$")


def rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))


def _tuples(value: Any) -> Any:
    """``random.setstate`` needs tuples; a round trip through torch.save may give lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(
    checkpoint_dir: Path, step: int, modules: dict[str, nn.Module], state: dict[str, Any], keep_last: int
) -> Path:
    """Write step ``step`` atomically (``modules``: file stem -> module, e.g. ``{"model": model}``), then
    delete all but the newest ``keep_last`` checkpoints."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir / f"step_{step:06d}"
    staging = Path(tempfile.mkdtemp(prefix=f".step_{step:06d}.", dir=checkpoint_dir))
    try:
        for stem, module in modules.items():
            tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
            if tensors:
                save_file(tensors, staging / f"{stem}.safetensors")
        torch.save(state, staging / "trainer_state.pt")
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in list_checkpoints(checkpoint_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (staging directories start with a dot and are skipped)."""
    if not checkpoint_dir.is_dir():
        return []
    found = [p for p in checkpoint_dir.iterdir() if _STEP_DIR.match(p.name) and (p / "trainer_state.pt").exists()]
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))  # type: ignore[union-attr]


def load_checkpoint(path: Path, modules: dict[str, nn.Module]) -> dict[str, Any]:
    """Load each module's weights (see ``save_checkpoint``) and return the trainer state."""
    try:
        for stem, module in modules.items():
            if module.state_dict():
                module.load_state_dict(load_file(path / f"{stem}.safetensors"))
        return torch.load(path / "trainer_state.pt", weights_only=True)
    except (OSError, RuntimeError) as error:
        raise CheckpointError(f"{path}: cannot resume from this checkpoint ({error})") from None
