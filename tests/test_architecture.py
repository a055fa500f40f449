"""The structure written down in docs/architecture.md holds: no module imports against the
layers, every module has a layer, a method is built in one place and the feature names are
spelled in one place (measured by tools/structure.py, from the code alone)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _structure():
    spec = importlib.util.spec_from_file_location("csvr_structure", ROOT / "tools" / "structure.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


S = _structure()


def test_no_module_imports_against_the_written_layers():
    layers = S.read_layers()
    bad = S.wrong_way(S.import_edges(), layers)
    assert not bad, "imports against docs/architecture.md's layers:\n" + "\n".join(
        f"  {a}:{line} ({la}) imports {b} ({lb})" for a, b, line, la, lb in bad)


def test_every_module_has_a_layer():
    layers = S.read_layers()
    assert [m for m in S.modules() if S.layer_of(m, layers) is None] == []


def test_the_checker_sees_a_wrong_way_import(tmp_path):
    """A module of a lower layer importing a higher one, at module level or inside a function."""
    pkg = tmp_path / "csvr"
    (pkg / "data").mkdir(parents=True)
    (pkg / "engine").mkdir()
    for p in (pkg, pkg / "data", pkg / "engine"):
        (p / "__init__.py").write_text("")
    (pkg / "engine" / "trainer.py").write_text("from csvr.data import video\n")
    (pkg / "data" / "video.py").write_text("def f():\n    from csvr.engine.trainer import Trainer\n")
    layers = [("data", ["csvr.data"]), ("engine", ["csvr.engine"])]
    bad = S.wrong_way(S.import_edges(tmp_path), layers)
    assert [(a, b, line) for a, b, line, _, _ in bad] == [("csvr.data.video", "csvr.engine.trainer", 2)]


def test_one_place_builds_a_method_and_one_spells_the_feature_names():
    assert [b.split(":")[0] for b in S.method_builds()] == ["csvr.engine.model"]
    copies, pose_rules = S.feature_name_copies()
    assert {c.split(":")[0] for c in copies} == {"csvr.models.features"}
    assert len(pose_rules) == 1
    assert S.checkpoint_loaders() == ["csvr.engine.trainer._resume"]  # the engine's own resume


def _reachable(start: str, edges) -> set[str]:
    """Every csvr module ``start`` imports, directly or through the modules it imports."""
    graph: dict[str, set[str]] = {}
    for a, b, _ in edges:
        graph.setdefault(a, set()).add(b)
    seen, todo = set(), [start]
    while todo:
        for m in graph.get(todo.pop(), ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def test_methods_share_neutral_pieces_not_the_csvr_model():
    """IIC, CVRL, the method interface and the classifier take BackboneConfig, the heads and
    LossOutput from modules that import no method's model (csvr_model, the pose / video GANs)."""
    edges = S.import_edges()
    models = {"csvr.models.csvr_model", "csvr.models.pose_gan", "csvr.models.video_gan"}
    shared = ["csvr.models.backbones", "csvr.models.heads", "csvr.losses.output"]
    for mod in shared:
        assert not _reachable(mod, edges) & models, mod
    for mod in ["csvr.methods.iic", "csvr.methods.cvrl", "csvr.methods.base", "csvr.eval.classifier"]:
        assert "csvr.models.csvr_model" not in _reachable(mod, edges), mod
    direct = {(a, b) for a, b, _ in edges}
    assert {(m, s) for m in ("csvr.methods.iic", "csvr.methods.cvrl") for s in shared[:2]} <= direct


def _cycles(edges) -> list[list[str]]:
    """The strongly connected components of more than one module (each holds an import cycle)."""
    graph: dict[str, set[str]] = {}
    for a, b, _ in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_among_csvr_modules():
    """No module imports one that imports it back, directly or through others (imports inside
    functions count too)."""
    assert _cycles(S.import_edges()) == []


def test_the_cycle_check_sees_a_cycle_through_a_function_import():
    edges = [("csvr.a", "csvr.b", 1), ("csvr.b", "csvr.c", 1), ("csvr.c", "csvr.a", 9), ("csvr.c", "csvr.d", 2)]
    assert _cycles(edges) == [["csvr.a", "csvr.b", "csvr.c"]]
