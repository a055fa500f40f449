"""CVRL (Qian et al., CVPR 2021, ``shared/papers/cvrl-summary.md``) on csvr's engine and backbones.

Two clips of one video at a temporal distance ``d`` drawn from a monotonically decreasing
distribution (``P(d) ∝ D - d`` on ``[0, D]``, D the largest distance the video allows), each
with its own temporally consistent spatial augmentation (crop + flip in the worker) and colour
augmentation (on the device), a shared 3D backbone, an MLP projection head and NT-Xent.

Sizes follow the paper where it is explicit (3-layer head, tau = 0.1); the head's width scales
with the backbone's (CVRL: 2048 for R3D-50; here the backbone's channel count) so small CPU
presets stay small.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
from torch import Tensor

from csvr.data.datasets import ClipDataset
from csvr.losses.baselines import nt_xent
from csvr.methods.base import BackboneEncoder, LossOutput, Method, pair_top1, projection_head, register_method
from csvr.models.backbones import backbone_kind
from csvr.models.csvr_model import BackboneConfig


def decreasing_interval(rng: np.random.Generator, max_distance: int) -> int:
    """CVRL's temporal interval: ``d`` in ``[0, max_distance]`` with density ∝ ``max_distance - d``
    (inverse CDF: ``d = D (1 - sqrt(u))``)."""
    if max_distance <= 0:
        return 0
    return int(max_distance * (1.0 - np.sqrt(rng.random())))


@dataclass
class CVRLConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    proj_dim: int = 128
    proj_hidden: int | None = None  # None: the backbone's output channels
    proj_layers: int = 3
    tau: float = 0.1

    def __post_init__(self):
        if backbone_kind(self.backbone.name) != "video":
            raise ValueError(f"backbone.name must be a video backbone, got {self.backbone.name!r}")
        if self.tau <= 0 or self.proj_layers < 1 or self.proj_dim < 1:
            raise ValueError("tau > 0, proj_layers >= 1 and proj_dim >= 1 are required")


@register_method("cvrl")
class CVRL(Method):
    config_class = CVRLConfig

    def __init__(self, cfg: CVRLConfig, color=None):
        super().__init__(cfg, color)
        self.v_network = cfg.backbone.build()
        d = self.v_network.out_channels
        self.projection = projection_head(d, cfg.proj_hidden or d, cfg.proj_dim, cfg.proj_layers)

    def train_dataset(self, manifest, records, clip_cfg, seed, pose_cache=None):
        return ClipDataset(manifest, records, clip_cfg, mode="train", num_clips=2, seed=seed,
                           temporal=decreasing_interval)

    def embed(self, clip: Tensor) -> Tensor:
        return self.projection(self.v_network(clip).mean(dim=(2, 3, 4)))

    def training_step(self, batch: dict[str, Tensor], stage: str) -> LossOutput:
        clips = batch["clip"]  # (B, 2, T, S, S, 3) uint8: two clips of each video
        a, _ = self.augment_clip(clips[:, 0])
        b, _ = self.augment_clip(clips[:, 1])
        za, zb = self.embed(a), self.embed(b)
        loss = nt_xent(za, zb, self.cfg.tau)
        return LossOutput(total=loss, terms={"nt_xent": loss.detach(), "total": loss.detach()},
                          metrics={"pair_top1": pair_top1(za, zb)})

    def encoder(self, feature: str | None = None) -> BackboneEncoder:
        return BackboneEncoder(copy.deepcopy(self.v_network))
