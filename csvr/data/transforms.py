"""Temporally consistent augmentation on uint8 clips, without torchvision.

Two stages, so that the expensive per-pixel work can run batched on the GPU:

1. *Spatial* (in the data-loader worker, per sample): random resized crop + horizontal flip,
   one set of parameters for every frame of a clip (CVRL's temporally consistent augmentation).
   The same parameters can be reused for the clip's future clip, its I-frames and its poses
   (:func:`crop_poses`), which CSVR needs so that targets and inputs agree. Output: uint8
   ``(T, S, S, 3)`` — small, so little crosses the worker -> trainer boundary.
2. *Photometric* (:class:`ColorAugment`, batched on the device): colour jitter (brightness,
   contrast, saturation, hue), random grayscale and Gaussian blur, one parameter set per sample
   applied to all its frames; the parameters are explicit objects, so a method can apply the same
   ones to several tensors (clip and future clip) or draw new ones (I-frames).

Value conventions: uint8 ``(..., H, W, 3)`` at the decoding boundary; float ``(B, 3, T, H, W)``
in ``[0, 1]`` inside :class:`ColorAugment`; :func:`normalize` maps to the model's input
(mean/std of Kinetics, 0.45/0.225 per channel, as pytorchvideo's video models use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from csvr.pose_format.skeleton import FLIP_INDEX

MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)

# A horizontal flip swaps the person's left and right joints (OpenPose COCO-18 order).
COCO18_FLIP_PERM = list(FLIP_INDEX)


@dataclass(frozen=True)
class CropBox:
    """A crop in source pixels plus a flip flag (shared by every frame of a sample)."""

    top: int
    left: int
    height: int
    width: int
    flip: bool = False


def random_resized_crop_box(h: int, w: int, rng: np.random.Generator, scale: tuple[float, float] = (0.3, 1.0),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3), flip_prob: float = 0.5) -> CropBox:
    """Inception-style random resized crop (area fraction ``scale``, aspect ``ratio``) + flip."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    flip = bool(rng.random() < flip_prob)
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        ar = math.exp(rng.uniform(*log_r))
        cw = int(round(math.sqrt(target * ar)))
        ch = int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return CropBox(top, left, ch, cw, flip)
    # fallback: the largest centred crop within the ratio bounds
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return CropBox((h - ch) // 2, (w - cw) // 2, ch, cw, flip)


def center_crop_box(h: int, w: int) -> CropBox:
    """The centred square of side ``min(h, w)`` (evaluation: resize short side, centre crop)."""
    s = min(h, w)
    return CropBox((h - s) // 2, (w - s) // 2, s, s, False)


def crop_resize(frames: np.ndarray | torch.Tensor, box: CropBox, size: int) -> torch.Tensor:
    """Crop ``box`` from uint8 ``(N, H, W, 3)`` frames, resize to ``size`` x ``size``
    (bilinear with antialiasing), flip if ``box.flip``. Returns uint8 ``(N, size, size, 3)``."""
    t = torch.as_tensor(frames)
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3), got {tuple(t.shape)}")
    t = t[:, box.top:box.top + box.height, box.left:box.left + box.width]
    x = t.permute(0, 3, 1, 2)  # a channels-last view: no copy
    if x.shape[-2:] != (size, size):
        if x.dtype == torch.uint8:
            # PyTorch's uint8 channels-last antialiased bilinear kernel (what torchvision's resize
            # uses): ~15x faster on CPU than converting to float first, equal to within 1 level
            x = F.interpolate(x.contiguous(memory_format=torch.channels_last), size=(size, size),
                              mode="bilinear", align_corners=False, antialias=True)
        else:
            x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True).round_().clamp_(0, 255).to(torch.uint8)
    if box.flip:
        x = x.flip(-1)
    return x.permute(0, 2, 3, 1).contiguous()


def crop_poses(poses: np.ndarray, box: CropBox, frame_h: int, frame_w: int) -> np.ndarray:
    """Apply the crop/flip of :func:`crop_resize` to poses ``(..., 18, 3)`` with x, y in [0, 1]
    of the source frame. Returns x, y in [0, 1] of the crop (may fall outside for joints outside
    the crop); a flip mirrors x and swaps left/right joints. Confidence is unchanged."""
    out = np.array(poses, dtype=np.float32, copy=True)
    out[..., 0] = (out[..., 0] * frame_w - box.left) / box.width
    out[..., 1] = (out[..., 1] * frame_h - box.top) / box.height
    if box.flip:
        out[..., 0] = 1.0 - out[..., 0]
        out = out[..., COCO18_FLIP_PERM, :]
    return out


