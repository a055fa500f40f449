"""The pose format's types: the pose errors and a cleaned pose record (what a cache file holds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from csvr.errors import CsvrError


class PoseError(CsvrError):
    """Pose input that cannot be used: a bad OpenPose file, a refused pickle, a bad option..."""


class NoPersonError(PoseError):
    """No person was detected in any frame of the video (it is excluded from the pose branch).

    :func:`csvr.pose_format.load` raises it for a video whose cache entry is a "no person" marker;
    :meth:`csvr.pose_format.PoseCache.get` returns ``None`` instead.
    """

    def __init__(self, what: str, detail: str = "no person detected in any frame"):
        super().__init__(f"{what}: {detail}")
        self.what = what


class PoseNotCachedError(PoseError):
    """The cache has no (complete) entry for this video id."""


@dataclass
class PoseRecord:
    """A cleaned pose sequence and its masks (what one cache file holds).

    Attributes:
        poses: ``(T, 18, 3)`` float32; x, y in [0, 1] of the frame; confidence in [0, 1]:
            the detector's confidence for observed joints, ``interp_conf_scale`` x the smaller
            of the two bracketing confidences for interpolated joints, 0 for filled joints.
        valid: ``(T, 18)`` bool, the joint was observed (confidence >= the threshold).
        interpolated: ``(T, 18)`` bool, filled by linear interpolation across a short gap.
        filled: ``(T, 18)`` bool, filled by the nearest valid frame (long, leading or trailing
            gaps) or, for a joint never observed in the video, placed on its nearest observed
            ancestor in the skeleton tree.
        person_found: ``(T,)`` bool, the actor was detected in the frame.
        frame_size: ``(width, height)`` of the frames the coordinates refer to.
        meta: source, settings, format version (see :mod:`csvr.pose_format.cache`).
    """

    poses: np.ndarray
    valid: np.ndarray
    interpolated: np.ndarray
    filled: np.ndarray
    person_found: np.ndarray
    frame_size: tuple[int, int]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])
