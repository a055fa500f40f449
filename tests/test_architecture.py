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


def test_no_import_cycle_among_csvr_modules():
    """No module imports one that imports it back, directly or through others (imports inside
    functions count too), and no package does (the folders are the layers)."""
    edges = S.import_edges()
    assert S.module_cycles(edges) == []
    assert S.package_cycles(edges) == []


def _tiny_tree(root: Path) -> None:
    """csvr.a.x -> csvr.b.y -(in a function)-> csvr.a.z -(in a function)-> csvr.a.x: one module
    cycle of three, and csvr.a <-> csvr.b at package level; csvr.c imports into it from outside."""
    pkg = root / "csvr"
    for sub in ("a", "b"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from __future__ import annotations\nimport os\nfrom csvr.b import y\n")
    (pkg / "a" / "z.py").write_text("def f():\n    from . import x\n    import json\n")
    (pkg / "b" / "y.py").write_text("def g():\n    def h():\n        from csvr.a.z import f\n    return h\n")
    (pkg / "c.py").write_text("import csvr.a.x\n\nclass K:\n    import math\n\ntry:\n    import numpy\nexcept ImportError:\n    pass\n")


def test_the_checker_sees_import_cycles(tmp_path):
    _tiny_tree(tmp_path)
    edges = S.import_edges(tmp_path)
    assert S.module_cycles(edges) == [["csvr.a.x", "csvr.a.z", "csvr.b.y"]]
    assert S.package_cycles(edges) == [["csvr.a", "csvr.b"]]
    assert S.package_of("csvr.models.backbones.r3d") == "csvr.models" and S.package_of("csvr.config") == "csvr.config"
    assert S.cycles([("p", "q"), ("q", "p"), ("q", "r"), ("r", "r"), ("s", "t"), ("t", "u"), ("u", "s")]) == [
        ["s", "t", "u"], ["p", "q"]]


def test_the_checker_counts_imports_inside_functions(tmp_path):
    _tiny_tree(tmp_path)
    counts = S.import_counts(tmp_path)
    assert counts["csvr.a.x"] == S.ImportCount(csvr_in_function=0, csvr_module_level=1, all_in_function=0, all_module_level=2)
    assert counts["csvr.a.z"] == S.ImportCount(csvr_in_function=1, csvr_module_level=0, all_in_function=2, all_module_level=0)
    assert counts["csvr.b.y"] == S.ImportCount(csvr_in_function=1, csvr_module_level=0, all_in_function=1, all_module_level=0)
    assert counts["csvr.c"] == S.ImportCount(csvr_in_function=0, csvr_module_level=1, all_in_function=0, all_module_level=3)
    assert counts["csvr"] == counts["csvr.a"] == counts["csvr.b"] == S.ImportCount()
    assert sum(c.csvr_in_function for c in counts.values()) == 2
    assert sum(c.all_module_level for c in counts.values()) == 5


def test_the_new_counts_are_printed_after_the_old_ones(tmp_path, capsys):
    _tiny_tree(tmp_path)
    doc = tmp_path / "layers.md"
    doc.write_text("```layers\nall: csvr csvr.a csvr.b csvr.c\n```\n")
    assert S.main(["--root", str(tmp_path), "--doc", str(doc), "--cycles"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "import edges against the layers: 0 (module pairs; 0 import statements)"
    assert out[6:] == [
        "package-level import cycles: 1  (2 packages in them)",
        "    csvr.a, csvr.b",
        "module-level import cycles: 1  (3 modules in them)",
        "    csvr.a.x, csvr.a.z, csvr.b.y",
        "      csvr.a.x:3 -> csvr.b.y",
        "      csvr.a.z:2 -> csvr.a.x",
        "      csvr.b.y:3 -> csvr.a.z",
        "imports of csvr modules inside functions: 2  (at module level: 2)",
        "    csvr.a.z: 1",
        "    csvr.b.y: 1",
        "imports of any module inside functions: 3  (at module level: 5)",
        "    csvr.a.z: 2",
        "    csvr.b.y: 1",
    ]
