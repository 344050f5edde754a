"""Benchmark files in their published layouts, read into ``Sample``s; local files only.

- **VLMEvalKit TSV** (``read_tsv``), the layout the Open VLM Leaderboard distributes MMBench, ScienceQA, AI2D,
  POPE, MME, OCRBench, TextVQA, DocVQA, ChartQA and MMMU in: a header row, then one question per row with
  ``index``, ``question``, ``answer`` and, by benchmark, ``hint``, option columns ``A`` to ``I``, ``category``,
  ``l2-category``, ``split``. ``image`` is the image file base64-encoded, or a Python list literal of several
  (``['iVBOR...', '/9j/...']``), or, as VLMEvalKit's ``ImageBaseDataset`` does to save space, a short string
  (64 characters or fewer) that is the ``index`` of another row holding the image itself (MME's second question
  about an image points at the first). An ``image_path`` column (paths relative to the TSV) may stand instead.
  ``answer`` holding a list literal (``['ten', '10']``) is several gold answers (TextVQA, DocVQA, OCRBench).
  MMBench's circular copies are ordinary rows whose index is ``index + k * 1_000_000`` with the options rotated.
- **MMMU records** (``read_mmmu``): a JSON list or JSONL file of the Hugging Face MMMU rows, ``id``, ``question``,
  ``options`` (a list, or the dataset's string form ``"['a', 'b']"``), ``answer``, ``question_type``
  (``multiple-choice`` | ``open``), ``subfield`` or ``category``, and ``image_1`` ... ``image_7`` as paths
  relative to the file (kept in that order). ``<image k>`` markers in the question and options say where each
  image goes.
- **The benchmarks' own JSON files** (``read_records`` with a ``RecordFields`` map): DocVQA, TextVQA, ChartQA and
  POPE as their authors publish them, images looked up relative to the file.

A malformed file fails with one ``InputError`` naming the file, the row and the field.
"""

from __future__ import annotations

import ast
import base64
import binascii
import csv
import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmkit.errors import InputError
from vlmkit.processing.chat import LETTERS

IMAGE_REFERENCE_MAX = 64  # VLMEvalKit: an image field this short is another row's index
OPTION_LETTERS = LETTERS[:9]  # VLMEvalKit's MCQ TSVs carry options A to I at most
MMMU_IMAGES = 7
IMAGE_MARKER = re.compile(r"<image (\d+)>")

Image = bytes | Path


@dataclass(frozen=True)
class Sample:
    """One benchmark question as the harness runs and scores it.

    ``index`` keys predictions (VLMEvalKit's ``index``, MMMU's ``id``). ``answers`` are the gold answers (an
    option letter for multiple choice). ``images`` are in prompt order; ``group`` ties rows that are scored
    together (an MMBench question's circular copies, MME's two questions about one image). ``fields`` keeps the
    other columns (``split``, ``l2-category``, ``question_type``, ...).
    """

    index: str
    question: str
    answers: tuple[str, ...]
    images: tuple[Image, ...] = ()
    choices: tuple[str, ...] = ()
    hint: str = ""
    category: str = ""
    group: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


def _fail(path: Path, row: int, name: str, problem: str) -> InputError:
    return InputError(f"{path}: row {row}: field {name!r}: {problem}")


def _literal_list(text: str) -> list[str] | None:
    """``"['a', 'b']"`` as a list of strings (VLMEvalKit writes lists so); None when ``text`` is not one."""
    if not text.startswith("["):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return [str(item) for item in value] if isinstance(value, list) else None


def _decode(text: str, path: Path, row: int) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(path, row, "image", "expected a base64-encoded image or the index of another row") from None


def _choices(row: Mapping[str, str], path: Path, number: int) -> tuple[str, ...]:
    """Options ``A, B, ...`` up to the first empty one; a filled option after an empty one is an error."""
    present = [bool((row.get(letter) or "").strip()) for letter in OPTION_LETTERS]
    count = present.index(False) if False in present else len(present)
    if any(present[count:]):
        gap = OPTION_LETTERS[present.index(True, count)]
        raise _fail(path, number, gap, f"option {gap} is given but option {OPTION_LETTERS[count]} is empty")
    return tuple(row[letter].strip() for letter in OPTION_LETTERS[:count])


