"""Pose extraction: human pose sequences for the pose prediction branch (paper III-B).

Every pose in csvr is ``(T, 18, 3)`` float32: OpenPose's 18 COCO joints
(:mod:`csvr.pose_format.skeleton`), x and y in [0, 1] of the frame, a confidence in [0, 1]; no NaN
or inf ever leaves this package.

Public API:

- :func:`extract` ``(video_path, source="mediapipe", **opts) -> (T, 18, 3)``: cleaned poses
  of one video (MediaPipe BlazePose, OpenPose JSON, or mmaction2 skeleton pickles);
- :func:`load` ``(cache_dir, video_id) -> (T, 18, 3)`` and :class:`PoseCache` (``get`` /
  ``has``, for datasets) read the pose cache that ``csvr prepare poses`` writes
  (:mod:`csvr.pose_format.cache`); a video where nobody was found raises :class:`NoPersonError`
  in :func:`load` and gives ``None`` from :meth:`PoseCache.get`;
- :func:`normalize` / :func:`denormalize`: the neck-centred, torso-scaled frame of the pose GAN
  (:mod:`csvr.pose_format.normalize`), exactly invertible;
- :func:`clean`: the gap-filling policy (:mod:`csvr.pose.clean`);
- :func:`run_pose_job`: the parallel, resumable, shardable job behind ``csvr prepare poses``.

Layers (``docs/architecture.md``): this package is pose *extraction* - :mod:`~csvr.pose.job`,
:mod:`~csvr.pose.sources`, :mod:`~csvr.pose.raw`, :mod:`~csvr.pose.clean`, :mod:`~csvr.pose.track`,
:mod:`~csvr.pose.consistency`, :mod:`~csvr.pose.viz`, :mod:`~csvr.pose.commands` - and sits above
the data layer (it decodes videos and reads manifests). The pose *format* (joints, records, the
cache, normalisation) is :mod:`csvr.pose_format`, below the data layer; its names are re-exported
here.
"""

from __future__ import annotations

from csvr.pose.clean import CleanSettings, clean
from csvr.pose.job import JobSummary, PoseJobItem, extract, extract_record, items_from_manifest, run_pose_job
from csvr.pose.raw import RawPoses
from csvr.pose_format.base import NoPersonError, PoseError, PoseNotCachedError, PoseRecord
from csvr.pose_format.cache import FORMAT_VERSION, PoseCache, entry_status, load, load_record, write_record
from csvr.pose_format.normalize import NormParams, denormalize, normalize
from csvr.pose_format.skeleton import FLIP_INDEX, JOINT_NAMES, LIMBS, NUM_JOINTS

__all__ = [
    "extract", "extract_record", "load", "load_record", "PoseCache", "normalize", "denormalize", "NormParams",
    "clean", "CleanSettings", "run_pose_job", "items_from_manifest", "PoseJobItem", "JobSummary",
    "PoseRecord", "RawPoses", "PoseError", "NoPersonError", "PoseNotCachedError", "entry_status",
    "write_record", "FORMAT_VERSION", "JOINT_NAMES", "LIMBS", "FLIP_INDEX", "NUM_JOINTS",
]
