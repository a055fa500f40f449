"""Weighted k-nearest-neighbour classification of frozen features (InstDisc, Wu et al. 2018;
the protocol solo-learn and most self-supervised papers report as "kNN accuracy").

Features are L2-normalised; a test video's ``k`` most cosine-similar training videos vote for
their class with weight ``exp(sim / tau)``; the class with the largest total is the prediction
(top-5: the five largest totals). ``k = 1`` is the plain nearest-neighbour label. Ties between
equally similar neighbours are broken by the lower training index, ties between class totals by
the lower class index, so results are deterministic.

Per-query correctness is returned (not only the mean) so that confidence intervals can be
bootstrapped over test videos (:mod:`csvr.eval.stats`).

The implementation lives in :mod:`csvr.utils.knn` (pure NumPy), where the training engine's
online kNN monitor can use it too (docs/architecture.md); this module keeps the names.
"""

from __future__ import annotations

from csvr.utils.knn import KNN_K, KNN_TAU, KnnResult, _normalise, weighted_knn  # noqa: F401 (re-exported)

__all__ = ["KNN_K", "KNN_TAU", "KnnResult", "weighted_knn"]
