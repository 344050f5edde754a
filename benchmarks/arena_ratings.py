"""What the arena's ratings recover from votes: error against the true strengths, the width of the 95%
bootstrap intervals, and how often they hold the truth, as the number of votes grows; and the time to rate.

Battles are simulated from known Bradley-Terry strengths (``vlmkit.arena.simulate``) without ties, so
the true ratings are exactly what the fit estimates (shifted to average 1000 as the fit is). Coverage
is the share of (model, simulation) pairs whose true rating lies inside its interval: near 0.95 when the
intervals are honest.

    python benchmarks/arena_ratings.py
    python benchmarks/arena_ratings.py --votes 500 5000 --models 12 --simulations 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vlmkit.arena.ratings import rate
from vlmkit.arena.simulate import simulate_battles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, nargs="+", default=[250, 1000, 4000, 16000])
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--simulations", type=int, default=20, help="seeds per vote count")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    args = parser.parse_args()

    strengths = {f"model-{i}": 1000.0 + 400.0 * (i / (args.models - 1) - 0.5) for i in range(args.models)}
    truth = np.array(list(strengths.values()))
    truth += 1000 - truth.mean()
    print(f"{args.models} models, true ratings {truth.min():.0f}..{truth.max():.0f}, {args.rounds} bootstrap rounds")
    print("votes  max |error|  mean CI width  coverage  seconds per rate()")
    for votes in args.votes:
        errors, widths, inside, seconds = [], [], [], []
        for seed in range(args.simulations):
            battles = simulate_battles(strengths, votes, seed=seed)
            start = time.perf_counter()
            rows = {row.model: row for row in rate(battles, rounds=args.rounds, seed=seed)}
            seconds.append(time.perf_counter() - start)
            for name, true in zip(strengths, truth, strict=True):
                row = rows[name]
                errors.append(abs(row.rating - true))
                widths.append(row.upper - row.lower)
                inside.append(row.lower <= true <= row.upper)
        print(
            f"{votes:5d}  {max(errors):11.1f}  {np.mean(widths):13.1f}  {np.mean(inside):8.3f}  "
            f"{np.median(seconds):.3f}"
        )


if __name__ == "__main__":
    main()
