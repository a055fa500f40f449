"""CVRL (Qian et al., CVPR 2021, ``shared/papers/cvrl-summary.md``) on csvr's engine and backbones.

Two clips of one video whose start frames are ``d`` frames apart, ``d`` drawn from a
monotonically decreasing distribution (CVRL Sec. 3.2, :func:`decreasing_interval`), each with its
own temporally consistent spatial augmentation (random resized crop + flip in the data-loader
worker, one set of parameters for all frames) and colour augmentation (jitter, grayscale, blur on
the device, one set per clip), a shared 3D backbone, an MLP projection head and NT-Xent
(CVRL Eq. 1, tau = 0.1).

Checked against the released code (tensorflow/models ``official/projects/video_ssl``):

* both views go through the network in **one pass** (the code merges the two clips into one batch
  of 2B, ``_postprocess_image``), so BatchNorm statistics are computed over both views;
* the head: hidden layers of the backbone's width (CVRL: 2048 for R3D-50, whose output is 2048),
  BatchNorm + ReLU, then a linear layer to 128. ``proj_layers`` counts linear layers: the default
  3 is the paper's "3-layer" MLP head; the released config has
  ``hidden_layer_num: 3`` hidden layers *plus* the output layer, i.e. ``proj_layers=4``;
* negatives are the 2B - 2 other clips of this process's batch (B the per-device batch); the
  original gathers the embeddings of all TPU cores (global batch 1024, sync BatchNorm);
* the temporal interval: :func:`decreasing_interval` samples exactly the released code's
  distribution (``sample_ssl_sequence``);
* augmentation strength is configuration (``data.color``, ``data.clip``), see ``docs/baselines.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from csvr.data.datasets import ClipDataset
from csvr.losses import LossOutput
from csvr.losses.baselines import nt_xent
from csvr.methods.base import register_method
from csvr.methods.contrastive import ContrastiveMethod, check_video_backbone
from csvr.models.backbones import BackboneConfig
from csvr.models.heads import projection_head


def decreasing_interval(rng: np.random.Generator, max_distance: int) -> int:
    """CVRL's temporal interval (Sec. 3.2): the distance ``d`` between the two clips' start frames,
    an integer in ``[0, D]`` (``D = max_distance``) from a linearly decreasing density.

    With ``M = D + 1`` possible distances, ``d = floor(X)`` with ``X`` of density ``2 (M - x) / M^2``
    on ``[0, M]`` (inverse CDF ``X = M (1 - sqrt(u))``), so ``P(d < k) = 1 - (1 - k / M)^2`` and
    ``P(d = k) ∝ M - k - 1/2 = D + 1/2 - k``: the released code's ``sample_ssl_sequence``
    (``power = 1``, whose ``max_offset`` is the number of start positions, ``M`` here). Every
    distance up to ``D`` (the clips at the two ends of the video) has non-zero probability."""
    if max_distance <= 0:
        return 0
    m = max_distance + 1
    return min(max_distance, int(m * (1.0 - np.sqrt(rng.random()))))


@dataclass
class CVRLConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    proj_dim: int = 128
    proj_hidden: int | None = None  # None: the backbone's output channels
    proj_layers: int = 3  # linear layers (the paper's 3-layer head; the released code's head is 4)
    tau: float = 0.1

    def __post_init__(self):
        check_video_backbone(self)
        if self.tau <= 0 or self.proj_layers < 1 or self.proj_dim < 1:
            raise ValueError("tau > 0, proj_layers >= 1 and proj_dim >= 1 are required")


@register_method("cvrl")
class CVRL(ContrastiveMethod):
    config_class = CVRLConfig

    def build_projection(self, in_dim: int) -> nn.Module:
        """The MLP head: ``proj_layers`` linear layers, hidden width ``proj_hidden`` (default: the backbone's)."""
        c = self.cfg
        return projection_head(in_dim, c.proj_hidden or in_dim, c.proj_dim, c.proj_layers)

    def train_dataset(self, manifest, records, clip_cfg, seed, pose_cache=None):
        return ClipDataset(manifest, records, clip_cfg, mode="train", num_clips=2, seed=seed,
                           temporal=decreasing_interval)

    def embed(self, clip: Tensor) -> Tensor:
        return self.project(clip)

    def training_step(self, batch: dict[str, Tensor], stage: str) -> LossOutput:
        clips = batch["clip"]  # (B, 2, T, S, S, 3) uint8: two clips of each video
        n = clips.shape[0]
        a, _ = self.augment_clip(clips[:, 0])  # independent colour parameters per view
        b, _ = self.augment_clip(clips[:, 1])
        z = self.embed(torch.cat([a, b], dim=0))  # one pass: BatchNorm statistics over both views
        za, zb = z[:n], z[n:]
        loss = nt_xent(za, zb, self.cfg.tau)
        # pair_top1: is a_i's nearest b (of B) b_i? (the released code's contrast_acc); chance 1 / B
        return LossOutput(total=loss, terms={"nt_xent": loss.detach(), "total": loss.detach()},
                          metrics=self.pair_metrics(za, zb))
