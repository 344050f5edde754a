"""Each benchmark's scoring rule, after its official code; every metric function takes the samples and the answers
extracted from the model's responses, and returns named numbers (``accuracy`` always among them).

vlmkit's own metrics do the shared work: ``evaluation.circular`` (reading an option letter, CircularEval),
``evaluation.vqa`` (VQA accuracy), ``evaluation.documents`` (ANLS, OCRBench's substring rule).
"""

from __future__ import annotations

from collections.abc import Sequence

from vlmkit.bench.formats import Sample
from vlmkit.evaluation.circular import CircularVariant, extract_choice, score_circular
from vlmkit.evaluation.vqa import vqa_score

ROTATION = 1_000_000  # MMBench: circular copy k of question i has index i + k * ROTATION
HANDWRITTEN_MATH = "Handwritten Mathematical Expression Recognition"
# MME's subtasks (its eval_tool/calculation.py): the total is reported per half
MME_COGNITION = frozenset({"commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning"})
Metrics = dict[str, float]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def option_letter(sample: Sample, response: str) -> str:
    """The letter ``response`` picks among the sample's options (``evaluation.circular.extract_choice``), or ""."""
    return extract_choice(response, sample.choices) or ""


def letter_accuracy(samples: Sequence[Sample], letters: Sequence[str]) -> Metrics:
    """ScienceQA-IMG, AI2D: the extracted letter equals the answer's; unreadable answers are wrong."""
    return {
        "accuracy": _mean([float(letter == s.answers[0]) for s, letter in zip(samples, letters, strict=True)]),
        "unanswered_rate": _mean([float(not letter) for letter in letters]),
    }


