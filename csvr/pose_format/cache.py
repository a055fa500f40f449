"""The pose cache: one ``.npz`` per video, keyed by the manifest's video id.

Layout: ``<cache_dir>/<video_id>.npz`` (ids contain ``/``, e.g. ``Walk/v_Walk_g01_c01``, so
there is one sub-folder per class). Files are written by ``np.savez_compressed`` through a
temporary file and a rename (a killed job never leaves half a file; stray
``.<name>.npz.<random>.tmp`` files are ignored by readers) and hold no Python objects, so they
load with ``np.load(path, allow_pickle=False)`` anywhere, without csvr.

Arrays of a video with a person (``status`` "ok"):

==================  ==================  =====================================================
key                 shape, dtype        meaning
==================  ==================  =====================================================
``poses``           (T, 18, 3) float32  x, y in [0, 1] of the frame, confidence in [0, 1]
                                        (OpenPose COCO-18 order; see :mod:`csvr.pose.clean`)
``valid``           (T, 18) bool        joint observed (confidence >= the threshold)
``interpolated``    (T, 18) bool        joint linearly interpolated across a short gap
``filled``          (T, 18) bool        joint copied from the nearest valid frame (long,
                                        leading, trailing gaps) or placed on its parent
``person_found``    (T,) bool           the actor was detected (>= 1 valid joint) in the frame
``frame_size``      (2,) int32          width, height of the frames the coordinates refer to
``format_version``  () int32            :data:`FORMAT_VERSION`
``meta``            () str              JSON: format, version, status, video_id, source,
                                        num_frames, frame_size, extractor and cleaning
                                        settings, statistics, csvr version, creation time
==================  ==================  =====================================================

A video in which no person was ever detected is stored as a *marker*: the same file with
``status`` "no_person" in ``meta``, ``poses`` of shape (0, 18, 3) and ``person_found`` all
False. :func:`load` raises :class:`~csvr.pose_format.base.NoPersonError` for it,
:meth:`PoseCache.get` returns ``None``, and ``csvr prepare poses`` skips it on re-runs (unless
``--force``), exactly like a finished video.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from csvr import __version__
from csvr.errors import CsvrError
from csvr.pose_format.base import NoPersonError, PoseError, PoseNotCachedError, PoseRecord
from csvr.pose_format.skeleton import NUM_JOINTS
from csvr.utils.io import atomic_save_npz, resolve_inside

FORMAT = "csvr-poses"
FORMAT_VERSION = 1
SUFFIX = ".npz"


def cache_path(cache_dir: str | os.PathLike, video_id: str) -> Path:
    """``<cache_dir>/<video_id>.npz``; refuses ids that would escape ``cache_dir``."""
    vid = str(video_id).replace("\\", "/").strip()
    if not vid or vid.startswith("/") or any(part in ("", ".", "..") for part in vid.split("/")):
        raise PoseError(f"bad video id for the pose cache: {video_id!r}")
    try:
        return resolve_inside(cache_dir, vid + SUFFIX, what="video id")
    except CsvrError as e:
        raise PoseError(str(e)) from None


def _meta(video_id: str, status: str, num_frames: int, frame_size: tuple[int, int],
          extra: dict[str, Any]) -> dict[str, Any]:
    m = {"format": FORMAT, "version": FORMAT_VERSION, "status": status, "video_id": video_id,
         "num_frames": int(num_frames), "frame_size": [int(frame_size[0]), int(frame_size[1])],
         "joints": "openpose-coco18"}
    m.update({k: v for k, v in extra.items() if k not in m})
    m["csvr_version"] = __version__
    m["created"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return m


def write_record(cache_dir: str | os.PathLike, video_id: str, record: PoseRecord,
                 meta: dict[str, Any] | None = None) -> Path:
    """Write a cleaned record atomically; returns the file's path."""
    T = record.num_frames
    poses = np.asarray(record.poses, dtype=np.float32)
    if poses.shape != (T, NUM_JOINTS, 3) or not np.isfinite(poses).all():
        raise AssertionError(f"{video_id}: refusing to cache non-finite or misshapen poses {poses.shape}")
    m = _meta(video_id, "ok", T, record.frame_size, {**record.meta, **(meta or {})})
    path = cache_path(cache_dir, video_id)
    atomic_save_npz(path, poses=poses, valid=np.asarray(record.valid, bool),
                    interpolated=np.asarray(record.interpolated, bool), filled=np.asarray(record.filled, bool),
                    person_found=np.asarray(record.person_found, bool),
                    frame_size=np.asarray(record.frame_size, np.int32),
                    format_version=np.int32(FORMAT_VERSION), meta=np.str_(json.dumps(m, sort_keys=True)))
    return path


