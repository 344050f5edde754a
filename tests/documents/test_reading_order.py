from vlmkit.documents.layout import reading_order
from vlmkit.documents.types import Line, Word


def _line(text: str, x0: float, y0: float, x1: float, y1: float) -> Line:
    return Line((Word(text, (x0, y0, x1, y1)),))


def test_rows_top_to_bottom_and_left_to_right_within_a_row():
    value = _line("Anna", 200, 12, 260, 30)  # a form's value, a little lower than its label
    label = _line("Name:", 10, 10, 80, 28)
    title = _line("FORM", 10, 0, 60, 8)
    footer = _line("Signed", 10, 60, 90, 80)
    assert [line.text for line in reading_order([footer, value, label, title])] == ["FORM", "Name:", "Anna", "Signed"]


def test_lines_that_barely_touch_are_separate_rows():
    upper = _line("upper", 100, 0, 150, 20)
    lower = _line("lower", 0, 17, 50, 37)  # 3 px of overlap out of 20: the next row, though it is further left
    assert [line.text for line in reading_order([lower, upper])] == ["upper", "lower"]
