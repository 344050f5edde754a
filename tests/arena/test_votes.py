"""Votes survive their writer being killed: every vote it acknowledged is in the database."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from vlmkit.arena.battles import Battle, read_battles
from vlmkit.arena.votes import DuplicateVote, VoteStore
from vlmkit.errors import InputError

WRITER = textwrap.dedent(
    """
    import sys
    from vlmkit.arena.votes import VoteStore

    store = VoteStore.open(sys.argv[1])
    i = 0
    while True:
        store.record(f"battle-{i}", "a", "b", ("model_a", "model_b", "tie", "tie (bothbad)")[i % 4])
        print(i, flush=True)  # acknowledged: record() has returned
        i += 1
    """
)


def test_killed_writer_loses_no_acknowledged_vote(tmp_path):
    path = tmp_path / "votes.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        while len(acknowledged) < 200:
            line = writer.stdout.readline()
            assert line, f"the writer died early (exit {writer.poll()})"
            acknowledged.append(int(line))
    finally:
        writer.send_signal(signal.SIGKILL)  # mid-stream: it is writing its next votes
        writer.wait()
    acknowledged += [int(line) for line in writer.stdout.read().split()]  # acknowledged before it died
    writer.stdout.close()
    with VoteStore.open_existing(path) as store:
        stored = {battle for (battle,) in store.connection.execute("SELECT battle FROM votes")}
        assert {f"battle-{i}" for i in acknowledged} <= stored
        assert len(stored) - len(acknowledged) <= 1  # at most the one committed but not yet printed
        assert store.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_votes_read_back_as_battles_in_order(tmp_path):
    path = tmp_path / "votes.db"
    with VoteStore.open(path) as store:
        assert store.record("b1", "x", "y", "model_b") == 1
        store.record("b2", "y", "x", "tie")
        with pytest.raises(DuplicateVote, match="battle b1 already has a vote"):
            store.record("b1", "x", "y", "model_a")
        with pytest.raises(InputError, match="winner must be one of"):
            store.record("b3", "x", "y", "x")
        assert store.count() == 2
    assert read_battles(path) == [Battle("x", "y", "model_b"), Battle("y", "x", "tie")]


def test_other_databases_are_refused_in_one_line(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE things (x)")
    with pytest.raises(InputError, match="without a 'votes' table"):
        read_battles(path)
    VoteStore.open(tmp_path / "empty.db").close()
    with pytest.raises(InputError, match="holds no votes yet"):
        read_battles(tmp_path / "empty.db")
