"""Quality of the video generators, as the paper's Table II measures it, with baselines.

The paper reports an Inception Score (IS) of the clips the video generating branch makes (Table
II, beside the pose MSE and the context top-1), computed, as TGAN / TGANv2 do on UCF101, with an
action classifier trained supervised on real videos. csvr's analogue uses any classifier checkpoint
of ``csvr finetune`` whose feature reads the clip only (``backbone`` or ``fs``; ``fi`` and ``fd``
read poses, which a generated clip does not have): on the built-in dataset one trained from
scratch (``model.init=scratch``), on real data the user's own. Measured on one deterministic clip
of each held-out test video (:class:`csvr.methods.csvr.VideoDiagnostics`: the clips, fixed noise
and baselines the run's ``epochs.csv`` logs), for each generator (``r``: G_v^r, the clip; ``p``:
G_v^p, the future clip):

* ``is`` - Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al. 2016) of the generated
  clips, in [1, C] for C classes, with a 95 % bootstrap interval over clips; beside it ``is_real``,
  the same classifier on the real targets at the generator's resolution (what a perfect generator
  scores on these clips). The mean clip scores 1 (one prediction for every clip).
* ``top1`` - the classifier's top-1 on a generated clip against the action of the clip whose
  f_i conditioned it (the conditional question IS cannot ask); ``top1_real`` on the real targets;
  ``top1_shuffled`` the same generator and noise fed another clip's f_i (a fixed derangement,
  scored against the clip's own label): ``top1`` above it only if the generated action follows
  f_i. ``top1_gain`` is the paired difference with its interval.
* ``fd`` - Frechet distance (Heusel et al. 2017, "FID") between the classifier's features of the
  generated and of the real clips, with a bootstrap interval; baselines ``fd_mean`` (the training
  set's mean clip for every clip) and, for ``p``, ``fd_copy`` (the last observed frame repeated).
  With fewer clips than feature dimensions the estimate is biased upwards: compare values at the
  same number of clips only.

Pixels: a generated clip (frames, size, size) in [-1, 1] is mapped to [0, 1], resized to the
classifier's clip (trilinear, only if it differs) and normalised with the classifier's mean / std;
the real targets take exactly the same path (they are the clips resized to the generator's
resolution first), so a classifier that cannot see at that resolution shows it in ``top1_real``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from csvr.config import from_dict
from csvr.data.index import Manifest, load_manifest
from csvr.engine.checkpoint import Checkpoint, resolve_checkpoint
from csvr.engine.config import PretrainConfig
from csvr.engine.model import load_method
from csvr.errors import CsvrError
from csvr.eval.finetune import load_classifier
from csvr.eval.stats import bootstrap_ci, bootstrap_statistic_ci, paired_gain
from csvr.methods.base import Method
from csvr.models.csvr_model import CSVRBatch
from csvr.models.video_gan import video_noise, video_target_from_clip

# csvr.engine.model, csvr.eval.finetune and csvr.models (the methods, the trainer, the networks)
# are imported where they are used: `csvr --help` imports this module for the command's
# description (csvr.eval.commands), and they would add about 15 % to it.

log = logging.getLogger(__name__)

#: the generators' tags and what they make
TARGETS = {"r": "G_v^r (the clip)", "p": "G_v^p (the future clip)"}


# --------------------------------------------------------------------------- the two statistics
def inception_score(probs) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` of class probabilities ``probs`` (N, C), with p(y)
    their mean over the N items (one split: the items are few). 1 when every item gets the same
    distribution; C when the items are confidently spread evenly over the C classes."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs must be (N, C) with N >= 1, got shape {p.shape}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("probs must be probability rows (non-negative, summing to 1)")
    py = p.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(py)), 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))


def gaussian_frechet(mu1, cov1, mu2, cov2) -> float:
    """``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``: the Frechet (2-Wasserstein) distance
    between two Gaussians. ``Tr (S1 S2)^(1/2) = Tr (S1^(1/2) S2 S1^(1/2))^(1/2)``, a symmetric
    PSD matrix: computed with two symmetric eigendecompositions in float64 (no complex sqrtm)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ s2 @ root1
    tr_mean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_mean)
    return max(d, 0.0)


