"""UCF101 (official): ``classInd.txt``, ``trainlist0{1,2,3}.txt``, ``testlist0{1,2,3}.txt`` in the
root or in ``--splits DIR`` (e.g. ``ucfTrainTestlist/``), videos ``Class/v_Class_gXX_cYY.avi``.
UCF101's split files spell a few names differently from the files on disk (``HandStandPushups``);
a missing path is looked up case-insensitively before it is reported."""

from __future__ import annotations

from pathlib import Path

from csvr.data.layouts import register_layout
from csvr.data.layouts._common import Entry, Finder, LayoutOptions, LayoutScan, dedupe, find_split_dir, read_lines
from csvr.errors import DatasetError


def detect(root: Path) -> bool:
    return (root / "classInd.txt").exists() or (root / "ucfTrainTestlist" / "classInd.txt").exists()


@register_layout("ucf101", detect=detect, order=0)
def scan_ucf101(root: Path, opts: LayoutOptions) -> LayoutScan:
    sdir = find_split_dir(root, opts.split_dir, "classInd.txt", ["ucfTrainTestlist", "splits", "ucfTrainTestList"])
    classes_by_num: dict[int, str] = {}
    for n, line in read_lines(sdir / "classInd.txt"):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{sdir / 'classInd.txt'}:{n}: expected 'number ClassName', got {line!r}")
        classes_by_num[int(parts[0])] = parts[1]
    nums = sorted(classes_by_num)
    if nums != list(range(1, len(nums) + 1)):
        raise DatasetError(f"{sdir / 'classInd.txt'}: class numbers must be 1..N without gaps")
    classes = [classes_by_num[i] for i in nums]
    lower = {c.lower(): i for i, c in enumerate(classes)}
    finder = Finder(root, opts.allow_outside)
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
            for n, line in read_lines(f):
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
    return LayoutScan(sorted(entries.values(), key=lambda e: e.path), classes, splits, dedupe(problems))
