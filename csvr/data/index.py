"""The dataset index: one manifest file per dataset (``csvr prepare index``).

Manifest format (JSON Lines, UTF-8, versioned)
    Line 1 is a header object::

        {"format": "csvr-manifest", "version": 1, "layout": "ucf101", "root": "/data/UCF101",
         "classes": ["ApplyEyeMakeup", ...], "splits": ["1", "2", "3"], "complete": true,
         "created": "2026-11-22T10:00:00Z", "csvr_version": "0.1.0"}

    Every following line is one video. A good one::

        {"id": "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01",
         "path": "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
         "label": 0, "class_name": "ApplyEyeMakeup",
         "splits": {"1": "train", "2": "train", "3": "test"},
         "fps": 25.0, "num_frames": 121, "duration": 4.84, "width": 320, "height": 240,
         "codec": "mpeg4", "keyframes": [0, 12, ...], "iframes": [0, 12, ...],
         "size": 123456, "mtime_ns": 1700000000000000000}

    ``size`` and ``mtime_ns`` are the file's as indexed: a video whose size or modification time
    differs when a job loads the manifest (or that is gone) changed since indexing and is skipped
    (:meth:`Manifest.drop_stale`). A record whose file was found damaged but usable says how in
    ``notes`` (omitted when empty), e.g. a truncated file indexed with the frames that decode::

        {..., "num_frames": 120, "notes": ["truncated: only the first 120 of 121 frames decode ..."]}

    A video that could not be indexed keeps its place with the reason (so a re-run does not
    probe it again unless the file changes, and nothing is lost)::

        {"id": "...", "path": "...", "label": 3, "class_name": "...", "splits": {...},
         "error": "cannot open: Invalid data found when processing input", "size": 0, ...}

    ``id`` is the path relative to the root without its suffix (caches are keyed by it);
    ``label`` is 0-based (UCF101's classInd is 1-based: label = classInd number - 1) and -1 for
    unlabelled videos; split membership is ``train``, ``test`` or ``unused`` per split name.

Layouts (one module each in :mod:`csvr.data.layouts`)
    ``ucf101``  ``classInd.txt``, ``trainlist0{1,2,3}.txt``, ``testlist0{1,2,3}.txt`` (in the
    root or in ``--splits DIR``, e.g. ``ucfTrainTestlist/``), videos ``Class/v_Class_gXX_cYY.avi``.
    UCF101's split files spell a few names differently from the files on disk
    (``HandStandPushups``); a missing path is looked up case-insensitively before it is reported.

    ``hmdb51``  ``testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`` with lines
    ``video.avi 1|2|0`` (1 = train, 2 = test, 0 = unused), videos ``<class>/<video>.avi``;
    labels follow the sorted class names.

    ``folder``  ``<root>/<class>/<video>`` (any depth below the class folder); labels follow the
    sorted class names; split ``1``: every video is ``train`` unless ``--test-ratio`` (a
    deterministic, per-class hash-ordered fraction goes to ``test``) or ``--test-list FILE``
    (relative paths, one a line) says otherwise. ``--unlabelled`` indexes every video under the
    root with label -1 (for pretraining only).

    ``csv``  a CSV file ``path,label[,split]`` (header optional); ``label`` is a class name or
    an integer; ``split`` is ``train``/``test``/``unused`` for split ``1``.

Paths in split files, CSVs and manifests may not point outside the dataset root *as written*
(lexically: no ``..`` escaping, no absolute path elsewhere); symlinks inside the root may point
anywhere (``--allow-outside-root`` / ``data.allow_outside_root=true`` lift the check).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

from csvr import __version__
from csvr.data.layouts import LayoutOptions, detect_layout, scan_layout
from csvr.data.layouts._common import VIDEO_SUFFIXES, Entry, LayoutScan, video_id  # noqa: F401 (re-exported)
from csvr.data.layouts.folder import ratio_test_paths, read_test_list
from csvr.data.video import probe
from csvr.errors import DatasetError, VideoError
from csvr.utils.io import atomic_write, resolve_inside
from csvr.utils.parallel import default_workers, imap_progress

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "csvr-manifest"
MANIFEST_VERSION = 1
Subset = Literal["train", "test", "unused", "all"]
# the staleness warnings already given by this process: a job that loads its manifest twice
# (finetuning: the command, then the trainer) says it once
_warned: set[tuple] = set()


def _warn_once(key: tuple, msg: str, *args) -> None:
    if key not in _warned and int(os.environ.get("RANK", "0")) == 0:
        _warned.add(key)
        log.warning(msg, *args)


@dataclass
class VideoRecord:
    """One manifest line (a good video when ``error`` is None)."""

    id: str
    path: str
    label: int = -1
    class_name: str | None = None
    splits: dict[str, str] = field(default_factory=dict)
    fps: float = 0.0
    num_frames: int = 0
    duration: float = 0.0
    width: int = 0
    height: int = 0
    codec: str = ""
    keyframes: list[int] = field(default_factory=list)
    iframes: list[int] = field(default_factory=list)
    size: int = 0
    mtime_ns: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # damage found at indexing and how it was taken

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        if not d["notes"]:
            del d["notes"]
        if d["error"] is None:
            del d["error"]
        else:
            for k in ("fps", "num_frames", "duration", "width", "height", "codec", "keyframes", "iframes"):
                d.pop(k)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "VideoRecord":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})


class Manifest:
    """A loaded manifest: header, good records, bad records, safe path resolution."""

    def __init__(self, header: dict, records: list[VideoRecord], path: Path | None = None,
                 root: str | os.PathLike | None = None, allow_outside_root: bool = False):
        self.header = header
        self.path = path
        self.all_records = records
        self.records = [r for r in records if r.error is None]
        self.errors = [r for r in records if r.error is not None]
        #: good records whose file changed or disappeared since indexing, with why (:meth:`drop_stale`)
        self.stale: list[tuple[VideoRecord, str]] = []
        self.allow_outside_root = allow_outside_root
        base = Path(path).parent if path is not None else Path.cwd()
        root_value = root if root is not None else header.get("root", ".")
        self.root = (base / root_value).resolve() if not Path(root_value).is_absolute() else Path(root_value)
        self._by_id = {r.id: r for r in self.records}

    @property
    def classes(self) -> list[str]:
        return list(self.header.get("classes", []))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def split_names(self) -> list[str]:
        return list(self.header.get("splits", []))

    def video_path(self, record: VideoRecord) -> Path:
        return resolve_inside(self.root, record.path, allow_outside=self.allow_outside_root, what="video path")

    def check_paths(self) -> None:
        """Refuse the manifest now if a good record's path leaves the root (the lexical rule of
        :func:`csvr.utils.io.resolve_inside`), so the error is one message in the main process
        rather than a data-loader worker's traceback later."""
        if not self.allow_outside_root:
            for r in self.records:
                self.video_path(r)

    def drop_stale(self) -> None:
        """Leave out (into :attr:`stale`) every good record whose file is gone or whose size
        differs from what was indexed (a new modification time alone is one warning: a copy that did
        not keep times must not lose the dataset), so that it is never decoded as something
        else; log one line naming how many and the first few. Raises :class:`DatasetError` when
        every good record is stale. Costs one ``stat`` per video.

        Records that carry neither size nor time (a manifest from an older csvr or another tool)
        can only be checked for existence: one warning says so."""
        keep, stale, unknown, touched = [], [], 0, 0
        for r in self.records:
            try:
                st = os.stat(self.video_path(r))
            except OSError:
                stale.append((r, "missing"))
                continue
            if r.size <= 0 and r.mtime_ns <= 0:
                unknown += 1
                keep.append(r)
            elif st.st_size != r.size:
                stale.append((r, f"changed: {r.size} -> {st.st_size} bytes"))
            else:
                # same size, new time: a copy that did not keep modification times, or a file
                # rewritten in place; used as indexed (a replaced video nearly always changes size)
                touched += st.st_mtime_ns != r.mtime_ns
                keep.append(r)
        total = len(self.records)
        where = str(Path(self.path).resolve()) if self.path is not None else None
        if unknown:
            _warn_once((where, "unknown", unknown),
                       "csvr: %s: %d of its %d videos were indexed without their file size and modification time (a "
                       "manifest from an older csvr or another tool), so a video changed since indexing cannot be "
                       "detected; run csvr prepare index again to record them", self.path, unknown, total)
        if touched:
            _warn_once((where, "touched", touched),
                       "csvr: %s: %d of its %d videos have a new modification time but the size they were indexed "
                       "with (copied without their times, or rewritten in place): used as indexed; run csvr prepare "
                       "index again if their content changed", self.path, touched, total)
        if not stale:
            return
        shown = ", ".join(f"{r.path} ({why})" for r, why in stale[:3]) + (
            f" and {len(stale) - 3} more" if len(stale) > 3 else "")
        if not keep:
            raise DatasetError(f"all {total} videos of {self.path} changed or disappeared since indexing ({shown}): "
                               "run csvr prepare index again")
        _warn_once((where, "stale", tuple((r.path, why) for r, why in stale)),
                   "csvr: %d of %d videos of %s changed or disappeared since indexing and are skipped: %s; run "
                   "csvr prepare index again to re-index them", len(stale), total, self.path, shown)
        self.stale = stale
        self.records = keep
        self._by_id = {r.id: r for r in keep}

    def get(self, vid: str) -> VideoRecord:
        try:
            return self._by_id[vid]
        except KeyError:
            raise DatasetError(f"video id {vid!r} is not in the manifest {self.path}") from None

    def select(self, split: str = "1", subset: Subset = "all") -> list[VideoRecord]:
        """Good records of ``subset`` (train/test/unused/all) in split ``split``."""
        if subset == "all":
            return list(self.records)
        if self.split_names and split not in self.split_names:
            raise DatasetError(f"split {split!r} is not in this manifest (it has {', '.join(self.split_names) or 'none'})")
        return [r for r in self.records if r.splits.get(split) == subset]

    def select_nonempty(self, split: str, subset: Subset, key: str = "data.split") -> list[VideoRecord]:
        """:meth:`select`, or a :class:`DatasetError` naming the split, the manifest and how many of
        its videos there were unreadable (checked before a job starts, not at its end)."""
        records = self.select(split, subset)
        if not records:
            bad = sum(1 for r in self.errors if subset == "all" or r.splits.get(split) == subset)
            stale = sum(1 for r, _ in self.stale if subset == "all" or r.splits.get(split) == subset)
            why = (f" ({bad + stale} listed there, all unreadable or changed since indexing)" if stale else
                   f" ({bad} listed there, all unreadable)" if bad else "")
            raise DatasetError(f"the {subset} part of split {split} of {self.path} has no readable video{why}: "
                               f"choose another {key}, or re-index with videos there (csvr prepare index)")
        return records

    def write(self, path: str | os.PathLike | None = None) -> None:
        write_manifest(path or self.path, self.header, self.all_records)


