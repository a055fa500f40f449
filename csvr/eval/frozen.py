"""``csvr knn``: frozen-feature evaluation on cached features, with its control in the same command.

Protocol (InstDisc, Wu et al. 2018; solo-learn): every video is the L2-normalised mean of the
features of ``N`` uniformly spaced, centre-cropped clips (the extractor of ``csvr retrieve``,
:func:`csvr.eval.retrieval.split_features`); the training videos of the split are the memory, its
test videos the queries; weighted kNN (:func:`csvr.eval.knn.weighted_knn`, ``k`` = 20 and 1,
temperature 0.07) gives top-1 / top-5. ``--linear`` adds a multinomial logistic-regression probe
trained on the same cached training features (:func:`linear_probe`).

Control: the same network and feature from random weights (``load_encoder(random_init=True)``,
seeds 0 .. S-1), evaluated the same way. Each measure is printed as pretrained, control mean over
the seeds, their paired difference and its 95 % percentile-bootstrap interval over test videos
(:func:`csvr.eval.stats.paired_gain`).

Cache: features are extracted once per (checkpoint file hash, feature, initialisation and seed,
clip settings, clips per video, manifest file hash, root, split, pose cache) and stored as a
compressed ``.npz`` of float32 arrays, int64 labels and unicode ids (``np.load(allow_pickle=False)``
reads it: never a pickle), so a second evaluation of the same features takes seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from csvr.engine.checkpoint import Checkpoint
from csvr.engine.model import load_encoder
from csvr.errors import CsvrError
from csvr.eval.knn import KNN_TAU, weighted_knn
from csvr.eval.options import clip_settings
from csvr.eval.retrieval import split_features
from csvr.eval.stats import bootstrap_ci, paired_gain
from csvr.models.features import needs_poses
from csvr.utils.io import atomic_save_npz

log = logging.getLogger(__name__)

CACHE_VERSION = 1
DEFAULT_KS = (20, 1)
LINEAR_WEIGHT_DECAY = 1e-3


# ----------------------------------------------------------------------------- the cache
def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the checkpoint and manifest part of the cache key)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class CachedFeatures:
    """Video features of a split: ``train`` (N, D) / ``test`` (Q, D) float32, L2-normalised means of
    the clips' features, with labels and ids; ``path`` the cache file, ``reused`` whether it existed."""

    train: np.ndarray
    train_labels: np.ndarray
    train_ids: list[str]
    test: np.ndarray
    test_labels: np.ndarray
    test_ids: list[str]
    key: dict[str, Any]
    path: Path
    reused: bool = False
    seconds: float = 0.0


def cache_key(checkpoint_sha: str, feature: str, init: str, seed: int | None, clip: dict, clips: int,
              manifest_sha: str, root: str | None, split: str, pose_cache: str | None) -> tuple[dict, str]:
    """(the key's fields, their 16-hex-digit digest) of one set of cached features."""
    key = {"version": CACHE_VERSION, "checkpoint_sha256": checkpoint_sha, "feature": feature, "init": init,
           "seed": seed, "clip": clip, "clips_per_video": int(clips), "manifest_sha256": manifest_sha,
           "root": root, "split": str(split), "pose_cache": pose_cache}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return key, digest


def _load_cache(path: Path, key: dict) -> CachedFeatures | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["key"])) != json.loads(json.dumps(key)):  # tuples come back as lists
                return None  # a digest collision or an older format: extract again
            return CachedFeatures(z["train"], z["train_labels"], z["train_ids"].tolist(), z["test"],
                                  z["test_labels"], z["test_ids"].tolist(), key, path, reused=True)
    except (OSError, ValueError, KeyError) as e:
        log.warning("csvr: feature cache %s is unreadable (%s); extracting again", path, e)
        return None


