"""Import mmaction2's pre-extracted 2D skeletons (``ucf101_2d.pkl``, ``hmdb51_2d.pkl``).

The files are Python pickles of ``{"split": {...}, "annotations": [ann, ...]}`` where each
``ann`` has ``frame_dir`` (the video name, e.g. ``v_ApplyEyeMakeup_g08_c01``), ``total_frames``,
``img_shape`` ``(h, w)``, ``keypoint`` ``(M, T, 17, 2)`` float pixels (HRNet, COCO-17) and
``keypoint_score`` ``(M, T, 17)`` (or ``keypoint`` ``(M, T, 17, 3)`` with the score last).

A pickle can run arbitrary code when loaded, so these files are read with
:class:`RestrictedUnpickler`, which admits only what numpy arrays and plain containers need and
refuses every other global with :class:`UnsafePickleError` *before* anything is called.

The M persons of a frame are not tracked in these files (person m in frame t and in frame t+1
may be different people), so one actor is selected by the same tracking rule as for OpenPose
(:mod:`csvr.pose.track`). COCO-17 is mapped to COCO-18 (neck = shoulder midpoint). Videos are
matched to manifest ids by name: ``frame_dir`` equals the id, or the id's last component.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import numpy._core.multiarray as ma
import numpy._core.numeric as nn

from csvr.pose.raw import RawPoses
from csvr.pose.sources import PoseSource, register_source
from csvr.pose.sources.common import to_unit
from csvr.pose.track import TrackSettings, select_actor
from csvr.pose_format.base import PoseError
from csvr.pose_format.skeleton import map_to_coco18


class UnsafePickleError(PoseError):
    """A pickle asked for a global outside the allow-list (it may try to execute code)."""


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                         ("collections", "OrderedDict"): collections.OrderedDict,
                                         # protocol 2 pickles encode bytes as _codecs.encode(str, "latin1")
                                         ("_codecs", "encode"): codecs.encode}
    # numpy arrays and scalars (numpy 1.x pickles say numpy.core, 2.x numpy._core); _frombuffer:
    # protocol 5 arrays
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = ma._reconstruct
        table[(f"{core}.multiarray", "scalar")] = ma.scalar
        table[(f"{core}.numeric", "_frombuffer")] = nn._frombuffer
    # containers; Python 2 pickles name the module __builtin__
    for name in ("set", "frozenset", "bytearray", "complex", "slice"):
        table[("builtins", name)] = getattr(builtins, name)
    for name in ("set", "frozenset"):
        table[("__builtin__", name)] = getattr(builtins, name)
    return table


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals numpy arrays and containers need.

    Everything else (``os.system``, ``builtins.eval``, ``subprocess.Popen``, any class) raises
    :class:`UnsafePickleError` when the pickle *names* it, which happens before it could be
    called. Persistent ids are refused too.
    """

    def __init__(self, file, *, source: str = "pickle"):
        super().__init__(file, encoding="latin1")
        self._source = source
        self._table = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        obj = self._table.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"{self._source}: refused to load: the pickle asks for {module}.{name}, which is not a "
                "numpy array or a plain container (a pickle can execute code; csvr reads skeleton "
                "pickles with an allow-list and loaded nothing from this one)")
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: refused to load: persistent ids are not allowed")


def safe_load_pickle(path_or_bytes: str | os.PathLike | bytes) -> Any:
    """Unpickle with :class:`RestrictedUnpickler` (a path or the pickle's bytes)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return RestrictedUnpickler(io.BytesIO(path_or_bytes), source="pickle").load()
    path = Path(path_or_bytes)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, source=str(path)).load()
    except FileNotFoundError:
        raise PoseError(f"mmaction2 skeleton file not found: {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise PoseError(f"{path}: not a readable pickle ({e})") from None


def load_mmaction_annotations(path_or_data: str | os.PathLike | bytes | dict | list) -> dict[str, dict]:
    """``{frame_dir: annotation}`` from an mmaction2 2D skeleton pickle (path, bytes or loaded).

    Accepts the ``{"split", "annotations"}`` dict and a bare list of annotations. Raises
    :class:`PoseError` for anything else and :class:`UnsafePickleError` for a refused pickle.
    """
    data = path_or_data if isinstance(path_or_data, (dict, list)) else safe_load_pickle(path_or_data)
    anns = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(anns, list):
        raise PoseError("not an mmaction2 skeleton file: expected a dict with an 'annotations' list")
    out: dict[str, dict] = {}
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or "frame_dir" not in ann or "keypoint" not in ann:
            raise PoseError(f"annotation {i} lacks 'frame_dir' or 'keypoint'")
        out[str(ann["frame_dir"])] = ann
    return out


def match_annotation(annotations: dict[str, dict], video_id: str) -> dict | None:
    """The annotation of ``video_id``: ``frame_dir`` == id, or == the id's last component."""
    ann = annotations.get(video_id)
    if ann is None:
        name = video_id.replace("\\", "/").rsplit("/", 1)[-1]
        ann = annotations.get(name)
        if ann is None:
            stem = name.rsplit(".", 1)[0]
            ann = annotations.get(stem)
    return ann


