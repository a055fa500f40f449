"""Keeping one actor per video when a source reports several people per frame.

Rule (OpenPose JSON and mmaction2 skeletons; MediaPipe tracks one person itself):

1. A *detection* is one person in one frame with at least ``min_joints`` joints of confidence
   > 0. Its *centre* is the neck when detected, else the mean of its detected joints; its
   *box* is the bounding box of its detected joints (x scaled by the frame's aspect ratio so
   distances are isotropic); its *size* is the box diagonal (at least ``min_size``).
2. Detections are *linked* frame to frame into tracks, greedily by increasing cost, where the
   cost of a (track, detection) pair is the distance between the track's last centre and the
   detection's centre divided by the larger of their sizes. A pair is linked when the cost is
   at most ``max_link_cost`` (default 1: the centres are within one body size) and the track
   was last seen at most ``max_link_gap`` frames ago; every other detection starts a new track.
3. Each track is *scored* by the sum over its frames of its box area (in units of the frame
   height squared): large *and* persistent people win (area x frames present). The best track
   is kept (ties: the earliest track).

Frames where the kept track has no detection are *missing* (``person_found`` False).

A source that reports one pose a frame (MediaPipe) goes through :func:`keep_one_identity`: the
same linking, so a pose that jumps to another person is dropped rather than followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from csvr.pose_format.skeleton import NECK, NUM_JOINTS


@dataclass(frozen=True)
class TrackSettings:
    min_joints: int = 2
    max_link_cost: float = 1.0
    max_link_gap: int = 15
    min_size: float = 0.02


def _describe(det: np.ndarray, aspect: float, min_size: float) -> tuple[np.ndarray, float, float]:
    ok = det[:, 2] > 0
    pts = det[ok, :2] * np.array([aspect, 1.0])
    center = det[NECK, :2] * np.array([aspect, 1.0]) if ok[NECK] else pts.mean(0)
    lo, hi = pts.min(0), pts.max(0)
    w, h = hi - lo
    return center, float(w * h), max(float(np.hypot(w, h)), min_size)


def select_actor(frames: Sequence[np.ndarray | None], aspect: float = 1.0,
                 settings: TrackSettings | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Link per-frame detections into tracks and keep the best one (see the module docstring).

    Args:
        frames: one entry per frame: ``(K, 18, 3)`` detections (x, y in [0, 1], confidence),
            or None / an empty array for a frame without detections.
        aspect: frame width / height (for isotropic distances and areas).

    Returns:
        ``(poses (T, 18, 3) float32, person_found (T,) bool, info)``; ``info`` has the number of
        tracks, the kept track's score and frame count, and the maximum people per frame.
    """
    s = settings or TrackSettings()
    T = len(frames)
    poses = np.zeros((T, NUM_JOINTS, 3), np.float32)
    found = np.zeros(T, bool)
    # per track: list of (frame, det index), last centre, last size, last frame, score
    tracks: list[dict] = []
    dets_per_frame: list[list[np.ndarray]] = []
    max_people = 0
    for t, dets in enumerate(frames):
        kept: list[np.ndarray] = []
        if dets is not None and len(dets):
            arr = np.asarray(dets, dtype=np.float32).reshape(-1, NUM_JOINTS, 3)
            for d in arr:
                d = np.where(np.isfinite(d), d, 0.0).astype(np.float32)
                d[:, 2] = np.clip(d[:, 2], 0.0, 1.0)
                if int((d[:, 2] > 0).sum()) >= s.min_joints:
                    kept.append(d)
        dets_per_frame.append(kept)
        max_people = max(max_people, len(kept))
        if not kept:
            continue
        desc = [_describe(d, aspect, s.min_size) for d in kept]
        active = [k for k, tr in enumerate(tracks) if t - tr["last"] <= s.max_link_gap + 1]
        pairs = []
        for k in active:
            tr = tracks[k]
            for i, (c, _, size) in enumerate(desc):
                cost = float(np.linalg.norm(c - tr["center"])) / max(size, tr["size"])
                if cost <= s.max_link_cost:
                    pairs.append((cost, k, i))
        pairs.sort()
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, k, i in pairs:
            if k in used_t or i in used_d:
                continue
            used_t.add(k)
            used_d.add(i)
            _extend(tracks[k], t, i, desc[i])
        for i in range(len(kept)):
            if i not in used_d:
                tracks.append({"items": [], "score": 0.0})
                _extend(tracks[-1], t, i, desc[i])
    info = {"tracks": len(tracks), "max_people_per_frame": max_people}
    if not tracks:
        info.update(kept_track_frames=0, kept_track_score=0.0)
        return poses, found, info
    best = max(range(len(tracks)), key=lambda k: (tracks[k]["score"], -k))
    for t, i in tracks[best]["items"]:
        poses[t] = dets_per_frame[t][i]
        found[t] = True
    info.update(kept_track_frames=len(tracks[best]["items"]), kept_track_score=round(tracks[best]["score"], 6))
    return poses, found, info


def _extend(track: dict, t: int, i: int, desc: tuple[np.ndarray, float, float]) -> None:
    center, area, size = desc
    track["items"].append((t, i))
    track["center"], track["size"], track["last"] = center, size, t
    track["score"] += area


def keep_one_identity(poses: np.ndarray, person_found: np.ndarray, aspect: float = 1.0,
                      settings: TrackSettings | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """One person per video for a source that reports one pose a frame (MediaPipe BlazePose).

    Such a source re-detects when it loses its person and may then follow someone else: the
    pose jumps by more than a body size between two detected frames. The per-frame poses are
    linked with :func:`select_actor`'s rule (without a gap limit: the one pose of a frame after
    a gap is the same person when it reappears within a body size of where it was last seen)
    and only the best track (area x frames) is kept; the other tracks' frames become "no person".

    Returns:
        ``(poses, person_found, info)``; ``info``: ``tracks`` (1 when identity was never lost),
        ``kept_frames``, ``dropped_frames`` (frames of other people, now "no person"), and
        ``switch_frames`` (the first frames where the pose jumped to another track, at most 20).
    """
    s = settings or TrackSettings()
    poses = np.asarray(poses, dtype=np.float32)
    found = np.asarray(person_found, dtype=bool)
    T = len(poses)
    frames = [poses[t][None] if found[t] else None for t in range(T)]
    s = TrackSettings(min_joints=s.min_joints, max_link_cost=s.max_link_cost, max_link_gap=max(T, 1),
                      min_size=s.min_size)
    kept, kept_found, info = select_actor(frames, aspect=aspect, settings=s)
    out = poses.copy()
    out[~kept_found] = 0.0
    out[kept_found] = kept[kept_found]
    # detections (>= min_joints joints) of another track, and where the pose jumped to another
    # track: a detection kept while the previous one was not, or the other way round
    det = found & ((poses[..., 2] > 0).sum(-1) >= s.min_joints)
    idx = np.flatnonzero(det)
    switches = [int(b) for a, b in zip(idx[:-1], idx[1:]) if kept_found[a] != kept_found[b]]
    info = {"tracks": int(info["tracks"]), "kept_frames": int(kept_found.sum()),
            "dropped_frames": int((det & ~kept_found).sum()), "switch_frames": switches[:20]}
    return out, kept_found, info