def frechet_distance(x, y) -> float:
    """Frechet distance between the Gaussians fitted to feature sets ``x`` (N, D) and ``y`` (M, D)
    (means, unbiased covariances; N, M >= 2)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise ValueError(f"need two (N, D) feature sets with N >= 2 and one D, got {x.shape} and {y.shape}")
    return gaussian_frechet(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))


# --------------------------------------------------------------------------- the classifier
@dataclass
class ClassifierScores:
    probs: np.ndarray  # (N, C) softmax
    features: np.ndarray  # (N, D) the classifier's input to its linear layer


class VideoScorer:
    """A finetuned classifier applied to clips in the generators' [-1, 1] pixel range."""

    def __init__(self, classifier, frames: int, size: int, classes: list[str], device: torch.device | str = "cpu",
                 source: str = ""):
        if classifier.encoder.needs_poses:
            raise CsvrError(f"{source or 'the classifier'}: its feature {classifier.feature!r} reads poses, which a "
                            "generated clip does not have; use a classifier of feature backbone or fs (csvr finetune "
                            "... --feature scratch, or --feature fs)")
        self.classifier = classifier.to(device).eval()
        self.frames, self.size, self.classes = int(frames), int(size), list(classes)
        self.device = torch.device(device)
        self.source = source

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "VideoScorer":
        """The classifier of a ``csvr finetune`` / ``linear-probe`` checkpoint, at its clip size."""
        classifier, raw = load_classifier(path)
        clip = ((raw.get("config") or {}).get("data") or {}).get("clip") or {}
        if "frames" not in clip or "size" not in clip:
            raise CsvrError(f"{path}: the checkpoint's config has no data.clip frames / size")
        return cls(classifier, clip["frames"], clip["size"], classifier.classes, device, str(path))

    def inputs(self, videos: Tensor) -> Tensor:
        """[-1, 1] (B, 3, T, S, S) -> the classifier's normalised input (B, 3, frames, size, size)."""
        x = (videos.float().to(self.device) + 1) / 2
        if tuple(x.shape[2:]) != (self.frames, self.size, self.size):
            x = F.interpolate(x, size=(self.frames, self.size, self.size), mode="trilinear", align_corners=False)
        enc = self.classifier.encoder
        mean = torch.tensor(enc.mean, device=x.device).view(1, 3, 1, 1, 1)
        std = torch.tensor(enc.std, device=x.device).view(1, 3, 1, 1, 1)
        return (x.clamp(0, 1) - mean) / std

    @torch.no_grad()
    def __call__(self, videos: Tensor, batch_size: int = 16) -> ClassifierScores:
        probs, feats = [], []
        for start in range(0, videos.shape[0], batch_size):
            f = self.classifier.features(self.inputs(videos[start:start + batch_size]))
            probs.append(torch.softmax(self.classifier.head(f).float(), dim=1).cpu())
            feats.append(f.float().cpu())
        return ClassifierScores(torch.cat(probs).numpy().astype(np.float64), torch.cat(feats).numpy().astype(np.float64))