def write_no_person(cache_dir: str | os.PathLike, video_id: str, num_frames: int,
                    frame_size: tuple[int, int], meta: dict[str, Any] | None = None) -> Path:
    """Write the "no person" marker of a video (see the module docstring)."""
    m = _meta(video_id, "no_person", num_frames, frame_size, meta or {})
    path = cache_path(cache_dir, video_id)
    atomic_save_npz(path, poses=np.zeros((0, NUM_JOINTS, 3), np.float32),
                    valid=np.zeros((0, NUM_JOINTS), bool), interpolated=np.zeros((0, NUM_JOINTS), bool),
                    filled=np.zeros((0, NUM_JOINTS), bool), person_found=np.zeros(int(num_frames), bool),
                    frame_size=np.asarray(frame_size, np.int32), format_version=np.int32(FORMAT_VERSION),
                    meta=np.str_(json.dumps(m, sort_keys=True)))
    return path


def _open(path: Path, video_id: str):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise PoseNotCachedError(f"no pose cache entry for {video_id!r} ({path})") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise PoseNotCachedError(f"pose cache entry for {video_id!r} is unreadable ({path}: {e}); "
                                 "re-run 'csvr prepare poses --force'") from None


def read_meta(cache_dir: str | os.PathLike, video_id: str) -> dict[str, Any]:
    """The ``meta`` JSON of a cache entry (cheap: the poses are not decompressed)."""
    path = cache_path(cache_dir, video_id)
    with _open(path, video_id) as z:
        try:
            return json.loads(str(z["meta"][()]))
        except (KeyError, ValueError, zipfile.BadZipFile) as e:
            raise PoseNotCachedError(f"pose cache entry for {video_id!r} has no readable metadata ({e})") from None


def entry_status(cache_dir: str | os.PathLike, video_id: str) -> str:
    """``"ok"``, ``"no_person"``, ``"missing"`` (no file), ``"stale"`` (unreadable or an older /
    newer format version: redone by ``csvr prepare poses``)."""
    path = cache_path(cache_dir, video_id)
    if not path.is_file():
        return "missing"
    try:
        m = read_meta(cache_dir, video_id)
    except PoseNotCachedError:
        return "stale"
    if m.get("format") != FORMAT or m.get("version") != FORMAT_VERSION:
        return "stale"
    return "no_person" if m.get("status") == "no_person" else ("ok" if m.get("status") == "ok" else "stale")


def load_record(cache_dir: str | os.PathLike, video_id: str) -> PoseRecord:
    """The full cached :class:`~csvr.pose_format.base.PoseRecord` of a video (poses, masks, meta).

    Raises:
        NoPersonError: the video is cached as "no person".
        PoseNotCachedError: no entry, or an unreadable one.
        PoseError: an entry of a newer format version than this csvr reads.
    """
    path = cache_path(cache_dir, video_id)
    with _open(path, video_id) as z:
        try:
            meta = json.loads(str(z["meta"][()]))
            version = int(z["format_version"])
            if version > FORMAT_VERSION:
                raise PoseError(f"{path}: pose cache format {version} is newer than this csvr reads "
                                f"({FORMAT_VERSION}); upgrade csvr or re-extract")
            if meta.get("status") == "no_person":
                raise NoPersonError(str(video_id))
            rec = PoseRecord(poses=z["poses"], valid=z["valid"], interpolated=z["interpolated"],
                             filled=z["filled"], person_found=z["person_found"],
                             frame_size=tuple(int(v) for v in z["frame_size"]), meta=meta)
        except (KeyError, ValueError, zipfile.BadZipFile, EOFError, OSError) as e:
            raise PoseNotCachedError(f"pose cache entry for {video_id!r} is incomplete ({path}: {e}); "
                                     "re-run 'csvr prepare poses --force'") from None
    return rec


def load(cache_dir: str | os.PathLike, video_id: str) -> np.ndarray:
    """The cached ``(T, 18, 3)`` float32 poses of ``video_id`` (x, y in [0, 1], confidence).

    Raises :class:`~csvr.pose_format.base.NoPersonError` when the video was processed and nobody was
    found in it (it is excluded from the pose branch), and
    :class:`~csvr.pose_format.base.PoseNotCachedError` when it is not in the cache.
    """
    return load_record(cache_dir, video_id).poses


