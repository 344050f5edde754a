"""Document questions (DocVQA style) with and without the page's text in the prompt, scored by ANLS.

Each question is asked twice: as plain VQA (``<image>`` then the question) and OCR-augmented (``<image>``, the
page's text lines in reading order, then the question; ``processing.chat.with_page_text``). The page text is
what an OCR engine reads from the page image (``tasks.documents.read_image``), so the figure is the whole
pipeline's, not that of perfect text; ``text_source="truth"`` uses the record's ground truth instead, which
separates reading errors from answering errors.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

from vlmkit.data.pages import page_lines
from vlmkit.data.records import Record, RecordDataset
from vlmkit.documents.engines import DEFAULT_ENGINE
from vlmkit.evaluation.documents import anls_score
from vlmkit.processing.images import load_image
from vlmkit.progress import progress
from vlmkit.tasks.documents import page_text_prompt, read_image

MAX_ANSWER_TOKENS = 24


def _mean_by_type(scores: list[float], types: list[str]) -> dict[str, float]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for score, kind in zip(scores, types, strict=True):
        grouped[kind].append(score)
    return {kind: sum(values) / len(values) for kind, values in sorted(grouped.items())}


def docvqa_scores(
    model: Any,
    dataset: RecordDataset,
    records: list[Record],
    batch_size: int,
    text_source: Literal["ocr", "truth"] = "ocr",
    engine: str = DEFAULT_ENGINE,
) -> dict[str, Any]:
    from vlmkit.evaluation.generative import answer_all

    pages = [r for r in records if "document" in r.extra and r.qa]
    if not pages:
        return {"skipped": "no record has a document with questions"}
    questions, images, answers, types, prompts = [], [], [], [], []
    for record in progress(pages, desc=f"page text ({text_source})", unit="page", leave=False):
        path = dataset.image_path(record)
        if text_source == "truth":
            lines = page_lines(record)
        else:
            lines = [line.text for line in read_image(load_image(path), engine=engine).lines]
        for qa in record.qa or []:
            questions.append(qa.question)
            prompts.append(page_text_prompt(model, qa.question, lines, MAX_ANSWER_TOKENS))
            images.append(path)
            answers.append([qa.answer])
            types.append(qa.type or "other")
    with_text = answer_all(model, prompts, images, batch_size, max_new_tokens=MAX_ANSWER_TOKENS)
    without = answer_all(model, questions, images, batch_size, max_new_tokens=MAX_ANSWER_TOKENS)
    scored = [anls_score(p, a) for p, a in zip(with_text, answers, strict=True)]
    plain = [anls_score(p, a) for p, a in zip(without, answers, strict=True)]
    exact = [float(p.strip().casefold() == a[0].strip().casefold()) for p, a in zip(with_text, answers, strict=True)]
    return {
        "anls": sum(scored) / len(scored),
        "exact_match": sum(exact) / len(exact),
        "anls_without_page_text": sum(plain) / len(plain),
        "questions": len(scored),
        "text_source": text_source if text_source == "truth" else f"ocr:{engine}",
        "per_type": _mean_by_type(scored, types),
        "examples": [
            {"question": q, "answer": a[0], "prediction": p, "without_page_text": w}
            for q, a, p, w in list(zip(questions, answers, with_text, without, strict=True))[:20]
        ],
    }
