"""Each benchmark's rule, after its official code, on small hand-checked cases."""

from __future__ import annotations

import pytest

from vlmkit.bench import scoring
from vlmkit.bench.formats import Sample
from vlmkit.bench.tasks import circular_copies, get_task
from vlmkit.errors import InputError


def _sample(index, answers, category="", group="", choices=()):
    return Sample(str(index), "q", tuple(answers), choices=tuple(choices), category=category, group=group or str(index))


@pytest.mark.parametrize(
    ("response", "label"),
    [("Yes", "yes"), ("No, there is not.", "no"), ("There is no dog. Yes.", "no"), ("Nope", "yes"), ("not", "no")],
)
def test_pope_reading(response, label):
    assert scoring.pope_label(_sample(0, ["yes"]), response) == label  # "Nope" is yes: POPE's rule, word by word


def test_pope_metrics():
    samples = [_sample(i, [a]) for i, a in enumerate(["yes", "yes", "yes", "no"])]
    metrics = scoring.pope_metrics(samples, ["yes", "yes", "no", "yes"])
    assert metrics["accuracy"] == 0.5 and metrics["yes_ratio"] == 0.75
    assert metrics["precision"] == metrics["recall"] == metrics["f1"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(("response", "label"), [("Yes, it is.", "yes"), ("Not really", "no"), ("Maybe", "other")])
def test_mme_reading(response, label):
    assert scoring.mme_label(_sample(0, ["Yes"]), response) == label


def test_mme_acc_and_acc_plus_per_image():
    rows = [("existence", "i1", "Yes", "yes"), ("existence", "i1", "No", "no"), ("existence", "i2", "Yes", "yes"),
            ("existence", "i2", "No", "yes"),
            ("code_reasoning", "i3", "Yes", "yes"), ("code_reasoning", "i3", "No", "no")]  # fmt: skip
    samples = [_sample(i, [gold], task, image) for i, (task, image, gold, _) in enumerate(rows)]
    metrics = scoring.mme_metrics(samples, [label for *_, label in rows])
    assert metrics["perception"] == pytest.approx(100 * 0.75 + 100 * 0.5)
    assert metrics["cognition"] == 200 and metrics["score"] == pytest.approx(325)
    assert metrics["accuracy"] == pytest.approx(5 / 6) and metrics["accuracy_plus"] == pytest.approx(2 / 3)


def test_ocrbench_rule_and_handwritten_formulas():
    plain = _sample(0, ["HELLO"], "Regular Text Recognition")
    formula = _sample(1, ["x ^ 2"], scoring.HANDWRITTEN_MATH)
    assert scoring.ocrbench_hit(plain, "it says hello world") and not scoring.ocrbench_hit(plain, "hell o")
    assert scoring.ocrbench_hit(formula, "The formula is x^2") and not scoring.ocrbench_hit(formula, "X^2")
    assert scoring.ocrbench_metrics([plain, formula], ["hello", "y"]) == {"accuracy": 0.5, "score": 1.0}


@pytest.mark.parametrize(
    ("target", "prediction", "correct"),
    [("100", "104", True), ("100", "106", False), ("12%", "0.12", True), ("0", "0.0", False), ("Yes", "yes", True)],
)
def test_chartqa_relaxed_accuracy(target, prediction, correct):
    assert scoring.relaxed_correct(target, prediction) is correct  # a zero target compares as text, as pix2struct's


def test_textvqa_and_docvqa():
    ten = ["sign"] * 3 + ["stop"] * 7
    samples = [_sample(0, ten), _sample(1, ["exit"])]
    assert scoring.vqa_metrics(samples, ["sign", "exit"])["accuracy"] == pytest.approx((0.9 + 1.0) / 2)
    docs = scoring.anls_metrics([_sample(0, ["1/2/2020"]), _sample(1, ["total"])], ["1/2/2020", "totl"])
    assert docs["anls"] == pytest.approx((1 + 0.8) / 2) and docs["accuracy"] == 0.5


def test_circular_eval_over_copies_made_for_a_file_without_them():
    questions = [_sample(1, ["A"], "color", choices=["red", "blue"]), _sample(2, ["B"], choices=["x", "y", "z"])]
    copies = circular_copies(questions)
    assert [s.index for s in copies] == ["1", "1000001", "2", "1000002", "2000002"]
    assert [s.answers[0] for s in copies] == ["A", "B", "B", "A", "C"]
    assert circular_copies(copies) == copies  # a file that carries copies is used as it is
    with pytest.raises(InputError, match="index 3: an MMBench question needs its options"):
        circular_copies([_sample(3, ["A"])])
    task = get_task("mmbench")
    regrouped = [Sample(s.index, s.question, s.answers, choices=s.choices, category=s.category,
                        group=str(int(s.index) % 1_000_000)) for s in copies]  # fmt: skip
    right = [s.answers[0] for s in regrouped]
    metrics = task.metric(regrouped, [*right[:3], "B", right[4]])  # question 2 fails one rotation
    assert metrics["circular_accuracy"] == 0.5 and metrics["accuracy"] == 1.0 and metrics["questions"] == 2


def test_option_letters_and_unanswered():
    samples = [_sample(i, ["B"], choices=["cat", "dog"]) for i in range(3)]
    letters = [scoring.option_letter(s, r) for s, r in zip(samples, ["(B)", "a dog", "A, B"], strict=True)]
    assert letters == ["B", "B", ""]
    metrics = scoring.letter_accuracy(samples, letters)
    assert metrics == {"accuracy": pytest.approx(2 / 3), "unanswered_rate": pytest.approx(1 / 3)}
