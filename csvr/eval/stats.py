"""Confidence intervals for evaluation numbers: percentile bootstrap over test items.

Every accuracy csvr reports is a mean of per-item scores (a test video is right or wrong); its
95 % interval is the 2.5th and 97.5th percentiles of the means of ``n`` resamples of the items
with replacement (Efron's percentile bootstrap). A *gain* over a control is the mean of paired
per-item differences (the same test video scored by both), which is what makes small gains
detectable: the interval of a paired difference is much narrower than two separate intervals.
Scores of several seeds on the same items (a study's repeated runs) resample both levels:
:func:`two_level_bootstrap`.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

N_BOOTSTRAP = 10_000


def bootstrap_ci(values, n: int = N_BOOTSTRAP, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (1-D, one score per test item)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no values")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    rng = np.random.default_rng(seed)
    means = np.empty(n)
    for start in range(0, n, 1000):  # chunks keep memory at 1000 x items
        m = min(1000, n - start)
        means[start:start + m] = x[rng.integers(0, x.size, (m, x.size))].mean(axis=1)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def two_level_bootstrap(scores, n: int = N_BOOTSTRAP, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of ``scores`` (S seeds x Q test items; 1-D: one seed) when
    both the seeds and the items are samples: each resample draws S seeds with replacement, then
    Q items with replacement (the same items for every drawn seed: the pairing by item is kept),
    and takes the mean. With S = 1 it is the ordinary bootstrap over items (:func:`bootstrap_ci`'s
    distribution, with other random draws)."""
    x = np.asarray(scores, dtype=np.float64)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    s, q = x.shape
    rng = np.random.default_rng(seed)
    means = np.empty(n)
    for start in range(0, n, 500):  # chunks keep memory at 500 x seeds x items
        m = min(500, n - start)
        si = rng.integers(0, s, (m, s))
        vi = rng.integers(0, q, (m, q))
        rows = x[si]  # (m, s, q): the drawn seeds
        cols = np.repeat(vi[:, None, :], s, axis=1)  # the same drawn items for each of them
        means[start:start + m] = np.take_along_axis(rows, cols, axis=2).mean(axis=(1, 2))
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def paired_gain(treatment, controls, n: int = N_BOOTSTRAP, seed: int = 0) -> dict:
    """Gain of ``treatment`` (per-item scores, (Q,)) over the mean of one or more ``controls``
    ((Q,) or (S, Q): S control runs, e.g. random-init seeds) on the same items, with bootstrap
    intervals. Returns ``mean``, ``ci``, ``control``, ``control_ci``, ``gain``, ``gain_ci``, ``items``."""
    t = np.asarray(treatment, dtype=np.float64).ravel()
    c = np.asarray(controls, dtype=np.float64)
    c = c.reshape(1, -1) if c.ndim == 1 else c
    if c.shape[1] != t.size:
        raise ValueError(f"controls score {c.shape[1]} items, the treatment {t.size}")
    cm = c.mean(axis=0)
    return {"mean": float(t.mean()), "ci": bootstrap_ci(t, n, seed), "control": float(cm.mean()),
            "control_ci": bootstrap_ci(cm, n, seed), "gain": float((t - cm).mean()),
            "gain_ci": bootstrap_ci(t - cm, n, seed), "items": int(t.size)}


