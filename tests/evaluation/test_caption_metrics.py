"""BLEU and CIDEr-D: hand-computed values, perfect captions, and agreement with pycocoevalcap's
Bleu and Cider scorers on the same pre-tokenised random corpus."""

from __future__ import annotations

import math
import random

import pytest

from vlmkit.errors import InputError
from vlmkit.evaluation import cider_d, corpus_bleu, tokenize_caption

VOCABULARY = [
    "a",
    "the",
    "cat",
    "dog",
    "red",
    "blue",
    "ball",
    "sits",
    "on",
    "under",
    "mat",
    "table",
    "near",
    "big",
    "small",
    "runs",
]


def _random_corpus(seed: int, num_images: int = 30) -> tuple[list[str], list[list[str]]]:
    """References of varied length; hypotheses that copy, perturb or ignore them (so all n-gram
    orders have matches and misses)."""
    rng = random.Random(seed)

    def sentence() -> list[str]:
        return [rng.choice(VOCABULARY) for _ in range(rng.randint(3, 12))]

    hypotheses, references = [], []
    for _ in range(num_images):
        refs = [sentence() for _ in range(rng.randint(1, 5))]
        style = rng.random()
        if style < 0.3:
            hyp = list(rng.choice(refs))
        elif style < 0.8:
            hyp = [w if rng.random() < 0.7 else rng.choice(VOCABULARY) for w in rng.choice(refs)]
            hyp = hyp[: rng.randint(2, len(hyp))]
        else:
            hyp = sentence()
        hypotheses.append(" ".join(hyp))
        references.append([" ".join(ref) for ref in refs])
    return hypotheses, references


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pycocoevalcap(seed: int) -> None:
    bleu_module = pytest.importorskip("pycocoevalcap.bleu.bleu")
    cider_module = pytest.importorskip("pycocoevalcap.cider.cider")
    hypotheses, references = _random_corpus(seed)
    gts = {i: refs for i, refs in enumerate(references)}
    res = {i: [hyp] for i, hyp in enumerate(hypotheses)}
    expected_bleu, _ = bleu_module.Bleu(4).compute_score(gts, res, verbose=0)
    expected_cider, expected_per_caption = cider_module.Cider().compute_score(gts, res)

    assert corpus_bleu(hypotheses, references, tokenize=False) == pytest.approx(expected_bleu, abs=1e-6)
    result = cider_d(hypotheses, references, tokenize=False)
    assert result.score == pytest.approx(float(expected_cider), abs=1e-6)
    assert result.per_caption == pytest.approx(list(expected_per_caption), abs=1e-6)


def test_bleu_hand_computed() -> None:
    # unigrams 5/6, bigrams 3/5, trigrams 1/4, 4-grams 0/3; equal lengths so no brevity penalty.
    scores = corpus_bleu(["the cat sat on the mat"], [["the cat is on the mat"]])
    assert scores == pytest.approx([5 / 6, (5 / 6 * 3 / 5) ** 0.5, 0.5, 0.0])


def test_bleu_brevity_penalty_uses_closest_reference() -> None:
    # Hypothesis of 2 words; closest reference has 3 words -> penalty exp(1 - 3/2).
    scores = corpus_bleu(["red ball"], [["a red ball", "a big red ball on the mat"]], max_n=2)
    assert scores == pytest.approx([math.exp(1 - 3 / 2)] * 2)


def test_perfect_captions() -> None:
    references = [["a red ball on the mat"], ["the small dog runs near a table"], ["big blue cat sits under it"]]
    hypotheses = [group[0] for group in references]
    assert corpus_bleu(hypotheses, references) == pytest.approx([1.0] * 4)
    result = cider_d(hypotheses, references)
    assert result.per_caption == pytest.approx([10.0] * 3)


def test_cider_length_penalty_hand_computed() -> None:
    # Two images whose captions share nothing, so every n-gram has the same idf and the cosine is
    # 1 for n = 1..3 and 0 for n = 4 (the 3-word hypothesis has no 4-gram); the 4-word reference is
    # one word longer, so each order is scaled by exp(-1 / 72). Image 2 is a perfect 3-word match.
    result = cider_d(["red ball mat", "dog runs fast"], [["red ball mat mat"], ["dog runs fast"]])
    unigram = (1 * 1 + 1 * 1 + 1 * 2) / (3**0.5 * 6**0.5)  # clipped min(1, 2) * 2 for "mat"
    bigram_trigram = (2 / (2**0.5 * 3**0.5)) + (1 / (1 * 2**0.5))
    expected_first = 10 * (unigram + bigram_trigram) * math.exp(-1 / 72) / 4
    assert result.per_caption == pytest.approx([expected_first, 10 * 3 / 4])


def test_tokenize_caption() -> None:
    assert tokenize_caption("A dog's T-shirt, on the MAT!") == ["a", "dogs", "t", "shirt", "on", "the", "mat"]


def test_bad_inputs_raise_input_error() -> None:
    with pytest.raises(InputError):
        corpus_bleu(["a"], [])
    with pytest.raises(InputError):
        cider_d(["a"], [[]])
    with pytest.raises(InputError):
        cider_d(["a"], ["a cat"])
    with pytest.raises(InputError):
        corpus_bleu([], [])
