"""MMMU's official answer parsing (eval/eval_utils.py) on the cases its rules document."""

from __future__ import annotations

import pytest

from vlmkit.bench.formats import Sample
from vlmkit.bench.mmmu import mmmu_correct, mmmu_prompt, normalize, open_correct, parse_multiple_choice, parse_open
from vlmkit.errors import InputError

CHOICES = ("red", "blue", "green", "yellow")


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("(B) is right", "B"),  # a bracketed letter wins
        ("The answer is C.", "C"),  # the end mark stripped, then a letter standing alone
        ("A or B, I think B", "B"),  # several: the one that occurs last ("B," does not stand alone)
        ("(A) first, no wait, (C)", "C"),
        ("I would say that it is blue overall", "B"),  # over five words: an option's text
        ("blue", None),  # five words or fewer: no text matching, so the random fallback
        ("B", "B"),
    ],
)
def test_multiple_choice_parsing(response, letter):
    got = parse_multiple_choice(response, CHOICES, seed="q1")
    assert got == letter if letter else got in "ABCD"


def test_the_random_fallback_is_fixed_by_the_question_and_spread_over_letters():
    draws = {parse_multiple_choice("no idea", CHOICES, seed=f"q{i}") for i in range(40)}
    assert draws == set("ABCD")
    assert parse_multiple_choice("no idea", CHOICES, seed="q7") == parse_multiple_choice("?", CHOICES, seed="q7")


@pytest.mark.parametrize(
    ("response", "golds", "correct"),
    [
        ("The answer is 3.14", ("3.14",), True),
        ("The answer is 3.14", ("3.140",), True),  # numbers compare as floats to 2 places
        ("So the total is 1,000 apples", ("1000",), True),  # commas in numbers
        ("It is Paris.", ("paris",), True),  # text: the gold occurs in the key tail, case-folded
        ("x = 2.5e3", ("2500",), True),  # "=" in the last sentence, scientific notation
        ("six", ("5",), False),
        ("a", ("a",), True),  # one character: padded, matches itself
        ("banana", ("a",), False),  # ...but not inside a word
    ],
)
def test_open_answers(response, golds, correct):
    assert open_correct(golds, parse_open(response)) is correct


def test_normalize_and_the_shortest_key_tail():
    assert normalize(" 1,234.567 ") == [1234.57] and normalize("B") == [" b", "b "]
    assert parse_open("Thus the result is 7") == [7.0]  # "is " leaves the shortest tail, "7"


def test_prompt_places_images_at_their_markers(tmp_path):
    one, two = tmp_path / "1.png", tmp_path / "2.png"
    sample = Sample("v1", "Compare <image 2> with <image 1>.", ("A",), (one, two), ("same", "different"))
    text, images = mmmu_prompt(sample)
    assert text == (
        "Compare <image> with <image>.\n\n(A) same\n(B) different\n\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert images == (two, one)
    text, images = mmmu_prompt(Sample("v2", "How many?", ("3",), (one,)))
    assert text.startswith("<image>\nHow many?\n\nAnswer the question using a single word") and images == (one,)
    assert mmmu_correct(sample, "(A)") and not mmmu_correct(sample, "(B)")
    with pytest.raises(InputError, match="question v3: it shows <image 2> but has 1"):
        mmmu_prompt(Sample("v3", "<image 2>?", ("x",), (one,)))
