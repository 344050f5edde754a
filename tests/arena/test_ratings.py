"""Ratings checked against fits written differently, on battles simulated from known strengths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlmkit.arena.battles import Battle
from vlmkit.arena.ratings import fit_bradley_terry, online_elo, rate, tally, win_matrix
from vlmkit.arena.simulate import simulate_battles

STRENGTHS = {"alpha": 1250.0, "bravo": 1100.0, "charlie": 1050.0, "delta": 1000.0, "echo": 850.0}


def scipy_fit(battles: list[Battle]) -> dict[str, float]:
    """The Bradley-Terry maximum likelihood by scipy's BFGS on the raw battles: natural-log strengths, the
    first model pinned at 0, a win scoring 1 and a tie 1/2 for each side (FastChat's 2 and 1, halved: the
    same maximum); then moved to FastChat's scale and centred on 1000."""
    from scipy.optimize import minimize

    models = sorted({m for b in battles for m in (b.model_a, b.model_b)})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[b.model_a] for b in battles])
    b = np.array([index[b.model_b] for b in battles])
    score = np.array([{"model_a": 1.0, "model_b": 0.0}.get(x.winner, 0.5) for x in battles])

    def nll(free: np.ndarray) -> float:
        theta = np.concatenate([[0.0], free])
        d = theta[a] - theta[b]
        return float(np.sum(score * np.logaddexp(0, -d) + (1 - score) * np.logaddexp(0, d)))

    def grad(free: np.ndarray) -> np.ndarray:
        theta = np.concatenate([[0.0], free])
        residual = score - 1 / (1 + np.exp(-(theta[a] - theta[b])))
        g = np.zeros(len(models))
        np.add.at(g, a, -residual)
        np.add.at(g, b, residual)
        return g[1:]

    found = minimize(nll, np.zeros(len(models) - 1), jac=grad, method="BFGS", options={"gtol": 1e-10})
    theta = np.concatenate([[0.0], found.x]) * 400 / math.log(10)
    return dict(zip(models, theta - theta.mean() + 1000, strict=True))


def rated(battles, rounds=200):
    return {row.model: row for row in rate(battles, rounds=rounds, seed=0)}


def test_ratings_equal_an_independent_maximum_likelihood_fit():
    battles = simulate_battles(STRENGTHS, 3000, tie_rate=0.2, seed=1)
    ours = rated(battles, rounds=10)
    reference = scipy_fit(battles)
    for model, value in reference.items():
        assert ours[model].rating == pytest.approx(value, abs=1.0)
    assert np.mean([row.rating for row in ours.values()]) == pytest.approx(1000.0)


def test_ratings_equal_fastchats_logistic_regression():
    """FastChat's compute_mle_elo, rebuilt from its facts: per ordered pair, a row of +ln10 / -ln10 with
    label 1 weighted by the pair's win weight and label 0 by the reverse, no intercept, no penalty."""
    linear = pytest.importorskip("sklearn.linear_model")
    battles = simulate_battles(STRENGTHS, 2000, tie_rate=0.3, seed=2)
    t = tally(battles)
    wins = win_matrix(t)
    rows, labels, weights = [], [], []
    for i in range(len(t.models)):
        for j in range(len(t.models)):
            if i != j:
                x = np.zeros(len(t.models))
                x[i], x[j] = math.log(10), -math.log(10)
                rows += [x, x]
                labels += [1, 0]
                weights += [wins[i, j], wins[j, i]]
    fit = linear.LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8, max_iter=1000)
    fit.fit(np.array(rows), np.array(labels), sample_weight=np.array(weights))
    np.testing.assert_allclose(fit_bradley_terry(wins), 400 * fit.coef_[0] + 1000, atol=0.05)


def test_a_win_weighs_two_and_a_tie_one_for_each_side():
    battles = [Battle("a", "b", "model_a"), Battle("b", "a", "tie"), Battle("a", "b", "tie (bothbad)")]
    t = tally(battles)
    np.testing.assert_array_equal(win_matrix(t), [[0.0, 4.0], [2.0, 0.0]])
    # a won 4 of 6 units of weight: P = 2/3, so the gap is 400 * log10(2)
    ratings = fit_bradley_terry(win_matrix(t))
    assert ratings[0] - ratings[1] == pytest.approx(400 * math.log10(2), abs=1e-6)
    assert ratings.mean() == pytest.approx(1000.0)


def test_intervals_shrink_as_votes_grow():
    widths = []
    for count in (200, 800, 3200):
        rows = rated(simulate_battles(STRENGTHS, count, tie_rate=0.1, seed=3)).values()
        widths.append(np.mean([row.upper - row.lower for row in rows]))
        assert all(row.lower <= row.rating <= row.upper for row in rows)
    # the standard error falls as 1 / sqrt(votes): each 4x more votes should about halve the width
    assert widths[1] < 0.7 * widths[0] and widths[2] < 0.7 * widths[1], widths


def test_ordering_and_gaps_recover_true_strengths():
    battles = simulate_battles(STRENGTHS, 6000, seed=4)
    rows = rate(battles, rounds=200, seed=0)
    assert [row.model for row in rows] == sorted(STRENGTHS, key=STRENGTHS.get, reverse=True)
    truth = np.array([STRENGTHS[row.model] for row in rows])
    truth += 1000 - truth.mean()  # the fit averages 1000; the truth, shifted the same way
    inside = [row.lower <= true <= row.upper for row, true in zip(rows, truth, strict=True)]
    assert sum(inside) >= 4, [(row.model, row.lower, row.upper, true) for row, true in zip(rows, truth, strict=True)]
    assert np.max(np.abs(np.array([row.rating for row in rows]) - truth)) < 25


def test_online_elo_is_fastchats_k4_update():
    elo = online_elo([Battle("a", "b", "model_a")])
    assert elo == {"a": 1002.0, "b": 998.0}  # 4 * (1 - 0.5) each way
    elo = online_elo([Battle("a", "b", "model_a"), Battle("b", "a", "model_a")])
    expected_b = 1 / (1 + 10 ** ((1002 - 998) / 400))
    assert elo["b"] == pytest.approx(998 + 4 * (1 - expected_b))
    assert elo["a"] + elo["b"] == pytest.approx(2000)
    assert online_elo([Battle("a", "b", "tie (bothbad)")]) == {"a": 1000.0, "b": 1000.0}


def test_unbeaten_model_and_separate_groups_still_give_finite_ratings():
    battles = [Battle("a", "b", "model_a")] * 5 + [Battle("c", "d", "model_b"), Battle("c", "d", "model_a")]
    rows = rated(battles, rounds=20)
    assert all(np.isfinite([row.rating, row.lower, row.upper]).all() for row in rows.values())
    assert rows["a"].rating > rows["b"].rating and rows["c"].rating == pytest.approx(rows["d"].rating)
    assert np.mean([row.rating for row in rows.values()]) == pytest.approx(1000.0)
    assert rows["a"].battles == 5 and rows["c"].battles == 2


def test_bootstrap_is_seeded():
    battles = simulate_battles(STRENGTHS, 300, tie_rate=0.1, seed=5)
    assert rate(battles, rounds=50, seed=7) == rate(battles, rounds=50, seed=7)
    assert rate(battles, rounds=50, seed=7) != rate(battles, rounds=50, seed=8)
