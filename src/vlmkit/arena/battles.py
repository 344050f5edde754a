"""Battles: two models, one vote. Read from a JSONL (or JSON array) of FastChat-style battles or from the
arena's own vote database.

A battle is FastChat's record reduced to what rating needs: ``model_a``, ``model_b`` and ``winner``, one
of ``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)`` (the four buttons of FastChat's arena, and of
vlmkit's). Other keys (``tstamp``, ``conversation_a``, ``judge``...) are ignored, so FastChat's published
``clean_battle_*.json`` files read as they are. A bad row is one line naming the file, the line and the
field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmkit.errors import InputError

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Battle:
    model_a: str
    model_b: str
    winner: str  # one of WINNERS


def battle_from(row: Any, where: str) -> Battle:
    """One battle from a decoded row; ``where`` (``file line N``) starts the error message."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected an object with model_a, model_b and winner, got {type(row).__name__}")
    for field in ("model_a", "model_b", "winner"):
        value = row.get(field)
        if not isinstance(value, str) or not value:
            raise InputError(f"{where}: '{field}' must be a non-empty string, got {value!r}")
    if row["winner"] not in WINNERS:
        expected = ", ".join(WINNERS)
        raise InputError(f"{where}: 'winner' must be one of {expected}; got {row['winner']!r}")
    if row["model_a"] == row["model_b"]:
        raise InputError(f"{where}: 'model_b' must differ from 'model_a' (both {row['model_a']!r})")
    return Battle(row["model_a"], row["model_b"], row["winner"])


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: not valid JSON ({error.msg})") from None


def read_battles(path: str | Path) -> list[Battle]:
    """The battles of a vote database (``arena.votes``) or of a JSONL / JSON-array file, in their order."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file (expected the arena's votes database or a JSONL of battles)")
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
            from vlmkit.arena.votes import VoteStore  # below: votes.py builds on this module

            with VoteStore.open_existing(path) as store:
                battles = store.battles()
            if not battles:
                raise InputError(f"{path}: holds no votes yet")
            return battles
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: neither a SQLite database nor UTF-8 text") from None
    if text.lstrip().startswith("["):
        rows = _parse(text, str(path))
        if not isinstance(rows, list):
            raise InputError(f"{path}: expected a JSON array of battles")
        return [battle_from(row, f"{path} item {index}") for index, row in enumerate(rows)]
    battles = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            where = f"{path} line {number}"
            battles.append(battle_from(_parse(line, where), where))
    if not battles:
        raise InputError(f"{path}: holds no battles")
    return battles
