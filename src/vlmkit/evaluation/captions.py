"""Caption metrics: corpus BLEU-1..4 and CIDEr-D, in pure Python, matching pycocoevalcap.

Tokenisation (:func:`tokenize_caption`): lower-case, delete apostrophes (``dog's`` -> ``dogs``),
turn every other ASCII punctuation mark into a space, split on whitespace. This stands in for the
Java PTB tokenizer of coco-caption, so absolute numbers can differ slightly from papers that used
it; pass ``tokenize=False`` to score text that is already tokenised (space-separated).

**BLEU** (Papineni et al.), corpus level as pycocoevalcap's ``Bleu``: for each caption the reference
length is the "closest" one (the reference length nearest the hypothesis length, the shorter on a
tie); clipped n-gram matches (each n-gram counted at most as often as in the reference that has it
most) and hypothesis n-gram counts are summed over the corpus; BLEU-n is the geometric mean of the
corpus precisions of orders 1..n, times the brevity penalty ``exp(1 - R/H)`` when the total
hypothesis length H is below the total reference length R. pycocoevalcap adds 1e-15 / 1e-9 to
numerators / denominators; that changes nothing visible except that a corpus with no match of some
order scores exactly 0 here and a tiny positive number (~1e-4 for BLEU-4) there.

**CIDEr-D** (Vedantam et al.), as pycocoevalcap's ``Cider`` (which implements the -D variant): each
sentence becomes, for n = 1..4, a vector of n-gram ``tf * idf`` with
``idf(g) = log(#images) - log(max(1, #images whose references contain g))``, the document
frequencies being taken from the references of the corpus being scored. Against one reference the
order-n similarity is ``sum_g min(h_g, r_g) * r_g / (|h| |r|)`` (the hypothesis weight clipped by
the reference's), times the length penalty ``exp(-(len_h - len_r)^2 / (2 sigma^2))`` with
sigma = 6. A caption's score is 10 x the mean over n of the mean over its references; the corpus
score is the mean over captions. The score depends on the whole corpus through idf, so always
score a full evaluation set at once.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vlmkit.errors import InputError

_PUNCTUATION_TO_SPACE = str.maketrans({**{c: " " for c in string.punctuation}, "'": None})

NGram = tuple[str, ...]


def tokenize_caption(text: str) -> list[str]:
    """Lower-cased words of ``text`` with punctuation removed (apostrophes deleted, others -> space)."""
    return text.lower().translate(_PUNCTUATION_TO_SPACE).split()


def _ngrams(words: Sequence[str], max_n: int) -> Counter[NGram]:
    return Counter(tuple(words[i : i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1))


def _prepare(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], tokenize: bool
) -> tuple[list[list[str]], list[list[list[str]]]]:
    if len(hypotheses) != len(references):
        raise InputError(
            f"references: expected one reference list per hypothesis ({len(hypotheses)}), got {len(references)}"
        )
    if not hypotheses:
        raise InputError("hypotheses: no captions to score")
    split = tokenize_caption if tokenize else str.split
    refs = []
    for index, group in enumerate(references):
        if isinstance(group, str) or not group:
            raise InputError(f"references[{index}]: expected a non-empty list of reference captions")
        refs.append([split(ref) for ref in group])
    return [split(hyp) for hyp in hypotheses], refs


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    max_n: int = 4,
    tokenize: bool = True,
) -> list[float]:
    """``[BLEU-1, ..., BLEU-max_n]`` of the corpus (one hypothesis and its references per item)."""
    hyps, refs = _prepare(hypotheses, references, tokenize)
    matches = [0] * max_n
    totals = [0] * max_n
    hyp_length = ref_length = 0
    for hyp, group in zip(hyps, refs, strict=True):
        hyp_length += len(hyp)
        ref_length += min((abs(len(ref) - len(hyp)), len(ref)) for ref in group)[1]
        max_ref_counts: Counter[NGram] = Counter()
        for ref in group:
            max_ref_counts |= _ngrams(ref, max_n)
        for gram, count in _ngrams(hyp, max_n).items():
            matches[len(gram) - 1] += min(count, max_ref_counts[gram])
        for n in range(max_n):
            totals[n] += max(0, len(hyp) - n)
    brevity = min(1.0, math.exp(1 - ref_length / hyp_length)) if hyp_length else 0.0
    scores = []
    log_precision_sum = 0.0
    for n in range(max_n):
        if matches[n] == 0:
            scores.extend([0.0] * (max_n - n))
            break
        log_precision_sum += math.log(matches[n] / totals[n])
        scores.append(brevity * math.exp(log_precision_sum / (n + 1)))
    return scores


@dataclass(frozen=True)
class CiderResult:
    """Corpus CIDEr-D and the score of each caption (same order as the input)."""

    score: float
    per_caption: list[float]


def _tfidf(
    counts: Counter[NGram], idf: dict[NGram, float], default_idf: float, max_n: int
) -> tuple[list[dict[NGram, float]], list[float]]:
    vectors: list[dict[NGram, float]] = [{} for _ in range(max_n)]
    for gram, count in counts.items():
        vectors[len(gram) - 1][gram] = count * idf.get(gram, default_idf)
    norms = [math.sqrt(sum(w * w for w in vector.values())) for vector in vectors]
    return vectors, norms


def cider_d(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    max_n: int = 4,
    sigma: float = 6.0,
    tokenize: bool = True,
) -> CiderResult:
    """CIDEr-D of the corpus, with document frequencies from its own references (see module docstring)."""
    hyps, refs = _prepare(hypotheses, references, tokenize)
    ref_counts = [[_ngrams(ref, max_n) for ref in group] for group in refs]
    document_frequency: Counter[NGram] = Counter()
    for group in ref_counts:
        document_frequency.update(set().union(*group))
    log_images = math.log(len(hyps))
    idf = {gram: log_images - math.log(df) for gram, df in document_frequency.items()}
    per_caption = []
    for hyp, group, group_counts in zip(hyps, refs, ref_counts, strict=True):
        hyp_vectors, hyp_norms = _tfidf(_ngrams(hyp, max_n), idf, log_images, max_n)
        total = 0.0
        for ref, counts in zip(group, group_counts, strict=True):
            ref_vectors, ref_norms = _tfidf(counts, idf, log_images, max_n)
            penalty = math.exp(-((len(hyp) - len(ref)) ** 2) / (2 * sigma**2))
            for n in range(max_n):
                if hyp_norms[n] == 0 or ref_norms[n] == 0:
                    continue
                ref_vector = ref_vectors[n]
                dot = sum(min(w, ref_vector.get(g, 0.0)) * ref_vector.get(g, 0.0) for g, w in hyp_vectors[n].items())
                total += dot / (hyp_norms[n] * ref_norms[n]) * penalty
        per_caption.append(10.0 * total / (max_n * len(group)))
    return CiderResult(score=sum(per_caption) / len(per_caption), per_caption=per_caption)