class PoseCache:
    """Read access to a pose cache, for datasets (cheap to create; one per worker process).

    ``get`` returns ``None`` (never raises) for a video without a person or not in the cache;
    ``has`` says whether ``get`` would return poses. Holds no global state: only the folder and
    a small per-instance LRU of recently read arrays (``memory_items`` entries, 0 disables it).
    """

    def __init__(self, cache_dir: str | os.PathLike, memory_items: int = 64):
        self.cache_dir = Path(cache_dir)
        self.memory_items = int(memory_items)
        self._lru: OrderedDict[str, np.ndarray | None] = OrderedDict()

    def _remember(self, video_id: str, value: np.ndarray | None) -> None:
        if self.memory_items <= 0:
            return
        self._lru[video_id] = value
        self._lru.move_to_end(video_id)
        while len(self._lru) > self.memory_items:
            self._lru.popitem(last=False)

    def get(self, video_id: str) -> np.ndarray | None:
        """``(T, 18, 3)`` float32 poses, or None (no person in the video, or not cached)."""
        if video_id in self._lru:
            self._lru.move_to_end(video_id)
            return self._lru[video_id]
        try:
            poses = load(self.cache_dir, video_id)
        except (NoPersonError, PoseNotCachedError):
            poses = None
        self._remember(video_id, poses)
        return poses

    def record(self, video_id: str) -> PoseRecord | None:
        """The full :class:`PoseRecord` (masks and metadata), or None like :meth:`get`."""
        try:
            return load_record(self.cache_dir, video_id)
        except (NoPersonError, PoseNotCachedError):
            return None

    def has(self, video_id: str) -> bool:
        """True when the cache holds poses for ``video_id`` (not for a "no person" marker)."""
        if video_id in self._lru:
            return self._lru[video_id] is not None
        return entry_status(self.cache_dir, video_id) == "ok"

    def status(self, video_id: str) -> str:
        """``"ok"``, ``"no_person"``, ``"missing"`` or ``"stale"`` (see :func:`entry_status`)."""
        return entry_status(self.cache_dir, video_id)

    def __contains__(self, video_id: str) -> bool:
        return self.has(video_id)

    def __repr__(self) -> str:
        return f"PoseCache({str(self.cache_dir)!r})"


class PoseCoverage:
    """How many of a run's videos a pose cache holds poses for (:func:`check_coverage`)."""

    def __init__(self, cache_dir: str, total: int, missing: list[str]):
        self.cache_dir, self.total, self.missing = cache_dir, int(total), list(missing)

    @property
    def with_poses(self) -> int:
        return self.total - len(self.missing)

    def __repr__(self) -> str:
        return f"PoseCoverage({self.cache_dir!r}, {self.with_poses}/{self.total})"


def check_coverage(cache_dir: str | os.PathLike | None, video_ids: list[str], key: str = "data.pose_cache",
                   what: str = "training videos", source: str = "") -> PoseCoverage:
    """The one check of a pose cache before a run that needs poses starts.

    A missing setting, a path that is not a folder, or a cache with poses for none of
    ``video_ids`` is a :class:`CsvrError` naming ``key`` (the config key or flag that gave the
    cache); partial coverage is a warning naming a few videos without poses (their pose terms
    see zero poses). ``source`` (e.g. the manifest) only makes the messages precise.
    """
    log = logging.getLogger(__name__)
    of = f" of {source}" if source else ""
    if not cache_dir:
        raise CsvrError(f"{key} is not set: this run needs poses (a cache made by 'csvr prepare poses')")
    path = Path(cache_dir)
    if not path.is_dir():
        found = "a file, not a folder" if path.exists() else "nothing there"
        raise CsvrError(f"{key}={cache_dir}: no pose cache ({found}); make one with 'csvr prepare poses' or fix "
                        f"{key}")
    store = PoseCache(path, memory_items=0)
    ids = list(video_ids)
    missing = [v for v in ids if not store.has(v)]
    cov = PoseCoverage(str(cache_dir), len(ids), missing)
    if ids and not cov.with_poses:
        entries = sum(1 for _ in path.rglob("*" + SUFFIX))
        raise CsvrError(f"{key}={cache_dir}: the cache holds poses for none of the {len(ids)} {what}{of} (found "
                        f"{entries} cache file(s) there, e.g. {missing[0]!r} has none); is it the cache of this "
                        "dataset?")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        log.warning("csvr: %d of %d %s%s have no poses in %s (no person found, or not extracted): %s; their pose "
                    "terms see zero poses", len(missing), len(ids), what, of, cache_dir, shown)
    return cov
