"""Page texts in the store: FTS5 and BM25, fusion with the embeddings, texts that live and die with their items
(rollback, removal, merge), and an index an older vlmkit made, upgraded in place.

Vectors and texts are chosen by hand (no model), so each ranking is known before the query runs.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from vlmkit.errors import InputError
from vlmkit.search import schema
from vlmkit.search.fusion import RRF_K, reciprocal_rank_fusion, text_hits
from vlmkit.search.store import DATABASE, Filters, ItemMeta, SearchStore
from vlmkit.search.texts import TextLine, best_line, match_expressions, terms

DIM = 16


def axis(i: int) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[i] = 1.0
    return vector


def page(path: str, number: int | None, *lines: str, folder: str = "docs") -> ItemMeta:
    boxes = [TextLine(text, (10.0, 40.0 * n, 300.0, 40.0 * n + 30)) for n, text in enumerate(lines)]
    return ItemMeta(f"{folder}/{path}", f"hash-{path}", 100, 0.0, 400, 600, page=number, lines=tuple(boxes))


def texts_of(directory) -> dict[int, str]:
    """The texts table as it is on disk: item id -> text."""
    with sqlite3.connect(directory / DATABASE) as db:
        return dict(db.execute("SELECT rowid, text FROM texts"))


def ids_of(directory) -> set[int]:
    with sqlite3.connect(directory / DATABASE) as db:
        return {row[0] for row in db.execute("SELECT id FROM items")}


@pytest.fixture
def store(tmp_path):
    """Three pages and a photo: each page's words, and vectors on separate axes."""
    store = SearchStore.create(tmp_path, "m", DIM)
    items = [
        page("a.pdf", 1, "Quarterly report", "Revenue grew by twelve percent"),
        page("a.pdf", 2, "Costs fell", "revenue revenue revenue and more revenue"),
        page("b.pdf", 1, "Invoice 4471 for Anna Smith", "Total due 128.50"),
        ItemMeta("photos/cat.jpg", "hash-cat", 100, 0.0, 64, 48),
    ]
    store.add(items, np.stack([axis(0), axis(1), axis(2), axis(3)]))
    store.commit()
    yield store
    store.close()


def test_terms_and_the_fts5_query_cannot_carry_syntax():
    assert terms('Ünïcode AND near(x*) col:y "quoted" don\'t 12.50') == [
        "unicode",
        "and",
        "near",
        "x",
        "col",
        "y",
        "quoted",
        "don",
        "t",
        "12",
        "50",
    ]
    assert match_expressions("Revenue grew, revenue") == ['"revenue grew revenue"', '"revenue" AND "grew"']
    assert match_expressions("total 128.50") == ['"total 128 50"', '"total" AND "128 50"']  # 128.50 stays one thing
    assert match_expressions("INV-4471") == ['"inv 4471"']
    assert match_expressions('"" -- ()') == []


def test_bm25_ranks_by_fts5_and_user_syntax_is_plain_words(store):
    ranked = store.metadata.text_ranking("revenue", 10, Filters())
    assert [i for i, _ in ranked] == [2, 1]  # four times in a page beats once; the photo has no text
    # BM25 as FTS5 computes it (k1 = 1.2, b = 0.75), for a word on one page of the three with a text
    (best,) = store.metadata.text_ranking("twelve", 10, Filters())
    lengths = (7, 8, 9)  # words per page ("128.50" is two)
    idf = math.log((3 - 1 + 0.5) / (1 + 0.5))
    expected = idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * lengths[0] / (sum(lengths) / 3)))
    assert best == (1, pytest.approx(expected, rel=1e-9))
    assert [i for i, _ in store.metadata.text_ranking("ANNA smith", 10, Filters())] == [3]
    for query in ('AND "', "NEAR(revenue", "col:*", "revenue OR", "^revenue -grew", "{a b}: c"):
        text_hits(store, query, axis(0), 3, mode="text")  # never an FTS5 syntax error
    assert text_hits(store, "nothing like it", axis(0), 3, mode="text") == []
    folder = store.metadata.text_ranking("revenue", 10, Filters(folder="elsewhere"))
    assert folder == []  # filters apply to the text ranking too


