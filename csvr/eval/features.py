"""Turn batches of uint8 clips (and poses) into encoder inputs, and extract features.

Evaluation protocol (paper IV-B, Table VIII; VCOP/IIC): ``N`` clips spaced uniformly over each
video (``ClipDataset(mode="eval", num_clips=N)``), centre-cropped, no augmentation; a video's
feature is the mean of its clips' features (L2-normalised for retrieval).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from csvr.models.encoder import Encoder, encoder_inputs  # noqa: F401 (encoder_inputs: re-exported)
from csvr.utils.progress import progress


@dataclass
class Features:
    """Per-clip features ``(V, N, D)`` of ``V`` videos, their labels ``(V,)`` and ids (readable videos only)."""

    clips: np.ndarray
    labels: np.ndarray
    ids: list[str]
    left_out: list[str] = field(default_factory=list)  # unreadable videos, not in clips/labels/ids

    @property
    def videos(self) -> np.ndarray:
        """Mean over each video's clips, L2-normalised: ``(V, D)`` (the retrieval feature)."""
        v = self.clips.mean(axis=1)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


@torch.no_grad()
def run_eval(fn, dataset, batch_size: int = 8, workers: int = 0, device: torch.device | str = "cpu",
             desc: str = "evaluating") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``fn(x, poses, conf) -> (B*N, D)`` over every video of an eval-mode ``ClipDataset``:
    outputs ``(V, N, D)``, labels ``(V,)`` and ``ok`` ``(V,)`` (False for a video that could not be
    decoded: its row is zeros and must be left out, see :mod:`csvr.data.datasets`)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=str(device).startswith("cuda"))
    outs, labels, ok = [], [], []
    for batch in progress(loader, total=len(loader), desc=desc, unit="batch"):
        x, poses, conf = encoder_inputs(batch, device)
        b = batch["clip"].shape[0]
        y = fn(x, poses, conf)
        outs.append(y.float().view(b, -1, y.shape[-1]).cpu())
        labels.append(batch["label"])
        ok.append(batch["ok"] if "ok" in batch else torch.ones(b, dtype=torch.bool))
    return torch.cat(outs).numpy(), torch.cat(labels).numpy(), torch.cat(ok).numpy().astype(bool)


def report_left_out(dataset, ok: np.ndarray, what: str) -> list[str]:
    """Ids of the videos left out (``ok`` False), logged once as a warning with a count."""
    left = [dataset.records[i].id for i in np.flatnonzero(~ok)]
    if left:
        logging.getLogger(__name__).warning(
            "csvr: %d of %d video(s) could not be decoded and are left out of %s: %s%s", len(left), len(ok), what,
            ", ".join(left[:5]), " ..." if len(left) > 5 else "")
    return left


@torch.no_grad()
def extract_features(encoder: Encoder, dataset, batch_size: int = 8, workers: int = 0,
                     device: torch.device | str = "cpu", desc: str = "features") -> Features:
    """Features of every clip of every readable video of an eval-mode :class:`ClipDataset`
    (encoder in eval mode); unreadable videos are left out and reported (``Features.left_out``).
    Raises ValueError on non-finite features, naming the first bad video."""
    encoder = encoder.to(device).eval()
    clips, labels, ok = run_eval(encoder.encode, dataset, batch_size, workers, device, desc)
    bad = np.flatnonzero(~np.isfinite(clips).all(axis=(1, 2)) & ok)
    if bad.size:
        raise ValueError(f"non-finite features for {bad.size} video(s), e.g. {dataset.records[int(bad[0])].id}")
    left = report_left_out(dataset, ok, desc)
    if not ok.any():
        raise ValueError(f"none of the {len(ok)} videos could be decoded, e.g. {left[0]}")
    ids = [r.id for r, k in zip(dataset.records, ok) if k]
    return Features(clips[ok], labels[ok], ids, left)
