"""Pose extraction / import for one video (:func:`extract`) and for a dataset (:func:`run_pose_job`).

The job (``csvr prepare poses``):

- takes a list of :class:`PoseJobItem` (video id, video path, and optionally the frame count and
  size the manifest already knows; :func:`items_from_manifest` builds it from a manifest);
- keeps its shard (``shard=(i, n)``: items ``i, i+n, ...`` of the list in manifest order;
  ``None`` uses torchrun's ``RANK`` / ``WORLD_SIZE``), so n machines or processes split a
  dataset without talking to each other, each video exactly once;
- skips videos whose cache entry is complete (a finished video or a "no person" marker of the
  current format version) unless ``force``;
- runs the rest in ``workers`` spawned processes (MediaPipe is started once per process), with a
  progress bar and ETA; each worker writes its videos' cache files itself, atomically;
- never stops on a bad video: a failure (unreadable video, missing OpenPose files, a video not in
  the mmaction2 pickle...) is reported with the path and reason, counted, and retried on the next
  run; a video without any person is written as a "no person" marker and reported;
- ends with a :class:`JobSummary` (done, skipped, no person, failed, time, frames per second;
  each processed video's *detection rate*, the fraction of its frames with a person, with the
  videos below 50 % listed by name; videos where a single-person source jumped to another
  person; with MediaPipe, videos where the skeleton stays still with high confidence while the
  image changes, :mod:`csvr.pose.consistency`), also written to
  ``<cache_dir>/_reports/poses-<source>-shard-<i>-of-<n>.json``; each cache entry's metadata keeps
  its ``detection_rate``.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from csvr.errors import CsvrError, VideoError
from csvr.pose.clean import CleanSettings, clean
from csvr.pose.consistency import describe as describe_frozen
from csvr.pose.sources import PoseSource, SourceOptions, get_source
from csvr.pose.track import TrackSettings
from csvr.pose_format.base import NoPersonError, PoseError, PoseRecord
from csvr.pose_format.cache import entry_status, write_no_person, write_record
from csvr.utils.io import atomic_write_json
from csvr.utils.parallel import imap_progress, parse_shard, shard as take_shard

log = logging.getLogger(__name__)

MEDIAPIPE_OPTIONS = ("model_complexity", "min_detection_confidence", "min_tracking_confidence", "smooth_landmarks")


@dataclass(frozen=True)
class PoseJobItem:
    """One video of a pose job. ``path`` may be None for importers when the size is known."""

    video_id: str
    path: str | None
    num_frames: int | None = None
    width: int | None = None
    height: int | None = None


def items_from_manifest(manifest: Any) -> list[PoseJobItem]:
    """Job items of a :class:`csvr.data.index.Manifest`'s good videos, in manifest order."""
    out = []
    for r in manifest.records:
        out.append(PoseJobItem(video_id=r.id, path=str(manifest.video_path(r)),
                               num_frames=int(r.num_frames) or None, width=int(r.width) or None,
                               height=int(r.height) or None))
    return out


def as_items(items: Iterable[PoseJobItem | tuple[str, Any]]) -> list[PoseJobItem]:
    """Accept :class:`PoseJobItem` objects or ``(video_id, path)`` pairs."""
    out = []
    for it in items:
        if isinstance(it, PoseJobItem):
            out.append(it)
        else:
            vid, path = it
            out.append(PoseJobItem(video_id=str(vid), path=None if path is None else str(path)))
    return out


# ------------------------------------------------------------------------------ one video
@dataclass
class _Config:
    """Everything a worker needs (pickled to spawned processes)."""

    source: str
    cache_dir: str | None
    clean: CleanSettings
    options: SourceOptions = field(default_factory=SourceOptions)


_STATE: dict[str, Any] = {}  # per process: the config and the started source


def _init_worker(config: _Config) -> None:
    """Start a worker process: keep the config, start the source once (not once per video)."""
    _close_worker()
    _STATE["config"] = config
    source = get_source(config.source)(config.options)
    _STATE["source"] = source
    try:
        source.start()
    except CsvrError as e:  # reported per video (a dead pool would only say "BrokenProcessPool")
        _STATE["init_error"] = str(e)


def _close_worker() -> None:
    source = _STATE.pop("source", None)
    if source is not None:
        source.close()
    _STATE.pop("config", None)
    _STATE.pop("init_error", None)