def read_tsv(path: str | Path) -> list[Sample]:
    """The rows of a VLMEvalKit benchmark TSV (module docstring), images resolved and decoded."""
    path = Path(path)
    csv.field_size_limit(sys.maxsize)  # base64 images are far longer than csv's default field limit
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: cannot read as a UTF-8 TSV file ({error})") from None
    if not rows:
        raise InputError(f"{path}: no rows under the header")
    for needed in ("index", "question", "answer"):
        if needed not in rows[0]:
            raise InputError(f"{path}: row 1: field {needed!r}: missing from the header (columns: {list(rows[0])})")
    by_index = {row["index"]: (row.get("image") or "").strip() for row in rows}
    samples = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        index = (row["index"] or "").strip()
        if not index:
            raise _fail(path, number, "index", "empty")
        choices = _choices(row, path, number)
        answer = (row["answer"] or "").strip()
        answers = tuple(_literal_list(answer) or [answer])
        if choices and answer not in OPTION_LETTERS[: len(choices)]:
            raise _fail(path, number, "answer", f"expected one of the given options {list(LETTERS[: len(choices)])}")
        cell = _image_cell(row, by_index, path, number)
        samples.append(
            Sample(
                index=index,
                question=row["question"] or "",
                answers=answers,
                images=_row_images(row, cell, path, number),
                choices=choices,
                hint=_text(row.get("hint")),
                category=_text(row.get("category")),
                group=_group(index, choices, cell),
                fields={k: v for k, v in row.items() if k and k not in _MAIN_COLUMNS and v is not None},
            )
        )
    return samples


_MAIN_COLUMNS = {"index", "question", "answer", "image", "image_path", "hint", "category", *OPTION_LETTERS}


def _text(value: str | None) -> str:
    """An optional cell: pandas writes missing values as ``nan``."""
    text = (value or "").strip()
    return "" if text.lower() == "nan" else text


def _group(index: str, choices: tuple[str, ...], image: str) -> str:
    """What a row is scored together with: an MMBench circular copy with the question ``index % 1e6``; an
    open question with the others about the same image (MME's pairs, however the TSV stores the image)."""
    if choices and index.isdigit():
        return str(int(index) % 1_000_000)
    return hashlib.sha1(image.encode()).hexdigest()[:16] if image else index


def _image_cell(row: Mapping[str, str], by_index: Mapping[str, str], path: Path, number: int) -> str:
    """The row's ``image`` cell, a reference to another row's image resolved."""
    cell = (row.get("image") or "").strip()
    if cell and len(cell) <= IMAGE_REFERENCE_MAX:
        target = by_index.get(cell, "")
        if len(target) <= IMAGE_REFERENCE_MAX:
            raise _fail(path, number, "image", f"{cell!r} is neither base64 nor the index of a row with an image")
        return target
    return cell or _text(row.get("image_path"))


def _row_images(row: Mapping[str, str], cell: str, path: Path, number: int) -> tuple[Image, ...]:
    if not cell:
        return ()
    if not (row.get("image") or "").strip():
        return tuple(path.parent / name for name in (_literal_list(cell) or [cell]))
    return tuple(_decode(item, path, number) for item in (_literal_list(cell) or [cell]))


