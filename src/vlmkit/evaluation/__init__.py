"""Model-agnostic evaluation metrics: each takes scores or answers and returns numbers.

Protocols that run a model over a benchmark build on these; the metrics themselves never import a
model, so they can score cached outputs or another library's predictions just as well.
"""

from vlmkit.evaluation.boxes import (
    CocoAP,
    ImageBoxes,
    PrecisionRecall,
    box_iou,
    coco_average_precision,
    mask_iou,
    precision_recall,
)
from vlmkit.evaluation.captions import CiderResult, cider_d, corpus_bleu, tokenize_caption
from vlmkit.evaluation.circular import (
    CircularResult,
    CircularVariant,
    MultipleChoice,
    circular_variants,
    extract_choice,
    score_circular,
)
from vlmkit.evaluation.classification import topk_accuracy
from vlmkit.evaluation.retrieval import (
    DirectionResult,
    ImageTextRetrieval,
    best_positive_ranks,
    image_text_retrieval,
    recall_at_k,
)
from vlmkit.evaluation.vqa import VqaResult, normalize_answer, vqa_accuracy, vqa_score

__all__ = [
    "CiderResult",
    "CircularResult",
    "CircularVariant",
    "CocoAP",
    "DirectionResult",
    "ImageBoxes",
    "ImageTextRetrieval",
    "MultipleChoice",
    "PrecisionRecall",
    "VqaResult",
    "best_positive_ranks",
    "box_iou",
    "cider_d",
    "circular_variants",
    "coco_average_precision",
    "corpus_bleu",
    "extract_choice",
    "image_text_retrieval",
    "mask_iou",
    "normalize_answer",
    "precision_recall",
    "recall_at_k",
    "score_circular",
    "tokenize_caption",
    "topk_accuracy",
    "vqa_accuracy",
    "vqa_score",
]