def write_manifest(path: str | os.PathLike, header: dict, records: Iterable[VideoRecord]) -> None:
    """Write header + records atomically (temp file + rename)."""
    with atomic_write(path, "w") as f:
        f.write(json.dumps(header, separators=(",", ":")) + "\n")
        for r in records:
            f.write(json.dumps(r.to_json(), separators=(",", ":")) + "\n")


def load_manifest(path: str | os.PathLike, root: str | os.PathLike | None = None,
                  allow_outside_root: bool = False, check_paths: bool = True,
                  check_files: bool | None = None) -> Manifest:
    """Read a manifest written by ``csvr prepare index``; ``root`` overrides the stored root.

    ``check_paths``: refuse a video path that leaves the root (:meth:`Manifest.check_paths`)
    unless ``allow_outside_root``; False only for callers that never open the videos.
    ``check_files`` (default: as ``check_paths``): leave out, with one warning, the videos changed
    or missing since indexing (:meth:`Manifest.drop_stale`): what pretraining, finetuning and
    evaluation all load their data through."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest not found: {path} (create it with 'csvr prepare index')")
    records = []
    with open(path, encoding="utf-8") as f:
        first = f.readline()
        try:
            header = json.loads(first)
        except json.JSONDecodeError:
            raise DatasetError(f"{path} is not a csvr manifest (first line is not JSON)") from None
        if not isinstance(header, dict) or header.get("format") != MANIFEST_FORMAT:
            raise DatasetError(f"{path} is not a csvr manifest (no '{MANIFEST_FORMAT}' header)")
        if int(header.get("version", 0)) > MANIFEST_VERSION:
            raise DatasetError(f"{path} has manifest version {header.get('version')}; this csvr reads up to "
                               f"{MANIFEST_VERSION} (upgrade csvr)")
        for n, line in enumerate(f, start=2):
            if not line.strip():
                continue
            try:
                records.append(VideoRecord.from_json(json.loads(line)))
            except (json.JSONDecodeError, TypeError) as e:
                raise DatasetError(f"{path}:{n}: bad manifest line ({e})") from None
    manifest = Manifest(header, records, path=path, root=root, allow_outside_root=allow_outside_root)
    if check_paths:
        manifest.check_paths()
    if check_paths if check_files is None else check_files:
        manifest.drop_stale()
    return manifest


# ---------------------------------------------------------------------------- probing
def _probe_entry(args: tuple[str, str]) -> dict:
    """Worker: probe one video; never raises (errors come back as data)."""
    full, rel = args
    try:
        st = os.stat(full)
    except OSError as e:
        return {"error": f"cannot stat: {e.strerror or e}"}
    out = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        info = probe(full)
    except VideoError as e:
        out["error"] = e.reason
        return out
    except Exception as e:  # noqa: BLE001 - a decoder crash on one file must not stop the job
        out["error"] = f"unexpected {e.__class__.__name__}: {e}"
        return out
    out.update(info.to_dict())
    return out


@dataclass
class IndexSummary:
    manifest: Path
    total: int
    indexed: int
    reused: int
    probed: int
    bad: list[tuple[str, str]]
    short: int
    seconds: float
    short_paths: list[str] = field(default_factory=list)  # the videos shorter than one clip span
    empty: list[str] = field(default_factory=list)  # splits / classes without a readable video
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, note): indexed, with damage found

    def lines(self, max_bad: int = 50) -> list[str]:
        out = [f"manifest: {self.manifest}",
               f"videos: {self.indexed} indexed ({self.reused} reused from the previous manifest, "
               f"{self.probed} probed now), {len(self.bad)} bad, in {self.seconds:.1f} s"]
        if self.short:
            names = ", ".join(self.short_paths[:5]) + (f" and {self.short - 5} more" if self.short > 5 else "")
            out.append(f"{self.short} video(s) shorter than one clip span ({names}); they are looped or padded at "
                       "training time (data.short_video)")
        if self.empty:
            shown = "; ".join(self.empty[:10]) + (f"; and {len(self.empty) - 10} more" if len(self.empty) > 10 else "")
            out.append(f"warning: no readable video in {len(self.empty)} selection(s): {shown}. Training or "
                       "evaluating on them fails: fix or replace the bad videos below, or change --test-ratio / "
                       "the split files")
        if self.notes:
            out.append(f"{len({p for p, _ in self.notes})} video(s) indexed with a warning (details in their 'notes' "
                       "field):")
            for path, note in self.notes[:max_bad]:
                out.append(f"  warning: {path}: {note}")
            if len(self.notes) > max_bad:
                out.append(f"  ... and {len(self.notes) - max_bad} more")
        for path, reason in self.bad[:max_bad]:
            out.append(f"  bad: {path}: {reason}")
        if len(self.bad) > max_bad:
            out.append(f"  ... and {len(self.bad) - max_bad} more (records with an 'error' field in the manifest)")
        return out


def build_index(root: str | os.PathLike, out: str | os.PathLike, layout: str = "auto", *,
                split_dir: str | os.PathLike | None = None, csv_path: str | os.PathLike | None = None,
                test_ratio: float | None = None, test_list: str | os.PathLike | None = None,
                unlabelled: bool = False, workers: int = 0, allow_outside_root: bool = False,
                clip_span: int = 61, flush_every: float = 30.0) -> IndexSummary:
    """Scan a dataset, probe every video (in parallel, resumably) and write the manifest.

    A previous manifest at ``out`` is reused: a video whose size and mtime are unchanged is not
    probed again (its good record or its error is kept), so an interrupted or repeated run only
    probes new or changed files. Progress is flushed to ``out`` every ``flush_every`` seconds
    (atomically, with ``"complete": false`` in the header) so a killed run loses at most that.
    """
    t0 = time.time()
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetError(f"dataset root not found or not a folder: {root}")
    out = Path(out)
    if layout == "auto":
        layout = "csv" if csv_path else detect_layout(root)
    opts = LayoutOptions(split_dir=split_dir, csv_path=csv_path, test_ratio=test_ratio, test_list=test_list,
                         unlabelled=unlabelled, allow_outside=allow_outside_root)
    scan = scan_layout(layout, root, opts)
    if not scan.entries and not scan.problems:
        raise DatasetError(f"no videos found under {root} for layout {layout}")

    previous: dict[str, VideoRecord] = {}
    if out.exists():
        try:
            old = load_manifest(out, check_paths=False)  # only its records' probe results are reused
            previous = {r.path: r for r in old.all_records}
        except DatasetError as e:
            log.warning("ignoring the existing file at %s: %s", out, e)

    header = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "layout": layout,
        # relative to the manifest's folder, so a dataset moved together with its manifest still
        # resolves; load_manifest(root=...) overrides it
        "root": os.path.relpath(root, out.resolve().parent),
        "classes": scan.classes, "splits": scan.splits, "complete": False,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "csvr_version": __version__,
    }
    records: dict[str, VideoRecord] = {}
    to_probe: list[tuple[str, str]] = []
    reused = 0
    for e in scan.entries:
        full = root / e.path
        try:
            st = os.stat(full)
        except OSError:
            records[e.path] = VideoRecord(e.id, e.path, e.label, e.class_name, dict(e.splits), error="file not found")
            continue
        old = previous.get(e.path)
        if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
            rec = VideoRecord.from_json(old.to_json())
            rec.label, rec.class_name, rec.splits = e.label, e.class_name, dict(e.splits)
            records[e.path] = rec
            reused += 1
        else:
            to_probe.append((str(full), e.path))
    entry_by_path = {e.path: e for e in scan.entries}

    def ordered() -> list[VideoRecord]:
        return [records[e.path] for e in scan.entries if e.path in records]

    last_flush = time.time()
    nworkers = workers if workers > 0 else default_workers()
    for (full, rel), res in imap_progress(_probe_entry, to_probe, workers=nworkers, desc="probing videos",
                                          unit="video"):
        e = entry_by_path[rel]
        rec = VideoRecord(e.id, rel, e.label, e.class_name, dict(e.splits))
        for k, v in res.items():
            setattr(rec, k, v)
        records[rel] = rec
        if time.time() - last_flush > flush_every:
            write_manifest(out, header, ordered())
            last_flush = time.time()
    header["complete"] = True
    final = ordered()
    if layout == "folder" and test_ratio:
        _ratio_splits_over_readable(final, test_ratio, root, test_list, allow_outside_root)
    write_manifest(out, header, final)
    bad = [(r.path, r.error) for r in final if r.error] + list(scan.problems)
    short = [r.path for r in final if r.error is None and r.num_frames < clip_span]
    wants_test = bool(test_ratio or test_list) or any("test" in e.splits.values() for e in scan.entries)
    empty = empty_selections(final, scan.splits, scan.classes, wants_test)
    notes = [(r.path, n) for r in final if r.error is None for n in r.notes]
    return IndexSummary(out, len(scan.entries), sum(r.error is None for r in final), reused, len(to_probe),
                        bad, len(short), time.time() - t0, short_paths=short, empty=empty, notes=notes)


def _ratio_splits_over_readable(records: list[VideoRecord], ratio: float, root: Path, test_list, allow_outside: bool
                                ) -> None:
    """``--test-ratio`` over the readable videos of each class (bad files would otherwise take
    test places and leave a class, or the whole split, without test videos)."""
    listed = read_test_list(root, test_list, allow_outside) if test_list is not None else set()
    by_class: dict[str, list[str]] = {}
    for r in records:
        if r.error is None:
            by_class.setdefault(str(r.class_name), []).append(r.path)
    chosen = set().union(*(ratio_test_paths(paths, ratio) for paths in by_class.values()))
    for r in records:
        r.splits = {**r.splits, "1": "test" if (r.path in listed or r.path in chosen) else "train"}


def empty_selections(records: list[VideoRecord], splits: list[str], classes: list[str], wants_test: bool = True
                     ) -> list[str]:
    """What ends up with no readable video: ``"split 1 test"``, ``"class Walk"`` (no readable
    video at all), ``"class Walk in split 1 test"``. A split's test part only counts when the
    layout (or ``--test-ratio`` / ``--test-list``) gives the dataset test videos."""
    good = [r for r in records if r.error is None]
    subsets = ("train", "test") if wants_test else ("train",)
    out = []
    for s in splits:
        for sub in subsets:
            if not any(r.splits.get(s) == sub for r in good):
                out.append(f"split {s} {sub}")
    have = {r.class_name for r in good}
    for c in classes:
        if c not in have:
            out.append(f"class {c}")
            continue
        for s in splits:
            for sub in subsets:
                if f"split {s} {sub}" not in out and not any(r.class_name == c and r.splits.get(s) == sub
                                                             for r in good):
                    out.append(f"class {c} in split {s} {sub}")
    return out
