"""Folder per class: ``<root>/<class>/<video>`` (any depth below the class folder); labels follow
the sorted class names; split ``1``: every video is ``train`` unless ``--test-ratio`` (a
deterministic, per-class hash-ordered fraction goes to ``test``) or ``--test-list FILE`` (relative
paths, one a line) says otherwise. ``--unlabelled`` indexes every video under the root with label
-1 (for pretraining only). The layout ``auto`` falls back to when no other one is detected."""

from __future__ import annotations

from pathlib import Path

from csvr.data.layouts import register_layout
from csvr.data.layouts._common import (Entry, LayoutOptions, LayoutScan, hash01, is_video, read_lines,
                                       walk_files)
from csvr.errors import DatasetError
from csvr.utils.io import resolve_inside


def ratio_test_paths(paths: list[str], ratio: float) -> set[str]:
    """The ``round(ratio x len(paths))`` paths of one class that go to the test split: the first in
    a hash order of the path (deterministic, and stable when other files come or go).
    ``csvr prepare index`` applies it again over the readable videos once bad files have dropped
    out, so the ratio holds over what can be trained and tested on."""
    ranked = sorted(paths, key=lambda r: hash01(r))
    return set(ranked[: int(round(ratio * len(paths)))])


def read_test_list(root: Path, test_list: str | Path, allow_outside: bool = False) -> set[str]:
    """The relative paths of ``--test-list`` (first word of each line)."""
    tl = Path(test_list)
    if not tl.is_file():
        raise DatasetError(f"--test-list file not found: {test_list}")
    out: set[str] = set()
    for n, line in read_lines(tl):
        rel = line.split()[0].replace("\\", "/")
        resolve_inside(root, rel, allow_outside=allow_outside, what="path in test list")
        out.add(rel)
    return out


@register_layout("folder", order=2)
def scan_folder(root: Path, opts: LayoutOptions) -> LayoutScan:
    test_ratio, test_list, allow_outside = opts.test_ratio, opts.test_list, opts.allow_outside
    problems: list[tuple[str, str]] = []
    if opts.unlabelled:
        vids = sorted(p for p in walk_files(root) if is_video(p))
        entries = [Entry(p.relative_to(root).as_posix(), -1, None, {"1": "train"}) for p in vids]
        return LayoutScan(entries, [], ["1"], problems)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DatasetError(f"{root} has no class folders (expected <root>/<class>/<video>; "
                           "use --unlabelled for a flat folder of videos)")
    test_set = read_test_list(root, test_list, allow_outside) if test_list is not None else set()
    if test_ratio is not None and not 0.0 <= test_ratio < 1.0:
        raise DatasetError(f"--test-ratio must be in [0, 1), got {test_ratio}")
    entries = []
    for label, cls in enumerate(classes):
        vids = sorted(p.relative_to(root).as_posix() for p in walk_files(root / cls) if is_video(p))
        chosen = ratio_test_paths(vids, test_ratio) if test_ratio else set()
        for rel in vids:
            split = "test" if (rel in test_set or rel in chosen) else "train"
            entries.append(Entry(rel, label, cls, {"1": split}))
    known = {e.path for e in entries}
    for rel in sorted(test_set - known):
        problems.append((rel, "listed in --test-list but not found under the root"))
    return LayoutScan(entries, classes, ["1"], problems)
