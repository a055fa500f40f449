"""The pose format: what a pose is in csvr, the pose cache that stores poses, and their normalisation.

Every pose in csvr is ``(T, 18, 3)`` float32: OpenPose's 18 COCO joints
(:mod:`csvr.pose_format.skeleton`), x and y in [0, 1] of the frame, a confidence in [0, 1].

- :mod:`~csvr.pose_format.skeleton`: the joint order, limbs, left/right flip, and the maps from
  BODY_25, COCO-17 and BlazePose-33 into COCO-18;
- :mod:`~csvr.pose_format.base`: the pose errors and :class:`PoseRecord` (a cleaned sequence and
  its masks: what one cache file holds);
- :mod:`~csvr.pose_format.cache`: the ``.npz``-per-video cache (:func:`write_record`,
  :func:`load`, :func:`load_record`, :class:`PoseCache` for datasets, :func:`check_coverage`);
- :mod:`~csvr.pose_format.normalize`: :func:`normalize` / :func:`denormalize`, the neck-centred,
  torso-scaled frame of the pose GAN, exactly invertible.

Layers (``docs/architecture.md``): this package sits *below* :mod:`csvr.data` (the datasets read
the cache and normalise poses) and imports only the foundation (:mod:`csvr.errors`,
:mod:`csvr.utils`). Pose *extraction* - the sources, cleaning, tracking, the ``csvr prepare
poses`` job - is :mod:`csvr.pose`, above the data layer (it decodes videos); :mod:`csvr.pose`
re-exports the names below.
"""

from __future__ import annotations

from csvr.pose_format.base import NoPersonError, PoseError, PoseNotCachedError, PoseRecord
from csvr.pose_format.cache import (FORMAT, FORMAT_VERSION, PoseCache, PoseCoverage, cache_path, check_coverage,
                                    entry_status, load, load_record, read_meta, write_no_person, write_record)
from csvr.pose_format.normalize import NormParams, compute_params, denormalize, normalize
from csvr.pose_format.skeleton import (FLIP_INDEX, JOINT_INDEX, JOINT_NAMES, LIMBS, NUM_JOINTS, PARENT, SKELETON_MAPS,
                                       map_to_coco18, mapping_table)

__all__ = [
    "PoseError", "NoPersonError", "PoseNotCachedError", "PoseRecord",
    "FORMAT", "FORMAT_VERSION", "PoseCache", "PoseCoverage", "cache_path", "check_coverage", "entry_status", "load",
    "load_record", "read_meta", "write_no_person", "write_record",
    "NormParams", "compute_params", "normalize", "denormalize",
    "NUM_JOINTS", "JOINT_NAMES", "JOINT_INDEX", "LIMBS", "PARENT", "FLIP_INDEX", "SKELETON_MAPS", "map_to_coco18",
    "mapping_table",
]
