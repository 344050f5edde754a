"""Listing an index by tag: one hit per file (a video once, not once per frame), best first by tag score,
the lowest score when several tags are asked for, other filters applied; and the stored tags per path."""

from __future__ import annotations

import pytest

from vlmkit.errors import InputError
from vlmkit.search.metadata import Filters
from vlmkit.search.query import search_tags
from vlmkit.search.store import ItemMeta, SearchStore


@pytest.fixture
def index(tmp_path, unit):
    items = [
        ItemMeta("photos/a.jpg", "a", 1, 0.0, 64, 48),
        ItemMeta("photos/b.jpg", "b", 1, 0.0, 640, 480),
        ItemMeta("other/c.jpg", "c", 1, 0.0, 64, 48),
        ItemMeta("photos/none.jpg", "n", 1, 0.0, 64, 48),
        *(ItemMeta("clips/v.mp4", "v", 1, 0.0, 64, 48, frame_time=t) for t in (0.0, 2.0, 4.0)),
    ]
    with SearchStore.create(tmp_path, "m", 16) as store:
        store.add(items, unit(len(items), 0))
        store.set_tags(
            ["photos/a.jpg", "photos/b.jpg", "other/c.jpg", "clips/v.mp4"],
            [{"cat": 0.6, "sofa": 0.9}, {"cat": 0.95}, {"cat": 0.8, "sofa": 0.7}, {"cat": 0.7}],
        )
        store.commit()
    return tmp_path


def listed(hits) -> list[tuple[str, float]]:
    return [(hit.path, round(hit.score, 4)) for hit in hits]


def test_one_hit_per_file_best_first(index):
    hits = search_tags(index, ["cat"])
    assert listed(hits) == [("photos/b.jpg", 0.95), ("other/c.jpg", 0.8), ("clips/v.mp4", 0.7), ("photos/a.jpg", 0.6)]
    assert hits[2].frame_time == 0.0  # a video is listed once, at its first frame
    assert listed(search_tags(index, ["cat"], k=2)) == [("photos/b.jpg", 0.95), ("other/c.jpg", 0.8)]
    assert listed(search_tags(index, ["cat"], min_score=0.75)) == [("photos/b.jpg", 0.95), ("other/c.jpg", 0.8)]


def test_several_tags_all_present_scored_by_the_weakest(index):
    assert listed(search_tags(index, ["cat", "sofa"])) == [("other/c.jpg", 0.7), ("photos/a.jpg", 0.6)]
    assert search_tags(index, ["dog"]) == []


def test_other_filters_apply(index):
    assert listed(search_tags(index, ["cat"], filters=Filters(folder="photos"))) == [
        ("photos/b.jpg", 0.95),
        ("photos/a.jpg", 0.6),
    ]
    assert listed(search_tags(index, ["cat"], filters=Filters(min_width=100))) == [("photos/b.jpg", 0.95)]
    # tags in the filters and in the call add up
    assert listed(search_tags(index, ["cat"], filters=Filters(tags=("sofa",)))) == listed(
        search_tags(index, ["sofa", "cat"])
    )


def test_bad_requests_are_one_line_errors(index, tmp_path):
    with pytest.raises(InputError, match="no tag given"):
        search_tags(index, [" "])
    with pytest.raises(InputError, match="k must be"):
        search_tags(index, ["cat"], k=0)
    with pytest.raises(InputError, match="was built with model"):
        search_tags(index, ["cat"], model="another")
    with pytest.raises(InputError, match="no search index"):
        search_tags(tmp_path / "missing", ["cat"])


def test_stored_tags_by_path(index):
    from vlmkit.search.metadata import Metadata
    from vlmkit.search.store import DATABASE

    meta = Metadata.open(index / DATABASE)
    try:
        stored = meta.tags_by_path()
    finally:
        meta.close()
    assert stored["photos/none.jpg"] == {} and stored["clips/v.mp4"] == {"cat": 0.7}
    assert sorted(stored) == sorted(["photos/a.jpg", "photos/b.jpg", "other/c.jpg", "photos/none.jpg", "clips/v.mp4"])
