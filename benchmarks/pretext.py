"""Does every branch learn? (issue 12) Pretext signals beside their trivial baselines, and the
retrieval of each method's pretrained features against the same network from random weights.

Data: the built-in dataset re-made with a fixed GOP of 12 (``csvr data synth --gop 12``, the
paper's CoViAR protocol) and ``--videos-per-class`` videos per class (40: 420 training / 180 test
videos). Pretraining sees the training split only; its labels are never read.

Parts (each resumable: a finished run is skipped, a killed one resumed):

``sweep``  the CPU presets' learning rates, chosen by *pretext signals only* (no label is read):
           CSVR (``demo`` preset, its whole 160-step budget) over the encoders' SGD rate and the
           GANs' Adam rate; CVRL and IIC (``small-cpu-cvrl`` / ``small-cpu-iic``) over the SGD
           rate at a short budget. Writes ``OUT/sweep.json``.
``final``  CSVR with the demo preset as committed; CVRL and IIC with as many steps as fit in the
           CSVR run's wall-clock (measured, stated); then retrieval (test videos query training
           videos, ``--clips`` uniform clips each); the steps of CVRL and IIC come from a 40-step
           calibration run of each right after the CSVR run (0.95 x CSVR's seconds / their seconds
           per step, start-up included, so they never get more time than CSVR) of CSVR f_s, CVRL and IIC backbone features and
           of the same networks from ``--control-seeds`` random initialisations; R@1 / R@5 with a
           bootstrap 95 % CI over queries of the paired difference to the controls' mean; weighted kNN
           top-1 (k = 20, tau = 0.07) on the same features. Writes
           ``OUT/pretext.json`` and prints the tables.

    .venv/bin/python benchmarks/pretext.py sweep --out runs/pretext      # ~35 min on 2 cores
    .venv/bin/python benchmarks/pretext.py final --out runs/pretext      # ~20 min
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("CSVR_PROGRESS", "0")

from csvr.cli import main as cli  # noqa: E402
from csvr.eval.knn import weighted_knn  # noqa: E402
from csvr.eval.stats import paired_gain  # noqa: E402

GOALS = {  # issue 12's goals for the demo budget
    "pose_mse / pose_mse_copy": ("<=", 0.7),
    "pose_d_gap": (">", 0.3),
    "video_r_d_gap": (">", 0.3),
    "video_p_d_gap": (">", 0.3),
    "context_top1 / context_chance": (">=", 4.0),
    "iframe_own_frac": (">=", 0.95),
    "video_r_mse / video_r_mse_mean": ("<=", 0.6),
}

CSVR_SWEEP = [  # (encoder lr_per_sample, generator Adam lr, critic Adam lr); None: the best encoder rate
    (0.0005, 1e-4, 1e-3), (0.002, 1e-4, 1e-3), (0.008, 1e-4, 1e-3), (None, 3e-4, 3e-3),
]
BASELINE_SWEEP = [0.0005, 0.002, 0.008]


def ensure_data(root: Path, videos_per_class: int) -> dict[str, str]:
    data, manifest, poses = root / "data", root / "manifest.jsonl", root / "poses"
    if not manifest.exists():
        assert cli(["data", "synth", "--out", str(data), "--gop", "12", "--videos-per-class", str(videos_per_class)]) == 0
        assert cli(["prepare", "index", str(data), "--out", str(manifest)]) == 0
    if not (poses / "_reports").exists():
        assert cli(["prepare", "poses", "--manifest", str(manifest), "--out", str(poses), "--source", "openpose-json",
                    "--json-dir", str(data / "poses" / "openpose")]) == 0
    return {"manifest": str(manifest), "poses": str(poses)}


def pretrain_run(run: Path, config: str, data: dict[str, str], overrides: list[str]) -> dict:
    """Run (or resume, or reuse) one pretraining; its summary."""
    if (run / "summary.json").exists():
        return json.loads((run / "summary.json").read_text())
    resume = ["--resume"] if (run / "checkpoints").is_dir() else []
    argv = ["pretrain", "--config", config, "--out", str(run), *resume, f"data.manifest={data['manifest']}",
            f"data.pose_cache={data['poses']}", *overrides]
    print("$ csvr " + " ".join(argv), flush=True)
    assert cli(argv) == 0
    return json.loads((run / "summary.json").read_text())


def last_half(run: Path, stage: str | None = None) -> dict[str, float]:
    """Mean of every logged metric over the last half of a stage's logged steps (all stages: the last)."""
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    stage = stage or rows[-1]["stage"]
    rows = [r for r in rows if r["stage"] == stage]
    rows = rows[len(rows) // 2:]
    out = {}
    for k in rows[0]:
        if k == "stage":
            continue
        vals = [float(r[k]) for r in rows if r.get(k) not in (None, "")]
        if vals:
            out[k] = float(np.mean(vals))
    return out


def csvr_goals(run: Path) -> dict[str, dict]:
    """Issue 12's goals on the last half of the joint stage (iframe and context also on their own stage)."""
    j = last_half(run, "joint")
    c = last_half(run, "context")
    vals = {
        "pose_mse / pose_mse_copy": j["pose_mse"] / j["pose_mse_copy"],
        "pose_d_gap": j["pose_d_gap"],          # signed: a critic that rates fakes higher is fooled, not learning
        "video_r_d_gap": j["video_r_d_gap"],
        "video_p_d_gap": j["video_p_d_gap"],
        "context_top1 / context_chance": j["context_top1"] / j["context_chance"],
        "iframe_own_frac": j["iframe_own_frac"],
        "video_r_mse / video_r_mse_mean": j["video_r_mse"] / j["video_r_mse_mean"],
    }
    out = {}
    for name, v in vals.items():
        op, thr = GOALS[name]
        ok = {"<=": v <= thr, ">": v > thr, ">=": v >= thr}[op]
        out[name] = {"value": v, "goal": f"{op} {thr:g}", "met": bool(ok)}
    out["context stage: context_top1 / context_chance"] = {"value": c["context_top1"] / c["context_chance"]}
    out["iframes_per_clip"] = {"value": j["iframes_per_clip"]}
    out["raw"] = {k: j[k] for k in ("pose_mse", "pose_mse_copy", "pose_d_gap", "video_r_d_gap", "video_p_d_gap",
                                    "context_top1", "context_chance", "video_r_mse", "video_r_mse_mean",
                                    "video_p_mse", "video_p_mse_mean", "iframe_own_frac", "iframes_per_clip")}
    return out


def csvr_score(run: Path) -> tuple[int, float]:
    """Sweep criterion for CSVR (pretext only): goals met, then context_top1 / chance."""
    g = csvr_goals(run)
    return sum(int(v.get("met", False)) for v in g.values() if isinstance(v, dict) and "met" in v), \
        g["context_top1 / context_chance"]["value"]


def baseline_score(run: Path) -> tuple[float, float]:
    """Sweep criterion for CVRL / IIC: pair top-1 over its chance level, then the negative loss."""
    m = last_half(run)
    loss = m.get("nt_xent", m.get("iic", 0.0))
    return m["pair_top1"] / max(m.get("pair_chance", 1 / 16), 1e-9), -loss


def sweep(args, data) -> dict:
    path = args.out / "sweep.json"
    res = json.loads(path.read_text()) if path.exists() else {"csvr": {}, "cvrl": {}, "iic": {}}
    best_enc = None
    for enc, g_lr, d_lr in CSVR_SWEEP:
        if enc is None:
            enc = best_enc
        name = f"csvr-enc{enc:g}-g{g_lr:g}-d{d_lr:g}"
        run = args.out / "sweep" / name
        s = pretrain_run(run, "demo", data, [f"optim.lr_per_sample={enc}", f"optim.generator.lr={g_lr}",
                                             f"optim.critic.lr={d_lr}"])
        res["csvr"][name] = {"lr_per_sample": enc, "generator_lr": g_lr, "critic_lr": d_lr, "seconds": s["seconds"],
                             "steps": s["global_step"], "score": list(csvr_score(run)), "goals": csvr_goals(run)}
        path.write_text(json.dumps(res, indent=1))
        if g_lr == CSVR_SWEEP[0][1]:
            best_enc = max((v for v in res["csvr"].values() if v["generator_lr"] == g_lr), key=lambda v: v["score"])[
                "lr_per_sample"]
    for method, steps in (("cvrl", args.sweep_steps_cvrl), ("iic", args.sweep_steps_iic)):
        for enc in BASELINE_SWEEP:
            name = f"{method}-enc{enc:g}"
            run = args.out / "sweep" / name
            s = pretrain_run(run, f"small-cpu-{method}", data, [f"optim.lr_per_sample={enc}",
                                                                 f"train.stages=[{{name: main, epochs: 100, max_steps: {steps}}}]"])
            res[method][name] = {"lr_per_sample": enc, "seconds": s["seconds"], "steps": s["global_step"],
                                 "score": list(baseline_score(run)), "last_half": last_half(run)}
            path.write_text(json.dumps(res, indent=1))
    print_sweep(res)
    return res


def print_sweep(res: dict) -> None:
    for method, runs in res.items():
        for name, r in runs.items():
            print(f"{name:32s} {r['steps']:5d} steps {r['seconds']:7.1f} s  score {r['score']}")


def retrieve(run_ckpt: str, out: Path, data, feature: str, clips: int, seed: int | None) -> Path:
    if not (out / "features.npz").exists():
        argv = ["retrieve", "--checkpoint", run_ckpt, "--feature", feature, "--manifest", data["manifest"],
                "--pose-cache", data["poses"], "--clips", str(clips), "--save-features", "--out", str(out)]
        if seed is not None:
            argv += ["--random-init", "--seed", str(seed)]
        print("$ csvr " + " ".join(argv), flush=True)
        assert cli(argv) == 0
    return out / "features.npz"


def scores(npz: Path) -> dict[str, np.ndarray]:
    """Per test video: R@1 / R@5 hits (one of its k nearest training videos, cosine, has its class)
    and weighted-kNN (k = 20, tau = 0.07) top-1 correctness."""
    z = np.load(npz)
    q = z["query"] / np.linalg.norm(z["query"], axis=1, keepdims=True).clip(1e-12)
    g = z["gallery"] / np.linalg.norm(z["gallery"], axis=1, keepdims=True).clip(1e-12)
    order = np.argsort(-(q.astype(np.float64) @ g.astype(np.float64).T), axis=1, kind="stable")
    same = z["gallery_labels"][order] == z["query_labels"][:, None]
    knn = weighted_knn(z["gallery"], z["gallery_labels"], z["query"], z["query_labels"], k=20)
    return {"r1": same[:, :1].any(axis=1).astype(np.float64), "r5": same[:, :5].any(axis=1).astype(np.float64),
            "knn_top1": knn.top1}


def final(args, data) -> dict:
    sw = json.loads((args.out / "sweep.json").read_text())
    out = {"date": time.strftime("%Y-%m-%d"), "rows": []}
    csvr_run = args.out / "final" / "csvr"
    s = pretrain_run(csvr_run, "demo", data, [])
    budget = s["seconds"]
    out["csvr_seconds"], out["csvr_steps"] = budget, s["global_step"]
    out["csvr_goals"] = csvr_goals(csvr_run)
    runs = {"csvr": (csvr_run, s)}
    for method in ("cvrl", "iic"):
        # seconds per step measured now, on the same (otherwise idle) machine as the CSVR run
        cal = args.out / "final" / f"{method}-calibration"
        c = pretrain_run(cal, f"small-cpu-{method}", data, ["train.stages=[{name: main, epochs: 100, max_steps: 40}]"])
        per_step = c["seconds"] / c["global_step"]
        steps = int(0.95 * budget / per_step)
        out[f"{method}_seconds_per_step"] = per_step
        run = args.out / "final" / method
        runs[method] = (run, pretrain_run(run, f"small-cpu-{method}", data,
                                          [f"train.stages=[{{name: main, epochs: 100, max_steps: {steps}}}]"]))
    for method, feature in (("csvr", "fs"), ("cvrl", "backbone"), ("iic", "backbone")):
        run, summ = runs[method]
        ckpt = summ["checkpoint"]
        pre = scores(retrieve(ckpt, args.out / "retrieval" / f"{method}-{feature}", data, feature, args.clips, None))
        ctrl = [scores(retrieve(ckpt, args.out / "retrieval" / f"{method}-{feature}-random{sd}", data, feature,
                                args.clips, sd)) for sd in range(args.control_seeds)]
        row = {"method": method, "feature": feature, "steps": summ["global_step"], "seconds": summ["seconds"],
               "queries": int(len(pre["r1"])), "pretext": last_half(run)}
        for m in ("r1", "r5", "knn_top1"):
            g = paired_gain(pre[m], np.stack([c[m] for c in ctrl]))
            row[m], row[f"{m}_ci"] = 100 * g["mean"], [100 * v for v in g["ci"]]
            row[f"{m}_control"], row[f"{m}_control_ci"] = 100 * g["control"], [100 * v for v in g["control_ci"]]
            row[f"{m}_control_seeds"] = [100 * float(c[m].mean()) for c in ctrl]
            row[f"{m}_gain"], row[f"{m}_gain_ci"] = 100 * g["gain"], [100 * v for v in g["gain_ci"]]
        out["rows"].append(row)
        (args.out / "pretext.json").write_text(json.dumps(out, indent=1))
    print_final(out)
    return out


def print_final(out: dict) -> None:
    print(f"\nCSVR demo budget: {out['csvr_steps']} steps in {out['csvr_seconds']:.0f} s")
    for name, g in out["csvr_goals"].items():
        if name != "raw":
            print(f"  {name:48s} {g['value']:.3f}  {g.get('goal', ''):8s} {'met' if g.get('met') else ('' if 'met' not in g else 'NOT met')}")
    print(f"\n{'method':6s} {'feature':9s} {'steps':>5s} {'s':>5s} | measure  pretrained [95% CI]  random init  gain [95% CI]")
    for r in out["rows"]:
        for m in ("r1", "r5", "knn_top1"):
            print(f"{r['method']:6s} {r['feature']:9s} {r['steps']:5d} {r['seconds']:5.0f} | {m:8s} {r[m]:5.1f} "
                  f"[{r[m + '_ci'][0]:4.1f}, {r[m + '_ci'][1]:4.1f}]  {r[m + '_control']:5.1f} "
                  f"({', '.join(f'{v:.1f}' for v in r[m + '_control_seeds'])})  {r[m + '_gain']:+5.1f} "
                  f"[{r[m + '_gain_ci'][0]:+5.1f}, {r[m + '_gain_ci'][1]:+5.1f}]")
    print(f"({out['rows'][0]['queries']} test videos query the training videos)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=("sweep", "final"))
    ap.add_argument("--out", type=Path, default=Path("runs/pretext"))
    ap.add_argument("--data", type=Path, default=None, help="data folder (default OUT/../pretext-data)")
    ap.add_argument("--videos-per-class", type=int, default=40)
    ap.add_argument("--clips", type=int, default=5)
    ap.add_argument("--control-seeds", type=int, default=3)
    ap.add_argument("--sweep-steps-cvrl", type=int, default=150)
    ap.add_argument("--sweep-steps-iic", type=int, default=100)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = ensure_data(args.data or args.out.parent / "pretext-data", args.videos_per_class)
    sweep(args, data) if args.part == "sweep" else final(args, data)


if __name__ == "__main__":
    main()
