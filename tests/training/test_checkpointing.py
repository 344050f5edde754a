"""Training checkpoints: a kill mid-save never loses the newest one, litter is tidied, bad files are one line."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
import torch
from torch import nn

from vlmkit.errors import CheckpointError
from vlmkit.training.checkpointing import list_checkpoints, load_checkpoint, save_checkpoint

KILLED_SAVE = """
import os, sys
from pathlib import Path
import torch
from torch import nn
from vlmkit.training.checkpointing import save_checkpoint

where = sys.argv[1]
real_rename = Path.rename

def rename(self, target):
    moving = "new" if self.name.startswith(".step_000002.") else "old" if self.name == "step_000002" else None
    if moving == sys.argv[3]:
        os._exit(9)  # SIGKILL-like: no cleanup, no finally
    return real_rename(self, target)

Path.rename = rename
torch.manual_seed(1)
save_checkpoint(Path(sys.argv[2]), 2, {"model": nn.Linear(3, 4)}, {"step": 2, "copy": "new"}, keep_last=3)
"""


def _save(directory, step, marker, keep_last=3):
    torch.manual_seed(step)
    return save_checkpoint(directory, step, {"model": nn.Linear(3, 4)}, {"step": step, "copy": marker}, keep_last)


def _state(path):
    return load_checkpoint(path, {"model": nn.Linear(3, 4)})


@pytest.mark.parametrize("dies_moving", ["new", "old"])
def test_a_kill_while_replacing_a_step_keeps_a_complete_copy(tmp_path, dies_moving):
    """Killed after moving the old step_N aside, before the new one is renamed in ("new"), or just before
    the old one moves, with the new copy complete in staging ("old")."""
    directory = tmp_path / "checkpoints"
    _save(directory, 1, "old")
    _save(directory, 2, "old")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", KILLED_SAVE, "x", str(directory), dies_moving]
    child = subprocess.run(command, env=env, check=False)
    assert child.returncode == 9
    names = sorted(p.name for p in directory.iterdir())
    assert any(name.startswith(".step_000002") for name in names)  # the kill left its litter
    assert [p.name for p in list_checkpoints(directory)] == ["step_000001", "step_000002"]
    assert _state(directory / "step_000002")["copy"] == "old"
    assert sorted(p.name for p in directory.iterdir()) == ["step_000001", "step_000002"]  # no litter left


def test_the_next_save_tidies_a_killed_save(tmp_path):
    directory = tmp_path / "checkpoints"
    _save(directory, 1, "old")
    (directory / "step_000001").rename(directory / ".step_000001-replaced")  # killed mid-swap
    staging = directory / ".step_000001.abcd_123"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"half")
    (directory / ".notes.json.k2j4h5g6.tmp").write_text("{")  # an atomic write killed half-way
    _save(directory, 2, "new")
    assert sorted(p.name for p in directory.iterdir()) == ["step_000001", "step_000002"]
    assert _state(directory / "step_000001")["copy"] == "old"


def test_replacing_a_step_swaps_in_the_new_copy(tmp_path):
    directory = tmp_path / "checkpoints"
    _save(directory, 3, "old")
    _save(directory, 3, "new")
    assert [p.name for p in directory.iterdir()] == ["step_000003"]
    assert _state(directory / "step_000003")["copy"] == "new"
    _save(directory, 4, "x", keep_last=1)
    assert [p.name for p in list_checkpoints(directory)] == ["step_000004"]


def test_a_failed_save_keeps_the_old_copy_and_no_staging(tmp_path, monkeypatch):
    directory = tmp_path / "checkpoints"
    _save(directory, 5, "old")
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space"):
        _save(directory, 5, "new")
    assert [p.name for p in directory.iterdir()] == ["step_000005"]
    assert _state(directory / "step_000005")["copy"] == "old"


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("how", ["pickle", "torch.save", "garbage"])
def test_a_pickled_trainer_state_is_one_line_naming_the_file(tmp_path, how):
    path = _save(tmp_path, 1, "x")
    state = path / "trainer_state.pt"
    if how == "pickle":
        state.write_bytes(pickle.dumps({"step": _Payload()}))
    elif how == "torch.save":
        torch.save({"step": _Payload()}, state)
    else:
        state.write_bytes(b"\x80\x04garbage" * 10)
    with pytest.raises(CheckpointError, match=r"trainer_state\.pt: holds objects other than tensors") as error:
        _state(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("cut", [4, 30, -8])
def test_truncated_or_mismatched_weights_are_one_line_naming_the_file(tmp_path, cut):
    path = _save(tmp_path, 1, "x")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:cut])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file") as error:
        _state(path)
    assert "\n" not in str(error.value)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: does not fit this model \(.*size mismatch") as e:
        load_checkpoint(_save(tmp_path, 2, "x"), {"model": nn.Linear(3, 5)})
    assert "\n" not in str(e.value)
    (path / "trainer_state.pt").write_bytes(b"PK\x03\x04 truncated zip")
    weights.unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors: missing"):
        _state(path)
    with pytest.raises(CheckpointError, match=r"trainer_state\.pt: unreadable"):
        load_checkpoint(path, {})
