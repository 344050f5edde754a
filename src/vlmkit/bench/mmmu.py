"""MMMU: its prompt and its official answer parsing and judging.

The rules follow MMMU-Benchmark/MMMU ``eval/eval_utils.py`` (``parse_multi_choice_response``,
``parse_open_response``, ``normalize_str``, ``extract_numbers``, ``eval_multi_choice``, ``eval_open``):

- **Multiple choice.** Strip ``, . ! ? ; : '`` from the ends (one mark after the other, as the script does) and pad
  with spaces. Candidates are the letters written ``(B)``; failing that, letters standing alone (`` B ``); failing
  that, and only for a response of more than five words, the options whose text occurs in it (case-insensitive).
  Several candidates: the one that occurs last. None: a random letter. The official script draws it from one
  ``random`` seeded 42 for the whole run, so a response's fallback depends on the order of the others; here it is
  drawn from a generator seeded by the question's id, equally random and the same whatever the order.
- **Open.** The response, lower-cased and stripped of an outer ``.``, is cut into sentences; from each, the
  shortest tail after one of ``could be, so, is, thus, therefore, final, answer, result`` (and ``=`` in the last
  sentence) is a candidate (the whole response when none is found); the numbers in each candidate are
  candidates too. Each is normalised: a number (commas removed) becomes a float rounded to 2 places, text is
  lower-cased, a single character becomes `` x`` and ``x `` (so it cannot match inside a word). A gold answer
  matches a float candidate by equality and a text candidate by occurring in it.
- **Accuracy** is micro-averaged over questions, and reported per subfield.
"""

from __future__ import annotations

import random
import re

from vlmkit.bench.formats import IMAGE_MARKER, Sample
from vlmkit.errors import InputError
from vlmkit.processing.chat import IMAGE_TOKEN, LETTERS

_END_MARKS = (",", ".", "!", "?", ";", ":", "'")
_KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL = {":", ",", ".", "!", "?", ";", "'"}
_NUMBER_WITH_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUMBER_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUMBER_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")

Candidate = str | float


def mmmu_prompt(sample: Sample) -> tuple[str, tuple]:
    """The prompt of MMMU's LLaVA-1.5 config (``eval/configs/llava1.5.yaml``) with each ``<image k>`` marker
    replaced by the image placeholder, and the images in marker order (all of them in front when none is
    marked)."""
    if sample.choices:
        options = "\n".join(f"({LETTERS[i]}) {option}" for i, option in enumerate(sample.choices))
        text = f"{sample.question}\n\n{options}\n\nAnswer with the option's letter from the given choices directly."
    else:
        text = f"{sample.question}\n\nAnswer the question using a single word or phrase."
    order = [int(k) - 1 for k in IMAGE_MARKER.findall(text)]
    if any(not 0 <= k < len(sample.images) for k in order):
        raise InputError(f"question {sample.index}: it shows <image {max(order) + 1}> but has {len(sample.images)}")
    if not order:
        return IMAGE_TOKEN * len(sample.images) + ("\n" if sample.images else "") + text, sample.images
    return IMAGE_MARKER.sub(IMAGE_TOKEN, text), tuple(sample.images[k] for k in order)


def parse_multiple_choice(response: str, choices: tuple[str, ...], seed: str = "") -> str:
    """The letter MMMU's parser reads from ``response`` (module docstring); ``seed`` fixes its random fallback."""
    letters = LETTERS[: len(choices)]
    for mark in _END_MARKS:
        response = response.strip(mark)
    response = f" {response} "
    found = [letter for letter in letters if f"({letter})" in response]
    spots = {letter: response.rfind(f"({letter})") for letter in found}
    if not found:
        found = [letter for letter in letters if f" {letter} " in response]
        spots = {letter: response.rfind(f" {letter} ") for letter in found}
    if not found and len(response.split()) > 5:
        lowered = response.lower()
        found = [letter for letter, option in zip(letters, choices, strict=True) if option.lower() in lowered]
        spots = {letter: lowered.rfind(choices[letters.index(letter)].lower()) for letter in found}
    if not found:
        return random.Random(seed).choice(letters)
    return max(found, key=lambda letter: spots[letter])  # max keeps the first of equal positions, as argmax does


def normalize(text: str) -> list[Candidate]:
    """MMMU's ``normalize_str``: a number as a float to 2 places, text lower-cased, one character padded."""
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        pass
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def _numbers(text: str) -> list[str]:
    return [*_NUMBER_WITH_COMMAS.findall(text), *_NUMBER_SCIENTIFIC.findall(text), *_NUMBER_SIMPLE.findall(text)]


def _key_responses(response: str) -> list[str]:
    response = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = []
    for position, sentence in enumerate(sentences):
        indicators = [*_KEY_INDICATORS, *(["="] if position == len(sentences) - 1 else [])]
        tails = [sentence.split(indicator)[-1].strip() for indicator in indicators if indicator in sentence]
        shortest = min(tails, key=len) if tails else ""
        if shortest and shortest not in _TRIVIAL:
            keys.append(shortest)
    return keys or [response]


def parse_open(response: str) -> list[Candidate]:
    """MMMU's ``parse_open_response``: the normalised candidates an open answer may be (module docstring)."""
    keys = _key_responses(response)
    candidates = [*keys, *(number for key in keys for number in _numbers(key))]
    return list({value: None for text in candidates for value in normalize(text)})


def open_correct(golds: tuple[str, ...], candidates: list[Candidate]) -> bool:
    """MMMU's ``eval_open``: a text candidate holds a gold text, or a float candidate equals a gold number."""
    normalized = [value for gold in golds for value in normalize(gold)]
    for candidate in candidates:
        if isinstance(candidate, str):
            if any(isinstance(gold, str) and gold in candidate for gold in normalized):
                return True
        elif candidate in normalized:
            return True
    return False


def mmmu_correct(sample: Sample, response: str) -> bool:
    """Whether ``response`` answers ``sample`` by MMMU's rules."""
    if sample.choices:
        return parse_multiple_choice(response, sample.choices, seed=sample.index) in sample.answers
    return open_correct(sample.answers, parse_open(response))