def _process(task: tuple[PoseJobItem, Any]) -> dict:
    """Worker function: one video -> one cache file. Returns a result dict, never raises."""
    item, payload = task
    config: _Config = _STATE["config"]
    source: PoseSource = _STATE["source"]
    t0 = time.perf_counter()
    inf0 = source.inference_seconds
    res: dict[str, Any] = {"video_id": item.video_id, "path": item.path, "frames": 0}
    try:
        if "init_error" in _STATE:
            raise PoseError(_STATE["init_error"])
        raw = source.read(item, payload)
        res["frames"] = raw.num_frames
        res["person_frames"] = int(raw.person_found.sum())
        rate = round(res["person_frames"] / raw.num_frames, 6) if raw.num_frames else 0.0
        res["detection_rate"] = rate
        identity = raw.info.get("identity") or {}
        if identity.get("dropped_frames"):
            res["identity"] = identity
        frozen = raw.info.get("frozen_skeleton") or {}
        if frozen.get("segments"):
            res["frozen_skeleton"] = frozen
        extra = {"source": config.source, "extractor": raw.settings, "source_info": raw.info,
                 "clean": config.clean.to_dict(), "detection_rate": rate}
        if item.num_frames is not None and item.num_frames != raw.num_frames:
            extra["manifest_num_frames"] = int(item.num_frames)
        try:
            rec = clean(raw, config.clean, what=item.video_id)
        except NoPersonError:
            write_no_person(config.cache_dir, item.video_id, raw.num_frames, raw.frame_size, extra)
            res["status"] = "no_person"
        else:
            write_record(config.cache_dir, item.video_id, rec, extra)
            res["status"] = "done"
    except VideoError as e:
        res.update(status="failed", reason=e.reason)
    except CsvrError as e:
        res.update(status="failed", reason=str(e))
    except Exception as e:  # a bug or an unexpected library error: report it, keep going
        res.update(status="failed", reason=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc(limit=6))
    res["seconds"] = time.perf_counter() - t0
    res["inference_seconds"] = source.inference_seconds - inf0
    return res


def extract_record(video_path: str | os.PathLike | None, source: str = "mediapipe", *,
                   video_id: str | None = None, json_dir: str | os.PathLike | None = None,
                   pkl: Any = None, num_frames: int | None = None, frame_size: tuple[int, int] | None = None,
                   conf_threshold: float | None = None, max_gap: int | None = None,
                   interp_conf_scale: float | None = None, track: TrackSettings | None = None,
                   progress: str | None = None, **mediapipe_options: Any) -> PoseRecord:
    """Like :func:`extract` but returns the whole :class:`PoseRecord` (masks and metadata);
    ``progress``: MediaPipe shows a progress bar over the video's frames with this label."""
    source_cls = get_source(source)
    bad = set(mediapipe_options) - set(MEDIAPIPE_OPTIONS)
    if bad:
        raise PoseError(f"unknown option(s) for extract: {', '.join(sorted(bad))}")
    if video_id is None:
        if video_path is None:
            raise PoseError("extract needs a video path or a video_id")
        video_id = Path(video_path).stem
    settings = CleanSettings.for_source(source, conf_threshold, max_gap, interp_conf_scale)
    options = SourceOptions(json_dir=None if json_dir is None else str(json_dir), mediapipe=dict(mediapipe_options),
                            track=track or TrackSettings(), progress=progress)
    item = PoseJobItem(video_id=video_id, path=None if video_path is None else str(video_path),
                       num_frames=num_frames, width=frame_size[0] if frame_size else None,
                       height=frame_size[1] if frame_size else None)
    payload = source_cls.payloads([item], pkl, "pkl= (the skeleton file or its loaded annotations)").get(video_id)
    reader = source_cls(options)
    try:
        reader.start()
        raw = reader.read(item, payload)
        what = str(video_path) if video_path is not None else video_id
        rec = clean(raw, settings, what=what)
        rec.meta.update({"source": source, "extractor": raw.settings, "source_info": raw.info})
        return rec
    finally:
        reader.close()


def extract(video_path: str | os.PathLike | None, source: str = "mediapipe", **opts: Any) -> np.ndarray:
    """Cleaned ``(T, 18, 3)`` float32 poses of one video (x, y in [0, 1], confidence in [0, 1]).

    Args:
        video_path: the video (for ``mediapipe`` it is decoded; for the importers it gives the
            frame count and size when they are not passed, and the default ``video_id``).
        source: ``"mediapipe"`` (BlazePose), ``"openpose-json"`` or ``"mmaction-pkl"``.
        **opts:
            ``conf_threshold``, ``max_gap``, ``interp_conf_scale``: cleaning
            (:class:`csvr.pose.clean.CleanSettings`; the threshold defaults per source);
            ``model_complexity`` (1), ``min_detection_confidence``, ``min_tracking_confidence``,
            ``smooth_landmarks``: MediaPipe;
            ``json_dir``: the OpenPose JSON folder; ``pkl``: the mmaction2 skeleton file (a
            path, its bytes, or its loaded annotations); ``video_id``: the name to look up in
            them (default: the video's file name without suffix); ``num_frames``,
            ``frame_size=(w, h)``: override the video's; ``track``: a
            :class:`csvr.pose.track.TrackSettings`.

    Raises:
        NoPersonError: nobody was detected in any frame.
        VideoError: the video cannot be read.
        PoseError: bad options or unusable pose files.
    """
    return extract_record(video_path, source, **opts).poses


