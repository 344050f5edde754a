"""One writer per index directory: a second one is refused in one line, readers need no lock, nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vlmkit.errors import InputError
from vlmkit.search.store import ItemMeta, SearchStore

# Creates an index, commits 5 rows, says so, then holds it open (a long indexing run) until stdin closes.
HOLDER = """
import sys
import numpy as np
from vlmkit.search.store import ItemMeta, SearchStore

directory, model_id, dim = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = SearchStore.create(directory, model_id, dim)
store.add([ItemMeta(f"first/{i}.jpg", "h", 1, 0.0) for i in range(5)], np.eye(dim)[:5])
store.commit()
print("ready", flush=True)
sys.stdin.read()
store.add([ItemMeta("first/last.jpg", "h", 1, 0.0)], np.eye(dim)[5:6])
store.close()
"""


@pytest.fixture
def hold():
    """hold(index_dir, model_id="m", dim=16): a child process writing a new index there, once it has committed."""
    children = []

    def start(index_dir, model_id="m", dim=16) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        command = [sys.executable, "-c", HOLDER, str(index_dir), str(model_id), str(dim)]
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        children.append(child)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


def _finish(child: subprocess.Popen) -> None:
    child.stdin.close()
    assert child.wait(timeout=60) == 0


def test_a_second_writer_is_refused_and_the_first_loses_nothing(hold, tmp_path, unit) -> None:
    index_dir = tmp_path / "index"
    child = hold(index_dir)
    opened = SearchStore.open(index_dir, "m")
    with pytest.raises(InputError, match="another vlmkit process is writing"):
        opened.add([ItemMeta("second/0.jpg", "h", 1, 0.0)], unit(1, 0))
    with pytest.raises(InputError, match="another vlmkit process is writing"):
        opened.set_tags(["first/0.jpg"], [{"cat": 1.0}])
    assert len(opened.search(unit(1, 1), k=10)[0]) == 5  # reading needs no lock
    opened.close()

    # A second creator arriving while the first has not yet written its manifest used to unlink the
    # database the first one had open; the first one's later commits then went nowhere.
    (index_dir / "manifest.json").unlink()
    with pytest.raises(InputError, match=r"index: another vlmkit process is writing this search index") as error:
        SearchStore.create(index_dir, "m", 16)
    assert str(index_dir) in str(error.value) and "\n" not in str(error.value)

    _finish(child)  # it commits one more row and writes its manifest again on close
    with SearchStore.open(index_dir, "m") as store:
        assert sorted(store.known_files()) == sorted([f"first/{i}.jpg" for i in range(5)] + ["first/last.jpg"])
        store.add([ItemMeta("second/0.jpg", "h", 1, 0.0)], unit(1, 0))  # free again: the writer is done
    with SearchStore.open(index_dir) as store:
        assert len(store) == 7


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from testkit import tiny_model
    from vlmkit.checkpoints import save_pretrained

    return save_pretrained(tiny_model(), tmp_path_factory.mktemp("tiny_model"))


def test_vlmkit_index_into_a_busy_index_is_one_line(hold, model_dir, tmp_path, capsys) -> None:
    from PIL import Image

    from vlmkit.cli import main

    index_dir = tmp_path / "index"
    child = hold(index_dir, model_dir, 24)
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (16, 16), "red").save(folder / "red.png")
    assert main(["index", str(folder), "--index", str(index_dir), "--workers", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{index_dir}: another vlmkit process is writing this search index" in err
    _finish(child)
    with SearchStore.open(index_dir) as store:
        assert len(store) == 6


def test_one_process_holds_one_writer_and_a_crashed_create_is_redone(tmp_path, unit) -> None:
    first = SearchStore.create(tmp_path / "a", "m", 16)
    with pytest.raises(InputError, match="another vlmkit process is writing"):
        SearchStore.open(tmp_path / "a").lock_for_writing()
    first.close()
    SearchStore.open(tmp_path / "a").lock_for_writing()  # released on close (and when dropped)

    crashed = tmp_path / "b"  # a create killed before its manifest: no lock survives a dead process
    crashed.mkdir()
    (crashed / "items.sqlite").write_bytes(b"half a database")
    (crashed / "items.sqlite-wal").write_bytes(b"junk")
    with SearchStore.create(crashed, "m", 16) as store:
        store.add([ItemMeta("x.jpg", "h", 1, 0.0)], unit(1, 0))
    assert len(SearchStore.open(crashed)) == 1


def test_the_next_writer_removes_temp_files_a_killed_writer_left(tmp_path, unit) -> None:
    SearchStore.create(tmp_path, "m", 16).close()
    leftovers = [tmp_path / ".manifest.json.k1ll3d_1.tmp", tmp_path / ".vectors.faiss.k1ll3d_2.tmp"]
    for path in leftovers:
        path.write_bytes(b"half")
    with SearchStore.open(tmp_path) as reader:
        assert len(reader) == 0 and all(path.exists() for path in leftovers)  # a plain read touches nothing
        reader.add([ItemMeta("x.jpg", "h", 1, 0.0)], unit(1, 0))
    assert not any(path.exists() for path in leftovers)
