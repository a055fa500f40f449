"""``csvr demo`` (what ``make demo`` runs): the whole pipeline, end to end, re-runnable.

1. data      generate the built-in dataset (``csvr data synth``), or use ``--data DIR``
             (a UCF101 / HMDB51 / folder-per-class layout of your own);
2. index     ``csvr prepare index`` (keyframes, I-frames);
3. poses     ``csvr prepare poses``: the built-in dataset's OpenPose-format ground truth through
             the OpenPose importer, MediaPipe for your own videos;
4. pretrain  ``csvr pretrain --config demo`` (CSVR, the four stages, a small CPU preset);
5. finetune  ``csvr finetune`` twice with the same budget and the same inputs (clip + poses):
             the f_i network from the CSVR checkpoint, and the same f_i network from random
             weights (``model.init=scratch``, architecture from the checkpoint);
6. frozen    ``csvr knn`` for f_i and f_s: weighted kNN (k = 20, 1) and a linear probe on frozen
             features, each against the same network from random weights (3 seeds);
7. report    ``csvr report --samples`` -> ``report.html`` and ``report.md`` (with CSVR's
             predicted poses and generated frames).

Every comparison is paired: the difference and its 95 % bootstrap interval over the test videos.

Every step prints the equivalent command and skips work already done (its output exists), so an
interrupted demo continues where it stopped; ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import time
from pathlib import Path

import numpy as np

from csvr.cli import main
from csvr.config import load_config
from csvr.data.index import load_manifest
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.trainer import stratified_subset
from csvr.errors import CsvrError
from csvr.eval.finetune import FinetuneConfig
from csvr.eval.stats import paired_gain
from csvr.eval.study import headline_lines, load_study
from csvr.utils.io import check_output_dir


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _run(argv: list[str]) -> None:
    print("$ csvr " + " ".join(shlex.quote(a) for a in argv), flush=True)
    rc = main(argv)
    if rc != 0:
        raise CsvrError(f"step failed (exit status {rc}): csvr {' '.join(argv)}")


def _done(path: Path) -> bool:
    return path.is_file()


def _final_checkpoint(run: Path) -> str:
    return json.loads((run / "summary.json").read_text())["checkpoint"]


DEMO_GOP = 12


def _check_demo_data(root: Path, out: Path) -> None:
    """An earlier demo's data made without the fixed GOP cannot be reused: say how to start over."""
    meta = root / "synth.json"
    if meta.exists():
        gop = json.loads(meta.read_text()).get("params", {}).get("gop")
        if gop != DEMO_GOP:
            raise CsvrError(f"{root} holds an earlier demo's data (GOP {gop or 'varying'}, not {DEMO_GOP}): run "
                            f"'csvr demo --out {out} --fresh' (or 'make demo' after deleting {out}) to start over")