def to_float_clip(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, T, H, W, 3)`` -> float ``(B, 3, T, H, W)`` in [0, 1] (on x's device)."""
    return x.permute(0, 4, 1, 2, 3).float().div_(255.0)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """float ``(B, 3, T, H, W)`` in [0, 1] -> model input (per-channel mean/std)."""
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
    return (x - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
    return x * std + mean


# ------------------------------------------------------------------------------- colour
def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of (B, 3, ...) -> (B, 1, ...)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    v = maxc
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    dsafe = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / dsafe, (maxc - g) / dsafe, (maxc - b) / dsafe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, v], dim=1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x[:, 0], x[:, 1], x[:, 2]
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r = torch.stack([v, q, p, p, t, v], dim=1).gather(1, i.unsqueeze(1)).squeeze(1)
    g = torch.stack([t, v, v, q, p, p], dim=1).gather(1, i.unsqueeze(1)).squeeze(1)
    b = torch.stack([p, p, t, v, v, q], dim=1).gather(1, i.unsqueeze(1)).squeeze(1)
    return torch.stack([r, g, b], dim=1)


@dataclass
class ColorParams:
    """Per-sample photometric parameters (tensors of shape (B,) on the device)."""

    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor
    hue: torch.Tensor
    jitter: torch.Tensor  # bool: apply colour jitter
    gray: torch.Tensor  # bool
    blur_sigma: torch.Tensor  # 0 = no blur


@dataclass
class ColorAugmentConfig:
    """Photometric augmentation (paper IV-B: colour jitter and Gaussian blur; plus grayscale)."""

    jitter_prob: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_prob: float = 0.2
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)

    def __post_init__(self):
        for name in ("jitter_prob", "grayscale_prob", "blur_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError("hue must be in [0, 0.5]")


class ColorAugment:
    """Batched, temporally consistent photometric augmentation (see module docstring).

    ``sample(B)`` draws parameters; ``apply(x, params)`` applies them to float
    ``(B, 3, T, H, W)`` in [0, 1] (or ``(B, 3, H, W)``); ``__call__`` does both.
    """

    def __init__(self, cfg: ColorAugmentConfig | None = None):
        self.cfg = cfg or ColorAugmentConfig()

    def sample(self, batch: int, device: torch.device | str = "cpu",
               generator: torch.Generator | None = None) -> ColorParams:
        c = self.cfg

        def u(lo: float, hi: float) -> torch.Tensor:
            return torch.rand(batch, generator=generator, device=generator.device if generator else "cpu") \
                .mul(hi - lo).add(lo).to(device)

        def coin(p: float) -> torch.Tensor:
            return u(0.0, 1.0) < p

        sig = u(*c.blur_sigma)
        blur = coin(c.blur_prob)
        return ColorParams(
            brightness=u(max(0.0, 1 - c.brightness), 1 + c.brightness),
            contrast=u(max(0.0, 1 - c.contrast), 1 + c.contrast),
            saturation=u(max(0.0, 1 - c.saturation), 1 + c.saturation),
            hue=u(-c.hue, c.hue),
            jitter=coin(c.jitter_prob),
            gray=coin(c.grayscale_prob),
            blur_sigma=torch.where(blur, sig, torch.zeros_like(sig)),
        )

    def apply(self, x: torch.Tensor, p: ColorParams) -> torch.Tensor:
        squeeze = x.ndim == 4
        if squeeze:
            x = x.unsqueeze(2)
        b = x.shape[0]
        shape = (b, 1, 1, 1, 1)

        def bc(t: torch.Tensor) -> torch.Tensor:
            return t.to(x.dtype).view(shape)

        j = bc(p.jitter.float())
        y = x * bc(p.brightness)
        y = y.clamp(0, 1)
        mean = _gray(y).mean(dim=(2, 3, 4), keepdim=True)
        y = (bc(p.contrast) * y + (1 - bc(p.contrast)) * mean).clamp(0, 1)
        g = _gray(y)
        y = (bc(p.saturation) * y + (1 - bc(p.saturation)) * g).clamp(0, 1)
        if bool((p.hue != 0).any()):
            hsv = _rgb_to_hsv(y)
            hsv = torch.cat([(hsv[:, :1] + bc(p.hue)) % 1.0, hsv[:, 1:]], dim=1)
            y = _hsv_to_rgb(hsv)
        x = j * y + (1 - j) * x
        gmask = bc(p.gray.float())
        x = gmask * _gray(x).expand_as(x) + (1 - gmask) * x
        if bool((p.blur_sigma > 0).any()):
            x = gaussian_blur(x, p.blur_sigma)
        x = x.clamp(0, 1)
        return x.squeeze(2) if squeeze else x

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(x, self.sample(x.shape[0], x.device, generator))


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of float ``(B, C, T, H, W)`` with a per-sample ``sigma`` (B,)
    (0 = unchanged), the same kernel for every frame. Kernel size ~10% of the frame (odd, >= 3),
    reflect padding."""
    b, c, t, h, w = x.shape
    k = max(3, int(0.1 * min(h, w)) // 2 * 2 + 1)
    half = k // 2
    pos = torch.arange(k, device=x.device, dtype=x.dtype) - half
    s = sigma.to(x.dtype).clamp_min(1e-3).view(b, 1)
    kern = torch.exp(-0.5 * (pos.view(1, k) / s) ** 2)
    kern = kern / kern.sum(dim=1, keepdim=True)
    identity = torch.zeros_like(kern)
    identity[:, half] = 1.0
    kern = torch.where((sigma > 0).view(b, 1), kern, identity)
    weight = kern.repeat_interleave(c * t, dim=0)  # (B*C*T, k)
    y = x.reshape(1, b * c * t, h, w)
    y = F.pad(y, (half, half, half, half), mode="reflect")
    y = F.conv2d(y, weight.view(-1, 1, 1, k), groups=b * c * t)
    y = F.conv2d(y, weight.view(-1, 1, k, 1), groups=b * c * t)
    return y.view(b, c, t, h, w)
