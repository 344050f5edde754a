"""Timing helpers shared by the benchmark scripts: interleaved repeats and a matmul peak.

On a GPU, kernels run asynchronously, so every timed call ends with ``synchronize``: the time is the
work's, not the launch's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def interleaved_medians(
    functions: dict[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each function, alternating them so machine noise hits all alike.

    ``clock`` is wall time by default; ``time.process_time`` (this process's CPU seconds) leaves out the
    time other processes hold the cores, which on a shared machine is most of the wall time.
    """
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    synchronize()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = clock()
            fn()
            synchronize()
            times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def matmul_peak_gflops(
    dtype: torch.dtype, sizes: tuple[int, ...] = (1024, 2048, 3072), repeats: int = 5, device: str = "cpu"
) -> float:
    """Best achieved GFLOP/s of large square matmuls: the practical ceiling for this machine and dtype."""
    best = 0.0
    if device != "cpu":
        sizes = (*sizes, 8192)  # a GPU needs bigger products to fill
    for size in sizes:
        a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
        seconds = interleaved_medians({"mm": lambda a=a, b=b: a @ b}, repeats=repeats)["mm"]
        best = max(best, 2 * size**3 / seconds / 1e9)
    return best
