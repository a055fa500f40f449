"""Measure csvr's structure against the layers written down in ``docs/architecture.md``.

    .venv/bin/python tools/structure.py            # the four counts and every wrong-way import
    .venv/bin/python tools/structure.py --edges    # also every import edge between layers
    .venv/bin/python tools/structure.py --cycles   # also the import edges inside each module cycle
    .venv/bin/python tools/structure.py --root ../other-checkout   # measure another tree

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

And the import structure (issue 25):

* package-level import cycles: the import edges with each module collapsed to its package (its
  first two dotted names: ``csvr.data.datasets`` -> ``csvr.data``, ``csvr.models.backbones.r3d``
  -> ``csvr.models``; ``csvr.config`` stays itself), and the strongly connected components of
  more than one package;
* module-level import cycles: the strongly connected components of more than one module of the
  import edges themselves (imports inside functions included; a package's ``__init__``, which
  Python runs before any of its modules, is an edge only where a module imports it by name);
* imports inside functions: ``import`` / ``from ... import`` statements with a ``def`` around
  them (they run when the function is called, not when the module is loaded), against those
  without (module level, class bodies, ``if`` / ``try`` blocks at module level); counted for
  imports of csvr modules (relative imports included) and for all imports (``__future__``
  excepted), with the modules that import most inside functions.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

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


def package_of(mod: str) -> str:
    """The package a module is counted in for package-level cycles: its first two dotted names."""
    return ".".join(mod.split(".")[:2])


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one node of a directed graph, each sorted,
    largest first (ties by name). Iterative Tarjan, so deep graphs do not hit the recursion limit."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        if a != b:
            graph[a].add(b)
            graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, succ = work[-1]
            for nxt in succ:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return sorted(found, key=lambda c: (-len(c), c))


def package_cycles(edges) -> list[list[str]]:
    """Import cycles between csvr's packages (see :func:`package_of`)."""
    return cycles((package_of(a), package_of(b)) for a, b, _ in edges)


def module_cycles(edges) -> list[list[str]]:
    """Import cycles between csvr's modules, imports inside functions included."""
    return cycles((a, b) for a, b, _ in edges)


class ImportCount(NamedTuple):
    """Import statements of one module, by kind and place."""

    csvr_in_function: int = 0
    csvr_module_level: int = 0
    all_in_function: int = 0
    all_module_level: int = 0


def _imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``tree`` and whether a ``def`` encloses it."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        else:
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from _imports(child, inner)


def _imports_csvr(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "csvr"
    return any(a.name.split(".")[0] == "csvr" for a in node.names)


def import_counts(root: Path = ROOT) -> dict[str, ImportCount]:
    """Per csvr module: import statements inside functions and at module level, of csvr modules
    and of anything (``from __future__ import ...`` is not counted)."""
    out = {}
    for mod, path in modules(root).items():
        n = Counter()
        for node, in_fn in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            where = "in_function" if in_fn else "module_level"
            n[f"all_{where}"] += 1
            if _imports_csvr(node):
                n[f"csvr_{where}"] += 1
        out[mod] = ImportCount(**n)
    return out


def _print_import_counts(counts: dict[str, ImportCount], kind: str, label: str, top: int = 10) -> None:
    inside = sum(getattr(c, f"{kind}_in_function") for c in counts.values())
    outside = sum(getattr(c, f"{kind}_module_level") for c in counts.values())
    print(f"{label} inside functions: {inside}  (at module level: {outside})")
    ranked = sorted(((getattr(c, f"{kind}_in_function"), m) for m, c in counts.items()), key=lambda x: (-x[0], x[1]))
    for n, m in [r for r in ranked if r[0]][:top]:
        print(f"    {m}: {n}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this one)")
    ap.add_argument("--doc", type=Path, default=None, help="architecture document (default: ROOT/docs/architecture.md)")
    ap.add_argument("--edges", action="store_true", help="also list the edges between layers")
    ap.add_argument("--cycles", action="store_true", help="also list the import edges inside each module cycle")
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
    pkg_cycles, mod_cycles = package_cycles(edges), module_cycles(edges)
    print(f"package-level import cycles: {len(pkg_cycles)}  ({sum(map(len, pkg_cycles))} packages in them)")
    for c in pkg_cycles:
        print(f"    {', '.join(c)}")
    print(f"module-level import cycles: {len(mod_cycles)}  ({sum(map(len, mod_cycles))} modules in them)")
    for c in mod_cycles:
        print(f"    {', '.join(c)}")
        if args.cycles:
            members = set(c)
            for a, b, line in edges:
                if a in members and b in members:
                    print(f"      {a}:{line} -> {b}")
    counts = import_counts(args.root)
    _print_import_counts(counts, "csvr", "imports of csvr modules")
    _print_import_counts(counts, "all", "imports of any module")
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
