"""``csvr report --study`` (issue 16 item 5): the replication study's section without a browser:
every figure present and labelled, one error bar per row with a CI, the table's numbers equal to
the JSON's, a partial study (missing measures, rows, claims) rendered as "not run yet". The study
files are written by hand in csvr.eval.study's format (the report only reads them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from csvr.cli import main
from csvr.eval.plots import GROUP_COLORS, NOT_RUN, SERIES_COLORS
from csvr.eval.report import build_report
from csvr.eval.study import FROZEN, MEASURES

from test_eval_report_structure import _Page, _axes  # the HTML / PNG readers of the report's structure test


def _row(name, method, budget, seeds, base, control=None):
    """A study row: measure k of MEASURES at ``base + 3 k`` percent, CI +- (2 + k); frozen ones with
    a control at ``control`` and the gain = mean - control, CI +- 4."""
    r = {"name": name, "slug": name.replace(" ", "-"), "method": method, "feature": "fi", "budget": budget,
         "seeds": seeds, "n_test": 180}
    for k, m in enumerate(MEASURES):
        v = round(base + 3 * k + 0.37, 2)
        r[m], r[f"{m}_ci"] = v, [round(v - 2 - k, 2), round(v + 2 + k, 2)]
        if m in FROZEN and control is not None:
            r[f"{m}_control"] = control
            r[f"{m}_gain"] = round(v - control, 2)
            r[f"{m}_gain_ci"] = [round(v - control - 4, 2), round(v - control + 4, 2)]
    return r


def _study() -> dict:
    rows = [_row("f_i full CSVR", "csvr", "long", [0, 1, 2], 60.0, control=30.0),
            _row("CVRL", "cvrl", "long", [0], 50.0, control=30.0),
            _row("random init f_i network", "scratch", "none", [0, 1, 2], 31.0),
            _row("f_i full CSVR", "csvr", "short", [0, 1, 2], 45.0, control=30.0)]
    claims = [{"claim": "CSVR > CVRL at equal wall-clock", "answer": "yes",
               "measures": {"finetune_top1@long": {"diff": 10.0, "ci": [2.5, 17.25], "seeds": [0], "answer": "yes"}}},
              {"claim": "AdaIN > Concat", "answer": "not measured", "measures": {}}]
    goals = [{"goal": "f_i full CSVR (long): frozen kNN >= control + 10 points, CI excluding 0", "gain": 30.37,
              "ci": [26.37, 34.37], "answer": "yes"},
             {"goal": "CSVR f_i finetuned with 10 % labels > the f_i network from random weights, CI excluding 0",
              "diff": 29.0, "ci": [20.0, 38.0], "seeds": [0, 1, 2], "answer": "yes", "short": None}]
    return {"format": "csvr-study", "version": 1, "units": "percent", "date": "2026-12-01T20:00:00+00:00",
            "n_units": 10, "rows": rows, "claims": claims, "goals": goals, "table": "| row |"}


def _render(tmp_path: Path, doc: dict, name: str = "study") -> dict:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    build_report([], tmp_path / name, study=path)
    page = _Page()
    page.feed((tmp_path / name / "report.html").read_text())
    return page.sections["Replication study"]


def _num(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d", text)]


def _render_hand_computed(tmp_path: Path, test_name: str) -> dict:
    """Run test_study's hand-computed study ``test_name`` (it writes tmp_path/res/study.json
    through benchmarks/study.py) and render it: the report's "Replication study" section."""
    import importlib.util
    import sys

    import test_study

    spec = importlib.util.spec_from_file_location("study_bench", Path(test_study.ROOT) / "benchmarks" / "study.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["study_bench"] = mod
    spec.loader.exec_module(mod)
    getattr(test_study, test_name)(mod, tmp_path)
    build_report([], tmp_path / "out", study=tmp_path / "res" / "study.json")
    page = _Page()
    page.feed((tmp_path / "out" / "report.html").read_text())
    return page.sections["Replication study"]


def test_study_section_structure_and_numbers(tmp_path):
    doc = _study()
    sec = _render(tmp_path, doc)
    order = [doc["rows"][i] for i in (2, 3, 0, 1)]  # budgets none, short, long; the study's order within one
    main_t, frozen_t, claims_t, goals_t = sec["tables"]
    head = main_t[0]
    assert head[:6] == ["row", "method", "feature", "budget", "seeds", "test videos"]
    for r, cells in zip(order, main_t[1:]):
        assert cells[0] == r["name"] and cells[3] == r["budget"] and cells[5] == "180"
        assert cells[4] == f"{len(r['seeds'])} ({', '.join(map(str, r['seeds']))})"
        for k, m in enumerate(MEASURES):  # mean [lo, hi] to the JSON's value at one decimal
            assert _num(cells[6 + k]) == [round(r[m], 1), round(r[f"{m}_ci"][0], 1), round(r[f"{m}_ci"][1], 1)]
    for r, cells in zip(order, frozen_t[1:]):
        for k, m in enumerate(FROZEN):
            if r["method"] == "scratch":
                assert cells[2 + 2 * k] == cells[3 + 2 * k] == "no control"  # measured; it is the control
            else:
                assert _num(cells[2 + 2 * k]) == [r[f"{m}_control"]]
                assert _num(cells[3 + 2 * k]) == [round(r[f"{m}_gain"], 1)] + [round(c, 1) for c in r[f"{m}_gain_ci"]]
    assert claims_t[1][:3] == ["CSVR > CVRL at equal wall-clock", "yes", "+10.0 [+2.5, +17.2] (yes)"]
    assert claims_t[2][1] == NOT_RUN and claims_t[2][2] == NOT_RUN
    assert goals_t[1][1:3] == ["yes", "+30.4 [+26.4, +34.4]"] and goals_t[2][1:4] == ["yes", "+29.0 [+20.0, +38.0]",
                                                                                     NOT_RUN]
    # one chart per measure, then the gains' chart (a panel per frozen measure)
    figs = [_axes(im["src"]) for im in sec["images"]]
    assert len(figs) == len(MEASURES) + 1
    labels = [f"{r['name']}" for r in order]
    for m, fig in zip(MEASURES, figs):
        (ax,) = fig["axes"]
        assert ax["ylabel"].endswith("(%)") and ax["xlabel"] == "row (grouped by pretraining budget)"
        assert ax["xticklabels"] == labels
        assert ax["errorbar_points"] == 4  # every row has a CI
        legend = {e["label"]: e["color"] for e in ax["legend"]}
        assert set(legend) == {"budget none", "budget short", "budget long"} | ({"random-init control"} if m in FROZEN
                                                                               else set())
        assert [legend[f"budget {b}"] for b in ("none", "short", "long")] == list(SERIES_COLORS[:3])
        assert not set(legend.values()) & {c for c in GROUP_COLORS.values() if c != "#000000"}
    gains = figs[-1]["axes"]
    assert len(gains) == len(FROZEN)
    for ax in gains:
        assert "gain" in ax["ylabel"] and ax["errorbar_points"] == 3  # every trained row's gain has a CI
        assert ax["xticklabels"] == labels[1:]  # the random-init row is the control: not a bar of its own


def test_partial_study_renders_not_run_yet(tmp_path):
    doc = _study()
    del doc["rows"][1]  # CVRL not finished
    for r in doc["rows"]:
        for k in ("finetune10_top1", "finetune10_top1_ci"):
            r[k] = None  # no 10 % finetuning yet
    doc["rows"][0].pop("linear_top1_ci")  # a mean without its CI: a bar without an error bar
    del doc["rows"][0]["r1"], doc["rows"][0]["r1_ci"], doc["rows"][0]["r1_gain"]  # not measured in this row
    del doc["claims"], doc["goals"]
    sec = _render(tmp_path, doc)
    main_t = sec["tables"][0]
    col = main_t[0].index("finetune top-1, 10 % labels (%)")
    assert all(cells[col] == NOT_RUN for cells in main_t[1:])
    full_long = next(c for c in main_t[1:] if c[0] == "f_i full CSVR" and c[3] == "long")
    assert full_long[main_t[0].index("R@1 (%)")] == NOT_RUN
    assert _num(full_long[main_t[0].index("linear probe top-1 (%)")]) == [63.4]
    figs = {im["alt"].split(";")[0]: _axes(im["src"]) for im in sec["images"]}
    assert "replication study: finetune top-1, 10 % labels" not in figs  # no chart without data, a note instead
    gain_colors = {e["label"]: e["color"] for e in figs["replication study: gain over the random-init control "
                                                        "(frozen measures: random features"]["axes"][0]["legend"]}
    assert gain_colors == {"budget short": SERIES_COLORS[1], "budget long": SERIES_COLORS[2]}  # same colour per budget
    lin = figs["replication study: linear probe top-1"]["axes"][0]
    assert lin["errorbar_points"] == 2  # 3 rows, one without a CI
    assert lin["xticklabels"] == ["random init f_i network", "f_i full CSVR", "f_i full CSVR"]
    r1 = figs["replication study: R@1"]["axes"][0]
    assert r1["errorbar_points"] == 2 and f"f_i full CSVR ({NOT_RUN})" in r1["xticklabels"]
    html = (tmp_path / "study" / "report.html").read_text()
    assert f"finetune top-1, 10 % labels: {NOT_RUN}" in html and f"Claims and goals: {NOT_RUN}." in html


def test_empty_study_and_cli(tmp_path, capsys):
    sec = _render(tmp_path, {"rows": []}, name="empty")
    assert sec["images"] == [] and len(sec["tables"]) == 1
    path = tmp_path / "study.json"
    path.write_text(json.dumps(_study()))
    assert main(["report", "--study", str(path), "--out", str(tmp_path / "cli")]) == 0
    md = (tmp_path / "cli" / "report.md").read_text()
    assert "## Replication study" in md and "![replication study: kNN top-1" in md
    assert len(list((tmp_path / "cli" / "images").glob("study-*.png"))) == len(MEASURES) + 1
    for argv, msg in ((["report", "--study", str(tmp_path / "nope.json")], "no such file"),
                      (["report"], "--study"),
                      (["report", str(tmp_path), "--study", str(path)], "--out is required")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.startswith("csvr: error:") and msg in err, err


def test_what_study_py_writes_renders(tmp_path):
    """benchmarks/study.py's own aggregation (on test_study's hand-made units) into the section:
    the same numbers, one error bar per row with a CI, the claim's answer."""
    import importlib.util
    import sys

    import test_study

    spec = importlib.util.spec_from_file_location("study_bench", Path(test_study.ROOT) / "benchmarks" / "study.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["study_bench"] = mod
    spec.loader.exec_module(mod)
    test_study.test_aggregation_on_hand_made_units(mod, tmp_path)  # writes tmp_path/res/study.json
    path = tmp_path / "res" / "study.json"
    doc = json.loads(path.read_text())
    build_report([], tmp_path / "out", study=path)
    page = _Page()
    page.feed((tmp_path / "out" / "report.html").read_text())
    sec = page.sections["Replication study"]
    main_t = sec["tables"][0]
    assert [c[0] for c in main_t[1:]] == [r["name"] for r in doc["rows"]]
    for r, cells in zip(doc["rows"], main_t[1:]):
        for m in MEASURES:
            cell = cells[main_t[0].index(next(h for h in main_t[0] if h.startswith(
                {"knn_top1": "kNN", "linear_top1": "linear", "finetune_top1": "finetune top-1 (",
                 "finetune10_top1": "finetune top-1, 10", "r1": "R@1"}[m])))]
            assert _num(cell) == [round(r[m], 1)] + [round(c, 1) for c in r[f"{m}_ci"]]
    figs = [_axes(im["src"]) for im in sec["images"]]
    assert len(figs) == len(MEASURES) + 1
    for fig in figs[:-1]:
        assert fig["axes"][0]["errorbar_points"] == len(doc["rows"])
    claim = next(c for c in sec["tables"][2][1:] if c[0].startswith("full CSVR > f_i without"))
    assert claim[1] == "yes"


def test_finetune_gains_panel_leaves_out_rows_without_a_control(tmp_path):
    """Finetuning gains (over the scratch run of the same network) get a panel; a row that was
    finetuned but has no scratch control (Concat, f_d only) is left out of it, not drawn as
    "not run yet"; the frozen panels keep every trained row."""
    doc = _study()
    csvr_long, cvrl = doc["rows"][0], doc["rows"][1]
    csvr_long.update({"finetune10_top1_control": 40.0, "finetune10_top1_gain": 29.37,
                      "finetune10_top1_gain_ci": [20.0, 38.0], "finetune10_top1_gain_seeds": [0, 1, 2]})
    assert "finetune10_top1_gain" not in cvrl
    sec = _render(tmp_path, doc)
    gains = _axes(sec["images"][-1]["src"])["axes"]
    assert len(gains) == len(FROZEN) + 1
    ft = next(ax for ax in gains if "10 %" in ax["ylabel"])
    assert ft["errorbar_points"] == 1 and "CVRL" not in " ".join(ft["xticklabels"])
    assert not any(NOT_RUN in t for t in ft["xticklabels"])
    knn = gains[0]
    assert knn["errorbar_points"] == 3 and any("CVRL" in t for t in knn["xticklabels"])
    controls = sec["tables"][1]
    assert any("finetune top-1, 10" in h for h in controls[0])


def test_growth_between_budgets_renders(tmp_path):
    """The short -> long table: test_study's hand-computed growth (kNN gain +16.7 -> +50.0 points,
    long - short +33.3 on one seed) reaches the page with its answer."""
    sec = _render_hand_computed(tmp_path, "test_growth_from_the_short_to_the_long_budget_is_paired_by_seed")
    table = next(t for t in sec["tables"] if t[0][0] == "row" and "short" in t[0][1])
    full = next(r for r in table[1:] if r[0] == "f_i full CSVR")
    assert full[1].startswith("+16.7 -> +50.0: +33.3 [")
    assert full[1].endswith("(undecided)")  # two of six test videos differ, one seed: the CI reaches 0
    assert full[3].startswith("+33.3 -> +33.3: +0.0")


def test_a_measure_outside_the_design_is_not_drawn_as_not_run_yet(tmp_path):
    """The short budget finetunes with 10 % of the labels only (study.json: ``not_measured``): its
    all-label cell says so, and the row is left out of that measure's chart and gain panel, while
    a measure merely missing (CVRL's 10 % run here) still reads "not run yet"."""
    from csvr.eval.report import NOT_IN_DESIGN

    doc = _study()
    short = doc["rows"][3]
    short["finetune_top1"] = short["finetune_top1_ci"] = None
    short["not_measured"] = {"finetune_top1": "the short budget finetunes with 10 % of the labels only"}
    doc["rows"][1]["finetune10_top1"] = doc["rows"][1]["finetune10_top1_ci"] = None  # CVRL: not run yet
    for r in doc["rows"][:3]:
        r["not_measured"] = {}
    doc["rows"][0].update({"finetune_top1_control": 50.0, "finetune_top1_gain": 16.37,
                           "finetune_top1_gain_ci": [10.0, 22.0]})
    sec = _render(tmp_path, doc)
    main_t = sec["tables"][0]
    ft, ft10 = main_t[0].index("finetune top-1 (%)"), main_t[0].index("finetune top-1, 10 % labels (%)")
    short_cells = next(c for c in main_t[1:] if c[0] == "f_i full CSVR" and c[3] == "short")
    cvrl = next(c for c in main_t[1:] if c[0] == "CVRL")
    assert short_cells[ft] == NOT_IN_DESIGN and _num(short_cells[ft10]) == [54.4, 49.4, 59.4]
    assert cvrl[ft10] == NOT_RUN
    figs = {im["alt"].split(";")[0]: _axes(im["src"]) for im in sec["images"]}
    ft_ax = figs["replication study: finetune top-1"]["axes"][0]
    assert ft_ax["xticklabels"] == ["random init f_i network", "f_i full CSVR", "CVRL"]  # the short row left out
    ft10_ax = figs["replication study: finetune top-1, 10 % labels"]["axes"][0]
    assert f"CVRL ({NOT_RUN})" in ft10_ax["xticklabels"] and len(ft10_ax["xticklabels"]) == 4
    gains = _axes(sec["images"][-1]["src"])["axes"]
    ft_gain = next(ax for ax in gains if ax["ylabel"].startswith("finetune top-1:"))
    assert not any(NOT_RUN in t for t in ft_gain["xticklabels"]) and ft_gain["errorbar_points"] == 1
    controls = sec["tables"][1]
    col = controls[0].index("finetune top-1: gain (points) [95 % CI]")
    cells = {(c[0], c[1]): c[col] for c in controls[1:]}
    assert cells[("f_i full CSVR", "short")] == NOT_IN_DESIGN
    assert cells[("random init f_i network", "none")] == "no control"  # finetuned, but it is the control itself
    assert cells[("f_i full CSVR", "long")].startswith("+16.4 [+10.0, +22.0]")
    html = (tmp_path / "study" / "report.html").read_text()
    assert "the short budget finetunes with 10 % of the labels only" in html


def test_growth_to_the_longest_budget_renders(tmp_path):
    """Issue 26: test_study's hand-computed long -> xlong growth ("stopped"), the claims at every
    budget, the headline, and one growth figure per gain (a line per row, an error bar per budget)."""
    sec = _render_hand_computed(tmp_path, "test_the_longest_budget_growth_claims_and_headline")
    late = next(t for t in sec["tables"] if t[0][0] == "row" and "long -> xlong" in t[0][1])
    full = next(r for r in late[1:] if r[0] == "f_i full CSVR")
    assert full[1].startswith("+50.0 -> +50.0: +0.0 [") and full[1].endswith("(stopped)")
    every = next(t for t in sec["tables"] if t[0][0] == "claim (a > b)" and t[0][-1].startswith("xlong (1920 s)"))
    row = next(r for r in every[1:] if r[0] == "full CSVR > f_i without the video branch")
    assert row[2].startswith("+33.3 [") and row[3].startswith("+33.3 [")  # long, xlong
    md = (tmp_path / "out" / "report.md").read_text()
    assert ("Headline (each claim at the longest budget that measures it with the most seeds; a longer one with "
            "fewer seeds as 'so far'): full CSVR > f_i without the video ") in md
    assert "Per method: f_i AdaIN (CSVR without video), long -> xlong (2 seeds): stopped: kNN top-1 +0.0 [" in md
    assert " | f_i full CSVR, long -> xlong (2 seeds): stopped: kNN top-1 +0.0 [" in md
    figs = {im["alt"]: _axes(im["src"]) for im in sec["images"] if "against the budget" in im["alt"]}
    knn = next(f for alt, f in figs.items() if alt.startswith("replication study: kNN top-1 gain"))
    (ax,) = knn["axes"]
    assert ax["xticklabels"] == ["120 s", "480 s", "1920 s"]
    assert {e["label"] for e in ax["legend"]} == {"f_i full CSVR", "f_i AdaIN (CSVR without video)"}
    assert ax["errorbar_points"] == 6  # two rows x three budgets


def test_malformed_growth_and_to_decide_do_not_break_the_report(tmp_path):
    """A hand-edited or truncated study.json: junk growth entries and a to_decide with non-integer
    sizes render what is usable (the valid row's words) and leave out the rest, no traceback."""
    doc = _study()
    late = {"knn_top1_gain": {"long": 5.0, "xlong": 6.0, "diff": 1.0, "ci": [-2.0, 4.0], "seeds": [0],
                              "answer": "undecided"}}
    doc["growth"] = [{"row": "f_i full CSVR", "measures": {}, "late": late, "stopped": {"knn_top1_gain": "?"}},
                     "junk", {"row": "x", "measures": {}, "late": [1]}, {"measures": {}, "late": {"a": "b"}}]
    doc["claims"][0]["measures"]["finetune_top1@xlong"] = {"diff": 1.0, "ci": [-1.0, 3.0], "seeds": [0],
                                                           "answer": "undecided", "to_decide": {"seeds": "many"}}
    doc["claims"][0]["answers"] = {"long": "yes", "xlong": "undecided"}
    sec = _render(tmp_path, doc)
    text = (tmp_path / "study" / "report.md").read_text()
    assert "Per method: f_i full CSVR, long -> xlong (1 seed): stopped: kNN top-1 +1.0 [-2.0, +4.0]. No gain " in text
    every = next(t for t in sec["tables"] if t[0][0] == "claim (a > b)" and t[0][-1].startswith("xlong"))
    assert every[1][-1] == "+1.0 [-1.0, +3.0] (undecided)"  # no decide text from a malformed estimate


def test_growth_figure_legend_says_when_a_budget_has_fewer_seeds(tmp_path):
    """A growth curve whose longest budget has 1 seed so far (3 at the others) says so in its legend."""
    doc = _study()
    doc["budgets_seconds"] = {"short": 120.0, "long": 480.0, "xlong": 1920.0}
    curve = {"short": {"mean": 1.0, "ci": [0.0, 2.0], "seeds": [0, 1, 2]},
             "long": {"mean": 5.0, "ci": [3.0, 7.0], "seeds": [0, 1, 2]},
             "xlong": {"mean": 30.0, "ci": [25.0, 35.0], "seeds": [0]}}
    doc["growth"] = [{"row": "CVRL", "measures": {}, "curve": {"knn_top1_gain": curve}}]
    sec = _render(tmp_path, doc)
    (fig,) = [_axes(im["src"]) for im in sec["images"] if im["alt"].startswith("replication study: kNN top-1 gain")]
    (ax,) = fig["axes"]
    assert [e["label"] for e in ax["legend"]] == ["CVRL (seeds 3 / 3 / 1)"]
