"""Tesseract 4/5 (LSTM) through its command line: ``tesseract IMAGE stdout tsv`` gives every word with a box.

No wrapper package: the binary's TSV output is its stable interface (columns level, page_num, block_num,
par_num, line_num, word_num, left, top, width, height, conf, text; level 5 rows are words). Words of the
same (block, paragraph, line) form one line.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from vlmkit.documents.types import Line, Word
from vlmkit.errors import ConfigError, InputError

WORD_LEVEL = "5"
TIMEOUT_S = 120


class TesseractEngine:
    name = "tesseract"

    def __init__(self, language: str = "eng", page_segmentation: int = 3) -> None:
        binary = shutil.which("tesseract")
        if binary is None:
            raise ConfigError(
                "the tesseract engine needs the tesseract binary, which is not installed; "
                "install it with: apt-get install tesseract-ocr (or brew install tesseract)"
            )
        self.binary = binary
        self.language = language
        self.page_segmentation = page_segmentation

    def read(self, image: Image.Image) -> list[Line]:
        with tempfile.TemporaryDirectory(prefix="vlmkit-tesseract-") as folder:
            path = Path(folder) / "page.png"
            image.save(path)
            command = [self.binary, str(path), "stdout", "-l", self.language, "--psm", str(self.page_segmentation)]
            try:
                done = subprocess.run([*command, "tsv"], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                raise InputError(f"tesseract took over {TIMEOUT_S} s on one page") from None
        if done.returncode != 0:
            raise InputError(f"tesseract failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
        return parse_tsv(done.stdout)


def parse_tsv(text: str) -> list[Line]:
    """Tesseract's TSV as lines of words (empty and whitespace-only words dropped; conf -1 rows are layout)."""
    grouped: dict[tuple[str, str, str, str], list[Word]] = {}
    for row in text.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != WORD_LEVEL or not cells[11].strip():
            continue
        left, top, width, height = (float(v) for v in cells[6:10])
        confidence = max(0.0, float(cells[10])) / 100.0
        key = (cells[1], cells[2], cells[3], cells[4])
        grouped.setdefault(key, []).append(Word(cells[11].strip(), (left, top, left + width, top + height), confidence))
    return [Line(tuple(words)) for words in grouped.values()]
