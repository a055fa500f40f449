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


__all__ = ["N_BOOTSTRAP", "bootstrap_ci", "bootstrap_statistic_ci", "paired_gain", "ratio_ci", "two_level_bootstrap"]
