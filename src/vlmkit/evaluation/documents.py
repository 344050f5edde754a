"""Document metrics, by their published definitions.

- **CER / WER**: Levenshtein distance over characters / words divided by the reference length, on text whose
  whitespace runs are collapsed to one space (line breaks are not errors of reading).
- **Word recall**: the share of reference words (case-folded, outer punctuation stripped) that the prediction
  contains, as a multiset: a measure of what was found that ignores reading order.
- **ANLS** (DocVQA, Biten et al. 2019): per question ``max_g s(p, g)`` with ``s = 1 - NL`` when the normalised
  Levenshtein distance ``NL = d / max(|p|, |g|)`` is below 0.5, else 0; answers case-folded and space-collapsed.
- **OCRBench's rule** (Liu et al. 2023): correct when a gold answer, case-folded, occurs in the prediction.
- **Field F1**: key-value pairs as a set, a pair counts when key and normalised value both match.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from rapidfuzz.distance import Levenshtein

ANLS_THRESHOLD = 0.5


def collapse(text: str) -> str:
    return " ".join(text.split())


class EditCounts(NamedTuple):
    """The numerators and denominators of CER and WER, so pages can be summed (micro averages)."""

    char_edits: int
    chars: int
    word_edits: int
    words: int

    @classmethod
    def of(cls, prediction: str, reference: str) -> EditCounts:
        chars, words = collapse(reference), reference.split()
        return cls(
            Levenshtein.distance(collapse(prediction), chars),
            len(chars),
            Levenshtein.distance(prediction.split(), words),
            len(words),
        )

    @classmethod
    def summed(cls, counts: Sequence[EditCounts]) -> EditCounts:
        """Pages' counts added up: their ``cer`` and ``wer`` are the micro averages."""
        return cls(*(sum(column) for column in zip(*counts, strict=True))) if counts else cls(0, 0, 0, 0)

    @property
    def cer(self) -> float:
        return self.char_edits / max(self.chars, 1)

    @property
    def wer(self) -> float:
        return self.word_edits / max(self.words, 1)


def cer(prediction: str, reference: str) -> float:
    return EditCounts.of(prediction, reference).cer


def wer(prediction: str, reference: str) -> float:
    return EditCounts.of(prediction, reference).wer


def _word_key(word: str) -> str:
    return word.strip(string.punctuation + "“”‘’").casefold()


def word_recall(prediction: str, reference: str) -> float:
    truth = Counter(key for key in map(_word_key, reference.split()) if key)
    found = Counter(key for key in map(_word_key, prediction.split()) if key)
    return sum((truth & found).values()) / max(sum(truth.values()), 1)


def _answer(text: str) -> str:
    return collapse(text).casefold()


def anls_score(prediction: str, answers: Sequence[str], threshold: float = ANLS_THRESHOLD) -> float:
    """One question's ANLS: the best similarity over its gold ``answers``, 0 below the threshold."""
    predicted = _answer(prediction)
    best = 0.0
    for answer in answers:
        gold = _answer(answer)
        distance = Levenshtein.distance(predicted, gold) / max(len(predicted), len(gold), 1)
        best = max(best, 1.0 - distance if distance < threshold else 0.0)
    return best


def anls(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> float:
    return sum(anls_score(p, a) for p, a in zip(predictions, answers, strict=True)) / max(len(answers), 1)


def ocrbench_correct(prediction: str, answers: Sequence[str]) -> bool:
    predicted = _answer(prediction)
    return any(_answer(answer) in predicted for answer in answers)


def field_f1(predicted: Iterable[Mapping[str, str]], gold: Iterable[Mapping[str, str]]) -> dict[str, float]:
    """Micro precision, recall and F1 of key-value pairs over documents (pairs zipped document by document)."""
    matched = n_predicted = n_gold = 0
    for mine, truth in zip(predicted, gold, strict=True):
        mine_pairs = {(_answer(k), _answer(v)) for k, v in mine.items()}
        gold_pairs = {(_answer(k), _answer(v)) for k, v in truth.items()}
        matched += len(mine_pairs & gold_pairs)
        n_predicted += len(mine_pairs)
        n_gold += len(gold_pairs)
    precision = matched / n_predicted if n_predicted else 0.0
    recall = matched / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
