"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a directory ``checkpoints/step_000123/`` holding ``model.safetensors`` (the weights),
``objective.safetensors`` when the training objective has parameters of its own (a head that is not
exported), and ``trainer_state.pt`` (optimizer, scheduler, counters, RNG states; only tensors and plain Python
values, so it loads with ``torch.load(weights_only=True)``). It is written under a temporary name
and renamed into place, so a crash leaves either the old set of checkpoints or the new one (see
``save_checkpoint``; what a killed save leaves behind is tidied at the next save or listing).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from vlmkit.errors import CheckpointError, InputError
from vlmkit.files import WriterLock, remove_stale_temps

_STEP_DIR = re.compile(r"^step_(\d{6,})$")
_ASIDE = "-replaced"
_ASIDE_DIR = re.compile(r"^\.(step_\d{6,})-replaced$")
_STAGING_DIR = re.compile(r"^\.step_\d{6,}\.[A-Za-z0-9_]+$")


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
    delete all but the newest ``keep_last`` checkpoints.

    The files are written into a staging directory and synced; an existing ``step_N`` is renamed aside
    (``.step_N-replaced``) before the staging directory takes its name, and deleted only after. A kill at
    any point leaves a complete ``step_N``, or its old copy aside, which the next save or listing puts
    back; staging directories and temporary files of a killed save are removed then too.
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(checkpoint_dir)
    lock.acquire(blocking=True)  # a listing (which may tidy) or another save finishes first
    try:
        _recover(checkpoint_dir)
        final = checkpoint_dir / f"step_{step:06d}"
        staging = Path(tempfile.mkdtemp(prefix=f".step_{step:06d}.", dir=checkpoint_dir))
        try:
            for stem, module in modules.items():
                tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
                if tensors:
                    save_file(tensors, staging / f"{stem}.safetensors")
            torch.save(state, staging / "trainer_state.pt")
            _sync_tree(staging)
            aside = checkpoint_dir / f".{final.name}{_ASIDE}"
            if final.exists():
                shutil.rmtree(aside, ignore_errors=True)
                final.rename(aside)  # from here until the next rename, the old copy lives aside
            staging.rename(final)
            _sync_dir(checkpoint_dir)
            shutil.rmtree(aside, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(OSError):
                _recover(checkpoint_dir)  # an old copy renamed aside goes back
            raise
        for old in _complete(checkpoint_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        lock.release()
    return final


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (staging directories start with a dot and are skipped).

    Waits for a save in progress, then tidies what a killed save left: an old copy renamed aside goes
    back to its name if the new one never arrived, and staging directories and temporary files go.
    """
    if not checkpoint_dir.is_dir():
        return []
    lock = WriterLock(checkpoint_dir)
    lock.acquire(blocking=True)  # waits out a save under way: its staging directory is not litter
    try:
        with contextlib.suppress(OSError):  # a read-only copy of a run is listed as it is
            _recover(checkpoint_dir)
        return _complete(checkpoint_dir)
    finally:
        lock.release()


def _complete(checkpoint_dir: Path) -> list[Path]:
    found = [p for p in checkpoint_dir.iterdir() if _STEP_DIR.match(p.name) and (p / "trainer_state.pt").exists()]
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))  # type: ignore[union-attr]


def _recover(checkpoint_dir: Path) -> None:
    """Undo what a killed save left (call holding the directory's lock): see ``list_checkpoints``."""
    for path in checkpoint_dir.iterdir():
        aside = _ASIDE_DIR.match(path.name)
        if aside:
            final = checkpoint_dir / aside.group(1)
            if (final / "trainer_state.pt").exists():
                shutil.rmtree(path, ignore_errors=True)  # the replacement made it in
            else:
                shutil.rmtree(final, ignore_errors=True)
                path.rename(final)
        elif _STAGING_DIR.match(path.name) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    remove_stale_temps(checkpoint_dir)


def _sync_tree(directory: Path) -> None:
    """fsync every file of ``directory`` and the directory, so a rename publishes complete files."""
    for path in directory.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    _sync_dir(directory)


def _sync_dir(directory: Path) -> None:
    if os.name == "posix":
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_checkpoint(path: Path, modules: dict[str, nn.Module]) -> dict[str, Any]:
    """Load each module's weights (see ``save_checkpoint``) and return the trainer state.

    Every problem is a ``CheckpointError`` naming the file: missing, truncated, wrong keys or shapes,
    or a ``trainer_state.pt`` holding anything but tensors and plain values (never unpickled).
    """
    for stem, module in modules.items():
        if module.state_dict():
            _load_weights(path / f"{stem}.safetensors", module)
    state_path = path / "trainer_state.pt"
    if not state_path.is_file():
        raise CheckpointError(f"{state_path}: missing; cannot resume from this checkpoint")
    try:
        state = torch.load(state_path, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{state_path}: holds objects other than tensors and plain values (or is corrupt); "
            "vlmkit never unpickles them, so it cannot resume from this checkpoint"
        ) from None
    except Exception as error:  # torch raises RuntimeError, EOFError, ... for a damaged archive
        raise CheckpointError(f"{state_path}: unreadable ({_first_line(error)}); cannot resume from it") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{state_path}: expected a dict of trainer state, got {type(state).__name__}")
    return state


def _load_weights(file: Path, module: nn.Module) -> None:
    try:
        tensors = load_file(file)
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing; cannot resume from this checkpoint") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{file}: not a readable safetensors file ({_first_line(error)})") from None
    try:
        module.load_state_dict(tensors)
    except RuntimeError as error:  # wrong keys or shapes; torch's message spans lines
        details = " ".join(line.strip() for line in str(error).splitlines()[1:] if line.strip())
        raise CheckpointError(f"{file}: does not fit this model ({details[:500] or _first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def checkpoints_to_resume(checkpoint_dir: Path, resume: bool) -> list[Path]:
    """The checkpoints a run may continue from: none without ``resume``, where any existing one is refused
    (a new run must not silently mix into an old run's directory)."""
    existing = list_checkpoints(checkpoint_dir)
    if existing and not resume:
        raise InputError(
            f"{checkpoint_dir.parent} already holds checkpoints; pass --resume to continue that run or choose "
            "another output directory"
        )
    return existing
