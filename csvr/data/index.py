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

    A video that could not be indexed keeps its place with the reason (so a re-run does not
    probe it again unless the file changes, and nothing is lost)::

        {"id": "...", "path": "...", "label": 3, "class_name": "...", "splits": {...},
         "error": "cannot open: Invalid data found when processing input", "size": 0, ...}

    ``id`` is the path relative to the root without its suffix (caches are keyed by it);
    ``label`` is 0-based (UCF101's classInd is 1-based: label = classInd number - 1) and -1 for
    unlabelled videos; split membership is ``train``, ``test`` or ``unused`` per split name.

Layouts
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

Paths in split files, CSVs and manifests may not point outside the dataset root
(``--allow-outside-root`` lifts that).
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

from csvr import __version__
from csvr.errors import CsvrError, DatasetError, VideoError
from csvr.utils.io import atomic_write, resolve_inside

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "csvr-manifest"
MANIFEST_VERSION = 1
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")
Layout = Literal["ucf101", "hmdb51", "folder", "csv"]
Subset = Literal["train", "test", "unused", "all"]


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

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
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


@dataclass
class Entry:
    """A video a layout reader found: where it is and what the split files say about it."""

    path: str  # relative to the root, forward slashes
    label: int
    class_name: str | None
    splits: dict[str, str]

    @property
    def id(self) -> str:
        return video_id(self.path)


@dataclass
class LayoutScan:
    entries: list[Entry]
    classes: list[str]
    splits: list[str]
    problems: list[tuple[str, str]]  # (path or split-file line, reason): listed but unusable


def video_id(rel_path: str) -> str:
    p = rel_path.replace(os.sep, "/")
    stem, dot, suffix = p.rpartition(".")
    return stem if dot and "/" not in suffix else p


class Manifest:
    """A loaded manifest: header, good records, bad records, safe path resolution."""

    def __init__(self, header: dict, records: list[VideoRecord], path: Path | None = None,
                 root: str | os.PathLike | None = None, allow_outside_root: bool = False):
        self.header = header
        self.path = path
        self.all_records = records
        self.records = [r for r in records if r.error is None]
        self.errors = [r for r in records if r.error is not None]
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

    def write(self, path: str | os.PathLike | None = None) -> None:
        write_manifest(path or self.path, self.header, self.all_records)


def write_manifest(path: str | os.PathLike, header: dict, records: Iterable[VideoRecord]) -> None:
    """Write header + records atomically (temp file + rename)."""
    with atomic_write(path, "w") as f:
        f.write(json.dumps(header, separators=(",", ":")) + "\n")
        for r in records:
            f.write(json.dumps(r.to_json(), separators=(",", ":")) + "\n")


def load_manifest(path: str | os.PathLike, root: str | os.PathLike | None = None,
                  allow_outside_root: bool = False) -> Manifest:
    """Read a manifest written by ``csvr prepare index``; ``root`` overrides the stored root."""
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
    return Manifest(header, records, path=path, root=root, allow_outside_root=allow_outside_root)


# ---------------------------------------------------------------------------- layout readers
def _read_lines(path: Path) -> list[tuple[int, str]]:
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                out.append((n, line))
    return out


class _Finder:
    """Resolve relative paths inside the root, with a case-insensitive fallback."""

    def __init__(self, root: Path, allow_outside: bool):
        self.root = root
        self.allow_outside = allow_outside
        self._dir_cache: dict[Path, dict[str, str]] = {}

    def find(self, rel: str) -> str | None:
        full = resolve_inside(self.root, rel, allow_outside=self.allow_outside, what="path in split file")
        if full.is_file():
            return rel.replace(os.sep, "/")
        parts = Path(rel).parts
        cur = self.root
        out = []
        for part in parts:
            listing = self._dir_cache.get(cur)
            if listing is None:
                try:
                    listing = {name.lower(): name for name in os.listdir(cur)}
                except OSError:
                    return None
                self._dir_cache[cur] = listing
            name = listing.get(part.lower())
            if name is None:
                return None
            out.append(name)
            cur = cur / name
        return "/".join(out) if cur.is_file() else None


def _find_split_dir(root: Path, split_dir: str | os.PathLike | None, marker: str, candidates: list[str]) -> Path:
    if split_dir is not None:
        d = Path(split_dir)
        if not d.is_absolute() and not d.exists():
            d = root / d
        if not d.is_dir():
            raise DatasetError(f"split folder not found: {split_dir}")
        return d
    for c in [""] + candidates:
        d = root / c
        if (d / marker).exists() or ("*" in marker and any(d.glob(marker))):
            return d
    raise DatasetError(f"no {marker} found in {root} or {', '.join(str(root / c) for c in candidates)} "
                       "(pass --splits DIR)")


def scan_ucf101(root: Path, split_dir=None, allow_outside=False) -> LayoutScan:
    sdir = _find_split_dir(root, split_dir, "classInd.txt", ["ucfTrainTestlist", "splits", "ucfTrainTestList"])
    classes_by_num: dict[int, str] = {}
    for n, line in _read_lines(sdir / "classInd.txt"):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{sdir / 'classInd.txt'}:{n}: expected 'number ClassName', got {line!r}")
        classes_by_num[int(parts[0])] = parts[1]
    nums = sorted(classes_by_num)
    if nums != list(range(1, len(nums) + 1)):
        raise DatasetError(f"{sdir / 'classInd.txt'}: class numbers must be 1..N without gaps")
    classes = [classes_by_num[i] for i in nums]
    lower = {c.lower(): i for i, c in enumerate(classes)}
    finder = _Finder(root, allow_outside)
    entries: dict[str, Entry] = {}
    problems: list[tuple[str, str]] = []
    splits = []
    for s in ("1", "2", "3"):
        for kind in ("train", "test"):
            f = sdir / f"{kind}list0{s}.txt"
            if not f.exists():
                continue
            if s not in splits:
                splits.append(s)
            for n, line in _read_lines(f):
                parts = line.split()
                rel = parts[0]
                cls = rel.replace("\\", "/").split("/")[0]
                if cls.lower() not in lower:
                    problems.append((f"{f.name}:{n} {rel}", f"unknown class {cls!r} (not in classInd.txt)"))
                    continue
                label = lower[cls.lower()]
                if kind == "train" and len(parts) > 1:
                    if not parts[1].isdigit() or int(parts[1]) - 1 != label:
                        problems.append((f"{f.name}:{n} {rel}", f"label {parts[1]} disagrees with classInd ({label + 1})"))
                        continue
                found = finder.find(rel)
                if found is None:
                    problems.append((rel, f"listed in {f.name} but not found under the root"))
                    continue
                e = entries.get(found)
                if e is None:
                    e = entries[found] = Entry(found, label, classes[label], {})
                e.splits[s] = kind
    if not splits:
        raise DatasetError(f"no trainlist0N.txt / testlist0N.txt in {sdir}")
    for e in entries.values():
        for s in splits:
            e.splits.setdefault(s, "unused")
    return LayoutScan(sorted(entries.values(), key=lambda e: e.path), classes, splits, _dedupe(problems))


def scan_hmdb51(root: Path, split_dir=None, allow_outside=False) -> LayoutScan:
    sdir = _find_split_dir(root, split_dir, "*_test_split1.txt",
                           ["testTrainMulti_7030_splits", "splits", "test_train_splits"])
    files = sorted(sdir.glob("*_test_split[123].txt"))
    rx = re.compile(r"^(.*)_test_split([123])\.txt$")
    per_class: dict[str, dict[str, Path]] = {}
    for f in files:
        m = rx.match(f.name)
        if m:
            per_class.setdefault(m.group(1), {})[m.group(2)] = f
    if not per_class:
        raise DatasetError(f"no <class>_test_split{{1,2,3}}.txt files in {sdir}")
    classes = sorted(per_class)
    splits = sorted({s for d in per_class.values() for s in d})
    finder = _Finder(root, allow_outside)
    entries: dict[str, Entry] = {}
    problems: list[tuple[str, str]] = []
    names = {"1": "train", "2": "test", "0": "unused"}
    for label, cls in enumerate(classes):
        for s, f in sorted(per_class[cls].items()):
            for n, line in _read_lines(f):
                parts = line.split()
                if len(parts) != 2 or parts[1] not in names:
                    problems.append((f"{f.name}:{n}", f"expected 'video.avi 0|1|2', got {line!r}"))
                    continue
                found = finder.find(f"{cls}/{parts[0]}")
                if found is None:
                    problems.append((f"{cls}/{parts[0]}", f"listed in {f.name} but not found under the root"))
                    continue
                e = entries.get(found)
                if e is None:
                    e = entries[found] = Entry(found, label, cls, {})
                e.splits[s] = names[parts[1]]
    for e in entries.values():
        for s in splits:
            e.splits.setdefault(s, "unused")
    return LayoutScan(sorted(entries.values(), key=lambda e: e.path), classes, splits, _dedupe(problems))


def _is_video(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_SUFFIXES and p.is_file() and not p.name.startswith(".")


def _hash01(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / float(16 ** 12)


def scan_folder(root: Path, test_ratio: float | None = None, test_list: str | os.PathLike | None = None,
                unlabelled: bool = False, allow_outside: bool = False) -> LayoutScan:
    problems: list[tuple[str, str]] = []
    if unlabelled:
        vids = sorted(p for p in root.rglob("*") if _is_video(p))
        entries = [Entry(p.relative_to(root).as_posix(), -1, None, {"1": "train"}) for p in vids]
        return LayoutScan(entries, [], ["1"], problems)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DatasetError(f"{root} has no class folders (expected <root>/<class>/<video>; "
                           "use --unlabelled for a flat folder of videos)")
    test_set: set[str] = set()
    if test_list is not None:
        tl = Path(test_list)
        if not tl.is_file():
            raise DatasetError(f"--test-list file not found: {test_list}")
        for n, line in _read_lines(tl):
            rel = line.split()[0].replace("\\", "/")
            resolve_inside(root, rel, allow_outside=allow_outside, what="path in test list")
            test_set.add(rel)
    if test_ratio is not None and not 0.0 <= test_ratio < 1.0:
        raise DatasetError(f"--test-ratio must be in [0, 1), got {test_ratio}")
    entries = []
    for label, cls in enumerate(classes):
        vids = sorted(p.relative_to(root).as_posix() for p in (root / cls).rglob("*") if _is_video(p))
        chosen: set[str] = set()
        if test_ratio:
            ranked = sorted(vids, key=lambda r: _hash01(r))
            chosen = set(ranked[: int(round(test_ratio * len(vids)))])
        for rel in vids:
            split = "test" if (rel in test_set or rel in chosen) else "train"
            entries.append(Entry(rel, label, cls, {"1": split}))
    known = {e.path for e in entries}
    for rel in sorted(test_set - known):
        problems.append((rel, "listed in --test-list but not found under the root"))
    return LayoutScan(entries, classes, ["1"], problems)


def scan_csv(csv_path: Path, root: Path, allow_outside: bool = False) -> LayoutScan:
    if not csv_path.is_file():
        raise DatasetError(f"CSV manifest not found: {csv_path}")
    rows = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not row or not row[0] or row[0].startswith("#"):
                continue
            if n == 1 and row[0].lower() == "path":
                continue
            rows.append((n, row))
    problems: list[tuple[str, str]] = []
    labels_raw = [r[1] if len(r) > 1 else "" for _, r in rows]
    numeric = all(x.lstrip("-").isdigit() for x in labels_raw if x)
    if numeric:
        nums = sorted({int(x) for x in labels_raw if x and int(x) >= 0})
        classes = [str(x) for x in range(max(nums) + 1)] if nums else []
    else:
        classes = sorted({x for x in labels_raw if x})
    index = {c: i for i, c in enumerate(classes)}
    finder = _Finder(root, allow_outside)
    entries = []
    for n, row in rows:
        rel = row[0].replace("\\", "/")
        try:
            found = finder.find(rel)
        except CsvrError as e:
            problems.append((f"{csv_path.name}:{n} {rel}", str(e)))
            continue
        if found is None:
            problems.append((rel, f"listed in {csv_path.name} but not found under the root"))
            continue
        lab = row[1] if len(row) > 1 else ""
        label = (int(lab) if numeric else index[lab]) if lab else -1
        split = (row[2].lower() if len(row) > 2 and row[2] else "train")
        if split not in ("train", "test", "unused"):
            problems.append((f"{csv_path.name}:{n} {rel}", f"split must be train/test/unused, got {row[2]!r}"))
            continue
        entries.append(Entry(found, label, classes[label] if label >= 0 else None, {"1": split}))
    return LayoutScan(entries, classes, ["1"], problems)


def detect_layout(root: Path) -> str:
    if (root / "classInd.txt").exists() or (root / "ucfTrainTestlist" / "classInd.txt").exists():
        return "ucf101"
    if any(root.glob("testTrainMulti_7030_splits/*_test_split1.txt")) or any(root.glob("*_test_split1.txt")):
        return "hmdb51"
    return "folder"


# ---------------------------------------------------------------------------- probing
def _probe_entry(args: tuple[str, str]) -> dict:
    """Worker: probe one video; never raises (errors come back as data)."""
    full, rel = args
    from csvr.data.video import probe

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

    def lines(self, max_bad: int = 50) -> list[str]:
        out = [f"manifest: {self.manifest}",
               f"videos: {self.indexed} indexed ({self.reused} reused from the previous manifest, "
               f"{self.probed} probed now), {len(self.bad)} bad, in {self.seconds:.1f} s"]
        if self.short:
            out.append(f"{self.short} videos are shorter than one clip span; they are looped or padded at "
                       "training time (data.short_video)")
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
    from csvr.utils.parallel import default_workers, imap_progress

    t0 = time.time()
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetError(f"dataset root not found or not a folder: {root}")
    out = Path(out)
    if layout == "auto":
        layout = "csv" if csv_path else detect_layout(root)
    if layout == "ucf101":
        scan = scan_ucf101(root, split_dir, allow_outside_root)
    elif layout == "hmdb51":
        scan = scan_hmdb51(root, split_dir, allow_outside_root)
    elif layout == "folder":
        scan = scan_folder(root, test_ratio, test_list, unlabelled, allow_outside_root)
    elif layout == "csv":
        if csv_path is None:
            raise DatasetError("--layout csv needs --csv FILE")
        scan = scan_csv(Path(csv_path), root, allow_outside_root)
    else:
        raise DatasetError(f"unknown layout {layout!r} (choose ucf101, hmdb51, folder, csv or auto)")
    if not scan.entries and not scan.problems:
        raise DatasetError(f"no videos found under {root} for layout {layout}")

    previous: dict[str, VideoRecord] = {}
    if out.exists():
        try:
            old = load_manifest(out)
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
    write_manifest(out, header, final)
    bad = [(r.path, r.error) for r in final if r.error] + list(scan.problems)
    short = sum(1 for r in final if r.error is None and r.num_frames < clip_span)
    return IndexSummary(out, len(scan.entries), sum(r.error is None for r in final), reused, len(to_probe),
                        bad, short, time.time() - t0)


def _dedupe(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen = set()
    out = []
    for it in items:
        if it not in seen:
            seen.add(it)
            out.append(it)
    return out
