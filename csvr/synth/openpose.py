"""Ground-truth poses written exactly as OpenPose's ``--write_json`` writes them.

OpenPose (``--model_pose COCO``) writes one file per frame, ``<video>_<12-digit frame>_keypoints.json``,
on one line with no trailing newline, numbers printed by C++ ``operator<<`` (6 significant
digits, ``%g``), a missed part as ``0,0,0``::

    {"version":1.3,"people":[{"person_id":[-1],"pose_keypoints_2d":[x0,y0,c0,...],
    "face_keypoints_2d":[],"hand_left_keypoints_2d":[],"hand_right_keypoints_2d":[],
    "pose_keypoints_3d":[],"face_keypoints_3d":[],"hand_left_keypoints_3d":[],
    "hand_right_keypoints_3d":[]}]}

A frame where nobody is seen has ``"people":[]``. Coordinates are pixels of the video frame.
We round x and y to 0.01 px and confidences to 0.001 before printing (smaller files; far below
any detector's precision).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

_TAIL = ('],"face_keypoints_2d":[],"hand_left_keypoints_2d":[],"hand_right_keypoints_2d":[],'
         '"pose_keypoints_3d":[],"face_keypoints_3d":[],"hand_left_keypoints_3d":[],'
         '"hand_right_keypoints_3d":[]}]}')
_HEAD = '{"version":1.3,"people":[{"person_id":[-1],"pose_keypoints_2d":['
_EMPTY = '{"version":1.3,"people":[]}'


def _num(v: float) -> str:
    return format(float(v) + 0.0, ".6g")


def openpose_json(keypoints: np.ndarray) -> str:
    """One frame's file content for one person; ``keypoints`` is (18, 3) (x, y, confidence)."""
    kp = np.asarray(keypoints, np.float64)
    if not np.any(kp[:, 2] > 0):
        return _EMPTY
    xy = np.round(kp[:, :2], 2)
    c = np.round(kp[:, 2], 3)
    vals = []
    for j in range(kp.shape[0]):
        if c[j] <= 0:
            vals.append("0,0,0")
        else:
            vals.append(f"{_num(xy[j, 0])},{_num(xy[j, 1])},{_num(c[j])}")
    return _HEAD + ",".join(vals) + _TAIL


def pose_file_name(video_stem: str, frame: int) -> str:
    """``v_Walk_g01_c01_000000000000_keypoints.json`` (frame counted from 0, 12 digits)."""
    return f"{video_stem}_{frame:012d}_keypoints.json"


def write_openpose_sequence(directory: str | os.PathLike, video_stem: str, keypoints: np.ndarray) -> int:
    """Write one file per frame of ``keypoints`` (T, 18, 3); returns the bytes written.

    Files are written directly (no per-file fsync, which would cost more than the rendering):
    the generator counts a video as finished only after its video file has been renamed into
    place, so a killed run rewrites the whole sequence.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    total = 0
    for t in range(keypoints.shape[0]):
        text = openpose_json(keypoints[t]).encode("ascii")
        with open(d / pose_file_name(video_stem, t), "wb") as f:
            f.write(text)
        total += len(text)
    return total


def read_openpose_sequence(directory: str | os.PathLike, video_stem: str) -> np.ndarray:
    """Read back (T, 18, 3) from files written by :func:`write_openpose_sequence` (first person;
    zeros where nobody was seen). For tests and tools; the project's importer has its own."""
    d = Path(directory)
    files = sorted(d.glob(f"{video_stem}_" + "[0-9]" * 12 + "_keypoints.json"))
    out = np.zeros((len(files), 18, 3), np.float32)
    for i, f in enumerate(files):
        people = json.loads(f.read_text())["people"]
        if people:
            out[i] = np.asarray(people[0]["pose_keypoints_2d"], np.float32).reshape(18, 3)
    return out
