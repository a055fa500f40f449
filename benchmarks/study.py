"""The replication study of issue 16: Table I / Table V / peers at equal wall-clock, with controls,
seeds and 95 % confidence intervals, resumable from committed results.

Data. A labelled evaluation set ``csvr data synth --gop 12 --videos-per-class 40 --seed 0``
(15 classes x 40 = 600 videos; split 1 puts ~28 % of each class's groups in test: ~180 test
videos, >= 40 per Fig. 4 group; the counts are checked and printed) and a separate unlabelled
pretraining pool ``--seed 1`` (another 600 videos, all used: ``data.subset=all``; the pool's
labels are never read: the kNN monitor is off). Both are indexed, their poses imported from the
generator's OpenPose JSON. Pretraining only ever reads the pool; every evaluation reads the
evaluation set (its training videos are the kNN memory / the finetuning set, its test videos the
queries).

Issue 23 (the video branch as a sparse conditional TGANv2) re-runs the rows with a video branch
(full CSVR, L_r only, L_p only; the last two now with 3 seeds and both budgets) with their own
calibration group ``csvr-tganv2`` (video and joint stages); the units of the dense branch they
replace, with the study.json and calibration of then, are kept in
``benchmarks/results/study-before-tganv2/``.

Budgets. Equal pretraining wall-clock. ``--calibrate`` (run automatically when the file is
missing) measures the seconds per step of every (method, stage) the rows use, through the real
engine with the preset's data workers (small-cpu, small-cpu-cvrl, small-cpu-iic, the small-cpu
finetune preset for the supervised row): ``CALIB_STEPS`` steps after ``CALIB_WARMUP`` warm-up
steps, from the engine's per-step ``samples_per_s``. It is stored in the committed
``benchmarks/results/study-calibration.json`` (commit it after the first sitting), so every later
session converts a budget to the SAME step counts. A row's budget in seconds is split over its
stages by wall-clock fractions
(benchmarks/ablation.py's splits: CSVR 20/25/20/35 % pose/context/video/joint; no video branch
30/35/35 %; one branch 100 %) and each part is divided by that stage's seconds per step. Budgets:
short = 120 s, long = 480 s (4x). Every unit records its steps, samples seen (steps x batch) and
measured wall-clock. Issue 26 adds xlong = 1920 s (4x the long budget) for full CSVR, CSVR
without the video branch, IIC and CVRL (3 seeds each; the same calibration: the step costs of the
video branch were measured with the TGANv2 branch already): an xlong unit is ~37 minutes of
pretraining plus its evaluation, so it fits one sitting; a unit stopped half-way resumes from its
run folder's last checkpoint on the same machine (``pretrain(resume=...)``), and a fresh machine
runs it again from the start (the result is step-counted, so it does not change).

Rows (``ROWS``): Table I (random init of the f_s network, random init of the f_i network,
f_d only, f_s only, f_i Concat, f_i AdaIN = CSVR without the video branch, f_i full CSVR; issue 26:
the Concat network from random weights, the Concat row's own finetuning control, and Concat with 3
seeds; likewise the f_d (pose-only) network from random weights, and f_d only with 3 seeds),
Table V (L_r only, L_p only), IIC, CVRL, and the supervised upper bound (the f_i network trained
from scratch with all labels, for the long budget's seconds plus the finetuning preset's steps).
3 seeds for every row but the supervised one (1); the rows that carry the conclusions (``key``)
at every budget, the others (f_d only, f_i Concat) at the long budget only; seed s of every row uses
``train.seed=s`` for pretraining (data order, augmentation) and for finetuning (label subset,
data order): seeds are paired across rows.

Measures per checkpoint, each kept per test video (0/1) so that every CI can be computed:
frozen weighted kNN top-1 (k = 20, T = 0.07) and linear-probe top-1 (``frozen_evaluation``,
cached features), retrieval R@1/5/10/20 (test queries vs training gallery, from the same cached
features via ``nearest_neighbors``, checked against ``recall_from_neighbors``), finetune top-1
with all labels and with 10 % (``data.label_fraction=0.1``; the small-cpu finetune preset), and
the Fig. 4 groups (motion / context / both) from the per-video finetune results.

Controls. The random-init control of a (network, feature) is computed once and shared by every
row with that network: its key is a hash of the random-init encoder's weights (seed 0; identical
weights = identical network) and the clip settings; control seeds 0 .. 2 are scored with the same
functions ``frozen_evaluation`` uses (``cached_features`` + ``score``). The random-init rows'
frozen measures are those control seeds (seed s = control seed s).

Resumability. The unit of work is (row, budget, seed): pretrain, evaluate, write
``benchmarks/results/study/<row-slug>__<budget>__s<seed>.json`` (per-video scores as 0/1
strings), and only then delete the run folder. A session on a fresh machine regenerates the data
(deterministic) and skips every unit whose JSON exists; controls are written as
``control__<feature>__<hash>.json`` beside them. Order: conclusion rows at the long budget seed 0,
then seeds 1-2, then the short and xlong budgets, then the long-budget-only rows (f_d only, Concat,
supervised) by seed.

Compute (2 cores). Per pretrained unit: its budget (long 8 min, short 2 min) plus evaluation:
frozen features of 600 videos x 5 clips (~1.5 min, guessed), finetuning with all labels (the
small-cpu finetune preset: 12 epochs x 26 steps = 312 steps, ~4 min at a guessed 0.8 s/step; not
at the short budget, whose question - do gaps grow with training - the frozen measures and the
10 % finetuning answer), finetuning with 10 % of the labels (45 videos; a fixed 120 steps, as
12 epochs would be 24 steps: ~1.6 min) and two test evaluations (~1 min): ~8.3 min. Units:
5 conclusion rows x 3 seeds x (8.4 + 8.3) min at the long budget = 250 min; 2 random-init rows
x 3 seeds x 8.3 = 50 min; 5 x 3 x (2.1 + 3.2) at the short budget = 80 min; 4 one-seed rows x
16.7 = 67 min; supervised ~15 min: ~7.9 h in 41 units, of which the first 21 (the long budget's
conclusion rows with all seeds, ~5 h) carry the conclusions. ``--plan`` recomputes this from the
calibration and, once units are done, from their measured evaluation times.

The study's files (units, controls, study.json, the score encoding), its measures and its
statistics (two-level bootstrap, paired differences, growth, claims) are ``csvr.eval.study``'s;
this script is its driver: settings, rows and the design, data, calibration, running units,
planning, the issue's goals and the command line.

Aggregation (``--report``, also after every unit): ``benchmarks/results/study.json`` with a list
``rows`` (``name``, ``method``, ``feature``, ``budget``, ``seeds``; per measure the mean in percent,
``<m>_ci`` from a two-level percentile bootstrap (resample seeds, then test videos), and for the
frozen measures ``<m>_control``, ``<m>_gain``, ``<m>_gain_ci`` against the same network's random
features (mean of 3 control seeds), paired by test video; for the finetuning measures of a
pretrained row the same keys against the scratch finetuning of the same network, paired by seed and
test video, with ``<m>_gain_seeds``), the paper's claims (between rows on different networks also
the difference of their gains, ``answer_gain_over_own_network``) and the issue's goals answered
yes / no / undecided from the CI of the paired difference, and a markdown table. Whether a gap
grows with training (item 3): ``growth`` gives, per row measured at both budgets, its kNN, linear
and 10 %-label gains at each budget and long - short paired by seed and test video; each claim's
measures also carry ``<m>@long-short``, the change of its a - b gap.

Run (resumable; the lead runs it):
    .venv/bin/python benchmarks/study.py --plan
    .venv/bin/python benchmarks/study.py                      # everything (~8 h on 2 cores, see --plan)
    .venv/bin/python benchmarks/study.py --max-minutes 150    # one sitting
    .venv/bin/python benchmarks/study.py --report             # aggregate only
    .venv/bin/python benchmarks/study.py --smoke              # the whole pipeline, tiny, in a temp folder
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from csvr.cli import main as csvr_main
from csvr.config import load_config
from csvr.data.index import load_manifest
from csvr.engine.checkpoint import Checkpoint
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.model import load_encoder
from csvr.engine.pretrain import pretrain
from csvr.errors import CsvrError
from csvr.eval.finetune import FinetuneConfig, class_groups, run_finetune
from csvr.eval.frozen import cached_features, frozen_evaluation, score
from csvr.eval.options import clip_settings
from csvr.eval.knn import KNN_TAU
from csvr.eval.retrieval import nearest_neighbors, recall_from_neighbors
from csvr.eval.study import (FORMAT_VERSION, GROUPS, RECALL_KS, UNIT_FORMAT, Design, aggregate, control_name,
                             decode_scores, encode_scores, growth_lines, headline, headline_lines, load_units, markdown_table, now,
                             paired, unit_name, write_json)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONTROL_SEEDS = 3

CSVR_SPLIT = (("pose", 0.20), ("context", 0.25), ("video", 0.20), ("joint", 0.35))
NOVIDEO_SPLIT = (("pose", 0.30), ("context", 0.35), ("joint", 0.35))
FD_ONLY = ("model.use_context=false", "model.use_video=false")  # the pose network alone: f_d
SMALL_BACKBONE = "model={backbone: {name: r3d_18, width: 16, layers: [1, 1, 1, 1]}, proj_dim: 64}"


@dataclass(frozen=True)
class Row:
    """One row of the study. ``method``: csvr | iic | cvrl | scratch | supervised; ``split``:
    (stage, wall-clock fraction); ``calib``: the calibration group of its stages' step costs."""

    name: str
    method: str
    feature: str
    seeds: int
    key: bool  # carries a conclusion: run at the short and long budgets (and xlong if ``longest``)
    overrides: tuple[str, ...] = ()
    split: tuple[tuple[str, float], ...] = ()
    calib: str = "csvr"
    longest: bool = False  # also at the longest budget (issue 26: where the gains stop growing)

    @property
    def slug(self) -> str:
        s = "".join(c if c.isalnum() else "-" for c in self.name.lower())
        while "--" in s:
            s = s.replace("--", "-")
        return s.strip("-")

    @property
    def budgets(self) -> tuple[str, ...]:
        if self.method == "scratch":
            return ("none",)  # no pretraining: the budget does not apply
        if self.method == "supervised" or not self.key:
            return ("long",)
        return ("long", "short", "xlong") if self.longest else ("long", "short")


