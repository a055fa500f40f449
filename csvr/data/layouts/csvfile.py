"""A CSV list: ``path,label[,split]`` (header optional); ``label`` is a class name or an integer;
``split`` is ``train``/``test``/``unused`` for split ``1``."""

from __future__ import annotations

import csv
from pathlib import Path

from csvr.data.layouts import register_layout
from csvr.data.layouts._common import Entry, Finder, LayoutOptions, LayoutScan
from csvr.errors import CsvrError, DatasetError, OutsideRootError


@register_layout("csv", order=3)
def scan_csv(root: Path, opts: LayoutOptions) -> LayoutScan:
    if opts.csv_path is None:
        raise DatasetError("--layout csv needs --csv FILE")
    csv_path, allow_outside = Path(opts.csv_path), opts.allow_outside
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
    finder = Finder(root, allow_outside)
    entries = []
    for n, row in rows:
        rel = row[0].replace("\\", "/")
        try:
            found = finder.find(rel, what="path in CSV")
        except CsvrError as e:
            # kept as a bad row (the others are indexed), so the CLI never sees the error to fix its
            # advice: name the command's flag here (the option of build_index is its namesake)
            if isinstance(e, OutsideRootError):
                e = e.with_advice("pass --allow-outside-root")
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
