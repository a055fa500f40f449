"""Collaborative video generating branch (paper III-D, Eq. 6-8): conditional TGANv2 networks.

Two of these exist in the model: the *reconstructor* (G_v^r, D_v^r) generates the current clip
and the *predictor* (G_v^p, D_v^p) the future clip, both from (z_v, f_i). The networks follow
TGANv2 (Saito et al. 2020, "Train Sparsely, Generate Densely", paper ref. [77]) as its official
code builds them (pfnet-research/tgan2: ``MultiTGANCLSTMGenerator``,
``MultiResNetVideoDiscriminator``, ``DiracUpdater``), made conditional.

Generator (:class:`VideoGenerator`):

* ``fc([z_v, f_i])`` reshaped to a (L, b, b) map is the input of a ConvLSTM at the first step,
  zero input afterwards (TGANv2's CLSTM), run for ``frames`` steps -> (B, L, T, b, b);
  z_v ~ U(-1, 1) (TGANv2's ``make_hidden``) enters through this layer only;
* ``num_up = log2(size / base_size)`` residual up-blocks (BN-ReLU-upsample(1x2x2)-Conv-BN-ReLU-
  Conv, upsample + 1x1 shortcut). Every BatchNorm is *conditional* on f_i:
  ``(1 + W_g f_i) * BN(x) + W_b f_i`` (TGANv2's conditional variant embeds a class there; the
  continuous f_i takes a linear map instead), zero-initialised so it starts as plain BN;
* **multi-scale rendering with sparse training** (TGANv2's contribution): the blocks are split
  into ``levels``; after each level a rendering BN-ReLU-Conv(3x3x3, 3)-tanh gives a video at
  that level's resolution, then the hidden video is **sub-sampled**: every other frame from a
  random offset (one offset per level for the whole batch) and every other sample of the batch
  (``h[::2]``). Level ``l`` (from 1) therefore sees ``frames / 2^(l-1)`` frames of
  ``B / 2^(l-1)`` samples at ``size / 2^(levels-l)`` px: the full-resolution blocks, the
  expensive ones, run on 1/16 of the dense work at 3 levels (1/64 at 4). The random choices are
  a :class:`SparsePlan`; :func:`level_targets` sub-samples the real clip with **the same** plan
  (TGANv2 draws them independently for the real videos only because it is unconditional: a
  conditional generator's level-l output must be compared with *its own* target's frames).
  In eval mode (or ``sparse: false``) the generator is dense and :meth:`VideoGenerator.forward`
  returns only the finest rendering, (B, 3, frames, size, size) in [-1, 1] (TGANv2's test mode).

Critics (:class:`MultiLevelCritic`): one TGANv2 ResNet video discriminator per level
(:class:`VideoCritic`): an optimised first block that pools 1x2x2, residual blocks without
normalisation that pool 2x2x2 (only axes longer than 1), ReLU, a **sum** over (T, H, W), a linear
layer, and a **projection term** ``<W f_i, h>`` on the detached condition (Miyato & Koyama's
projection discriminator, TGANv2's ``l_c`` with f_i in place of a class embedding): a CGAN's
critic sees its condition, so it can reject a realistic clip that does not fit f_i.

Regularisation: the zero-centred R1 penalty on real data (TGANv2's UCF101 recipe,
``reg_type: real``, lambda 0.5), computed lazily every ``r1_every`` steps with its weight
multiplied by ``r1_every`` (StyleGAN2's lazy regularisation: the same expected gradient at a
fraction of the cost). Initialisation: TGANv2's (Glorot-uniform with gain sqrt(2) in residual
convolutions, gain 1 in shortcuts and the critics' linear layers, LeCun-normal in the fully
connected layer, the ConvLSTM and the renderings, zero biases).

Deviations, each with its reason:

* 3D residual blocks in the generator (3x3x3 convolutions) where TGANv2 uses per-frame 2D
  blocks: the paper calls its networks "R3D-based TGAN v2". The sub-sampled frames of a level
  are then neighbours for the 3D kernels although they were 2^(l-1) frames apart: that is what
  the level's target holds too.
* The number of levels: 3 at <= 32 px (the CPU presets), 4 above (TGANv2 at 192 px uses 4);
  level 1 takes all but ``levels - 1`` of the up-blocks, as TGANv2's level 1 takes three.
* Critic depth ``critic_blocks`` (default 4) for every level, not TGANv2's 5: at 32 px five
  blocks would pool a 2-frame level to 1x1 after the second block; widths double up to 16x.
* Batch statistics: TGANv2 sub-samples the batch with ``h[::2]``; the same is done here (the
  data loader shuffles, so the kept half is a random half).
* R1 averaged over the batch (TGANv2 sums over it, so its weight grew with the batch size).
* The generator's L2 term (Eq. 6-7) has no counterpart in TGANv2; it is averaged over levels.
* Optimiser (TGANv2: Adam lr 1e-4, betas (0, 0.9), equal rates, linear decay from the start):
  the same Adam settings by default under their own roles ``video_generator`` / ``video_critic``
  (:mod:`csvr.engine.optim`), but a constant rate after the warm-up instead of the linear decay,
  because CSVR trains these networks only in its last two stages (III-E): a decay laid over the
  whole run would leave them a fraction of their rate.
* The adversarial weight can start at 0 and ramp up (``adv_warmup_steps``, ``adv_ramp_steps``,
  counted in the branch's own training steps) so the adversarial term does not override the L2
  agreement with f_i before the generator has any (issue 23's measurement: with the critic
  ahead, the adversarial gradient at the output was 1.1-4.7x the L2 gradient and the generators
  learned realism that ignored f_i).

Pixel range: generators output tanh in [-1, 1]; targets are the clip mapped back to [0, 1]
(undoing the input normalisation) then to [-1, 1], resized to (frames, size, size)
(:func:`video_target_from_clip`), unless the batch carries explicit targets.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclasses.dataclass
class VideoGANConfig:
    """Settings of both video GANs (Eq. 6-7); module docstring for each choice."""

    frames: int = 16                    # generated clip length T_gen
    size: int = 64                      # generated height = width (target resized to it)
    base_size: int = 4                  # spatial size of the CLSTM latent; size = base_size * 2^n
    noise_dim: int = 128                # z_v ~ U(-1, 1), into the first fully connected layer only
    latent_channels: int = 256          # CLSTM channels (TGANv2: 512-1024)
    gen_width: int = 32                 # TGANv2 "ch": last block has ch channels, block i ch * 2^(n-1-i)
    critic_width: int = 32              # first critic block channels, doubling per block (cap 16x); TGANv2 64
    levels: Optional[int] = None        # rendering levels; None: 3 up to 32 px, 4 above (capped by the blocks)
    sparse: bool = True                 # TGANv2's frame / batch sub-sampling between levels when training
    critic_blocks: int = 4              # residual blocks of every level's critic
    conditional_critic: bool = True     # projection term <W f_i, h> in the critics (detached f_i)
    r1_weight: float = 0.5              # zero-centred R1 on real data (TGANv2's lambda); 0 = off
    r1_every: int = 4                   # lazy R1: every k-th step, weight x k
    l2_weight: float = 1.0              # Eq. 6/7 weight the pixel L2 term 1
    adv_weight: float = 1.0             # generator's adversarial term (after the ramp)
    adv_warmup_steps: int = 0           # branch steps with the adversarial weight at 0 (L2 only)
    adv_ramp_steps: int = 0             # then a linear ramp to adv_weight over this many steps
    gp_weight: float = 0.0              # WGAN-GP on the video critics (not in Eq. 6/7 nor TGANv2: off)

    def __post_init__(self) -> None:
        for name in ("frames", "size", "base_size", "noise_dim", "latent_channels", "gen_width", "critic_width",
                     "critic_blocks", "r1_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"video.{name} must be >= 1, got {getattr(self, name)}")
        ratio = self.size / self.base_size
        if self.size % self.base_size or ratio < 2 or 2 ** round(math.log2(ratio)) != ratio:
            raise ValueError(f"video.size ({self.size}) must be base_size ({self.base_size}) times a power of 2 (>= 2)")
        if self.levels is not None and not 1 <= self.levels <= self.num_up:
            raise ValueError(f"video.levels must be in [1, {self.num_up}] (the up-blocks at size {self.size}, "
                             f"base_size {self.base_size}) or null, got {self.levels}")
        for name in ("l2_weight", "adv_weight", "gp_weight", "r1_weight", "adv_warmup_steps", "adv_ramp_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"video.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def num_up(self) -> int:
        return round(math.log2(self.size / self.base_size))

    @property
    def num_levels(self) -> int:
        """Rendering levels: ``levels``, or 3 up to 32 px and 4 above, never more than the blocks."""
        if self.levels is not None:
            return self.levels
        return min(self.num_up, 3 if self.size <= 32 else 4)

    def level_size(self, level: int) -> int:
        """Side in px of level ``level`` (0-based): ``size / 2^(levels - 1 - level)``."""
        return self.size // 2 ** (self.num_levels - 1 - level)

    def adversarial_weight(self, step: int) -> float:
        """The generators' adversarial weight after ``step`` branch training steps (warm-up, ramp)."""
        if step < self.adv_warmup_steps:
            return 0.0
        if self.adv_ramp_steps == 0:
            return self.adv_weight
        return self.adv_weight * min(1.0, (step - self.adv_warmup_steps + 1) / self.adv_ramp_steps)


