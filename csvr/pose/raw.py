"""A pose source's raw output for one video, before cleaning (:mod:`csvr.pose.clean` turns it
into a :class:`~csvr.pose_format.base.PoseRecord`). Part of pose extraction: only the sources and
the cleaning read it; the pose cache never stores it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from csvr.pose_format.skeleton import NUM_JOINTS


@dataclass
class RawPoses:
    """What a source produces for one video, before cleaning.

    ``poses`` is ``(T, 18, 3)`` float32 in OpenPose COCO-18 order, x and y in [0, 1] of the frame,
    confidence in [0, 1]; a joint that was not detected has confidence 0 (its x, y are then
    meaningless). ``person_found[t]`` says whether the kept actor was detected in frame t.
    """

    poses: np.ndarray
    person_found: np.ndarray
    frame_size: tuple[int, int]  # (width, height) of the frames the coordinates refer to
    source: str
    settings: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # tracking statistics, notes

    def __post_init__(self) -> None:
        self.poses = np.asarray(self.poses, dtype=np.float32)
        self.person_found = np.asarray(self.person_found, dtype=bool)
        if self.poses.ndim != 3 or self.poses.shape[1:] != (NUM_JOINTS, 3):
            raise ValueError(f"raw poses must be (T, 18, 3), got {self.poses.shape}")
        if self.person_found.shape != self.poses.shape[:1]:
            raise ValueError("person_found must have one entry per frame")

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])
