"""Video metrics on fixtures checked by hand: QA per type, temporal IoU / mIoU / R@1, CIDEr-D, a folder scored whole."""

from __future__ import annotations

import pytest

from vlmkit.errors import InputError
from vlmkit.evaluation.video import (
    caption_scores,
    grounding_scores,
    prior_predictions,
    score_clips,
    temporal_iou,
    video_qa_accuracy,
)


def test_temporal_iou_by_hand() -> None:
    assert temporal_iou((1.0, 3.0), (2.0, 4.0)) == pytest.approx(1 / 3)  # overlap 1 s of a 3 s union
    assert temporal_iou((0.0, 2.0), (1.0, 2.0)) == 0.5
    assert temporal_iou((0.0, 1.0), (2.0, 3.0)) == 0.0
    assert temporal_iou((0.5, 1.5), (0.5, 1.5)) == 1.0
    assert temporal_iou((1.0, 1.0), (1.0, 1.0)) == 1.0


def test_miou_and_recall_at_thresholds() -> None:
    predictions = [(1.0, 3.0), (0.0, 2.0), (0.5, 1.5), None]
    targets = [(2.0, 4.0), (1.0, 2.0), (0.5, 1.5), (0.0, 1.0)]
    result = grounding_scores(predictions, targets)
    assert result.ious == pytest.approx([1 / 3, 0.5, 1.0, 0.0])
    assert result.miou == pytest.approx((1 / 3 + 0.5 + 1.0) / 4)
    assert result.recall == {0.3: 0.75, 0.5: 0.5, 0.7: 0.25}  # IoU exactly 0.5 counts at 0.5


def test_bad_moments_are_named() -> None:
    with pytest.raises(InputError, match=r"predictions\[0\]: expected 0 <= start <= end"):
        grounding_scores([(2.0, 1.0)], [(0.0, 1.0)])
    with pytest.raises(InputError, match=r"targets\[0\]: expected \[start, end\]"):
        grounding_scores([(0.0, 1.0)], [("soon",)])  # type: ignore[list-item]
    with pytest.raises(InputError, match="one prediction per query"):
        grounding_scores([], [(0.0, 1.0)])


def test_qa_accuracy_per_type() -> None:
    result = video_qa_accuracy(
        ["Left.", "before", "two", "3", "end"],
        ["left", "after", "2", "2", "end"],
        ["direction", "order", "count", "count", "when"],
    )
    assert result.accuracy == pytest.approx(3 / 5)  # "Left." and "two" normalise to the answers
    assert result.per_type == {"direction": 1.0, "order": 0.0, "count": 0.5, "when": 1.0}


def test_cider_of_exact_and_swapped_captions() -> None:
    references = [["a red circle moves left"], ["the blue star appears"]]  # no word in common
    exact = caption_scores(["a red circle moves left", "the blue star appears"], references)
    assert exact.cider == pytest.approx(10.0) and exact.bleu4 == pytest.approx(1.0)
    swapped = caption_scores(["the blue star appears", "a red circle moves left"], references)
    assert swapped.cider == 0.0 and swapped.per_clip == [0.0, 0.0]


def test_a_folder_scored_whole() -> None:
    records = [
        {
            "captions": ["a red circle moves left"],
            "qa": [{"question": "which way does the red circle move?", "answer": "left", "type": "direction"}],
            "grounding": [{"query": "the red circle moves left", "start": 0.0, "end": 1.0}],
        },
        {
            "captions": ["the blue star appears"],
            "qa": [{"question": "how many objects appear?", "answer": "1", "type": "count"}],
            "grounding": [{"query": "the blue star appears", "start": 1.0, "end": 2.0}],
        },
    ]
    predictions = [
        {"qa": ["left"], "grounding": [[0.0, 0.5]], "caption": "a red circle moves left"},
        {"qa": ["2"], "grounding": [None], "caption": "the blue star appears"},
    ]
    result = score_clips(records, predictions)
    assert result["qa"] == {"accuracy": 0.5, "count": 2, "per_type": {"direction": 1.0, "count": 0.0}}
    assert result["grounding"] == {"miou": 0.25, "count": 2, "r1@0.3": 0.5, "r1@0.5": 0.5, "r1@0.7": 0.0}
    assert result["caption"]["cider"] == pytest.approx(10.0)
    with pytest.raises(InputError, match=r"predictions\[1\].qa: expected 1 items, got 2"):
        score_clips(records, [predictions[0], {"qa": ["1", "2"]}])


def test_prior_predictions_by_hand() -> None:
    def record(qa: list[tuple[str, str, str]], moments: list[tuple[float, float]], caption: str) -> dict:
        return {
            "captions": [caption],
            "qa": [{"question": q, "answer": a, "type": t} for q, a, t in qa],
            "grounding": [{"query": "x", "start": s, "end": e} for s, e in moments],
        }

    train = [
        record([("how many objects appear?", "0", "count"), ("which way?", "left", "direction")], [(0.0, 1.0)], "a"),
        record([("how many objects appear?", "0", "count")], [(1.0, 2.0)], "b"),
        record([("how many objects appear?", "1", "count"), ("which way?", "up", "direction")], [], "b"),
        record([("how many objects move?", "1", "count")], [], "c"),
    ]
    test = [
        record([("how many objects appear?", "1", "count"), ("how many things happen?", "2", "count")], [(0, 2)], "z")
    ]
    (prediction,) = prior_predictions(train, test)
    # the question's own commonest answer ("0"), else its type's ("0": three of the five count answers)
    assert prediction == {"qa": ["0", "0"], "grounding": [[0.5, 1.5]], "caption": "b"}
    result = score_clips(test, [prediction])
    assert result["qa"]["accuracy"] == 0.0 and result["grounding"]["miou"] == 0.5
