"""benchmarks/study.py (issue 16) with csvr.eval.study's statistics: the aggregation on hand-made
per-video scores, and the whole pipeline end to end on tiny real data (--smoke), resumed without
redoing finished units (the two-level bootstrap's own tests: test_knn_stats.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from csvr.eval.stats import two_level_bootstrap
from csvr.eval.study import FROZEN, MEASURES, N_BOOT, encode_scores, verdict

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("study_bench", ROOT / "benchmarks" / "study.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["study_bench"] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


def test_verdict_from_the_interval():
    assert verdict((0.01, 0.2)) == "yes" and verdict((-0.2, -0.01)) == "no"
    assert verdict((-0.1, 0.1)) == "undecided"


def _unit(study, slug, budget, seed, scores, ids, control):
    row = study.ROW_BY_SLUG[slug]
    return {"row": row.name, "slug": slug, "method": row.method, "feature": row.feature, "budget": budget,
            "seed": seed, "budget_seconds": 10.0, "control": control, "test_ids": ids, "test_groups": "mmccbb",
            "scores": encode_scores({k: np.array(v) for k, v in scores.items()}), "eval_seconds": 1.0,
            "pretrain": {"steps": 5, "samples": 80, "seconds": 9.0}}


def test_aggregation_on_hand_made_units(study, tmp_path):
    st = study.Settings(work=tmp_path / "work", results=tmp_path / "res",
                        rows=("f-i-full-csvr", "f-i-adain-csvr-without-video"))
    ids = [f"v{i}" for i in range(6)]
    d = st.units_dir
    d.mkdir(parents=True)
    ctrl = {"knn_top1": [0, 0, 1, 0, 0, 0], "linear_top1": [0, 1, 0, 0, 0, 0], "r1": [0, 0, 0, 0, 0, 1]}
    ctrl2 = {"knn_top1": [0, 0, 0, 0, 0, 0], "linear_top1": [0, 1, 1, 0, 0, 0], "r1": [0, 0, 0, 0, 0, 1]}
    (d / "control__fi__x.json").write_text(json.dumps(
        {"seeds": [encode_scores({k: np.array(v) for k, v in c.items()}) for c in (ctrl, ctrl2)],
         "test_ids": ids}))
    full = {0: [1, 1, 1, 1, 0, 1], 1: [1, 1, 1, 1, 1, 1]}
    novideo = {0: [0, 1, 0, 0, 0, 1], 1: [0, 0, 1, 0, 0, 1]}
    for s in (0, 1):
        base = {"linear_top1": full[s], "r1": full[s], "finetune_top1": full[s], "finetune10_top1": full[s]}
        (d / f"f-i-full-csvr__long__s{s}.json").write_text(json.dumps(
            _unit(study, "f-i-full-csvr", "long", s, {"knn_top1": full[s], **base}, ids, "control__fi__x.json")))
        base = {"linear_top1": novideo[s], "r1": novideo[s], "finetune_top1": novideo[s], "finetune10_top1": novideo[s]}
        (d / f"f-i-adain-csvr-without-video__long__s{s}.json").write_text(json.dumps(_unit(
            study, "f-i-adain-csvr-without-video", "long", s, {"knn_top1": novideo[s], **base}, ids,
            "control__fi__x.json")))
    doc = study.report(st)
    rows = {r["slug"]: r for r in doc["rows"]}
    r = rows["f-i-full-csvr"]
    assert r["seeds"] == [0, 1] and r["n_test"] == 6 and r["budget"] == "long"
    x = np.array([full[0], full[1]], float)
    c = np.mean([ctrl["knn_top1"], ctrl2["knn_top1"]], axis=0)
    assert r["knn_top1"] == pytest.approx(100 * x.mean(), abs=0.01)
    assert r["knn_top1_control"] == pytest.approx(100 * c.mean(), abs=0.01)
    assert r["knn_top1_gain"] == pytest.approx(100 * (x - c).mean(), abs=0.01)
    lo, hi = two_level_bootstrap(x - c, N_BOOT)
    assert r["knn_top1_gain_ci"] == pytest.approx([100 * lo, 100 * hi], abs=0.01)
    assert r["finetune_top1_groups"]["motion"]["n"] == 2
    assert "finetune_top1_control" not in r  # finetuning has no frozen control
    claim = next(c for c in doc["claims"] if c["claim"].startswith("full CSVR > f_i without"))
    diff = x - np.array([novideo[0], novideo[1]], float)
    p = claim["measures"]["finetune_top1@long"]
    assert p["diff"] == pytest.approx(100 * diff.mean(), abs=0.01) and p["seeds"] == [0, 1]
    assert claim["answer"] == "yes"
    saved = json.loads((st.results / "study.json").read_text())
    assert saved["rows"][0]["name"] and "| f_i full CSVR | long | 2 | 6 |" in saved["table"]


@pytest.mark.slow
def test_smoke_runs_end_to_end_and_resumes(study, tmp_path, capsys):
    work = tmp_path / "smoke"
    assert study.main(["--smoke", "--work", str(work)]) == 0
    res = work / "results"
    doc = json.loads((res / "study.json").read_text())
    assert {r["slug"] for r in doc["rows"]} == {"random-init-f-i-network", "f-i-full-csvr"}
    for r in doc["rows"]:
        assert r["method"] in ("csvr", "scratch") and r["feature"] == "fi" and r["seeds"] == [0]
        for m in MEASURES:
            lo, hi = r[f"{m}_ci"]
            assert 0 <= r[m] <= 100 and 0 <= lo <= hi <= 100, (r["slug"], m, r[m], lo, hi)
        for m in FROZEN:
            assert f"{m}_control" in r and len(r[f"{m}_gain_ci"]) == 2
    csvr_row = next(r for r in doc["rows"] if r["method"] == "csvr")
    assert csvr_row["pretrain_steps"] == [4] and csvr_row["pretrain_samples"] == [8]
    units = sorted(p.name for p in (res / "study").glob("*.json"))
    assert len([u for u in units if u.startswith("control__fi__")]) == 1  # shared by both rows
    assert not (work / "runs" / "f-i-full-csvr__long__s0").exists()  # checkpoint deleted after its JSON
    before = {p.name: p.read_text() for p in (res / "study").glob("*.json")}
    capsys.readouterr()
    assert study.main(["--smoke", "--work", str(work)]) == 0
    out = capsys.readouterr().out
    assert "===" not in out  # no unit started again
    assert {p.name: p.read_text() for p in (res / "study").glob("*.json")} == before
    assert study.main(["--smoke", "--work", str(work), "--plan"]) == 0
    assert "remaining 0.0 h (2 of 2 units done)" in capsys.readouterr().out


def test_claims_across_networks_compare_gains_over_own_random_init(study, tmp_path):
    """f_i (sees poses) against f_s only (clip only): besides the raw difference, the claim
    compares what pretraining added to each network over its own scratch finetuning and its
    own frozen control, paired by seed and test video (hand-computed here)."""
    st = study.Settings(work=tmp_path / "work", results=tmp_path / "res")
    ids = [f"v{i}" for i in range(6)]
    d = st.units_dir
    d.mkdir(parents=True)
    zero = {"knn_top1": [0] * 6, "linear_top1": [0] * 6, "r1": [0] * 6}
    ctrl_fs = {**zero, "knn_top1": [1, 0, 0, 0, 0, 0]}
    for name, c in (("control__fi__x.json", zero), ("control__fs__x.json", ctrl_fs)):
        (d / name).write_text(json.dumps({"seeds": [encode_scores({k: np.array(v) for k, v in c.items()})],
                                          "test_ids": ids}))
    ft = {"random-init-f-i-network": [1, 1, 1, 0, 0, 0], "random-init-f-s-network": [1, 0, 0, 0, 0, 0],
          "f-i-full-csvr": [1, 1, 1, 1, 1, 0], "f-s-only": [1, 1, 0, 0, 0, 0]}
    knn = {"random-init-f-i-network": [0] * 6, "random-init-f-s-network": [1, 0, 0, 0, 0, 0],
           "f-i-full-csvr": [1, 1, 0, 0, 0, 0], "f-s-only": [1, 1, 1, 0, 0, 0]}
    for slug, budget, ctrl in (("random-init-f-i-network", "none", "control__fi__x.json"),
                               ("random-init-f-s-network", "none", "control__fs__x.json"),
                               ("f-i-full-csvr", "long", "control__fi__x.json"),
                               ("f-s-only", "long", "control__fs__x.json")):
        sc = {"knn_top1": knn[slug], "linear_top1": [0] * 6, "r1": [0] * 6, "finetune_top1": ft[slug],
              "finetune10_top1": ft[slug]}
        (d / f"{slug}__{budget}__s0.json").write_text(json.dumps(_unit(study, slug, budget, 0, sc, ids, ctrl)))
    doc = study.report(st)
    claim = next(c for c in doc["claims"] if c["claim"] == "f_i > f_s only")
    m = claim["measures"]
    assert m["finetune_top1@long"]["diff"] == pytest.approx(100 * 3 / 6, abs=0.01)  # 5/6 - 2/6
    # gains: f_i 5/6 - 3/6 = +2/6, f_s 2/6 - 1/6 = +1/6 -> difference 1/6
    assert m["finetune_top1_gain@long"]["diff"] == pytest.approx(100 / 6, abs=0.01)
    # frozen: f_i 2/6 - 0 = 2/6, f_s 3/6 - 1/6 = 2/6 -> 0
    assert m["knn_top1_gain@long"]["diff"] == pytest.approx(0.0, abs=0.01)
    assert claim["answer_gain_over_own_network"] == m["finetune_top1_gain@long"]["answer"]
    same = next(c for c in doc["claims"] if c["claim"].startswith("full CSVR > f_i without"))
    assert "answer_gain_over_own_network" not in same  # same network: the raw difference is the gain's
    assert "| f_i > f_s only | +50.0" in doc["table"]


def test_first_runs_named_units_before_the_plan_order(study, tmp_path):
    st = study.Settings(work=tmp_path / "work", results=tmp_path / "res")
    plan = [u.name for u in study.all_units(st)]
    first = ["f-d-only__long__s0", "iic__long__s0"]
    got = [u.name for u in study.ordered_units(st, first)]
    assert got[:2] == first and sorted(got) == sorted(plan)
    assert [n for n in got[2:]] == [n for n in plan if n not in first]
    with pytest.raises(SystemExit):
        study.main(["--work", str(tmp_path / "work"), "--first", "nope__long__s0", "--plan"])


def _fi_study(study, tmp_path, control_knn=(0,) * 6):
    """An empty study over six test videos with one f_i control (kNN scores ``control_knn``, other
    frozen measures 0): (settings, test ids, units folder, the all-zero frozen scores)."""
    st = study.Settings(work=tmp_path / "work", results=tmp_path / "res")
    ids = [f"v{i}" for i in range(6)]
    d = st.units_dir
    d.mkdir(parents=True)
    zero = {"knn_top1": [0] * 6, "linear_top1": [0] * 6, "r1": [0] * 6}
    ctrl = {**zero, "knn_top1": list(control_knn)}
    (d / "control__fi__x.json").write_text(json.dumps(
        {"seeds": [encode_scores({k: np.array(v) for k, v in ctrl.items()})], "test_ids": ids}))
    return st, ids, d, zero


def test_finetune_gain_is_paired_with_the_scratch_run_of_the_same_seed(study, tmp_path):
    st, ids, d, zero = _fi_study(study, tmp_path)
    scratch = {0: [1, 0, 0, 0, 0, 0], 1: [1, 1, 1, 1, 0, 0], 2: [1, 1, 1, 1, 1, 1]}  # seed 2 has no CSVR run
    csvr = {0: [1, 1, 1, 0, 0, 0], 1: [1, 1, 1, 1, 1, 0]}
    for s, v in scratch.items():
        sc = {**zero, "finetune_top1": v, "finetune10_top1": v}
        (d / f"random-init-f-i-network__none__s{s}.json").write_text(json.dumps(
            _unit(study, "random-init-f-i-network", "none", s, sc, ids, "control__fi__x.json")))
    for s, v in csvr.items():
        sc = {**zero, "finetune_top1": v, "finetune10_top1": v}
        (d / f"f-i-full-csvr__long__s{s}.json").write_text(json.dumps(
            _unit(study, "f-i-full-csvr", "long", s, sc, ids, "control__fi__x.json")))
    r = next(r for r in study.report(st)["rows"] if r["slug"] == "f-i-full-csvr")
    # seeds 0 and 1 only: control (1/6 + 4/6) / 2, gain ((3-1) + (5-4)) / 12
    assert r["finetune10_top1_gain_seeds"] == [0, 1]
    assert r["finetune10_top1_control"] == pytest.approx(100 * 5 / 12, abs=0.01)
    assert r["finetune10_top1_gain"] == pytest.approx(100 * 3 / 12, abs=0.01)
    lo, hi = r["finetune10_top1_gain_ci"]
    assert lo <= r["finetune10_top1_gain"] <= hi
    scratch_row = next(r for r in study.report(st)["rows"] if r["slug"] == "random-init-f-i-network")
    assert "finetune10_top1_gain" not in scratch_row


def test_growth_from_the_short_to_the_long_budget_is_paired_by_seed(study, tmp_path):
    """Issue 16, item 3 ("does a gap grow with training"): a row's gain over its control at the long
    budget minus the same gain at the short budget, on the seeds both budgets have, and the same for
    each claim's a - b gap (hand-computed here)."""
    st, ids, d, zero = _fi_study(study, tmp_path, control_knn=(1, 0, 0, 0, 0, 0))
    scratch10 = {0: [1, 0, 0, 0, 0, 0], 1: [1, 1, 0, 0, 0, 0]}
    for s, v in scratch10.items():
        (d / f"random-init-f-i-network__none__s{s}.json").write_text(json.dumps(
            _unit(study, "random-init-f-i-network", "none", s, {**zero, "finetune_top1": v, "finetune10_top1": v},
                  ids, "control__fi__x.json")))
    # full CSVR: kNN 2/6 at short (seeds 0, 1), 4/6 at long (seed 0 only; seed 1 not run yet);
    # 10 % labels 3/6 at both budgets. CSVR without video: kNN 3/6 everywhere.
    for slug, budget, s, knn in (("f-i-full-csvr", "short", 0, [1, 1, 0, 0, 0, 0]),
                                 ("f-i-full-csvr", "short", 1, [1, 1, 0, 0, 0, 0]),
                                 ("f-i-full-csvr", "long", 0, [1, 1, 1, 1, 0, 0]),
                                 ("f-i-adain-csvr-without-video", "short", 0, [1, 1, 1, 0, 0, 0]),
                                 ("f-i-adain-csvr-without-video", "long", 0, [1, 1, 1, 0, 0, 0])):
        sc = {**zero, "knn_top1": knn, "finetune10_top1": [1, 1, 1, 0, 0, 0]}
        (d / f"{slug}__{budget}__s{s}.json").write_text(json.dumps(
            _unit(study, slug, budget, s, sc, ids, "control__fi__x.json")))
    doc = study.report(st)
    g = next(x for x in doc["growth"] if x["slug"] == "f-i-full-csvr")["measures"]
    # kNN gain over the control (1/6): short 2/6 - 1/6, long 4/6 - 1/6, on seed 0 only
    assert g["knn_top1_gain"]["seeds"] == [0]
    assert g["knn_top1_gain"]["short"] == pytest.approx(100 / 6, abs=0.01)
    assert g["knn_top1_gain"]["long"] == pytest.approx(300 / 6, abs=0.01)
    assert g["knn_top1_gain"]["diff"] == pytest.approx(200 / 6, abs=0.01)
    # 10 % labels over the scratch run of seed 0 (1/6): +2/6 at both budgets, so no growth
    assert g["finetune10_top1_gain"]["diff"] == pytest.approx(0.0, abs=0.01)
    assert g["finetune10_top1_gain"]["answer"] == "undecided"
    claim = next(c for c in doc["claims"] if c["claim"].startswith("full CSVR > f_i without"))
    gap = claim["measures"]["knn_top1@long-short"]  # (4/6 - 3/6) - (2/6 - 3/6) on seed 0
    assert (gap["short"], gap["long"], gap["diff"]) == pytest.approx((-100 / 6, 100 / 6, 200 / 6), abs=0.01)
    assert "| f_i full CSVR | +16.7 -> +50.0 (+33.3" in doc["table"]
    assert "| full CSVR > f_i without the video branch | -16.7 -> +16.7 (+33.3" in doc["table"]
    short = next(r for r in doc["rows"] if r["slug"] == "f-i-full-csvr" and r["budget"] == "short")
    assert short["not_measured"] == {"finetune_top1": "the short budget finetunes with 10 % of the labels only"}
    assert next(r for r in doc["rows"] if r["budget"] == "long")["not_measured"] == {}


