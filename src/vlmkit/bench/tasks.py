"""Benchmark tasks as small declarative specs, and the registry ``vlmkit bench --task NAME`` looks them up in.

A task names four things: how to read its file, how to ask each question, how to read the answer out of a
response, and how to score the answers. Adding one needs no harness code::

    from vlmkit.bench import Task, register, read_tsv
    from vlmkit.bench.tasks import short_answer_prompt
    from vlmkit.bench.scoring import vqa_metrics

    register(Task("myvqa", read_tsv, short_answer_prompt, metric=vqa_metrics))

Prompts for vlmkit's own models are the ones its recipes train with (``processing.chat``): an image placeholder,
then the question; multiple choice is ``multiple_choice_prompt`` (the layout ``vlmkit eval`` asks in), after
MMBench's ``Hint:`` line when the row has one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vlmkit.bench import formats, scoring
from vlmkit.bench.formats import Image, RecordFields, Sample, read_mmmu, read_records, read_tsv
from vlmkit.bench.mmmu import mmmu_correct, mmmu_prompt, parse_multiple_choice
from vlmkit.errors import ConfigError, InputError
from vlmkit.evaluation.circular import MultipleChoice, circular_variants
from vlmkit.processing.chat import IMAGE_TOKEN, LETTERS, multiple_choice_prompt

Prompt = tuple[str, tuple[Image, ...]]  # the user turn (IMAGE_TOKEN where each image goes) and its images
SHORT_ANSWER = "Answer the question using a single word or phrase."  # LLaVA-1.5's instruction for short answers


def _verbatim(sample: Sample, response: str) -> str:
    return response.strip()


def _unchanged(samples: list[Sample]) -> list[Sample]:
    return samples


@dataclass(frozen=True)
class Task:
    """One benchmark: ``read`` a file into samples, ``prompt`` each, ``extract`` the answer from each response,
    and ``metric`` the extracted answers (a dict with ``accuracy``; ``headline`` names the figure that leads).

    ``expand`` turns the file's samples into the ones asked (MMBench's rotations when the file has none);
    ``max_new_tokens`` bounds each response.
    """

    name: str
    read: Callable[[Path], list[Sample]]
    prompt: Callable[[Sample], Prompt]
    extract: Callable[[Sample, str], str] = _verbatim
    metric: Callable[[Sequence[Sample], Sequence[str]], dict[str, float]] = scoring.vqa_metrics
    headline: str = "accuracy"
    max_new_tokens: int = 16
    expand: Callable[[list[Sample]], list[Sample]] = _unchanged
    description: str = ""


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add ``task`` to the registry (a task of the same name is replaced)."""
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"--task: {name!r} is not a benchmark task; known: {', '.join(sorted(TASKS))}") from None


def with_images(text: str, images: tuple[Image, ...]) -> Prompt:
    """``text`` after one placeholder line per image, unless it places them itself."""
    return (text if IMAGE_TOKEN in text or not images else IMAGE_TOKEN * len(images) + "\n" + text), images


def question_prompt(sample: Sample) -> Prompt:
    """The question as it is (MME and OCRBench questions carry their own instructions)."""
    return with_images(sample.question, sample.images)


def short_answer_prompt(sample: Sample) -> Prompt:
    return with_images(f"{sample.question}\n{SHORT_ANSWER}", sample.images)


def choice_prompt(sample: Sample) -> Prompt:
    hint = f"Hint: {sample.hint}\n" if sample.hint else ""
    return with_images(hint + multiple_choice_prompt(sample.question, sample.choices), sample.images)


