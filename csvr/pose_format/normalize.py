"""Centring and scaling of pose sequences for the pose GAN (paper III-B), exactly invertible.

``normalize(poses)`` maps a clip's poses ``(..., T, 18, C)`` (C = 2: x, y; C = 3: x, y,
confidence) to body-centred units::

    normalized_xy = (xy - center) / scale

with one ``center`` (x, y) and one ``scale`` per clip (per leading index for batches):

- **center**: the mean neck position over the clip's frames where the neck is confident
  (confidence > ``min_conf``), or over all frames when it never is (or when C = 2);
- **scale**: the mean torso length, torso = neck to mid-hip (midpoint of the two hips), over the
  frames where neck and both hips are confident. Fallbacks, in order, when no frame has a
  confident torso: 1.5 x the mean shoulder width (the torso is about 1.5 shoulder widths in
  OpenPose's joint placement); 3 x the mean nose-to-neck distance; the diagonal of the clip's
  bounding box of confident joints (of all joints when none is confident); finally 1.0. A
  scale below ``min_scale`` (1e-3, a degenerate clip) becomes ``min_scale``, so normalized
  values stay finite.

Confidence (channel 2) passes through unchanged. ``normalize(future, params=params)`` applies
the params of the *current* clip to the future clip, so that the pose GAN's targets are
expressed in the same frame as its input; ``denormalize(normalized, params)`` inverts both.
Inversion is exact up to float32 rounding (the arithmetic is done in float64).

The params are a :class:`NormParams` named tuple of numpy arrays (``center (..., 2)``,
``scale (...)``), which torch's ``default_collate`` batches like any tuple. ``denormalize``
also accepts torch tensors (for generated poses) and returns a tensor then.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from csvr.pose_format.skeleton import L_HIP, L_SHOULDER, NECK, NOSE, R_HIP, R_SHOULDER

MIN_SCALE = 1e-3


class NormParams(NamedTuple):
    """Per-clip normalisation: ``center`` ``(..., 2)`` (x, y) and ``scale`` ``(...)``, float64."""

    center: np.ndarray
    scale: np.ndarray


def _masked_mean(values: np.ndarray, mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over ``axis`` where ``mask``; also whether any entry was used."""
    m = mask.astype(np.float64)
    cnt = m.sum(axis=axis)
    s = (values * m).sum(axis=axis)
    return s / np.maximum(cnt, 1.0), cnt > 0


