"""IIC (Tao et al., ACM MM 2020, ``shared/papers/iic-summary.md``) on csvr's engine and backbones.

Two views of one clip — RGB frames (view 1) and *residual* frames (view 2, differences of
consecutive frames) — through a single shared 3D backbone. Intra-negatives are made from view 1,
the RGB clip, by breaking its temporal structure (*frame repeating*: one random frame repeated T
times; *temporal shuffling*: two of the clip's temporal segments swapped) and are used against
the anchors of both views. The loss (:func:`csvr.losses.baselines.inter_intra_nce`) is
symmetric: RGB anchors against residual positives / inter-negatives plus the intra-negatives,
residual anchors against RGB positives / inter-negatives plus the same intra-negatives.

What the original code does (BestJuly/IIC, ``train_ssl.py``, ``gen_neg.py``,
``lib/NCEAverage.py``) and what csvr does:

* **Intra-negatives stay RGB.** ``feat_neg = model(preprocess(inputs, opt.neg))``: the repeated /
  shuffled *RGB* clip goes through the network as it is; no residual of it is ever taken ("Intra-
  negative samples are generated from View #1", the README; Fig. 2 of the paper). Its features
  (memory bank ``memory_neg``) are concatenated to the candidates of *both* directions
  (``weight_l`` and ``weight_ab`` in ``NCEAverage.forward``). csvr does the same. (The residual
  of a repeated clip would be all zeros — ``(0 + 1) / 2`` after the original's scaling — the
  same constant clip for every sample, a negative that carries nothing about the anchor.)
* **Residual frames.** ``diff(x) = ((x - torch.roll(x, 1, 2)) + 1) / 2`` on the [0, 1] clip:
  ``r_t = (x_t - x_{t-1} + 1) / 2``, circular in time (``r_0`` compares the first frame with the
  last). :func:`residual_frames` is that formula; csvr then applies the same input normalisation
  as to RGB (the original feeds both views un-normalised).
* **Shuffling.** ``adjacent_shuffle`` cuts the 16 frames into 4 segments (``torch.chunk``) and
  swaps two distinct ones chosen at random (not necessarily neighbours, despite the name).
  :func:`shuffle_frames` with ``segments=4`` does that for any T (near-equal segments);
  ``segments=0`` draws a full random permutation of the frames instead.
* **Repeating.** ``repeating`` picks one frame uniformly and repeats it T times; so does
  :func:`repeat_frame`.
* **Passes and BatchNorm.** The original runs three forward passes — ``model(inputs)``,
  ``model(diff(inputs))``, ``model(preprocess(inputs))`` — so BatchNorm's batch statistics never
  mix RGB, residual and broken clips; csvr does the same (one pass per intra-negative kind). The
  original lets every pass update the running statistics, so its eval-mode features use a blend
  of RGB, residual and broken-clip statistics; csvr updates them from the RGB pass only
  (:func:`running_stats_frozen` around the other passes), because its downstream encoder
  (:meth:`IIC.encoder`) sees RGB clips only.
* **Negatives: in-batch, no memory bank.** The original is CMC's memory-bank NCE
  (``NCEAverage``, ``--nce_k 1024`` negatives, momentum 0.5): the anchor is scored against
  momentum-averaged, detached entries of three banks of size N_videos (RGB, residual,
  intra-negative), read at the anchor's own index (the positive and its own intra-negative) and
  K random indices. csvr uses the other clips of the batch instead (``intra_of="batch"``
  keeps the other clips' intra-negatives as negatives too, as the bank does), as every method
  on this engine does, so that IIC, CVRL and CSVR are compared like for like. An exact bank
  needs a per-video index from the data layer, bank-sized state kept in sync across processes
  and momentum updates; it is not implemented.
* **Head and similarity.** The original scores the backbone's pooled 512-d feature (no
  projection, not normalised) against L2-normalised bank entries, temperature 0.07. csvr
  scores cosine similarities at tau = 0.07 after a linear projection (``proj_dim``; 0 = none,
  the pooled backbone feature as in the original).
* **Loss scale.** The original sums the two directions; csvr averages them (a factor 2).

Intra-negative kinds: the original uses one per run (``--neg repeat``, the default, or
``shuffle``); ``intra_negatives="both"`` uses both, ``"none"`` gives CMC (``--intra_neg False``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csvr.data.datasets import ClipDataset
from csvr.data.transforms import normalize, to_float_clip
from csvr.losses import LossOutput
from csvr.losses.baselines import inter_intra_nce
from csvr.methods.base import register_method
from csvr.methods.contrastive import ContrastiveMethod, check_video_backbone
from csvr.models.backbones import BackboneConfig
from csvr.models.heads import projection_head


@dataclass
class IICConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    proj_dim: int = 128  # 0: no projection (the original scores the pooled backbone feature)
    tau: float = 0.07
    intra_negatives: Literal["repeat", "shuffle", "both", "none"] = "repeat"
    intra_of: Literal["batch", "own"] = "batch"  # whose intra-negatives are negatives of an anchor
    shuffle_segments: int = 4  # temporal shuffling swaps two of this many segments; 0: full permutation

    def __post_init__(self):
        check_video_backbone(self)
        if self.tau <= 0 or self.proj_dim < 0:
            raise ValueError("tau > 0 and proj_dim >= 0 are required")
        if self.intra_negatives not in ("repeat", "shuffle", "both", "none"):
            raise ValueError(f"intra_negatives must be repeat, shuffle, both or none, got {self.intra_negatives!r}")
        if self.intra_of not in ("batch", "own"):
            raise ValueError(f"intra_of must be batch or own, got {self.intra_of!r}")
        if self.shuffle_segments < 0 or self.shuffle_segments == 1:
            raise ValueError("shuffle_segments must be 0 (full permutation) or >= 2")

    @property
    def intra_kinds(self) -> list[str]:
        return {"both": ["repeat", "shuffle"], "none": []}.get(self.intra_negatives, [self.intra_negatives])


def residual_frames(x: Tensor) -> Tensor:
    """IIC's residual view of (B, C, T, H, W) frames in [0, 1]: ``r_t = (x_t - x_{t-1} + 1) / 2``,
    circular in time (``r_0 = (x_0 - x_{T-1} + 1) / 2``), in [0, 1] — the original's
    ``diff(x) = ((x - torch.roll(x, 1, 2)) + 1) / 2`` (BestJuly/IIC ``train_ssl.py``)."""
    return (x - x.roll(1, dims=2) + 1.0) / 2.0


def repeat_frame(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Intra-negative *frame repeating* (IIC Sec. 3, ``gen_neg.repeating``): one frame of each clip,
    drawn uniformly, repeated over time — the clip's appearance without any motion."""
    b, _, t = x.shape[:3]
    idx = torch.randint(0, t, (b,), device=x.device, generator=generator)
    frame = x[torch.arange(b, device=x.device), :, idx]  # (B, C, H, W)
    return frame.unsqueeze(2).expand_as(x).contiguous()


