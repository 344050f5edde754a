"""Export multiple-choice questions in the MMBench TSV layout, for tools that read that format.

Columns: ``index, question, A, B, C, D, E, answer, category, image``; options beyond a question's
choices are empty, ``answer`` is the letter of the correct option, ``category`` the question type and
``image`` the PNG file base64-encoded (one copy per question, as MMBench does).
"""

from __future__ import annotations

import base64
import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vlmkit.errors import InputError
from vlmkit.files import atomic_open
from vlmkit.processing.chat import LETTERS

OPTION_COLUMNS = LETTERS[:5]  # MMBench's TSV has five option columns, A to E
COLUMNS = ["index", "question", *OPTION_COLUMNS, "answer", "category", "image"]


def write_mmbench_tsv(
    records: Iterable[Mapping[str, Any]], dataset_dir: str | os.PathLike[str], out_path: str | os.PathLike[str]
) -> int:
    """Write every qa item that has ``choices`` as one TSV row; return the number of rows."""
    rows = 0
    with atomic_open(out_path, "w") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(COLUMNS)
        for record in records:
            image_path = Path(dataset_dir) / str(record["image"])
            try:
                image = base64.b64encode(image_path.read_bytes()).decode("ascii")
            except OSError as error:
                raise InputError(f"{image_path}: cannot read image named by a record ({error.strerror})") from error
            for qa in record.get("qa", []):
                choices = list(qa.get("choices") or [])
                if not choices:
                    continue
                if not 2 <= len(choices) <= len(OPTION_COLUMNS) or qa["answer"] not in choices:
                    raise InputError(
                        f"{record['image']}: question {qa['question']!r} needs 2-{len(OPTION_COLUMNS)} choices "
                        f"including its answer, got {choices}"
                    )
                options = choices + [""] * (len(OPTION_COLUMNS) - len(choices))
                letter = OPTION_COLUMNS[choices.index(qa["answer"])]
                writer.writerow([rows, qa["question"], *options, letter, qa.get("type", ""), image])
                rows += 1
    return rows