def test_the_phrase_is_ranked_where_a_text_holds_it_else_all_the_words(store):
    def ranked(query: str) -> list[int]:
        return [i for i, _ in store.metadata.text_ranking(query, 10, Filters())]

    assert ranked("revenue grew") == [1]  # page 2 has "revenue" four times, but not the phrase
    assert ranked("grew revenue") == [1]  # no page prints it so: every page holding both words
    assert ranked("revenue costs") == [2]
    assert ranked("due 128.50") == [3] and ranked("128 50 total") == [3]
    assert ranked("revenue invoice") == []  # no page holds both: the embeddings alone answer


def test_hybrid_fuses_the_two_rankings_by_reciprocal_rank(store):
    assert reciprocal_rank_fusion([[7, 8], [9, 8]]) == [
        (8, 2 / (RRF_K + 2)),
        (7, 1 / (RRF_K + 1)),  # ties keep the first ranking's order
        (9, 1 / (RRF_K + 1)),
    ]
    # embeddings rank a.pdf p1 (id 1), then the photo (4), then p2 (2) and b.pdf (3); BM25 ranks 2, then 1
    query = axis(0) * 1.0 + axis(3) * 0.9 + axis(1) * 0.3 + axis(2) * 0.1
    by_image = [hit.id for hit in store.search(query, 4)[0]]
    assert by_image == [1, 4, 2, 3]
    hits = text_hits(store, "revenue", query, 4)
    expected = reciprocal_rank_fusion([[2, 1], by_image])
    assert [(hit.id, hit.score) for hit in hits] == [(i, pytest.approx(s)) for i, s in expected]
    assert [hit.id for hit in hits] == [1, 2, 4, 3]  # both rankings agree on 1 and 2; the photo only by its look
    first = hits[0]
    assert (first.path, first.page, first.line) == ("docs/a.pdf", 1, "Revenue grew by twelve percent")
    assert first.box == (10.0, 40.0, 300.0, 70.0)
    assert hits[2].page is None and hits[2].line is None  # the photo has no text to quote
    only_text = text_hits(store, "revenue", None, 4, mode="text")
    assert [hit.id for hit in only_text] == [2, 1] and only_text[0].line == "revenue revenue revenue and more revenue"
    only_image = text_hits(store, "revenue", query, 4, mode="image")
    assert [hit.id for hit in only_image] == by_image and only_image[0].line == "Revenue grew by twelve percent"
    with pytest.raises(InputError, match="search mode must be one of hybrid, text, image"):
        text_hits(store, "revenue", query, 4, mode="words")


def test_best_line_prefers_the_phrase_then_the_most_words():
    lines = [TextLine("the total"), TextLine("total due now"), TextLine("due: the total due")]
    assert best_line(lines, terms("total due")) == lines[1]
    assert best_line(lines, terms("the total due")) == lines[2]
    assert best_line(lines, terms("absent")) is None


def test_an_index_without_texts_answers_by_the_embeddings_alone(tmp_path, unit, make_items):
    with SearchStore.create(tmp_path, "m", DIM) as store:
        store.add(make_items(0, 20), unit(20, 0))
        store.commit()
        query = unit(1, 1)[0]
        assert text_hits(store, "img3", query, 5) == store.search(query, 5)[0]
        with pytest.raises(InputError, match="holds no texts to search"):
            text_hits(store, "img3", None, 5, mode="text")


def test_texts_go_with_their_items_rollback_remove_and_failed_insert(store):
    directory = store.directory
    store.add([page("c.pdf", 1, "draft text")], axis(4)[None])
    store.remove(["docs/a.pdf"])
    store.rollback()
    assert sorted(texts_of(directory)) == [1, 2, 3]
    with pytest.raises(InputError, match=r"docs/b\.pdf page 1 is already in the index"):
        store.add([page("d.pdf", 1, "new words"), page("b.pdf", 1, "again")], np.stack([axis(5), axis(6)]))
    store.commit()
    assert sorted(texts_of(directory)) == [1, 2, 3]  # the rejected call left no text behind
    assert store.remove(["docs/a.pdf"]) == 2
    store.commit()
    assert texts_of(directory) == {3: "Invoice 4471 for Anna Smith\nTotal due 128.50"}
    assert text_hits(store, "revenue", None, 5, mode="text") == []