def circular_copies(samples: list[Sample]) -> list[Sample]:
    """MMBench's rotations, as VLMEvalKit's files carry them (copy ``k`` at ``index + k * 1e6``), made here for a
    file that has none (an export such as ``vlmkit data mmbench``); a file that has them is used as it is."""
    if any(not s.index.isdigit() for s in samples):
        bad = next(s for s in samples if not s.index.isdigit())
        raise InputError(f"index {bad.index!r}: MMBench indices are integers (circular copies add k * 1e6)")
    if any(int(s.index) >= scoring.ROTATION for s in samples):
        return samples
    copies = []
    for sample in samples:
        if not sample.choices:
            raise InputError(f"index {sample.index}: an MMBench question needs its options in columns A, B, ...")
        question = MultipleChoice(sample.index, sample.question, sample.choices, LETTERS.index(sample.answers[0]))
        for variant in circular_variants(question):
            copies.append(
                dataclasses.replace(
                    sample,
                    index=str(int(sample.index) + variant.rotation * scoring.ROTATION),
                    choices=variant.choices,
                    answers=(variant.answer_letter,),
                )
            )
    return copies


def tsv_or_json(fields: RecordFields) -> Callable[[Path], list[Sample]]:
    """A reader of the benchmark's VLMEvalKit TSV (``.tsv``) or of its own JSON file, read by ``fields``."""

    def read(path: Path) -> list[Sample]:
        return read_tsv(path) if path.suffix == ".tsv" else read_records(path, fields)

    return read


def _read_mmmu(path: Path) -> list[Sample]:
    return read_tsv(path) if path.suffix == ".tsv" else read_mmmu(path)


def _mmmu_extract(sample: Sample, response: str) -> str:
    return parse_multiple_choice(response, sample.choices, seed=sample.index) if sample.choices else response.strip()


def _mmmu_metric(samples: Sequence[Sample], responses: Sequence[str]) -> dict[str, float]:
    hits = [float(mmmu_correct(s, r)) for s, r in zip(samples, responses, strict=True)]
    return {"accuracy": sum(hits) / len(hits) if hits else 0.0}


def _choice_task(name: str, description: str, **spec: object) -> Task:
    settings: dict = {"extract": scoring.option_letter, "metric": scoring.letter_accuracy, "max_new_tokens": 8}
    return Task(name, read_tsv, choice_prompt, **{**settings, **spec}, description=description)


for _task in (
    _choice_task(
        "mmbench",
        "MMBench (VLMEvalKit TSV): CircularEval over option rotations",
        metric=scoring.circular_accuracy,
        headline="circular_accuracy",
        expand=circular_copies,
    ),
    _choice_task("scienceqa", "ScienceQA-IMG (VLMEvalKit TSV): option letter accuracy"),
    _choice_task("ai2d", "AI2D (VLMEvalKit TSV): option letter accuracy"),
    Task(
        "mmmu",
        _read_mmmu,
        mmmu_prompt,
        _mmmu_extract,
        _mmmu_metric,
        max_new_tokens=32,
        description="MMMU (records or TSV): MMMU's own answer parsing",
    ),
    Task(
        "pope",
        tsv_or_json(formats.POPE_FIELDS),
        short_answer_prompt,
        scoring.pope_label,
        scoring.pope_metrics,
        description="POPE (TSV or its JSONL): yes/no accuracy, F1, yes-ratio",
    ),
    Task(
        "mme",
        read_tsv,
        question_prompt,
        scoring.mme_label,
        scoring.mme_metrics,
        headline="score",
        description="MME (VLMEvalKit TSV): acc and acc+ per subtask",
    ),
    Task(
        "ocrbench",
        read_tsv,
        question_prompt,
        metric=scoring.ocrbench_metrics,
        headline="score",
        max_new_tokens=32,
        description="OCRBench (VLMEvalKit TSV): a gold answer contained in the response",
    ),
    Task(
        "textvqa",
        tsv_or_json(formats.TEXTVQA_FIELDS),
        short_answer_prompt,
        description="TextVQA (TSV or its JSON): VQA accuracy",
    ),
    Task(
        "docvqa",
        tsv_or_json(formats.DOCVQA_FIELDS),
        short_answer_prompt,
        metric=scoring.anls_metrics,
        headline="anls",
        description="DocVQA (TSV or its JSON): ANLS",
    ),
    Task(
        "chartqa",
        tsv_or_json(formats.CHARTQA_FIELDS),
        short_answer_prompt,
        metric=scoring.relaxed_metrics,
        description="ChartQA (TSV or its JSON): relaxed accuracy (5% numeric tolerance)",
    ),
):
    register(_task)
