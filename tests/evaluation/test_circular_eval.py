"""CircularEval: rotations, letter extraction from free text, and scoring with known responders."""

from __future__ import annotations

import pytest

from vlmkit.errors import InputError
from vlmkit.evaluation import MultipleChoice, circular_variants, extract_choice, score_circular

CHOICES = ("red", "green", "blue", "dark red")


def _questions() -> list[MultipleChoice]:
    return [
        MultipleChoice("q0", "Colour of the square?", CHOICES, answer=0, category="colour"),
        MultipleChoice("q1", "How many?", ("1", "2", "3"), answer=2, category="count"),
        MultipleChoice("q2", "Colour of the circle?", CHOICES, answer=1, category="colour"),
    ]


def test_rotations_move_the_answer_through_every_letter() -> None:
    question = _questions()[0]
    variants = circular_variants(question)
    assert [v.choices for v in variants][:2] == [CHOICES, ("green", "blue", "dark red", "red")]
    assert [v.answer_letter for v in variants] == ["A", "D", "C", "B"]
    for variant in variants:
        assert variant.choices["ABCD".index(variant.answer_letter)] == "red"
    assert variants[1].prompt_options() == "A. green\nB. blue\nC. dark red\nD. red"


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("Answer: C", "C"),
        ("The answer is D) dark red", "D"),
        ("A", "A"),
        ("A cat is on the mat, so B.", "B"),  # the leading "A" is an article
        ("B or C", None),  # two letters
        ("E", None),  # not an option
        ("blue", "C"),
        ("It is green.", "B"),
        ("Red", "A"),  # whole-answer match wins over "dark red" containing it
        ("dark red", "D"),
        ("the dark red one", None),  # "red" and "dark red" both appear as whole words: ambiguous
        ("I cannot tell", None),
    ],
)
def test_extract_choice(response: str, expected: str | None) -> None:
    assert extract_choice(response, CHOICES) == expected


def test_perfect_responder_scores_one() -> None:
    variants = [v for q in _questions() for v in circular_variants(q)]
    result = score_circular(variants, [f"Answer: {v.answer_letter}" for v in variants])
    assert result.circular_accuracy == 1.0 and result.plain_accuracy == 1.0
    assert result.per_category_circular == {"colour": 1.0, "count": 1.0}
    assert result.unanswered_rate == 0.0 and result.num_questions == 3


def test_constant_letter_responder_fails_circular_but_not_plain() -> None:
    variants = [v for q in _questions() for v in circular_variants(q)]
    result = score_circular(variants, ["A"] * len(variants))
    # Rotation 0 answers are A, C, B: only q0 is right in the plain setting; nothing survives rotation.
    assert result.plain_accuracy == pytest.approx(1 / 3)
    assert result.per_category_plain == {"colour": 0.5, "count": 0.0}
    assert result.circular_accuracy == 0.0


def test_one_wrong_rotation_fails_the_question() -> None:
    variants = [v for q in _questions() for v in circular_variants(q)]
    responses = [v.choices["ABCD".index(v.answer_letter)] for v in variants]  # answer by option text
    responses[len(CHOICES) + 1] = "no idea"  # q1, rotation 1 left unanswered
    result = score_circular(variants, responses)
    assert result.circular_accuracy == pytest.approx(2 / 3)
    assert result.plain_accuracy == 1.0
    assert result.per_category_circular == {"colour": 1.0, "count": 0.0}
    assert result.unanswered_rate == pytest.approx(1 / len(variants))


def test_missing_rotation_and_bad_questions_raise() -> None:
    variants = circular_variants(_questions()[0])[:-1]
    with pytest.raises(InputError):
        score_circular(variants, ["A"] * len(variants))
    with pytest.raises(InputError):
        score_circular(variants, ["A"])
    with pytest.raises(InputError):
        MultipleChoice("bad", "?", ("only",), answer=0)
    with pytest.raises(InputError):
        MultipleChoice("bad", "?", ("x", "y"), answer=2)


def test_a_bare_letter_counts_in_either_case():
    from vlmkit.evaluation.circular import extract_choice

    assert extract_choice("d", ["red", "blue", "green", "cyan"]) == "D"
    assert extract_choice(" (b) ", ["red", "blue"]) == "B"
    assert extract_choice("e", ["red", "blue", "green", "cyan"]) is None  # not an option here
    assert extract_choice("a cat", ["red", "blue"]) is None  # an article, not a letter