def test_the_longest_budget_growth_claims_and_headline(study, tmp_path):
    """Issue 26: a gain from the long to the xlong budget, paired by seed ("stopped" when its CI
    contains 0), the curve of every budget, the claims answered at every budget, and the headline
    read at the longest budget that measures each claim (hand-computed)."""
    st, ids, d, zero = _fi_study(study, tmp_path, control_knn=(1, 0, 0, 0, 0, 0))
    for s, v in {0: [1, 0, 0, 0, 0, 0], 1: [1, 1, 0, 0, 0, 0]}.items():
        (d / f"random-init-f-i-network__none__s{s}.json").write_text(json.dumps(
            _unit(study, "random-init-f-i-network", "none", s, {**zero, "finetune_top1": v, "finetune10_top1": v},
                  ids, "control__fi__x.json")))
    # full CSVR kNN: 2/6 short, 4/6 long, 4/6 xlong (seeds 0, 1); finetune 5/6 at long and xlong;
    # CSVR without video: kNN 3/6 and finetune 3/6 everywhere
    knn = {"short": [1, 1, 0, 0, 0, 0], "long": [1, 1, 1, 1, 0, 0], "xlong": [1, 1, 0, 1, 1, 0]}
    for s in (0, 1):
        for b, k in knn.items():
            sc = {**zero, "knn_top1": k, "finetune10_top1": [1, 1, 1, 0, 0, 0], "finetune_top1": [1, 1, 1, 1, 1, 0]}
            if b == "short":  # as the study: the short budget finetunes with 10 % of the labels only
                del sc["finetune_top1"]
            (d / f"f-i-full-csvr__{b}__s{s}.json").write_text(json.dumps(
                _unit(study, "f-i-full-csvr", b, s, sc, ids, "control__fi__x.json")))
            sc = {**zero, "knn_top1": [1, 1, 1, 0, 0, 0], "finetune10_top1": [1, 1, 1, 0, 0, 0],
                  "finetune_top1": [1, 1, 1, 0, 0, 0]}
            if b == "short":
                del sc["finetune_top1"]
            (d / f"f-i-adain-csvr-without-video__{b}__s{s}.json").write_text(json.dumps(
                _unit(study, "f-i-adain-csvr-without-video", b, s, sc, ids, "control__fi__x.json")))
    doc = study.report(st)
    assert [r["budget"] for r in doc["rows"] if r["slug"] == "f-i-full-csvr"] == ["short", "long", "xlong"]
    g = next(x for x in doc["growth"] if x["slug"] == "f-i-full-csvr")
    late = g["late"]["knn_top1_gain"]  # (4/6 - 1/6) -> (4/6 - 1/6): no change
    assert (late["long"], late["xlong"], late["diff"]) == pytest.approx((50.0, 50.0, 0.0), abs=0.01)
    assert late["seeds"] == [0, 1] and g["stopped"]["knn_top1_gain"] == "stopped"
    assert set(g["curve"]["knn_top1_gain"]) == {"short", "long", "xlong"}
    assert g["curve"]["knn_top1_gain"]["short"]["mean"] == pytest.approx(100 / 6, abs=0.01)
    # finetune with all labels over scratch (seed 0: 1/6, seed 1: 2/6): +4/6, +3/6 at long and xlong
    assert g["late"]["finetune_top1_gain"]["long"] == pytest.approx(100 * 7 / 12, abs=0.01)
    claim = next(c for c in doc["claims"] if c["claim"].startswith("full CSVR > f_i without"))
    assert set(claim["answers"]) == {"long", "xlong"}  # the short budget finetunes with 10 % only
    x = claim["measures"]["finetune_top1@xlong"]
    assert x["diff"] == pytest.approx(100 * 2 / 6, abs=0.01)
    assert claim["measures"]["knn_top1@xlong-long"]["diff"] == pytest.approx(0.0, abs=0.01)
    h = next(h for h in doc["headline"] if h["claim"] == claim["claim"])
    assert h["budget"] == "xlong" and h["diff"] == x["diff"] and h["answer"] == x["answer"]
    assert x["answer"] == "undecided"  # 2 seeds x 6 videos, +33.3 points: the CI reaches 0
    assert set(x["to_decide"]) == {"seeds", "test_videos", "measured_seeds", "measured_test_videos"}
    from csvr.eval.study import decide_text

    need = decide_text(x["to_decide"])
    assert need and f"undecided; {need} |" in doc["table"]  # the claims-at-every-budget table says it too
    lines = study.headline_lines(doc)
    assert lines[0].startswith(f"full CSVR > f_i without the video branch: {x['answer']} at 1920 s (+33.3 [")
    assert "| f_i full CSVR | +50.0 -> +50.0 (+0.0" in doc["table"]
    words = next(w for w in doc["growth_lines"] if w.startswith("f_i full CSVR, "))
    assert words.startswith("f_i full CSVR, long -> xlong (2 seeds): stopped: kNN top-1 +0.0 [")
    assert "| claim at every budget" in doc["table"]


