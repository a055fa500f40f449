"""Generative pose prediction branch (paper III-B, Eq. 1): the pose CGAN G_p / D_p.

Tensors: a pose sequence is (B, 2N, T) - channel ``2j`` is joint j's x, ``2j + 1`` its y (the
paper's ``p_t in R^{2N}`` stacked over time), N = 18 (OpenPose COCO-18), built from the data
layer's (B, T, N, 2) by :func:`poses_to_sequence`. Poses are already normalised (neck-centred,
torso-scaled) by the pose layer.

* :class:`PoseGenerator` - G_p, a 1D-CNN encoder-decoder over time: P_in (B, 2N, T) and noise
  z_p (B, nz) -> P_gen (B, 2N, T'), all T' frames at once. The encoder has ``encoder_layers``
  (>= 6) Conv1d-BN-LeakyReLU layers, stride 2 at layers 2, 4 and 6 (T -> T/8); its layer outputs
  are returned so that f_d can be taken from any of them (Table III).
* :class:`PoseCritic` - D_p, a 1D-CNN conditioned on P_in (no normalisation layers, so that
  samples stay independent for WGAN-GP and OSGAN).
* :func:`pose_l2_loss` - the ``1/T' sum_t ||p_t - p'_t||^2`` term of Eq. 1, confidence-weighted.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclasses.dataclass
class PoseGANConfig:
    """Pose CGAN settings (Eq. 1). Every field has a default; see docs/design-choices.md for the choices."""

    num_joints: int = 18
    width: int = 64                 # encoder channels: w, w, 2w, 2w, 4w, 4w, (4w ...)
    encoder_layers: int = 6         # >= 6 (paper: "layer 6" is the last encoder layer, Table III)
    noise_dim: int = 16             # z_p, injected at the bottleneck (f_d does not depend on it)
    critic_width: int = 64
    critic_layers: int = 4
    fd_layer: Optional[int] = None  # encoder layer (1-based) that f_d comes from; None = last
    l2_weight: float = 1.0          # Eq. 1 weights all terms 1
    adv_weight: float = 1.0         # weight of the generator's adversarial term
    gp_weight: float = 1.0          # WGAN-GP weight (Eq. 1: 1)
    residual_to_last: bool = True   # P_gen = last input pose + decoder output (output layer zero-initialised)
    confidence_input: bool = False  # feed (x, y, confidence) = 3N channels to G_p instead of 2N

    def __post_init__(self) -> None:
        for name in ("num_joints", "width", "noise_dim", "critic_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"pose.{name} must be >= 1, got {getattr(self, name)}")
        if self.encoder_layers < 6:
            raise ValueError(f"pose.encoder_layers must be >= 6 (paper: a 6-layer encoder), got {self.encoder_layers}")
        if self.critic_layers < 2:
            raise ValueError(f"pose.critic_layers must be >= 2, got {self.critic_layers}")
        if self.fd_layer is not None and not 1 <= self.fd_layer <= self.encoder_layers:
            raise ValueError(f"pose.fd_layer must be in 1..{self.encoder_layers} or null, got {self.fd_layer}")
        for name in ("l2_weight", "adv_weight", "gp_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"pose.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def fd_layer_index(self) -> int:
        """1-based encoder layer that f_d is taken from."""
        return self.encoder_layers if self.fd_layer is None else self.fd_layer


def poses_to_sequence(poses: Tensor) -> Tensor:
    """(B, T, N, 2) -> (B, 2N, T) with channels x0, y0, x1, y1, ..."""
    if poses.dim() != 4 or poses.shape[-1] != 2:
        raise ValueError(f"poses must be (B, T, N, 2), got {tuple(poses.shape)}")
    return poses.flatten(2).transpose(1, 2)


def sequence_to_poses(seq: Tensor) -> Tensor:
    """(B, 2N, T) -> (B, T, N, 2), the inverse of :func:`poses_to_sequence`."""
    b, c, t = seq.shape
    return seq.transpose(1, 2).reshape(b, t, c // 2, 2)


def _encoder_channels(width: int, layers: int) -> list[int]:
    return [width * min(2 ** ((i - 1) // 2), 8) for i in range(1, layers + 1)]


class PoseGenerator(nn.Module):
    """G_p: 1D-CNN encoder-decoder over time (see the module docstring)."""

    def __init__(self, cfg: PoseGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n2 = 2 * cfg.num_joints
        in_ch = 3 * cfg.num_joints if cfg.confidence_input else n2
        chans = _encoder_channels(cfg.width, cfg.encoder_layers)
        self.encoder_channels = chans
        layers = []
        c_prev = in_ch
        self.num_down = 0
        for i, c in enumerate(chans, start=1):
            stride = 2 if (i % 2 == 0 and i <= 6) else 1
            self.num_down += stride == 2
            layers.append(nn.Sequential(nn.Conv1d(c_prev, c, 3, stride=stride, padding=1, bias=False),
                                        nn.BatchNorm1d(c), nn.LeakyReLU(0.2, inplace=True)))
            c_prev = c
        self.encoder = nn.ModuleList(layers)
        c = chans[-1]
        dec: list[nn.Module] = [nn.Conv1d(c + cfg.noise_dim, c, 3, padding=1, bias=False), nn.BatchNorm1d(c),
                                nn.ReLU(inplace=True)]
        for _ in range(self.num_down):
            c_next = max(cfg.width, c // 2)
            dec += [nn.Upsample(scale_factor=2, mode="linear", align_corners=False),
                    nn.Conv1d(c, c_next, 3, padding=1, bias=False), nn.BatchNorm1d(c_next), nn.ReLU(inplace=True)]
            c = c_next
        dec.append(nn.Conv1d(c, n2, 3, padding=1))
        if cfg.residual_to_last:
            # zero-initialised output layer: at initialisation P_gen is exactly the trivial baseline
            # (copy the last observed pose), and training moves it from there; a random output
            # layer started ~2x worse than copying and spent the pose stage recovering that
            nn.init.zeros_(dec[-1].weight)
            nn.init.zeros_(dec[-1].bias)
        self.decoder = nn.Sequential(*dec)

    def encode(self, p_in: Tensor, upto: int | None = None) -> list[Tensor]:
        """Outputs of encoder layers 1..``upto`` (default all) for the G_p input (B, C_in, T)."""
        feats = []
        h = p_in
        for layer in self.encoder[: (len(self.encoder) if upto is None else upto)]:
            h = layer(h)
            feats.append(h)
        return feats

    def decode(self, h: Tensor, z: Tensor, out_len: int, last_pose: Tensor | None = None) -> Tensor:
        """Bottleneck (B, C, T_enc) + noise (B, nz) -> P_gen (B, 2N, out_len).

        The decoder upsamples by 2 per encoder downsampling; if that length differs from
        ``out_len`` the sequence is linearly resampled to ``out_len`` frames.
        """
        zt = z.to(h.dtype)[:, :, None].expand(-1, -1, h.shape[2])
        out = self.decoder(torch.cat([h, zt], dim=1))
        if out.shape[2] != out_len:
            out = F.interpolate(out, size=out_len, mode="linear", align_corners=False)
        if self.cfg.residual_to_last:
            if last_pose is None:
                raise ValueError("residual_to_last needs the last input pose")
            out = out + last_pose
        return out

    def forward(self, p_in: Tensor, z: Tensor, out_len: int) -> tuple[Tensor, list[Tensor]]:
        """``(P_gen, encoder layer outputs)``. ``p_in`` is (B, 2N, T) or (B, 3N, T) with confidences
        (channels 2N.. are then the N confidences, see :func:`generator_input`)."""
        feats = self.encode(p_in)
        last = p_in[:, : 2 * self.cfg.num_joints, -1:]
        return self.decode(feats[-1], z, out_len, last), feats


def generator_input(poses: Tensor, conf: Tensor | None, cfg: PoseGANConfig) -> Tensor:
    """G_p input from (B, T, N, 2) poses and (B, T, N) confidences: (B, 2N, T), or (B, 3N, T)."""
    seq = poses_to_sequence(poses)
    if not cfg.confidence_input:
        return seq
    if conf is None:
        raise ValueError("pose.confidence_input=true needs pose confidences")
    return torch.cat([seq, conf.to(seq.dtype).transpose(1, 2)], dim=1)


class PoseCritic(nn.Module):
    """D_p(P | P_in): a 1D CNN over the concatenated sequence ``[P_in, P]`` in time.

    Input: candidate future P (B, 2N, T') and condition P_in (B, 2N, T); an indicator channel
    (0 on P_in frames, 1 on P frames) is appended, so the critic judges "is P a plausible
    continuation of P_in" and T != T' is allowed. Conv1d layers (kernel 3; stride 1 then 2),
    LeakyReLU(0.2), no normalisation; mean over time; a linear layer -> one logit per sample.
    """

    def __init__(self, cfg: PoseGANConfig) -> None:
        super().__init__()
        n2 = 2 * cfg.num_joints
        layers: list[nn.Module] = []
        c_prev = n2 + 1
        for i in range(cfg.critic_layers):
            c = cfg.critic_width * min(2 ** i, 8)
            layers += [nn.Conv1d(c_prev, c, 3, stride=1 if i == 0 else 2, padding=1), nn.LeakyReLU(0.2)]
            c_prev = c
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(c_prev, 1)

    def forward(self, p: Tensor, cond: Tensor) -> Tensor:
        b = p.shape[0]
        seq = torch.cat([cond.to(p.dtype), p], dim=2)
        ind = torch.cat([p.new_zeros(b, 1, cond.shape[2]), p.new_ones(b, 1, p.shape[2])], dim=2)
        h = self.net(torch.cat([seq, ind], dim=1))
        return self.out(h.mean(dim=2))[:, 0]


def pose_l2_loss(pred: Tensor, target: Tensor, conf: Tensor | None = None, weight: Tensor | None = None) -> Tensor:
    """Eq. 1's reconstruction term ``1/T' sum_t ||p_t - p'_t||_2^2``, per sample, then averaged.

    ``pred``/``target`` (B, 2N, T'); ``conf`` (B, T', N) in [0, 1] weights each joint's squared
    error (a missing joint, confidence 0, contributes nothing); ``weight`` (B,) weights samples
    (0 = no person in this video). Result: ``sum_i w_i l_i / sum_i w_i`` with
    ``l_i = 1/T' sum_t sum_j c_tj ((x - x')^2 + (y - y')^2)``.
    """
    d2 = (pred.float() - target.float()).pow(2)                   # (B, 2N, T')
    b, c2, t = d2.shape
    per_joint = d2.view(b, c2 // 2, 2, t).sum(dim=2)              # (B, N, T')
    if conf is not None:
        per_joint = per_joint * conf.float().transpose(1, 2)
    per_sample = per_joint.sum(dim=1).mean(dim=1)                 # 1/T' sum_t sum_j
    if weight is None:
        return per_sample.mean()
    w = weight.float()
    return (per_sample * w).sum() / w.sum().clamp_min(1e-12)


def pose_mse(pred: Tensor, target: Tensor, conf: Tensor | None = None, weight: Tensor | None = None,
             per_sample: bool = False) -> Tensor:
    """Table II's pose-prediction MSE: confidence-weighted mean squared error per coordinate, over
    the batch (``per_sample``: one value per sample, (B,), each over its own joints and frames)."""
    d2 = (pred.detach().float() - target.float()).pow(2)
    b, c2, t = d2.shape
    w = torch.ones(b, c2 // 2, t, device=d2.device) if conf is None else conf.float().transpose(1, 2)
    if weight is not None:
        w = w * weight.float()[:, None, None]
    per_joint = d2.view(b, c2 // 2, 2, t).sum(dim=2)
    if per_sample:
        return (per_joint * w).sum(dim=(1, 2)) / (2 * w.sum(dim=(1, 2))).clamp_min(1e-12)
    return (per_joint * w).sum() / (2 * w.sum()).clamp_min(1e-12)


__all__ = ["PoseCritic", "PoseGANConfig", "PoseGenerator", "generator_input", "pose_l2_loss", "pose_mse",
           "poses_to_sequence", "sequence_to_poses"]
