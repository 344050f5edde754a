"""Battles between models of known strength, for checking what the ratings recover (tests, benchmarks).

Each battle draws a random distinct pair (in random order, as the arena does); with probability
``tie_rate`` it is a tie (``tie`` or ``tie (bothbad)`` with equal odds), otherwise ``model_a`` wins with
the Bradley-Terry probability 1 / (1 + 10 ** ((R_b - R_a) / 400)) of the true ratings.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vlmkit.arena.battles import Battle
from vlmkit.arena.ratings import BASE, SCALE


def simulate_battles(strengths: Mapping[str, float], count: int, tie_rate: float = 0.0, seed: int = 0) -> list[Battle]:
    rng = np.random.default_rng(seed)
    names = list(strengths)
    true = np.array([strengths[name] for name in names])
    pairs = np.array([rng.choice(len(names), 2, replace=False) for _ in range(count)]).reshape(-1, 2)
    p_a = 1 / (1 + BASE ** ((true[pairs[:, 1]] - true[pairs[:, 0]]) / SCALE))
    tie, coin, result = rng.random(count) < tie_rate, rng.random(count) < 0.5, rng.random(count) < p_a
    battles = []
    for (a, b), tied, bothbad, a_won in zip(pairs, tie, coin, result, strict=True):
        winner = ("tie (bothbad)" if bothbad else "tie") if tied else ("model_a" if a_won else "model_b")
        battles.append(Battle(names[a], names[b], winner))
    return battles