NOVIDEO = ("model.use_video=false",)
ROWS: list[Row] = [
    Row("random init (f_s network)", "scratch", "fs", 3, True),
    Row("random init (f_i network)", "scratch", "fi", 3, True),
    # issue 26: the Concat network finetuned from random weights, the control of the Concat row
    Row("random init (f_i Concat network)", "scratch", "fi", 3, True, ("model.fusion=concat",) + NOVIDEO),
    # issue 26 item 4 (f_i > f_d, in gains over own network): the pose-only network from random weights
    Row("random init (f_d network)", "scratch", "fd", 3, True, FD_ONLY),
    Row("f_s only", "csvr", "fs", 3, True, ("model.use_pose=false", "model.use_video=false"), (("context", 1.0),)),
    Row("f_i AdaIN (CSVR without video)", "csvr", "fi", 3, True, ("model.fusion=adain",) + NOVIDEO, NOVIDEO_SPLIT,
        "csvr-novideo", longest=True),
    Row("f_i full CSVR", "csvr", "fi", 3, True, (), CSVR_SPLIT, "csvr-tganv2", longest=True),
    Row("IIC", "iic", "backbone", 3, True, (SMALL_BACKBONE,), (("main", 1.0),), "iic", longest=True),
    Row("CVRL", "cvrl", "backbone", 3, True, (SMALL_BACKBONE,), (("main", 1.0),), "cvrl", longest=True),
    Row("f_d only", "csvr", "fd", 3, False, FD_ONLY, (("pose", 1.0),)),
    Row("f_i Concat", "csvr", "fi", 3, False, ("model.fusion=concat",) + NOVIDEO, NOVIDEO_SPLIT, "csvr-novideo"),
    # Table V (issue 23 item 7): 3 seeds and both budgets, as the rows they are compared with
    Row("CSVR L_r only", "csvr", "fi", 3, True, ("model.video_targets=reconstruct",), CSVR_SPLIT, "csvr-tganv2"),
    Row("CSVR L_p only", "csvr", "fi", 3, True, ("model.video_targets=predict",), CSVR_SPLIT, "csvr-tganv2"),
    Row("supervised (f_i network, all labels)", "supervised", "fi", 1, False, calib="supervised"),
]
ROW_BY_SLUG = {r.slug: r for r in ROWS}


