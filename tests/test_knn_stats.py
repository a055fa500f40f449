"""Weighted kNN and bootstrap intervals (one and two levels) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from csvr.eval.knn import weighted_knn
from csvr.eval.stats import (bootstrap_ci, paired_gain, ratio_ci, sample_size_to_decide, two_level_bootstrap,
                             variance_components)


def test_weighted_knn_by_hand():
    # training features on the unit circle at 0, 10, 80 and 90 degrees; classes 0, 0, 1, 1 ... and
    # one class-2 vector at 180 degrees
    ang = np.deg2rad([0, 10, 80, 90, 180])
    train = np.stack([np.cos(ang), np.sin(ang)], axis=1) * 3.0   # scale must not matter
    ytr = np.array([0, 0, 1, 1, 2])
    q = np.array([[math.cos(math.radians(30)), math.sin(math.radians(30))]])
    # k = 3: neighbours at 10 (cos 20), 0 (cos 30), 80 (cos 50)
    r = weighted_knn(train, ytr, q, np.array([1]), k=3, tau=0.1)
    s0 = math.exp(math.cos(math.radians(20)) / 0.1) + math.exp(math.cos(math.radians(30)) / 0.1)
    s1 = math.exp(math.cos(math.radians(50)) / 0.1)
    assert s0 > s1 and r.predictions.tolist() == [0] and r.top1.tolist() == [0.0] and r.top5.tolist() == [1.0]
    # a large temperature flattens the weights: still class 0 (two votes against one)
    assert weighted_knn(train, ytr, q, np.array([0]), k=3, tau=100.0).top1.tolist() == [1.0]
    # k = 1 is the nearest neighbour's label; at 60 degrees that is the 80-degree vector (class 1)
    q2 = np.array([[math.cos(math.radians(60)), math.sin(math.radians(60))]])
    assert weighted_knn(train, ytr, q2, np.array([1]), k=1).predictions.tolist() == [1]
    # top-5 misses only a class outside the five best: with 3 classes top-5 is always right
    assert weighted_knn(train, ytr, q2, np.array([2]), k=5).top5.tolist() == [1.0]


def test_weighted_knn_ties_and_errors():
    train = np.array([[1.0, 0.0], [1.0, 0.0]])
    r = weighted_knn(train, np.array([1, 0]), np.array([[1.0, 0.0]]), np.array([0]), k=1)
    assert r.predictions.tolist() == [1]  # equal similarity: the lower training index wins
    r = weighted_knn(train, np.array([1, 0]), np.array([[1.0, 0.0]]), np.array([0]), k=2)
    assert r.predictions.tolist() == [0]  # equal class totals: the lower class index wins
    with pytest.raises(ValueError, match="NaN"):
        weighted_knn(np.array([[np.nan, 0.0]]), np.array([0]), np.array([[1.0, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="shapes"):
        weighted_knn(train, np.array([0]), np.array([[1.0, 0.0]]), np.array([0]))


def test_bootstrap_interval_of_a_proportion_matches_the_normal_approximation():
    x = np.array([1.0] * 60 + [0.0] * 90)  # p = 0.4, n = 150
    lo, hi = bootstrap_ci(x, n=20000, seed=1)
    half = 1.96 * math.sqrt(0.4 * 0.6 / 150)  # 0.0784
    assert lo == pytest.approx(0.4 - half, abs=0.012) and hi == pytest.approx(0.4 + half, abs=0.012)
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5)


def direct_two_level(x: np.ndarray, n: int, seed: int) -> tuple[float, float]:
    """The two-level bootstrap written out resample by resample (same random draws)."""
    s, q = x.shape
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, n, 500):
        m = min(500, n - start)
        si, vi = rng.integers(0, s, (m, s)), rng.integers(0, q, (m, q))
        for b in range(m):
            means.append(np.mean([[x[i, j] for j in vi[b]] for i in si[b]]))
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def test_two_level_bootstrap_equals_the_direct_computation():
    rng = np.random.default_rng(3)
    x = (rng.random((3, 17)) < np.array([[0.2], [0.5], [0.7]])).astype(float)
    assert two_level_bootstrap(x, n=1200, seed=5) == pytest.approx(direct_two_level(x, 1200, 5), abs=1e-12)


def test_two_level_bootstrap_known_intervals():
    # constant scores: no spread at all
    assert two_level_bootstrap(np.full((2, 9), 1.0), n=500) == (1.0, 1.0)
    # seeds at 0.2 / 0.5 / 0.8, every video of a seed alike: only the seeds vary, and a mean of 3
    # seeds drawn with replacement hits the extremes 0.2 and 0.8 with probability 1/27 > 2.5 % each
    x = np.repeat(np.array([[0.2], [0.5], [0.8]]), 40, axis=1)
    assert two_level_bootstrap(x, n=4000) == pytest.approx((0.2, 0.8))
    # one seed: the ordinary bootstrap over videos; 90 of 180 right -> about 0.5 +- 1.96 * sqrt(.25 / 180)
    one = np.r_[np.ones(90), np.zeros(90)]
    lo, hi = two_level_bootstrap(one, n=4000)
    half = 1.96 * np.sqrt(0.25 / 180)
    assert lo == pytest.approx(0.5 - half, abs=0.012) and hi == pytest.approx(0.5 + half, abs=0.012)


def test_paired_gain_uses_the_pairs():
    rng = np.random.default_rng(0)
    base = (rng.random(200) < 0.5).astype(float)
    treat = base.copy()
    treat[np.flatnonzero(base == 0)[:20]] = 1.0  # 20 of 200 items fixed: +10 points, nothing lost
    g = paired_gain(treat, np.stack([base, base]))
    assert g["gain"] == pytest.approx(0.10) and g["items"] == 200
    assert g["gain_ci"][0] > 0.05  # paired: the interval excludes 0 comfortably
    # the unpaired intervals overlap although the paired one excludes 0
    assert g["ci"][0] < g["control_ci"][1]
    with pytest.raises(ValueError, match="items"):
        paired_gain(treat, base[:10])


def test_ratio_interval_by_hand_and_by_the_delta_method():
    # identical items: every resample gives the same ratio
    r = ratio_ci([2.0] * 5, [4.0] * 5)
    assert r["ratio"] == 0.5 and r["ci"] == (0.5, 0.5) and r["items"] == 5
    # paired noise: the interval matches the delta method's +-1.96 sd of mean(a)/mean(b)
    rng = np.random.default_rng(0)
    b = rng.uniform(0.5, 1.5, 400)
    a = 0.8 * b + rng.normal(0, 0.1, 400)
    got = ratio_ci(a, b)
    ma, mb = a.mean(), b.mean()
    resid = a / mb - ma * b / mb ** 2                      # linearisation of mean(a)/mean(b)
    sd = resid.std(ddof=1) / math.sqrt(a.size)
    assert got["ci"][0] == pytest.approx(ma / mb - 1.96 * sd, abs=0.004)
    assert got["ci"][1] == pytest.approx(ma / mb + 1.96 * sd, abs=0.004)
    with pytest.raises(ValueError):
        ratio_ci([1.0], [1.0, 2.0])


def test_variance_components_by_hand():
    """x[s, q] = mu + a_s + b_q + e: a 2 x 3 matrix worked by hand. Grand mean 3, seed means 2 / 4,
    item means 2 / 3 / 4; residuals (+-0.5 pattern) e = [[.5, -.5, 0], [-.5, .5, 0]]:
    MS_err = 1 / 2, MS_seed = 3 * var([2, 4]) = 6, MS_item = 2 * var([2, 3, 4]) = 2 -> components
    (6 - .5) / 3, (2 - .5) / 2, .5."""
    x = np.array([[1.5, 1.5, 3.0], [2.5, 4.5, 5.0]])
    v_seed, v_item, v_res = variance_components(x)
    assert (v_seed, v_item, v_res) == pytest.approx((5.5 / 3, 0.75, 0.5))
    one = variance_components(x[:1])  # one seed: no seed variance
    assert np.isnan(one[0]) and one[1] == pytest.approx(np.var(x[0], ddof=1))


def test_sample_size_to_decide_solves_the_normal_interval():
    """Constant rows with a pure item effect (no seed, no residual variance): the half-width is
    1.96 * sd_item / sqrt(Q), so the items that decide a mean m are the smallest Q' with
    1.96^2 v_item / Q' < m^2; seeds cannot help (None)."""
    rng = np.random.default_rng(0)
    b = rng.normal(0, 1, 50)
    x = np.tile(0.2 + b - b.mean(), (3, 1))  # mean exactly 0.2, item variance var(b)
    v = np.var(b, ddof=1)
    n = sample_size_to_decide(x)
    z = 1.959963984540054
    assert n["mean"] == pytest.approx(0.2)
    assert n["half_width"] == pytest.approx(z * np.sqrt(v / 50))
    assert n["items"] == int(np.floor(z ** 2 * v / 0.04)) + 1
    assert n["seeds"] is None and n["measured"] == (3, 50)
    # given a twice-as-wide interval, every component is scaled by 4: 4x the items
    wide = sample_size_to_decide(x, ci=(0.2 - 2 * n["half_width"], 0.2 + 2 * n["half_width"]))
    assert wide["items"] == int(np.floor(4 * z ** 2 * v / 0.04)) + 1
    # a seed effect alone: seeds decide, items do not
    y = np.array([[0.0] * 10, [0.4] * 10, [0.2] * 10])  # seed variance 0.04: undecided at 3 seeds
    s = sample_size_to_decide(y)
    assert s["items"] is None and s["seeds"] == int(np.floor(z ** 2 * 0.04 / 0.04)) + 1 == 4
