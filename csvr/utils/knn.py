"""Weighted k-nearest-neighbour classification of frozen features (InstDisc, Wu et al. 2018;
the protocol solo-learn and most self-supervised papers report as "kNN accuracy").

Features are L2-normalised; a test video's ``k`` most cosine-similar training videos vote for
their class with weight ``exp(sim / tau)``; the class with the largest total is the prediction
(top-5: the five largest totals). ``k = 1`` is the plain nearest-neighbour label. Ties between
equally similar neighbours are broken by the lower training index, ties between class totals by
the lower class index, so results are deterministic.

Per-query correctness is returned (not only the mean) so that confidence intervals can be
bootstrapped over test videos (:mod:`csvr.eval.stats`).

Pure NumPy, in the foundation layer (``csvr.utils``) so that the training engine's online kNN
monitor (:mod:`csvr.engine.monitor`) and frozen-feature evaluation (``csvr.eval.knn``, which
re-exports these names) share one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KNN_K = (20, 1)
KNN_TAU = 0.07


@dataclass
class KnnResult:
    """``top1`` / ``top5``: per-query 0/1 arrays (Q,); ``predictions``: (Q,) top-1 classes."""

    k: int
    tau: float
    top1: np.ndarray
    top5: np.ndarray
    predictions: np.ndarray

    @property
    def top1_acc(self) -> float:
        return float(self.top1.mean()) if len(self.top1) else 0.0

    @property
    def top5_acc(self) -> float:
        return float(self.top5.mean()) if len(self.top5) else 0.0


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def weighted_knn(train_feats: np.ndarray, train_labels: np.ndarray, test_feats: np.ndarray,
                 test_labels: np.ndarray, k: int = 20, tau: float = KNN_TAU,
                 num_classes: int | None = None) -> KnnResult:
    """Weighted kNN (see the module docstring) of ``test_feats`` (Q, D) against ``train_feats`` (N, D)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    if tau <= 0:
        raise ValueError("tau must be > 0")
    tr, te = _normalise(train_feats), _normalise(test_feats)
    ytr = np.asarray(train_labels, dtype=np.int64)
    yte = np.asarray(test_labels, dtype=np.int64)
    if tr.shape[0] != ytr.shape[0] or te.shape[0] != yte.shape[0] or tr.shape[1] != te.shape[1]:
        raise ValueError(f"shapes do not match: train {tr.shape} / {ytr.shape}, test {te.shape} / {yte.shape}")
    if tr.shape[0] == 0:
        raise ValueError("no training features")
    c = int(num_classes if num_classes is not None else max(ytr.max(initial=0), yte.max(initial=0)) + 1)
    k = min(k, tr.shape[0])
    sim = te @ tr.T                                                   # (Q, N)
    nn = np.argsort(-sim, axis=1, kind="stable")[:, :k]               # (Q, k): ties -> lower index
    w = np.exp(np.take_along_axis(sim, nn, axis=1) / tau)
    scores = np.zeros((te.shape[0], c), dtype=np.float64)
    np.add.at(scores, (np.arange(te.shape[0])[:, None], ytr[nn]), w)
    order = np.argsort(-scores, axis=1, kind="stable")                # ties -> lower class index
    top1 = (order[:, 0] == yte).astype(np.float64)
    top5 = (order[:, :5] == yte[:, None]).any(axis=1).astype(np.float64)
    return KnnResult(k=k, tau=tau, top1=top1, top5=top5, predictions=order[:, 0])


__all__ = ["KNN_K", "KNN_TAU", "KnnResult", "weighted_knn"]
