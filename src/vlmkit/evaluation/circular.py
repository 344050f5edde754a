"""MMBench CircularEval for multiple-choice questions, and reading an option letter from free text.

A question with N choices is asked N times, with the choices rotated circularly: rotation ``r``
shows ``choices[r], choices[r+1], ..., choices[r-1]`` under letters A, B, ... so the correct
choice moves through every letter. The question scores 1 only if every rotation is answered
correctly, which removes the credit a model gets from a fixed letter preference or a lucky guess
(a random guesser passes a 4-choice question with probability 1/256 instead of 1/4). Plain
accuracy, for comparison, scores only rotation 0 (the original order).

Reading the answer from free-form text (:func:`extract_choice`), in order:

1. letter: tokens are split on whitespace and stripped of surrounding ``()[]{}.,:;!?*#"'``; the
   answer is the option letter if exactly one distinct valid letter appears as a whole uppercase
   token ("B", "(B)", "B.", "Answer: B", "The answer is B"). A bare ``A`` directly followed by a
   lower-case word is read as the article ("A cat sits"), not as an option;
   A response that is nothing but one option letter counts in either case ("b"): models trained with a
   lowercasing tokenizer cannot write capitals;
2. option text: if no letter is found, the option whose text equals the whole answer
   (case-insensitive, surrounding punctuation ignored) or, failing that, the only option whose text
   appears in the answer as whole words;
3. otherwise no answer, which counts as wrong.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vlmkit.errors import InputError
from vlmkit.processing.chat import LETTERS, lettered_options, multiple_choice_prompt

_TOKEN_EDGES = "()[]{}.,:;!?*#\"'"


@dataclass(frozen=True)
class MultipleChoice:
    """One multiple-choice question; ``answer`` is the index of the correct choice."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    category: str = ""

    def __post_init__(self) -> None:
        if not 2 <= len(self.choices) <= len(LETTERS):
            raise InputError(f"question {self.id}: expected 2 to {len(LETTERS)} choices, got {len(self.choices)}")
        if not 0 <= self.answer < len(self.choices):
            raise InputError(f"question {self.id}: answer index {self.answer} is not one of its choices")


@dataclass(frozen=True)
class CircularVariant:
    """One rotation of a question, as shown to the model; ``answer_letter`` is the correct letter."""

    question_id: str
    rotation: int
    question: str
    choices: tuple[str, ...]
    answer_letter: str
    category: str

    def prompt_options(self) -> str:
        """The choices as ``"A. ...\\nB. ..."`` lines, the layout MMBench prompts use."""
        return lettered_options(self.choices)

    def prompt(self) -> str:
        """The question as vlmkit's recipes train and evaluate it (``processing.chat.multiple_choice_prompt``)."""
        return multiple_choice_prompt(self.question, self.choices)


def circular_variants(question: MultipleChoice) -> list[CircularVariant]:
    """The N rotations of ``question`` (rotation 0 is the original order)."""
    n = len(question.choices)
    return [
        CircularVariant(
            question_id=question.id,
            rotation=r,
            question=question.question,
            choices=tuple(question.choices[(i + r) % n] for i in range(n)),
            answer_letter=LETTERS[(question.answer - r) % n],
            category=question.category,
        )
        for r in range(n)
    ]


def extract_choice(response: str, choices: Sequence[str]) -> str | None:
    """The option letter a free-form ``response`` picks among ``choices``, or None (rules above)."""
    valid = LETTERS[: len(choices)]
    whole = response.strip().strip(_TOKEN_EDGES)
    if len(whole) == 1 and whole.upper() in valid:  # a bare letter, in either case ("b", "(B)")
        return whole.upper()
    tokens = response.split()
    found = set()
    for i, raw in enumerate(tokens):
        token = raw.strip(_TOKEN_EDGES)
        if len(token) != 1 or token not in valid:
            continue
        is_article = token == "A" and raw == "A" and i + 1 < len(tokens) and tokens[i + 1][:1].islower()
        if not is_article:
            found.add(token)
    if len(found) == 1:
        return found.pop()
    if found:
        return None
    return _match_option_text(response, choices)


def _match_option_text(response: str, choices: Sequence[str]) -> str | None:
    def simplify(text: str) -> str:
        return " ".join(text.lower().split()).strip(_TOKEN_EDGES + " ")

    answer = simplify(response)
    options = [simplify(choice) for choice in choices]
    exact = [i for i, option in enumerate(options) if option and option == answer]
    if len(exact) == 1:
        return LETTERS[exact[0]]
    contained = [
        i for i, option in enumerate(options) if option and re.search(rf"(?<!\w){re.escape(option)}(?!\w)", answer)
    ]
    return LETTERS[contained[0]] if len(contained) == 1 else None


@dataclass(frozen=True)
class CircularResult:
    """CircularEval and plain accuracy, overall and per category (categories in first-seen order)."""

    circular_accuracy: float
    plain_accuracy: float
    per_category_circular: dict[str, float]
    per_category_plain: dict[str, float]
    num_questions: int
    unanswered_rate: float


def score_circular(variants: Sequence[CircularVariant], responses: Sequence[str]) -> CircularResult:
    """Score the model's free-form ``responses[i]`` to ``variants[i]`` (all rotations of each question).

    Every question must come with all of its rotations, so that a missing rotation cannot turn a
    failure into a pass.
    """
    if len(variants) != len(responses):
        raise InputError(f"responses: expected one response per variant ({len(variants)}), got {len(responses)}")
    if not variants:
        raise InputError("variants: no questions to score")
    rotations: dict[str, dict[int, bool]] = defaultdict(dict)
    categories: dict[str, str] = {}
    unanswered = 0
    for variant, response in zip(variants, responses, strict=True):
        letter = extract_choice(response, variant.choices)
        unanswered += letter is None
        rotations[variant.question_id][variant.rotation] = letter == variant.answer_letter
        categories[variant.question_id] = variant.category
    circular: dict[str, bool] = {}
    plain: dict[str, bool] = {}
    for variant in variants:
        qid = variant.question_id
        if qid in circular:
            continue
        if set(rotations[qid]) != set(range(len(variant.choices))):
            raise InputError(f"variants: question {qid} lacks some of its {len(variant.choices)} rotations")
        circular[qid] = all(rotations[qid].values())
        plain[qid] = rotations[qid][0]
    return CircularResult(
        circular_accuracy=_mean(circular.values()),
        plain_accuracy=_mean(plain.values()),
        per_category_circular=_per_category(circular, categories),
        per_category_plain=_per_category(plain, categories),
        num_questions=len(circular),
        unanswered_rate=unanswered / len(variants),
    )


def _mean(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(values) / len(values)


def _per_category(correct: dict[str, bool], categories: dict[str, str]) -> dict[str, float]:
    grouped: dict[str, list[bool]] = defaultdict(list)
    for qid, ok in correct.items():
        grouped[categories[qid]].append(ok)
    return {category: _mean(flags) for category, flags in grouped.items()}
