"""Weighted kNN of frozen features: the names evaluation has always used, re-exported from
:mod:`csvr.utils.knn` (the one implementation, there so that the training engine's online kNN
monitor can use it too; docs/architecture.md)."""

from __future__ import annotations

from csvr.utils.knn import KNN_K, KNN_TAU, KnnResult, _normalise, weighted_knn  # noqa: F401 (re-exported)

__all__ = ["KNN_K", "KNN_TAU", "KnnResult", "weighted_knn"]
