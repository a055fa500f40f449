"""Turn batches of uint8 clips (and poses) into encoder inputs, and extract features.

Evaluation protocol (paper IV-B, Table VIII; VCOP/IIC): ``N`` clips spaced uniformly over each
video (``ClipDataset(mode="eval", num_clips=N)``), centre-cropped, no augmentation; a video's
feature is the mean of its clips' features (L2-normalised for retrieval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from csvr.data.transforms import normalize, to_float_clip
from csvr.utils.progress import progress


def encoder_inputs(batch: dict[str, Tensor], device: torch.device | str) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``clip`` uint8 ``(B, [N,] T, S, S, 3)`` -> normalised float ``(B*N, 3, T, S, S)``; poses
    ``(B, [N,] T, 18, 3)`` -> ``(B*N, T, 18, 2)`` and confidences ``(B*N, T, 18)`` (or None)."""
    clip = batch["clip"].to(device, non_blocking=True)
    if clip.ndim == 6:
        clip = clip.flatten(0, 1)
    x = normalize(to_float_clip(clip))
    poses = conf = None
    if "poses" in batch:
        p = batch["poses"].to(device, non_blocking=True).float()
        if p.ndim == 5:
            p = p.flatten(0, 1)
        poses, conf = p[..., :2], p[..., 2]
    return x, poses, conf


def needs_poses(encoder: nn.Module) -> bool:
    return getattr(encoder, "feature", "backbone") in ("fi", "fd")


@dataclass
class Features:
    """Per-clip features ``(V, N, D)`` of ``V`` videos, their labels ``(V,)`` and ids."""

    clips: np.ndarray
    labels: np.ndarray
    ids: list[str]

    @property
    def videos(self) -> np.ndarray:
        """Mean over each video's clips, L2-normalised: ``(V, D)`` (the retrieval feature)."""
        v = self.clips.mean(axis=1)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


@torch.no_grad()
def extract_features(encoder: nn.Module, dataset, batch_size: int = 8, workers: int = 0,
                     device: torch.device | str = "cpu", desc: str = "features") -> Features:
    """Features of every clip of every video of an eval-mode :class:`ClipDataset` (encoder in
    eval mode). Raises ValueError on non-finite features, naming the first bad video."""
    encoder = encoder.to(device).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=str(device).startswith("cuda"))
    feats, labels = [], []
    for batch in progress(loader, total=len(loader), desc=desc, unit="batch"):
        x, poses, conf = encoder_inputs(batch, device)
        b = batch["clip"].shape[0]
        f = encoder(x, poses, conf) if needs_poses(encoder) else encoder(x)
        feats.append(f.float().view(b, -1, f.shape[-1]).cpu())
        labels.append(batch["label"])
    clips = torch.cat(feats).numpy()
    bad = np.flatnonzero(~np.isfinite(clips).all(axis=(1, 2)))
    if bad.size:
        raise ValueError(f"non-finite features for {bad.size} video(s), e.g. {dataset.records[int(bad[0])].id}")
    return Features(clips, torch.cat(labels).numpy(), [r.id for r in dataset.records])
