import pytest

from vlmkit.documents.types import Document, Line, Page, Word, union
from vlmkit.errors import InputError


def _page() -> Page:
    words = (Word("Total", (10, 5, 50, 20), 0.9), Word("12.50", (60, 6, 100, 21), 0.5))
    return Page(200, 100, (Line(words), Line((Word("Thanks", (10, 40, 70, 55)),))), "ppocr")


def test_line_text_box_and_confidence_come_from_its_words():
    line = _page().lines[0]
    assert line.text == "Total 12.50"
    assert line.box == (10, 5, 100, 21)
    assert line.confidence == 0.5
    assert union([(0, 0, 1, 1), (5, -2, 6, 3)]) == (0, -2, 6, 3)


def test_document_round_trips_through_its_json():
    document = Document("scan.png", (_page(), _page()))
    again = Document.from_dict(document.to_dict())
    assert again == document
    assert again.text == "Total 12.50\nThanks\fTotal 12.50\nThanks"


def test_a_malformed_box_names_its_place():
    data = Document("x", (_page(),)).to_dict()
    data["pages"][0]["lines"][1]["words"][0]["box"] = [1, 2, 3]
    with pytest.raises(InputError, match=r"pages\[0\]\.lines\[1\]\.words\[0\]\.box"):
        Document.from_dict(data)
