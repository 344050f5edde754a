"""VQA accuracy: VQAv2 answer normalisation and the 10-annotator consensus score.

Normalisation (the steps of the official VQAv2 evaluation, applied in this order):

1. newlines and tabs become spaces; surrounding whitespace is stripped; text is lower-cased;
2. punctuation ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !``: if the answer contains a
   thousands separator (``1,000``) or the mark touches a space, the mark is deleted, otherwise it
   becomes a space (``red-white`` -> ``red white``, ``1,000`` -> ``1000``, ``yes, it`` -> ``yes it``);
3. a period not followed by a digit is deleted (``5.`` -> ``5``, ``1.5`` stays);
4. per word: number words ``none, zero, ..., ten`` become digits, articles ``a an the`` are dropped,
   and apostrophe-less contractions are restored (``dont`` -> ``don't``).

Score of a prediction against 10 human answers: for each of the 10 leave-one-out subsets of 9,
``min(#answers in the subset equal to the prediction / 3, 1)``; the score is the mean over the 10
subsets (so 0, 1, 2, 3 and 4+ matching annotators give 0, 0.3, 0.6, 0.9 and 1.0). With a single
reference answer the score is exact match after normalisation. Two deliberate differences from the
official script, both of which only remove formatting noise: predictions and references are always
normalised (the script skips it when all 10 references agree, so ``"Yes."`` against ten ``"yes"``
scores 0 there and 1 here), and references get the word-level step 4 too.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from vlmkit.errors import InputError

_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})
_PUNCTUATION = ';/[]"{}()=+\\_-><@`,?!'
_THOUSANDS_SEPARATOR = re.compile(r"\d,\d")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")

_CONTRACTED_WORDS = (
    "ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've "
    "hasn't haven't he'd he'd've he's how'd how'll how's i'd've i'm i've isn't it'd it'd've "
    "it'll ma'am mightn't mightn't've might've mustn't must've needn't not've o'clock "
    "oughtn't 'ow's'at shan't she'd've should've shouldn't shouldn't've somebody'd "
    "somebody'd've somebody'll somebody's someone'd someone'd've someone'll someone's "
    "something'd something'd've something'll that's there'd there'd've there're there's they'd "
    "they'd've they'll they're they've 'twas wasn't we'd've we've weren't what'll what're "
    "what's what've when's where'd where's where've who'd who'd've who'll who's who've why'll "
    "why're why's won't would've wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've "
    "you'll you're you've"
)


def _contractions() -> dict[str, str]:
    """Map a contraction spelled with one apostrophe missing to its full spelling.

    That is the rule behind the VQAv2 table (``dont`` -> ``don't``, ``couldnt've`` and
    ``couldn'tve`` -> ``couldn't've``), so the table is generated from the contractions it covers.
    """
    words = _CONTRACTED_WORDS.split()
    table: dict[str, str] = {}
    for word in words:
        for position, char in enumerate(word):
            if char == "'":
                table[word[:position] + word[position + 1 :]] = word
    return table


_CONTRACTIONS = _contractions()


def normalize_answer(text: str) -> str:
    """VQAv2-normalised form of an answer (see the module docstring for the steps)."""
    text = text.replace("\n", " ").replace("\t", " ").strip().lower()
    delete_marks = _THOUSANDS_SEPARATOR.search(text) is not None
    for mark in _PUNCTUATION:
        if delete_marks or f"{mark} " in text or f" {mark}" in text:
            text = text.replace(mark, "")
        else:
            text = text.replace(mark, " ")
    text = _PERIOD_NOT_BEFORE_DIGIT.sub("", text)
    words = [_NUMBER_WORDS.get(word, word) for word in text.split()]
    return " ".join(_CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES)


def vqa_score(prediction: str, answers: Sequence[str]) -> float:
    """Consensus score in [0, 1] of one prediction against its reference answers (normalised here)."""
    return _score(normalize_answer(prediction), [normalize_answer(a) for a in answers])


def _score(prediction: str, answers: Sequence[str]) -> float:
    if len(answers) == 1:
        return float(prediction == answers[0])
    matches = sum(answer == prediction for answer in answers)
    # Leaving out a matching answer leaves matches-1 in the subset; a non-matching one leaves all.
    total = matches * min((matches - 1) / 3, 1.0) + (len(answers) - matches) * min(matches / 3, 1.0)
    return total / len(answers)


@dataclass(frozen=True)
class VqaResult:
    """Mean VQA score overall and per question type (types in first-seen order)."""

    accuracy: float
    count: int
    per_type: dict[str, float]
    per_type_count: dict[str, int]
    scores: list[float]


def vqa_accuracy(
    predictions: Sequence[str],
    answers: Sequence[Sequence[str]],
    question_types: Sequence[str] | None = None,
) -> VqaResult:
    """Score ``predictions[i]`` against ``answers[i]`` (10 human answers, or 1 for exact match).

    ``question_types`` (e.g. VQAv2's ``answer_type`` or ``question_type``) adds a per-type mean.
    """
    if len(predictions) != len(answers):
        raise InputError(f"answers: expected one answer list per prediction ({len(predictions)}), got {len(answers)}")
    if question_types is not None and len(question_types) != len(predictions):
        raise InputError(
            f"question_types: expected one type per prediction ({len(predictions)}), got {len(question_types)}"
        )
    if not predictions:
        raise InputError("predictions: no questions to score")
    scores = []
    for index, (prediction, references) in enumerate(zip(predictions, answers, strict=True)):
        if isinstance(references, str) or not references:
            raise InputError(f"answers[{index}]: expected a non-empty list of reference answers")
        scores.append(vqa_score(prediction, references))
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    if question_types is not None:
        for score, kind in zip(scores, question_types, strict=True):
            sums[kind] += score
            counts[kind] += 1
    return VqaResult(
        accuracy=sum(scores) / len(scores),
        count=len(scores),
        per_type={kind: sums[kind] / counts[kind] for kind in counts},
        per_type_count=dict(counts),
        scores=scores,
    )