def test_the_concat_row_is_controlled_by_its_own_random_init_network(study, tmp_path):
    """Issue 26 item 3: the Concat network's scratch finetuning is a row of its own (its own
    architecture checkpoint), the Concat row's finetuning gain is taken over it, and AdaIN vs Concat
    also compares what pretraining added to each network."""
    des = study.design(study.study_settings(tmp_path))
    assert des.scratch_for("f-i-concat") == "random-init-f-i-concat-network"
    assert des.scratch_for("f-i-adain-csvr-without-video") == "random-init-f-i-network"
    # likewise the pose-only network of "f_d only" (f_i > f_d in gains over own network)
    assert des.scratch_for("f-d-only") == "random-init-f-d-network"
    assert des.network_of("f-d-only") not in (des.network_of("f-i-full-csvr"), des.network_of("f-i-concat"))
    assert des.network_of("f-i-concat") != des.network_of("f-i-adain-csvr-without-video")
    assert study.ROW_BY_SLUG["random-init-f-i-concat-network"].overrides == ("model.fusion=concat",
                                                                             "model.use_video=false")
    st, ids, d, zero = _fi_study(study, tmp_path)
    for slug, budget, ft in (("random-init-f-i-concat-network", "none", [1, 0, 0, 0, 0, 0]),
                             ("random-init-f-i-network", "none", [1, 1, 1, 0, 0, 0]),
                             ("f-i-concat", "long", [1, 1, 0, 0, 0, 0]),
                             ("f-i-adain-csvr-without-video", "long", [1, 1, 1, 1, 0, 0])):
        (d / f"{slug}__{budget}__s0.json").write_text(json.dumps(_unit(
            study, slug, budget, 0, {**zero, "finetune_top1": ft, "finetune10_top1": ft}, ids, "control__fi__x.json")))
    doc = study.report(st)
    concat = next(r for r in doc["rows"] if r["slug"] == "f-i-concat")
    assert concat["finetune_top1_gain"] == pytest.approx(100 / 6, abs=0.01)  # 2/6 - 1/6, its own scratch run
    claim = next(c for c in doc["claims"] if c["claim"] == "AdaIN > Concat")
    assert claim["measures"]["finetune_top1@long"]["diff"] == pytest.approx(200 / 6, abs=0.01)
    # gains: AdaIN 4/6 - 3/6, Concat 2/6 - 1/6: equal
    assert claim["measures"]["finetune_top1_gain@long"]["diff"] == pytest.approx(0.0, abs=0.01)