@dataclasses.dataclass
class SparsePlan:
    """The sub-sampling between levels: ``offsets[l]`` is the first kept frame (0 or 1) when going
    from level l to l + 1 (None: frames kept, a level of one frame); ``batch`` halves the batch
    (``[::2]``) at each transition. :meth:`dense_plan` keeps everything (the dense generator)."""

    offsets: list[Optional[int]]
    batch: bool = True

    @classmethod
    def draw(cls, cfg: VideoGANConfig, generator: torch.Generator | None = None) -> "SparsePlan":
        """Random offsets from ``generator`` (or torch's global CPU stream, which checkpoints
        save: a resumed run draws the same plans)."""
        offsets: list[Optional[int]] = []
        t = cfg.frames
        device = generator.device if generator is not None else "cpu"  # the global CPU stream otherwise
        for _ in range(cfg.num_levels - 1):
            if t > 1:
                o = int(torch.randint(0, 2, (1,), generator=generator, device=device).item())
                offsets.append(o)
                t = len(range(o, t, 2))
            else:
                offsets.append(None)
        return cls(offsets)

    @classmethod
    def dense_plan(cls, cfg: VideoGANConfig) -> "SparsePlan":
        return cls([None] * (cfg.num_levels - 1), batch=False)

    def frame_index(self, frames: int) -> list[list[int]]:
        """Indices into the full clip's frames kept at each level."""
        idx = [list(range(frames))]
        for o in self.offsets:
            idx.append(idx[-1] if o is None else idx[-1][o::2])
        return idx

    def batch_strides(self, n: int) -> list[int]:
        """Level l keeps samples ``[::stride_l]`` of a batch of ``n`` (halved while more than one)."""
        strides = [1]
        for _ in self.offsets:
            s = strides[-1]
            strides.append(2 * s if self.batch and len(range(0, n, s)) > 1 else s)
        return strides

    def batch_index(self, n: int) -> list[list[int]]:
        """Indices into the batch kept at each level."""
        return [list(range(0, n, s)) for s in self.batch_strides(n)]


