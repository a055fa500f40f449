"""The replication study (issue 16): its files, its measures and its statistics.

``benchmarks/study.py`` designs and runs the study (rows, budgets, seeds, the units of work);
``csvr report --study`` draws it. Both take from here what the study *is*:

Files. Each unit of work (row, budget, seed) is one JSON file ``<slug>__<budget>__s<seed>.json``
(:func:`unit_name`; format ``csvr-study-unit``) in the units folder, holding the unit's record and
its per-test-video scores, each measure a string of ``0`` / ``1`` (:func:`encode_scores` /
:func:`decode_scores`) in the order of its ``test_ids``; a random-init control is
``control__<feature>__<network hash>.json`` beside them (``seeds``: one score dict per control
seed). :func:`aggregate` reads the folder into ``study.json`` (format ``csvr-study``, values in
percent), which :func:`load_study` reads back; every file is written by :func:`write_json`.

Measures (:data:`MEASURE_LABELS`, the one list of them, with their labels): frozen kNN top-1,
linear-probe top-1 and R@1 (:data:`FROZEN`, each against the same network's random features),
finetune top-1 with all labels and with 10 % (:data:`FINETUNE`, against the scratch finetuning of
the same network).

Statistics. Every interval is a two-level percentile bootstrap (:func:`csvr.eval.stats.two_level_bootstrap`,
:data:`N_BOOT` resamples: seeds, then test videos); differences are paired by seed and test video
(:func:`paired`), growth from the short to the long budget likewise (:func:`growth`), and a claim
or a difference is answered yes / no / undecided from its interval (:func:`verdict`). What the
statistics need to know of the design (its rows, which random-init row controls which network,
its claims) is a :class:`Design`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from csvr.errors import CsvrError
from csvr.eval.stats import sample_size_to_decide, two_level_bootstrap
from csvr.utils.io import atomic_write_json

# ============================================================================ measures
#: Every measure of the study, in the tables' order, with its label.
MEASURE_LABELS: dict[str, str] = {"knn_top1": "kNN top-1", "linear_top1": "linear probe top-1",
                                  "finetune_top1": "finetune top-1", "finetune10_top1": "finetune top-1, 10 % labels",
                                  "r1": "R@1"}
MEASURES = tuple(MEASURE_LABELS)
#: the measures of frozen features: their control is the same network with random weights
FROZEN = ("knn_top1", "linear_top1", "r1")
#: the finetuning measures (all labels, 10 %): their control is the same network finetuned from random weights
FINETUNE = ("finetune_top1", "finetune10_top1")
#: the k of the retrieval measures ``r<k>`` a unit records (R@1 is a measure; the others get a mean only)
RECALL_KS = (1, 5, 10, 20)
#: Fig. 4's class groups; a unit's ``test_groups`` holds each test video's initial
GROUPS = ("motion", "context", "both")
#: the gains whose change between budgets answers "does the gap grow with training" (issue 16,
#: item 3): frozen kNN / linear / R@1 over the random-init features, and finetuning with 10 % of
#: the labels over the scratch run of the same network (the short budget finetunes with 10 % only)
GROWTH_MEASURES = ("knn_top1_gain", "linear_top1_gain", "finetune10_top1_gain", "r1_gain")
#: the budgets in their order: ``none`` (no pretraining: the random-init rows), short (120 s), long
#: (480 s), xlong (1920 s, issue 26: where the gains stop growing)
BUDGETS = ("none", "short", "long", "xlong")
#: the pretraining budgets, shortest first, and the consecutive pairs whose change "growth" measures
TRAINED_BUDGETS = BUDGETS[1:]
GROWTH_STEPS = (("short", "long"), ("long", "xlong"))
#: what answers a claim: finetune top-1 (the paper's Table I measure) at the long budget, and the
#: same for the difference of gains over each side's own network
ANSWER = "finetune_top1@long"
ANSWER_GAIN = "finetune_top1_gain@long"
#: two-level bootstrap resamples of every interval
N_BOOT = 4000

# ============================================================================ files
UNIT_FORMAT = "csvr-study-unit"
STUDY_FORMAT = "csvr-study"
FORMAT_VERSION = 1


def now() -> str:
    """The study files' time stamps (UTC, ISO 8601, seconds)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(path: Path, doc) -> None:
    """Write a study file (a unit, a control, study.json, the calibration) atomically, indent 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc, indent=1)


def unit_name(slug: str, budget: str, seed: int) -> str:
    """A unit's name, the stem of its file in the units folder."""
    return f"{slug}__{budget}__s{seed}"


def control_name(feature: str, network: str) -> str:
    """The file name of the random-init control of a (network hash, feature)."""
    return f"control__{feature}__{network}.json"


