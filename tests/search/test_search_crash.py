"""A SIGKILL at any moment leaves an openable store holding exactly the committed batches, texts included."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from vlmkit.search.store import SearchStore

BATCH = 40
WRITER = """
import sys
import numpy as np
from vlmkit.search.store import IndexOptions, ItemMeta, SearchStore
from vlmkit.search.texts import TextLine

directory, kind, save_every = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = SearchStore.create(directory, "m", 16, IndexOptions(kind=kind))
for b in range(100_000):
    vectors = np.random.default_rng(b).standard_normal((BATCH, 16))
    texts = [(TextLine(f"batch {b} item {i}"),) for i in range(BATCH)]
    store.add([ItemMeta(f"batch{b}/{i}.jpg", f"h{b}", i, 0.0, lines=texts[i]) for i in range(BATCH)], vectors)
    store.remove([f"batch{b - 3}/0.jpg"])  # updates remove too, so a kill can land mid-removal
    store.commit(save_index=b % save_every == 0)
    print(b, flush=True)
""".replace("BATCH", str(BATCH))


def batch_vector(b: int, i: int) -> np.ndarray:
    vector = np.random.default_rng(b).standard_normal((BATCH, 16))[i]
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize(
    ("kind", "save_every", "delay"),
    [("flat", 1, 0.0), ("flat", 1, 0.004), ("hnsw", 1, 0.002), ("flat", 3, 0.001)],
)
def test_sigkill_mid_write_leaves_committed_batches(tmp_path, kind, save_every, delay) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), kind, str(save_every)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert child.stdout is not None
    for line in child.stdout:
        if int(line) == 6:
            break
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL

    store = SearchStore.open(tmp_path, "m")
    batches = sorted({int(path.split("/")[0][5:]) for path in store.known_files()})
    last = batches[-1]
    assert last >= 6 and batches == list(range(len(batches)))
    expected_rows = BATCH * (last + 1) - max(0, last - 2)  # each batch b >= 3 removed one row of b - 3
    assert len(store) == expected_rows
    assert store._index.ntotal == expected_rows  # the faiss cache agrees with SQLite
    with sqlite3.connect(tmp_path / "items.sqlite") as db:  # and so do the texts: one per item, none orphaned
        texts = dict(db.execute("SELECT rowid, text FROM texts"))
        items = dict(db.execute("SELECT id, path FROM items"))
    assert texts.keys() == items.keys()
    assert all(texts[i] == "batch {} item {}".format(*path[5:-4].split("/")) for i, path in items.items())
    hit = store.search(batch_vector(last, 5), k=1)[0][0]
    assert (hit.path, round(hit.score, 4)) == (f"batch{last}/5.jpg", 1.0)
    store.close()
