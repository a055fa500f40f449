"""Import OpenPose's JSON output (``--write_json``): COCO-18 or BODY_25, several people a frame.

Files are ``<video>_<12-digit frame>_keypoints.json``, one per frame, each::

    {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [x, y, c, ...], ...}]}

with x, y in *pixels* and 18 (COCO, 54 numbers) or 25 (BODY_25, 75 numbers) joints; undetected
joints are ``0, 0, 0``. BODY_25 is mapped to COCO-18 (:data:`~csvr.pose_format.skeleton.BODY25_TO_COCO18`).
Coordinates are divided by the video's frame size; a frame without a file, or whose file lists
nobody, is missing; one actor is kept per video (:mod:`csvr.pose.track`).

Where a video's files are looked up (``json_dir`` is the ``--json-dir`` root, ``id`` the
manifest's video id such as ``Walk/v_Walk_g01_c01``), first match wins:

1. ``<json_dir>/<id>_<frame>_keypoints.json`` (the built-in synthetic dataset's layout:
   ``poses/openpose/<Class>/<video>_<frame>_keypoints.json``);
2. ``<json_dir>/<id>/*_<frame>_keypoints.json`` (one folder per video, as OpenPose writes it);
3. ``<json_dir>/<video name>_<frame>_keypoints.json`` (one flat folder for every video).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from csvr.errors import CsvrError
from csvr.pose.raw import RawPoses
from csvr.pose.sources import PoseSource, SourceOptions, register_source
from csvr.pose.sources.common import to_unit, video_geometry
from csvr.pose.track import TrackSettings, select_actor
from csvr.pose_format.base import PoseError
from csvr.pose_format.skeleton import BODY25_TO_COCO18, COCO18_TO_COCO18, map_to_coco18
from csvr.utils.io import resolve_inside

FILE_RE = re.compile(r"^(?P<name>.+)_(?P<frame>\d{12})_keypoints\.json$")

_DIR_CACHE: dict[str, tuple[int, dict[str, dict[int, Path]]]] = {}


def index_directory(directory: str | os.PathLike) -> dict[str, dict[int, Path]]:
    """``{video name: {frame: path}}`` for the keypoint files directly in ``directory``.

    Listed once and cached per process (refreshed when the folder's mtime changes), so a job
    over many videos of one class folder lists it once, not once per video.
    """
    d = Path(directory)
    try:
        mtime = d.stat().st_mtime_ns
    except OSError:
        return {}
    key = str(d)
    hit = _DIR_CACHE.get(key)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    out: dict[str, dict[int, Path]] = {}
    with os.scandir(d) as it:
        for e in it:
            m = FILE_RE.match(e.name)
            if m and e.is_file():
                out.setdefault(m.group("name"), {})[int(m.group("frame"))] = Path(e.path)
    if len(_DIR_CACHE) > 256:
        _DIR_CACHE.clear()
    _DIR_CACHE[key] = (mtime, out)
    return out


def find_openpose_files(json_dir: str | os.PathLike, video_id: str) -> dict[int, Path]:
    """The keypoint files of ``video_id`` under ``json_dir`` (``{frame: path}``; see above)."""
    root = Path(json_dir)
    if not root.is_dir():
        raise PoseError(f"OpenPose JSON folder not found: {root}")
    vid = video_id.replace("\\", "/")
    name = vid.rsplit("/", 1)[-1]
    try:
        parent = resolve_inside(root, vid, what="video id").parent
        per_video = resolve_inside(root, vid, what="video id")
    except CsvrError as e:
        raise PoseError(str(e)) from None
    files = index_directory(parent).get(name)
    if files:
        return dict(files)
    if per_video.is_dir():
        merged: dict[int, Path] = {}
        for group in index_directory(per_video).values():
            merged.update(group)
        if merged:
            return merged
    files = index_directory(root).get(name)
    return dict(files) if files else {}


def parse_people(doc: dict, source: str = "") -> np.ndarray:
    """``(K, 18, 3)`` float64 *pixel* keypoints of the people in one parsed OpenPose JSON file."""
    people = doc.get("people") if isinstance(doc, dict) else None
    if people is None:
        raise PoseError(f"{source}: not an OpenPose keypoint file (no 'people' list)")
    out = []
    for k, person in enumerate(people):
        kps = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if not kps:
            continue  # a face/hand-only entry, or an empty list
        arr = np.asarray(kps, dtype=np.float64)
        if arr.size == 54:
            mapping = COCO18_TO_COCO18
        elif arr.size == 75:
            mapping = BODY25_TO_COCO18
        else:
            raise PoseError(f"{source}: person {k} has {arr.size} keypoint numbers; expected 54 "
                            "(COCO-18) or 75 (BODY_25)")
        pts = arr.reshape(-1, 3)
        mapped = np.zeros((18, 3), np.float64)
        for j, src in enumerate(mapping):
            mapped[j] = pts[src]  # both OpenPose maps are index maps (no midpoints)
        out.append(mapped)
    return np.stack(out) if out else np.zeros((0, 18, 3))


def read_openpose_file(path: str | os.PathLike) -> np.ndarray:
    """Parse one ``*_keypoints.json`` into ``(K, 18, 3)`` pixel keypoints."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PoseError(f"{path}: cannot read OpenPose JSON ({e})") from None
    return parse_people(doc, str(path))


def read_openpose_video(files: dict[int, Path] | Iterable[tuple[int, Path]], num_frames: int | None,
                        frame_size: tuple[int, int], track: TrackSettings | None = None,
                        what: str = "video") -> RawPoses:
    """Raw COCO-18 poses of one video from its keypoint files (``{frame: path}``).

    ``num_frames`` is the video's frame count (files for frames beyond it are ignored and
    counted in ``info``); ``None`` takes the largest frame number + 1.
    """
    files = dict(files)
    w, h = int(frame_size[0]), int(frame_size[1])
    if w <= 0 or h <= 0:
        raise PoseError(f"{what}: unknown frame size {frame_size}; cannot normalise pixel coordinates")
    if num_frames is None:
        num_frames = max(files) + 1 if files else 0
    per_frame: list[np.ndarray | None] = [None] * num_frames
    beyond = 0
    for t, path in files.items():
        if not 0 <= t < num_frames:
            beyond += 1
            continue
        people = read_openpose_file(path)
        per_frame[t] = to_unit(people, (w, h)) if len(people) else None
    poses, found, info = select_actor(per_frame, aspect=w / h, settings=track)
    info.update(files=len(files), files_beyond_last_frame=beyond)
    return RawPoses(poses=poses, person_found=found, frame_size=(w, h), source="openpose-json",
                    settings={"track": vars(track or TrackSettings())}, info=info)


# re-exported for callers that already have per-frame pixel arrays (tests, converters)
def people_to_coco18(points: np.ndarray, skeleton: str = "coco18") -> np.ndarray:
    """Map ``(K, J, 3)`` OpenPose people of ``skeleton`` (coco18 / body25) to COCO-18."""
    return map_to_coco18(points, skeleton)


@register_source("openpose-json", order=1)
class OpenPoseJSONSource(PoseSource):
    """Import of OpenPose's per-frame JSON files under ``--json-dir`` (see the module docstring)."""

    @classmethod
    def check_job(cls, options: SourceOptions) -> None:
        if options.json_dir is None or not Path(options.json_dir).is_dir():
            raise PoseError(f"--json-dir {options.json_dir}: not a folder (the openpose-json source reads "
                            "<json-dir>/<video id>_<frame>_keypoints.json)")

    def read(self, item, payload=None) -> RawPoses:
        json_dir = self.options.json_dir
        if not json_dir:
            raise PoseError("the openpose-json source needs --json-dir (the folder of *_keypoints.json files)")
        files = find_openpose_files(json_dir, item.video_id)
        if not files:
            raise PoseError(f"no OpenPose *_keypoints.json files for {item.video_id!r} under {json_dir}")
        n, size = video_geometry(item)
        if size is None:
            raise PoseError(f"{item.video_id}: frame size unknown (no manifest size and no video file)")
        return read_openpose_video(files, n, size, track=self.options.track, what=item.video_id)
