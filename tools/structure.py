"""Measure csvr's structure against the layers written down in ``docs/architecture.md``.

    .venv/bin/python tools/structure.py            # the four counts and every wrong-way import
    .venv/bin/python tools/structure.py --edges    # also every import edge between layers

Read from the code alone (``ast``; nothing is imported): every ``import`` of a ``csvr`` module,
at module level or inside a function, is an edge from the importing module to the imported one
(``from csvr.pose import normalize`` is an edge to ``csvr.pose.normalize`` when that is a module,
else to ``csvr.pose``). The layers are the ``layers`` block of ``docs/architecture.md``: a module
belongs to the layer of its longest listed prefix, and may import its own layer and the layers
below. ``tests/test_architecture.py`` fails on any edge that runs the other way.

The other counts (what issue 13 measured):

* places that build a method: calls ``from_dict(<cls>.config_class, ...)``, the one way a method's
  typed config is made from a checkpoint's or a command line's ``model:`` section;
* checkpoint loaders: functions outside ``csvr/engine/checkpoint.py`` that read a checkpoint file
  as an untyped dict (``load_checkpoint``, ``latest_checkpoint``), and those that read it through
  the typed ``Checkpoint.load``;
* copies of the feature names: tuple / list / set literals holding two or more of
  ``fi``, ``fs``, ``fd``, ``backbone``; "needs poses" rules: those equal to ``{"fi", "fd"}``.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FEATURES = {"fi", "fs", "fd", "backbone"}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the ``csvr`` package: dotted name -> file."""
    out = {}
    for p in sorted((root / "csvr").rglob("*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(root: Path = ROOT) -> list[tuple[str, str, int]]:
    """(importer, imported, line) for every import of a csvr module inside csvr."""
    mods = modules(root)
    edges, seen = [], set()
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[: len(up) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for a in node.names:
                    full = f"{base}.{a.name}"
                    targets.append(full if full in mods else base)
            for t in targets:
                if t == "csvr" or t.startswith("csvr."):
                    r = _resolve(t, mods)
                    if r and r != mod and (mod, r, node.lineno) not in seen:
                        seen.add((mod, r, node.lineno))
                        edges.append((mod, r, node.lineno))
    return edges


def read_layers(doc: Path = ROOT / "docs" / "architecture.md") -> list[tuple[str, list[str]]]:
    """The ``layers`` block of the architecture document, lowest layer first."""
    m = re.search(r"```layers\n(.*?)```", doc.read_text(), re.S)
    if not m:
        raise SystemExit(f"{doc}: no ```layers block")
    layers = []
    for line in m.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, mods = line.partition(":")
            layers.append((name.strip(), mods.split()))
    return layers


def layer_of(mod: str, layers: list[tuple[str, list[str]]]) -> int | None:
    """Index of the layer whose longest prefix matches ``mod`` (``csvr`` alone matches only itself)."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            hit = mod == p or (p != "csvr" and mod.startswith(p + "."))
            if hit and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def wrong_way(edges, layers) -> list[tuple[str, str, int, str, str]]:
    out = []
    for a, b, line in edges:
        la, lb = layer_of(a, layers), layer_of(b, layers)
        if la is not None and lb is not None and lb > la:
            out.append((a, b, line, layers[la][0], layers[lb][0]))
    return out


def method_builds(root: Path = ROOT) -> list[str]:
    found = []
    for mod, path in modules(root).items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "from_dict"
                    and node.args and isinstance(node.args[0], ast.Attribute) and node.args[0].attr == "config_class"):
                found.append(f"{mod}:{node.lineno}")
    return found


def _callers(root: Path, test, skip: tuple[str, ...] = ("csvr.engine.checkpoint",)) -> list[str]:
    found = []
    for mod, path in modules(root).items():
        if mod in skip:
            continue
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if any(isinstance(n, ast.Call) and test(n.func) for n in ast.walk(fn)):
                    found.append(f"{mod}.{fn.name}")
    return sorted(set(found))


def checkpoint_loaders(root: Path = ROOT) -> list[str]:
    """Functions that read a checkpoint file as an untyped dict (``load_checkpoint``,
    ``latest_checkpoint``) outside ``csvr/engine/checkpoint.py``."""
    return _callers(root, lambda f: getattr(f, "id", getattr(f, "attr", "")) in ("load_checkpoint", "latest_checkpoint"))


def typed_checkpoint_loads(root: Path = ROOT) -> list[str]:
    """Functions that read a checkpoint through the typed ``Checkpoint.load``."""
    return _callers(root, lambda f: isinstance(f, ast.Attribute) and f.attr == "load"
                    and getattr(f.value, "id", "") == "Checkpoint")


def feature_name_copies(root: Path = ROOT) -> tuple[list[str], list[str]]:
    copies, pose_rules = [], []
    for mod, path in modules(root).items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                vals = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if len(vals & FEATURES) >= 2:
                    copies.append(f"{mod}:{node.lineno}")
                    if vals == {"fi", "fd"}:
                        pose_rules.append(f"{mod}:{node.lineno}")
    return copies, pose_rules


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this one)")
    ap.add_argument("--doc", type=Path, default=None, help="architecture document (default: ROOT/docs/architecture.md)")
    ap.add_argument("--edges", action="store_true", help="also list the edges between layers")
    args = ap.parse_args(argv)
    layers = read_layers(args.doc or args.root / "docs" / "architecture.md")
    edges = import_edges(args.root)
    bad = wrong_way(edges, layers)
    unplaced = sorted(m for m in modules(args.root) if layer_of(m, layers) is None)
    builds = method_builds(args.root)
    loaders = checkpoint_loaders(args.root)
    typed = typed_checkpoint_loads(args.root)
    copies, rules = feature_name_copies(args.root)
    pairs = sorted({(a, b) for a, b, _, _, _ in bad})
    print(f"import edges against the layers: {len(pairs)} (module pairs; {len(bad)} import statements)")
    by_layer = defaultdict(int)
    for a, b, _, la, lb in bad:
        by_layer[(la, lb)] += 1
    for (la, lb), n in sorted(by_layer.items()):
        print(f"  {la} -> {lb}: {n}")
    for a, b, line, _, _ in bad:
        print(f"    {a}:{line} -> {b}")
    if unplaced:
        print(f"modules in no layer: {', '.join(unplaced)}")
    print(f"places that build a method: {len(builds)}  ({', '.join(builds)})")
    print(f"functions reading a checkpoint as an untyped dict: {len(loaders)}  ({', '.join(loaders)})")
    print(f"functions reading a checkpoint through the typed Checkpoint: {len(typed)}  ({', '.join(typed)})")
    print(f"copies of the feature names: {len(copies)}  ({', '.join(copies)})")
    print(f"  of which 'needs poses' rules (fi, fd): {len(rules)}  ({', '.join(rules)})")
    if args.edges:
        seen = defaultdict(set)
        for a, b, _ in edges:
            la, lb = layer_of(a, layers), layer_of(b, layers)
            if la is not None and lb is not None and la != lb:
                seen[(layers[la][0], layers[lb][0])].add((a, b))
        for (la, lb), s in sorted(seen.items()):
            print(f"{la} -> {lb}: {len(s)}")
    return 1 if bad or unplaced else 0


if __name__ == "__main__":
    sys.exit(main())