@dataclass
class Settings:
    """Everything that differs between the study and its smoke run."""

    work: Path  # data, runs and feature caches (ignored folder)
    results: Path  # committed results: study.json, study/ units, study-calibration.json
    eval_synth: tuple[str, ...] = ("--gop", "12", "--videos-per-class", "40", "--seed", "0")
    pool_synth: tuple[str, ...] = ("--gop", "12", "--videos-per-class", "40", "--seed", "1")
    preset: str = "small-cpu"
    presets: dict = field(default_factory=lambda: {"csvr": "small-cpu", "iic": "small-cpu-iic",
                                                   "cvrl": "small-cpu-cvrl"})
    finetune_preset: str = "small-cpu"
    budgets: dict = field(default_factory=lambda: {"short": 120.0, "long": 480.0, "xlong": 1920.0})
    rows: tuple[str, ...] = tuple(r.slug for r in ROWS)
    max_seeds: int = 3
    clips: int = 5  # clips per video for the frozen features (finetune eval: the preset's eval.clips)
    workers: int = 2
    calib_warmup: int = 3
    calib_steps: int = 8
    min_group_test: int = 40
    finetune10_steps: int = 120  # 10 % of the labels (~45 videos): a fixed number of steps, not 12 epochs (24 steps)
    short_full_finetune: bool = False  # the all-label finetuning at the short budget too (+~4 min per unit)
    frozen_minutes_guess: float = 1.5  # feature extraction of the evaluation set, kNN, probe, retrieval
    test_eval_minutes_guess: float = 0.5  # one finetuned classifier on the test videos
    n_train_guess: int = 420

    def full_finetune(self, budget: str) -> bool:
        """Whether a unit at ``budget`` also finetunes with all labels (the short budget's question
        is whether gaps grow with training: frozen measures and 10 % labels answer it)."""
        return budget != "short" or self.short_full_finetune
    extra: tuple[str, ...] = ()  # overrides added to every pretraining / finetuning config

    @property
    def units_dir(self) -> Path:
        return self.results / "study"

    @property
    def calibration(self) -> Path:
        return self.results / "study-calibration.json"


def study_settings(work: Path) -> Settings:
    return Settings(work=work, results=HERE / "results")


def smoke_settings(work: Path) -> Settings:
    """3 classes x 4 videos, 2 s, 64x48, the tiny presets, budgets of a few steps, 1 seed, 2 rows."""
    tiny = ("--classes", "3", "--videos-per-class", "4", "--seconds", "2", "--size", "64x48", "--workers", "1")
    return Settings(work=work, results=work / "results", eval_synth=("--gop", "12", "--seed", "0") + tiny,
                    pool_synth=("--gop", "12", "--seed", "1") + tiny, preset="tiny-test",
                    presets={"csvr": "tiny-test", "iic": "small-cpu-iic", "cvrl": "small-cpu-cvrl"},
                    finetune_preset="tiny-test", budgets={"long": 0.01},
                    rows=("random-init-f-i-network", "f-i-full-csvr"), max_seeds=1, clips=2, workers=0,
                    calib_warmup=1, calib_steps=2, min_group_test=0, finetune10_steps=2,
                    frozen_minutes_guess=0.05, test_eval_minutes_guess=0.02, n_train_guess=6,
                    extra=("train.batch_size=2", "data.clip.frames=4", "data.clip.stride=2", "data.clip.size=32"))


# ============================================================================ data
def cli(argv: list[str]) -> None:
    rc = csvr_main([str(a) for a in argv])
    if rc != 0:
        raise SystemExit(f"study: csvr {' '.join(map(str, argv))} failed ({rc})")


def ensure_data(root: Path, synth: tuple[str, ...]) -> Path:
    """Synth + index + poses in ``root`` (each step skipped when done); the manifest path."""
    manifest = root / "manifest.jsonl"
    if not manifest.exists():
        cli(["data", "synth", "--out", root, *synth])
        cli(["prepare", "index", root, "--out", manifest])
    if not (root / "poses_cache").exists():
        cli(["prepare", "poses", "--manifest", manifest, "--out", root / "poses_cache", "--source", "openpose-json",
             "--json-dir", root / "poses" / "openpose"])
    return manifest


@dataclass
class Data:
    eval_manifest: Path
    eval_poses: Path
    pool_manifest: Path
    pool_poses: Path

    def pool(self) -> list[str]:
        return [f"data.manifest={self.pool_manifest}", f"data.pose_cache={self.pool_poses}", "data.subset=all"]

    def eval(self) -> list[str]:
        return [f"data.manifest={self.eval_manifest}", f"data.pose_cache={self.eval_poses}"]


def prepare_data(st: Settings) -> Data:
    em = ensure_data(st.work / "data-eval", st.eval_synth)
    pm = ensure_data(st.work / "data-pool", st.pool_synth)
    m = load_manifest(em)
    groups = class_groups(m)
    test, train = m.select("1", "test"), m.select("1", "train")
    per = {g: sum(1 for r in test if groups.get(m.classes[r.label]) == g) for g in GROUPS}
    print(f"evaluation set: {len(train)} training + {len(test)} test videos; test per group: "
          + ", ".join(f"{g} {n}" for g, n in per.items()) + f"; pretraining pool: {len(load_manifest(pm).records)} "
          "videos (labels unused)", flush=True)
    if min(per.values()) < st.min_group_test:
        raise SystemExit(f"study: fewer than {st.min_group_test} test videos in a group: {per}")
    return Data(em, em.parent / "poses_cache", pm, pm.parent / "poses_cache")