def read_mmaction_annotation(ann: dict, num_frames: int | None = None, track: TrackSettings | None = None,
                             what: str = "video") -> RawPoses:
    """Raw COCO-18 poses of one mmaction2 annotation.

    ``num_frames`` (the manifest's frame count) sets the output length: extra annotated frames
    are dropped and missing ones are empty; ``None`` keeps ``total_frames``.
    """
    kp = np.asarray(ann["keypoint"], dtype=np.float64)
    if kp.ndim != 4 or kp.shape[2] != 17 or kp.shape[3] not in (2, 3):
        raise PoseError(f"{what}: keypoint must be (M, T, 17, 2|3), got {kp.shape}")
    if kp.shape[3] == 3:
        score = kp[..., 2]
        kp = kp[..., :2]
    else:
        if "keypoint_score" not in ann:
            raise PoseError(f"{what}: 2-channel keypoints without 'keypoint_score'")
        score = np.asarray(ann["keypoint_score"], dtype=np.float64)
        if score.shape != kp.shape[:3]:
            raise PoseError(f"{what}: keypoint_score {score.shape} does not match keypoint {kp.shape}")
    img_shape = ann.get("img_shape") or ann.get("original_shape")
    if img_shape is None or len(img_shape) < 2:
        raise PoseError(f"{what}: annotation has no img_shape")
    h, w = int(img_shape[0]), int(img_shape[1])
    M, T_ann = kp.shape[:2]
    total = int(ann.get("total_frames", T_ann))
    T = int(num_frames) if num_frames is not None else total
    pts17 = np.concatenate([kp, score[..., None]], axis=-1)  # (M, T, 17, 3) pixels
    # a missing person slot is all zeros: zero the confidence of points at the origin too
    pts17[..., 2] = np.where((pts17[..., 0] == 0) & (pts17[..., 1] == 0), 0.0, pts17[..., 2])
    pts18 = to_unit(map_to_coco18(pts17, "coco17"), (w, h))  # (M, T, 18, 3)
    per_frame: list[np.ndarray | None] = []
    for t in range(T):
        if t >= T_ann:
            per_frame.append(None)
            continue
        dets = pts18[:, t]
        dets = dets[(dets[..., 2] > 0).any(-1)]
        per_frame.append(dets if len(dets) else None)
    poses, found, info = select_actor(per_frame, aspect=w / h, settings=track)
    info.update(persons_in_file=int(M), annotated_frames=int(T_ann), total_frames=total)
    return RawPoses(poses=poses, person_found=found, frame_size=(w, h), source="mmaction-pkl",
                    settings={"track": vars(track or TrackSettings())}, info=info)


@register_source("mmaction-pkl", order=2)
class MMActionSource(PoseSource):
    """Import of mmaction2's skeleton pickle: read once in the main process, one annotation per video."""

    @classmethod
    def payloads(cls, items, pkl, option: str) -> dict[str, Any]:
        if pkl is None:
            raise PoseError(f"the mmaction-pkl source needs {option}")
        by_name = isinstance(pkl, dict) and bool(pkl) and all(
            isinstance(v, dict) and "keypoint" in v for v in pkl.values())  # already {frame_dir: annotation}
        anns = pkl if by_name else load_mmaction_annotations(pkl)
        return {it.video_id: match_annotation(anns, it.video_id) for it in items}

    def read(self, item, payload=None) -> RawPoses:
        if payload is None:
            raise PoseError(f"{item.video_id}: not in the mmaction2 skeleton file")
        return read_mmaction_annotation(payload, num_frames=item.num_frames, track=self.options.track,
                                        what=item.video_id)