def test_the_longest_budget_in_the_plan(study, tmp_path):
    """xlong units for full CSVR, CSVR without video, IIC and CVRL only, 3 seeds each, after every
    shorter unit; Concat at the long budget with 3 seeds; the supervised row keeps the long budget."""
    st = study.study_settings(tmp_path)
    units = [u.name for u in study.all_units(st)]
    xl = [n for n in units if "__xlong__" in n]
    assert sorted(xl) == sorted(f"{r}__xlong__s{s}" for r in ("f-i-full-csvr", "f-i-adain-csvr-without-video", "iic",
                                                               "cvrl") for s in range(3))
    assert [n.split("__s")[1] for n in xl[:4]] == ["0"] * 4  # seed 0 of every row first
    assert {f"f-i-concat__long__s{s}" for s in range(3)} <= set(units)
    assert {f"random-init-f-i-concat-network__none__s{s}" for s in range(3)} <= set(units)
    calib = {"groups": {"supervised": {"main": 1.0}}}
    assert study.supervised_steps(st, calib, 0) - study.supervised_steps(
        study.Settings(work=tmp_path, results=tmp_path, budgets={"long": 480.0}), calib, 0) == 0


def test_the_demo_quotes_the_committed_headline(tmp_path):
    """The demo's closing lines quote the committed study's headline, line for line, and only point
    to it when the file is not there (an installed package)."""
    from csvr.demo import STUDY_JSON, study_headline
    from csvr.eval.study import headline_lines, load_study

    lines = study_headline()
    assert lines[1:] == [f"  {x}" for x in headline_lines(load_study(STUDY_JSON))]
    assert len(lines) > 1 and "benchmarks/RESULTS.md" in lines[0]
    missing = study_headline(tmp_path / "none.json")
    assert len(missing) == 1 and "benchmarks/RESULTS.md" in missing[0]


