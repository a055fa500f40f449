"""Cleaning a raw pose sequence: missing joints and frames, low confidence, NaN.

Policy (the defaults are in :class:`CleanSettings`):

1. *Sanitise.* A joint is **valid** (observed) in a frame when its x, y and confidence are
   finite, its confidence is at least ``conf_threshold`` (and above 0), and the actor was found
   in that frame. NaN / inf confidences count as 0; confidences are clipped to [0, 1] and
   coordinates to [0, 1].
2. *Short gaps* (at most ``max_gap`` consecutive frames without the joint, with an observation
   on both sides) are filled by **linear interpolation** between the two bracketing
   observations; the joint's confidence becomes ``interp_conf_scale`` x the smaller of the two
   bracketing confidences and it is flagged ``interpolated``.
3. *Long gaps* (more than ``max_gap`` frames) and *leading / trailing gaps* are filled with the
   position of the **nearest valid frame** of that joint (ties go to the earlier frame),
   confidence 0, flagged ``filled``.
4. A joint that is *never observed* in the video is placed on its nearest observed ancestor in
   the skeleton tree (:data:`csvr.pose_format.skeleton.PARENT`; e.g. an unseen wrist sits on the elbow,
   unseen hips on the neck; an unseen neck is the shoulder midpoint, or the mean of the observed
   joints), confidence 0, flagged ``filled``.
5. A video in which **no joint is ever valid** raises :class:`NoPersonError`: it is reported and
   excluded from the pose branch, never silently zero.

The result is checked: no NaN or inf ever leaves :func:`clean` (an internal error is raised
otherwise), coordinates and confidences lie in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from csvr.pose.raw import RawPoses
from csvr.pose_format.base import NoPersonError, PoseError, PoseRecord
from csvr.pose_format.skeleton import L_SHOULDER, NECK, NUM_JOINTS, PARENT, R_SHOULDER

# Joints ordered so that every joint comes after its parent (breadth-first from the neck).
_TREE_ORDER: tuple[int, ...] = (1, 0, 2, 5, 8, 11, 14, 15, 3, 6, 9, 12, 16, 17, 4, 7, 10, 13)

# Default confidence threshold per source: MediaPipe's own drawing threshold for landmark
# visibility, OpenPose's render threshold, and a moderate value for HRNet (mmaction2) scores.
DEFAULT_CONF_THRESHOLD = {"mediapipe": 0.5, "openpose-json": 0.05, "mmaction-pkl": 0.2}


@dataclass(frozen=True)
class CleanSettings:
    """How :func:`clean` treats missing and low-confidence joints (see the module docstring)."""

    conf_threshold: float = 0.1
    max_gap: int = 10
    interp_conf_scale: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf_threshold <= 1.0:
            raise PoseError(f"conf_threshold must be in [0, 1], got {self.conf_threshold}")
        if self.max_gap < 0:
            raise PoseError(f"max_gap must be >= 0, got {self.max_gap}")
        if not 0.0 <= self.interp_conf_scale <= 1.0:
            raise PoseError(f"interp_conf_scale must be in [0, 1], got {self.interp_conf_scale}")

    @classmethod
    def for_source(cls, source: str, conf_threshold: float | None = None, max_gap: int | None = None,
                   interp_conf_scale: float | None = None) -> "CleanSettings":
        """The settings for ``source`` with the given values overriding the defaults."""
        kw: dict[str, Any] = {"conf_threshold": DEFAULT_CONF_THRESHOLD.get(source, cls.conf_threshold)}
        if conf_threshold is not None:
            kw["conf_threshold"] = float(conf_threshold)
        if max_gap is not None:
            kw["max_gap"] = int(max_gap)
        if interp_conf_scale is not None:
            kw["interp_conf_scale"] = float(interp_conf_scale)
        return cls(**kw)

    def to_dict(self) -> dict:
        return asdict(self)


def clean(poses: np.ndarray | RawPoses, settings: CleanSettings | None = None, *,
          person_found: np.ndarray | None = None, frame_size: tuple[int, int] = (0, 0),
          what: str = "video") -> PoseRecord:
    """Clean ``(T, 18, 3)`` poses (or a :class:`RawPoses`) into a :class:`PoseRecord`.

    Args:
        poses: x, y (nominally in [0, 1]) and confidence per joint and frame; anything goes
            (NaN, inf, negative confidence): invalid entries count as missing.
        settings: thresholds and gap length (:class:`CleanSettings`; default values if None).
        person_found: optional ``(T,)`` bool; frames where it is False have no valid joint.
        frame_size: stored in the record (taken from a :class:`RawPoses` when given one).
        what: the name used in error messages (video id or path).

    Raises:
        NoPersonError: no joint is valid in any frame (including a video with zero frames).
    """
    settings = settings or CleanSettings()
    meta: dict[str, Any] = {}
    if isinstance(poses, RawPoses):
        raw = poses
        poses, frame_size = raw.poses, raw.frame_size
        person_found = raw.person_found if person_found is None else person_found
        meta = {"source": raw.source}
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 3):
        raise PoseError(f"{what}: poses must be (T, {NUM_JOINTS}, 3), got {p.shape}")
    T = p.shape[0]
    if T == 0:
        raise NoPersonError(what, "the video has no frames")
    xy = p[..., :2]
    conf = p[..., 2]
    finite = np.isfinite(xy).all(-1) & np.isfinite(conf)
    conf = np.where(np.isfinite(conf), np.clip(conf, 0.0, 1.0), 0.0)
    valid = finite & (conf > 0.0) & (conf >= settings.conf_threshold)
    if person_found is not None:
        pf = np.asarray(person_found, dtype=bool).reshape(-1)
        if pf.shape[0] != T:
            raise PoseError(f"{what}: person_found has {pf.shape[0]} entries for {T} frames")
        valid &= pf[:, None]
    if not valid.any():
        raise NoPersonError(what)
    xy = np.where(valid[..., None], np.clip(np.nan_to_num(xy, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0), 0.0)

    out_xy = np.zeros((T, NUM_JOINTS, 2), np.float64)
    out_c = np.zeros((T, NUM_JOINTS), np.float64)
    interpolated = np.zeros((T, NUM_JOINTS), bool)
    filled = np.zeros((T, NUM_JOINTS), bool)
    t = np.arange(T)
    seen = valid.any(0)
    for j in range(NUM_JOINTS):
        if not seen[j]:
            continue
        v = np.flatnonzero(valid[:, j])
        pos = np.searchsorted(v, t)  # index into v of the first valid frame >= t
        prev = v[np.clip(pos - 1, 0, len(v) - 1)]
        nxt = v[np.clip(pos, 0, len(v) - 1)]
        miss = ~valid[:, j]
        lead = miss & (pos == 0)
        trail = miss & (pos == len(v))
        inner = miss & ~lead & ~trail
        gap = nxt - prev - 1
        short = inner & (gap <= settings.max_gap)
        long_ = inner & ~short
        src = t.copy()  # frame whose value is copied (observed and nearest-filled frames)
        src[lead] = v[0]
        src[trail] = v[-1]
        near_prev = (t - prev) <= (nxt - t)
        src[long_] = np.where(near_prev[long_], prev[long_], nxt[long_])
        jxy = xy[src, j]
        jc = np.where(valid[:, j], conf[:, j], 0.0)
        if short.any():
            w = ((t - prev) / np.maximum(nxt - prev, 1))[short][:, None]
            jxy[short] = (1.0 - w) * xy[prev[short], j] + w * xy[nxt[short], j]
            jc[short] = settings.interp_conf_scale * np.minimum(conf[prev[short], j], conf[nxt[short], j])
        out_xy[:, j] = jxy
        out_c[:, j] = jc
        interpolated[:, j] = short
        filled[:, j] = lead | trail | long_
    # joints never observed: on the nearest observed ancestor (the neck first, it is the root)
    for j in _TREE_ORDER:
        if seen[j]:
            continue
        if j == NECK:
            if seen[R_SHOULDER] and seen[L_SHOULDER]:
                out_xy[:, j] = 0.5 * (out_xy[:, R_SHOULDER] + out_xy[:, L_SHOULDER])
            else:
                out_xy[:, j] = out_xy[:, seen].mean(axis=1)
        else:
            out_xy[:, j] = out_xy[:, PARENT[j]]
        filled[:, j] = True
    out = np.concatenate([np.clip(out_xy, 0.0, 1.0), np.clip(out_c, 0.0, 1.0)[..., None]], axis=-1)
    out = out.astype(np.float32)
    if not np.isfinite(out).all():  # never with the code above; checked because it is a contract
        raise AssertionError(f"{what}: the pose cleaner produced NaN or inf")
    pf_out = valid.any(1)
    meta.update({"clean": settings.to_dict(),
                 "stats": {"frames": int(T), "frames_with_person": int(pf_out.sum()),
                           "observed": float(valid.mean()), "interpolated": float(interpolated.mean()),
                           "filled": float(filled.mean()),
                           "never_seen_joints": [int(j) for j in np.flatnonzero(~seen)]}})
    return PoseRecord(poses=out, valid=valid, interpolated=interpolated, filled=filled,
                      person_found=pf_out, frame_size=(int(frame_size[0]), int(frame_size[1])), meta=meta)


def clean_poses(poses: np.ndarray, **settings: Any) -> np.ndarray:
    """:func:`clean` returning only the ``(T, 18, 3)`` array (settings as keyword arguments)."""
    return clean(poses, CleanSettings(**settings)).poses
