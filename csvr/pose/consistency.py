"""Poses that disagree with the image: a skeleton that stays still, confidently, while the picture
moves.

BlazePose tracks one person from frame to frame. When it loses them it may keep a confident
"ghost" skeleton frozen in place (confidence ~1) while the person moves elsewhere; the cache then
holds a pose track that says "nobody moves" on a video full of motion, and nothing downstream can
tell. The check costs almost nothing because it runs on what pose extraction already has:

* :class:`MotionProbe` keeps, per decoded frame, which cells of a coarse ``grid x grid`` grayscale
  picture changed since the previous frame (the frame is shrunk with OpenCV's area filter first;
  32 x 32 cells, 128 bytes a frame as packed bits);
* :func:`frozen_skeleton` compares, frame by frame, the skeleton's own motion (mean displacement
  of its confident joints since ``window`` frames earlier, per frame, in frame units: a tracker's
  jitter does not add up over the window, a moving person's motion does) with the share of cells
  that changed outside the skeleton's (grown) bounding box. A frame is flagged when the skeleton
  is confident (mean joint confidence >= ``conf``), still (motion < ``still``) and the image around
  it changed (>= ``changed`` of the cells outside the box); runs of at least ``min_frames`` flagged
  frames are reported as segments (gaps of up to ``max_gap`` frames inside a run are bridged).
  Motion inside the box is reported, not judged: a talking or breathing person changes the pixels
  under a rightly still skeleton.

A still person in front of moving things (traffic, a crowd, a panning camera that the skeleton
does not follow) is flagged too: the report says where the image changed (inside or outside the
skeleton's box), and a person looking at the flagged frames (``csvr viz poses``) decides.
The check needs the frames, so it runs where they are decoded (the ``mediapipe`` source); imported
poses (OpenPose JSON, mmaction2 pickles) come from per-frame detectors, which do not freeze a
track this way, and are not checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FrozenSkeletonSettings:
    """Thresholds of :func:`frozen_skeleton` (see the module docstring)."""

    grid: int = 32  # cells per side of the motion picture
    cell_change: float = 0.04  # a cell changed: its mean gray level (in [0, 1]) moved by more than this
    window: int = 8  # skeleton motion measured against this many frames earlier
    still: float = 0.002  # skeleton motion per frame (mean joint displacement, frame units) below this: still
    conf: float = 0.8  # mean joint confidence at or above this: confident
    changed: float = 0.03  # share of the cells outside the skeleton's box that changed at or above this: it moves
    min_frames: int = 12  # shortest reported segment (half a second at 25 fps)
    max_gap: int = 2  # unflagged frames bridged inside a segment
    box_margin: float = 0.15  # the skeleton's box grown by this share of its size on each side
    joint_conf: float = 0.3  # joints below this confidence are not used

    def to_dict(self) -> dict:
        return asdict(self)


def small_gray(rgb: np.ndarray, grid: int) -> np.ndarray:
    """``grid x grid`` float32 grayscale in [0, 1] of an RGB uint8 frame: every k-th pixel (at
    least 4 per cell and side are left), then OpenCV's area filter (1080p: ~1 ms a frame, not ~7)."""
    k = max(1, min(rgb.shape[0], rgb.shape[1]) // (4 * grid))
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[::k, ::k], dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (grid, grid), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


class MotionProbe:
    """Which cells of a coarse grayscale picture changed since the previous frame, per frame.

    Feed it every decoded frame in order (:meth:`add`); :meth:`masks` gives ``(T, grid, grid)``
    bool (frame 0 and frames not given: nothing changed).
    """

    def __init__(self, settings: FrozenSkeletonSettings | None = None):
        self.settings = settings or FrozenSkeletonSettings()
        self._prev: np.ndarray | None = None
        self._prev_index = -2
        self._packed: dict[int, np.ndarray] = {}

    def add(self, index: int, rgb: np.ndarray) -> None:
        s = self.settings
        g = small_gray(rgb, s.grid)
        if self._prev is not None and index == self._prev_index + 1:
            self._packed[index] = np.packbits(np.abs(g - self._prev) > s.cell_change)
        self._prev, self._prev_index = g, index

    def masks(self, num_frames: int) -> np.ndarray:
        g = self.settings.grid
        out = np.zeros((num_frames, g, g), bool)
        for i, bits in self._packed.items():
            if i < num_frames:
                out[i] = np.unpackbits(bits, count=g * g).reshape(g, g).astype(bool)
        return out


def _box_cells(xy: np.ndarray, grid: int, margin: float) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the cells under the joints' bounding box, grown by ``margin``."""
    lo, hi = xy.min(0), xy.max(0)
    pad = (hi - lo) * margin + 1.0 / grid
    lo, hi = np.clip(lo - pad, 0.0, 1.0), np.clip(hi + pad, 0.0, 1.0)
    c0, r0 = (np.floor(lo * grid)).astype(int)
    c1, r1 = (np.ceil(hi * grid)).astype(int)
    return int(r0), int(max(r1, r0 + 1)), int(c0), int(max(c1, c0 + 1))


def _runs(flags: np.ndarray, max_gap: int, min_len: int) -> list[tuple[int, int]]:
    """(start, end) inclusive of the runs of True, gaps of up to ``max_gap`` bridged, at least ``min_len`` long."""
    idx = np.flatnonzero(flags)
    runs: list[list[int]] = []
    for i in idx:
        if runs and i - runs[-1][1] <= max_gap + 1:
            runs[-1][1] = int(i)
        else:
            runs.append([int(i), int(i)])
    return [(a, b) for a, b in runs if b - a + 1 >= min_len]


def frozen_skeleton(poses: np.ndarray, found: np.ndarray, masks: np.ndarray,
                    settings: FrozenSkeletonSettings | None = None) -> dict:
    """Segments where the skeleton stays still, confidently, while the image changes.

    Args:
        poses: ``(T, J, 3)`` (x, y in [0, 1], confidence) raw poses of one video.
        found: ``(T,)`` frames with a person.
        masks: ``(T, grid, grid)`` changed cells (:meth:`MotionProbe.masks`).

    Returns ``{"frames", "flagged_frames", "segments": [{"start", "end", "frames",
    "skeleton_motion", "confidence", "changed", "changed_in_box", "changed_outside_box"}]}``
    (frame indices inclusive; the means are over the segment's flagged frames).
    """
    s = settings or FrozenSkeletonSettings()
    poses = np.asarray(poses, np.float32)
    T = len(poses)
    found = np.asarray(found, bool)
    grid = masks.shape[-1] if masks.ndim == 3 else s.grid
    stats = np.full((T, 5), np.nan)  # motion, confidence, changed, in box, outside box
    flags = np.zeros(T, bool)
    for t in range(1, min(T, len(masks))):
        if not (found[t] and found[t - 1]):
            continue
        back = min(s.window, t)
        while not found[t - back]:  # the farthest frame with a person within the window (t - 1 has one)
            back -= 1
        vis = (poses[t, :, 2] >= s.joint_conf) & (poses[t - back, :, 2] >= s.joint_conf)
        if vis.sum() < 2:
            continue
        xy = poses[t, vis, :2]
        motion = float(np.linalg.norm(xy - poses[t - back, vis, :2], axis=1).mean()) / back
        conf = float(poses[t, vis, 2].mean())
        m = masks[t]
        r0, r1, c0, c1 = _box_cells(xy, grid, s.box_margin)
        inside = m[r0:r1, c0:c1]
        n_out = m.size - inside.size
        changed = float(m.mean())
        stats[t] = (motion, conf, changed, float(inside.mean()),
                    float((m.sum() - inside.sum()) / n_out) if n_out else 0.0)
        flags[t] = conf >= s.conf and motion < s.still and stats[t, 4] >= s.changed
    segments = []
    for a, b in _runs(flags, s.max_gap, s.min_frames):
        st = stats[a:b + 1][flags[a:b + 1]]
        segments.append({"start": a, "end": b, "frames": b - a + 1,
                         **{k: round(float(v), 4) for k, v in zip(
                             ("skeleton_motion", "confidence", "changed", "changed_in_box", "changed_outside_box"),
                             st.mean(0))}})
    return {"frames": T, "flagged_frames": int(sum(seg["frames"] for seg in segments)), "segments": segments}


def describe(video_id: str, result: dict, max_segments: int = 3) -> str:
    """One report line of a flagged video."""
    segs = result["segments"]
    parts = [f"frames {g['start']}-{g['end']} (image changed in {100 * g['changed_outside_box']:.0f}% of the frame "
             f"around the skeleton, {100 * g['changed_in_box']:.0f}% inside its box; skeleton moved "
             f"{g['skeleton_motion']:.4f} of the frame per frame at confidence {g['confidence']:.2f})"
             for g in segs[:max_segments]]
    more = f" and {len(segs) - max_segments} more segment(s)" if len(segs) > max_segments else ""
    return (f"{video_id}: {result['flagged_frames']} of {result['frames']} frames: " + "; ".join(parts) + more)


__all__ = ["FrozenSkeletonSettings", "MotionProbe", "describe", "frozen_skeleton", "small_gray"]
