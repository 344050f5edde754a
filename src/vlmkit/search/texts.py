"""The texts of indexed items (document pages, OCR'd images): SQLite FTS5 search with BM25, and the line that matched.

An item's text is its lines joined by newlines, in the ``texts`` table (``schema``) under the item's id, with the
lines and their boxes as JSON beside it, so a hit can name the line it matched and a report can draw its box.
Rows are written and deleted together with their items, in the same transaction (``Metadata``).

A user's query never reaches FTS5 as syntax: it is cut into words the way FTS5's tokenizer cuts text (``terms``)
and each word is quoted, so ``AND``, ``NEAR``, ``*``, ``col:``, brackets or a stray quote are plain words.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from typing import NamedTuple

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in the pixels of the page as indexed

MAX_TERMS = 64  # words (between spaces) of a query that count: enough for any phrase, and a bound on its FTS5 query
_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits: the tokens of FTS5's unicode61


class TextLine(NamedTuple):
    """One line of an item's text, with its box when the reader knows it."""

    text: str
    box: Box | None = None


def terms(text: str) -> list[str]:
    """The words of ``text`` as the index sees them: lower case, accents removed, split at all but letters and
    digits (what the unicode61 tokenizer with ``remove_diacritics 2`` does)."""
    folded = unicodedata.normalize("NFKD", text.lower())
    return _WORD.findall("".join(c for c in folded if not unicodedata.combining(c)))


def match_expressions(query: str) -> list[str]:
    """FTS5 queries for ``query``, strictest first: its words as one phrase, then all of them in any order.

    A run of characters between spaces stays a phrase of its own in the second (``31.59``, ``INV-97192``,
    ``13:21`` are two words each to the tokenizer, but one thing to the user). Every term is quoted, and holds
    only letters and digits, so nothing in it can be FTS5 syntax and no quote needs escaping.
    """
    runs = [words for part in query.split() if (words := terms(part))][:MAX_TERMS]
    phrase = _phrase([word for words in runs for word in words])
    every = " AND ".join(dict.fromkeys(_phrase(words) for words in runs))
    return [] if not runs else [phrase] if len(runs) == 1 else [phrase, every]


def _phrase(words: Sequence[str]) -> str:
    return f'"{" ".join(words)}"'


def insert(db: sqlite3.Connection, rows: Iterable[tuple[int, Sequence[TextLine]]]) -> None:
    """Store the lines of each ``(item id, lines)`` that has any."""
    db.executemany(
        "INSERT INTO texts (rowid, text, lines) VALUES (?, ?, ?)",
        [
            (int(i), "\n".join(line.text for line in lines), json.dumps([_stored(line) for line in lines]))
            for i, lines in rows
            if lines
        ],
    )


def _stored(line: TextLine) -> list:
    return [line.text, None if line.box is None else [round(v, 1) for v in line.box]]


def delete(db: sqlite3.Connection, ids: Iterable[int]) -> None:
    db.executemany("DELETE FROM texts WHERE rowid = ?", [(int(i),) for i in ids])


def copy_attached(db: sqlite3.Connection, schema: str, first_id: int) -> None:
    """Copy the texts of the attached database ``schema`` to the rows copied from it (ids >= ``first_id``),
    matching each item by its key (path, frame time, page), since the copies have new ids."""
    db.execute(
        f"INSERT INTO main.texts (rowid, text, lines) SELECT i.id, t.text, t.lines FROM {schema}.texts t"
        f" JOIN {schema}.items s ON s.id = t.rowid JOIN main.items i ON i.path = s.path"
        " AND COALESCE(i.frame_time, -1.0) = COALESCE(s.frame_time, -1.0) AND COALESCE(i.page, 0) = COALESCE(s.page, 0)"
        " WHERE i.id >= ?",
        (first_id,),
    )


def any_text(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM texts LIMIT 1").fetchone() is not None


def ranking(db: sqlite3.Connection, query: str, k: int, where: str, params: list) -> list[tuple[int, float]]:
    """``(id, relevance)`` of the best ``k`` items whose row passes ``where`` (a clause over ``items``) and whose
    text holds ``query``'s words: as the exact phrase where any text does, else all of them (``match_expressions``);
    best first by BM25 (FTS5's ``bm25()``, negated: higher is better).

    Only the strictest level that matches is ranked (see ``fusion`` for why).
    """
    sql = (
        "SELECT texts.rowid, -bm25(texts) FROM texts JOIN items ON items.id = texts.rowid"
        f" WHERE texts MATCH ? AND {where} ORDER BY bm25(texts), texts.rowid LIMIT ?"
    )
    for expression in match_expressions(query):
        if found := [(int(i), float(s)) for i, s in db.execute(sql, [expression, *params, int(k)])]:
            return found
    return []


def lines(db: sqlite3.Connection, ids: Sequence[int]) -> dict[int, list[TextLine]]:
    """The stored lines of those ``ids`` that have a text."""
    marks = ",".join("?" * len(ids))
    rows = db.execute(f"SELECT rowid, lines FROM texts WHERE rowid IN ({marks})", [int(i) for i in ids])
    return {
        int(i): [TextLine(text, tuple(box) if box else None) for text, box in json.loads(stored)] for i, stored in rows
    }


def best_line(candidates: Iterable[TextLine], words: Sequence[str]) -> TextLine | None:
    """The line holding the whole phrase ``words``, else the one holding most of them (the first on a tie);
    None when no line holds any."""
    if not words:
        return None
    wanted, phrase = set(words), f" {' '.join(words)} "
    best, best_key = None, (False, 0)
    for line in candidates:
        found = terms(line.text)
        key = (phrase in f" {' '.join(found)} ", len(wanted.intersection(found)))
        if key > best_key:
            best, best_key = line, key
    return best