# --------------------------------------------------------------------------- the measurement
def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of range(n) with no fixed point (n >= 2)."""
    if n < 2:
        raise ValueError("a derangement needs n >= 2")
    perm = np.random.default_rng(seed).permutation(n)
    for i in range(n):
        if perm[i] == i:  # nothing else maps to i, so swapping with any j keeps both off their places
            j = (i + 1) % n
            perm[i], perm[j] = perm[j], perm[i]
    return perm


def _interval(fn: Callable[[np.ndarray], float], n: int, boot: int, seed: int) -> tuple[float, float]:
    return bootstrap_statistic_ci(fn, n, boot, seed)


@torch.no_grad()
def measure_quality(method, diagnostics, scorer: VideoScorer, device: torch.device | str = "cpu",
                    labels: np.ndarray | None = None, boot: int = 1000, seed: int = 0, keep_probs: bool = False
                    ) -> dict[str, Any]:
    """The measures of the module docstring for a CSVR ``method`` on the clips of
    ``diagnostics`` (a :class:`~csvr.methods.csvr.VideoDiagnostics`); ``labels`` (N,) the
    classifier's class index of each clip (None: no top-1). Eval mode; nothing of the model
    changes. ``boot``: bootstrap resamples of the IS and FD intervals; ``keep_probs``: also each
    generator's per-clip class probabilities (``probs``, for an IS over other resamples)."""
    device = torch.device(device)
    m = method.model
    was_training = m.training
    m.eval()
    try:
        vcfg = m.cfg.video
        b = CSVRBatch.from_samples(diagnostics.batch).to(device)
        f_i = m.encode(b.clip, b.poses, b.pose_conf, "fi")
        n = f_i.shape[0]
        z = video_noise(n, vcfg, torch.Generator(device=device).manual_seed(diagnostics.seed), device, f_i.dtype)
        perm = torch.as_tensor(derangement(n, seed), device=device)
        reals = {"r": video_target_from_clip(b.clip, vcfg, m.pixel_mean, m.pixel_std),
                 "p": video_target_from_clip(b.future, vcfg, m.pixel_mean, m.pixel_std)}
        out: dict[str, Any] = {"clips": n, "classifier": scorer.source, "classes": len(scorer.classes),
                               "branch_steps": m.video_branch_steps()}
        for tag, gen in (("r", m.reconstructor), ("p", m.predictor)):
            if gen is None:
                continue
            real = scorer(reals[tag])
            fake = scorer(gen(z, f_i))
            shuffled = scorer(gen(z, f_i[perm]))
            mean_clip = scorer(getattr(m, f"video_mean_{tag}")[None].expand_as(reals[tag]))
            row: dict[str, Any] = {
                "is": inception_score(fake.probs),
                "is_ci": _interval(lambda i: inception_score(fake.probs[i]), n, boot, seed),
                "is_real": inception_score(real.probs),
                "is_real_ci": _interval(lambda i: inception_score(real.probs[i]), n, boot, seed),
                "is_shuffled": inception_score(shuffled.probs),
                "fd": frechet_distance(fake.features, real.features),
                "fd_ci": _interval(lambda i: frechet_distance(fake.features[i], real.features[i]), n, boot, seed),
                "fd_shuffled": frechet_distance(shuffled.features, real.features),
                "fd_mean": frechet_distance(mean_clip.features, real.features),
            }
            if keep_probs:
                row["probs"] = fake.probs.tolist()
            if tag == "p":
                copy = reals["r"][:, :, -1:].expand_as(reals["p"])
                row["fd_copy"] = frechet_distance(scorer(copy).features, real.features)
            if labels is not None:
                lab = np.asarray(labels)
                hit = fake.probs.argmax(1) == lab
                hit_real = real.probs.argmax(1) == lab
                hit_shuf = shuffled.probs.argmax(1) == lab
                row.update({"top1": float(hit.mean()), "top1_ci": bootstrap_ci(hit),
                            "top1_real": float(hit_real.mean()), "top1_real_ci": bootstrap_ci(hit_real),
                            "top1_shuffled": float(hit_shuf.mean()),
                            "top1_gain": paired_gain(hit.astype(float), hit_shuf.astype(float))})
            out[tag] = row
        return out
    finally:
        m.train(was_training)


def load_video_branch(checkpoint: str | Path) -> tuple[Method, Checkpoint]:
    """(the method, the checkpoint) of the CSVR pretraining checkpoint file ``checkpoint``; a
    :class:`CsvrError` when it is not CSVR or has no video branch."""
    method, ckpt = load_method(checkpoint)
    if getattr(method, "name", "") != "csvr" or not method.cfg.use_video:
        raise CsvrError(f"{checkpoint}: not a CSVR checkpoint with a video branch")
    return method, ckpt


