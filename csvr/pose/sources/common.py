"""Helpers shared by the sources."""

from __future__ import annotations

import numpy as np


def to_unit(points: np.ndarray, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """``(..., J, 3)`` (x, y, confidence) -> x, y in [0, 1], confidence in [0, 1], float32.

    ``frame_size=(width, height)`` divides pixel coordinates by the frame size (``None``: the
    points are already normalised). A joint *outside the frame* (x or y outside [0, 1] after
    the division) is clipped to the border and gets confidence 0: it was not seen in the frame,
    and the cleaner treats it as missing. Non-finite values become missing joints (0, 0, 0).
    """
    p = np.asarray(points, dtype=np.float64).copy()
    if frame_size is not None:
        w, h = frame_size
        if w <= 0 or h <= 0:
            raise ValueError(f"bad frame size {frame_size}")
        p[..., 0] /= w
        p[..., 1] /= h
    bad = ~np.isfinite(p).all(-1)
    p[bad] = 0.0
    conf = np.clip(p[..., 2], 0.0, 1.0)
    xy = p[..., :2]
    outside = ((xy < 0.0) | (xy > 1.0)).any(-1)
    conf[outside] = 0.0
    p[..., :2] = np.clip(xy, 0.0, 1.0)
    p[..., 2] = conf
    return p.astype(np.float32)


def video_geometry(item) -> tuple[int | None, tuple[int, int] | None]:
    """(num_frames, (w, h)) of a pose job item, probing its video for what the item lacks."""
    n, size = item.num_frames, (item.width, item.height) if item.width and item.height else None
    if (n is None or size is None) and item.path:
        from csvr.data.video import VideoReader

        with VideoReader(item.path) as r:
            n = n if n is not None else r.num_frames
            size = size or (r.width, r.height)
    return n, size
