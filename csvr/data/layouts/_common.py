"""What every dataset layout reader shares: the entries it finds, the scan it returns, the
options it may read, and the path helpers (split files are read line by line, paths are resolved
inside the root with a case-insensitive fallback)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from csvr.errors import DatasetError
from csvr.utils.io import resolve_inside

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")


def video_id(rel_path: str) -> str:
    """A video's id: its path relative to the root, without the suffix (caches are keyed by it)."""
    p = rel_path.replace(os.sep, "/")
    stem, dot, suffix = p.rpartition(".")
    return stem if dot and "/" not in suffix else p


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
    """What a layout reader found: the videos, the classes, the split names and the listed-but-unusable lines."""

    entries: list[Entry]
    classes: list[str]
    splits: list[str]
    problems: list[tuple[str, str]]  # (path or split-file line, reason): listed but unusable


@dataclass
class LayoutOptions:
    """The ``csvr prepare index`` options a layout reader may use (each reads its own)."""

    split_dir: str | os.PathLike | None = None  # ucf101, hmdb51: the split files' folder (--splits)
    csv_path: str | os.PathLike | None = None  # csv: the list (--csv)
    test_ratio: float | None = None  # folder: per-class fraction put in the test split
    test_list: str | os.PathLike | None = None  # folder: file listing the test videos
    unlabelled: bool = False  # folder: every video under the root, label -1
    allow_outside: bool = False  # paths may leave the root (--allow-outside-root)


def read_lines(path: Path) -> list[tuple[int, str]]:
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                out.append((n, line))
    return out


class Finder:
    """Resolve relative paths inside the root, with a case-insensitive fallback."""

    def __init__(self, root: Path, allow_outside: bool):
        self.root = root
        self.allow_outside = allow_outside
        self._dir_cache: dict[Path, dict[str, str]] = {}

    def find(self, rel: str, what: str = "path in split file") -> str | None:
        full = resolve_inside(self.root, rel, allow_outside=self.allow_outside, what=what)
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


def find_split_dir(root: Path, split_dir: str | os.PathLike | None, marker: str, candidates: list[str]) -> Path:
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


def is_video(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_SUFFIXES and p.is_file() and not p.name.startswith(".")


def walk_files(folder: Path) -> Iterator[Path]:
    """Every file below ``folder``, following symlinked folders (datasets are often assembled
    from links; ``Path.rglob`` does not follow them). Each real folder is walked once, and a link
    back to ``folder`` or above it is not followed (a loop)."""
    start = os.path.realpath(folder)
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen or (real != start and os.path.commonpath([real, start]) == real):
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in filenames:
            yield Path(dirpath) / name


def hash01(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / float(16 ** 12)


def dedupe(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen = set()
    out = []
    for it in items:
        if it not in seen:
            seen.add(it)
            out.append(it)
    return out