def test_the_readme_quotes_the_committed_headline(study, tmp_path):
    """README's headline block is the committed study.json's headline, line for line (the report
    rewrites it; a README without the block is left alone)."""
    from csvr.eval.study import headline_lines, load_study

    lines = headline_lines(load_study(ROOT / "benchmarks" / "results" / "study.json"))
    assert study.readme_headline_block(lines) in (ROOT / "README.md").read_text()
    other = tmp_path / "README.md"
    other.write_text("no block\n")
    assert not study.update_readme_headline(lines, other) and other.read_text() == "no block\n"
    other.write_text(f"a\n{study.README_START}\nold\n{study.README_END}\nb\n")
    assert study.update_readme_headline(["x > y: yes"], other)
    assert other.read_text() == f"a\n{study.README_START}\n- x > y: yes\n{study.README_END}\nb\n"


def test_the_headline_says_when_no_practical_study_would_decide_a_claim():
    """An undecided claim quotes the seeds or test videos that would decide it when one of them is
    practical, and otherwise says the difference is too small to decide, with the sizes in brackets."""
    from csvr.eval.study import PRACTICAL_SEEDS, PRACTICAL_TEST_VIDEOS, headline_lines

    def doc(seeds, videos):
        return {"headline": [{"claim": "a > b", "budget": "long", "seconds": 480.0, "answer": "undecided",
                              "diff": 0.2, "ci": [-8.3, 9.3], "seeds": [0, 1, 2],
                              "to_decide": {"seeds": seeds, "test_videos": videos}}]}

    assert headline_lines(doc(5, 235)) == ["a > b: undecided at 480 s (+0.2 [-8.3, +9.3], 3 seeds); "
                                           "deciding it would take ~5 seeds or ~235 test videos"]
    assert headline_lines(doc(PRACTICAL_SEEDS + 1, PRACTICAL_TEST_VIDEOS))[0].endswith(
        f"deciding it would take ~{PRACTICAL_SEEDS + 1} seeds or ~{PRACTICAL_TEST_VIDEOS} test videos")
    assert headline_lines(doc(6348, None))[0].endswith(
        "; as measured, too small a difference for its variance to decide with a practical study (~6348 seeds)")
    assert headline_lines(doc(None, None))[0].endswith(
        "; neither more seeds nor more test videos alone would decide it")


