"""Nearest-neighbour video retrieval (paper Table VIII; the VCOP / IIC protocol).

Protocol: every video is represented by the mean of the features of ``N`` (10) uniformly spaced,
centre-cropped clips, L2-normalised (:class:`csvr.eval.features.Features.videos`); every *test*
video queries the *training* videos by cosine similarity, and Recall@k is the fraction of queries
for which at least one of the k nearest training videos has the query's class.

Search is exact. The similarities are first computed by an engine - faiss ``IndexFlatIP``
(``backend="faiss"``) or a chunked torch matrix product (``backend="torch"``, on the GPU when
there is one) - which returns a few more candidates than needed; the candidates are then scored
again in float64 and ranked by

1. higher cosine similarity (float64), then
2. **lower gallery index first** on exact ties.

Where the engine's float32 scores cannot rule out that a non-candidate belongs in the top k
(its float32 score is within the float32 error bound of the k-th float64 score), that query is
ranked over the whole gallery in float64. Both backends therefore return identical neighbours,
in a documented order, whatever their BLAS does with near-ties.

``k`` larger than the gallery is clamped to the gallery size: R@k for such k is the fraction of
queries whose class occurs in the gallery at all.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable, Literal, Sequence

import numpy as np
import torch

from csvr.data.datasets import ClipDataset
from csvr.errors import CsvrError
from csvr.eval.features import extract_features
from csvr.models.encoder import Encoder

log = logging.getLogger(__name__)

Backend = Literal["auto", "faiss", "torch"]
DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50)

_MARGIN = 16                      # extra candidates asked from the engine beyond k
_GALLERY_CHUNK = 8192             # rows per float64 scoring chunk (~32 MiB at D = 512)
_SCORE_BUDGET = 1 << 25           # float32 scores per torch chunk (128 MiB)


class FeatureError(CsvrError, ValueError):
    """Features that cannot be searched: NaN/inf, wrong shape, empty, mismatched labels."""


# ----------------------------------------------------------------------------- helpers
def _as_array(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise FeatureError(f"{name} features must be a 2-D array (videos, dim), got shape {a.shape}")
    if a.shape[0] == 0:
        raise FeatureError(f"{name} features are empty (no videos)")
    bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
    if bad.size:
        raise FeatureError(f"{name} features contain NaN or inf in {bad.size} of {a.shape[0]} rows "
                           f"(first: row {int(bad[0])}); the encoder produced non-finite features")
    return a


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (a zero row stays zero: cosine 0 with everything)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _dot64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two (m, D) float64 arrays.

    An elementwise product then a sum over the contiguous last axis (numpy's pairwise summation):
    a row's result depends only on its two vectors, never on which other rows are in the batch,
    so the candidate path and the whole-gallery path give bit-identical scores (a BLAS matrix
    product would not guarantee that).
    """
    return np.ascontiguousarray(a * b).sum(axis=1)


def resolve_backend(backend: Backend) -> str:
    if backend not in ("auto", "faiss", "torch"):
        raise CsvrError(f"unknown retrieval backend {backend!r}; valid: auto, faiss, torch")
    if backend == "torch":
        return "torch"
    # faiss's loader reports at INFO which CPU build it picked; not news for a user
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        import faiss  # noqa: F401
    except ImportError:
        if backend == "faiss":
            raise CsvrError("backend 'faiss' needs the faiss-cpu package (pip install faiss-cpu), "
                            "or use --backend torch") from None
        return "torch"
    return "faiss"


