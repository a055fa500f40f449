"""IIC (Tao et al., ACM MM 2020, ``shared/papers/iic-summary.md``) on csvr's engine and backbones.

Two views of one clip — RGB frames and *residual* frames (differences of consecutive frames) —
through a single shared 3D backbone and a linear projection to an L2-normalised embedding.
Intra-negatives are made from the same clip by breaking its temporal structure: *frame
repeating* (one random frame repeated T times) and *temporal shuffling* (a random permutation
of the frames), taken in the other view's modality. The loss (:func:`inter_intra_nce`) is
symmetric: RGB anchors against residual positives/negatives and residual anchors against RGB.

Where this differs from the original: IIC used a memory bank (NCE with 16384 negatives); here
the negatives are the other clips of the (global, across GPUs is not gathered) batch, as every
method on this engine does, so that the comparison with CVRL and CSVR is like for like.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from csvr.data.datasets import ClipDataset
from csvr.losses.baselines import inter_intra_nce
from csvr.methods.base import BackboneEncoder, LossOutput, Method, pair_top1, projection_head, register_method
from csvr.models.backbones import backbone_kind
from csvr.models.csvr_model import BackboneConfig


@dataclass
class IICConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    proj_dim: int = 128
    tau: float = 0.07
    intra_negatives: Literal["repeat", "shuffle", "both"] = "both"

    def __post_init__(self):
        if backbone_kind(self.backbone.name) != "video":
            raise ValueError(f"backbone.name must be a video backbone, got {self.backbone.name!r}")
        if self.tau <= 0 or self.proj_dim < 1:
            raise ValueError("tau > 0 and proj_dim >= 1 are required")


def residual_frames(x: Tensor) -> Tensor:
    """IIC's residual view of (B, 3, T, H, W): ``x[t+1] - x[t]``, last difference repeated."""
    d = x[:, :, 1:] - x[:, :, :-1]
    return torch.cat([d, d[:, :, -1:]], dim=2)


def repeat_frame(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One random frame of each clip repeated over time (intra-negative: no motion at all)."""
    b, _, t = x.shape[:3]
    idx = torch.randint(0, t, (b,), device=x.device, generator=generator)
    frame = x[torch.arange(b, device=x.device), :, idx]  # (B, 3, H, W)
    return frame.unsqueeze(2).expand_as(x).contiguous()


def shuffle_frames(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each clip's frames in a random order (intra-negative: same appearance, broken motion)."""
    b, _, t = x.shape[:3]
    perm = torch.argsort(torch.rand(b, t, device=x.device, generator=generator), dim=1)
    idx = perm.view(b, 1, t, 1, 1).expand_as(x)
    return x.gather(2, idx)


@register_method("iic")
class IIC(Method):
    config_class = IICConfig

    def __init__(self, cfg: IICConfig, color=None):
        super().__init__(cfg, color)
        self.v_network = cfg.backbone.build()
        self.projection = projection_head(self.v_network.out_channels, 0, cfg.proj_dim, 1)

    def train_dataset(self, manifest, records, clip_cfg, seed, pose_cache=None):
        return ClipDataset(manifest, records, clip_cfg, mode="train", num_clips=1, seed=seed)

    def embed(self, clip: Tensor) -> Tensor:
        return F.normalize(self.projection(self.v_network(clip).mean(dim=(2, 3, 4))), dim=1)

    def training_step(self, batch: dict[str, Tensor], stage: str) -> LossOutput:
        rgb, _ = self.augment_clip(batch["clip"])  # (B, 3, T, S, S)
        res = residual_frames(rgb)
        kinds = ["repeat", "shuffle"] if self.cfg.intra_negatives == "both" else [self.cfg.intra_negatives]
        broken = [repeat_frame(rgb) if k == "repeat" else shuffle_frames(rgb) for k in kinds]
        b = rgb.shape[0]
        m = len(broken)
        # one backbone pass over every clip: RGB, residual, intra-negatives in both modalities
        allv = torch.cat([rgb, res] + broken + [residual_frames(x) for x in broken], dim=0)
        emb = self.embed(allv)
        v_rgb, v_res = emb[:b], emb[b:2 * b]
        u_rgb = emb[2 * b:(2 + m) * b].view(m, b, -1).transpose(0, 1)
        u_res = emb[(2 + m) * b:].view(m, b, -1).transpose(0, 1)
        # RGB anchors: positives/inter-negatives are residual views, intra-negatives residual too
        loss_1 = inter_intra_nce(v_rgb, v_res, u_res, self.cfg.tau)
        loss_2 = inter_intra_nce(v_res, v_rgb, u_rgb, self.cfg.tau)
        loss = 0.5 * (loss_1 + loss_2)
        return LossOutput(total=loss, terms={"iic": loss.detach(), "total": loss.detach()},
                          metrics={"pair_top1": pair_top1(v_rgb, v_res)})

    def encoder(self, feature: str | None = None) -> BackboneEncoder:
        return BackboneEncoder(copy.deepcopy(self.v_network))