def run_demo(out: str | Path, data: str | Path | None = None, layout: str = "auto", workers: int = 0,
             fresh: bool = False, label_fraction: float | None = None, pretrain_config: str = "demo",
             finetune_config: str = "demo", extra_pretrain: list[str] | None = None,
             extra_finetune: list[str] | None = None, test_ratio: float | None = None) -> dict:
    t0 = time.time()
    check_output_dir(out)  # before --fresh deletes anything, and before any step
    if test_ratio is not None and data is None:
        raise CsvrError("--test-ratio splits your own videos (--data DIR); the built-in dataset has its own split")
    if test_ratio is not None and not 0 < test_ratio < 1:
        raise CsvrError(f"--test-ratio {test_ratio}: must be between 0 and 1 (e.g. 0.3)")
    extra_pretrain, extra_finetune = list(extra_pretrain or []), list(extra_finetune or [])
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def timed(name: str, t: float) -> None:
        timings[name] = round(time.time() - t, 1)

    # 1. data --------------------------------------------------------------------------
    t = time.time()
    builtin = data is None
    root = out / "data" if builtin else Path(data)
    if builtin:
        _step("1/7 built-in dataset (fixed GOP 12: every clip holds I-frames of its own, docs/training.md)")
        _check_demo_data(root, out)
        _run(["data", "synth", "--out", str(root), "--gop", str(DEMO_GOP)] + (["--workers", str(workers)] if workers else []))
    elif not root.is_dir():
        raise CsvrError(f"--data {root}: not a folder")
    timed("data", t)

    # 2. index -------------------------------------------------------------------------
    t = time.time()
    _step("2/7 index (keyframes, I-frames)")
    manifest = out / "manifest.jsonl"
    _run(["prepare", "index", str(root), "--out", str(manifest), "--layout", layout]
         + (["--test-ratio", str(test_ratio)] if test_ratio is not None else [])
         + (["--workers", str(workers)] if workers else []))
    if not builtin:
        # the paper's protocol (CoViAR): a fixed GOP of 12, so that context matching always has
        # I-frames inside each clip; videos whose I-frames are already that dense are copied
        _step("2/7 re-encode to GOP 12 where I-frames are sparse (csvr prepare reencode)")
        source = manifest
        manifest = out / "data-gop12" / "manifest.jsonl"
        _run(["prepare", "reencode", "--manifest", str(source), "--out", str(out / "data-gop12"),
              "--gop", str(DEMO_GOP)] + (["--workers", str(workers)] if workers else []))
    if not builtin:
        fit_to_data(manifest, pretrain_config, finetune_config, extra_pretrain, extra_finetune, label_fraction)
    timed("index", t)

    # 3. poses -------------------------------------------------------------------------
    t = time.time()
    _step("3/7 poses")
    poses = out / "poses"
    json_dir = root / "poses" / "openpose"
    if json_dir.is_dir():
        _run(["prepare", "poses", "--manifest", str(manifest), "--out", str(poses), "--source", "openpose-json",
              "--json-dir", str(json_dir)] + (["--workers", str(workers)] if workers else []))
    else:
        _run(["prepare", "poses", "--manifest", str(manifest), "--out", str(poses), "--source", "mediapipe"]
             + (["--workers", str(workers)] if workers else []))
    timed("poses", t)

    common = [f"data.manifest={manifest}", f"data.pose_cache={poses}"]

    # 4. pretrain ----------------------------------------------------------------------
    t = time.time()
    _step("4/7 CSVR pretraining")
    pre = out / "pretrain-csvr"
    if not _done(pre / "summary.json"):
        resume = ["--resume"] if (pre / "checkpoints").is_dir() else []
        _run(["pretrain", "--config", pretrain_config, "--out", str(pre), *resume, *common, *extra_pretrain])
    else:
        print(f"(done: {pre}/summary.json)")
    ckpt = _final_checkpoint(pre)
    timed("pretrain", t)

    # 5. finetune ----------------------------------------------------------------------
    # Like with like: both runs are the f_i network (clip + poses), same preset, same budget, same
    # seed; only the initial weights differ (the CSVR checkpoint's, or fresh ones for the
    # checkpoint's architecture). The f_i network from random weights already uses the poses,
    # so this difference is what pretraining adds (issue 16).
    fraction = [f"data.label_fraction={label_fraction}"] if label_fraction else []
    runs = {}
    for name, init in (("csvr", []), ("random-init", ["model.init=scratch"])):
        t = time.time()
        _step(f"5/7 finetune f_i: {name}")
        run = out / f"finetune-{name}"
        if not _done(run / "results.json"):
            resume = ["--resume"] if (run / "checkpoints").is_dir() else []
            _run(["finetune", "--config", finetune_config, "--pretrained", ckpt, "--feature", FINETUNE_FEATURE, "--out", str(run),
                  *resume, *common, *init, *fraction, *extra_finetune])
        else:
            print(f"(done: {run}/results.json)")
        runs[name] = json.loads((run / "results.json").read_text())
        timed(f"finetune_{name}", t)

    # 6. frozen features ---------------------------------------------------------------
    frozen = {}
    for feature in FROZEN_FEATURES:
        t = time.time()
        _step(f"6/7 frozen {feature}: kNN and linear probe vs the same network from random weights")
        run = out / f"knn-{feature}"
        if not _done(run / "knn.json"):
            _run(["knn", "--checkpoint", ckpt, "--feature", feature, "--manifest", str(manifest), "--pose-cache",
                  str(poses), "--clips", str(KNN_CLIPS), "--control-seeds", str(CONTROL_SEEDS), "--linear",
                  "--cache", str(out / "feature-cache"), "--out", str(run)])
        else:
            print(f"(done: {run}/knn.json)")
        frozen[feature] = json.loads((run / "knn.json").read_text())
        timed(f"knn_{feature}", t)

    # 7. report ------------------------------------------------------------------------
    t = time.time()
    _step("7/7 report")
    _run(["report", str(pre), str(out / "finetune-random-init"), str(out / "finetune-csvr"),
          *(str(out / f"knn-{f}") for f in FROZEN_FEATURES), "--samples", "--out", str(out / "report")])
    timed("report", t)

    summary = {
        "out": str(out), "seconds": round(time.time() - t0, 1), "timings": timings,
        "finetune": finetune_gain(runs["csvr"], runs["random-init"], manifest),
        "frozen": {f: {m: d for m, d in doc["measures"].items() if m in FROZEN_ROWS} | {"num_test": doc["num_test"]}
                   for f, doc in frozen.items()},
        "control_seeds": CONTROL_SEEDS,
        "report": str(out / "report" / "report.html"),
        "data": "built-in" if builtin else str(root),
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_table(summary)
    return summary


def fit_to_data(manifest: Path, pretrain_config: str, finetune_config: str, extra_pretrain: list[str],
                extra_finetune: list[str], label_fraction: float | None) -> None:
    """Your own small dataset: stop before any training when split 1 has no test (or no training)
    video, and lower a preset's batch size to what the training videos fill (at least 2: context
    matching needs a negative), appending the override to ``extra_*`` and printing it."""

    m = load_manifest(manifest)
    train, test = m.select("1", "train"), m.select("1", "test")
    if not test:
        raise CsvrError(f"split 1 of {manifest} has no test video, so nothing could be evaluated: pass --test-ratio "
                        "(e.g. 0.3: that share of each class's videos is held out), or use a layout with split files")
    if len(train) < 2:
        raise CsvrError(f"split 1 of {manifest} has {len(train)} training video(s): the demo needs at least 2 "
                        "(lower --test-ratio, or add videos)")
    fraction = label_fraction
    for what, cls, preset, extra in (("pretraining", PretrainConfig, pretrain_config, extra_pretrain),
                                     ("finetuning", FinetuneConfig, finetune_config, extra_finetune)):
        kind = "pretrain" if cls is PretrainConfig else "finetune"
        cfg = load_config(cls, resolve_config_path(preset, kind), extra)
        n = len(m.select(cfg.data.split, cfg.data.subset))
        if kind == "finetune":
            f = fraction if fraction is not None else cfg.data.label_fraction
            n = len(stratified_subset(train, f, cfg.train.seed)) if f and f < 1 else n
        world = max(1, int(cfg.train.devices)) if str(cfg.train.devices).isdigit() else 1
        if cfg.train.batch_size * world > n:
            new = max(2, n // world)
            print(f"(adjusted for your data: {what} train.batch_size {cfg.train.batch_size} -> {new}: "
                  f"{n} training video(s) in split 1)", flush=True)
            extra.append(f"train.batch_size={new}")


KNN_CLIPS = 5          # clips per video for the frozen features (as the finetuning preset's evaluation)
CONTROL_SEEDS = 3      # random-init seeds of the frozen control
FINETUNE_FEATURE = "fi"   # f_i, the paper's downstream feature: both finetuning rows use it
CONTEXT_FEATURE = "fs"    # f_s, the clip-only context feature
FROZEN_FEATURES = (FINETUNE_FEATURE, CONTEXT_FEATURE)   # evaluated frozen against their controls
FROZEN_ROWS = {"knn20_top1": "kNN k=20 top-1", "knn1_top1": "kNN k=1 top-1 (= R@1)", "linear_top1": "linear top-1"}


def finetune_gain(csvr: dict, control: dict, manifest: str | Path) -> dict:
    """Video top-1 of the two finetuning runs (percent) and the paired difference with its 95 %
    bootstrap interval over the test videos both evaluated."""
    labels = {r.id: r.label for r in load_manifest(manifest).records}

    def correct(results: dict) -> dict[str, int]:
        return {v: int(p == labels[v]) for v, p in zip(results["video_ids"], results["video_predictions"])}

    a, b = correct(csvr), correct(control)
    ids = [v for v in a if v in b]
    g = paired_gain(np.array([a[v] for v in ids]), np.array([b[v] for v in ids]))
    pct = lambda x: [round(100 * v, 2) for v in x] if isinstance(x, (list, tuple)) else round(100 * x, 2)  # noqa: E731
    return {"mean": pct(g["mean"]), "ci": pct(g["ci"]), "control": pct(g["control"]),
            "control_ci": pct(g["control_ci"]), "gain": pct(g["gain"]), "gain_ci": pct(g["gain_ci"]),
            "num_test": len(ids)}


def print_table(summary: dict) -> None:
    ft = summary["finetune"]
    n = ft["num_test"]
    seeds = summary.get("control_seeds", CONTROL_SEEDS)
    print(f"\n== result: {n} test videos (one video = {100 / n:.1f} points); CSVR vs the same network from random "
          "weights")
    print(f"{'':34s} {'CSVR':>7s} {'random init':>12s}   {'difference [95% CI]':>20s}")

    def row(label: str, d: dict) -> str:
        lo, hi = d["gain_ci"]
        return f"{label:34s} {d['mean']:6.1f}% {d['control']:11.1f}%   {d['gain']:+6.1f} [{lo:+.1f}, {hi:+.1f}]"

    print(row("finetuned f_i, video top-1", ft))
    for feature, rows in summary["frozen"].items():
        for m, label in FROZEN_ROWS.items():
            if m in rows:
                print(row(f"frozen {feature.replace('f', 'f_')}, {label}", rows[m]))
    own = summary.get("data", "built-in") != "built-in"
    beyond = ("anything beyond these videos of yours (a small CPU preset, minutes of training)" if own else
              "anything about real videos\n  (synthetic 64 px clips, minutes of CPU training)")
    widths = [d["gain_ci"][1] - d["gain_ci"][0] for d in [ft, *(r[m] for r in summary["frozen"].values()
                                                               for m in FROZEN_ROWS if m in r)]]
    print(f"""
finetuned: both rows are the f_i network (clip + poses), same preset, budget and seed; only the
  initial weights differ. frozen: the random-init column is the mean of {seeds} seeds. CIs: paired
  bootstrap over the test videos.
what this demo shows: the whole pipeline runs end to end (data, index, poses, the four CSVR stages,
  finetuning, frozen evaluation, report with predicted poses and generated frames), and each row
  compares like with like, with the uncertainty that {n} test videos leave.
what it cannot show: differences smaller than its intervals (here {min(widths):.0f}-{max(widths):.0f} points wide); the
  spread over pretraining and finetuning seeds (one run each: the CIs cover the choice of test
  videos only); CSVR against IIC / CVRL or the paper's numbers; {beyond}. The study with seeds,
  budgets and baselines: benchmarks/RESULTS.md.""")
    for line in study_headline():
        print(line)
    print(f"\nreport: {summary['report']}   ({summary['seconds']:.0f} s in all)")


#: the replication study's committed result, beside the package in a source checkout (``make demo``)
STUDY_JSON = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "study.json"


def study_headline(path: Path = STUDY_JSON) -> list[str]:
    """The demo's closing lines on the replication study: its headline (each of the paper's claims
    at the longest budget that measures it, :func:`csvr.eval.study.headline_lines`) read from the
    committed ``study.json``; only the pointer to it where the file is not there (an installed
    package)."""
    if not path.is_file():
        return ["the replication study's claims: benchmarks/RESULTS.md, 'Replication study' (in the repository)"]
    try:
        lines = headline_lines(load_study(path))
    except (CsvrError, KeyError, TypeError, ValueError):
        return [f"the replication study's claims: {path} could not be read; see benchmarks/RESULTS.md"]
    return ["the replication study's headline (benchmarks/RESULTS.md, 'Replication study'; finetune top-1, "
            "paired differences in points, 95 % CI):"] + [f"  {line}" for line in lines]


def register(commands, groups) -> None:
    p = commands.add_parser(
        "demo", help="the whole pipeline end to end on the built-in dataset (or your own)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  csvr demo --out runs/demo\n  csvr demo --data data/UCF101 --out runs/demo-ucf101\n"
               "  csvr demo --data my_videos/ --test-ratio 0.3 --out runs/demo-mine   # one folder per class\n")
    p.add_argument("--out", default="runs/demo", help="output folder (re-running continues there)")
    p.add_argument("--data", default=None, help="your own dataset root (UCF101/HMDB51/folder layout) instead of "
                                                "the built-in one; poses are then extracted with MediaPipe")
    p.add_argument("--layout", default="auto", choices=["auto", "ucf101", "hmdb51", "folder"],
                   help="layout of --data (default auto; see 'csvr prepare index --help')")
    p.add_argument("--workers", type=int, default=0, help="worker processes for the data steps (0 = cores)")
    p.add_argument("--label-fraction", type=float, default=None,
                   help="finetune on this stratified fraction of the training labels (default: the preset's)")
    p.add_argument("--pretrain-config", default="demo", help="pretraining preset (csvr/configs/pretrain)")
    p.add_argument("--finetune-config", default="demo", help="finetuning preset (csvr/configs/finetune)")
    p.add_argument("--test-ratio", type=float, default=None,
                   help="with --data: hold out this share of each class's videos as split 1's test part (e.g. 0.3; "
                        "passed to 'csvr prepare index')")
    p.add_argument("--pretrain-override", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for the pretraining step (repeatable), e.g. train.batch_size=8")
    p.add_argument("--finetune-override", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for both finetuning runs (repeatable)")
    p.add_argument("--fresh", action="store_true", help="delete --out first and start over")
    p.set_defaults(func=lambda a: (run_demo(a.out, a.data, a.layout, a.workers, a.fresh, a.label_fraction,
                                            a.pretrain_config, a.finetune_config, a.pretrain_override,
                                            a.finetune_override, a.test_ratio), 0)[1])
