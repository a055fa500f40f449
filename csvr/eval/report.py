"""``csvr report``: the tables and pictures of one or more runs, side by side.

A run folder is any of

* a pretraining run (``csvr pretrain``): ``summary.json``, ``metrics.csv``, ``epochs.csv``,
  ``config.yaml``, ``checkpoints/``;
* a finetuning / linear-probe run: the same plus ``results.json`` (clip / video top-1, per-class
  accuracy, confusion matrix, optionally ``class_groups``);
* a folder written by ``csvr retrieve`` (``retrieval.json``); a run folder may also hold
  ``retrieval.json`` or ``retrieval*/retrieval.json`` of its own checkpoints;
* a folder written by ``csvr knn`` (``knn.json``): the "Frozen features" section, each measure
  beside the same network from random weights with the paired difference and its 95 % interval
  (what ``csvr demo`` prints as its frozen rows).

The report has: a summary table (run, kind, method, feature, clip / video top-1, R@k, the video
top-1's 95 % interval), the last pretext metrics of pretraining runs (Table II's columns), video
top-1 per run with error bars (:func:`video_top1_interval`; seeds of one configuration pooled as
mean +- sd), per-class accuracy of all runs in one chart grouped as in Fig. 4 (groups from ``results.json`` or from the dataset when it documents
them: the built-in synthetic dataset does) and as a table, confusion matrices, training curves,
retrieval examples (reading the videos through the manifest named in ``retrieval.json`` or the
run's config), and with ``samples=True`` the CSVR sample pictures of CSVR pretraining runs.
With ``study=`` (``csvr report --study benchmarks/results/study.json``, alone or with run
folders) it also has the "Replication study" section: every row x measure as mean [95 % CI] with
seeds and test videos, one bar chart per measure (rows grouped by budget, error bars = the CI,
the random-init control as a black tick), the frozen measures' gains with their CIs and a zero
line, and the paper's claims and the issue's goals with their answers; what the study has not
measured yet reads "not run yet".
The method column is the run's own record: a classifier trained from random weights
(``init: scratch`` or no pretraining checkpoint) is "scratch", one initialised from a checkpoint
carries that checkpoint's method ("csvr", "iic", "cvrl", "supervised"), a retrieval of a random
encoder is "scratch". The confusion matrices order classes as the per-class bars.

Outputs: ``OUT/report.html`` (self-contained: every picture embedded as a base64 data URI, no
external file, script or style sheet), ``OUT/report.md`` (same content; pictures under
``OUT/images/``). Everything is built in memory first and each file is written atomically, so a
failure (e.g. a run folder without results) leaves no partial report.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml

from csvr import __version__
from csvr.data.index import load_manifest
from csvr.errors import CsvrError, OutsideRootError
from csvr.eval.plots import (GROUP_ORDER, NOT_RUN, _grouped_order, class_groups_for_manifest, confusion_chart,
                             csvr_sample_pictures, per_class_chart, read_csv_rows, retrieval_examples_chart, save_image,
                             study_chart, study_gain_chart, study_growth_chart, top1_chart, training_curves_chart)
from csvr.eval.stats import bootstrap_ci
from csvr.eval.study import (ANSWER, BUDGETS, GROWTH_MEASURES, MEASURE_LABELS, TRAINED_BUDGETS, decide_text, growth_lines, headline_lines,
                             load_study)
from csvr.utils.io import atomic_write, atomic_write_text

log = logging.getLogger(__name__)

PRETEXT_COLUMNS = ("context_top1", "pose_mse", "video_r_mse", "video_p_mse", "pair_top1", "total")


@dataclass
class RunData:
    """One run folder as the report sees it."""

    path: Path
    name: str
    kind: str
    method: str
    config: dict = field(default_factory=dict)
    summary: dict | None = None
    results: dict | None = None
    retrievals: list[tuple[str, dict]] = field(default_factory=list)
    has_curves: bool = False
    knn: dict | None = None  # knn.json of 'csvr knn'

    @property
    def manifest(self) -> str | None:
        data = self.config.get("data") if isinstance(self.config.get("data"), dict) else {}
        return data.get("manifest") or None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CsvrError(f"{path}: not a readable JSON file ({e.__class__.__name__}: {str(e)[:120]})") from None
    if not isinstance(data, dict):
        raise CsvrError(f"{path}: expected a JSON object")
    return data


def _read_config(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise CsvrError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return data if isinstance(data, dict) else {}


def load_run(path: str | Path) -> RunData:
    """Read a run folder; :class:`CsvrError` naming it when it has no results at all."""
    p = Path(path)
    if not p.is_dir():
        raise CsvrError(f"run folder not found: {p}")
    results = _read_json(p / "results.json") if (p / "results.json").is_file() else None
    summary = _read_json(p / "summary.json") if (p / "summary.json").is_file() else None
    retrievals: list[tuple[str, dict]] = []
    for f in [p / "retrieval.json"] + sorted(p.glob("retrieval*/retrieval.json")):
        if f.is_file():
            r = _read_json(f)
            missing = [k for k in ("recall", "query_ids", "gallery_ids", "neighbors") if k not in r]
            if missing:
                raise CsvrError(f"{f}: not a 'csvr retrieve' result (missing {', '.join(missing)})")
            retrievals.append(("retrieval" if f.parent == p else f.parent.name, r))
    curves = (p / "metrics.csv").is_file() or (p / "epochs.csv").is_file()
    knn = _read_json(p / "knn.json") if (p / "knn.json").is_file() else None
    if knn is not None and not isinstance(knn.get("measures"), dict):
        raise CsvrError(f"{p / 'knn.json'}: not a 'csvr knn' result (no 'measures')")
    if results is None and summary is None and not retrievals and not curves and knn is None:
        raise CsvrError(f"{p} has no results: expected results.json ('csvr finetune' / 'csvr linear-probe'), "
                        "retrieval.json ('csvr retrieve'), knn.json ('csvr knn'), or summary.json / metrics.csv / "
                        "epochs.csv (a training run)")
    if results is not None and not isinstance(results.get("per_class", {}), dict):
        raise CsvrError(f"{p / 'results.json'}: 'per_class' must map class names to accuracies")
    config = _read_config(p / "config.yaml")
    if results is not None:
        kind = str(results.get("kind") or "finetune")
    elif summary is not None or curves:
        kind = str(config.get("kind") or (summary or {}).get("kind") or "pretrain")
    elif retrievals:
        kind = "retrieval"
    else:
        kind = "frozen"
    method = (results or {}).get("method") or config.get("method") or (summary or {}).get("method") \
        or next((r.get("method") for _, r in retrievals if r.get("method")), None) or (knn or {}).get("method") or "?"
    if method == "supervised":  # a finetuning job: name the method whose architecture it trains
        method = (config.get("model") or {}).get("arch_method") or method
    if results is not None and _is_scratch(results, config):
        method = "scratch"
    elif results is None and retrievals and all(r.get("init") == "random" for _, r in retrievals):
        method = "scratch"
    return RunData(path=p, name=p.name or str(p), kind=kind, method=str(method), config=config, summary=summary,
                   results=results, retrievals=retrievals, has_curves=curves, knn=knn)


def _is_scratch(results: dict, config: dict) -> bool:
    """A classifier trained from random weights, by the run's own record: ``init: scratch``, or
    no pretraining checkpoint at all (``pretrained: null``). Its method column then says
    "scratch" rather than the method whose architecture it borrowed; a run initialised from a
    supervised checkpoint keeps "supervised" (its pretraining method)."""
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    init = results.get("init") or model.get("init")
    if init == "scratch":
        return True
    if "pretrained" in results:
        return not results["pretrained"]
    return "pretrained" in model and not model["pretrained"]


def video_top1_interval(results: dict) -> tuple[float, float] | None:
    """The 95 % interval of a run's video top-1: its own ``video_top1_ci`` when results.json has
    one, else a percentile bootstrap over its test videos (each right or wrong, from the
    confusion matrix's diagonal; :func:`csvr.eval.stats.bootstrap_ci`). None without either."""
    given = results.get("video_top1_ci")
    if isinstance(given, (list, tuple)) and len(given) == 2:
        return float(given[0]), float(given[1])
    cm = results.get("confusion")
    if not cm:
        return None
    m = np.asarray(cm, dtype=np.int64)
    right, total = int(np.trace(m)), int(m.sum())
    if total == 0:
        return None
    return bootstrap_ci(np.r_[np.ones(right), np.zeros(total - right)])


def _seed(run: "RunData") -> Any:
    train = run.config.get("train") if isinstance(run.config.get("train"), dict) else {}
    return (run.results or {}).get("seed", train.get("seed"))


# ----------------------------------------------------------------------------- formatting
def _pct(x: Any) -> str:
    try:
        return f"{100.0 * float(x):.1f}"
    except (TypeError, ValueError):
        return ""


def _num(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return ""
    return f"{v:.4g}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


@dataclass
class _Image:
    name: str
    caption: str
    data: bytes

    @property
    def mime(self) -> str:
        return "image/gif" if self.name.endswith(".gif") else "image/png"


@dataclass
class _Section:
    title: str
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    images: list[_Image] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


def _last_values(rows: list[dict[str, str]], keys: Sequence[str]) -> dict[str, str]:
    """The latest non-empty value of each key (each metric from the last row that logged it)."""
    out: dict[str, str] = {}
    for r in reversed(rows):
        for k in keys:
            if k not in out and (r.get(k) or "").strip():
                out[k] = r[k]
    return out


# ----------------------------------------------------------------------------- building
def _summary_section(runs: list[RunData]) -> _Section:
    ks = sorted({int(k) for run in runs for _, r in run.retrievals for k in r["recall"]})
    head = ["run", "kind", "method", "feature", "clip top-1 (%)", "video top-1 (%)"] + [f"R@{k} (%)" for k in ks] \
        + ["test videos", "video top-1 95 % CI (%)"]
    rows = []
    for run in runs:
        used = set()
        if run.results is not None:
            res = run.results
            rec = next(((i, r) for i, (_, r) in enumerate(run.retrievals) if r.get("feature") == res.get("feature")),
                       None)
            recall = {}
            if rec is not None:
                used.add(rec[0])
                recall = rec[1]["recall"]
            ci = video_top1_interval(res)
            rows.append([run.name, run.kind, run.method, str(res.get("feature") or ""), _pct(res.get("clip_top1")),
                         _pct(res.get("video_top1"))] + [_pct(recall.get(str(k))) for k in ks]
                        + [str(res.get("num_videos") or ""), f"{_pct(ci[0])}-{_pct(ci[1])}" if ci else ""])
        for i, (label, r) in enumerate(run.retrievals):
            if i in used:
                continue
            name = run.name if label == "retrieval" else f"{run.name} ({label})"
            feat = str(r.get("feature") or "") + (", random init" if r.get("init") == "random" else "")
            method = "scratch" if r.get("init") == "random" else str(r.get("method") or run.method)
            rows.append([name, "retrieval", method, feat, "", ""]
                        + [_pct(r["recall"].get(str(k))) for k in ks] + [str(r.get("num_queries") or ""), ""])
        if run.results is None and not run.retrievals:
            feat = str((run.knn or {}).get("feature") or "")
            tests = str((run.knn or {}).get("num_test") or "")
            rows.append([run.name, run.kind, run.method, feat, "", ""] + [""] * len(ks) + [tests, ""])
    sec = _Section("Summary", tables=[(head, rows)])
    if ks:
        clips = sorted({str((r.get("protocol") or {}).get("clips_per_video", "?")) for run in runs
                        for _, r in run.retrievals})
        sec.text.append("R@k: fraction of test videos with a same-class training video among their k nearest (cosine "
                        "similarity of the L2-normalised mean of each video's uniformly spaced clip features; "
                        f"{' / '.join(clips)} clips per video), as in the paper's Table VIII.")
    return sec


FROZEN_MEASURES = {"knn20_top1": "kNN k=20 top-1", "knn1_top1": "kNN k=1 top-1 (= R@1)", "knn20_top5": "kNN k=20 top-5",
                   "linear_top1": "linear top-1", "linear_top5": "linear top-5"}


def _frozen_section(runs: list[RunData]) -> _Section | None:
    """``csvr knn`` results: each measure beside the random-init control, the paired difference
    and its 95 % interval over the test videos."""
    have = [r for r in runs if r.knn is not None]
    if not have:
        return None
    head = ["run", "method", "feature", "measure", "pretrained (%)", "random init (%)", "difference [95 % CI]",
            "test videos", "control seeds"]
    rows = []
    for run in have:
        k = run.knn or {}
        seeds = (k.get("control") or {}).get("seeds") or []
        for m, label in FROZEN_MEASURES.items():
            d = (k.get("measures") or {}).get(m)
            if not isinstance(d, dict):
                continue
            ci = d.get("gain_ci") or ["", ""]
            diff = f"{d['gain']:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]" if d.get("gain") is not None else ""
            pc = lambda x: f"{float(x):.1f}" if x is not None else ""  # noqa: E731 - knn.json is in percent
            rows.append([run.name, run.method, str(k.get("feature") or ""), label, pc(d.get("mean")), pc(d.get("control")), diff,
                         str(k.get("num_test") or ""), str(len(seeds))])
    sec = _Section("Frozen features against random-init controls", tables=[(head, rows)])
    sec.text.append("Frozen features of the test videos query the training videos (weighted kNN) or a logistic "
                    "regression trained on the training videos' features (linear); the control is the same network "
                    "and feature from random weights (mean over its seeds); the difference is paired by test video "
                    "with a 95 % bootstrap interval.")
    return sec


def _pretext_section(runs: list[RunData]) -> _Section | None:
    rows, present = [], set()
    for run in runs:
        if run.kind != "pretrain":
            continue
        ep = run.path / "epochs.csv"
        vals = _last_values(read_csv_rows(ep), PRETEXT_COLUMNS) if ep.is_file() else {}
        if not vals and run.summary:
            vals = {k: v for k, v in (run.summary.get("last_epoch_metrics") or {}).items() if k in PRETEXT_COLUMNS}
        present |= set(vals)
        steps = (run.summary or {}).get("global_step", "")
        rows.append((run, steps, vals))
    if not rows:
        return None
    cols = [c for c in PRETEXT_COLUMNS if c in present]
    head = ["run", "method", "steps"] + cols
    table = [[run.name, run.method, str(steps)] + [_num(vals.get(c)) for c in cols] for run, steps, vals in rows]
    return _Section("Pretext metrics (last logged value of each)", tables=[(head, table)],
                    text=["context_top1: I-frame matching accuracy; pose_mse: future-pose MSE (normalised pose "
                          "units); video_r_mse / video_p_mse: reconstructed / predicted frames MSE in [-1, 1] pixels; "
                          "pair_top1: IIC / CVRL view-matching accuracy (paper Table II)."])


def _class_groups(runs: list[RunData]) -> dict[str, str] | None:
    groups: dict[str, str] = {}
    for run in runs:
        if run.results and isinstance(run.results.get("class_groups"), dict):
            groups.update({str(k): str(v) for k, v in run.results["class_groups"].items()})
    if groups:
        return groups
    for run in runs:
        manifests = [run.manifest] + [r.get("manifest") for _, r in run.retrievals]
        for m in manifests:
            if m and Path(m).is_file():
                found = class_groups_for_manifest(m)
                if found:
                    return found
    return None


def _top1_section(runs: list[RunData]) -> _Section | None:
    """Video top-1 of every classifier run as bars with error bars; runs that differ only in
    their seed (same kind, method, feature, label fraction) are one bar, mean +- 1 sd."""
    with_res = [r for r in runs if r.results and r.results.get("video_top1") is not None]
    if not with_res:
        return None
    groups: dict[tuple, list[RunData]] = {}
    for r in with_res:
        res = r.results
        key = (r.kind, r.method, str(res.get("feature") or ""), res.get("label_fraction"))
        groups.setdefault(key, []).append(r)
    bars, text = [], []
    for key, members in groups.items():
        seeds = [_seed(m) for m in members]
        if len(members) > 1 and None not in seeds and len(set(map(str, seeds))) == len(members):
            vals = np.array([float(m.results["video_top1"]) for m in members])
            mean, sd = float(vals.mean()), float(vals.std(ddof=1))
            bars.append({"label": f"{key[1]} {key[2]} ({len(members)} seeds)".replace("  ", " "), "value": mean,
                         "interval": (mean - sd, mean + sd), "points": vals.tolist(), "scratch": key[1] == "scratch"})
            text.append(f"{bars[-1]['label']}: {', '.join(m.name for m in members)} (seeds "
                        f"{', '.join(map(str, seeds))}): mean {100 * mean:.1f} %, sd {100 * sd:.1f}.")
            continue
        for m in members:
            bars.append({"label": f"{m.name} ({m.method})", "value": float(m.results["video_top1"]),
                         "interval": video_top1_interval(m.results), "scratch": m.method == "scratch"})
    png = top1_chart(bars)
    text.insert(0, "Error bars: for one run, the 95 % interval of its video top-1 (the run's own video_top1_ci "
                   "when results.json has one, else a percentile bootstrap over its test videos); for several "
                   "seeds of one configuration, mean +- 1 sd across the seeds (each seed a dot). Hatched: trained "
                   "from random weights (scratch).")
    return _Section("Top-1 accuracy per run", images=[_Image("top1.png", "video top-1 per run", png)], text=text)


def _per_class_section(runs: list[RunData], groups: dict[str, str] | None) -> _Section | None:
    with_pc = [r for r in runs if r.results and r.results.get("per_class")]
    if not with_pc:
        return None
    classes: dict[str, None] = {}
    for r in with_pc:
        for c in r.results.get("classes") or list(r.results["per_class"]):
            classes.setdefault(str(c), None)
    def label(r: RunData) -> str:
        return r.name + (f" ({r.results.get('feature')})" if r.results.get("feature") else "")

    data = {label(r): r.results["per_class"] for r in with_pc}
    errors = {label(r): r.results["per_class_ci"] for r in with_pc if isinstance(r.results.get("per_class_ci"), dict)}
    png = per_class_chart(data, groups, list(classes), title="Per-class video-level accuracy (grouped as Fig. 4)",
                          errors=errors or None)
    order = _grouped_order(list(classes), groups)
    head = ["class", "group"] + list(data)
    rows = [[c, g if g in GROUP_ORDER else "", *[_pct(per.get(c)) for per in data.values()]] for c, g in order]
    sec = _Section("Per-class accuracy", tables=[(head, rows)],
                   images=[_Image("per-class.png", "per-class accuracy, all runs", png)])
    if groups:
        sec.text.append("Groups as in the paper's Fig. 4: motion-related classes (orange labels and band), "
                        "context-related (blue), both (black); bar colours only tell the runs apart.")
    if errors:
        sec.text.append("Error bars: the per-class 95 % intervals of " + ", ".join(errors) + " (per_class_ci).")
    return sec


def _confusion_section(runs: list[RunData], groups) -> _Section | None:
    imgs = []
    for r in runs:
        if r.results and r.results.get("confusion") and r.results.get("classes"):
            png = confusion_chart(r.results["confusion"], r.results["classes"], groups, title=r.name)
            imgs.append(_Image(f"confusion-{_slug(r.name)}.png", f"confusion matrix: {r.name}", png))
    return _Section("Confusion matrices (rows: true class)", images=imgs) if imgs else None


def _curves_section(runs: list[RunData]) -> _Section | None:
    imgs = []
    for r in runs:
        if r.has_curves:
            png = training_curves_chart(r.path, title=f"{r.name} ({r.kind}, {r.method})")
            if png:
                imgs.append(_Image(f"curves-{_slug(r.name)}.png", f"training curves: {r.name}", png))
    return _Section("Training curves", images=imgs) if imgs else None


def _skip_note(e: Exception) -> str:
    """A skipped picture's reason; a path outside the root names the report's own flag."""
    return str(e.with_advice("pass --allow-outside-root") if isinstance(e, OutsideRootError) else e)


def _retrieval_section(runs: list[RunData], notes: list[str], allow_outside_root: bool = False) -> _Section | None:
    imgs = []
    for run in runs:
        for label, r in run.retrievals:
            name = run.name if label == "retrieval" else f"{run.name}/{label}"
            mpath = r.get("manifest") or run.manifest
            if not mpath:
                notes.append(f"retrieval examples of {name} skipped: no manifest recorded")
                continue
            try:
                manifest = load_manifest(mpath, root=r.get("root"),
                                         allow_outside_root=allow_outside_root or bool(r.get("allow_outside_root")))
                png = retrieval_examples_chart(r, manifest)
            except (CsvrError, OSError) as e:
                notes.append(f"retrieval examples of {name} skipped: {_skip_note(e)}")
                continue
            imgs.append(_Image(f"retrieval-{_slug(name)}.png",
                               f"retrieval examples: {name} (feature {r.get('feature')}; green: same class as the "
                               "query, red: another class)", png))
    return _Section("Retrieval examples", images=imgs) if imgs else None


def csvr_samples(checkpoint: str | Path, manifest, pose_cache: str | Path,
                 out_dir: str | Path, **kw) -> dict[str, Path]:
    """:func:`csvr.eval.samples.generate_csvr_samples` drawn by :func:`csvr.eval.plots.csvr_sample_pictures` into
    ``out_dir`` (atomic files); returns their paths by picture name."""
    from csvr.eval.samples import generate_csvr_samples  # loads torch: see _samples_section

    pictures = csvr_sample_pictures(generate_csvr_samples(checkpoint, manifest, pose_cache, **kw))
    out = Path(out_dir)
    return {name: save_image(data, out / name) for name, data in pictures.items()}


def _samples_section(runs: list[RunData], notes: list[str], allow_outside_root: bool = False) -> _Section | None:
    # imported here: checkpoints and models load torch, which a report without --samples never
    # needs (`import csvr.eval.report` 0.3 s, with csvr.eval.samples 1.3 s)
    from csvr.engine.checkpoint import list_checkpoints
    from csvr.eval.samples import generate_csvr_samples

    imgs = []
    for run in runs:
        if run.kind != "pretrain" or run.method != "csvr":
            continue
        ckpts = list_checkpoints(run.path)
        data = run.config.get("data") or {}
        if not ckpts:
            notes.append(f"CSVR samples of {run.name} skipped: no checkpoint in {run.path / 'checkpoints'}")
            continue
        if not data.get("manifest") or not data.get("pose_cache"):
            notes.append(f"CSVR samples of {run.name} skipped: its config names no data.manifest / data.pose_cache")
            continue
        try:
            manifest = load_manifest(data["manifest"], root=data.get("root"),
                                     allow_outside_root=allow_outside_root or bool(data.get("allow_outside_root")))
            samples = generate_csvr_samples(ckpts[-1], manifest, data["pose_cache"],
                                            split=str(data.get("split") or "1"))
            pics = csvr_sample_pictures(samples)
        except (CsvrError, OSError) as e:
            notes.append(f"CSVR samples of {run.name} skipped: {_skip_note(e)}")
            continue
        captions = {"csvr_poses.png": "future poses, real vs predicted",
                    "csvr_poses.gif": "real vs predicted (animated)",
                    "csvr_frames.png": "real vs reconstructed / predicted frames"}
        for key, blob in pics.items():
            imgs.append(_Image(f"{_slug(run.name)}-{key}", f"{run.name} ({ckpts[-1].name}): {captions.get(key, key)}",
                               blob))
    if not imgs:
        notes.append("--samples: no CSVR pretraining run with a usable checkpoint and dataset among the runs")
        return None
    return _Section("CSVR samples (pose generator and video generators on real clips)", images=imgs)


# ----------------------------------------------------------------------------- replication study
def _fnum(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v else None  # NaN: not measured


def _fpair(x: Any) -> tuple[float, float] | None:
    if not isinstance(x, (list, tuple)) or len(x) != 2:
        return None
    lo, hi = _fnum(x[0]), _fnum(x[1])
    return None if lo is None or hi is None else (lo, hi)


def _study_measures(rows: list[dict]) -> list[str]:
    """The study's measures (:data:`csvr.eval.study.MEASURE_LABELS`, in the table's order), then any
    other measure the file has (a key ``<m>`` with ``<m>_ci``), by its name."""
    extra = sorted({k[:-3] for r in rows for k in r if k.endswith("_ci") and not k.endswith("_gain_ci")}
                   - set(MEASURE_LABELS))
    return list(MEASURE_LABELS) + extra


def _est(value: Any, ci: Any, signed: bool = False) -> str:
    """``mean [low, high]`` with one decimal (the study's percent values), or "not run yet"."""
    v, c = _fnum(value), _fpair(ci)
    if v is None:
        return NOT_RUN
    f = "{:+.1f}" if signed else "{:.1f}"
    return f.format(v) + (f" [{f.format(c[0])}, {f.format(c[1])}]" if c else "")


#: a cell the study's design does not measure (study.json rows' ``not_measured``: e.g. the short
#: budget finetunes with 10 % of the labels only), as opposed to one not run yet
NOT_IN_DESIGN = "not in the design"
#: a measure a row has but the study has no control for
NO_CONTROL = "no control"


def _designed_out(r: dict, m: str) -> bool:
    """Whether ``m`` is a measure the study's design does not take for row ``r``."""
    nm = r.get("not_measured")
    return isinstance(nm, dict) and m in nm and _fnum(r.get(m)) is None


def _control_cells(r: dict, m: str) -> tuple[str, str]:
    """(control, gain) cells of row ``r`` for measure ``m``: "no control" where the row has the
    measure but the study has no control for it (a random-init row is its own control; f_d only
    has no scratch finetuning of its network), not "not run yet"."""
    if _designed_out(r, m):
        return NOT_IN_DESIGN, NOT_IN_DESIGN
    if _fnum(r.get(m)) is not None and _fnum(r.get(f"{m}_gain")) is None:
        return NO_CONTROL, NO_CONTROL
    return _est(r.get(f"{m}_control"), None), _est(r.get(f"{m}_gain"), r.get(f"{m}_gain_ci"), signed=True)


def _study_row_label(r: dict) -> str:
    return str(r.get("name") or r.get("slug") or "?")


def _study_words(make: Callable[[dict], list[str]], doc: dict) -> list[str]:
    """``make(doc)`` (the headline's or the growth's lines), or none where a hand-edited or older
    study.json lacks what they read: the rest of the section still renders."""
    try:
        return make(doc)
    except (AttributeError, KeyError, TypeError, ValueError):
        return []


def _study_section(doc: dict, path: Path) -> _Section:
    """The replication study (:mod:`csvr.eval.study`; benchmarks/study.py runs it): every row's
    measures with their 95 % CIs, the frozen measures' random-init controls and gains, one chart
    per measure, the gains' chart, and the paper's claims and the issue's goals with their answers."""
    rows = list(doc["rows"])
    rank = {b: i for i, b in enumerate(BUDGETS)}
    rows.sort(key=lambda r: rank.get(str(r.get("budget")), len(rank)))  # stable: the study's row order per budget
    measures = _study_measures(rows)
    label = {m: MEASURE_LABELS.get(m, m) for m in measures}
    frozen = [m for m in measures if any(f"{m}_control" in r or f"{m}_gain" in r for r in rows)]
    sec = _Section("Replication study")
    sec.text.append(
        f"From {path} (benchmarks/study.py; {doc.get('date', 'date not recorded')}, {doc.get('n_units', '?')} "
        f"units; CIs: {doc.get('bootstrap', '95 % bootstrap')}). Values in percent, mean over seeds and test videos "
        f"[95 % CI]; '{NOT_RUN}': the study has not measured it yet.")
    why = sorted({str(w) for r in rows if isinstance(r.get("not_measured"), dict) for w in r["not_measured"].values()})
    if why:
        sec.text.append(f"'{NOT_IN_DESIGN}': the study's design does not take that measure for that row ("
                        + "; ".join(why) + ").")
    if not rows:
        sec.text.append(f"No row has finished yet: every measure is {NOT_RUN}.")

    def seeds(r: dict) -> str:
        s = r.get("seeds")
        return f"{len(s)} ({', '.join(map(str, s))})" if isinstance(s, list) and s else NOT_RUN

    head = ["row", "method", "feature", "budget", "seeds", "test videos"] + [f"{label[m]} (%)" for m in measures]
    table = [[_study_row_label(r), str(r.get("method", "")), str(r.get("feature", "")), str(r.get("budget", "")),
              seeds(r), str(r.get("n_test", "")) or NOT_RUN]
             + [NOT_IN_DESIGN if _designed_out(r, m) else _est(r.get(m), r.get(f"{m}_ci")) for m in measures]
             for r in rows]
    sec.tables.append((head, table))
    if frozen:
        head = ["row", "budget"] + [h for m in frozen for h in (f"{label[m]}: random-init control (%)",
                                                                 f"{label[m]}: gain (points) [95 % CI]")]
        table = [[_study_row_label(r), str(r.get("budget", ""))]
                 + [c for m in frozen for c in _control_cells(r, m)]
                 for r in rows]
        sec.tables.append((head, table))
        sec.text.append("Controls: for the frozen measures, the same network and feature from random weights (mean "
                        "over its random seeds); for finetuning (where the study gives one), the same network "
                        "finetuned from random weights with the same seed. The gain is the difference paired by test "
                        "video and seed, with its two-level bootstrap 95 % CI.")

    def bars(m: str, key: str, ci_key: str, control_key: str | None, rows=rows) -> list[dict]:
        return [{"label": _study_row_label(r), "budget": str(r.get("budget")), "value": _fnum(r.get(key)),
                 "ci": _fpair(r.get(ci_key)), "control": _fnum(r.get(control_key)) if control_key else None}
                for r in rows]

    for m in measures:
        if not any(_fnum(r.get(m)) is not None for r in rows):
            sec.text.append(f"{label[m]}: {NOT_RUN} (no row has measured it).")
            continue
        # a row whose design does not take m is left out of m's chart (not drawn "not run yet")
        png = study_chart(bars(m, m, f"{m}_ci", f"{m}_control", [r for r in rows if not _designed_out(r, m)]),
                          f"{label[m]} per row (95 % CI)",
                          f"{label[m]} (%)")
        sec.images.append(_Image(f"study-{_slug(m)}.png", f"replication study: {label[m]}; error bars: 95 % CI; "
                                 "black tick: the random-init control", png))
    # a random-init row is the control itself: drawn only where the study gives it a gain (its seed
    # against the control's other seeds, the noise floor), never as "not run yet"
    trained = [r for r in rows if r.get("method") != "scratch" or _fnum(r.get(f"{frozen[0]}_gain")) is not None] \
        if frozen else []
    # a row that measured m but has no control for it (e.g. a study.json written before the f_d
    # network had its random-init row) is left out of m's panel rather than drawn as "not run yet"
    panels = [(label[m], bars(m, f"{m}_gain", f"{m}_gain_ci", None,
                              [r for r in trained if not _designed_out(r, m)
                               and (_fnum(r.get(m)) is None or _fnum(r.get(f"{m}_gain")) is not None)]))
              for m in frozen if any(_fnum(r.get(f"{m}_gain")) is not None for r in trained)]
    if panels:
        sec.images.append(_Image("study-gains.png", "replication study: gain over the random-init control "
                                 "(frozen measures: random features; finetuning: the same network from scratch), "
                                 "95 % CI; zero line; random-init rows only where they have a gain (against the "
                                 "control's other seeds)",
                                 study_gain_chart(panels, "Gain over random init")))

    def paired(p: Any) -> str:
        if not isinstance(p, dict):
            return NOT_RUN
        return f"{_est(p.get('diff', p.get('gain')), p.get('ci'), signed=True)} ({p.get('answer', '?')})"

    claims = [c for c in doc.get("claims") or [] if isinstance(c, dict)]
    if claims and any(isinstance(c.get("answers"), dict) and set(c["answers"]) - {"long"} for c in claims):
        # the claims at every budget (issue 26): finetune top-1 (10 % of the labels at the short budget)
        secs = doc.get("budgets_seconds") if isinstance(doc.get("budgets_seconds"), dict) else {}
        head = ["claim (a > b)"] + [f"{b} ({_fnum(secs.get(b)) or 0:.0f} s): a - b [95 % CI] (answer)"
                                    for b in TRAINED_BUDGETS]
        table = []
        for c in claims:
            per = c.get("measures") if isinstance(c.get("measures"), dict) else {}
            cells = []
            for b in TRAINED_BUDGETS:
                p = per.get(f"finetune{'10' if b == 'short' else ''}_top1@{b}")
                need = (decide_text(p["to_decide"]) if isinstance(p, dict) and isinstance(p.get("to_decide"), dict)
                        else "")
                cells.append(paired(p) + (f"; {need}" if need else ""))
            table.append([str(c.get("claim", "?"))] + cells)
        sec.tables.append((head, table))
        sec.text.append("Claims at every budget: finetune top-1 with all labels (with 10 % at the short budget, which "
                        "finetunes with 10 % only), paired by seed and test video.")
        lines = _study_words(headline_lines, doc)
        if lines:
            sec.text.append("Headline (each claim at the longest budget that measures it with the most seeds; a "
                            "longer one with fewer seeds as 'so far'): " + " | ".join(lines))
    if claims:
        table = []
        for c in claims:
            per = c.get("measures") if isinstance(c.get("measures"), dict) else {}
            ans = str(c.get("answer") or NOT_RUN)
            table.append([str(c.get("claim", "?")), NOT_RUN if ans == "not measured" else ans,
                          paired(per.get(ANSWER)),
                          "; ".join(f"{k}: {paired(v)}" for k, v in per.items()) or NOT_RUN])
        sec.tables.append((["claim (a > b)", "answer", "finetune top-1 @ long budget: a - b (points) [95 % CI]",
                            "every measure and budget: a - b [95 % CI] (answer)"], table))
        sec.text.append("Claims: answered from finetune top-1 at the long budget (the paper's Table I measure): yes "
                        "when the CI of the paired difference lies above 0, no when below, else undecided.")
    grown = [g for g in doc.get("growth") or [] if isinstance(g, dict) and isinstance(g.get("measures"), dict)]
    if grown:  # does a gain grow from the short to the long budget (csvr.eval.study.growth)
        def grew(p: Any) -> str:
            if not isinstance(p, dict):
                return NOT_RUN
            return (f"{_est(p.get('short'), None, signed=True)} -> {_est(p.get('long'), None, signed=True)}: "
                    f"{paired(p)}")

        sec.tables.append((["row"] + [f"{MEASURE_LABELS.get(m[:-5], m)} gain: short -> long: long - short [95 % CI] "
                                      "(answer)" for m in GROWTH_MEASURES],
                           [[str(g.get("row", "?"))] + [grew(g["measures"].get(k)) for k in GROWTH_MEASURES]
                            for g in grown]))
        sec.text.append("Training longer: each row's gain over its control at the short and the long budget, and "
                        "long - short paired by seed and test video (yes: the gain grows with 4x the wall-clock).")
    late = [g for g in grown if isinstance(g.get("late"), dict) and g["late"]]
    if late:  # long -> xlong (issue 26): has the gain stopped growing?
        late_ms = list(GROWTH_MEASURES) + ["finetune_top1_gain"]

        def grew_late(g: dict, m: str) -> str:
            p = g["late"].get(m)
            if not isinstance(p, dict):
                return NOT_RUN
            st = (g.get("stopped") or {}).get(m, "?")
            return (f"{_est(p.get('long'), None, signed=True)} -> {_est(p.get('xlong'), None, signed=True)}: "
                    f"{_est(p.get('diff'), p.get('ci'), signed=True)} ({st})")

        sec.tables.append((["row"] + [f"{MEASURE_LABELS.get(m[:-5], m)} gain: long -> xlong: xlong - long [95 % CI]"
                                      for m in late_ms],
                           [[str(g.get("row", "?"))] + [grew_late(g, m) for m in late_ms] for g in late]))
        sec.text.append("Where the gains stop growing: each gain from the long to the xlong budget (4x the "
                        "wall-clock), paired by seed and test video; stopped: the change's CI contains 0.")
        words = _study_words(growth_lines, doc)
        if words:
            sec.text.append("Per method: " + " | ".join(words))
    curves = [g for g in grown if isinstance(g.get("curve"), dict) and g["curve"]]
    secs = doc.get("budgets_seconds") if isinstance(doc.get("budgets_seconds"), dict) else {}
    for m in list(GROWTH_MEASURES) + ["finetune_top1_gain"]:
        lines = []
        for g in curves:
            pts = [(_fnum(secs.get(b)), _fnum(p.get("mean")), _fpair(p.get("ci")))
                   for b, p in (g["curve"].get(m) or {}).items() if isinstance(p, dict)]
            pts = [p for p in pts if p[0] and p[1] is not None]
            if len(pts) >= 2:
                label = str(g.get("row", "?"))
                ns = [len(p.get("seeds") or []) for p in (g["curve"].get(m) or {}).values() if isinstance(p, dict)]
                if len(set(ns)) > 1:  # a budget with fewer seeds so far: say so in the legend
                    label += f" (seeds {' / '.join(map(str, ns))})"
                lines.append({"label": label, "points": pts})
        if lines:
            name = MEASURE_LABELS.get(m[:-5], m)
            sec.images.append(_Image(f"study-growth-{_slug(m)}.png",
                                     f"replication study: {name} gain over the control against the budget; error "
                                     "bars: 95 % CI (seeds and test videos)",
                                     study_growth_chart(lines, f"{name}: gain over the control vs budget",
                                                        f"{name} gain (points)")))
    goals = [g for g in doc.get("goals") or [] if isinstance(g, dict)]
    if goals:
        table = []
        for g in goals:
            ans = str(g.get("answer") or NOT_RUN)
            table.append([str(g.get("goal", "?")), NOT_RUN if ans == "not measured" else ans,
                          _est(g.get("gain", g.get("diff")), g.get("ci"), signed=True),
                          paired(g["short"]) if "short" in g else ""])
        sec.tables.append((["goal", "answer", "measured (points) [95 % CI]", "short budget"], table))
    if not claims and not goals:
        sec.text.append(f"Claims and goals: {NOT_RUN}.")
    return sec


# ----------------------------------------------------------------------------- rendering
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1600px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:3px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.figs{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
figure{margin:0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:12px;color:#555}.meta{color:#666;font-size:12px}.note{color:#a40}
"""


def _html(title: str, runs: list[RunData], sections: list[_Section], notes: list[str]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>",
           f'<p class="meta">{e(_meta_line(runs))}</p>']
    for s in sections:
        out.append(f"<h2>{e(s.title)}</h2>")
        for t in s.text:
            out.append(f"<p>{e(t)}</p>")
        for head, rows in s.tables:
            out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
            for row in rows:
                out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
            out.append("</tbody></table>")
        if s.images:
            out.append('<div class="figs">')
            for im in s.images:
                b64 = base64.b64encode(im.data).decode("ascii")
                out.append(f'<figure><img src="data:{im.mime};base64,{b64}" alt="{e(im.caption)}">'
                           f"<figcaption>{e(im.caption)}</figcaption></figure>")
            out.append("</div>")
    if notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f'<li class="note">{e(n)}</li>' for n in notes) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(title: str, runs: list[RunData], sections: list[_Section], notes: list[str]) -> str:
    out = [f"# {title}", "", f"_{_meta_line(runs)}_", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for t in s.text:
            out += [t, ""]
        for head, rows in s.tables:
            out.append("| " + " | ".join(_md_cell(h) for h in head) + " |")
            out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("")
        for im in s.images:
            out += [f"![{_md_cell(im.caption)}](images/{im.name})", "", f"*{im.caption}*", ""]
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def _meta_line(runs: list[RunData]) -> str:
    return (f"csvr {__version__}, {time.strftime('%Y-%m-%d %H:%M')}; runs: "
            + (", ".join(f"{r.name} = {r.path}" for r in runs) or "none"))


def build_report(run_dirs: Sequence[str | Path], out_dir: str | Path, samples: bool = False, title: str | None = None,
                 retrieval_examples: bool = True, allow_outside_root: bool = False,
                 study: str | Path | None = None) -> list[Path]:
    """Write ``report.html``, ``report.md`` and ``images/`` for ``run_dirs`` into ``out_dir``;
    returns the written paths. Raises :class:`CsvrError` (writing nothing) for a missing folder
    or one without results. ``allow_outside_root``: the pictures may read manifest paths that
    leave the dataset root (a run that allowed them, by its config or its flag, is allowed anyway).
    ``study``: a ``study.json`` of benchmarks/study.py, rendered as the "Replication study"
    section (with or without run folders)."""
    if not run_dirs and study is None:
        raise CsvrError("no run folder given (and no --study)")
    study_doc = load_study(study) if study is not None else None
    runs = [load_run(p) for p in run_dirs]
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = f"{r.path.parent.name}/{r.path.name}"
    notes: list[str] = []
    groups = _class_groups(runs)
    sections = [_summary_section(runs)] if runs else []
    for make in (lambda: _frozen_section(runs), lambda: _pretext_section(runs), lambda: _top1_section(runs), lambda: _per_class_section(runs, groups),
                 lambda: _confusion_section(runs, groups), lambda: _curves_section(runs)):
        s = make()
        if s is not None:
            sections.append(s)
    if retrieval_examples:
        s = _retrieval_section(runs, notes, allow_outside_root)
        if s is not None:
            sections.append(s)
    if samples:
        s = _samples_section(runs, notes, allow_outside_root)
        if s is not None:
            sections.append(s)
    if study_doc is not None:
        sections.append(_study_section(study_doc, Path(study)))
    for n in notes:
        log.warning("csvr: %s", n)
    title = title or ("csvr report: " + ", ".join([r.name for r in runs] + (["replication study"] if study else [])))
    seen: set[str] = set()
    for s in sections:
        for im in s.images:
            base, k = im.name, 2
            while im.name in seen:
                stem, dot, ext = base.rpartition(".")
                im.name = f"{stem}-{k}.{ext}"
                k += 1
            seen.add(im.name)
    html_text = _html(title, runs, sections, notes)
    md_text = _markdown(title, runs, sections, notes)

    out = Path(out_dir)
    written = []
    for s in sections:
        for im in s.images:
            with atomic_write(out / "images" / im.name, "wb") as f:
                f.write(im.data)
            written.append(out / "images" / im.name)
    atomic_write_text(out / "report.md", md_text)
    atomic_write_text(out / "report.html", html_text)
    return [out / "report.html", out / "report.md"] + written


__all__ = ["RunData", "build_report", "csvr_samples", "load_run"]
