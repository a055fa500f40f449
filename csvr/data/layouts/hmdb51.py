"""HMDB51 (official): ``testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`` with lines
``video.avi 1|2|0`` (1 = train, 2 = test, 0 = unused), videos ``<class>/<video>.avi``; labels
follow the sorted class names."""

from __future__ import annotations

import re
from pathlib import Path

from csvr.data.layouts import register_layout
from csvr.data.layouts._common import Entry, Finder, LayoutOptions, LayoutScan, dedupe, find_split_dir, read_lines
from csvr.errors import DatasetError


def detect(root: Path) -> bool:
    return any(root.glob("testTrainMulti_7030_splits/*_test_split1.txt")) or any(root.glob("*_test_split1.txt"))


@register_layout("hmdb51", detect=detect, order=1)
def scan_hmdb51(root: Path, opts: LayoutOptions) -> LayoutScan:
    sdir = find_split_dir(root, opts.split_dir, "*_test_split1.txt",
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
    finder = Finder(root, opts.allow_outside)
    entries: dict[str, Entry] = {}
    problems: list[tuple[str, str]] = []
    names = {"1": "train", "2": "test", "0": "unused"}
    for label, cls in enumerate(classes):
        for s, f in sorted(per_class[cls].items()):
            for n, line in read_lines(f):
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
    return LayoutScan(sorted(entries.values(), key=lambda e: e.path), classes, splits, dedupe(problems))