def cached_features(checkpoint, feature: str, manifest, split: str, clip_cfg, clips: int, cache_dir: str | Path, *,
                    pose_cache: str | None = None, random_init: bool = False, seed: int = 0,
                    checkpoint_sha: str | None = None, manifest_sha: str | None = None, device: str = "cpu",
                    batch_size: int = 8, workers: int = 0) -> CachedFeatures:
    """Video features of ``feature`` of ``checkpoint`` (a path or a loaded
    :class:`~csvr.engine.checkpoint.Checkpoint`; ``random_init``: its architecture with weights
    seeded by ``seed``) on ``manifest``'s split, from the cache when it holds them, else extracted
    (:func:`csvr.eval.retrieval.split_features`) and stored."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.load(checkpoint)
    poses = str(Path(pose_cache).resolve()) if pose_cache and needs_poses(feature) else None
    key, digest = cache_key(checkpoint_sha or file_sha256(ckpt.path), feature, "random" if random_init else "checkpoint",
                            seed if random_init else None, dataclasses.asdict(clip_cfg), clips,
                            manifest_sha or file_sha256(manifest.path), str(manifest.root), split, poses)
    name = f"{feature}-{f'random{seed}' if random_init else 'pretrained'}-{digest}.npz"
    path = Path(cache_dir) / name
    if path.is_file():
        hit = _load_cache(path, key)
        if hit is not None:
            return hit
    t0 = time.perf_counter()
    encoder = load_encoder(ckpt, feature, random_init=random_init, seed=seed)
    q, g, _ = split_features(encoder, manifest, split, clip_cfg, clips, pose_cache, device, batch_size, workers,
                             str(ckpt.path), what="kNN")
    seconds = round(time.perf_counter() - t0, 2)
    out = CachedFeatures(g.videos.astype(np.float32), g.labels.astype(np.int64), list(g.ids),
                         q.videos.astype(np.float32), q.labels.astype(np.int64), list(q.ids), key, path,
                         reused=False, seconds=seconds)
    atomic_save_npz(path, train=out.train, train_labels=out.train_labels, train_ids=np.array(out.train_ids, dtype=str),
                    test=out.test, test_labels=out.test_labels, test_ids=np.array(out.test_ids, dtype=str),
                    key=np.array(json.dumps(key, sort_keys=True)))
    return out


# ----------------------------------------------------------------------------- the probes
def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 num_classes: int, weight_decay: float = LINEAR_WEIGHT_DECAY, max_iter: int = 500
                 ) -> dict[str, np.ndarray]:
    """Multinomial logistic regression on frozen features (the linear probe on cached features).

    Features are standardised with the training set's mean and std (random-init features are
    tiny and nearly collinear; without it the same ``weight_decay`` would mean different things
    for the two sides of a comparison). Minimises the mean cross-entropy plus
    ``weight_decay / 2 * ||W||^2`` (bias not decayed) to convergence with full-batch L-BFGS in
    float64 from zeros: a convex problem, so the result does not depend on a seed.
    Returns per-query ``top1`` / ``top5`` (0/1), ``predictions``, ``weight`` (C, D), ``bias`` (C,)
    and the standardisation ``mean`` / ``std``.
    """
    xtr = np.asarray(train_x, dtype=np.float64)
    xte = np.asarray(test_x, dtype=np.float64)
    mean, std = xtr.mean(axis=0), xtr.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    a = torch.from_numpy((xtr - mean) / std)
    y = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    w = torch.zeros(num_classes, a.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(a @ w.T + b, y) + 0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    weight, bias = w.detach().numpy(), b.detach().numpy()
    scores = ((xte - mean) / std) @ weight.T + bias
    order = np.argsort(-scores, axis=1, kind="stable")
    yte = np.asarray(test_y, dtype=np.int64)
    return {"top1": (order[:, 0] == yte).astype(np.float64),
            "top5": (order[:, :5] == yte[:, None]).any(axis=1).astype(np.float64),
            "predictions": order[:, 0], "weight": weight, "bias": bias, "mean": mean, "std": std}


def measure_names(ks: Sequence[int], linear: bool) -> list[str]:
    """The measures :func:`score` gives: ``knn{k}_top1``, ``knn{k}_top5`` (k > 1 only: with one
    neighbour the other four "guesses" are ties at zero), ``linear_top1`` / ``linear_top5``."""
    names = []
    for k in ks:
        names += [f"knn{k}_top1"] + ([f"knn{k}_top5"] if k > 1 else [])
    return names + (["linear_top1", "linear_top5"] if linear else [])


def score(f: CachedFeatures, ks: Sequence[int], tau: float, num_classes: int, linear: bool = False,
          weight_decay: float = LINEAR_WEIGHT_DECAY) -> dict[str, np.ndarray]:
    """Per-test-video 0/1 scores of every measure of :func:`measure_names` on cached features."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        r = weighted_knn(f.train, f.train_labels, f.test, f.test_labels, k=k, tau=tau, num_classes=num_classes)
        out[f"knn{k}_top1"] = r.top1
        if k > 1:
            out[f"knn{k}_top5"] = r.top5
    if linear:
        r = linear_probe(f.train, f.train_labels, f.test, f.test_labels, num_classes, weight_decay)
        out["linear_top1"], out["linear_top5"] = r["top1"], r["top5"]
    return out


