"""Progress bars that read well in a terminal and in a log.

In a terminal a bar redraws in place. Written to a file or a CI log, tqdm's carriage-return redraws pile up
into one unreadable line, so there a bar prints a whole line at most every ``LOG_INTERVAL_S`` seconds. A bar
first shows after ``DELAY_S`` seconds: the first item of a job often carries its start-up cost (a process
pool, a model load), and an ETA drawn from it alone would claim hours.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

LOG_INTERVAL_S = 30.0
DELAY_S = 2.0


class _Lines(io.TextIOBase):
    """A stream that turns each redraw of a bar into one line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable: Iterable[Any] | None = None, **options: Any) -> tqdm:
    """``tqdm(iterable, **options)`` with the terminal-or-log behaviour above."""
    terminal = sys.stderr.isatty()
    defaults: dict[str, Any] = {"delay": DELAY_S, "dynamic_ncols": terminal, "smoothing": 0.1}
    if not terminal:
        defaults.update(file=_Lines(sys.stderr), mininterval=LOG_INTERVAL_S, ncols=100)
    return tqdm(iterable, **{**defaults, **options})