def _engine_faiss(q32: np.ndarray, g32: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexFlatIP(g32.shape[1])
    index.add(g32)
    scores, idx = index.search(q32, kc)
    return idx.astype(np.int64), scores.astype(np.float32)


def _engine_torch(q32: np.ndarray, g32: np.ndarray, kc: int, device: str | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    g = torch.from_numpy(g32).to(dev)
    step = max(1, _SCORE_BUDGET // max(1, g.shape[0]))
    idx_out, val_out = [], []
    for s in range(0, q32.shape[0], step):
        q = torch.from_numpy(q32[s:s + step]).to(dev)
        vals, idx = (q @ g.T).topk(kc, dim=1, largest=True, sorted=True)
        idx_out.append(idx.cpu().numpy())
        val_out.append(vals.float().cpu().numpy())
    return np.concatenate(idx_out).astype(np.int64), np.concatenate(val_out)


def _exact_row(q: np.ndarray, g64: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of one query over the whole gallery, float64, ties by lower index."""
    n = g64.shape[0]
    scores = np.empty(n, dtype=np.float64)
    for s in range(0, n, _GALLERY_CHUNK):
        rows = g64[s:s + _GALLERY_CHUNK]
        scores[s:s + len(rows)] = _dot64(rows, np.broadcast_to(q, rows.shape))
    order = np.lexsort((np.arange(n), -scores))[:k]
    return order.astype(np.int64), scores[order]


@dataclass
class Neighbors:
    """``indices`` ``(Q, k)`` gallery rows, best first; ``scores`` ``(Q, k)`` float64 cosines;
    ``exact_fallbacks``: how many queries had to be ranked over the whole gallery."""

    indices: np.ndarray
    scores: np.ndarray
    backend: str
    exact_fallbacks: int = 0


def nearest_neighbors(query_feats, gallery_feats, k: int = 5, backend: Backend = "auto",
                      device: str | None = None) -> Neighbors:
    """The ``k`` nearest gallery rows of every query by cosine similarity (exact; ``k`` is
    clamped to the gallery size). Order: higher float64 cosine first, then lower gallery index.
    Raises :class:`FeatureError` on NaN/inf or mismatched dimensions."""
    q64 = l2_normalize(_as_array(query_feats, "query"))
    g64 = l2_normalize(_as_array(gallery_feats, "gallery"))
    if q64.shape[1] != g64.shape[1]:
        raise FeatureError(f"query features have dimension {q64.shape[1]}, gallery features {g64.shape[1]}")
    if int(k) < 1:
        raise FeatureError(f"k must be >= 1, got {k}")
    n, dim = g64.shape
    k = min(int(k), n)
    kc = min(n, k + _MARGIN)
    engine = resolve_backend(backend)
    q32 = np.ascontiguousarray(q64, dtype=np.float32)
    g32 = np.ascontiguousarray(g64, dtype=np.float32)
    if engine == "faiss":
        cand, cand32 = _engine_faiss(q32, g32, kc)
    else:
        cand, cand32 = _engine_torch(q32, g32, kc, device)

    nq = q64.shape[0]
    cand64 = np.empty(cand.shape, dtype=np.float64)
    step = max(1, _GALLERY_CHUNK // kc)
    for s in range(0, nq, step):
        c = cand[s:s + step]
        qa = np.repeat(q64[s:s + step], kc, axis=0)
        cand64[s:s + step] = _dot64(qa, g64[c.ravel()]).reshape(c.shape)
    order = np.lexsort((cand, -cand64), axis=-1)[:, :k]
    indices = np.take_along_axis(cand, order, axis=1)
    scores = np.take_along_axis(cand64, order, axis=1)

    fallbacks = 0
    if kc < n:
        # a gallery row outside the candidates has a float32 engine score <= the lowest
        # candidate's; its true score is within `tol` of that. If it could reach the k-th
        # float64 score (or tie with it), rank that query over the whole gallery instead.
        tol = 4.0 * (dim + 2) * 2.0 ** -24
        unsure = np.flatnonzero(cand32.min(axis=1).astype(np.float64) + 2 * tol >= scores[:, k - 1])
        for i in unsure:
            indices[i], scores[i] = _exact_row(q64[i], g64, k)
        fallbacks = int(unsure.size)
    return Neighbors(indices=indices, scores=scores, backend=engine, exact_fallbacks=fallbacks)


def _check_ks(ks: Iterable[int]) -> list[int]:
    out = []
    for k in ks:
        if int(k) != k or int(k) < 1:
            raise FeatureError(f"every k must be a positive integer, got {k!r}")
        out.append(int(k))
    if not out:
        raise FeatureError("no k given")
    return out


def recall_from_neighbors(neighbor_indices: np.ndarray, query_labels, gallery_labels,
                          ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """R@k from precomputed neighbours ``(Q, K)`` (best first): a query is a hit at k when one of
    its first ``min(k, K)`` neighbours has its label."""
    ks = _check_ks(ks)
    ql = np.asarray(query_labels)
    gl = np.asarray(gallery_labels)
    nb = np.asarray(neighbor_indices, dtype=np.int64)
    if nb.ndim != 2 or nb.shape[0] != ql.shape[0]:
        raise FeatureError(f"neighbours {nb.shape} do not match {ql.shape[0]} query labels")
    same = gl[nb] == ql[:, None]                      # (Q, K)
    first_hit = np.where(same.any(axis=1), same.argmax(axis=1), np.iinfo(np.int64).max)
    return {k: float((first_hit < k).mean()) for k in ks}


def recall_at_k(query_feats, query_labels, gallery_feats, gallery_labels, ks: Sequence[int] = DEFAULT_KS,
                backend: Backend = "auto", device: str | None = None) -> dict[int, float]:
    """Recall@k of nearest-neighbour retrieval by cosine similarity (paper Table VIII).

    Args:
        query_feats: ``(Q, D)`` features of the query (test) videos, numpy or torch; they are
            L2-normalised here, so raw mean-of-clips features are fine.
        query_labels: ``(Q,)`` class labels.
        gallery_feats: ``(G, D)`` features of the gallery (training) videos.
        gallery_labels: ``(G,)``.
        ks: the k values; a k larger than G is clamped to G.
        backend: ``"faiss"`` (IndexFlatIP), ``"torch"``, or ``"auto"`` (faiss when installed);
            both give identical results (see the module docstring for the ranking rule).

    Returns:
        ``{k: fraction of queries with a same-class video among their k nearest}``.

    Raises:
        FeatureError: NaN/inf features (naming how many rows), empty inputs, mismatched shapes.
    """
    ks = _check_ks(ks)
    ql = np.asarray(query_labels)
    gl = np.asarray(gallery_labels)
    nq = np.shape(query_feats)[0] if np.ndim(query_feats) else 0
    ng = np.shape(gallery_feats)[0] if np.ndim(gallery_feats) else 0
    if ql.shape != (nq,) or gl.shape != (ng,):
        raise FeatureError(f"labels {ql.shape} / {gl.shape} do not match features for {nq} queries / {ng} "
                           "gallery videos")
    nb = nearest_neighbors(query_feats, gallery_feats, max(ks), backend, device)
    return recall_from_neighbors(nb.indices, ql, gl, ks)


# ----------------------------------------------------------------------------- the protocol
@dataclass
class RetrievalResult:
    """What ``csvr retrieve`` writes to ``retrieval.json`` (see :meth:`to_json`)."""

    recall: dict[int, float]
    feature: str
    checkpoint: str
    num_queries: int
    num_gallery: int
    neighbors: list[list[int]]
    neighbor_scores: list[list[float]]
    query_ids: list[str]
    gallery_ids: list[str]
    query_labels: list[int]
    gallery_labels: list[int]
    classes: list[str]
    backend: str
    seconds: dict[str, float] = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)
    left_out_videos: list[str] = field(default_factory=list)  # unreadable videos, in neither side

    def to_json(self) -> dict:
        d = asdict(self)
        d["recall"] = {str(k): v for k, v in self.recall.items()}
        d["format"] = "csvr-retrieval"
        d["version"] = 1
        return d


def split_features(encoder: Encoder, manifest, split: str, clip_cfg, num_clips: int = 10,
                   pose_cache: str | None = None, device: str = "cpu", batch_size: int = 8, workers: int = 0,
                   checkpoint: str = "", what: str = "retrieval"):
    """Features of the test videos (queries) and training videos (gallery) of ``manifest``'s split
    ``split``, each video from ``num_clips`` uniformly spaced, centre-cropped clips (the one
    extractor of ``csvr retrieve`` and ``csvr knn``). Returns ``(query Features, gallery Features,
    seconds)``."""
    queries = manifest.select(split, "test")
    gallery = manifest.select(split, "train")
    if not queries or not gallery:
        raise CsvrError(f"split {split!r} of {manifest.path} has {len(queries)} test and {len(gallery)} training "
                        f"videos; {what} needs both (test videos query the training videos)")
    cache = pose_cache if encoder.needs_poses else None
    times = {}
    feats = {}
    for name, records in (("query", queries), ("gallery", gallery)):
        ds = ClipDataset(manifest, records, clip_cfg, mode="eval", num_clips=num_clips, pose_cache=cache)
        t0 = time.perf_counter()
        try:
            feats[name] = extract_features(encoder, ds, batch_size=batch_size, workers=workers, device=device,
                                           desc=f"{name} features")
        except ValueError as e:
            raise FeatureError(f"{checkpoint or 'the encoder'}: {e}") from None
        times[f"{name}_features"] = round(time.perf_counter() - t0, 3)
    return feats["query"], feats["gallery"], times


def retrieve_videos(encoder: Encoder, manifest, split: str, clip_cfg, num_clips: int = 10,
                    pose_cache: str | None = None, ks: Sequence[int] = DEFAULT_KS, backend: Backend = "auto",
                    device: str = "cpu", batch_size: int = 8, workers: int = 0, checkpoint: str = "",
                    keep: int | None = None):
    """Run the Table VIII protocol with ``encoder`` on ``manifest``'s split ``split``: features of
    the test videos (queries) and training videos (gallery) from ``num_clips`` uniformly spaced
    clips, then :func:`recall_at_k`. Returns ``(RetrievalResult, query Features, gallery Features)``.

    ``keep``: how many neighbours per query to store (default ``max(ks)``, clamped to the gallery).
    """
    ks = _check_ks(ks)
    q, g, times = split_features(encoder, manifest, split, clip_cfg, num_clips, pose_cache, device, batch_size,
                                 workers, checkpoint, what="retrieval")
    t0 = time.perf_counter()
    nb = nearest_neighbors(q.videos, g.videos, keep or max(ks), backend, device)
    recall = recall_from_neighbors(nb.indices, q.labels, g.labels, ks)
    times["search"] = round(time.perf_counter() - t0, 3)
    if nb.exact_fallbacks:
        log.info("csvr: %d queries ranked over the whole gallery in float64 (near-ties at the candidate boundary)",
                 nb.exact_fallbacks)
    result = RetrievalResult(
        recall=recall, feature=getattr(encoder, "feature", "backbone"), checkpoint=str(checkpoint),
        num_queries=len(q.ids), num_gallery=len(g.ids), neighbors=nb.indices.tolist(),
        neighbor_scores=np.round(nb.scores, 6).tolist(), query_ids=q.ids, gallery_ids=g.ids,
        query_labels=q.labels.tolist(), gallery_labels=g.labels.tolist(), classes=manifest.classes,
        backend=nb.backend, seconds=times,
        protocol={"clips_per_video": num_clips, "similarity": "cosine", "video_feature": "mean of clip features",
                  "ties": "lower gallery index first", "ks_clamped_to_gallery": True},
        left_out_videos=q.left_out + g.left_out)
    return result, q, g


def format_recall_table(recall: dict[int, float], title: str = "") -> str:
    """A two-line plain-text table: ``R@1  R@5 ...`` over percentages."""
    ks = sorted(recall)
    head = "  ".join(f"{'R@' + str(k):>7s}" for k in ks)
    vals = "  ".join(f"{100 * recall[k]:7.1f}" for k in ks)
    return (f"{title}\n" if title else "") + head + "\n" + vals


__all__ = ["DEFAULT_KS", "FeatureError", "Neighbors", "RetrievalResult", "format_recall_table", "l2_normalize",
           "nearest_neighbors", "recall_at_k", "recall_from_neighbors", "resolve_backend", "retrieve_videos",
           "split_features"]