def circular_accuracy(samples: Sequence[Sample], letters: Sequence[str]) -> Metrics:
    """MMBench: CircularEval over each question's copies (``evaluation.circular.score_circular``); ``accuracy``
    is the plain accuracy of the original order (copy 0)."""
    variants = [
        CircularVariant(s.group, int(s.index) // ROTATION, s.question, s.choices, s.answers[0], s.category)
        for s in samples
    ]
    result = score_circular(variants, letters)  # letters read the same way again: the harness's are for display
    return {
        "circular_accuracy": result.circular_accuracy,
        "accuracy": result.plain_accuracy,
        "questions": float(result.num_questions),
        "unanswered_rate": result.unanswered_rate,
    }


def pope_label(sample: Sample, response: str) -> str:
    """POPE's reading of an answer (LLaVA's ``eval_pope.py``): the first sentence, commas removed, is "no" when
    one of its words is ``No``, ``no`` or ``not``, and "yes" otherwise."""
    words = response.split(".")[0].replace(",", "").split(" ")
    return "no" if {"No", "no", "not"} & set(words) else "yes"


def pope_metrics(samples: Sequence[Sample], labels: Sequence[str]) -> Metrics:
    """POPE: accuracy, precision, recall and F1 with "yes" as the positive class, and the share answered yes."""
    gold = [s.answers[0].strip().lower() == "yes" for s in samples]
    said = [label == "yes" for label in labels]
    tp = sum(g and p for g, p in zip(gold, said, strict=True))
    fp = sum(p and not g for g, p in zip(gold, said, strict=True))
    fn = sum(g and not p for g, p in zip(gold, said, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": _mean([float(g == p) for g, p in zip(gold, said, strict=True)]),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "yes_ratio": _mean([float(p) for p in said]),
    }


def mme_label(sample: Sample, response: str) -> str:
    """MME's ``parse_pred_ans`` (eval_tool/calculation.py): lower-cased, periods removed, "yes" or "no" as it is,
    else whichever of them its first four characters hold, else "other"."""
    text = response.lower().strip().replace(".", "")
    if text in ("yes", "no"):
        return text
    return "yes" if "yes" in text[:4] else "no" if "no" in text[:4] else "other"


def mme_metrics(samples: Sequence[Sample], labels: Sequence[str]) -> Metrics:
    """MME per subtask: acc over questions, acc+ over images (both questions right), score = 100 acc + 100 acc+;
    ``score`` sums the subtasks present, ``perception`` and ``cognition`` its two halves."""
    right = [label == s.answers[0].strip().lower() for s, label in zip(samples, labels, strict=True)]
    images: dict[tuple[str, str], bool] = {}
    for sample, ok in zip(samples, right, strict=True):
        key = (sample.category, sample.group)
        images[key] = images.get(key, True) and ok
    halves = {"perception": 0.0, "cognition": 0.0}
    for task in dict.fromkeys(sample.category for sample in samples):
        acc = _mean([float(ok) for sample, ok in zip(samples, right, strict=True) if sample.category == task])
        acc_plus = _mean([float(ok) for (name, _), ok in images.items() if name == task])
        halves["cognition" if task in MME_COGNITION else "perception"] += 100 * (acc + acc_plus)
    return {
        "score": halves["perception"] + halves["cognition"],
        **halves,
        "accuracy": _mean([float(ok) for ok in right]),
        "accuracy_plus": _mean([float(ok) for ok in images.values()]),
    }


def ocrbench_hit(sample: Sample, response: str) -> bool:
    """OCRBench (its ``eval``): a gold answer occurs in the response, case-folded (``ocrbench_correct``); for
    handwritten formulas with every space removed and case kept."""
    if sample.category == HANDWRITTEN_MATH:
        return any("".join(a.split()) in "".join(response.split()) for a in sample.answers)
    from vlmkit.evaluation.documents import ocrbench_correct  # rapidfuzz, the docs extra: only when scored

    return ocrbench_correct(response, sample.answers)


def ocrbench_metrics(samples: Sequence[Sample], responses: Sequence[str]) -> Metrics:
    """``score`` is OCRBench's headline, the number of questions answered (out of 1000 on the full set)."""
    hits = [float(ocrbench_hit(s, r)) for s, r in zip(samples, responses, strict=True)]
    return {"accuracy": _mean(hits), "score": sum(hits)}


def vqa_metrics(samples: Sequence[Sample], responses: Sequence[str]) -> Metrics:
    """TextVQA: VQA accuracy against the ten human answers (``evaluation.vqa``)."""
    return {"accuracy": _mean([vqa_score(r, s.answers) for s, r in zip(samples, responses, strict=True)])}


def anls_metrics(samples: Sequence[Sample], responses: Sequence[str]) -> Metrics:
    """DocVQA: ANLS (``evaluation.documents.anls_score``); ``accuracy`` is the share matched exactly (ANLS 1)."""
    from vlmkit.evaluation.documents import anls_score  # rapidfuzz, the docs extra: only when scored

    scores = [anls_score(r, s.answers) for s, r in zip(samples, responses, strict=True)]
    return {"anls": _mean(scores), "accuracy": _mean([float(score == 1.0) for score in scores])}


def _to_float(text: str) -> float | None:
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_correct(target: str, prediction: str, tolerance: float = 0.05) -> bool:
    """ChartQA's relaxed accuracy (pix2struct's ``relaxed_correctness``, used by ChartQA's evaluation): numbers
    (``12%`` read as 0.12) within ``tolerance`` relative change of a non-zero target; otherwise case-insensitive
    equality."""
    predicted, wanted = _to_float(prediction.strip()), _to_float(target.strip())
    if predicted is not None and wanted:
        return abs(predicted - wanted) / abs(wanted) <= tolerance
    return prediction.strip().lower() == target.strip().lower()


def relaxed_metrics(samples: Sequence[Sample], responses: Sequence[str]) -> Metrics:
    """ChartQA: relaxed accuracy, the best over the gold answers."""
    hits = [any(relaxed_correct(a, r) for a in s.answers) for s, r in zip(samples, responses, strict=True)]
    return {"accuracy": _mean([float(hit) for hit in hits])}
