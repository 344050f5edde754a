"""Clean DocWorld pages checked against their own pixels and text: determinism, boxes tight to ink, answers
and field values printed on the page, tables that add up, reading order, and the record round trip."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vlmkit.data.docworld import KINDS, DocWorldConfig, make_page
from vlmkit.data.docworld.canvas import Canvas, Overflow
from vlmkit.data.docworld.fonts import font
from vlmkit.data.records import read_records, write_records
from vlmkit.documents.types import Document, Page

CLEAN = DocWorldConfig(clean=True)
DARK = 128  # text ink is at most 60 on white; rules (185) and shading (232) are lighter than this


def _page(record: dict[str, Any]) -> Page:
    return Document.from_dict(record["document"]).pages[0]


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def _on_one_line(text: str, page: Page) -> bool:
    """``text`` is a run of whole words of one line (not just a substring: "12.5" must not match "112.50")."""
    words = text.split(" ")
    for line in page.lines:
        tokens = [word.text for word in line.words]
        if any(tokens[i : i + len(words)] == words for i in range(len(tokens) - len(words) + 1)):
            return True
    return False


@pytest.fixture(scope="module")
def pages() -> list[tuple[np.ndarray, dict[str, Any]]]:
    out = []
    for index in range(40):
        data, record = make_page(CLEAN, 0, "train", index, f"images/{index:06d}.png")
        out.append((_pixels(data), record))
    return out


def test_every_kind_is_drawn_and_pages_are_deterministic(pages: list) -> None:
    assert {record["meta"]["kind"] for _, record in pages} == set(KINDS)
    first = make_page(CLEAN, 0, "train", 3, "a.png")
    assert make_page(CLEAN, 0, "train", 3, "a.png") == first
    assert first[0].startswith(b"\x89PNG")
    for other in (make_page(CLEAN, 1, "train", 3, "a.png"), make_page(CLEAN, 0, "val", 3, "a.png")):
        assert other[0] != first[0] and other[1]["document"] != first[1]["document"]


def test_word_boxes_are_inside_the_page_tight_to_ink_and_cover_all_of_it(pages: list) -> None:
    for pixels, record in pages:
        page = _page(record)
        assert pixels.shape == (page.height, page.width)
        covered = np.zeros(pixels.shape, dtype=bool)
        for word in page.words:
            x0, y0, x1, y1 = word.box
            assert 0 <= x0 < x1 <= page.width and 0 <= y0 < y1 <= page.height, word
            crop = pixels[int(y0) : int(y1), int(x0) : int(x1)]
            ys, xs = np.nonzero(crop < 200)
            assert crop.min() < DARK, f"no ink in the box of {word.text!r}"
            slack = (xs.min(), ys.min(), crop.shape[1] - 1 - xs.max(), crop.shape[0] - 1 - ys.max())
            assert max(slack) <= 2, f"{word.text!r}: box {word.box} is loose by {slack} px"
            covered[int(y0) : int(y1), int(x0) : int(x1)] = True
        assert not (pixels < DARK)[~covered].any(), "dark pixels outside every word box"


def test_questions_are_answered_by_one_line_of_the_page(pages: list) -> None:
    types = set()
    for _, record in pages:
        page = _page(record)
        assert 3 <= len(record["qa"]) <= 6
        assert len({qa["question"] for qa in record["qa"]}) == len(record["qa"])
        for qa in record["qa"]:
            assert qa["answer"] in page.text and _on_one_line(qa["answer"], page), (record["meta"]["kind"], qa)
            types.add(qa["type"])
    assert {"total", "invoice number", "recipient", "form field", "table lookup", "item price"} <= types


def test_field_values_are_printed_on_the_page(pages: list) -> None:
    for _, record in pages:
        page = _page(record)
        assert record["fields"]
        for key, value in record["fields"].items():
            assert _on_one_line(value, page), (record["meta"]["kind"], key, value)


def _number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def test_tables_match_the_lines_and_add_up(pages: list) -> None:
    checked = set()
    for _, record in pages:
        page = _page(record)
        kind = record["meta"]["kind"]
        assert bool(record["tables"]) == (kind in ("receipt", "invoice", "table"))
        for table in record["tables"]:
            grid = {(c["row"], c["col"]): c for c in table["cells"]}
            assert set(grid) == {(r, c) for r in range(table["rows"]) for c in range(table["cols"])}
            lines = {(line.text, tuple(round(v, 1) for v in line.box)) for line in page.lines}
            assert all((c["text"], tuple(c["box"])) in lines for c in table["cells"])
            body = range(table["header_rows"], table["rows"])
            if kind == "invoice":  # Description | Qty | Unit price | Amount
                for r in body:
                    expected = int(grid[r, 1]["text"]) * _number(grid[r, 2]["text"])
                    assert _number(grid[r, 3]["text"]) == pytest.approx(expected)
                checked.add(kind)
            if kind == "table" and grid[0, table["cols"] - 1]["text"] == "Total":
                for r in body:
                    parts = sum(_number(grid[r, c]["text"]) for c in range(1, table["cols"] - 1))
                    assert _number(grid[r, table["cols"] - 1]["text"]) == parts
                checked.add("total column")
            if kind == "receipt":
                amounts = sum(round(_number(grid[r, 1]["text"]) * 100) for r in body)
                assert amounts == round(_number(record["fields"]["subtotal"]) * 100)
                checked.add(kind)
    assert checked == {"invoice", "total column", "receipt"}


def test_reading_order_is_rows_top_to_bottom_then_left_to_right(pages: list) -> None:
    """Table cells in reading order come row by row, each row left to right."""
    for _, record in pages:
        order = {(line.text, tuple(round(v, 1) for v in line.box)): i for i, line in enumerate(_page(record).lines)}
        for table in record["tables"]:
            cells = sorted(table["cells"], key=lambda c: (c["row"], c["col"]))
            positions = [order[c["text"], tuple(c["box"])] for c in cells]
            assert positions == sorted(positions), record["meta"]["kind"]


def test_canvas_sorts_lines_however_they_were_drawn() -> None:
    canvas = Canvas(300, 120, ink=0)
    small = font("sans", "regular", 10)
    canvas.write(200, 40, "right top", small)
    canvas.write(10, 90, "left bottom", small)
    canvas.write(10, 40, "left top", small)
    page, index = canvas.page((300, 120), lambda box: box)
    assert [line.text for line in page.lines] == ["left top", "right top", "left bottom"]
    assert [page.lines[i].text for i in index] == ["right top", "left bottom", "left top"]
    with pytest.raises(ValueError, match="single spaces"):
        canvas.write(10, 60, "two  spaces", small)
    canvas.check_overlaps()
    canvas.write(20, 90, "over", small)  # lands on "left bottom"
    with pytest.raises(Overflow, match="overlap"):
        canvas.check_overlaps()
    with pytest.raises(Overflow, match="leaves"):
        canvas.write(250, 40, "past the right edge", small)


def test_records_round_trip_through_records_jsonl(pages: list, tmp_path) -> None:
    records = [record for _, record in pages[:8]]
    write_records(tmp_path, records)
    back = [r.to_dict() for r in read_records(tmp_path).records]
    assert back == records
    for record in back:
        assert Document.from_dict(record["document"]).to_dict() == record["document"]
        assert record["document"]["path"] == record["image"]
        assert record["document"]["pages"][0]["source"] == "truth"
        assert re.fullmatch(r"docworld-\d+", record["meta"]["generator"])