def _pct(x):
    return [round(100 * v, 2) for v in x] if isinstance(x, (tuple, list)) else round(100 * x, 2)


# ----------------------------------------------------------------------------- the evaluation
def frozen_evaluation(checkpoint, feature: str, manifest, *, split: str = "1", clip_cfg=None,
                      clips: int = 10, pose_cache: str | None = None, ks: Sequence[int] = DEFAULT_KS,
                      tau: float = KNN_TAU, control_seeds: int = 3, linear: bool = False,
                      weight_decay: float = LINEAR_WEIGHT_DECAY, cache_dir: str | Path | None = None,
                      device: str = "cpu", batch_size: int = 8, workers: int = 0) -> dict:
    """kNN (and ``linear``) of the checkpoint's ``feature`` and of its random-init control over
    ``control_seeds`` seeds; returns the document ``csvr knn`` writes (percentages). ``checkpoint``:
    a path or a loaded :class:`~csvr.engine.checkpoint.Checkpoint`; ``clip_cfg`` default: its
    ``data.clip``."""
    t0 = time.time()
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.load(checkpoint)
    checkpoint = ckpt.path
    clip_cfg = clip_cfg or clip_settings(ckpt)
    if control_seeds and ckpt.is_classifier:
        raise CsvrError(f"{checkpoint} is a {ckpt.kind!r} checkpoint; its random-init control needs a pretraining "
                        "checkpoint (the architecture with fresh weights): pass one, or --control-seeds 0")
    if ckpt.is_classifier and feature != ckpt.feature:
        raise CsvrError(f"{checkpoint} was finetuned on feature {ckpt.feature!r}; use --feature {ckpt.feature}")
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(checkpoint)
    ckpt_sha, manifest_sha = file_sha256(ckpt.path), file_sha256(manifest.path)
    common = dict(pose_cache=pose_cache, checkpoint_sha=ckpt_sha, manifest_sha=manifest_sha, device=device,
                  batch_size=batch_size, workers=workers)
    pre = cached_features(ckpt, feature, manifest, split, clip_cfg, clips, cache_dir, **common)
    controls = [cached_features(ckpt, feature, manifest, split, clip_cfg, clips, cache_dir, random_init=True, seed=s,
                                **common) for s in range(control_seeds)]
    num_classes = manifest.num_classes
    names = measure_names(ks, linear)
    s_pre = score(pre, ks, tau, num_classes, linear, weight_decay)
    s_ctrl = [score(c, ks, tau, num_classes, linear, weight_decay) for c in controls]
    for c in controls:
        if c.test_ids != pre.test_ids or c.train_ids != pre.train_ids:
            raise CsvrError("the control's features cover other videos than the pretrained ones (unreadable videos?); "
                            "see the warnings above")
    measures: dict[str, dict] = {}
    flat: dict[str, Any] = {}
    for m in names:
        if controls:
            g = paired_gain(s_pre[m], np.stack([s[m] for s in s_ctrl]))
            d = {"mean": _pct(g["mean"]), "ci": _pct(g["ci"]), "control": _pct(g["control"]),
                 "control_ci": _pct(g["control_ci"]), "gain": _pct(g["gain"]), "gain_ci": _pct(g["gain_ci"]),
                 "control_seeds": [_pct(float(s[m].mean())) for s in s_ctrl]}
        else:
            d = {"mean": _pct(float(s_pre[m].mean())), "ci": _pct(bootstrap_ci(s_pre[m]))}
        measures[m] = d
        flat[m] = d["mean"]
        for part in ("ci", "control", "gain", "gain_ci"):
            if part in d:
                flat[f"{m}_{part}"] = d[part]
    return {
        "format": "csvr-knn", "version": 1, "units": "percent", "checkpoint": str(checkpoint),
        "checkpoint_sha256": ckpt_sha, "checkpoint_kind": ckpt.kind, "method": ckpt.architecture[0],
        "step": ckpt.step, "feature": feature, "manifest": str(Path(manifest.path).resolve()), "split": str(split),
        "clip": dataclasses.asdict(clip_cfg), "clips_per_video": clips, "ks": list(ks), "temperature": tau,
        "linear": {"weight_decay": weight_decay, "standardised": True} if linear else None,
        "control": {"what": "the same network and feature from random weights", "seeds": list(range(control_seeds))},
        "num_test": len(pre.test_ids), "num_train": len(pre.train_ids), "classes": list(manifest.classes),
        "measures": measures, **flat,
        "per_video": {"test_ids": pre.test_ids, "test_labels": pre.test_labels.tolist(),
                      "pretrained": {m: s_pre[m].astype(int).tolist() for m in names},
                      "controls": [{m: s[m].astype(int).tolist() for m in names} for s in s_ctrl]},
        "cache": {"dir": str(cache_dir), "files": [str(f.path) for f in [pre, *controls]],
                  "reused": [f.reused for f in [pre, *controls]],
                  "extract_seconds": [f.seconds for f in [pre, *controls]]},
        "seconds": round(time.time() - t0, 2),
    }


