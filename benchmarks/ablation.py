"""The paper's Table I and Table V at small scale, on the built-in dataset (issue 8).

Every row pretrains with the same budget (``--budget`` optimiser steps of the small-cpu preset's
batch of 16 clips, so the same number of steps and samples), then finetunes with a limited,
stratified fraction of the training labels (``--label-fraction``) for ``--seeds`` seeds, and runs
retrieval with the pretrained features (random-init features for scratch). Rows:

  scratch            no pretraining (the f_s network, random init)         Table I row 1
  scratch (f_i net)  no pretraining, the whole f_i network (pose encoder + V-network + fusion), random
                     init: the control for the f_i rows, which also see the poses when finetuning
  f_d only           pose CGAN alone (stage pose), finetune f_d             Table I
  f_s only           context matching alone (stage context), finetune f_s  Table I
  f_i (Concat)       pose + context (no video branch), Concat fusion       Table I
  f_i (AdaIN)        pose + context (no video branch), AdaIN fusion        Table I
  f_i (full CSVR)    all branches, the four stages                         Table I last row / Table V
  CSVR L_r only      video branch reconstructs only                        Table V
  CSVR L_p only      video branch predicts only                            Table V
  IIC                IIC on the same backbone                              peer method
  CVRL               CVRL on the same backbone                             peer method
  CSVR, no video     full CSVR with the f_i (AdaIN) row's stage split      investigation
    stage            (L_video only in the joint stage)
  CSVR, video adv    full CSVR, the video generators' adversarial term     investigation
    0.1              weighted 0.1
  CSVR, video GP 1   full CSVR with WGAN-GP (weight 1) on the video critics investigation

Stage budgets: a CSVR row spends 20% / 25% / 20% / 35% of the budget on the pose, context,
video and joint stages (the small-cpu preset's ratio); rows without a video branch spend 30% /
35% on pose / context and 35% jointly; single-branch rows spend all of it on their stage.

Run (resumable: finished parts are skipped):
    .venv/bin/python benchmarks/ablation.py --data runs/bench-data --out runs/ablation   # 5 seeds, ~2 h on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from csvr.cli import main as cli
from csvr.config import load_config
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.pretrain import pretrain
from csvr.eval.finetune import FinetuneConfig, run_finetune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ensure_builtin_data  # noqa: E402

ROWS = [
    # name, pretraining method, model overrides, stage split {stage: fraction}, finetune feature, retrieval feature
    ("scratch", None, [], {}, "scratch", "fs"),
    ("scratch (f_i network)", None, [], {}, "fi-scratch", "fi"),
    ("f_d only", "csvr", ["model.use_context=false", "model.use_video=false"], {"pose": 1.0}, "fd", "fd"),
    ("f_s only", "csvr", ["model.use_pose=false", "model.use_video=false"], {"context": 1.0}, "fs", "fs"),
    ("f_i (Concat)", "csvr", ["model.fusion=concat", "model.use_video=false"],
     {"pose": 0.30, "context": 0.35, "joint": 0.35}, "fi", "fi"),
    ("f_i (AdaIN)", "csvr", ["model.fusion=adain", "model.use_video=false"],
     {"pose": 0.30, "context": 0.35, "joint": 0.35}, "fi", "fi"),
    ("f_i (full CSVR)", "csvr", [], {"pose": 0.20, "context": 0.25, "video": 0.20, "joint": 0.35}, "fi", "fi"),
    ("CSVR L_r only", "csvr", ["model.video_targets=reconstruct"],
     {"pose": 0.20, "context": 0.25, "video": 0.20, "joint": 0.35}, "fi", "fi"),
    ("CSVR L_p only", "csvr", ["model.video_targets=predict"],
     {"pose": 0.20, "context": 0.25, "video": 0.20, "joint": 0.35}, "fi", "fi"),
    ("IIC", "iic", ["model={backbone: {name: r3d_18, width: 16, layers: [1, 1, 1, 1]}, proj_dim: 64}"],
     {"main": 1.0}, "backbone", "backbone"),
    ("CVRL", "cvrl", ["model={backbone: {name: r3d_18, width: 16, layers: [1, 1, 1, 1]}, proj_dim: 64}"],
     {"main": 1.0}, "backbone", "backbone"),
    # investigation: the video branch only in the joint stage, so that the encoders get the same
    # pose / context stage steps as the f_i (AdaIN) row; isolates what L_video adds
    ("CSVR, no video stage", "csvr", [], {"pose": 0.30, "context": 0.35, "joint": 0.35}, "fi", "fi"),
    # investigation: which part of L_video hurts at this budget - the generators' adversarial term
    # (scaled down) or unstable critics (WGAN-GP on the video critics)
    ("CSVR, video adv 0.1", "csvr", ["model.video.adv_weight=0.1"],
     {"pose": 0.20, "context": 0.25, "video": 0.20, "joint": 0.35}, "fi", "fi"),
    ("CSVR, video GP 1", "csvr", ["model.video.gp_weight=1.0"],
     {"pose": 0.20, "context": 0.25, "video": 0.20, "joint": 0.35}, "fi", "fi"),
]


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def stages(split: dict[str, float], budget: int) -> str:
    parts = []
    left = budget
    items = list(split.items())
    for i, (stage, frac) in enumerate(items):
        n = left if i == len(items) - 1 else int(round(frac * budget))
        left -= n
        parts.append(f"{{name: {stage}, epochs: 1000, max_steps: {n}}}")
    return "train.stages=[" + ", ".join(parts) + "]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="runs/bench-data")
    ap.add_argument("--out", default="runs/ablation")
    ap.add_argument("--budget", type=int, default=240, help="pretraining steps per row")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--label-fraction", type=float, default=0.5)
    ap.add_argument("--finetune-steps", type=int, default=120)
    ap.add_argument("--rows", default=None, help="comma-separated row slugs to run (default: all)")
    args = ap.parse_args()
    t_start = time.time()
    root, out = Path(args.data), Path(args.out)
    ensure_builtin_data(root)
    common = [f"data.manifest={root / 'manifest.jsonl'}", f"data.pose_cache={root / 'poses_cache'}"]
    results_path = out / "ablation.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    base_ckpt = None
    wanted = set(args.rows.split(",")) if args.rows else None
    for name, method, over, split, ft_feature, rt_feature in ROWS:
        key = slug(name)
        if wanted and key not in wanted:
            continue
        row = results.get(key, {"name": name})
        t_row = time.time()
        # ---------------------------------------------------------------- pretraining
        pre = out / key / "pretrain"
        if method is not None:
            if not (pre / "summary.json").exists():
                cfg = load_config(PretrainConfig, resolve_config_path("small-cpu"),
                                  common + [f"method={method}", f"out={pre}", stages(split, args.budget),
                                            "train.ckpt_every_steps=100000"] + over)
                resume = (pre / "checkpoints").is_dir()
                s = pretrain(cfg, resume=resume)
                row["pretrain_seconds"] = s["seconds"]
            summary = json.loads((pre / "summary.json").read_text())
            ckpt = summary["checkpoint"]
            row["pretext"] = summary.get("last_epoch_metrics", {})
            if key == "f-i-full-csvr":
                base_ckpt = ckpt
        else:
            ckpt = None
        # ---------------------------------------------------------------- finetuning
        tops, clip_tops, groups = [], [], []
        for seed in range(args.seeds):
            run = out / key / f"finetune-seed{seed}"
            if not (run / "results.json").exists():
                arch = ckpt or base_ckpt or str(_architecture_checkpoint(out, common, args))
                over_ft = common + [f"out={run}", f"train.seed={seed}", f"data.label_fraction={args.label_fraction}",
                                    f"train.stages=[{{name: main, epochs: 1000, max_steps: {args.finetune_steps}}}]",
                                    f"model.pretrained={arch}"]
                if ft_feature == "scratch":
                    over_ft += ["model.feature=fs", "model.init=scratch"]
                elif ft_feature == "fi-scratch":
                    over_ft += ["model.feature=fi", "model.init=scratch"]
                else:
                    over_ft.append(f"model.feature={ft_feature}")
                fcfg = load_config(FinetuneConfig, resolve_config_path("small-cpu", "finetune"), over_ft)
                run_finetune(fcfg)
            r = json.loads((run / "results.json").read_text())
            tops.append(r["video_top1"])
            clip_tops.append(r["clip_top1"])
            cg = r.get("class_groups", {})
            groups.append({g: float(np.mean([a for c, a in r["per_class"].items() if cg.get(c) == g and a is not None]))
                           for g in ("motion", "context", "both")})
        row["top1"] = tops
        row["top1_mean"], row["top1_std"] = float(np.mean(tops)), float(np.std(tops, ddof=1)) if len(tops) > 1 else 0.0
        row["clip_top1_mean"] = float(np.mean(clip_tops))
        row["groups"] = {g: float(np.mean([x[g] for x in groups])) for g in ("motion", "context", "both")}
        # ---------------------------------------------------------------- retrieval
        rdir = out / key / "retrieval"
        if not (rdir / "retrieval.json").exists():
            ck = ckpt or base_ckpt or str(_architecture_checkpoint(out, common, args))
            argv = ["retrieve", "--checkpoint", ck, "--feature", rt_feature, "--manifest", str(root / "manifest.jsonl"),
                    "--pose-cache", str(root / "poses_cache"), "--out", str(rdir), "--clips", "5"]
            if method is None:
                argv.append("--random-init")
            assert cli(argv) == 0
        rr = json.loads((rdir / "retrieval.json").read_text())
        row["R@1"], row["R@5"] = rr["recall"]["1"], rr["recall"]["5"]
        row["seconds"] = row.get("seconds", 0) + round(time.time() - t_row, 1)
        results[key] = row
        out.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"[{name}] top-1 {100 * row['top1_mean']:.1f} +- {100 * row['top1_std']:.1f}  R@1 {100 * row['R@1']:.1f}",
              flush=True)
    print_table(results, args, time.time() - t_start)


def _architecture_checkpoint(out: Path, common: list[str], args) -> Path:
    """Scratch needs only an architecture: a 1-step CSVR pretraining checkpoint (weights unused)."""
    pre = out / "_architecture"
    if not (pre / "summary.json").exists():
        cfg = load_config(PretrainConfig, resolve_config_path("small-cpu"),
                          common + [f"out={pre}", "train.stages=[{name: context, epochs: 1, max_steps: 1}]"])
        pretrain(cfg, resume=(pre / "checkpoints").is_dir())
    return Path(json.loads((pre / "summary.json").read_text())["checkpoint"])


def print_table(results: dict, args, seconds: float) -> None:
    print(f"\n| row | top-1 (%) mean +- sample std over {args.seeds} seeds | motion | context | both | R@1 (%) | R@5 (%) |")
    print("|---|---|---|---|---|---|---|")
    for name, *_ in ROWS:
        r = results.get(slug(name))
        if not r or "top1_mean" not in r:
            continue
        g = r["groups"]
        print(f"| {name} | {100 * r['top1_mean']:.1f} +- {100 * r['top1_std']:.1f} | {100 * g['motion']:.1f} | "
              f"{100 * g['context']:.1f} | {100 * g['both']:.1f} | {100 * r['R@1']:.1f} | {100 * r['R@5']:.1f} |")
    print(f"\n({seconds / 60:.0f} min; budget {args.budget} pretraining steps x 16 clips per row, finetuning "
          f"{args.finetune_steps} steps on {100 * args.label_fraction:.0f}% of the labels)")


if __name__ == "__main__":
    main()

