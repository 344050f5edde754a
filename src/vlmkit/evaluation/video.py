"""Video metrics: question answering per type, temporal grounding, captions; and a clip folder scored whole.

- **Video QA**: exact match after VQAv2 normalisation (``evaluation.vqa`` with one reference answer), overall
  and per question type (VideoWorld's direction, order, count, when, change).
- **Temporal grounding** (as Charades-STA and ActivityNet Captions report it): the temporal IoU of the
  predicted moment ``[s, e]`` with the true one, ``|intersection| / |union|`` in seconds; **mIoU** is its mean
  over queries, **R@1 at IoU t** the fraction of queries whose one (top-1) prediction has IoU >= t (t = 0.5
  is the headline; 0.3 and 0.7 are reported too). A query with no readable prediction scores IoU 0.
- **Captions**: CIDEr-D and BLEU-4 (``evaluation.captions``), one generated caption per clip against the
  clip's reference captions, idf from the references of the clips scored (so score a whole split at once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vlmkit.errors import InputError
from vlmkit.evaluation.captions import cider_d, corpus_bleu
from vlmkit.evaluation.vqa import VqaResult, vqa_accuracy

Moment = tuple[float, float]
THRESHOLDS = (0.3, 0.5, 0.7)


def _moment(value: Any, name: str) -> Moment:
    try:
        start, end = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected [start, end] in seconds, got {value!r}") from None
    if not 0 <= start <= end:
        raise InputError(f"{name}: expected 0 <= start <= end, got [{start}, {end}]")
    return start, end


def temporal_iou(a: Moment, b: Moment) -> float:
    """Intersection over union of two moments, in [0, 1]; two identical instants score 1."""
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union == 0:
        return 1.0
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0])) / union


@dataclass(frozen=True)
class GroundingResult:
    """Mean IoU, R@1 at each IoU threshold, and each query's IoU (input order)."""

    miou: float
    recall: dict[float, float]
    count: int
    ious: list[float]


def grounding_scores(
    predictions: Sequence[Moment | None], targets: Sequence[Moment], thresholds: Sequence[float] = THRESHOLDS
) -> GroundingResult:
    """Score one predicted moment (or None: unreadable) per query against its true moment."""
    if len(predictions) != len(targets):
        raise InputError(f"moments: expected one prediction per query ({len(targets)}), got {len(predictions)}")
    if not targets:
        raise InputError("moments: no queries to score")
    ious = []
    for index, (prediction, target) in enumerate(zip(predictions, targets, strict=True)):
        truth = _moment(target, f"targets[{index}]")
        ious.append(0.0 if prediction is None else temporal_iou(_moment(prediction, f"predictions[{index}]"), truth))
    recall = {t: sum(iou >= t for iou in ious) / len(ious) for t in thresholds}
    return GroundingResult(sum(ious) / len(ious), recall, len(ious), ious)


def video_qa_accuracy(
    predictions: Sequence[str], answers: Sequence[str], question_types: Sequence[str] | None = None
) -> VqaResult:
    """Exact-match accuracy (after VQA normalisation) overall and per type; one true answer per question."""
    if any(not isinstance(answer, str) for answer in answers):
        raise InputError("answers: expected one answer string per question")
    return vqa_accuracy(predictions, [[answer] for answer in answers], question_types)


@dataclass(frozen=True)
class CaptionScores:
    """Corpus CIDEr-D (and each clip's), and corpus BLEU-4."""

    cider: float
    bleu4: float
    per_clip: list[float]


def caption_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> CaptionScores:
    cider = cider_d(hypotheses, references)
    return CaptionScores(cider.score, corpus_bleu(hypotheses, references)[3], cider.per_caption)


def score_clips(records: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A clip folder's ``records`` against one prediction per record, in the same order:
    ``{"qa": [answer per question], "grounding": [[start, end] or None per query], "caption": text}``,
    each key optional. Returns the metrics of whatever was predicted."""
    if len(records) != len(predictions):
        raise InputError(f"predictions: expected one per clip ({len(records)}), got {len(predictions)}")
    answers, truths, types, moments, targets, hyps, refs = [], [], [], [], [], [], []
    for index, (record, prediction) in enumerate(zip(records, predictions, strict=True)):
        for field, gold in (("qa", record.get("qa", [])), ("grounding", record.get("grounding", []))):
            if field in prediction and len(prediction[field]) != len(gold):
                raise InputError(
                    f"predictions[{index}].{field}: expected {len(gold)} items, got {len(prediction[field])}"
                )
        if "qa" in prediction:
            answers += prediction["qa"]
            truths += [qa["answer"] for qa in record["qa"]]
            types += [qa.get("type", "all") for qa in record["qa"]]
        if "grounding" in prediction:
            moments += prediction["grounding"]
            targets += [(item["start"], item["end"]) for item in record["grounding"]]
        if "caption" in prediction:
            hyps.append(prediction["caption"])
            refs.append(record["captions"])
    result: dict[str, Any] = {}
    if answers:
        qa = video_qa_accuracy(answers, truths, types)
        result["qa"] = {"accuracy": qa.accuracy, "count": qa.count, "per_type": qa.per_type}
    if targets:
        grounding = grounding_scores(moments, targets)
        recall = {f"r1@{t:g}": value for t, value in grounding.recall.items()}
        result["grounding"] = {"miou": grounding.miou, "count": grounding.count, **recall}
    if hyps:
        captions = caption_scores(hyps, refs)
        result["caption"] = {"cider": captions.cider, "bleu4": captions.bleu4, "count": len(hyps)}
    return result


def prior_predictions(train: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The floor a model must clear, in ``score_clips``'s format: for each question the commonest training
    answer of its question text with the numbers and names left in (falling back to its type's commonest
    answer), for each query the mean training moment, for each clip the commonest training caption. A model
    that only learns the answer statistics of the training split scores about this."""
    by_question = Counter((qa["question"], qa["answer"]) for record in train for qa in record.get("qa", []))
    by_type = Counter((qa.get("type", "all"), qa["answer"]) for record in train for qa in record.get("qa", []))
    best_question: dict[str, str] = {}
    for (question, answer), _ in by_question.most_common():
        best_question.setdefault(question, answer)
    best_type: dict[str, str] = {}
    for (kind, answer), _ in by_type.most_common():
        best_type.setdefault(kind, answer)
    moments = [(item["start"], item["end"]) for record in train for item in record.get("grounding", [])]
    if not moments or not best_type:
        raise InputError("prior: the training records hold no questions or no grounding queries")
    mean = (sum(m[0] for m in moments) / len(moments), sum(m[1] for m in moments) / len(moments))
    caption = Counter(c for record in train for c in record.get("captions", [])[:1]).most_common(1)[0][0]
    return [
        {
            "qa": [best_question.get(qa["question"], best_type.get(qa.get("type", "all"), "")) for qa in record["qa"]],
            "grounding": [list(mean) for _ in record.get("grounding", [])],
            "caption": caption,
        }
        for record in records
    ]