def video_branch_diagnostics(method: Method, ckpt: Checkpoint, videos: int = 10_000
                             ) -> tuple[PretrainConfig, Manifest, Any]:
    """(the checkpoint's config, its manifest, the video branch's
    :class:`~csvr.methods.csvr.VideoDiagnostics`) on one clip of each test video of the
    checkpoint's split (at most ``videos``); the diagnostics are None when no clip has poses and a
    future clip."""
    cfg = from_dict(PretrainConfig, ckpt.config)
    manifest = load_manifest(cfg.data.manifest, allow_outside_root=cfg.data.allow_outside_root)
    diag = method.build_diagnostics(manifest, manifest.select(cfg.data.split, "train"), cfg.data.clip,
                                    cfg.data.pose_cache, cfg.data.split, videos, cfg.train.seed)
    return cfg, manifest, diag


def quality_of_checkpoint(checkpoint: str | Path, classifier: str | Path, videos: int = 10_000,
                          device: torch.device | str = "cpu", boot: int = 1000) -> dict[str, Any]:
    """:func:`measure_quality` of a CSVR pretraining checkpoint on one clip of each test video of
    its split (at most ``videos``), with the classifier checkpoint ``classifier``."""
    checkpoint, classifier = resolve_checkpoint(checkpoint), resolve_checkpoint(classifier)
    method, ckpt = load_video_branch(checkpoint)
    if method.model.video_branch_steps() == 0:
        raise CsvrError(f"{checkpoint}: its video branch has not trained yet (no mean clip to compare with)")
    scorer = VideoScorer.load(classifier, device)
    cfg, manifest, diag = video_branch_diagnostics(method, ckpt, videos)
    if diag is None:
        raise CsvrError(f"{checkpoint}: no usable clips (poses and a future clip) to generate from")
    labels = None
    if list(scorer.classes) == list(manifest.classes):
        labels = np.array([int(s["label"]) for s in diag.samples])
    else:
        log.warning("csvr: the classifier's classes differ from the dataset's: no top-1, IS and FD only")
    method.to(device)
    out = measure_quality(method, diag, scorer, device, labels, boot, cfg.train.seed)
    out.update({"checkpoint": str(checkpoint), "step": ckpt.step, "heldout": diag.heldout})
    return out


def format_quality(r: dict[str, Any]) -> str:
    """A few lines: per generator IS (real), top-1 (real, shuffled f_i), FD (mean clip, copy)."""
    def ci(v, c, pct=False):
        k = 100 if pct else 1
        return f"{k * v:.2f} [{k * c[0]:.2f}, {k * c[1]:.2f}]"

    lines = [f"{r['checkpoint']} (step {r['step']}, {r['clips']} {'held-out' if r['heldout'] else 'training'} clips, "
             f"classifier {r['classifier']}, {r['classes']} classes)"]
    for tag, what in TARGETS.items():
        row = r.get(tag)
        if row is None:
            continue
        lines.append(f"  {what}: IS {ci(row['is'], row['is_ci'])} (real clips {ci(row['is_real'], row['is_real_ci'])}, "
                     f"another clip's f_i {row['is_shuffled']:.2f}, mean clip 1.00)")
        if "top1" in row:
            g = row["top1_gain"]
            lines.append(f"    top-1 of the conditioning action {ci(row['top1'], row['top1_ci'], True)} % (real "
                         f"{100 * row['top1_real']:.1f} %, another clip's f_i {100 * row['top1_shuffled']:.1f} %, "
                         f"gain {ci(g['gain'], g['gain_ci'], True)})")
        extra = f", copy last frame {row['fd_copy']:.2f}" if "fd_copy" in row else ""
        lines.append(f"    FD {ci(row['fd'], row['fd_ci'])} (another clip's f_i {row['fd_shuffled']:.2f}, "
                     f"mean clip {row['fd_mean']:.2f}{extra})")
    return "\n".join(lines)


__all__ = ["ClassifierScores", "TARGETS", "VideoScorer", "derangement", "format_quality", "frechet_distance",
           "gaussian_frechet", "inception_score", "load_video_branch", "measure_quality", "quality_of_checkpoint",
           "video_branch_diagnostics"]