# ============================================================================ configs
def stages_override(steps: dict[str, int]) -> str:
    parts = [f"{{name: {s}, epochs: 100000, max_steps: {n}}}" for s, n in steps.items()]
    return "train.stages=[" + ", ".join(parts) + "]"


def pretrain_config(st: Settings, data: Data, row_method: str, overrides, steps: dict[str, int], out: Path,
                    seed: int, log_every: int = 50):
    preset = st.presets.get(row_method, st.preset)
    over = data.pool() + [f"method={row_method}", f"out={out}", stages_override(steps), f"train.seed={seed}",
                          "train.ckpt_every_steps=1000000", f"train.log_every_steps={log_every}",
                          "train.knn_monitor.every=0", f"data.workers={st.workers}", *st.extra, *overrides]
    return load_config(PretrainConfig, resolve_config_path(preset), over)


def finetune_config(st: Settings, data: Data, arch: str, feature: str, out: Path, seed: int, fraction: float,
                    scratch: bool, max_steps: int | None = None, log_every: int = 50):
    over = data.eval() + [f"out={out}", f"train.seed={seed}", f"data.label_fraction={fraction}",
                          f"model.pretrained={arch}", f"model.feature={feature}", f"data.workers={st.workers}",
                          "train.ckpt_every_steps=1000000", f"train.log_every_steps={log_every}", *st.extra]
    if scratch:
        over.append("model.init=scratch")
    if max_steps is not None:
        over.append(stages_override({"main": max_steps}))
    return load_config(FinetuneConfig, resolve_config_path(st.finetune_preset, "finetune"), over)


def architecture_checkpoint(st: Settings, data: Data, overrides: tuple[str, ...] = ()) -> str:
    """A 1-step CSVR pretraining checkpoint on the pool: the architecture of the random-init and
    supervised rows (its weights are never used: ``model.init=scratch`` / ``random_init``);
    ``overrides`` (a random-init row's own, e.g. the Concat network's) change the network."""
    tag = hashlib.sha256(json.dumps(list(overrides)).encode()).hexdigest()[:8] if overrides else ""
    out = st.work / "runs" / ("_architecture" + (f"-{tag}" if tag else ""))
    if not (out / "summary.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        no_context = any(o.replace(" ", "").lower() == "model.use_context=false" for o in overrides)
        stage = "pose" if no_context else "context"  # a stage the network has
        pretrain(pretrain_config(st, data, "csvr", overrides, {stage: 1}, out, 0))
    return json.loads((out / "summary.json").read_text())["checkpoint"]


# ============================================================================ calibration
CALIB_GROUPS = {  # group -> (row method, overrides, stages)
    "csvr": ("csvr", (), ("pose", "context", "video", "joint")),
    "csvr-novideo": ("csvr", ("model.fusion=adain",) + NOVIDEO, ("joint",)),
    # the video and joint stages with issue 23's sparse conditional TGANv2 (the "csvr" group's
    # were measured with the dense branch it replaced; its pose / context costs still apply)
    "csvr-tganv2": ("csvr", (), ("video", "joint")),
    "iic": ("iic", (SMALL_BACKBONE,), ("main",)),
    "cvrl": ("cvrl", (SMALL_BACKBONE,), ("main",)),
    "supervised": ("supervised", (), ("main",)),
}


def _seconds_per_step(run: Path, stage: str, warmup: int, batch: int) -> float:
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("stage") == stage and r.get("samples_per_s")]
    times = [batch / float(r["samples_per_s"]) for r in rows][warmup:]
    if not times:
        raise SystemExit(f"study: no timed steps of stage {stage} in {run}/metrics.csv")
    return float(np.mean(times))


