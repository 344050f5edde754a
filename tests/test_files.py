"""Atomic writes: the file appears whole or not at all, with the usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from vlmkit.files import atomic_open, atomic_write_text


def test_atomic_write_replaces_whole_and_uses_the_umask(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "kept")
    with pytest.raises(RuntimeError), atomic_open(path, "w") as handle:
        handle.write("half")
        raise RuntimeError("crash")
    assert path.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
