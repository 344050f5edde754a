import re
import shutil

import numpy as np
import pytest

from doc_scans import clean_page
from vlmkit.documents.engines import get_engine
from vlmkit.documents.engines.ppocr import _ink_span, _split_words
from vlmkit.documents.engines.tesseract import parse_tsv
from vlmkit.errors import ConfigError


def _words(ink: str, height: float = 10.0) -> list[str]:
    """The words of a line drawn as ``ink``: each run of '#' a letter (named a, b, c, ...), '.' blank, and
    '_' a space the recogniser emitted (a blank column that also yields a " " character)."""
    chars = []
    for run in re.finditer(r"#+|_", ink):
        text = " " if run.group() == "_" else chr(ord("a") + sum(c[0] != " " for c in chars))
        chars.append((text, (run.start() + run.end() - 1) / 2, 1.0))
    inked = np.array([mark == "#" for mark in ink])
    return ["".join(c for c, _, _ in word) for word, _, _ in _split_words(chars, inked, height)]


def test_missing_spaces_come_back_at_the_jump_in_the_line_s_gaps():
    # letters 1 column apart, words 4 apart (a jump of 4 to a gap of 0.4 heights)
    assert _words("##.##.##....##.##") == ["abc", "de"]
    # a loosely set font: letters 2 apart, so a 3-column gap is a letter gap, the 6-column one a space
    assert _words("##..##...##......##..##") == ["abc", "de"]
    # tight letters but no gap of 0.17 heights: no space (a line whose spaces the model emitted)
    assert _words("##.##..##.##", height=20) == ["abcd"]
    assert _words("##.##_##") == ["ab", "c"]


def test_sentence_breaks_split_and_code_stays_whole():
    inked = np.ones(40, bool)

    def words(text: str) -> list[str]:
        chars = [(c, 4 * i + 2.0, 1.0) for i, c in enumerate(text)]
        return ["".join(c for c, _, _ in word) for word, _, _ in _split_words(chars, inked, 10.0)]

    assert words("d.Th") == ["d.", "Th"]
    assert words("a,b") == ["a,", "b"]
    assert words("np.z1,0") == ["np.z1,0"]


def test_word_spans_are_tight_to_their_ink():
    inked = np.array([c == "#" for c in "..###.###........###..."])
    chars = [("a", 3.0, 1.0), ("b", 7.0, 1.0), ("c", 18.0, 1.0)]
    (_, left, right), (_, second_left, second_right) = _split_words(chars, inked, 10.0)
    assert (left, right, second_left, second_right) == (0.0, 12.5, 12.5, 23.0)  # the middle of the gap
    assert _ink_span(inked, left, right) == (2.0, 9.0)
    assert _ink_span(inked, second_left, second_right) == (17.0, 20.0)


def test_tesseract_tsv_becomes_lines_of_words():
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "4\t1\t1\t1\t1\t0\t10\t10\t200\t20\t-1\t",
        "5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t96.5\tHello",
        "5\t1\t1\t1\t1\t2\t70\t10\t60\t20\t90\tworld",
        "5\t1\t1\t1\t2\t1\t10\t40\t40\t20\t80\t ",
        "5\t1\t1\t1\t3\t1\t10\t70\t40\t20\t-1\tBye",
    ]
    lines = parse_tsv("\n".join([header, *rows]))
    assert [line.text for line in lines] == ["Hello world", "Bye"]
    assert lines[0].words[1].box == (70, 10, 130, 30)
    assert lines[0].words[0].confidence == pytest.approx(0.965)
    assert lines[1].confidence == 0.0


def test_an_unknown_engine_is_one_line():
    with pytest.raises(ConfigError, match="unknown OCR engine 'paddle'"):
        get_engine("paddle")


@pytest.mark.parametrize("name", ["ppocr", "tesseract"])
def test_engines_read_a_clean_line_with_word_boxes_in_order(name):
    if name == "tesseract" and shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed (apt-get install tesseract-ocr)")
    page = clean_page("Invoice number 4471 paid in full", size=28).convert("RGB")
    (line,) = get_engine(name).read(page)
    assert line.text == "Invoice number 4471 paid in full"
    lefts = [word.box[0] for word in line.words]
    assert lefts == sorted(lefts) and lefts[0] < 60 < lefts[1]
    assert all(0 <= word.box[0] < word.box[2] <= page.width for word in line.words)
