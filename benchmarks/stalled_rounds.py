"""Repeat one attack of ``benchmarks/soak.py`` against one ``vlmkit serve`` process: ``--stallers``
connections that declare a 20 MiB body, send ``--body-mb`` of it and stall, round after round.

Each round gets 408 (body deadline) or 503 (buffered-bytes budget) for every connection; what this
measures is the memory the server keeps. It prints the server's VmRSS at the start, its peak growth
during each round over the value at that round's start (target < 200 MB), and its value after each
round once the connections are closed. The curve of those values must flatten: a server that keeps a
little of every refused body grows without bound under a client that simply repeats the attack.

    .venv/bin/python benchmarks/stalled_rounds.py [--rounds 10] [--stallers 16] [--body-mb 19]
                                                  [--body-timeout-s 5] [--max-buffered-mb M]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from served_models import free_port
from soak import build_models, rss_mb, stalled_bodies, start_server

PEAK_LIMIT_MB = 200
PLATEAU_LIMIT_MB = 50  # growth allowed over the last half of the rounds


def round_with_peak(pid: int, port: int, args: argparse.Namespace) -> tuple[float, float, str]:
    """One round: (peak RSS growth over the round's start, RSS after it, MB; the statuses seen)."""
    start, peak, stop = rss_mb(pid), [0.0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss_mb(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    outcome = stalled_bodies(port, args)
    stop.set()
    thread.join(5)
    time.sleep(1.0)  # the server closes its ends and frees what it held
    statuses = ", ".join(f"{status} ×{n}" for status, n in sorted(outcome.statuses.items()))
    return max(peak[0], start) - start, rss_mb(pid), statuses


def run(args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder, port = build_models(root), free_port()
        with (root / "server.log").open("w") as log:
            server = start_server(root, folder, port, args, log)
            try:
                after = [rss_mb(server.pid)]
                print(f"server RSS at the start: {after[0]:.0f} MB")
                print("| round | statuses | peak growth MB | RSS after MB |\n| --- | --- | --- | --- |")
                peaks = []
                for i in range(args.rounds):
                    peak, rss, statuses = round_with_peak(server.pid, port, args)
                    peaks.append(peak)
                    after.append(rss)
                    print(f"| {i + 1} | {statuses} | {peak:.0f} | {rss:.0f} |", flush=True)
            finally:
                server.terminate()
                server.wait(60)
    middle = len(after) // 2
    half = after[middle]
    print("RSS after each round: " + " -> ".join(f"{value:.0f}" for value in after) + " MB")
    peak_met, plateau_met = max(peaks) < PEAK_LIMIT_MB, after[-1] - half < PLATEAU_LIMIT_MB
    print(f"peak growth per round: {'met' if peak_met else 'NOT met'}, worst {max(peaks):.0f} MB (target < 200)")
    print(
        f"plateau: {'met' if plateau_met else 'NOT met'}, {after[-1] - half:.0f} MB over the last "
        f"{len(after) - 1 - middle} rounds (target < {PLATEAU_LIMIT_MB})"
    )
    return peak_met and plateau_met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the attack")
    parser.add_argument("--stallers", type=int, default=16, help="connections that stall mid-body, per round")
    parser.add_argument("--body-mb", type=float, default=19.0, help="MiB each sends of its declared 20 MiB")
    parser.add_argument("--body-timeout-s", type=float, default=5.0, help="the server's body deadline")
    parser.add_argument("--header-timeout-s", type=float, default=3.0, help="the server's header deadline")
    parser.add_argument("--max-buffered-mb", type=float, help="the server's budget of buffered bodies (its default)")
    raise SystemExit(0 if run(parser.parse_args()) else 1)


if __name__ == "__main__":
    main()