def _json_records(path: Path) -> list[Any]:
    """A JSON list, a JSON object whose ``data`` is the list (DocVQA, TextVQA), or JSONL (one object a line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise InputError(f"{path}: not JSON, nor JSONL ({error})") from None
    if isinstance(data, dict):
        return data["data"] if isinstance(data.get("data"), list) else [data]
    return data if isinstance(data, list) else [data]


def read_mmmu(path: str | Path) -> list[Sample]:
    """MMMU records (module docstring); every ``<image k>`` marker must name a given image."""
    path = Path(path)
    return [_mmmu_sample(record, path, number) for number, record in enumerate(_json_records(path), start=1)]


@dataclass(frozen=True)
class RecordFields:
    """Where a benchmark's own JSON file keeps each part of a question. ``image`` is a template over the
    record's fields giving the image's path relative to the file (``"png/{imgname}"``); ``index`` None numbers
    the records from 0; ``category`` may name a list field, whose first item is taken."""

    question: str
    answers: str
    image: str
    index: str | None = None
    category: str | None = None


# the benchmarks' own files: DocVQA's val_v1.0.json, TextVQA_0.5.1_val.json (beside train_images/), ChartQA's
# test/test_human.json and test_augmented.json (beside png/), POPE's coco_pope_*.json (beside the COCO images)
DOCVQA_FIELDS = RecordFields("question", "answers", "{image}", "questionId", "question_types")
TEXTVQA_FIELDS = RecordFields("question", "answers", "train_images/{image_id}.jpg", "question_id")
CHARTQA_FIELDS = RecordFields("query", "label", "png/{imgname}")
POPE_FIELDS = RecordFields("text", "label", "{image}", "question_id")


def read_records(path: str | Path, fields: RecordFields) -> list[Sample]:
    """A benchmark's own JSON or JSONL file, read by ``fields``; a missing field names its record."""
    path = Path(path)
    samples = []
    for number, record in enumerate(_json_records(path), start=1):
        if not isinstance(record, dict):
            raise _fail(path, number, "record", "expected a JSON object")
        for name in (fields.question, fields.answers, fields.index):
            if name is not None and name not in record:
                raise _fail(path, number, name, "missing")
        try:
            image = path.parent / fields.image.format(**record)
        except (KeyError, IndexError) as error:
            raise _fail(path, number, str(error).strip("'"), "missing (it names the image)") from None
        answers = record[fields.answers]
        category = record.get(fields.category, "") if fields.category else ""
        samples.append(
            Sample(
                index=str(record[fields.index] if fields.index else number - 1),
                question=str(record[fields.question]),
                answers=tuple(map(str, answers)) if isinstance(answers, list) else (str(answers),),
                images=(image,),
                category=str((category or [""])[0] if isinstance(category, list) else category),
                group=str(image),
            )
        )
    return samples


def _mmmu_sample(record: Any, path: Path, number: int) -> Sample:
    if not isinstance(record, dict):
        raise _fail(path, number, "record", "expected a JSON object")
    for needed in ("id", "question", "answer"):
        if needed not in record:
            raise _fail(path, number, needed, "missing")
    options = record.get("options") or []
    if isinstance(options, str):
        parsed = _literal_list(options)
        if parsed is None:
            raise _fail(path, number, "options", "expected a list or its string form \"['a', 'b']\"")
        options = parsed
    kind = str(record.get("question_type") or ("multiple-choice" if options else "open"))
    if kind not in ("multiple-choice", "open"):
        raise _fail(path, number, "question_type", f"expected 'multiple-choice' or 'open', got {kind!r}")
    if kind == "multiple-choice" and not options:
        raise _fail(path, number, "options", "a multiple-choice question needs options")
    answer = record["answer"]
    answers = [str(a) for a in answer] if isinstance(answer, list) else _literal_list(str(answer)) or [str(answer)]
    images = [path.parent / str(record[f"image_{k}"]) for k in range(1, MMMU_IMAGES + 1) if record.get(f"image_{k}")]
    for k in IMAGE_MARKER.findall(" ".join([str(record["question"]), *map(str, options)])):
        if not 1 <= int(k) <= len(images):
            raise _fail(path, number, f"image_{k}", f"the question shows <image {k}> but names no such image")
    return Sample(
        index=str(record["id"]),
        question=str(record["question"]),
        answers=tuple(answers),
        images=tuple(images),
        choices=tuple(map(str, options)),
        category=str(record.get("subfield") or record.get("category") or ""),
        group=str(record["id"]),
        fields={"question_type": kind},
    )
