"""Pose sources: MediaPipe BlazePose (extraction), OpenPose JSON and mmaction2 pickles (import).

Each turns one video into a :class:`csvr.pose.base.RawPoses` (COCO-18, x and y in [0, 1]);
:mod:`csvr.pose.clean` then fills the gaps. :data:`SOURCES` lists the names the CLI accepts.
"""

SOURCES = ("mediapipe", "openpose-json", "mmaction-pkl")