def compute_params(poses: np.ndarray, min_conf: float = 0.0) -> NormParams:
    """The :class:`NormParams` of clips ``(..., T, 18, C)`` (see the module docstring)."""
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim < 3 or p.shape[-2] != 18 or p.shape[-1] not in (2, 3):
        raise ValueError(f"poses must be (..., T, 18, 2 or 3), got {p.shape}")
    if p.shape[-3] == 0:
        raise ValueError("cannot normalise a clip with zero frames")
    xy = np.nan_to_num(p[..., :2], nan=0.0, posinf=0.0, neginf=0.0)
    if p.shape[-1] == 3:
        conf = np.nan_to_num(p[..., 2], nan=0.0)
        ok = conf > min_conf  # (..., T, 18)
    else:
        ok = np.ones(p.shape[:-1], bool)

    # center: mean confident neck, else mean neck
    neck = xy[..., NECK, :]  # (..., T, 2)
    c_conf, has = _masked_mean(neck, ok[..., NECK, None], axis=-2)
    c_all = neck.mean(axis=-2)
    center = np.where(has[..., :1], c_conf, c_all)

    def mean_len(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.linalg.norm(a - b, axis=-1)  # (..., T)
        return _masked_mean(d, mask, axis=-1)

    mid_hip = 0.5 * (xy[..., R_HIP, :] + xy[..., L_HIP, :])
    torso, has_torso = mean_len(neck, mid_hip, ok[..., NECK] & ok[..., R_HIP] & ok[..., L_HIP])
    shoulders, has_sh = mean_len(xy[..., R_SHOULDER, :], xy[..., L_SHOULDER, :],
                                 ok[..., R_SHOULDER] & ok[..., L_SHOULDER])
    head, has_head = mean_len(xy[..., NOSE, :], neck, ok[..., NOSE] & ok[..., NECK])
    # bounding-box diagonal over the clip (confident joints; all joints when none is)
    any_ok = ok.any(axis=(-1, -2))[..., None, None]
    box_mask = np.where(any_ok, ok, True)[..., None]  # (..., T, 18, 1)
    for_min = np.where(box_mask, xy, np.inf).reshape(xy.shape[:-3] + (-1, 2))
    for_max = np.where(box_mask, xy, -np.inf).reshape(xy.shape[:-3] + (-1, 2))
    diag = np.linalg.norm(for_max.max(axis=-2) - for_min.min(axis=-2), axis=-1)

    scale = np.ones(center.shape[:-1])
    scale = np.where(diag > MIN_SCALE, diag, scale)
    scale = np.where(has_head & (head > MIN_SCALE), 3.0 * head, scale)
    scale = np.where(has_sh & (shoulders > MIN_SCALE), 1.5 * shoulders, scale)
    scale = np.where(has_torso & (torso > MIN_SCALE), torso, scale)
    scale = np.maximum(scale, MIN_SCALE)
    return NormParams(center=center, scale=scale)


def normalize(poses: np.ndarray, params: NormParams | None = None, *, min_conf: float = 0.0
              ) -> tuple[np.ndarray, NormParams]:
    """Centre and scale pose clips ``(..., T, 18, 2|3)``; returns ``(normalized, params)``.

    Args:
        poses: x, y in [0, 1] of the frame (plus confidence, passed through unchanged).
        params: apply these instead of computing them from ``poses``: pass the current clip's
            params to express its future clip in the same frame. Their leading shape must
            match ``poses.shape[:-3]``.
        min_conf: joints with confidence <= this do not count for the center and scale.

    Returns:
        ``normalized`` float32 of the same shape, and the :class:`NormParams` used.
    """
    p = np.asarray(poses)
    if params is None:
        params = compute_params(p, min_conf=min_conf)
    center = np.asarray(params.center, dtype=np.float64)
    scale = np.asarray(params.scale, dtype=np.float64)
    if center.shape != p.shape[:-3] + (2,) or scale.shape != p.shape[:-3]:
        raise ValueError(f"params for leading shape {scale.shape} do not fit poses {p.shape}")
    out = np.array(p, dtype=np.float64, copy=True)
    out[..., :2] = (out[..., :2] - center[..., None, None, :]) / scale[..., None, None, None]
    return out.astype(np.float32), NormParams(center=center, scale=scale)


def denormalize(normalized: Any, params: NormParams) -> Any:
    """Invert :func:`normalize`: ``xy * scale + center`` (confidence unchanged).

    Accepts numpy arrays (returns float32) or torch tensors (returns a tensor of the input's
    dtype and device).
    """
    center = np.asarray(params.center, dtype=np.float64)
    scale = np.asarray(params.scale, dtype=np.float64)
    if type(normalized).__module__.startswith("torch"):
        import torch  # loaded already (a tensor came in); the pose format itself needs numpy only

        x = normalized
        c = torch.as_tensor(center, dtype=torch.float64, device=x.device)
        s = torch.as_tensor(scale, dtype=torch.float64, device=x.device)
        xy = x[..., :2].double() * s[..., None, None, None] + c[..., None, None, :]
        return torch.cat([xy.to(x.dtype), x[..., 2:]], dim=-1)
    n = np.asarray(normalized, dtype=np.float64)
    out = n.copy()
    out[..., :2] = n[..., :2] * scale[..., None, None, None] + center[..., None, None, :]
    out[..., 2:] = n[..., 2:]
    return out.astype(np.float32)