def default_cache_dir(checkpoint: str | Path) -> Path:
    """``RUN/feature-cache`` for ``RUN/checkpoints/step-*.pt``, else ``feature-cache`` beside the file."""
    p = Path(checkpoint).resolve()
    run = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return run / "feature-cache"


MEASURE_LABELS = {"linear_top1": "linear top-1", "linear_top5": "linear top-5"}


def format_table(doc: dict) -> str:
    """The side-by-side table ``csvr knn`` prints."""
    seeds = doc["control"]["seeds"]
    lines = [f"frozen features ({doc['method']} {doc['checkpoint_kind']}, step {doc['step']}, feature "
             f"{doc['feature']}): {doc['num_test']} test videos query {doc['num_train']} training videos, "
             f"{doc['clips_per_video']} clips per video, T = {doc['temperature']}"]
    if seeds:
        lines.append(f"control: the same network from random weights, seeds {', '.join(map(str, seeds))}; "
                     f"difference = pretrained - control mean, 95 % bootstrap CI over the {doc['num_test']} test videos")
        lines.append(f"{'measure':16s} {'pretrained':>10s} {'control':>8s} {'difference [95% CI]':>26s}")
    else:
        lines.append(f"{'measure':16s} {'pretrained':>10s} {'[95% CI]':>18s}")
    for m, d in doc["measures"].items():
        label = MEASURE_LABELS.get(m) or m.replace("knn", "kNN k=").replace("_top", " top-")
        if seeds:
            lo, hi = d["gain_ci"]
            lines.append(f"{label:16s} {d['mean']:9.1f}% {d['control']:7.1f}% {d['gain']:+9.1f} [{lo:+.1f}, {hi:+.1f}]")
        else:
            lo, hi = d["ci"]
            lines.append(f"{label:16s} {d['mean']:9.1f}% {'':>4s}[{lo:.1f}, {hi:.1f}]")
    return "\n".join(lines)


__all__ = ["CachedFeatures", "DEFAULT_KS", "LINEAR_WEIGHT_DECAY", "cache_key", "cached_features", "default_cache_dir",
           "file_sha256", "format_table", "frozen_evaluation", "linear_probe", "measure_names", "score"]
