"""Document tasks of ``vlmkit eval``: questions (DocVQA style, scored by ANLS), key-value field extraction
(field F1 and OCRBench's rule) and reading the page (``OCR_PROMPT``, scored by CER).

Questions are asked twice: as plain VQA (``<image>`` then the question) and OCR-augmented (``<image>``, the
page's text lines in reading order, then the question; ``processing.chat.with_page_text``). The page text is
what an OCR engine reads from the page image (``tasks.documents.read_image``), so the figure is the whole
pipeline's, not that of perfect text; ``text_source="truth"`` uses the record's ground truth instead, which
separates reading errors from answering errors. Each page is read once for all tasks (``PageTexts``).

Field extraction asks "What is the <field>?" for each of a record's ``fields`` (DocWorld's key-value ground
truth), OCR-augmented, the way the questions are asked: the answers, keyed by field, are scored as pairs
(``field_f1``), by ANLS, and by OCRBench's key-information rule (the gold value occurs in the answer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal

from vlmkit.data.pages import page_lines, page_text
from vlmkit.data.records import Record, RecordDataset
from vlmkit.documents.engines import DEFAULT_ENGINE
from vlmkit.evaluation.documents import EditCounts, anls_score, field_f1, ocrbench_correct
from vlmkit.processing.chat import OCR_PROMPT, with_image
from vlmkit.processing.images import load_image
from vlmkit.progress import progress
from vlmkit.tasks.chat import chat_encoder
from vlmkit.tasks.documents import page_text_prompt, read_image

MAX_ANSWER_TOKENS = 24
MAX_READING_TOKENS = 448  # a DocWorld page is 170-450 WordPiece tokens

TextSource = Literal["ocr", "truth"]


def _mean_by_type(scores: list[float], types: list[str]) -> dict[str, float]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for score, kind in zip(scores, types, strict=True):
        grouped[kind].append(score)
    return {kind: sum(values) / len(values) for kind, values in sorted(grouped.items())}


class PageTexts:
    """Each page's text lines, read once: by OCR from the image, or the record's ground truth."""

    def __init__(self, dataset: RecordDataset, text_source: TextSource = "ocr", engine: str = DEFAULT_ENGINE) -> None:
        self.dataset, self.text_source, self.engine = dataset, text_source, engine
        self._lines: dict[str, list[str]] = {}

    @property
    def name(self) -> str:
        return "truth" if self.text_source == "truth" else f"ocr:{self.engine}"

    def lines(self, record: Record) -> list[str]:
        if record.image not in self._lines:
            if self.text_source == "truth":
                self._lines[record.image] = page_lines(record)
            else:
                image = load_image(self.dataset.image_path(record))
                self._lines[record.image] = [line.text for line in read_image(image, engine=self.engine).lines]
        return self._lines[record.image]

    def read(self, records: list[Record]) -> None:
        """Read every page now, with a progress bar."""
        for record in progress(records, desc=f"page text ({self.name})", unit="page", leave=False):
            self.lines(record)


def docvqa_scores(
    model: Any,
    dataset: RecordDataset,
    records: list[Record],
    batch_size: int,
    text_source: TextSource = "ocr",
    engine: str = DEFAULT_ENGINE,
    texts: PageTexts | None = None,
) -> dict[str, Any]:
    from vlmkit.evaluation.generative import answer_all

    pages = [r for r in records if "document" in r.extra and r.qa]
    if not pages:
        return {"skipped": "no record has a document with questions"}
    texts = texts or PageTexts(dataset, text_source, engine)
    texts.read(pages)
    questions, images, answers, types, prompts = [], [], [], [], []
    for record in pages:
        for qa in record.qa or []:
            questions.append(qa.question)
            prompts.append(page_text_prompt(model, qa.question, texts.lines(record), MAX_ANSWER_TOKENS))
            images.append(dataset.image_path(record))
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
        "text_source": texts.name,
        "per_type": _mean_by_type(scored, types),
        "examples": [
            {"question": q, "answer": a[0], "prediction": p, "without_page_text": w}
            for q, a, p, w in list(zip(questions, answers, with_text, without, strict=True))[:20]
        ],
    }


def field_question(field: str) -> str:
    """The question that asks for one key-value field, in the DocWorld questions' wording."""
    return f"What is the {field}?"