def shuffle_frames(x: Tensor, generator: torch.Generator | None = None, segments: int = 4) -> Tensor:
    """Intra-negative *temporal shuffling* (IIC Sec. 3): the clip's frames in another order.

    ``segments >= 2``: the original's ``gen_neg.adjacent_shuffle`` — time is cut into ``segments``
    contiguous, near-equal segments (at most T) and two distinct ones, drawn per clip, swap
    places; frames keep their order inside a segment. ``segments = 0``: a full random
    permutation of the frames per clip. Either way each output clip is a permutation of its own
    frames, drawn independently per clip."""
    b, _, t = x.shape[:3]
    dev = x.device
    if t < 2:
        return x.clone()
    if segments >= 2:
        k = min(segments, t)
        first = torch.randint(0, k, (b,), device=dev, generator=generator)
        second = (first + torch.randint(1, k, (b,), device=dev, generator=generator)) % k
        rows = torch.arange(b, device=dev)
        new_pos = torch.arange(k, device=dev).repeat(b, 1)  # (B, k): where each segment goes
        new_pos[rows, first] = second
        new_pos[rows, second] = first
        time = torch.arange(t, device=dev)
        seg = time * k // t  # segment of each frame
        perm = (new_pos[:, seg] * t + time).argsort(dim=1)  # order by new segment slot, then time
    else:
        perm = torch.rand(b, t, device=dev, generator=generator).argsort(dim=1)
    idx = perm.view(b, 1, t, 1, 1).expand_as(x)
    return x.gather(2, idx)


