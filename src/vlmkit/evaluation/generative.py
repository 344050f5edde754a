"""Protocols for generative VLMs: open-ended VQA, multiple choice with CircularEval, captioning, and
how much the model relies on its image.

Every task generates greedily, batched, from the same prompts vlmkit's recipes train with, all
from ``vlmkit.processing.chat``: ``<image>`` then the question (VQA), the question with lettered
options and an instruction (multiple choice, ``multiple_choice_prompt``), or ``CAPTION_PROMPT``
(captioning). Captions are scored with CIDEr-D and BLEU-4 against the record's captions and, where
the dataset names its vocabulary (ShapesWorld), with an exact check of the objects they mention
against the scene.

``image_reliance`` scores the reference captions teacher-forced, once with each record's own image and
once with the next record's image. A model that writes from its image finds its captions far more likely
with the right picture; when the two losses are close it is writing a caption prior, and no amount of
answer-level scoring says that as directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

from vlmkit.data.records import Record, RecordDataset
from vlmkit.data.shapesworld import vocabulary as shapesworld_vocabulary
from vlmkit.evaluation.captions import cider_d, corpus_bleu
from vlmkit.evaluation.circular import MultipleChoice, circular_variants, score_circular
from vlmkit.evaluation.vqa import vqa_accuracy
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import CAPTION_PROMPT, IGNORE_INDEX, pad_right, with_image
from vlmkit.processing.images import ImageSource
from vlmkit.processing.locations import has_location_tokens
from vlmkit.tasks.chat import answer_images, chat_encoder
from vlmkit.tasks.image_prompts import pixels_of
from vlmkit.tasks.segment import MaskCodec


def answer_all(model, prompts: Sequence[str], images: Sequence[Any], batch_size: int, max_new_tokens: int) -> list[str]:
    """Greedy answers to single-turn ``<image>`` prompts, ``batch_size`` at a time."""
    config = GenerationConfig(max_new_tokens=max_new_tokens)
    return [answer.strip() for answer in answer_images(model, prompts, images, config, batch_size)]


def caption_loss_with_shuffled_images(
    model, images: Sequence[ImageSource], captions: Sequence[str], batch_size: int
) -> dict[str, float]:
    """Mean caption loss (nats per token) with each image, and with image ``i + 1`` in place of image ``i``."""
    if len(images) < 2:
        raise ValueError("comparing against another record's image needs at least two images")
    encoder = chat_encoder(model)
    rows = []
    for caption in captions:
        messages = [
            {"role": "user", "content": with_image(CAPTION_PROMPT)},
            {"role": "assistant", "content": caption},
        ]
        encoded = encoder.encode(messages)
        rows.append((encoded.input_ids, encoded.labels))
    totals, tokens = [0.0, 0.0], 0
    for start in range(0, len(rows), batch_size):
        ids, labels = pad_right(rows[start : start + batch_size], encoder.tokenizer.pad_id)
        ids, labels = ids.to(model.device), labels.to(model.device)
        count = int((labels[:, 1:] != IGNORE_INDEX).sum())
        for slot, offset in enumerate((0, 1)):
            chosen = [images[(i + offset) % len(images)] for i in range(start, start + len(ids))]
            with torch.no_grad():
                totals[slot] += model(ids, pixels_of(model, chosen), labels=labels).loss.item() * count
        tokens += count
    matched, shuffled = totals[0] / tokens, totals[1] / tokens
    return {"caption_loss": matched, "caption_loss_shuffled_images": shuffled, "image_gain": shuffled - matched}


def object_mentions(text: str, colors: Sequence[str], shapes: Sequence[str]) -> set[tuple[str, str]]:
    """(colour, shape) pairs named in ``text``: a shape word (or its plural) with a colour shortly before."""
    words = re.findall(r"[a-z]+", text.lower())
    found = set()
    for i, word in enumerate(words):
        shape = next((s for s in shapes if word in (s, s + "s", s + "es")), None)
        if shape is None:
            continue
        color = next((w for w in reversed(words[max(0, i - 3) : i]) if w in colors), None)
        if color is not None:
            found.add((color, shape))
    return found


def generative_tasks(
    model, dataset: RecordDataset, records: list[Record], batch_size: int, mask_tokenizer: MaskCodec | None = None
) -> dict[str, Callable[[], dict[str, Any]]]:
    def vqa() -> dict[str, Any]:
        items = [(r, qa) for r in records for qa in (r.qa or [])]
        if not items:
            return {"skipped": "no record has qa"}
        answers = answer_all(
            model,
            [qa.question for _, qa in items],
            [dataset.image_path(r) for r, _ in items],
            batch_size,
            max_new_tokens=8,
        )
        result = vqa_accuracy(answers, [[qa.answer] for _, qa in items], [qa.type or "other" for _, qa in items])
        return {
            "accuracy": result.accuracy,
            "per_type": result.per_type,
            "questions": result.count,
            "examples": [
                {"question": qa.question, "answer": qa.answer, "prediction": p}
                for (_, qa), p in list(zip(items, answers, strict=True))[:20]
            ],
        }

    def multiple_choice() -> dict[str, Any]:
        questions, images = [], {}
        for r_index, record in enumerate(records):
            for q_index, qa in enumerate(record.qa or []):
                if qa.choices and qa.answer in qa.choices:
                    qid = f"{r_index}/{q_index}"
                    questions.append(
                        MultipleChoice(
                            qid, qa.question, tuple(qa.choices), qa.choices.index(qa.answer), qa.type or "other"
                        )
                    )
                    images[qid] = dataset.image_path(record)
        if not questions:
            return {"skipped": "no question has choices"}
        variants = [v for q in questions for v in circular_variants(q)]
        responses = answer_all(
            model,
            [v.prompt() for v in variants],
            [images[v.question_id] for v in variants],
            batch_size,
            max_new_tokens=4,
        )
        result = score_circular(variants, responses)
        return {
            "circular_accuracy": result.circular_accuracy,
            "plain_accuracy": result.plain_accuracy,
            "per_category_circular": result.per_category_circular,
            "questions": result.num_questions,
            "unanswered_rate": result.unanswered_rate,
        }

    def captioning() -> dict[str, Any]:
        captioned = [r for r in records if r.captions]
        if not captioned:
            return {"skipped": "no record has captions"}
        predictions = answer_all(
            model,
            [CAPTION_PROMPT] * len(captioned),
            [dataset.image_path(r) for r in captioned],
            batch_size,
            max_new_tokens=48,
        )
        references = [list(r.captions or []) for r in captioned]
        result: dict[str, Any] = {
            "cider_d": cider_d(predictions, references).score,
            "bleu4": corpus_bleu(predictions, references)[3],
            "images": len(captioned),
        }
        vocabulary = shapesworld_vocabulary(dataset.root)
        if vocabulary:
            result.update(_object_check(predictions, captioned, *vocabulary))
        result["examples"] = [
            {"prediction": p, "reference": r[0]} for p, r in zip(predictions[:10], references, strict=False)
        ]
        return result

    def image_reliance() -> dict[str, Any]:
        captioned = [r for r in records if r.captions]
        if len(captioned) < 2:
            return {"skipped": "fewer than two records have captions"}
        return caption_loss_with_shuffled_images(
            model,
            [dataset.image_path(r) for r in captioned],
            [r.captions[0] for r in captioned],
            batch_size,  # type: ignore[index]
        )

    tasks = {
        "vqa": vqa,
        "multiple_choice": multiple_choice,
        "captioning": captioning,
        "image_reliance": image_reliance,
    }
    if any("document" in r.extra for r in records):  # pages with known text: questions, fields, reading
        from vlmkit.evaluation.docvqa import document_tasks

        tasks.update(document_tasks(model, dataset, records, batch_size))
    if has_location_tokens(model.tokenizer) and any(r.objects for r in records):  # boxes as <loc> tokens
        from vlmkit.evaluation.detection import grounding_tasks

        tasks.update(grounding_tasks(model, dataset, records, batch_size, mask_tokenizer))
    return tasks


def _object_check(
    predictions: list[str], records: list[Record], colors: list[str], shapes: list[str]
) -> dict[str, float]:
    """Precision: named objects that are in the scene. Recall: scene objects that are named."""
    named = correct = present = covered = 0
    exact = 0
    for text, record in zip(predictions, records, strict=True):
        mentioned = object_mentions(text, colors, shapes)
        scene = {(o.extra.get("color"), o.extra.get("shape")) for o in record.objects or []}
        named += len(mentioned)
        correct += len(mentioned & scene)
        present += len(scene)
        covered += len(scene & mentioned)
        exact += mentioned == scene
    return {
        "object_precision": correct / named if named else 0.0,
        "object_recall": covered / present if present else 0.0,
        "exact_object_set": exact / len(records) if records else 0.0,
    }
