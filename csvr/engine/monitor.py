"""The online kNN monitor: is pretraining learning anything a classifier could use?

solo-learn's users watch it instead of waiting for a finetuning run: every
``train.knn_monitor.every`` steps the current encoder's feature (a copy, in eval mode, without
gradients) is computed for a small labelled subset, and the weighted-kNN top-1 (InstDisc; k = 20,
temperature 0.07, :func:`csvr.utils.knn.weighted_knn`) of its test-part videos against its
training-part videos is logged with the losses (``knn_top1``, ``knn_top5`` in ``metrics.csv``, in
TensorBoard, printed) and kept in ``summary.json``.

**The labels are read by the monitor only.** Pretraining itself never sees a label; the monitor
is an instrument, like the pretext signals, and a run with the monitor on trains exactly as a run
with it off: it draws from no random stream (no data loader, no augmentation, eval-mode copies of
the encoder) and changes no weight or BatchNorm statistic, so losses, checkpoints and exact
resume are the same (tests/test_knn_monitor.py).

Which videos: ``train.knn_monitor.videos`` labelled videos of the split (``split``, default
``data.split``) of ``manifest`` (default ``data.manifest``), class-balanced, in the proportion of
the split's training and test parts; the training part's are the memory, the test part's the
queries. With the default ``data.subset: train``, the queries are videos pretraining never
decodes. Their clips (``clips`` uniformly spaced, centre-cropped; poses for ``fi`` / ``fd``) are
decoded once, on first use, and kept in memory; later runs only encode.

Only rank 0 computes it (the other ranks wait at their next collective). On a manifest without
labels or without a test part, a monitor that the config turns on without naming its own
``manifest`` / ``split`` (a preset's default) is switched off with a warning; one whose videos the
user named is an error.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import numpy as np
import torch
from torch.utils.data import default_collate

from csvr.data.datasets import ClipDataset
from csvr.data.index import load_manifest
from csvr.engine.config import PretrainConfig
from csvr.errors import ConfigError
from csvr.models.encoder import encoder_inputs
from csvr.models.features import check_feature, needs_poses
from csvr.utils.knn import weighted_knn

log = logging.getLogger(__name__)

KEY = "train.knn_monitor"


def balanced(records, n: int, seed: int = 0):
    """``n`` of ``records`` taken class by class in turn (each class's order shuffled by ``seed``
    with a generator of its own: the global random streams are not touched)."""
    by_class: dict[int, list] = defaultdict(list)
    for r in records:
        by_class[r.label].append(r)
    queues = []
    for label in sorted(by_class):
        group = by_class[label]
        order = np.random.default_rng([seed, label + 1]).permutation(len(group))
        queues.append([group[i] for i in order])
    out = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


class KnnMonitor:
    """See the module docstring. :meth:`build` returns None when the monitor is off."""

    def __init__(self, cfg: PretrainConfig, feature: str, manifest, memory, queries, pose_cache: str | None):
        self.mc = cfg.train.knn_monitor
        self.every = self.mc.every
        self.feature = feature
        self.manifest = manifest
        self.memory, self.queries = memory, queries
        self.pose_cache = pose_cache
        self.clip = cfg.data.clip
        self.batches: list[dict] | None = None
        self.labels = self.is_memory = None
        self.history: list[tuple[int, float]] = []
        self.seconds = 0.0
        self.decode_seconds = 0.0

    @classmethod
    def build(cls, cfg: PretrainConfig, method, train_manifest) -> "KnnMonitor | None":
        """The monitor of ``cfg`` for ``method`` (None when ``every`` is 0); every check that can
        fail runs here, before the first step, on every rank."""
        mc = cfg.train.knn_monitor
        if mc.every == 0:
            return None
        feature = mc.feature or method.features[0]
        try:
            check_feature(feature, tuple(method.features), f"method {cfg.method!r}")
        except ValueError as e:
            raise ConfigError(f"{KEY}.feature: {e}") from None
        manifest = train_manifest if not mc.manifest else load_manifest(
            mc.manifest, allow_outside_root=cfg.data.allow_outside_root)
        split = mc.split or cfg.data.split
        train = [r for r in manifest.select(split, "train") if r.label >= 0]
        test = [r for r in manifest.select(split, "test") if r.label >= 0]
        unusable = None
        if manifest.num_classes < 2:
            unusable = f"{manifest.path} has {manifest.num_classes} classes; the monitor needs a labelled manifest"
        elif not train or not test:
            unusable = (f"split {split!r} of {manifest.path} has {len(train)} labelled training and {len(test)} test "
                        "videos; the monitor needs both")
        if unusable:
            advice = f"set {KEY}.manifest (a labelled manifest) or {KEY}.split, or {KEY}.every=0"
            if mc.manifest or mc.split:  # the user chose these videos: they must do
                raise ConfigError(f"{KEY}: {unusable} ({advice})")
            # the preset's default on an unlabelled pretraining set: say so and train without it
            log.warning("csvr: %s: %s; the kNN monitor is off for this run (%s)", KEY, unusable, advice)
            return None
        n = min(mc.videos, len(train) + len(test))
        n_q = min(len(test), max(1, round(n * len(test) / (len(train) + len(test)))))
        n_m = min(len(train), max(1, n - n_q))
        pose_cache = None
        if needs_poses(feature):
            pose_cache = mc.pose_cache or cfg.data.pose_cache
            if not pose_cache:
                raise ConfigError(f"{KEY}: feature {feature!r} reads poses: set data.pose_cache or "
                                  f"{KEY}.pose_cache, or {KEY}.feature=fs")
        return cls(cfg, feature, manifest, balanced(train, n_m), balanced(test, n_q), pose_cache)

    def due(self, step: int) -> bool:
        return self.every > 0 and step > 0 and step % self.every == 0

    def _decode(self) -> None:
        """Decode the monitor's clips once (main process, no data loader: no random draws)."""
        t0 = time.perf_counter()
        records = self.memory + self.queries
        ds = ClipDataset(self.manifest, records, self.clip, mode="eval", num_clips=self.mc.clips,
                         pose_cache=self.pose_cache)
        items = [ds[i] for i in range(len(ds))]
        keep = [i for i, it in enumerate(items) if bool(it["ok"])]  # unreadable videos: left out
        self.labels = np.array([records[i].label for i in keep])
        self.is_memory = np.array([i < len(self.memory) for i in keep])
        bs = self.mc.batch_size
        self.batches = [default_collate([items[i] for i in keep[j:j + bs]]) for j in range(0, len(keep), bs)]
        if not self.is_memory.any() or self.is_memory.all():
            raise ConfigError(f"{KEY}: too few of its videos could be decoded to compare memory and queries")
        self.decode_seconds = time.perf_counter() - t0

    @torch.no_grad()
    def __call__(self, method, step: int, device) -> dict[str, float]:
        """kNN top-1 / top-5 of ``method``'s current encoder, in percent."""
        t0 = time.perf_counter()
        if self.batches is None:
            self._decode()
        encoder = method.encoder(self.feature).to(device).float().eval()  # a copy: training state untouched
        feats = []
        for batch in self.batches:
            x, poses, conf = encoder_inputs(batch, device)
            f = encoder.encode(x, poses, conf).float()
            feats.append(f.view(batch["clip"].shape[0], -1, f.shape[-1]).mean(dim=1).cpu())
        del encoder
        z = torch.cat(feats).numpy().astype(np.float64)
        if not np.isfinite(z).all():
            return {}  # a diverging encoder: the losses say so; the monitor has nothing to add
        m = self.is_memory
        r = weighted_knn(z[m], self.labels[m], z[~m], self.labels[~m], k=self.mc.k, tau=self.mc.tau,
                         num_classes=self.manifest.num_classes)
        self.seconds += time.perf_counter() - t0
        self.history.append((int(step), 100 * r.top1_acc))
        return {"knn_top1": 100 * r.top1_acc, "knn_top5": 100 * r.top5_acc}

    def line(self, step: int, values: dict[str, float]) -> str:
        return (f"csvr: step {step}: kNN top-1 {values['knn_top1']:.1f}% (feature {self.feature}, k={self.mc.k}, "
                f"{int(self.is_memory.sum())} memory / {int((~self.is_memory).sum())} query videos; labels used by "
                "the monitor only)")

    def summary(self) -> dict:
        out = {"feature": self.feature, "k": self.mc.k, "tau": self.mc.tau, "every": self.every,
               "manifest": str(self.manifest.path), "memory_videos": len(self.memory),
               "query_videos": len(self.queries), "history": [[s, round(v, 3)] for s, v in self.history],
               "seconds": round(self.seconds, 2), "decode_seconds": round(self.decode_seconds, 2)}
        if self.is_memory is not None:
            out["memory_videos"], out["query_videos"] = int(self.is_memory.sum()), int((~self.is_memory).sum())
        return out


__all__ = ["KnnMonitor", "balanced"]