def ratio_ci(numerator, denominator, n: int = N_BOOTSTRAP, seed: int = 0, level: float = 0.95) -> dict:
    """``mean(numerator) / mean(denominator)`` over the same items (e.g. a generator's per-clip
    error over a baseline's on the same clips), with a paired percentile-bootstrap interval (the
    items resampled together). Returns ``ratio``, ``ci``, ``items``."""
    a = np.asarray(numerator, dtype=np.float64).ravel()
    b = np.asarray(denominator, dtype=np.float64).ravel()
    if a.size == 0 or a.size != b.size:
        raise ValueError(f"need the same non-zero number of items, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    ratios = np.empty(n)
    for start in range(0, n, 1000):
        m = min(1000, n - start)
        idx = rng.integers(0, a.size, (m, a.size))
        ratios[start:start + m] = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    lo, hi = np.percentile(ratios, [50 * (1 - level), 50 * (1 + level)])
    return {"ratio": float(a.mean() / b.mean()), "ci": (float(lo), float(hi)), "items": int(a.size)}


def bootstrap_statistic_ci(statistic, items: int, n: int = 1000, seed: int = 0, level: float = 0.95
                           ) -> tuple[float, float]:
    """Percentile-bootstrap interval of a statistic that is not a mean of per-item scores (an
    Inception Score, a Frechet distance): ``statistic(idx)`` computes it on the items ``idx`` (an
    index array drawn with replacement from ``range(items)``), ``n`` times."""
    if items < 1:
        raise ValueError("no items")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, items, items)) for _ in range(n)], dtype=np.float64)
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def variance_components(scores) -> tuple[float, float, float]:
    """The variance components of a seeds x items matrix under the two-way model
    ``x[s, q] = mu + a_s + b_q + e_sq`` (balanced random-effects ANOVA, method of moments, each
    component floored at 0): ``(seed, item, residual)``. The seed component needs S >= 2 seeds (it is
    ``nan`` with one), the item component Q >= 2 items."""
    x = np.asarray(scores, dtype=np.float64)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    s, q = x.shape
    if s < 1 or q < 2:
        raise ValueError(f"need at least 2 items, got a {s} x {q} matrix")
    grand = x.mean()
    rows, cols = x.mean(axis=1), x.mean(axis=0)
    resid = x - rows[:, None] - cols[None, :] + grand
    if s == 1:  # no seed replication: the residual and the item effect cannot be told apart
        return float("nan"), float(cols.var(ddof=1)), 0.0
    ms_err = float((resid ** 2).sum() / ((s - 1) * (q - 1)))
    ms_seed = float(q * rows.var(ddof=1))
    ms_item = float(s * cols.var(ddof=1))
    return max(0.0, (ms_seed - ms_err) / q), max(0.0, (ms_item - ms_err) / s), ms_err


def sample_size_to_decide(scores, level: float = 0.95, max_n: int = 100_000,
                          ci: tuple[float, float] | None = None) -> dict:
    """How many seeds (at the measured number of items) or items (at the measured number of seeds)
    would make the interval of the mean of ``scores`` (S seeds x Q items, e.g. paired differences)
    exclude 0, if the mean and the variance components (:func:`variance_components`) stayed as
    measured: the smallest S' with ``z * sqrt(v_seed / S' + v_item / Q + v_res / (S' Q)) < |mean|``
    and likewise Q'. A normal approximation of :func:`two_level_bootstrap`'s interval, for planning;
    given that interval (``ci``), every component is scaled so that the approximation's bound on
    the side of 0 at the measured (S, Q) is the interval's (the two-level bootstrap counts the
    residual twice, so it is wider than the ANOVA's normal interval, and a percentile interval need
    not be symmetric), and the numbers needed follow from it.

    Returns ``mean``, ``half_width`` (the normal interval's now), ``seeds`` and ``items`` (the
    smallest number that decides it, which is at most the measured one when the interval already
    excludes 0; ``None`` when no
    number of that kind suffices, because the other kind's variance alone is too large, or when
    it cannot be estimated: the seed variance with one seed), ``measured``: (S, Q)."""
    x = np.asarray(scores, dtype=np.float64)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    s, q = x.shape
    z = NormalDist().inv_cdf(0.5 + level / 2)
    v_seed, v_item, v_res = variance_components(x)
    mean = float(x.mean())
    target = (mean / z) ** 2  # the variance of the mean that would just decide it
    vs = 0.0 if np.isnan(v_seed) else v_seed
    now = vs / s + v_item / q + v_res / (s * q)
    if ci is not None and now > 0:
        toward_zero = mean - ci[0] if mean >= 0 else ci[1] - mean  # the bound that decides it
        k = (max(toward_zero, 0.0) / z) ** 2 / now
        vs, v_item, v_res, now = vs * k, v_item * k, v_res * k, now * k
        v_seed = v_seed * k

    def need(fixed_var: float, per_var: float) -> int | None:
        # smallest n with fixed_var + per_var / n < target
        room = target - fixed_var
        if mean == 0 or room <= 0:
            return None
        n = int(np.floor(per_var / room)) + 1
        return n if n <= max_n else None

    seeds = None if np.isnan(v_seed) else need(v_item / q, v_seed + v_res / q)
    items = need(vs / s, v_item + v_res / s)
    return {"mean": mean, "half_width": float(z * np.sqrt(now)), "seeds": seeds, "items": items,
            "measured": (s, q)}


__all__ = ["N_BOOTSTRAP", "bootstrap_ci", "bootstrap_statistic_ci", "paired_gain", "ratio_ci", "sample_size_to_decide",
           "two_level_bootstrap", "variance_components"]