def test_growth_lines_say_which_gains_stopped_grow_or_shrink():
    """Each row at the xlong budget in words: a gain whose long -> xlong CI contains 0 has stopped, one
    above 0 grows (with its previous 4x step and each step's seeds), one below shrinks."""
    from csvr.eval.study import growth_lines

    def p(diff, lo, hi, seeds):
        return {"diff": diff, "ci": [lo, hi], "seeds": seeds, "answer": "yes" if lo > 0 else "no" if hi < 0 else "undecided"}

    doc = {"growth": [
        {"row": "A", "measures": {"linear_top1_gain": p(10.9, 4.4, 18.3, [0, 1, 2])},
         "late": {"knn_top1_gain": p(-2.2, -9.4, 5.6, [0]), "linear_top1_gain": p(11.1, 2.8, 19.4, [0]),
                  "finetune10_top1_gain": p(-8.3, -13.9, -3.3, [0])}},
        {"row": "B", "measures": {}, "late": {"knn_top1_gain": p(0.0, -3.0, 3.0, [0, 1])}},
        {"row": "C (short and long only)", "measures": {"knn_top1_gain": p(1.0, 0.5, 1.5, [0])}}]}
    a, b = growth_lines(doc)
    assert a == ("A, long -> xlong (1 seed): stopped: kNN top-1 -2.2 [-9.4, +5.6]; growing: linear probe top-1 "
                 "+11.1 [+2.8, +19.4]; shrinking: finetune top-1, 10 % labels -8.3 [-13.9, -3.3]. Not flattened "
                 "yet (per 4x budget: linear probe top-1 +10.9 (3 seeds) then +11.1 (1 seed)): a longer budget is "
                 "needed to see where these gains stop")
    assert b == ("B, long -> xlong (2 seeds): stopped: kNN top-1 +0.0 [-3.0, +3.0]. No gain changes detectably "
                 "from the long to the xlong budget (every CI contains 0)")


