"""The skeleton every pose in csvr uses: OpenPose's 18 COCO keypoints, and the maps into it.

Joint order (OpenPose ``COCO`` model, the paper's 18 joints, N = 18)::

     0 nose        1 neck        2 r-shoulder   3 r-elbow     4 r-wrist     5 l-shoulder
     6 l-elbow     7 l-wrist     8 r-hip        9 r-knee     10 r-ankle    11 l-hip
    12 l-knee     13 l-ankle    14 r-eye       15 l-eye      16 r-ear      17 l-ear

"Left" and "right" are the *person's* (as in OpenPose, COCO and MediaPipe): a person facing the
camera has the right shoulder on the image's left.

Maps from other skeletons (each entry of a map is the source index of one COCO-18 joint, or a
pair of source indices averaged; for a pair the confidence is the minimum of the two):

- :data:`BODY25_TO_COCO18`: OpenPose BODY_25 (MidHip at 8, the legs shifted by one, feet 19-24
  dropped);
- :data:`COCO17_TO_COCO18`: MS-COCO 17 keypoints (HRNet, mmaction2's skeleton files); the neck is
  the midpoint of the shoulders;
- :data:`BLAZEPOSE33_TO_COCO18`: MediaPipe BlazePose's 33 landmarks; the neck is the midpoint of
  the shoulders, the eyes are BlazePose's eye centres (2 and 5), not the inner/outer corners.
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 18

JOINT_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

NOSE, NECK = 0, 1
R_SHOULDER, R_ELBOW, R_WRIST = 2, 3, 4
L_SHOULDER, L_ELBOW, L_WRIST = 5, 6, 7
R_HIP, R_KNEE, R_ANKLE = 8, 9, 10
L_HIP, L_KNEE, L_ANKLE = 11, 12, 13
R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17

# The 17 limbs OpenPose draws for COCO-18 (pairs of joint indices).
LIMBS: tuple[tuple[int, int], ...] = (
    (NECK, R_SHOULDER), (R_SHOULDER, R_ELBOW), (R_ELBOW, R_WRIST),
    (NECK, L_SHOULDER), (L_SHOULDER, L_ELBOW), (L_ELBOW, L_WRIST),
    (NECK, R_HIP), (R_HIP, R_KNEE), (R_KNEE, R_ANKLE),
    (NECK, L_HIP), (L_HIP, L_KNEE), (L_KNEE, L_ANKLE),
    (NECK, NOSE), (NOSE, R_EYE), (R_EYE, R_EAR), (NOSE, L_EYE), (L_EYE, L_EAR),
)

# Kinematic tree rooted at the neck: PARENT[j] is j's parent (-1 for the neck). Used by the
# cleaner to place a joint that is never seen in a video onto its nearest seen ancestor.
PARENT: tuple[int, ...] = (
    NECK, -1,
    NECK, R_SHOULDER, R_ELBOW,
    NECK, L_SHOULDER, L_ELBOW,
    NECK, R_HIP, R_KNEE,
    NECK, L_HIP, L_KNEE,
    NOSE, NOSE, R_EYE, L_EYE,
)

# Horizontal mirror: the index of each joint's left/right counterpart (flip augmentation).
FLIP_INDEX: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

# ----------------------------------------------------------------------------- source skeletons
BODY25_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)
BLAZEPOSE33_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)

Source = int | tuple[int, int]

# COCO-18 joint j  <-  source index (or midpoint of two source indices)
BODY25_TO_COCO18: tuple[Source, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
COCO17_TO_COCO18: tuple[Source, ...] = (0, (5, 6), 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
BLAZEPOSE33_TO_COCO18: tuple[Source, ...] = (0, (11, 12), 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27,
                                             5, 2, 8, 7)
# OpenPose's own COCO-18 output needs no map.
COCO18_TO_COCO18: tuple[Source, ...] = tuple(range(NUM_JOINTS))

SKELETON_MAPS: dict[str, tuple[Source, ...]] = {
    "coco18": COCO18_TO_COCO18,
    "body25": BODY25_TO_COCO18,
    "coco17": COCO17_TO_COCO18,
    "blazepose33": BLAZEPOSE33_TO_COCO18,
}
SKELETON_SIZES = {"coco18": 18, "body25": 25, "coco17": 17, "blazepose33": 33}


def map_to_coco18(points: np.ndarray, mapping: tuple[Source, ...] | str) -> np.ndarray:
    """Map ``(..., J_src, 3)`` (x, y, confidence) to ``(..., 18, 3)`` float32.

    A joint defined as the midpoint of two source joints gets their mean position and the
    *minimum* of their confidences (it is only as reliable as the worse of the two); if either
    is missing (confidence 0) the midpoint is missing too.
    """
    if isinstance(mapping, str):
        mapping = SKELETON_MAPS[mapping]
    points = np.asarray(points, dtype=np.float32)
    if points.shape[-1] != 3:
        raise ValueError(f"expected (..., J, 3) points, got shape {points.shape}")
    out = np.zeros(points.shape[:-2] + (NUM_JOINTS, 3), np.float32)
    for j, src in enumerate(mapping):
        if isinstance(src, tuple):
            a, b = points[..., src[0], :], points[..., src[1], :]
            out[..., j, :2] = (a[..., :2] + b[..., :2]) * 0.5
            out[..., j, 2] = np.minimum(a[..., 2], b[..., 2])
        else:
            out[..., j, :] = points[..., src, :]
    return out


def mapping_table(name: str) -> list[tuple[int, str, str]]:
    """``(coco18 index, coco18 name, source description)`` rows, for documentation and tests."""
    names = {"coco18": JOINT_NAMES, "body25": BODY25_NAMES, "coco17": COCO17_NAMES,
             "blazepose33": BLAZEPOSE33_NAMES}[name]
    rows = []
    for j, src in enumerate(SKELETON_MAPS[name]):
        if isinstance(src, tuple):
            desc = f"midpoint of {src[0]} {names[src[0]]} and {src[1]} {names[src[1]]}"
        else:
            desc = f"{src} {names[src]}"
        rows.append((j, JOINT_NAMES[j], desc))
    return rows