def encode_scores(d: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Per-test-video 0/1 scores as strings of ``0`` / ``1``."""
    return {k: "".join("1" if v else "0" for v in np.asarray(a)) for k, a in d.items()}


def decode_scores(s: str) -> np.ndarray:
    """A string of :func:`encode_scores` back to a float array of 0 / 1."""
    return np.frombuffer(s.encode(), dtype=np.uint8).astype(np.float64) - ord("0")


def load_units(units_dir: Path) -> list[dict]:
    """Every unit file of the folder, in name order (controls are not units)."""
    if not units_dir.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(units_dir.glob("*__s*.json"))]


def control_matrix(units_dir: Path, name: str, m: str) -> np.ndarray:
    """The control ``name``'s scores of measure ``m``: (control seeds, test videos)."""
    c = json.loads((units_dir / name).read_text())
    return np.stack([decode_scores(s[m]) for s in c["seeds"]])


def load_study(path: str | Path) -> dict:
    """``study.json`` as :func:`aggregate` makes it; :class:`CsvrError` when it is not one."""
    p = Path(path)
    if not p.is_file():
        raise CsvrError(f"--study {p}: no such file (benchmarks/study.py --report writes "
                        "benchmarks/results/study.json)")
    try:
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CsvrError(f"--study {p}: not a JSON file ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list) \
            or not all(isinstance(r, dict) for r in doc["rows"]):
        raise CsvrError(f"--study {p}: not a study file (no list 'rows'; benchmarks/study.py --report writes one)")
    return doc


# ============================================================================ the design, as the statistics see it
class StudyRow(Protocol):
    """What the statistics read of one row of the design."""

    @property
    def name(self) -> str: ...

    @property
    def slug(self) -> str: ...

    @property
    def method(self) -> str: ...  # csvr | iic | cvrl | scratch (random init, budget "none") | supervised

    @property
    def feature(self) -> str: ...


@dataclass(frozen=True)
class Design:
    """The study's design as its statistics need it.

    ``rows``: every row, in the study's order; ``scratch_of``: feature -> slug of the random-init
    row of that feature's network (the finetuning measures' control); ``networks``: feature -> the
    network it reads where the name differs (IIC's and CVRL's ``backbone`` is the f_s network);
    ``claims``: (claim, a, b) meaning row a > row b; ``budgets``: budget -> seconds;
    ``full_finetune(budget)``: whether units at that budget finetune with all labels;
    ``no_finetune_control``: rows whose network has no scratch finetuning (no finetuning gain);
    ``scratch_rows``: row slug -> its own network's random-init row, for a row whose network differs
    from its feature's usual one (the Concat network: issue 26)."""

    rows: Sequence[StudyRow]
    scratch_of: Mapping[str, str]
    claims: Sequence[tuple[str, str, str]]
    budgets: Mapping[str, float]
    full_finetune: Callable[[str], bool]
    networks: Mapping[str, str] = field(default_factory=dict)
    no_finetune_control: frozenset[str] = frozenset()
    scratch_rows: Mapping[str, str] = field(default_factory=dict)

    def scratch_for(self, slug: str) -> str:
        """The random-init row whose finetuning controls row ``slug``: its own network's
        (``scratch_rows``), else its feature's (``scratch_of``); "" when none."""
        return self.scratch_rows.get(slug) or self.scratch_of.get(self.row(slug).feature, "")

    def row(self, slug: str) -> StudyRow:
        """The row named ``slug`` (KeyError when the design has none)."""
        return {r.slug: r for r in self.rows}[slug]

    def network_of(self, slug: str) -> str:
        """The network a row's features and finetuning use."""
        if slug in self.scratch_rows:  # a network of its own (Concat's fusion layer)
            return self.scratch_rows[slug]
        f = self.row(slug).feature
        return self.networks.get(f, f)

    def not_in_design(self, row: StudyRow, budget: str) -> dict[str, str]:
        """The measures the design does not take for ``row`` at ``budget``, with the reason (the
        report shows them as such instead of "not run yet")."""
        out = {}
        if row.method == "supervised":
            out["finetune10_top1"] = "the supervised row trains with all labels"
        if budget != "none" and not self.full_finetune(budget):
            out["finetune_top1"] = f"the {budget} budget finetunes with 10 % of the labels only"
        return out


# ============================================================================ statistics
#: (row slug, budget, measure or "<measure>_gain") -> (scores: seeds x test videos, the seeds)
Cells = dict[tuple[str, str, str], tuple[np.ndarray, list[int]]]


def verdict(ci: tuple[float, float], threshold: float = 0.0) -> str:
    """yes: the whole interval above ``threshold``; no: the whole interval below it; else undecided."""
    if ci[0] > threshold:
        return "yes"
    if ci[1] < threshold:
        return "no"
    return "undecided"


def pct(x):
    """A fraction (or a pair of them) in percent, 2 decimals: study.json's unit."""
    return [round(100 * v, 2) for v in x] if isinstance(x, (tuple, list)) else round(100 * float(x), 2)


def _ci(x: np.ndarray) -> tuple[float, float]:
    return two_level_bootstrap(x, N_BOOT)


def _matrix(units: list[dict], m: str) -> tuple[np.ndarray, list[int]] | None:
    have = [u for u in units if m in u["scores"]]
    if not have:
        return None
    have.sort(key=lambda u: u["seed"])
    return np.stack([decode_scores(u["scores"][m]) for u in have]), [u["seed"] for u in have]


def aggregate(units_dir: Path, design: Design) -> tuple[dict, Cells]:
    """The units of ``units_dir`` as study.json's document (every row x budget with its measures,
    controls, gains, claims and growth; no goals, no table) and the per-video cells behind it."""
    units = load_units(units_dir)
    by_row: dict[tuple[str, str], list[dict]] = {}
    for u in units:
        by_row.setdefault((u["slug"], u["budget"]), []).append(u)
    rows, cells = [], {}
    order = {r.slug: i for i, r in enumerate(design.rows)}
    rank = {b: i for i, b in enumerate(BUDGETS)}
    for (slug, budget), us in sorted(by_row.items(), key=lambda kv: (order.get(kv[0][0], 99),
                                                                      rank.get(kv[0][1], len(rank)), kv[0][1])):
        ids = us[0]["test_ids"]
        if any(u["test_ids"] != ids for u in us):
            raise CsvrError(f"units of {slug} {budget} score different test videos")
        row = design.row(slug)
        out = {"name": row.name, "slug": slug, "method": row.method, "feature": row.feature, "budget": budget,
               "budget_seconds": us[0]["budget_seconds"], "seeds": sorted(u["seed"] for u in us),
               "n_test": len(ids), "pretrain_steps": [u.get("pretrain", {}).get("steps") for u in us],
               "pretrain_samples": [u.get("pretrain", {}).get("samples") for u in us],
               "pretrain_seconds": [u.get("pretrain", {}).get("seconds") for u in us]}
        for m in MEASURES:
            mat = _matrix(us, m)
            if mat is None:
                out[m] = out[f"{m}_ci"] = None
                continue
            x, seeds = mat
            cells[(slug, budget, m)] = (x, seeds)
            out[m], out[f"{m}_ci"] = pct(x.mean()), pct(_ci(x))
            if m in FROZEN:
                c = control_matrix(units_dir, us[0]["control"], m).mean(axis=0)  # control mean over its seeds
                d = x - c[None, :]
                out[f"{m}_control"], out[f"{m}_gain"] = pct(c.mean()), pct(d.mean())
                out[f"{m}_gain_ci"] = pct(_ci(d))
                cells[(slug, budget, f"{m}_gain")] = (d, seeds)
        out["not_measured"] = {m: why for m, why in design.not_in_design(row, budget).items() if out.get(m) is None}
        for k in RECALL_KS[1:]:
            mat = _matrix(us, f"r{k}")
            out[f"r{k}"] = pct(mat[0].mean()) if mat else None
        grp = np.array(list(us[0]["test_groups"]))
        for m in FINETUNE:
            if (slug, budget, m) in cells:
                x = cells[(slug, budget, m)][0]
                out[f"{m}_groups"] = {g: {"mean": pct(x[:, grp == g[0]].mean()),
                                          "ci": pct(_ci(x[:, grp == g[0]])),
                                          "n": int((grp == g[0]).sum())}
                                      for g in GROUPS if (grp == g[0]).any()}
        rows.append(out)
    finetune_gains(cells, design)
    for out in rows:  # finetuning's control: the scratch finetuning of the same network, paired by seed
        for m in FINETUNE:
            g = cells.get((out["slug"], out["budget"], f"{m}_gain"))
            if g is None:
                continue
            d, seeds = g
            ref, ref_seeds = cells[(design.scratch_for(out["slug"]), "none", m)]
            out[f"{m}_control"] = pct(ref[[ref_seeds.index(s) for s in seeds]].mean())
            out[f"{m}_gain"], out[f"{m}_gain_ci"] = pct(d.mean()), pct(_ci(d))
            out[f"{m}_gain_seeds"] = seeds
    doc = {"format": STUDY_FORMAT, "version": FORMAT_VERSION, "units": "percent", "date": now(),
           "n_units": len(units), "budgets_seconds": design.budgets,
           "bootstrap": f"{N_BOOT} two-level resamples (seeds, then test videos)",
           "rows": rows, "claims": claims(cells, design), "growth": growth(cells, design)}
    return doc, cells


def finetune_gains(cells: Cells, design: Design) -> None:
    """Add ``<finetune measure>_gain`` cells: a pretrained row minus the scratch finetuning of its
    own network, paired by seed and test video (the frozen measures' gains come from their controls)."""
    for (slug, budget, m), (x, seeds) in list(cells.items()):
        row = design.row(slug)
        if (m not in FINETUNE or row.method in ("scratch", "supervised")
                or slug in design.no_finetune_control):
            continue
        ref = cells.get((design.scratch_for(slug), "none", m))
        if ref is None:
            continue
        common = sorted(set(seeds) & set(ref[1]))
        if common:
            cells[(slug, budget, f"{m}_gain")] = (x[[seeds.index(s) for s in common]]
                                                  - ref[0][[ref[1].index(s) for s in common]], common)


def paired(cells: Cells, design: Design, a: str, b: str, m: str, budget: str) -> dict | None:
    """Difference a - b of measure ``m`` paired by seed and test video (seeds both have)."""
    dd = _difference(cells, design, a, b, m, budget)
    if dd is None:
        return None
    d, common = dd
    ci = _ci(d)
    return {"diff": pct(d.mean()), "ci": pct(ci), "seeds": common, "answer": verdict(ci)}


def _seed_rows(cell, seeds: list[int]) -> np.ndarray:
    x, have = cell
    return x[[have.index(k) for k in seeds]]


def _difference(cells: Cells, design: Design, a: str, b: str, m: str, budget: str):
    """(a - b per seed and test video, seeds) for ``m`` at ``budget`` (a random-init row: at its
    budget ``none``), or None (see :func:`paired`)."""
    ka = (a, budget if design.row(a).method != "scratch" else "none", m)
    kb = (b, budget if design.row(b).method != "scratch" else "none", m)
    if ka not in cells or kb not in cells:
        return None
    common = sorted(set(cells[ka][1]) & set(cells[kb][1]))
    return (_seed_rows(cells[ka], common) - _seed_rows(cells[kb], common), common) if common else None


def _growth(long_cell, short_cell, names: tuple[str, str] = ("short", "long")) -> dict | None:
    """A difference at the later budget minus the same difference at the earlier one (``names``:
    earlier, later), paired by seed and test video: ``yes`` (the gap grows with training) when its
    CI lies above 0, ``no`` (it shrinks) when below, else undecided."""
    if long_cell is None or short_cell is None:
        return None
    common = sorted(set(long_cell[1]) & set(short_cell[1]))
    if not common:
        return None
    lo, sh = _seed_rows(long_cell, common), _seed_rows(short_cell, common)
    ci = _ci(lo - sh)
    return {names[0]: pct(sh.mean()), names[1]: pct(lo.mean()), "diff": pct((lo - sh).mean()), "ci": pct(ci),
            "seeds": common, "answer": verdict(ci)}


def _point(cell) -> dict | None:
    """One point of a growth curve: the mean of a cell, its CI and seeds."""
    if cell is None:
        return None
    x, seeds = cell
    return {"mean": pct(x.mean()), "ci": pct(_ci(x)), "seeds": list(seeds)}


def stopped(late: dict | None) -> str | None:
    """Whether a gain has stopped growing, from its long -> xlong change (issue 26): "stopped"
    when the change's CI contains 0, "growing" when it lies above 0, "shrinking" when below."""
    if late is None:
        return None
    return {"yes": "growing", "no": "shrinking"}.get(late["answer"], "stopped")


def growth(cells: Cells, design: Design) -> list[dict]:
    """Per pretrained row measured at two budgets or more: ``measures``: each gain of
    :data:`GROWTH_MEASURES` at the short and the long budget and long - short with its 95 % CI
    (paired by seed and test video); ``late``: the same from the long to the xlong budget (and
    finetune top-1's gain with all labels, which the short budget does not measure);
    ``stopped``: per gain, whether the long -> xlong change's CI contains 0 (:func:`stopped`);
    ``curve``: per gain, its mean and CI at every budget (the growth figures). A gain that grows
    says pretraining keeps adding with 4x the wall-clock."""
    out = []
    late_measures = GROWTH_MEASURES + ("finetune_top1_gain",)
    for r in design.rows:
        per, late, curve = {}, {}, {}
        for m in GROWTH_MEASURES:
            g = _growth(cells.get((r.slug, "long", m)), cells.get((r.slug, "short", m)))
            if g:
                per[m] = g
        for m in late_measures:
            g = _growth(cells.get((r.slug, "xlong", m)), cells.get((r.slug, "long", m)), ("long", "xlong"))
            if g:
                late[m] = g
            pts = {b: p for b in TRAINED_BUDGETS if (p := _point(cells.get((r.slug, b, m)))) is not None}
            if len(pts) >= 2:
                curve[m] = pts
        if per or late:
            g = {"row": r.name, "slug": r.slug, "measures": per}
            if late:
                g["late"] = late
                g["stopped"] = {m: stopped(v) for m, v in late.items()}
            if curve:
                g["curve"] = curve
            out.append(g)
    return out


#: the measures whose undecided answers get the seeds / test videos that would decide them: the
#: answer measure (finetune top-1 with all labels; 10 % at the short budget) and their gains
DECIDE_MEASURES = ("finetune_top1", "finetune10_top1", "finetune_top1_gain", "finetune10_top1_gain")


def growth_lines(doc: dict) -> list[str]:
    """Issue 26 item 2 in words: for each row measured at the xlong budget, which gains no longer
    change detectably (the long -> xlong change's CI contains 0: "stopped"), which still grow or
    shrink, and what the curve suggests: a gain still growing is shown with its previous 4x step
    (short -> long) beside this one, each with its seeds, so that the pace can be read. From a
    study.json document (its ``growth``); malformed entries are skipped."""
    def est(p: dict) -> str:
        return f"{p['diff']:+.1f} [{p['ci'][0]:+.1f}, {p['ci'][1]:+.1f}]"

    def nseeds(p: dict) -> str:
        n = len(p.get("seeds") or [])
        return f"{n} seed{'s' if n != 1 else ''}"

    out = []
    for g in doc.get("growth") or []:
        late = g.get("late") if isinstance(g, dict) else None
        if not isinstance(late, dict) or not late:
            continue
        late = {m: p for m, p in late.items() if isinstance(p, dict) and "diff" in p and "ci" in p}
        if not late:
            continue
        marks = g.get("stopped") if isinstance(g.get("stopped"), dict) else {}
        early_all = g.get("measures") if isinstance(g.get("measures"), dict) else {}
        seeds = sorted({s for p in late.values() for s in p.get("seeds") or []})
        by: dict[str, list[str]] = {"stopped": [], "growing": [], "shrinking": []}
        notes = []
        for m, p in late.items():
            name = MEASURE_LABELS.get(m[:-len("_gain")], m)
            mark = marks.get(m) if marks.get(m) in by else stopped(p)
            by[mark].append(f"{name} {est(p)}")
            early = early_all.get(m)
            if mark == "growing" and isinstance(early, dict) and "diff" in early:
                # the two 4x steps, for the reader to judge the pace (their seeds may differ)
                notes.append(f"{name} {early['diff']:+.1f} ({nseeds(early)}) then {p['diff']:+.1f} ({nseeds(p)})")
        n = len(seeds)
        parts = [f"{k}: " + ", ".join(v) for k, v in by.items() if v]
        line = f"{g.get('row', '?')}, long -> xlong ({n} seed{'s' if n != 1 else ''}): " + "; ".join(parts)
        if not by["growing"] and not by["shrinking"]:
            line += ". No gain changes detectably from the long to the xlong budget (every CI contains 0)"
        elif by["growing"]:
            line += (". Not flattened yet" + (f" (per 4x budget: {', '.join(notes)})" if notes else "")
                     + ": a longer budget is needed to see where these gains stop")
        out.append(line)
    return out


def to_decide(cells: Cells, design: Design, a: str, b: str, m: str, budget: str) -> dict | None:
    """For an undecided difference a - b of ``m`` at ``budget``: the seeds (at the measured test
    videos) or test videos (at the measured seeds) that would decide it if the difference and its
    variance stayed as measured (:func:`csvr.eval.stats.sample_size_to_decide`)."""
    dd = _difference(cells, design, a, b, m, budget)
    if dd is None:
        return None
    n = sample_size_to_decide(dd[0], ci=_ci(dd[0]))
    s, q = n["measured"]
    # undecided as measured: more than what was measured, whatever the approximation says
    return {"seeds": None if n["seeds"] is None else max(n["seeds"], s + 1),
            "test_videos": None if n["items"] is None else max(n["items"], q + 1),
            "measured_seeds": s, "measured_test_videos": q}


def claims(cells: Cells, design: Design) -> list[dict]:
    """The design's claims (a > b), answered on every measure and budget; ``answer``: from
    :data:`ANSWER`. Between rows on different networks also the difference of what pretraining
    added to each network (the gains over own controls), answered in ``answer_gain_over_own_network``."""
    out = []
    for text, a, b in design.claims:
        per = {}
        # rows on different networks (f_i sees poses, f_s / IIC / CVRL do not): also compare what
        # pretraining added to each network, i.e. the difference of the gains over own controls
        across = design.network_of(a) != design.network_of(b)
        ms = MEASURES + (tuple(f"{m}_gain" for m in MEASURES) if across else ())
        for budget in ("long", "short", "xlong"):
            for m in ms:
                p = paired(cells, design, a, b, m, budget)
                if p:
                    if p["answer"] == "undecided" and m in DECIDE_MEASURES:
                        p["to_decide"] = to_decide(cells, design, a, b, m, budget)
                    per[f"{m}@{budget}"] = p
        for m in ms:  # does the gap between a and b grow from one budget to the next?
            for early, late in GROWTH_STEPS:
                g = _growth(_difference(cells, design, a, b, m, late), _difference(cells, design, a, b, m, early),
                            (early, late))
                if g:
                    per[f"{m}@{late}-{early}"] = g
        main = per.get(ANSWER)
        c = {"claim": text, "answer": main["answer"] if main else "not measured", "measures": per,
             "answers": {b: per[f"{ANSWER.split('@')[0]}@{b}"]["answer"] for b in TRAINED_BUDGETS
                         if f"{ANSWER.split('@')[0]}@{b}" in per}}
        if across:
            g = per.get(ANSWER_GAIN)
            c["answer_gain_over_own_network"] = g["answer"] if g else "not measured"
            c["answers_gain_over_own_network"] = {b: per[f"{ANSWER_GAIN.split('@')[0]}@{b}"]["answer"]
                                                  for b in TRAINED_BUDGETS
                                                  if f"{ANSWER_GAIN.split('@')[0]}@{b}" in per}
        out.append(c)
    return out


def headline(doc: dict) -> list[dict]:
    """The study's headline (issue 26): each claim answered at the longest budget where its answer
    measure (finetune top-1, all labels) is measured with the most seeds, with the paired
    difference, its CI, the seeds and, when undecided, what would decide it; a longer budget
    measured with fewer seeds so far is added as ``so_far`` (so that one seed does not replace
    three). Also the gain over each side's own network for claims across networks. From a
    study.json document (``aggregate``'s ``claims``)."""
    out = []
    m, mg = ANSWER.split("@")[0], ANSWER_GAIN.split("@")[0]
    secs = doc.get("budgets_seconds") or {}
    for c in doc.get("claims") or []:
        per = c.get("measures") or {}
        have = [b for b in TRAINED_BUDGETS if f"{m}@{b}" in per]
        most = max((len(per[f"{m}@{b}"]["seeds"]) for b in have), default=0)
        budget = next((b for b in reversed(have) if len(per[f"{m}@{b}"]["seeds"]) == most), None)
        h = {"claim": c["claim"], "budget": budget, "seconds": secs.get(budget)}
        if budget is None:
            h["answer"] = "not measured"
        else:
            p = per[f"{m}@{budget}"]
            h.update({"answer": p["answer"], "diff": p["diff"], "ci": p["ci"], "seeds": p["seeds"],
                      "to_decide": p.get("to_decide")})
            g = per.get(f"{mg}@{budget}")
            if "answer_gain_over_own_network" in c:
                h["gain_over_own_network"] = ({k: g[k] for k in ("answer", "diff", "ci", "seeds")} if g else None)
            later = have[have.index(budget) + 1:]
            if later:
                q = per[f"{m}@{later[-1]}"]
                h["so_far"] = {"budget": later[-1], "seconds": secs.get(later[-1]),
                               **{k: q[k] for k in ("answer", "diff", "ci", "seeds")}}
        out.append(h)
    return out


#: Above these, :func:`headline_lines` calls the difference too small to decide with a practical
#: study instead of quoting the size as a plan (the study runs 3 seeds x 180 test videos; a seed of
#: an xlong row costs ~37 min of this machine, a long one 11-16 min).
PRACTICAL_SEEDS = 20
PRACTICAL_TEST_VIDEOS = 2000


def decide_text(need: Any) -> str:
    """What would decide an undecided difference (a ``to_decide`` dict), in words: "deciding it
    would take ~S seeds or ~Q test videos", or, when neither is practical
    (:data:`PRACTICAL_SEEDS`, :data:`PRACTICAL_TEST_VIDEOS`), that the difference is too small for
    its variance to be decided by a practical study; with one measured seed the seed-to-seed
    variance is unknown and the text says so. "" without a usable estimate."""
    if not isinstance(need, dict):
        return ""

    def count(k: str) -> int | None:
        v = need.get(k)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None

    seeds, videos = count("seeds"), count("test_videos")
    if any(need.get(k) is not None and count(k) is None for k in ("seeds", "test_videos")):
        return ""  # a malformed estimate (hand-edited file): say nothing rather than something wrong
    opts = [f"~{seeds} seeds" if seeds else None, f"~{videos} test videos" if videos else None]
    opts = [o for o in opts if o]
    one_seed = need.get("measured_seeds") == 1
    if not opts:
        return "neither more seeds nor more test videos alone would decide it"
    if (seeds or PRACTICAL_SEEDS + 1) <= PRACTICAL_SEEDS or (videos or PRACTICAL_TEST_VIDEOS + 1) <= PRACTICAL_TEST_VIDEOS:
        text = "deciding it would take " + " or ".join(opts)
    else:  # e.g. a +0.2-point difference: say so rather than quote thousands of seeds as a plan
        text = "as measured, too small a difference for its variance to decide with a practical study (" + \
            " or ".join(opts) + ")"
    return text + (" (seed-to-seed variance unmeasured with 1 seed, taken as 0)" if one_seed else "")


def headline_lines(doc: dict) -> list[str]:
    """:func:`headline` as one line per claim (README, the demo's closing lines): the answer, the
    budget it is read at, the paired difference of finetune top-1 in points with its 95 % CI and
    seeds, what would decide an undecided one, and for claims across networks the same for the
    gains over each side's own network."""
    def est(h: dict) -> str:
        n = len(h["seeds"])
        return f"{h['diff']:+.1f} [{h['ci'][0]:+.1f}, {h['ci'][1]:+.1f}], {n} seed{'s' if n != 1 else ''}"

    lines = []
    for h in doc.get("headline") or headline(doc):
        if h.get("budget") is None:
            lines.append(f"{h['claim']}: not measured yet")
            continue
        at = f"{h['seconds']:.0f} s" if isinstance(h.get("seconds"), (int, float)) else f"the {h['budget']} budget"
        line = f"{h['claim']}: {h['answer']} at {at} ({est(h)})"
        need = decide_text(h.get("to_decide")) if h["answer"] == "undecided" else ""
        if need:
            line += f"; {need}"
        later = h.get("so_far")
        if isinstance(later, dict) and later.get("seeds"):
            at2 = (f"{later['seconds']:.0f} s" if isinstance(later.get("seconds"), (int, float))
                   else f"the {later.get('budget')} budget")
            line += f"; at {at2} so far: {later['answer']} ({est(later)})"
        if "gain_over_own_network" in h:  # a claim across networks
            g = h["gain_over_own_network"]
            line += (f"; gains over own network: {g['answer']} ({est(g)})" if g
                     else "; gains over own network: not measured yet")
        lines.append(line)
    return lines


# ============================================================================ study.json's table
def markdown_table(doc: dict) -> str:
    """study.json's ``table``: its rows, claims and growth as markdown tables."""
    def cell(r, m):
        if r.get(m) is None:
            return "-"
        lo, hi = r[f"{m}_ci"]
        s = f"{r[m]:.1f} [{lo:.1f}, {hi:.1f}]"
        if r.get(f"{m}_gain") is not None:
            g, (glo, ghi) = r[f"{m}_gain"], r[f"{m}_gain_ci"]
            s += f" ({g:+.1f} [{glo:+.1f}, {ghi:+.1f}] vs {r[f'{m}_control']:.1f})"
        return s

    lines = ["| row | budget | seeds | n test | kNN top-1 (gain vs random init) | linear top-1 (gain) | "
             "finetune top-1 | "
             "finetune 10 % | R@1 (gain) | motion / context / both (finetune) |", "|---" * 10 + "|"]
    for r in doc["rows"]:
        g = r.get("finetune_top1_groups") or {}
        grp = " / ".join(f"{g[k]['mean']:.0f}" if k in g else "-" for k in GROUPS)
        lines.append(f"| {r['name']} | {r['budget']} | {len(r['seeds'])} | {r['n_test']} | {cell(r, 'knn_top1')} | "
                     f"{cell(r, 'linear_top1')} | {cell(r, 'finetune_top1')} | {cell(r, 'finetune10_top1')} | "
                     f"{cell(r, 'r1')} | {grp} |")
    def diff(c, key):
        p = c["measures"].get(key)
        return "-" if p is None else f"{p['diff']:+.1f} [{p['ci'][0]:+.1f}, {p['ci'][1]:+.1f}] {p['answer']}"

    if doc.get("claims"):
        lines += ["", "| claim (long budget, a - b, paired) | finetune top-1 | finetune 10 % | kNN top-1 | "
                      "gains over own network: finetune / finetune 10 % / kNN |", "|---" * 5 + "|"]
        for c in doc["claims"]:
            own = (" / ".join(diff(c, f"{m}_gain@long") for m in ("finetune_top1", "finetune10_top1", "knn_top1"))
                   if "answer_gain_over_own_network" in c else "f_i on both sides")
            lines.append(f"| {c['claim']} | {diff(c, 'finetune_top1@long')} | {diff(c, 'finetune10_top1@long')} | "
                         f"{diff(c, 'knn_top1@long')} | {own} |")
    if any(f"finetune_top1@{b}" in c["measures"] for c in doc.get("claims") or [] for b in ("short", "xlong")):
        lines += ["", "| claim at every budget (finetune top-1 with all labels, 10 % at the short budget; a - b) | "
                      "short (10 %) | long | xlong |", "|---" * 4 + "|"]
        def decided(c, key):
            need = decide_text(c["measures"].get(key, {}).get("to_decide"))
            return diff(c, key) + (f"; {need}" if need else "")

        for c in doc["claims"]:
            lines.append(f"| {c['claim']} | {decided(c, 'finetune10_top1@short')} | {decided(c, 'finetune_top1@long')} | "
                         f"{decided(c, 'finetune_top1@xlong')} |")

    def grew(p):
        return ("-" if p is None else f"{p['short']:+.1f} -> {p['long']:+.1f} ({p['diff']:+.1f} "
                f"[{p['ci'][0]:+.1f}, {p['ci'][1]:+.1f}] {p['answer']})")

    if doc.get("growth"):
        lines += ["", "| gain over the control, short -> long budget (long - short, paired) | kNN top-1 | linear top-1 "
                      "| finetune 10 % | R@1 |", "|---" * 5 + "|"]
        for g in doc["growth"]:
            lines.append(f"| {g['row']} | " + " | ".join(grew(g["measures"].get(m)) for m in GROWTH_MEASURES) + " |")
    late = [g for g in doc.get("growth") or [] if g.get("late")]
    if late:
        def grew_late(p, st):
            return ("-" if p is None else f"{p['long']:+.1f} -> {p['xlong']:+.1f} ({p['diff']:+.1f} "
                    f"[{p['ci'][0]:+.1f}, {p['ci'][1]:+.1f}]: {st})")

        ms = GROWTH_MEASURES + ("finetune_top1_gain",)
        lines += ["", "| gain over the control, long -> xlong budget (xlong - long, paired; stopped: the CI contains 0) "
                      "| kNN top-1 | linear top-1 | finetune 10 % | R@1 | finetune |", "|---" * 6 + "|"]
        for g in late:
            lines.append(f"| {g['row']} | " + " | ".join(grew_late(g["late"].get(m), g["stopped"].get(m)) for m in ms)
                         + " |")
    grown = [c for c in doc.get("claims") or [] if any(k.endswith("@long-short") for k in c["measures"])]
    if grown:
        lines += ["", "| claim: gap a - b, short -> long budget (long - short, paired) | kNN top-1 | finetune 10 % | "
                      "gains over own network: kNN / finetune 10 % |", "|---" * 4 + "|"]
        for c in grown:
            own = (" / ".join(grew(c["measures"].get(f"{m}_gain@long-short")) for m in ("knn_top1", "finetune10_top1"))
                   if "answer_gain_over_own_network" in c else "f_i on both sides")
            lines.append(f"| {c['claim']} | {grew(c['measures'].get('knn_top1@long-short'))} | "
                         f"{grew(c['measures'].get('finetune10_top1@long-short'))} | {own} |")
    return "\n".join(lines)


__all__ = ["ANSWER", "ANSWER_GAIN", "BUDGETS", "Cells", "Design", "FINETUNE", "FORMAT_VERSION", "FROZEN", "GROUPS",
           "DECIDE_MEASURES", "GROWTH_MEASURES", "GROWTH_STEPS", "MEASURES", "MEASURE_LABELS", "N_BOOT", "PRACTICAL_SEEDS", "PRACTICAL_TEST_VIDEOS", "RECALL_KS", "STUDY_FORMAT", "StudyRow",
           "TRAINED_BUDGETS", "UNIT_FORMAT", "aggregate", "claims", "control_matrix", "control_name", "decide_text", "decode_scores", "encode_scores",
           "finetune_gains", "growth", "growth_lines", "headline", "headline_lines", "load_study", "load_units", "markdown_table", "now", "paired", "pct", "stopped", "to_decide",
           "unit_name", "verdict", "write_json"]
