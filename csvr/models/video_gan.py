"""Collaborative video generating branch (paper III-D, Eq. 6-8): conditional TGANv2-style GANs.

Two of these exist in the model: the *reconstructor* (G_v^r, D_v^r) generates the current clip and
the *predictor* (G_v^p, D_v^p) the future clip, both from (z_v, f_i).

Generator (:class:`VideoGenerator`), after TGANv2 (Saito et al. 2020, ref. [77]), which is
unconditional; our conditioning and simplifications:

* condition ``c = [z_v, f_i]`` (noise (B, nz) concatenated with the integrated feature (B, C));
* temporal latent generator: ``fc(c)`` reshaped to a (L, b, b) map is the input of a ConvLSTM at
  the first step, zero input afterwards (TGANv2's CLSTM), run for ``frames`` steps -> a
  (B, L, T, b, b) latent video;
* ``n_up = log2(size / base_size)`` 3D residual up-blocks (BN-ReLU-upsample(1x2x2)-Conv3d 3x3x3-
  BN-ReLU-Conv3d, 1x1x1 shortcut); every BatchNorm is *conditional*: ``(1 + W_g c) * BN(x) +
  W_b c`` (so f_i reaches every scale, as class embeddings do in TGANv2's conditional variant);
* rendering: BN-ReLU-Conv3d(3x3x3, 3 channels)-tanh -> (B, 3, frames, size, size) in [-1, 1].

Simplified w.r.t. TGANv2: one output scale instead of four renderings with frame/batch
sub-sampling (that trick saves memory at 192 px and is not needed at 64-112 px), the per-frame 2D
blocks are 3D blocks (the paper: "R3D-based TGAN v2"), one CLSTM layer.

Critic (:class:`VideoCritic`): TGANv2's ResNet video discriminator - residual 3D conv blocks
without normalisation, average-pool downsampling (2x2x2, 1x2x2 once T = 1), ReLU, mean over
(T, H, W), a linear layer -> one logit per sample. Unconditional, as D_v^r(V_r) in Eq. 6.

Pixel range: generators output tanh in [-1, 1]; targets are the clip mapped back to [0, 1]
(undoing the input normalisation) then to [-1, 1], resized to (frames, size, size)
(:func:`video_target_from_clip`), unless the batch carries explicit targets.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclasses.dataclass
class VideoGANConfig:
    """Settings of both video GANs (Eq. 6-7)."""

    frames: int = 16                    # generated clip length T_gen
    size: int = 64                      # generated height = width (target resized to it)
    base_size: int = 4                  # spatial size of the CLSTM latent; size = base_size * 2^n
    noise_dim: int = 128                # z_v
    latent_channels: int = 256          # CLSTM channels (TGANv2: 512)
    gen_width: int = 32                 # TGANv2 "ch": last block has ch channels, block i ch * 2^(n-1-i)
    critic_width: int = 32              # first critic block channels, doubling per block (cap 16x)
    l2_weight: float = 1.0              # Eq. 6/7 weight the pixel L2 term 1
    adv_weight: float = 1.0             # generator's adversarial term
    gp_weight: float = 0.0              # WGAN-GP on the video critics (not in Eq. 6/7: off)

    def __post_init__(self) -> None:
        for name in ("frames", "size", "base_size", "noise_dim", "latent_channels", "gen_width", "critic_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"video.{name} must be >= 1, got {getattr(self, name)}")
        ratio = self.size / self.base_size
        if self.size % self.base_size or ratio < 2 or 2 ** round(math.log2(ratio)) != ratio:
            raise ValueError(f"video.size ({self.size}) must be base_size ({self.base_size}) times a power of 2 (>= 2)")
        for name in ("l2_weight", "adv_weight", "gp_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"video.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def num_up(self) -> int:
        return round(math.log2(self.size / self.base_size))


class ConditionalBatchNorm3d(nn.Module):
    """``(1 + W_g c) * BN(x) + W_b c`` with an affine-free BatchNorm3d; starts as plain BN."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm3d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels)
        self.bias = nn.Linear(cond_dim, channels)
        for lin in (self.gain, self.bias):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        g = 1 + self.gain(c).to(x.dtype)
        b = self.bias(c).to(x.dtype)
        return self.bn(x) * g[:, :, None, None, None] + b[:, :, None, None, None]


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")


