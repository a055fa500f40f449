"""The downstream encoder contract: what finetuning, linear probing, retrieval and export are given.

An :class:`Encoder` is an ``nn.Module`` with ``forward(clip, poses=None, pose_conf=None) -> (B,
out_dim)`` that declares

* ``feature`` - one of :data:`csvr.models.features.FEATURE_NAMES`;
* ``out_dim`` - the width of what ``forward`` returns;
* ``needs_poses`` - whether ``forward`` must be given the clip's poses (derived from ``feature``
  by :func:`csvr.models.features.needs_poses`, never decided anywhere else);
* ``mean`` / ``std`` - the per-channel normalisation its clips expect (timm's convention: the
  model carries its input normalisation), the data layer's :data:`csvr.data.transforms.MEAN` /
  ``STD`` unless a checkpoint says otherwise.

``mean``/``std`` are plain attributes, not buffers: an encoder's ``state_dict`` holds weights
only, so checkpoints written before the contract existed load unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from csvr.data.transforms import MEAN, STD, normalize, to_float_clip
from csvr.models.features import check_feature, needs_poses


class Encoder(nn.Module):
    """Base class of every downstream encoder (see the module docstring)."""

    feature: str = "backbone"
    out_dim: int = 0
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD

    @property
    def needs_poses(self) -> bool:
        return needs_poses(self.feature)

    def set_feature(self, feature: str) -> None:
        self.feature = check_feature(feature)

    def encode(self, clip: Tensor | None, poses: Tensor | None = None, pose_conf: Tensor | None = None) -> Tensor:
        """``forward`` with the poses passed on only when the feature reads them."""
        if self.needs_poses:
            return self(clip, poses, pose_conf)
        return self(clip)

    def forward(self, clip: Tensor | None = None, poses: Tensor | None = None,
                pose_conf: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class BackboneEncoder(Encoder):
    """A video backbone + global average pooling: the downstream encoder of the contrastive baselines."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.v_network = backbone
        self.out_dim = backbone.out_channels
        self.set_feature("backbone")

    def forward(self, clip: Tensor, poses: Tensor | None = None, pose_conf: Tensor | None = None) -> Tensor:
        return self.v_network(clip).mean(dim=(2, 3, 4))


def encoder_inputs(batch: dict[str, Tensor], device: torch.device | str) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``clip`` uint8 ``(B, [N,] T, S, S, 3)`` -> normalised float ``(B*N, 3, T, S, S)``; poses
    ``(B, [N,] T, 18, 3)`` -> ``(B*N, T, 18, 2)`` and confidences ``(B*N, T, 18)`` (or None): a
    collated batch of eval-mode :class:`~csvr.data.datasets.ClipDataset` items, ready for
    :meth:`Encoder.encode`."""
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


__all__ = ["BackboneEncoder", "Encoder", "encoder_inputs"]