# ------------------------------------------------------------------------------ the job
@dataclass
class JobSummary:
    source: str
    shard: tuple[int, int]
    total: int = 0  # videos in this shard
    done: int = 0
    skipped: int = 0  # already cached (finished, or a "no person" marker)
    no_person: int = 0
    failed: int = 0
    frames: int = 0
    seconds: float = 0.0
    inference_seconds: float = 0.0
    failures: list[dict] = field(default_factory=list)  # {"video_id", "path", "reason"}
    no_person_ids: list[str] = field(default_factory=list)
    #: fraction of each processed video's frames with a person (its actor), by video id
    detection_rates: dict[str, float] = field(default_factory=dict)
    low_detection_threshold: float = 0.5
    low_detection: list[str] = field(default_factory=list)  # rate below the threshold (not 0: "no person")
    #: videos whose single-person source jumped to another person: {"video_id", "tracks", "kept_frames",
    #: "dropped_frames", "switch_frames"} (the other person's frames were dropped)
    identity_lost: list[dict] = field(default_factory=list)
    #: videos where the skeleton stays still with high confidence while the image changes (MediaPipe:
    #: a frozen "ghost" track?): {"video_id", "frames", "flagged_frames", "segments"}
    frozen_skeleton: list[dict] = field(default_factory=list)
    person_frames: dict[str, list[int]] = field(default_factory=dict, repr=False)  # [with a person, frames]
    report_path: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines(self, max_failures: int = 20) -> list[str]:
        i, n = self.shard
        out = [f"poses ({self.source}, shard {i}/{n}): {self.total} videos: {self.done} done, "
               f"{self.skipped} skipped (already cached), {self.no_person} no person, {self.failed} failed; "
               f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} frames/s)"]
        if self.detection_rates:
            rates = self.detection_rates
            worst = min(rates, key=lambda v: (rates[v], v))
            pct = 100 * self.low_detection_threshold
            out.append(f"detection rate (frames with a person): mean {100 * np.mean(list(rates.values())):.1f} %, "
                       f"lowest {100 * rates[worst]:.1f} % ({worst}); {len(self.low_detection)} video(s) below "
                       f"{pct:.0f} %")
            for vid in self.low_detection[:max_failures]:
                n, total = self.person_frames.get(vid, (0, 0))
                frames = f" ({n}/{total} frames)" if total else ""
                out.append(f"  low detection rate (< {pct:.0f} %): {vid}: {100 * rates[vid]:.1f} %{frames}")
        for d in self.identity_lost[:max_failures]:
            out.append(f"  identity lost: {d['video_id']}: the pose jumped between {d['tracks']} people (first at "
                       f"frame {d['switch_frames'][0] if d['switch_frames'] else '?'}); kept {d['kept_frames']} "
                       f"frames of the main one, dropped {d['dropped_frames']}")
        if self.frozen_skeleton:
            out.append(frozen_skeleton_warning(self.frozen_skeleton))
        for d in self.frozen_skeleton[:max_failures]:
            out.append(f"  frozen skeleton: {describe_frozen(d['video_id'], d)}")
        for vid in self.no_person_ids[:max_failures]:
            out.append(f"  no person: {vid}")
        for f in self.failures[:max_failures]:
            out.append(f"  failed: {f['video_id']} ({f.get('path')}): {f['reason']}")
        more = len(self.failures) - max_failures
        if more > 0:
            out.append(f"  ... and {more} more failures (see {self.report_path})")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = round(self.fps, 3)
        return d

    def add_rate(self, res: dict) -> None:
        """Record a processed video's detection rate (and flag it when low)."""
        if "detection_rate" not in res:
            return
        vid, rate = res["video_id"], float(res["detection_rate"])
        self.detection_rates[vid] = rate
        self.person_frames[vid] = [int(res.get("person_frames", 0)), int(res.get("frames", 0))]
        if 0 < rate < self.low_detection_threshold:
            self.low_detection.append(vid)
        if res.get("identity"):
            self.identity_lost.append({"video_id": vid, **res["identity"]})
        if res.get("frozen_skeleton"):
            self.frozen_skeleton.append({"video_id": vid, **res["frozen_skeleton"]})


def frozen_skeleton_warning(videos: list[dict], max_named: int = 5) -> str:
    """The one-line warning about videos whose skeleton stays still while the image changes."""
    named = ", ".join(d["video_id"] for d in videos[:max_named]) + (" ..." if len(videos) > max_named else "")
    return (f"warning: {len(videos)} video(s) have a skeleton that stays still with high confidence while the image "
            f"changes ({named}): the pose may be a frozen track, not the person; look at the frames named below "
            "(csvr viz poses VIDEO --cache CACHE --id ID --out check.gif) and, if so, leave those videos out or take "
            "their poses from another source")