def test_merge_copies_texts_to_the_new_ids(tmp_path):
    with SearchStore.create(tmp_path / "main", "m", DIM) as main:
        main.add([page("a.pdf", 1, "old words"), page("keep.pdf", 1, "kept words")], np.stack([axis(0), axis(1)]))
    edited = [replace(page("a.pdf", n, words), sha256="edited") for n, words in ((1, "new words"), (2, "two"))]
    with SearchStore.create(tmp_path / "shard", "m", DIM) as shard:
        shard.add(edited, np.stack([axis(2), axis(3)]))
    with SearchStore.open(tmp_path / "main") as main:
        main.merge([tmp_path / "shard"])
        hits = text_hits(main, "words", None, 5, mode="text")
        assert sorted((hit.path, hit.page, hit.line) for hit in hits) == [
            ("docs/a.pdf", 1, "new words"),
            ("docs/keep.pdf", 1, "kept words"),
        ]
        assert [hit.page for hit in text_hits(main, "two", None, 5, mode="text")] == [2]
    assert sorted(texts_of(tmp_path / "main").values()) == ["kept words", "new words", "two"]
    assert set(texts_of(tmp_path / "main")) <= ids_of(tmp_path / "main")


# What items.sqlite looked like before document search (schema 1), as vlmkit wrote it.
SCHEMA_1 = """
CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    width INTEGER,
    height INTEGER,
    frame_time REAL,
    tags TEXT NOT NULL DEFAULT '{}',
    added_at REAL NOT NULL,
    vector BLOB NOT NULL
);
CREATE UNIQUE INDEX items_path_frame ON items (path, COALESCE(frame_time, -1.0));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('generation', '3');
"""


def write_schema_1_index(directory) -> None:
    """An index as the previous vlmkit left it: two photos and a video frame, tagged, its faiss file stale."""
    SearchStore.create(directory, "m", DIM).close()
    for suffix in ("", "-wal", "-shm"):
        (directory / (DATABASE + suffix)).unlink(missing_ok=True)
    with sqlite3.connect(directory / DATABASE) as db:
        db.executescript(SCHEMA_1)
        rows = [("photos/a.jpg", None, axis(0)), ("photos/b.jpg", None, axis(1)), ("clips/c.mp4", 2.0, axis(2))]
        for path, frame_time, vector in rows:
            db.execute(
                "INSERT INTO items (path, sha256, size, mtime, frame_time, tags, added_at, vector)"
                " VALUES (?, 'h', 1, 0.0, ?, '{\"cat\": 0.9}', 0.0, ?)",
                (path, frame_time, vector.tobytes()),
            )


def layout(path) -> tuple:
    """What a database holds, by structure: tables, the columns of items, the unique key's expression."""
    with sqlite3.connect(path) as db:
        tables = sorted(name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        columns = [row[1:] for row in db.execute("PRAGMA table_info(items)")]
        key = db.execute("SELECT sql FROM sqlite_master WHERE name = 'items_item'").fetchone()
        return tables, columns, key, schema.version(db)


def test_an_old_index_is_upgraded_in_place_and_takes_documents(tmp_path):
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    write_schema_1_index(old)
    SearchStore.create(fresh, "m", DIM).close()
    with SearchStore.open(old, "m") as store:
        assert len(store) == 3
        best = store.search(axis(1), 2)[0][0]
        assert (best.path, best.page, best.tags) == ("photos/b.jpg", None, {"cat": 0.9})
        assert text_hits(store, "b", axis(1), 1)[0].path == "photos/b.jpg"  # no texts yet: embeddings alone
        store.add([page("r.pdf", 1, "annual report"), page("r.pdf", 2, "annual budget")], np.stack([axis(3)] * 2))
    assert layout(old / DATABASE) == layout(fresh / DATABASE)  # the same database as a new one
    assert layout(old / DATABASE)[3] == schema.VERSION
    with SearchStore.open(old, "m") as store:  # opening again changes nothing
        assert len(store) == 5
        hits = text_hits(store, "annual", None, 2, mode="text")
        assert sorted((hit.path, hit.page, hit.line) for hit in hits) == [
            ("docs/r.pdf", 1, "annual report"),
            ("docs/r.pdf", 2, "annual budget"),
        ]
        assert store.remove(["photos/a.jpg"]) == 1
    assert layout(old / DATABASE) == layout(fresh / DATABASE)


def test_an_old_shard_is_upgraded_before_it_is_merged(tmp_path):
    write_schema_1_index(tmp_path / "shard")
    with SearchStore.create(tmp_path / "main", "m", DIM) as main:
        main.add([page("r.pdf", 1, "annual report")], axis(3)[None])
        main.commit()
        assert main.merge([tmp_path / "shard"]) == 3
        assert len(main) == 4 and sorted(texts_of(tmp_path / "main").values()) == ["annual report"]