def field_scores(
    model: Any, dataset: RecordDataset, records: list[Record], batch_size: int, texts: PageTexts
) -> dict[str, Any]:
    """Key-value extraction: every field of every page asked for, OCR-augmented; an empty answer is no pair."""
    from vlmkit.evaluation.generative import answer_all

    pages = [r for r in records if "document" in r.extra and isinstance(r.extra.get("fields"), dict)]
    if not pages:
        return {"skipped": "no record has a document with fields"}
    texts.read(pages)
    keys, prompts, images = [], [], []
    for record in pages:
        for field in record.extra["fields"]:
            keys.append(field)
            prompts.append(page_text_prompt(model, field_question(field), texts.lines(record), MAX_ANSWER_TOKENS))
            images.append(dataset.image_path(record))
    answers = iter(answer_all(model, prompts, images, batch_size, max_new_tokens=MAX_ANSWER_TOKENS))
    predicted = [{field: next(answers) for field in record.extra["fields"]} for record in pages]
    gold = [{str(k): str(v) for k, v in record.extra["fields"].items()} for record in pages]
    pairs = [(mine[k], truth[k], k) for mine, truth in zip(predicted, gold, strict=True) for k in truth]
    return {
        **field_f1([{k: v for k, v in mine.items() if v.strip()} for mine in predicted], gold),
        "anls": sum(anls_score(p, [g]) for p, g, _ in pairs) / len(pairs),
        "ocrbench_accuracy": sum(ocrbench_correct(p, [g]) for p, g, _ in pairs) / len(pairs),
        "fields": len(pairs),
        "text_source": texts.name,
        "per_field_anls": _mean_by_type([anls_score(p, [g]) for p, g, _ in pairs], [k for _, _, k in pairs]),
        "examples": [{"field": k, "value": g, "prediction": p} for p, g, k in pairs[:20]],
    }


def vlm_reading_scores(model: Any, dataset: RecordDataset, records: list[Record], batch_size: int) -> dict[str, Any]:
    """The page read by the VLM itself (``OCR_PROMPT`` -> its text in reading order), against the ground truth:
    CER and WER micro-averaged over pages, case-sensitive and case-folded (an uncased tokenizer writes no
    capitals)."""
    from vlmkit.evaluation.generative import answer_all

    pages = [r for r in records if "document" in r.extra]
    if not pages:
        return {"skipped": "no record has a document"}
    prompt = [{"role": "user", "content": with_image(OCR_PROMPT)}]
    used = len(chat_encoder(model).encode(prompt, add_generation_prompt=True).input_ids)
    room = min(MAX_READING_TOKENS, model.decoder.config.max_positions - used)
    read = answer_all(model, [OCR_PROMPT] * len(pages), [dataset.image_path(r) for r in pages], batch_size, room)
    truths = [page_text(record) for record in pages]
    exact = EditCounts.summed([EditCounts.of(p, t) for p, t in zip(read, truths, strict=True)])
    folded = EditCounts.summed([EditCounts.of(p.casefold(), t.casefold()) for p, t in zip(read, truths, strict=True)])
    return {
        "cer": exact.cer,
        "wer": exact.wer,
        "cer_casefold": folded.cer,
        "wer_casefold": folded.wer,
        "pages": len(pages),
        "examples": [{"truth": t[:200], "read": p[:200]} for t, p in list(zip(truths, read, strict=True))[:5]],
    }


def document_tasks(
    model: Any, dataset: RecordDataset, records: list[Record], batch_size: int
) -> dict[str, Callable[[], dict[str, Any]]]:
    """``vlmkit eval``'s tasks for pages with known text; the OCR'd page text is shared between them."""
    texts = PageTexts(dataset)
    return {
        "docvqa": lambda: docvqa_scores(model, dataset, records, batch_size, texts=texts),
        "fields": lambda: field_scores(model, dataset, records, batch_size, texts),
        "reading": lambda: vlm_reading_scores(model, dataset, records, batch_size),
    }