@contextmanager
def running_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Forward passes inside leave the BatchNorm running statistics of ``module`` as they were.

    Training-mode BatchNorm still normalises with the pass's own batch statistics; only the
    running estimates (used in eval mode) are not updated. Each layer works on a copy of its
    buffers which is dropped afterwards (the original tensors are put back, never written in
    place, so autograd's saved tensors stay valid)."""
    saved: list[tuple[nn.modules.batchnorm._BatchNorm, Tensor, Tensor, Tensor | None]] = []
    for m in module.modules():
        if (isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
                and m.running_mean is not None and m.running_var is not None):
            saved.append((m, m.running_mean, m.running_var, m.num_batches_tracked))
            m.running_mean = m.running_mean.clone()
            m.running_var = m.running_var.clone()
            if m.num_batches_tracked is not None:
                m.num_batches_tracked = m.num_batches_tracked.clone()
    try:
        yield
    finally:
        for m, mean, var, count in saved:
            m.running_mean, m.running_var, m.num_batches_tracked = mean, var, count


@dataclass
class IICViews:
    """Network inputs of one IIC step, each (B, 3, T, H, W), normalised like every csvr input."""

    rgb: Tensor
    residual: Tensor
    intra: list[Tensor]  # one per intra-negative kind, RGB modality (built from ``rgb``)


@register_method("iic")
class IIC(ContrastiveMethod):
    config_class = IICConfig

    def build_projection(self, in_dim: int) -> nn.Module:
        """A linear projection to ``proj_dim`` (0: none, the pooled backbone feature as in the original)."""
        return projection_head(in_dim, 0, self.cfg.proj_dim, 1) if self.cfg.proj_dim else nn.Identity()

    def train_dataset(self, manifest, records, clip_cfg, seed, pose_cache=None):
        return ClipDataset(manifest, records, clip_cfg, mode="train", num_clips=1, seed=seed)

    def embed(self, clip: Tensor) -> Tensor:
        """The L2-normalised projection of a clip (what the NCE scores compare)."""
        return F.normalize(self.project(clip), dim=1)

    def views(self, clip_u8: Tensor, generator: torch.Generator | None = None) -> IICViews:
        """uint8 (B, T, H, W, 3) -> the RGB view, the residual view and the intra-negatives.

        One colour augmentation per clip (temporally consistent) is shared by all of them, so that
        only time tells a clip from its intra-negatives. The residual is computed on the [0, 1]
        clip (:func:`residual_frames`), then normalised like RGB; the intra-negatives are the
        RGB view repeated / shuffled (both commute with the per-pixel normalisation)."""
        x = to_float_clip(clip_u8)
        x = self.color.apply(x, self.color.sample(x.shape[0], x.device))
        rgb = normalize(x)
        intra = [repeat_frame(rgb, generator) if k == "repeat" else
                 shuffle_frames(rgb, generator, self.cfg.shuffle_segments) for k in self.cfg.intra_kinds]
        return IICViews(rgb=rgb, residual=normalize(residual_frames(x)), intra=intra)

    def training_step(self, batch: dict[str, Tensor], stage: str) -> LossOutput:
        v = self.views(batch["clip"])
        b = v.rgb.shape[0]
        # separate passes per modality (BatchNorm batch statistics never mix views); only the RGB
        # pass updates the running statistics that the downstream RGB encoder will use
        v_rgb = self.embed(v.rgb)
        with running_stats_frozen(self):
            v_res = self.embed(v.residual)
            u = [self.embed(n) for n in v.intra]
        intra = torch.stack(u, dim=1) if u else v_rgb.new_zeros(b, 0, v_rgb.shape[1])  # (B, M, D)
        loss_rgb = inter_intra_nce(v_rgb, v_res, intra, self.cfg.tau, self.cfg.intra_of)
        loss_res = inter_intra_nce(v_res, v_rgb, intra, self.cfg.tau, self.cfg.intra_of)
        loss = 0.5 * (loss_rgb + loss_res)
        metrics = self.pair_metrics(v_rgb, v_res)
        if u:
            metrics.update(_intra_top1(v_rgb, v_res, intra))
        return LossOutput(total=loss, terms={"iic": loss.detach(), "total": loss.detach()}, metrics=metrics)


def _intra_top1(v_rgb: Tensor, v_res: Tensor, intra: Tensor) -> dict[str, Tensor]:
    """Fraction of RGB anchors closer to their residual positive than to each of their own M
    intra-negatives (chance 1 / (M + 1)): does the embedding tell a clip from its broken copies?"""
    with torch.no_grad():
        pos = (v_rgb * v_res).sum(dim=1)  # embeddings are L2-normalised
        neg = torch.einsum("bd,bmd->bm", v_rgb, intra)
        top1 = (pos > neg.max(dim=1).values).float().mean()
        return {"intra_top1": top1, "intra_chance": torch.tensor(1.0 / (intra.shape[1] + 1), device=top1.device)}


__all__ = ["IIC", "IICConfig", "IICViews", "repeat_frame", "residual_frames", "running_stats_frozen",
           "shuffle_frames"]
