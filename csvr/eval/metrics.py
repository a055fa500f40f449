"""Classification metrics: clip- and video-level top-1, per-class accuracy, confusion matrix.

Video-level prediction (paper IV-B, the usual protocol): the mean of the softmax class scores of
a video's ``N`` uniformly spaced clips, then argmax.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def classification_report(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """``logits`` ``(V, N, C)`` for V videos of N clips, ``labels`` ``(V,)`` -> a dict with
    ``clip_top1``, ``video_top1``, ``video_top5`` (the true class among the five best video
    scores), ``mean_class_accuracy`` (the mean of ``per_class`` over classes with test videos),
    ``per_class`` (video level, by class name; None for a class
    without test videos), ``confusion`` (``C x C`` counts, rows = true class) and
    ``video_predictions``."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 3 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits must be (videos, clips, classes) matching labels, got {logits.shape}, {labels.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("non-finite logits")
    v, n, c = logits.shape
    clip_pred = logits.argmax(axis=2)
    clip_top1 = float((clip_pred == labels[:, None]).mean()) if v else 0.0
    probs = video_scores(logits)                                          # (V, C)
    order = np.argsort(-probs, axis=1, kind="stable")                     # ties -> lower class index
    video_pred = order[:, 0] if v else np.zeros(0, dtype=np.int64)
    video_top1 = float((video_pred == labels).mean()) if v else 0.0
    video_top5 = float((order[:, :5] == labels[:, None]).any(axis=1).mean()) if v else 0.0
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (labels, video_pred), 1)
    per_class = {}
    for k, name in enumerate(classes):
        total = confusion[k].sum()
        per_class[name] = float(confusion[k, k] / total) if total else None
    present = [a for a in per_class.values() if a is not None]
    return {"clip_top1": clip_top1, "video_top1": video_top1, "video_top5": video_top5,
            "mean_class_accuracy": float(np.mean(present)) if present else 0.0, "per_class": per_class,
            "confusion": confusion.tolist(), "video_predictions": video_pred.tolist(), "num_videos": int(v),
            "clips_per_video": int(n)}


def video_scores(logits: np.ndarray) -> np.ndarray:
    """``(V, N, C)`` clip logits -> ``(V, C)`` video scores: the mean of the clips' softmax, the
    score :func:`classification_report` ranks (paper IV-B)."""
    return softmax(np.asarray(logits, dtype=np.float64), axis=-1).mean(axis=-2)