def remove_stale_temp_files(cache_dir: str | os.PathLike, max_age_s: float = 3600.0) -> int:
    """Delete ``.<name>.npz.<random>.tmp`` files older than ``max_age_s`` left by killed jobs.

    Younger ones may belong to a job (another shard) still running and are left alone; readers
    ignore temporary files in any case. Returns how many were removed.
    """
    root = Path(cache_dir)
    if not root.is_dir():
        return 0
    now, removed = time.time(), 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(".") and name.endswith(".tmp") and ".npz." in name:
                p = Path(dirpath) / name
                try:
                    if now - p.stat().st_mtime > max_age_s:
                        p.unlink()
                        removed += 1
                except OSError:
                    pass
    return removed


def run_pose_job(items: Sequence[PoseJobItem | tuple[str, Any]], cache_dir: str | os.PathLike,
                 source: str = "mediapipe", *, workers: int = 1, shard: tuple[int, int] | str | None = None,
                 force: bool = False, json_dir: str | os.PathLike | None = None, pkl: Any = None,
                 conf_threshold: float | None = None, max_gap: int | None = None,
                 interp_conf_scale: float | None = None, mediapipe_options: dict | None = None,
                 track: TrackSettings | None = None, write_report: bool = True) -> JobSummary:
    """Extract or import the poses of ``items`` into ``cache_dir`` (see the module docstring).

    ``items`` are :class:`PoseJobItem` or ``(video_id, video_path)`` pairs; ``shard`` is
    ``(i, n)``, ``"i/n"`` or None (torchrun's RANK / WORLD_SIZE, else the whole list).
    """
    source_cls = get_source(source)
    i, n = shard if isinstance(shard, tuple) else parse_shard(shard)
    mine = take_shard(as_items(items), i, n)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    settings = CleanSettings.for_source(source, conf_threshold, max_gap, interp_conf_scale)
    mp_opts = dict(mediapipe_options or {})
    bad = set(mp_opts) - set(MEDIAPIPE_OPTIONS)
    if bad:
        raise PoseError(f"unknown MediaPipe option(s): {', '.join(sorted(bad))}")
    options = SourceOptions(json_dir=None if json_dir is None else str(json_dir), mediapipe=mp_opts,
                            track=track or TrackSettings())
    source_cls.check_job(options)
    config = _Config(source=source, cache_dir=str(cache_dir), clean=settings, options=options)
    summary = JobSummary(source=source, shard=(i, n), total=len(mine))
    t_start = time.perf_counter()
    removed = remove_stale_temp_files(cache_dir)
    if removed:
        log.info("removed %d stale temporary files left by an interrupted run", removed)

    todo: list[PoseJobItem] = []
    for it in mine:
        if not force and entry_status(cache_dir, it.video_id) in ("ok", "no_person"):
            summary.skipped += 1
        else:
            todo.append(it)

    payloads: dict[str, Any] = {}
    if todo:
        if pkl is not None:
            log.info("reading %s", pkl)
        payloads = source_cls.payloads(todo, pkl, "--pkl (mmaction2's ucf101_2d.pkl / hmdb51_2d.pkl)")

    tasks = [(it, payloads.get(it.video_id)) for it in todo]
    eff_workers = min(max(1, workers), max(1, len(tasks)))
    results = imap_progress(_process, tasks, workers=eff_workers, desc=f"poses ({source})", unit="video",
                            initializer=_init_worker, initargs=(config,)) if tasks else iter(())
    try:
        for _task, res in results:
            st = res["status"]
            summary.frames += int(res.get("frames", 0)) if st != "failed" else 0
            summary.inference_seconds += float(res.get("inference_seconds", 0.0))
            if st != "failed":
                summary.add_rate(res)
            if st == "done":
                summary.done += 1
            elif st == "no_person":
                summary.no_person += 1
                summary.no_person_ids.append(res["video_id"])
                log.warning("no person: %s (%s)", res["video_id"], res.get("path"))
            else:
                summary.failed += 1
                summary.failures.append({k: res.get(k) for k in ("video_id", "path", "reason")})
                log.warning("failed: %s (%s): %s", res["video_id"], res.get("path"), res.get("reason"))
                if res.get("traceback"):
                    log.debug(res["traceback"])
    finally:
        if eff_workers <= 1:
            _close_worker()
    summary.seconds = time.perf_counter() - t_start
    if write_report:
        report = cache_dir / "_reports" / f"poses-{source}-shard-{i}-of-{n}.json"
        summary.report_path = str(report)
        atomic_write_json(report, summary.to_dict())
    return summary
