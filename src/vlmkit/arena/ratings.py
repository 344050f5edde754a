"""Ratings from battles: Bradley-Terry by maximum likelihood with bootstrap intervals, and online Elo.

The fit follows FastChat's ``compute_mle_elo`` (fastchat/serve/monitor/elo_analysis.py), so the same
battles give the same numbers as Chatbot Arena's leaderboard code:

- P(a beats b) = 1 / (1 + 10 ** ((R_b - R_a) / 400)): ratings on a 400 * log10-odds scale;
- a win counts with weight 2 and a tie (``tie`` and ``tie (bothbad)`` alike) as one win for each side,
  i.e. half a win each;
- the likelihood is that of a logistic regression without intercept and without penalty, which fixes
  ratings only up to a common shift; FastChat's solver starts at 0 and moves only along the gradient,
  which never changes the ratings' sum, so they average 1000 (the initial rating). The Newton fit here
  keeps the same sum.

FastChat fits with scikit-learn; here the (convex) likelihood is maximised by Newton's method in numpy,
a few iterations on the models' win matrix, so vlmkit needs no extra dependency. A model that never lost
and never tied has no finite maximum; the fit stops, as FastChat's does, where the gradient is flat.

Intervals resample battles with replacement (FastChat's bootstrap, drawn as one multinomial over the
distinct (model_a, model_b, winner) rows, which is the same distribution) and take the 2.5 and 97.5
percentiles of each model's rating. Online Elo is FastChat's ``compute_elo``: K = 4, every rating starts
at 1000, battles in their order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vlmkit.arena.battles import WINNERS, Battle
from vlmkit.errors import InputError

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
ELO_K = 4.0
WIN_WEIGHT = 2.0  # a win; a tie gives each side 1
ROUNDS = 1000


@dataclass(frozen=True)
class Rating:
    """One model's line of the leaderboard: MLE rating, its bootstrap 95% interval, online Elo, battles."""

    model: str
    rating: float
    lower: float
    upper: float
    elo: float
    battles: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Tally:
    """Battles as distinct rows: model indices ``a``, ``b``, the winner's index in WINNERS, and counts."""

    models: list[str]
    a: np.ndarray
    b: np.ndarray
    winner: np.ndarray
    counts: np.ndarray


def tally(battles: Sequence[Battle]) -> Tally:
    if not battles:
        raise InputError("no battles to rate")
    models = sorted({m for battle in battles for m in (battle.model_a, battle.model_b)})
    index = {name: i for i, name in enumerate(models)}
    codes = np.array(
        [(index[b.model_a], index[b.model_b], WINNERS.index(b.winner)) for b in battles], dtype=np.int64
    ).reshape(-1, 3)
    rows, counts = np.unique(codes, axis=0, return_counts=True)
    return Tally(models, rows[:, 0], rows[:, 1], rows[:, 2], counts.astype(np.float64))


def win_matrix(t: Tally, counts: np.ndarray | None = None) -> np.ndarray:
    """W[i, j]: the weight of i's wins over j (2 per win, 1 per tie to each side)."""
    counts = t.counts if counts is None else counts
    n = len(t.models)
    wins = np.zeros((n, n))
    a_won, b_won, tied = t.winner == 0, t.winner == 1, t.winner >= 2
    np.add.at(wins, (t.a[a_won], t.b[a_won]), WIN_WEIGHT * counts[a_won])
    np.add.at(wins, (t.b[b_won], t.a[b_won]), WIN_WEIGHT * counts[b_won])
    np.add.at(wins, (t.a[tied], t.b[tied]), counts[tied])
    np.add.at(wins, (t.b[tied], t.a[tied]), counts[tied])
    return wins


def _loss(beta: np.ndarray, wins: np.ndarray) -> float:
    """Negative log-likelihood: -sum W[i, j] * log sigmoid(ln(BASE) * (beta_i - beta_j))."""
    margin = math.log(BASE) * (beta[:, None] - beta[None, :])
    return float(np.sum(wins * np.logaddexp(0.0, -margin)))


def fit_bradley_terry(wins: np.ndarray, max_iter: int = 100, tol: float = 1e-10) -> np.ndarray:
    """Ratings maximising the likelihood of the win matrix, averaging INIT_RATING.

    Newton steps with the Hessian's pseudo-inverse (it is singular along the common shift, and along each
    group of models that never met another group) and a halving line search; every step keeps the sum
    of log-odds, as FastChat's solver does, so a fit from 0 ends with ratings averaging 1000.
    """
    s = math.log(BASE)
    games = wins + wins.T
    beta = np.zeros(len(wins))
    loss = _loss(beta, wins)
    scale = max(float(wins.sum()), 1.0)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-s * (beta[:, None] - beta[None, :])))  # P(i beats j)
        grad = -s * np.sum(wins * (1 - p) - wins.T * p, axis=1)
        if np.max(np.abs(grad)) < tol * scale:
            break
        curvature = s * s * games * p * (1 - p)
        hessian = np.diag(curvature.sum(axis=1)) - curvature
        step = np.linalg.lstsq(hessian, -grad, rcond=None)[0]
        step -= step.mean()  # only the common shift is unidentified; keep the sum where it was
        size = 1.0
        while size > 1e-8:
            trial = _loss(beta + size * step, wins)
            if trial <= loss:
                break
            size /= 2
        else:
            break
        beta, previous, loss = beta + size * step, loss, trial
        if previous - loss <= 1e-15 * scale:
            break
    return SCALE * beta + INIT_RATING


def online_elo(battles: Sequence[Battle], k: float = ELO_K) -> dict[str, float]:
    """FastChat's ``compute_elo``: each battle moves both ratings by K times the surprise, in order."""
    rating: dict[str, float] = {}
    for battle in battles:
        ra = rating.setdefault(battle.model_a, INIT_RATING)
        rb = rating.setdefault(battle.model_b, INIT_RATING)
        expected_a = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        score_a = {"model_a": 1.0, "model_b": 0.0}.get(battle.winner, 0.5)
        rating[battle.model_a] = ra + k * (score_a - expected_a)
        rating[battle.model_b] = rb + k * (expected_a - score_a)  # (1 - score_a) - (1 - expected_a)
    return rating


def bootstrap(t: Tally, rounds: int = ROUNDS, seed: int = 0) -> np.ndarray:
    """Ratings of ``rounds`` resamplings of the battles (rows: rounds, columns: models)."""
    rng = np.random.default_rng(seed)
    total = int(t.counts.sum())
    draws = rng.multinomial(total, t.counts / total, size=rounds).astype(np.float64)
    return np.stack([fit_bradley_terry(win_matrix(t, counts)) for counts in draws])


def rate(battles: Sequence[Battle], rounds: int = ROUNDS, seed: int = 0) -> list[Rating]:
    """The leaderboard: one ``Rating`` per model, best first."""
    if rounds < 1:
        raise InputError(f"bootstrap rounds must be at least 1, got {rounds}")
    t = tally(battles)
    ratings = fit_bradley_terry(win_matrix(t))
    lower, upper = np.quantile(bootstrap(t, rounds, seed), [0.025, 0.975], axis=0)
    elo = online_elo(battles)
    played = np.bincount(t.a, t.counts, len(t.models)) + np.bincount(t.b, t.counts, len(t.models))
    rows = [
        Rating(name, float(ratings[i]), float(lower[i]), float(upper[i]), elo[name], int(played[i]))
        for i, name in enumerate(t.models)
    ]
    return sorted(rows, key=lambda row: (-row.rating, row.model))
