"""The built-in procedural human-action video dataset (UCF101 layout), ``csvr data synth``.

Public API::

    from csvr.synth import generate
    summary = generate("data/synth")            # the default size: 15 classes x 16 videos, 4 s, 160x120
    summary = generate("tiny", classes=4, videos_per_class=4, seconds=1.2, size=(96, 72), workers=1)

``generate(out_dir, classes=None, videos_per_class=16, seconds=4.0, size=(160, 120), seed=0,
workers=None, overwrite=False, gop=None) -> Summary``: ``classes`` is None (all 15), a number N (the
first N of a round-robin over the three class groups) or class names; ``gop=N`` encodes every
video with I-frames exactly at frames 0, N, 2N, ... (default: the varied per-video GOP policy). The output folder gets the UCF101
layout, OpenPose-format pose files and a README describing every class; see
:mod:`csvr.synth.dataset` for the layout and the resume rules, :mod:`~.catalogue` for the
classes, :mod:`~.encode` for the GOP policy, :mod:`~.openpose` for the pose files.
``read_synth_json(root)`` reads a finished dataset's ``synth.json`` (its classes, groups and
videos; not to be confused with :func:`csvr.data.index.load_manifest`, the index of any dataset).

This package *produces* a dataset; it depends on nothing in csvr but :mod:`csvr.errors` and
:mod:`csvr.utils` (``docs/architecture.md``). It was ``csvr.data.synth`` before 0.2.
"""

from csvr.synth.catalogue import CLASSES, GROUPS, ClassSpec, select_classes
from csvr.synth.dataset import (
    DEFAULT_SECONDS,
    DEFAULT_SIZE,
    DEFAULT_VIDEOS_PER_CLASS,
    Summary,
    generate,
    group_layout,
    read_synth_json,
    parse_size,
)
from csvr.synth.openpose import openpose_json, pose_file_name, read_openpose_sequence
from csvr.synth.skeleton import OPENPOSE_COCO18

__all__ = [
    "CLASSES", "GROUPS", "ClassSpec", "select_classes", "generate", "Summary", "group_layout",
    "read_synth_json", "parse_size", "DEFAULT_SECONDS", "DEFAULT_SIZE", "DEFAULT_VIDEOS_PER_CLASS",
    "openpose_json", "pose_file_name", "read_openpose_sequence", "OPENPOSE_COCO18",
]
