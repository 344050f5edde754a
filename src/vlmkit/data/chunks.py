"""What both synthetic generators (ShapesWorld, DocWorld) share: their work cut into chunks of items, run in
worker processes or in this one, results in chunk order.

Each item is made from (seed, split, index) alone, so the output is the same for any chunking and any number
of workers; the chunking only decides how the work is shared.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

Result = TypeVar("Result")


def chunked(
    write_chunk: Callable[..., Result], job: tuple[Any, ...], n: int, chunk_size: int, workers: int | None
) -> Iterator[Result]:
    """``write_chunk(*job, start, stop, n)`` over ``range(n)`` in chunks of at most ``chunk_size`` (smaller when
    that keeps every worker busy), in ``workers`` processes (default: all CPUs; 1: here), results in order."""
    workers = workers or os.cpu_count() or 1
    size = max(1, min(chunk_size, math.ceil(n / workers)))
    chunks = [(start, min(start + size, n)) for start in range(0, n, size)]
    if min(workers, len(chunks)) == 1:
        yield from (write_chunk(*job, start, stop, n) for start, stop in chunks)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
        futures = [pool.submit(write_chunk, *job, start, stop, n) for start, stop in chunks]
        yield from (future.result() for future in futures)