def test_decide_text_and_the_headline_keep_the_best_seeded_budget():
    """decide_text says when one seed leaves the seed variance unmeasured and ignores malformed
    estimates; the headline reads a claim at the longest budget with the most seeds and adds a
    longer one with fewer seeds as "so far"."""
    from csvr.eval.study import decide_text, headline, headline_lines

    assert decide_text({"test_videos": 1362, "measured_seeds": 1}) == (
        "deciding it would take ~1362 test videos (seed-to-seed variance unmeasured with 1 seed, taken as 0)")
    assert decide_text({"seeds": None, "test_videos": None}) == (
        "neither more seeds nor more test videos alone would decide it")
    assert decide_text({"seeds": "many"}) == decide_text({"seeds": True, "test_videos": 2.5}) == ""
    assert decide_text(None) == decide_text([1]) == ""

    def p(diff, seeds):
        return {"diff": diff, "ci": [diff - 7, diff + 7], "seeds": seeds, "answer": "undecided"}

    doc = {"budgets_seconds": {"short": 120.0, "long": 480.0, "xlong": 1920.0},
           "claims": [{"claim": "a > b", "measures": {"finetune_top1@long": p(0.4, [0, 1, 2]),
                                                      "finetune_top1@xlong": p(-2.2, [0])}}]}
    (h,) = headline(doc)
    assert h["budget"] == "long" and h["so_far"]["budget"] == "xlong" and h["so_far"]["diff"] == -2.2
    assert headline_lines({**doc, "headline": [h]}) == [
        "a > b: undecided at 480 s (+0.4 [-6.6, +7.4], 3 seeds); at 1920 s so far: undecided (-2.2 [-9.2, +4.8], 1 seed)"]
    doc["claims"][0]["measures"]["finetune_top1@xlong"]["seeds"] = [0, 1, 2]
    (h,) = headline(doc)
    assert h["budget"] == "xlong" and "so_far" not in h