class GenBlock3d(nn.Module):
    """Residual 3D up-block with conditional BN (TGANv2's GenBlock, 3D)."""

    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.b1 = ConditionalBatchNorm3d(cin, cond_dim)
        self.c1 = nn.Conv3d(cin, cout, 3, padding=1)
        self.b2 = ConditionalBatchNorm3d(cout, cond_dim)
        self.c2 = nn.Conv3d(cout, cout, 3, padding=1)
        self.c_sc = nn.Conv3d(cin, cout, 1)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = self.c1(_up(F.relu(self.b1(x, c))))
        h = self.c2(F.relu(self.b2(h, c)))
        return h + self.c_sc(_up(x))


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell (3x3 gates, no peepholes, as in TGANv2)."""

    def __init__(self, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden, 3, padding=1)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, 3, padding=1, bias=False)

    def forward(self, x_gates: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``x_gates`` = ``conv_x(x)`` (precomputed; the bias alone for a zero input)."""
        h, c = state
        i, f, o, g = (x_gates + self.conv_h(h)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class VideoGenerator(nn.Module):
    """Conditional TGANv2-style generator: ``forward(z, f) -> (B, 3, frames, size, size)`` in [-1, 1]."""

    def __init__(self, cfg: VideoGANConfig, feature_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        cond_dim = cfg.noise_dim + feature_dim
        self.cond_dim = cond_dim
        lat, b = cfg.latent_channels, cfg.base_size
        self.fc = nn.Linear(cond_dim, lat * b * b)
        self.clstm = ConvLSTMCell(lat, lat)
        blocks = []
        cin = lat
        for i in range(cfg.num_up):
            cout = cfg.gen_width * 2 ** (cfg.num_up - 1 - i)
            blocks.append(GenBlock3d(cin, cout, cond_dim))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.render = nn.Sequential(nn.BatchNorm3d(cin), nn.ReLU(), nn.Conv3d(cin, 3, 3, padding=1))

    def temporal_latent(self, c: Tensor) -> Tensor:
        """CLSTM latent video (B, L, frames, b, b) from the condition (B, cond_dim)."""
        cfg = self.cfg
        n, lat, b = c.shape[0], cfg.latent_channels, cfg.base_size
        x0 = self.fc(c).view(n, lat, b, b)
        h = x0.new_zeros(n, lat, b, b)
        cell = x0.new_zeros(n, lat, b, b)
        zero_input = self.clstm.conv_x.bias.to(x0.dtype)[None, :, None, None]
        frames = []
        for t in range(cfg.frames):
            gates_x = self.clstm.conv_x(x0) if t == 0 else zero_input
            h, cell = self.clstm(gates_x, (h, cell))
            frames.append(h)
        return torch.stack(frames, dim=2)

    def forward(self, z: Tensor, f: Tensor) -> Tensor:
        c = torch.cat([z.to(f.dtype), f], dim=1)
        x = self.temporal_latent(c)
        for block in self.blocks:
            x = block(x, c)
        return torch.tanh(self.render(x))


def _down(x: Tensor) -> Tensor:
    kt = 2 if x.shape[2] > 1 else 1
    return F.avg_pool3d(x, kernel_size=(kt, 2, 2))


class DisBlock3d(nn.Module):
    """Residual 3D critic block (TGANv2 DisBlock / OptimizedDisBlock), no normalisation."""

    def __init__(self, cin: int, cout: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.c1 = nn.Conv3d(cin, cout, 3, padding=1)
        self.c2 = nn.Conv3d(cout, cout, 3, padding=1)
        self.c_sc = nn.Conv3d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.c2(F.relu(self.c1(h)))
        h = _down(h)
        sc = self.c_sc(_down(x)) if self.first else _down(self.c_sc(x))
        return h + sc


class VideoCritic(nn.Module):
    """R3D-style residual video critic: (B, 3, T, H, W) -> logits (B,)."""

    def __init__(self, cfg: VideoGANConfig) -> None:
        super().__init__()
        blocks = []
        cin = 3
        for i in range(cfg.num_up):
            cout = cfg.critic_width * min(2 ** i, 16)
            blocks.append(DisBlock3d(cin, cout, first=i == 0))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(cin, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.blocks(x))
        return self.out(h.mean(dim=(2, 3, 4)))[:, 0]


def to_generator_range(clip: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> Tensor:
    """Undo ``(x - mean) / std`` (x in [0, 1]) and map to [-1, 1]: ``2 (clip * std + mean) - 1``, clamped.

    ``mean``/``std``: 3 numbers, or tensors already on the clip's device (what the model passes:
    building them from Python numbers on a GPU would be a blocking host-to-device copy).
    """
    m = torch.as_tensor(mean, dtype=torch.float32, device=clip.device).reshape(1, -1, 1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=clip.device).reshape(1, -1, 1, 1, 1)
    return ((clip.float() * s + m) * 2 - 1).clamp(-1, 1)


def resize_video(v: Tensor, frames: int, size: int) -> Tensor:
    """(B, C, T, H, W) -> (B, C, frames, size, size): area averaging when shrinking, trilinear else."""
    if v.shape[2:] == (frames, size, size):
        return v
    if v.shape[2] >= frames and v.shape[3] >= size and v.shape[4] >= size:
        return F.adaptive_avg_pool3d(v, (frames, size, size))
    return F.interpolate(v, size=(frames, size, size), mode="trilinear", align_corners=False)


def video_target_from_clip(clip: Tensor, cfg: VideoGANConfig, mean: Sequence[float] | Tensor,
                           std: Sequence[float] | Tensor) -> Tensor:
    """Pixel target in [-1, 1] at the generator's (frames, size, size), from a normalised clip (no grad)."""
    with torch.no_grad():
        return resize_video(to_generator_range(clip, mean, std), cfg.frames, cfg.size)


def pixel_l2_loss(generated: Tensor, target: Tensor) -> Tensor:
    """Eq. 6/7's ``1/(THW) sum_{t,h,w} ||v_t(h, w) - g_t(h, w)||_2^2`` (norm over RGB), batch mean."""
    d2 = (generated.float() - target.float()).pow(2).sum(dim=1)
    return d2.mean(dim=(1, 2, 3)).mean()


def video_mse(generated: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per pixel and channel in the [-1, 1] range (Table II-style metric)."""
    return (generated.detach().float() - target.float()).pow(2).mean()


__all__ = ["ConditionalBatchNorm3d", "ConvLSTMCell", "GenBlock3d", "VideoCritic", "VideoGANConfig",
           "VideoGenerator", "pixel_l2_loss", "resize_video", "to_generator_range", "video_mse",
           "video_target_from_clip"]
