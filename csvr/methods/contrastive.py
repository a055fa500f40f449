"""The shared part of the two-view contrastive baselines (IIC, CVRL): backbone + projection +
encoder.

A :class:`ContrastiveMethod` holds a video backbone ``v_network`` (``cfg.backbone``) and a
``projection`` head on its pooled map; :meth:`~ContrastiveMethod.project` is
``projection(pool(v_network(clip)))``. Its downstream encoder is the pooled backbone
(feature ``backbone``, :class:`~csvr.models.encoder.BackboneEncoder`), and its pretext signal is
:func:`~csvr.methods.base.pair_top1` against chance (1 / B). A subclass says how to build the
projection, which clips it samples (``train_dataset``) and what its loss is (``training_step``).
"""

from __future__ import annotations

import abc
import copy

import torch
from torch import Tensor, nn

from csvr.methods.base import BackboneEncoder, Method, PretextCheck, pair_top1
from csvr.models.backbones import backbone_kind
from csvr.models.features import check_feature


def check_video_backbone(cfg) -> None:
    """``cfg.backbone`` must name a video backbone (a config's ``__post_init__`` check)."""
    if backbone_kind(cfg.backbone.name) != "video":
        raise ValueError(f"backbone.name must be a video backbone, got {cfg.backbone.name!r}")


class ContrastiveMethod(Method):
    """Backbone + projection + encoder (see the module docstring)."""

    features = ("backbone",)
    pretext_checks = (PretextCheck("pairs", "pair_top1", "pair_chance", "higher", 2.0),)

    def __init__(self, cfg, color=None):
        super().__init__(cfg, color)
        self.v_network = cfg.backbone.build()
        self.projection = self.build_projection(self.v_network.out_channels)

    @abc.abstractmethod
    def build_projection(self, in_dim: int) -> nn.Module:
        """The projection head on the pooled ``in_dim``-wide backbone feature."""

    def project(self, clip: Tensor) -> Tensor:
        """``projection(pool(v_network(clip)))``: (B, 3, T, H, W) -> (B, D)."""
        return self.projection(self.v_network(clip).mean(dim=(2, 3, 4)))

    @staticmethod
    def pair_metrics(a: Tensor, b: Tensor) -> dict[str, Tensor]:
        """``pair_top1`` (is a_i's nearest b the b_i?) and its chance level 1 / B."""
        return {"pair_top1": pair_top1(a, b), "pair_chance": torch.tensor(1.0 / a.shape[0], device=a.device)}

    def encoder(self, feature: str | None = None) -> BackboneEncoder:
        check_feature(feature or "backbone", self.features, f"method {self.name!r}")
        return BackboneEncoder(copy.deepcopy(self.v_network))


__all__ = ["ContrastiveMethod", "check_video_backbone"]
