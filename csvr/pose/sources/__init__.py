"""Pose sources: MediaPipe BlazePose (extraction), OpenPose JSON and mmaction2 pickles (import).

Each source is one module of this package with a :class:`PoseSource` subclass registered by
:func:`register_source` (:class:`csvr.utils.registry.Registry`); adding a source is adding one
file. A source turns one video into a :class:`csvr.pose.raw.RawPoses` (COCO-18, x and y in
[0, 1]); :mod:`csvr.pose.clean` then fills the gaps. The job (:mod:`csvr.pose.job`) drives it:

* :meth:`PoseSource.check_job` - once, before a job starts (e.g. a folder option that must exist);
* :meth:`PoseSource.payloads` - once, in the main process: per-video data read from one shared
  file (mmaction2's pickle), handed to the worker that reads the video;
* in each worker process: ``source = cls(options)``, :meth:`~PoseSource.start` (load a model
  once), :meth:`~PoseSource.read` per video, :meth:`~PoseSource.close`.

:func:`source_names` lists the names the CLI accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from csvr.pose.raw import RawPoses
from csvr.pose.track import TrackSettings
from csvr.pose_format.base import PoseError
from csvr.utils.registry import Registry


@dataclass
class SourceOptions:
    """The options of a pose job that sources read (each reads its own; pickled to workers)."""

    json_dir: str | None = None  # openpose-json: the folder of *_keypoints.json files
    mediapipe: dict = field(default_factory=dict)  # mediapipe: MediaPipeExtractor keywords
    track: TrackSettings = field(default_factory=TrackSettings)  # importers: which person to keep
    progress: str | None = None  # mediapipe: a progress bar over each video's frames, with this label


class PoseSource:
    """One way of getting a video's raw poses (see the module docstring)."""

    name: ClassVar[str] = ""

    def __init__(self, options: SourceOptions):
        self.options = options

    @classmethod
    def check_job(cls, options: SourceOptions) -> None:
        """Refuse (:class:`PoseError`) a job whose options cannot work (default: none to check)."""

    @classmethod
    def payloads(cls, items: Sequence[Any], pkl: Any, option: str) -> dict[str, Any]:
        """Per-video data for ``items`` (by video id) read once in the main process (default:
        none). ``option`` names the argument that gave ``pkl`` in error messages."""
        return {}

    def start(self) -> None:
        """Start what the source needs once per process (default: nothing)."""

    def read(self, item: Any, payload: Any = None) -> RawPoses:
        """Raw poses of one job item (``video_id``, ``path``, ``num_frames``, ``width``, ``height``)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what :meth:`start` took (default: nothing)."""

    @property
    def inference_seconds(self) -> float:
        """Seconds spent inside a pose model so far (0 for importers)."""
        return 0.0


#: every pose source, one module of this package each
POSE_SOURCES: Registry[type[PoseSource]] = Registry("pose source", __name__, error=PoseError)


def register_source(name: str, order: int = 100):
    """Class decorator: register a :class:`PoseSource` subclass as ``name`` (also its ``name``;
    ``order``: where the CLI lists it)."""

    def deco(cls: type[PoseSource]) -> type[PoseSource]:
        cls.name = name
        return POSE_SOURCES.register(name, order=order)(cls)

    return deco


def source_names() -> list[str]:
    return POSE_SOURCES.names()


def get_source(name: str) -> type[PoseSource]:
    """The source class registered as ``name`` (:class:`PoseError` naming the valid ones)."""
    if name not in POSE_SOURCES:
        raise PoseError(f"unknown pose source {name!r} (choose from {', '.join(source_names())})")
    return POSE_SOURCES.get(name)


__all__ = ["POSE_SOURCES", "PoseSource", "SourceOptions", "get_source", "register_source", "source_names"]
