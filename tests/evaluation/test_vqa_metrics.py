"""VQA accuracy: answer normalisation cases, the consensus rule against a literal leave-one-out
computation, exact match for a single answer, and per-type aggregation."""

from __future__ import annotations

import itertools
import random

import pytest

from vlmkit.errors import InputError
from vlmkit.evaluation import normalize_answer, vqa_accuracy, vqa_score


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Yes.", "yes"),
        ("Two", "2"),
        ("none", "0"),
        ("The red one", "red 1"),
        ("a cat!", "cat"),
        ("red-white", "red white"),
        ("yes, it is", "yes it is"),
        ("1,000", "1000"),
        ("1.5", "1.5"),
        ("5.", "5"),
        ("dont know", "don't know"),
        ("couldnt've", "couldn't've"),
        ("man's\that\n", "man's hat"),
        ("(left)", "left"),
    ],
)
def test_normalize_answer(raw: str, normalized: str) -> None:
    assert normalize_answer(raw) == normalized


def _literal_consensus(prediction: str, answers: list[str]) -> float:
    """The rule as written in the VQA paper's evaluation: average over the 10 leave-one-out subsets."""
    scores = []
    for left_out in range(len(answers)):
        others = answers[:left_out] + answers[left_out + 1 :]
        scores.append(min(sum(a == prediction for a in others) / 3, 1.0))
    return sum(scores) / len(scores)


def test_consensus_rule_matches_leave_one_out() -> None:
    rng = random.Random(0)
    vocabulary = ["yes", "no", "2", "red", "blue"]
    for _ in range(200):
        answers = [rng.choice(vocabulary) for _ in range(10)]
        prediction = rng.choice(vocabulary)
        assert vqa_score(prediction, answers) == pytest.approx(_literal_consensus(prediction, answers))


@pytest.mark.parametrize(("matches", "expected"), [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_known_consensus_values(matches: int, expected: float) -> None:
    answers = ["cat"] * matches + ["dog"] * (10 - matches)
    assert vqa_score("Cat.", answers) == pytest.approx(expected)


def test_single_answer_is_exact_match_after_normalisation() -> None:
    assert vqa_score("The Two", ["2"]) == 1.0
    assert vqa_score("3", ["2"]) == 0.0


def test_aggregation_overall_and_per_type() -> None:
    answers = [["yes"] * 10, ["2"] * 2 + ["3"] * 8, ["red"]]
    result = vqa_accuracy(["Yes", "two", "blue"], answers, question_types=["yes/no", "number", "other"])
    assert result.scores == pytest.approx([1.0, 0.6, 0.0])
    assert result.accuracy == pytest.approx(1.6 / 3)
    assert result.per_type == pytest.approx({"yes/no": 1.0, "number": 0.6, "other": 0.0})
    assert result.per_type_count == {"yes/no": 1, "number": 1, "other": 1}
    assert vqa_accuracy(["yes"], [["yes"] * 10]).per_type == {}


def test_ground_truth_predictions_score_one() -> None:
    answers = [list(group) for group in itertools.repeat(["a dog"] * 4 + ["cat"] * 6, 3)]
    assert vqa_accuracy(["cat", "cat", "CAT"], answers).accuracy == 1.0


@pytest.mark.parametrize(
    ("predictions", "answers", "types"),
    [(["a"], [], None), (["a"], ["a"], None), (["a"], [[]], None), ([], [], None), (["a"], [["a"]], ["x", "y"])],
)
def test_bad_inputs_raise_input_error(predictions, answers, types) -> None:
    with pytest.raises(InputError):
        vqa_accuracy(predictions, answers, question_types=types)