def _glorot(module: nn.Module, gain: float) -> None:
    nn.init.xavier_uniform_(module.weight, gain=gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _lecun(module: nn.Module) -> None:
    fan_in = module.weight[0].numel()
    nn.init.normal_(module.weight, std=1.0 / math.sqrt(fan_in))
    if module.bias is not None:
        nn.init.zeros_(module.bias)


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
    """Residual 3D up-block with conditional BN (TGANv2's GenBlock with 3x3x3 convolutions)."""

    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.b1 = ConditionalBatchNorm3d(cin, cond_dim)
        self.c1 = nn.Conv3d(cin, cout, 3, padding=1)
        self.b2 = ConditionalBatchNorm3d(cout, cond_dim)
        self.c2 = nn.Conv3d(cout, cout, 3, padding=1)
        self.c_sc = nn.Conv3d(cin, cout, 1)
        _glorot(self.c1, math.sqrt(2))
        _glorot(self.c2, math.sqrt(2))
        _glorot(self.c_sc, 1.0)

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
        _lecun(self.conv_x)
        _lecun(self.conv_h)

    def forward(self, x_gates: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``x_gates`` = ``conv_x(x)`` (precomputed; the bias alone for a zero input)."""
        h, c = state
        i, f, o, g = (x_gates + self.conv_h(h)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class Render(nn.Module):
    """TGANv2's rendering: BN-ReLU-Conv(3x3x3 -> 3 channels)-tanh."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm3d(channels)
        self.conv = nn.Conv3d(channels, 3, 3, padding=1)
        _lecun(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.conv(F.relu(self.bn(x))))


class VideoGenerator(nn.Module):
    """Conditional multi-scale TGANv2 generator (module docstring).

    ``forward(z, f)`` -> the finest rendering (B, 3, frames, size, size) in [-1, 1], dense;
    ``forward_levels(z, f, plan)`` -> one rendering per level, sub-sampled by ``plan`` (training).
    """

    def __init__(self, cfg: VideoGANConfig, feature_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.cond_dim = feature_dim
        lat, b = cfg.latent_channels, cfg.base_size
        self.fc = nn.Linear(cfg.noise_dim + feature_dim, lat * b * b)
        _lecun(self.fc)
        self.clstm = ConvLSTMCell(lat, lat)
        blocks = []
        cin = lat
        for i in range(cfg.num_up):
            cout = cfg.gen_width * 2 ** (cfg.num_up - 1 - i)
            blocks.append(GenBlock3d(cin, cout, feature_dim))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        # level l renders after block first + l (level 0 takes all blocks but levels - 1)
        self.first = cfg.num_up - cfg.num_levels + 1
        self.renders = nn.ModuleList(Render(self.blocks[self.first - 1 + l].c2.out_channels)
                                     for l in range(cfg.num_levels))

    def temporal_latent(self, z: Tensor, f: Tensor) -> Tensor:
        """CLSTM latent video (B, L, frames, b, b) from [z, f] (B, noise_dim + C)."""
        cfg = self.cfg
        n, lat, b = f.shape[0], cfg.latent_channels, cfg.base_size
        x0 = self.fc(torch.cat([z.to(f.dtype), f], dim=1)).view(n, lat, b, b)
        h = x0.new_zeros(n, lat, b, b)
        cell = x0.new_zeros(n, lat, b, b)
        zero_input = self.clstm.conv_x.bias.to(x0.dtype)[None, :, None, None]
        frames = []
        for t in range(cfg.frames):
            gates_x = self.clstm.conv_x(x0) if t == 0 else zero_input
            h, cell = self.clstm(gates_x, (h, cell))
            frames.append(h)
        return torch.stack(frames, dim=2)

    def forward_levels(self, z: Tensor, f: Tensor, plan: SparsePlan | None = None) -> list[Tensor]:
        """One video per level; with a sparse ``plan``, level l holds the frames and samples that
        ``plan.frame_index`` / ``plan.batch_index`` name (:func:`level_targets` cuts the real clip
        the same way)."""
        cfg = self.cfg
        plan = plan or SparsePlan.dense_plan(cfg)
        x = self.temporal_latent(z, f)
        c = f
        for block in self.blocks[: self.first]:
            x = block(x, c)
        out = [self.renders[0](x)]
        for level in range(1, cfg.num_levels):
            o = plan.offsets[level - 1]
            if plan.batch and x.shape[0] > 1:
                x, c = x[::2], c[::2]
            if o is not None:
                x = x[:, :, o::2]
            x = self.blocks[self.first + level - 1](x, c)
            out.append(self.renders[level](x))
        return out

    def forward(self, z: Tensor, f: Tensor) -> Tensor:
        """Dense generation (TGANv2's test mode): every block on every frame and sample, only the
        finest level rendered: (B, 3, frames, size, size) in [-1, 1]."""
        x = self.temporal_latent(z, f)
        for block in self.blocks:
            x = block(x, f)
        return self.renders[-1](x)


def video_noise(n: int, cfg: VideoGANConfig, generator: torch.Generator | None = None, device=None,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """z_v ~ U(-1, 1)^noise_dim (TGANv2's ``make_hidden``)."""
    return torch.rand(n, cfg.noise_dim, generator=generator, device=device, dtype=dtype) * 2 - 1


def _down(x: Tensor, time: bool = True) -> Tensor:
    """2x average pooling along every axis longer than 1 (time only when ``time``), odd sizes
    rounded up (the last window averages what it holds)."""
    k = tuple(2 if (s > 1 and (i > 0 or time)) else 1 for i, s in enumerate(x.shape[2:]))
    return F.avg_pool3d(x, kernel_size=k, ceil_mode=True) if k != (1, 1, 1) else x


class DisBlock3d(nn.Module):
    """TGANv2's residual critic block (DisBlock / OptimizedDisBlock), no normalisation. The first
    block pools 1x2x2 (space only), the others 2x2x2."""

    def __init__(self, cin: int, cout: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.c1 = nn.Conv3d(cin, cout if first else cin, 3, padding=1)
        self.c2 = nn.Conv3d(cout if first else cin, cout, 3, padding=1)
        self.c_sc = nn.Conv3d(cin, cout, 1)
        _glorot(self.c1, math.sqrt(2))
        _glorot(self.c2, math.sqrt(2))
        _glorot(self.c_sc, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        if self.first:
            h = self.c2(F.relu(self.c1(x)))
            return _down(h, time=False) + self.c_sc(_down(x, time=False))
        h = self.c2(F.relu(self.c1(F.relu(x))))
        return _down(h) + _down(self.c_sc(x))


class VideoCritic(nn.Module):
    """TGANv2's ResNet video discriminator for one level, with a projection term on the condition:
    ``(B, 3, T, H, W), f (B, C) -> logits (B,)``."""

    def __init__(self, cfg: VideoGANConfig, feature_dim: int | None = None) -> None:
        super().__init__()
        blocks = []
        cin = 3
        for i in range(cfg.critic_blocks):
            cout = cfg.critic_width * min(2 ** i, 16)
            blocks.append(DisBlock3d(cin, cout, first=i == 0))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(cin, 1)
        _glorot(self.out, 1.0)
        self.embed = None
        if cfg.conditional_critic and feature_dim:
            self.embed = nn.Linear(feature_dim, cin, bias=False)
            _glorot(self.embed, 1.0)

    def forward(self, x: Tensor, f: Tensor | None = None) -> Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3, 4))
        y = self.out(h)[:, 0]
        if self.embed is not None and f is not None:
            y = y + (self.embed(f.to(h.dtype)) * h).sum(dim=1)
        return y


class MultiLevelCritic(nn.Module):
    """One :class:`VideoCritic` per level (TGANv2's ``MultiResNetVideoDiscriminator``)."""

    def __init__(self, cfg: VideoGANConfig, feature_dim: int | None = None) -> None:
        super().__init__()
        self.levels = nn.ModuleList(VideoCritic(cfg, feature_dim) for _ in range(cfg.num_levels))

    def __len__(self) -> int:
        return len(self.levels)

    def __getitem__(self, level: int) -> VideoCritic:
        return self.levels[level]


def level_targets(target: Tensor, cfg: VideoGANConfig, plan: SparsePlan | None = None) -> list[Tensor]:
    """The real clip (B, 3, frames, size, size) cut like the generator's levels: level l keeps the
    frames and samples ``plan`` names and is area-pooled to ``cfg.level_size(l)`` (TGANv2's
    ``MultiLevelDataset``: sub-sampling, then pooling by 2^(levels-1-l))."""
    plan = plan or SparsePlan.dense_plan(cfg)
    if target.shape[2:] != (cfg.frames, cfg.size, cfg.size):
        raise ValueError(f"video target is {tuple(target.shape)}, the generator makes "
                         f"(B, 3, {cfg.frames}, {cfg.size}, {cfg.size})")
    fidx, strides = plan.frame_index(cfg.frames), plan.batch_strides(target.shape[0])
    out = []
    for level in range(cfg.num_levels):
        v = target[:: strides[level]] if strides[level] > 1 else target
        if len(fidx[level]) != cfg.frames:
            v = v[:, :, fidx[level]]
        k = cfg.size // cfg.level_size(level)
        out.append(F.avg_pool3d(v, (1, k, k)) if k > 1 else v)
    return out


def r1_penalty(critic: VideoCritic, real: Tensor, cond: Tensor | None = None) -> Tensor:
    """Zero-centred R1 (Mescheder et al. 2018; TGANv2's ``reg_type: real``): ``E_b ||grad_x D(x, f)||^2``
    on real samples. Differentiable w.r.t. the critic (double backward) when gradients are recorded;
    the real clip and the condition are detached."""
    x = real.detach().requires_grad_(True)
    c = None if cond is None else cond.detach()
    with torch.enable_grad():
        y = critic(x, c)
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=torch.is_grad_enabled())
    return g.float().pow(2).flatten(1).sum(dim=1).mean()


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


__all__ = ["ConditionalBatchNorm3d", "ConvLSTMCell", "DisBlock3d", "GenBlock3d", "MultiLevelCritic", "Render",
           "SparsePlan", "VideoCritic", "VideoGANConfig", "VideoGenerator", "level_targets", "pixel_l2_loss",
           "r1_penalty", "resize_video", "to_generator_range", "video_mse", "video_noise", "video_target_from_clip"]
