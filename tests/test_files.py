"""Atomic writes: the file appears whole or not at all, with the usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from vlmkit.files import WriterLock, atomic_open, atomic_write_text, remove_stale_temps


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


def test_a_failed_rename_leaves_no_temp(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("x")
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "taken", "cannot replace a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(tmp_path / "bad.txt", "\udcff")  # fails inside the write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_stale_temps_of_a_killed_writer_are_removed_by_age(tmp_path):
    old, fresh = tmp_path / ".index.json.a1b2c3d4.tmp", tmp_path / ".index.json.zz_99xyz.tmp"
    keep = [tmp_path / "index.json", tmp_path / ".hidden.tmp", tmp_path / "notes.a1b2c3d4.tmp"]
    for path in (old, fresh, *keep):
        path.write_text("x")
    os.utime(old, (0, 0))
    assert remove_stale_temps(tmp_path, older_than=3600) == [old]
    assert remove_stale_temps(tmp_path) == [fresh]  # with the writer lock held: every temp is stale
    assert sorted(tmp_path.iterdir()) == sorted(keep)


def test_writer_lock_is_exclusive_until_released(tmp_path):
    first, second = WriterLock(tmp_path / "writer.lock"), WriterLock(tmp_path / "writer.lock")
    assert first.acquire() and first.held
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    on_dir, again = WriterLock(tmp_path), WriterLock(tmp_path)  # a directory locks itself, adding no file
    assert on_dir.acquire() and not again.acquire()
    on_dir.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["writer.lock"]


def test_stale_temps_can_be_limited_to_the_files_a_lock_covers(tmp_path):
    ours, theirs = tmp_path / ".manifest.json.a1b2c3d4.tmp", tmp_path / ".report.html.a1b2c3d4.tmp"
    ours.write_text("x")
    theirs.write_text("x")
    assert remove_stale_temps(tmp_path, targets=["manifest.json"]) == [ours]
    assert theirs.exists()