def calibrate(st: Settings, data: Data, groups: set[str]) -> dict:
    """Seconds per step of every (group, stage), measured through the engine; written to the
    calibration file (merged into what is there)."""
    doc = json.loads(st.calibration.read_text()) if st.calibration.exists() else {"groups": {}}
    n = st.calib_warmup + st.calib_steps
    for g in sorted(groups):
        if g in doc["groups"]:
            continue
        method, over, stages = CALIB_GROUPS[g]
        out = st.work / "runs" / f"_calibrate-{g}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.time()
        if method == "supervised":
            cfg = finetune_config(st, data, architecture_checkpoint(st, data), "fi", out, 0, 1.0, True, n, 1)
            run_finetune(cfg)
        else:
            cfg = pretrain_config(st, data, method, over, {s: n for s in stages}, out, 0, log_every=1)
            pretrain(cfg)
        batch = cfg.train.batch_size
        doc["groups"][g] = {s: round(_seconds_per_step(out, s, st.calib_warmup, batch), 4) for s in stages}
        doc["groups"][g]["_wall_seconds"] = round(time.time() - t0, 1)
        doc["groups"][g]["_batch"] = batch
        print(f"calibration {g}: {doc['groups'][g]}", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    doc.update({"warmup_steps": st.calib_warmup, "timed_steps": st.calib_steps, "workers": st.workers,
                "host": platform.node(), "cpus": os.cpu_count(), "date": now(),
                "what": "seconds per optimiser step (mean of the timed steps after the warm-up), from the engine's "
                        "samples_per_s; budgets are converted to steps with these numbers"})
    write_json(st.calibration, doc)
    return doc


def needed_groups(st: Settings) -> set[str]:
    out = set()
    for slug in st.rows:
        r = ROW_BY_SLUG[slug]
        if r.method == "scratch":
            continue
        out.add(r.calib)
        if r.calib in ("csvr-novideo", "csvr-tganv2"):
            out.add("csvr")  # its pose / context stages cost what CSVR's do
    return out


def step_cost(calib: dict, group: str, stage: str) -> float:
    g = calib["groups"].get(group, {})
    return float(g[stage] if stage in g else calib["groups"]["csvr"][stage])


def stage_steps(calib: dict, row: Row, seconds: float) -> dict[str, int]:
    """The row's budget in seconds split by wall-clock fraction, each part in steps (>= 1)."""
    return {s: max(1, int(round(frac * seconds / step_cost(calib, row.calib, s)))) for s, frac in row.split}


# ============================================================================ evaluation
def retrieval_hits(f, ks=RECALL_KS) -> dict[str, np.ndarray]:
    """Per-query R@k hits (0/1) of cached features: test videos query the training videos."""
    nb = nearest_neighbors(f.test, f.train, max(ks))
    same = f.train_labels[nb.indices] == f.test_labels[:, None]
    hits = {f"r{k}": same[:, :k].any(axis=1).astype(np.float64) for k in ks}
    ref = recall_from_neighbors(nb.indices, f.test_labels, f.train_labels, ks)
    assert all(abs(hits[f"r{k}"].mean() - ref[k]) < 1e-12 for k in ks)
    return hits


def network_key(arch: str, feature: str, clip_cfg, clips: int) -> str:
    """Hash of the random-init encoder's weights (seed 0), the feature and the clip settings: rows
    with the same network share one control."""
    enc = load_encoder(arch, feature, random_init=True, seed=0)
    h = hashlib.sha256(json.dumps([feature, dataclasses.asdict(clip_cfg), clips], sort_keys=True).encode())
    for name, t in sorted(enc.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def frozen_scores(feats, num_classes: int) -> dict[str, np.ndarray]:
    s = score(feats, (20,), KNN_TAU, num_classes, linear=True)
    return {"knn_top1": s["knn20_top1"], "linear_top1": s["linear_top1"], **retrieval_hits(feats)}


def ensure_control(st: Settings, data: Data, arch: str, feature: str) -> str:
    """The control file's name for (network of ``arch``, ``feature``), computed when missing."""
    ckpt = Checkpoint.load(arch)
    clip = clip_settings(ckpt)
    name = control_name(feature, network_key(arch, feature, clip, st.clips))
    path = st.units_dir / name
    if path.exists():
        return name
    t0 = time.time()
    manifest = load_manifest(data.eval_manifest)
    seeds, ids = [], None
    for c in range(CONTROL_SEEDS):
        f = cached_features(ckpt, feature, manifest, "1", clip, st.clips, st.work / "feature-cache",
                            pose_cache=str(data.eval_poses), random_init=True, seed=c, workers=st.workers)
        ids = ids or f.test_ids
        assert f.test_ids == ids
        seeds.append(encode_scores(frozen_scores(f, manifest.num_classes)))
    write_json(path, {"kind": "control", "feature": feature, "what": "the same network and feature from random "
                      "weights (load_encoder random_init, seeds 0..2)", "seeds": seeds, "test_ids": ids,
                      "seconds": round(time.time() - t0, 1), "date": now()})
    return name


def finetune_scores(st: Settings, data: Data, cfg, test_ids: list[str]) -> tuple[np.ndarray, dict]:
    """Per-test-video correctness (ordered as ``test_ids``) of a finetuning run, and its record."""
    shutil.rmtree(cfg.out, ignore_errors=True)  # a finetuning stopped half-way starts again (minutes)
    r = run_finetune(cfg)
    m = load_manifest(data.eval_manifest)
    label = {rec.id: rec.label for rec in m.records}
    pred = dict(zip(r["video_ids"], r["video_predictions"]))
    correct = np.array([float(pred.get(i, -1) == label[i]) for i in test_ids])  # unreadable: wrong
    return correct, {"train_seconds": r["train_seconds"], "video_top1": r["video_top1"],
                     "label_fraction": r["label_fraction"], "checkpoint": r["checkpoint"],
                     "batch": cfg.train.batch_size, "steps": int(r.get("config", {}).get("train", {}).get("stages",
                                                                [{}])[0].get("max_steps") or 0) or None}


# ============================================================================ units
@dataclass(frozen=True)
class Unit:
    row: Row
    budget: str
    seed: int

    @property
    def name(self) -> str:
        return unit_name(self.row.slug, self.budget, self.seed)


def all_units(st: Settings) -> list[Unit]:
    """Every unit, in the order that makes a partial study informative."""
    rows = [ROW_BY_SLUG[s] for s in st.rows]
    key = [r for r in rows if r.key]
    other = [r for r in rows if not r.key]
    units: list[Unit] = []

    def add(r: Row, b: str, s: int):
        u = Unit(r, b, s)
        if b in r.budgets and s < min(r.seeds, st.max_seeds) and u not in units:
            units.append(u)

    long_ = "long" if "long" in st.budgets else next(iter(st.budgets))
    for r in key:
        add(r, "none" if r.method == "scratch" else long_, 0)
    for s in (1, 2):
        for r in key:
            add(r, "none" if r.method == "scratch" else long_, s)
    for b in st.budgets:
        for s in range(3):
            for r in key:
                add(r, b, s)
    for s in range(3):
        for r in other:
            add(r, long_, s)
    return units


def ordered_units(st: Settings, first: list[str] | None = None) -> list[Unit]:
    """``all_units``, with the units named in ``first`` (``--first``) moved to the front in that order."""
    units = all_units(st)
    if not first:
        return units
    by_name = {u.name: u for u in units}
    return [by_name[n] for n in first] + [u for u in units if u.name not in first]


def unit_done(st: Settings, u: Unit) -> bool:
    return (st.units_dir / f"{u.name}.json").exists()


def run_unit(st: Settings, data: Data, calib: dict, u: Unit, keep: bool = False) -> dict:
    """Pretrain (or not), evaluate, write the unit's JSON, then delete its run folder."""
    row, t0 = u.row, time.time()
    run = st.work / "runs" / u.name
    manifest = load_manifest(data.eval_manifest)
    doc: dict = {"format": UNIT_FORMAT, "version": FORMAT_VERSION, "row": row.name, "slug": row.slug,
                 "method": row.method, "feature": row.feature, "budget": u.budget, "seed": u.seed,
                 "budget_seconds": st.budgets.get(u.budget), "started": now(), "host": platform.node()}
    arch = architecture_checkpoint(st, data, row.overrides if row.method == "scratch" else ())
    pretrained = None
    if row.method in ("csvr", "iic", "cvrl"):
        steps = stage_steps(calib, row, st.budgets[u.budget])
        cfg = pretrain_config(st, data, row.method, row.overrides, steps, run / "pretrain", u.seed)
        done = run / "pretrain" / "summary.json"  # a unit stopped during its evaluation: keep its pretraining
        summary = (json.loads(done.read_text()) if done.exists() else
                   pretrain(cfg, resume=(run / "pretrain" / "checkpoints").is_dir()))
        pretrained = summary["checkpoint"]
        doc["pretrain"] = {"steps": summary["global_step"], "stage_steps": steps,
                           "samples": summary["global_step"] * summary["global_batch"],
                           "seconds": summary["seconds"],
                           "stages": [{k: s[k] for k in ("stage", "steps", "seconds")} for s in summary["stages"]],
                           "last_epoch_metrics": summary.get("last_epoch_metrics")}
    t_eval = time.time()
    control = ensure_control(st, data, arch if pretrained is None else pretrained, row.feature)
    cdoc = json.loads((st.units_dir / control).read_text())
    test_ids = cdoc["test_ids"]
    scores: dict[str, np.ndarray] = {}
    if row.method == "scratch":
        scores.update({k: decode_scores(v) for k, v in cdoc["seeds"][u.seed % CONTROL_SEEDS].items()})
    frozen_ckpt = pretrained
    if row.method == "supervised":
        fsteps = supervised_steps(st, calib, len(manifest.select("1", "train")))
        correct, rec = finetune_scores(st, data, finetune_config(st, data, arch, "fi", run / "finetune", u.seed, 1.0,
                                                                 True, fsteps), test_ids)
        scores["finetune_top1"] = correct
        frozen_ckpt = rec.pop("checkpoint")
        doc["finetune"] = {**rec, "steps": fsteps}
        doc["pretrain"] = {"steps": fsteps, "samples": fsteps * rec["batch"], "seconds": rec["train_seconds"]}
    if frozen_ckpt is not None:
        ck = Checkpoint.load(frozen_ckpt)
        # the clip settings of the network the control was made from (a classifier's preset may
        # spell them differently)
        clip = clip_settings(Checkpoint.load(arch if pretrained is None else pretrained))
        fz = frozen_evaluation(ck, row.feature, manifest, clip_cfg=clip, clips=st.clips,
                               pose_cache=str(data.eval_poses), ks=(20,),
                               control_seeds=0, linear=True, cache_dir=run / "feature-cache", workers=st.workers)
        assert fz["per_video"]["test_ids"] == test_ids, "the control covers other test videos"
        feats = cached_features(ck, row.feature, manifest, "1", clip, st.clips, run / "feature-cache",
                                pose_cache=str(data.eval_poses), workers=st.workers)
        scores["knn_top1"] = np.array(fz["per_video"]["pretrained"]["knn20_top1"], dtype=np.float64)
        scores["linear_top1"] = np.array(fz["per_video"]["pretrained"]["linear_top1"], dtype=np.float64)
        scores.update(retrieval_hits(feats))
    if row.method != "supervised":
        src, scratch = (arch, True) if row.method == "scratch" else (pretrained, False)
        todo = [("finetune_top1", 1.0, None)] if st.full_finetune(u.budget) else []
        for key, frac, steps in todo + [("finetune10_top1", 0.1, st.finetune10_steps)]:
            correct, rec = finetune_scores(st, data, finetune_config(st, data, src, row.feature, run / key, u.seed,
                                                                     frac, scratch, steps), test_ids)
            scores[key] = correct
            rec.pop("checkpoint")  # deleted with the run folder
            doc[key.replace("_top1", "")] = rec
    groups = class_groups(manifest)
    label = {r.id: r.label for r in manifest.records}
    doc.update({"control": control, "test_ids": test_ids,
                "test_groups": "".join((groups.get(manifest.classes[label[i]], "?") or "?")[0] for i in test_ids),
                "scores": encode_scores(scores), "eval_seconds": round(time.time() - t_eval, 1),
                "seconds": round(time.time() - t0, 1), "finished": now()})
    write_json(st.units_dir / f"{u.name}.json", doc)  # committed result first ...
    if not keep:
        shutil.rmtree(run, ignore_errors=True)  # ... then the checkpoint may go
    return doc


def supervised_steps(st: Settings, calib: dict, n_train: int) -> int:
    """The supervised row's steps: the long budget's seconds of finetuning steps plus the
    finetuning preset's own schedule (epochs x steps per epoch)."""
    cfg = load_config(FinetuneConfig, resolve_config_path(st.finetune_preset, "finetune"), list(st.extra))
    per_epoch = max(1, n_train // cfg.train.batch_size)
    own = sum(s.epochs * per_epoch if not s.max_steps else s.max_steps for s in cfg.train.stages)
    budget = st.budgets.get("long", max(st.budgets.values()))  # fixed by issue 16's design
    return int(own + round(budget / step_cost(calib, "supervised", "main")))


# ============================================================================ aggregation (csvr.eval.study)
SCRATCH_OF = {"fi": "random-init-f-i-network", "fs": "random-init-f-s-network",
              "backbone": "random-init-f-s-network"}  # the scratch row of each pretrained row's network
NETWORKS = {"backbone": "fs"}  # IIC's and CVRL's backbone is the f_s network

CLAIMS = [  # (claim, a, b): a > b
    ("full CSVR > f_i without the video branch", "f-i-full-csvr", "f-i-adain-csvr-without-video"),
    ("AdaIN > Concat", "f-i-adain-csvr-without-video", "f-i-concat"),
    ("f_i > f_s only", "f-i-full-csvr", "f-s-only"),
    ("f_i > f_d only", "f-i-full-csvr", "f-d-only"),
    ("CSVR > IIC at equal wall-clock", "f-i-full-csvr", "iic"),
    ("CSVR > CVRL at equal wall-clock", "f-i-full-csvr", "cvrl"),
    ("L_r + L_p > L_r only (Table V)", "f-i-full-csvr", "csvr-l-r-only"),
    ("L_r + L_p > L_p only (Table V)", "f-i-full-csvr", "csvr-l-p-only"),
]


def scratch_rows() -> dict[str, str]:
    """Pretrained rows whose network has a random-init row of its own (the same network
    overrides, e.g. the Concat network's): row slug -> that random-init row's slug."""
    out = {}
    for r in ROWS:
        if r.method in ("csvr", "iic", "cvrl"):
            own = [c.slug for c in ROWS if c.method == "scratch" and c.overrides
                   and set(c.overrides) <= set(r.overrides)]
            if own:
                out[r.slug] = own[0]
    return out


def design(st: Settings) -> Design:
    """The study's design as :mod:`csvr.eval.study`'s statistics read it (every row of ``ROWS``,
    whatever ``st.rows`` runs; the Concat row's finetuning control is the Concat network's own
    random-init row, issue 26)."""
    return Design(rows=ROWS, scratch_of=SCRATCH_OF, claims=CLAIMS, budgets=st.budgets, full_finetune=st.full_finetune,
                  networks=NETWORKS, scratch_rows=scratch_rows())


def goals(doc: dict) -> list[dict]:
    """Goal 1: every SSL row's kNN gain >= 10 points with its CI excluding 0 (no: the CI is below
    10 or touches 0 from below)."""
    out = []
    for r in doc["rows"]:
        if r["method"] in ("csvr", "iic", "cvrl") and r.get("knn_top1_gain") is not None:
            lo, hi = r["knn_top1_gain_ci"]
            ans = "yes" if r["knn_top1_gain"] >= 10 and lo > 0 else ("no" if hi < 10 or hi <= 0 else "undecided")
            out.append({"goal": f"{r['name']} ({r['budget']}): frozen kNN >= control + 10 points, CI excluding 0",
                        "gain": r["knn_top1_gain"], "ci": [lo, hi], "answer": ans})
    return out


README_START = "<!-- study-headline: written by benchmarks/study.py --report from benchmarks/results/study.json -->"
README_END = "<!-- /study-headline -->"


def readme_headline_block(lines: list[str]) -> str:
    """The README's headline block: one bullet per claim (:func:`csvr.eval.study.headline_lines`)."""
    return "\n".join([README_START, *(f"- {line}" for line in lines), README_END])


def update_readme_headline(lines: list[str], readme: Path = REPO / "README.md") -> bool:
    """Replace the README's headline block (between :data:`README_START` and :data:`README_END`)
    with the study's current headline; False (and nothing written) where the README has no block."""
    text = readme.read_text()
    i, j = text.find(README_START), text.find(README_END)
    if i < 0 or j < i:
        return False
    new = text[:i] + readme_headline_block(lines) + text[j + len(README_END):]
    if new != text:
        readme.write_text(new)
    return True


def report(st: Settings) -> dict:
    """Aggregate the finished units (:func:`csvr.eval.study.aggregate`), add the issue's goals and
    the markdown table, write ``study.json`` and print the table, the claims and the goals."""
    des = design(st)
    try:
        doc, cells = aggregate(st.units_dir, des)
    except CsvrError as e:
        raise SystemExit(f"study: {e}") from None
    doc["goals"] = goals(doc)
    g2 = {b: paired(cells, des, "f-i-full-csvr", "random-init-f-i-network", "finetune10_top1", b)
          for b in ("long", "short")}
    doc["goals"].append({"goal": "CSVR f_i finetuned with 10 % labels > the f_i network from random weights, CI "
                                 "excluding 0", **({"answer": "not measured"} if not g2["long"] else g2["long"]),
                         "short": g2["short"]})
    doc["headline"] = headline(doc)
    doc["growth_lines"] = growth_lines(doc)
    doc["table"] = markdown_table(doc)
    write_json(st.results / "study.json", doc)
    if st.results == HERE / "results":  # the committed study: README quotes its headline
        update_readme_headline(headline_lines(doc))
    print(doc["table"])
    for line in headline_lines(doc):
        print(f"headline: {line}")
    for line in doc["growth_lines"]:
        print(f"growth: {line}")
    for c in doc["claims"]:
        own = (f" (gain over its own random-init network: {c['answer_gain_over_own_network']})"
               if "answer_gain_over_own_network" in c else "")
        print(f"claim: {c['claim']}: {c['answer']}{own}")
    for g in doc["goals"]:
        print(f"goal: {g['goal']}: {g['answer']}")
    return doc


# ============================================================================ plan / main
# step costs used by --plan before a calibration exists (guesses from benchmarks/RESULTS.md and the
# presets' comments; never used to set a budget)
FALLBACK_COSTS = {"csvr": {"pose": 0.2, "context": 0.45, "video": 1.8, "joint": 1.8}, "csvr-novideo": {"joint": 1.0},
                  "iic": {"main": 0.73}, "cvrl": {"main": 0.6}, "supervised": {"main": 0.8}}


def _kind(method: str, full_finetune: bool) -> str:
    return f"{'pretrained' if method in ('csvr', 'iic', 'cvrl') else method}{'+ft' if full_finetune else ''}"


def estimate_minutes(st: Settings, calib: dict, u: Unit, measured: dict[str, float], n_train: int) -> float:
    """Minutes of a unit: its pretraining budget plus its evaluation (measured mean of finished
    units of the same kind when there are any, else from the step costs)."""
    m = u.row.method
    full = m == "supervised" or st.full_finetune(u.budget)
    pre = st.budgets[u.budget] / 60 * 1.05 if m in ("csvr", "iic", "cvrl") else 0.0  # + stage start-up
    if m == "supervised":
        pre = supervised_steps(st, calib, n_train) * step_cost(calib, "supervised", "main") / 60
    kind = _kind(m, full)
    if kind in measured:  # the supervised row's evaluation time includes its training
        return measured[kind] if m == "supervised" else pre + measured[kind]
    cfg = load_config(FinetuneConfig, resolve_config_path(st.finetune_preset, "finetune"), list(st.extra))
    cost = step_cost(calib, "supervised", "main")
    per_epoch = max(1, n_train // cfg.train.batch_size)
    ev = st.frozen_minutes_guess + (2 * st.test_eval_minutes_guess)
    if m != "supervised":
        ev += st.finetune10_steps * cost / 60
        if full:
            ev += sum(s.epochs for s in cfg.train.stages) * per_epoch * cost / 60
    return pre + ev


def plan(st: Settings, calib: dict | None) -> float:
    done = load_units(st.units_dir)
    guess = calib is None or not needed_groups(st) <= set(calib["groups"])
    calib = calib if not guess else {"groups": {**FALLBACK_COSTS, **(calib or {}).get("groups", {})}}
    measured: dict[str, list[float]] = {}
    for d in done:
        measured.setdefault(_kind(d["method"], "finetune_top1" in d["scores"] and d["method"] != "supervised"
                                  or d["method"] == "supervised"), []).append(d["eval_seconds"] / 60)
    means = {k: float(np.mean(v)) for k, v in measured.items()}
    mf = st.work / "data-eval" / "manifest.jsonl"
    if mf.exists():
        n_train = len(load_manifest(mf).select("1", "train"))
    else:
        n_train = st.n_train_guess
    units = all_units(st)
    total = left = 0.0
    print(f"step costs: {'GUESSES (no calibration yet: ' + str(st.calibration) + ')' if guess else st.calibration}; "
          f"evaluation: {'measured ' + str({k: round(v, 1) for k, v in means.items()}) if means else 'estimated'} "
          f"min; {n_train} training videos")
    print(f"{'unit':55s} {'est. min':>8s}  status")
    for u in units:
        est = estimate_minutes(st, calib, u, means, n_train)
        ok = unit_done(st, u)
        total += est
        left += 0 if ok else est
        steps = ""
        if u.row.method in ("csvr", "iic", "cvrl"):
            per = stage_steps(calib, u.row, st.budgets[u.budget])
            steps = " steps " + ", ".join(f"{k} {v}" for k, v in per.items())
        print(f"{u.name:55s} {est:8.1f}  {'done' if ok else 'todo'}{steps}")
    print(f"total {total / 60:.1f} h; remaining {left / 60:.1f} h ({sum(unit_done(st, u) for u in units)} of "
          f"{len(units)} units done)")
    return left


def run_study(st: Settings, only: set[str] | None = None, max_minutes: float | None = None, keep: bool = False,
              first: list[str] | None = None) -> None:
    """Run the units not done yet, in ``all_units`` order (the units named in ``first`` before the others)."""
    t0 = time.time()
    data = prepare_data(st)
    calib = json.loads(st.calibration.read_text()) if st.calibration.exists() else {"groups": {}}
    if not needed_groups(st) <= set(calib["groups"]):
        calib = calibrate(st, data, needed_groups(st))
    for u in ordered_units(st, first):
        if unit_done(st, u) or (only and u.row.slug not in only):
            continue
        if max_minutes is not None and (time.time() - t0) / 60 >= max_minutes:
            print(f"study: {max_minutes} min reached; stopping before {u.name} (run again to continue)")
            break
        print(f"=== {u.name} ({now()})", flush=True)
        d = run_unit(st, data, calib, u, keep)
        print(f"=== {u.name} done in {d['seconds'] / 60:.1f} min", flush=True)
        report(st)
    report(st)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(REPO / "runs" / "study"), help="data, runs, feature caches (not committed)")
    ap.add_argument("--plan", action="store_true", help="print every unit, its estimated minutes and status")
    ap.add_argument("--report", action="store_true", help="aggregate the finished units into study.json only")
    ap.add_argument("--calibrate", action="store_true", help="only measure the step costs (kept when present)")
    ap.add_argument("--only", default=None, help="comma-separated row slugs to run")
    ap.add_argument("--first", default=None, help="comma-separated unit names (as --plan prints them) to run before "
                    "the others, in this order")
    ap.add_argument("--max-minutes", type=float, default=None, help="start no new unit after this many minutes")
    ap.add_argument("--keep-runs", action="store_true", help="keep checkpoints after a unit's JSON is written")
    ap.add_argument("--smoke", action="store_true", help="the whole pipeline on tiny data into --work or a temp folder")
    ap.add_argument("--smoke-rows", default=None, help="--smoke: comma-separated row slugs (default: the random-init "
                    "f_i network and full CSVR)")
    args = ap.parse_args(argv)
    if args.smoke:
        work = Path(args.work) if args.work != ap.get_default("work") else Path(tempfile.mkdtemp(prefix="study-smoke-"))
        st = smoke_settings(work)
        if args.smoke_rows:
            st.rows = tuple(args.smoke_rows.split(","))
            if not set(st.rows) <= set(ROW_BY_SLUG):
                ap.error(f"--smoke-rows: unknown rows {sorted(set(st.rows) - set(ROW_BY_SLUG))}")
    else:
        st = study_settings(Path(args.work))
    only = set(args.only.split(",")) if args.only else None
    if only and not only <= set(ROW_BY_SLUG):
        ap.error(f"--only: unknown rows {sorted(only - set(ROW_BY_SLUG))}; rows: {', '.join(ROW_BY_SLUG)}")
    first = args.first.split(",") if args.first else None
    if first:
        known = {u.name for u in all_units(st)}
        if not set(first) <= known:
            ap.error(f"--first: unknown units {sorted(set(first) - known)}; see --plan for the names")
    calib = json.loads(st.calibration.read_text()) if st.calibration.exists() else None
    if args.plan:
        plan(st, calib)
        return 0
    if args.report:
        report(st)
        return 0
    if args.calibrate:
        calibrate(st, prepare_data(st), needed_groups(st))
        return 0
    run_study(st, only, args.max_minutes, args.keep_runs, first)
    print(f"results: {st.results / 'study.json'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
