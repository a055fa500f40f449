"""Paper Table II on the built-in dataset: do the pretext tasks and action recognition improve
together during pretraining? (issue 23 item 5)

The paper measures, at pretraining epochs 1 / 5 / 10 / 20 / 50 / 120 on UCF101, the context
matching top-1, the pose-prediction MSE (x100), the Inception Score of the generated videos and
the finetuned action top-1, and reads a "consistent improvement" from the table. Here:

* **one** CSVR pretraining run of the ``demo`` preset with its joint stage lengthened to
  ``--joint-steps`` (default 480: the separate stages are pretraining of single branches, the
  paper's epochs count the joint optimisation); checkpoints kept (``train.keep_steps``) at the
  end of the video stage (joint step 0) and at the paper's epochs scaled to the joint stage
  (1 / 5 / 10 / 20 / 50 / 120 of 120);
* at each checkpoint, on the split's test videos (one deterministic centre clip each, fixed
  noise; ``csvr.methods.csvr.VideoDiagnostics``): context top-1 over all test clips' I-frames
  (chance ~1 / clips), pose MSE x100 beside copying the last pose, the reconstructor's IS with a
  classifier trained from scratch at the generators' 32 px on the training split (once;
  ``csvr.eval.video_quality``), with the conditional top-1 and FD; downstream: the finetuning
  preset's top-1 of f_i (``csvr finetune --config demo``) and the linear probe of frozen f_i
  (``csvr knn --linear``, with its random-init control);
* the Spearman correlation over checkpoints of each pretext measure (oriented so that + means
  "better pretext, better downstream") with each downstream top-1, and a 95 % interval from
  resampling the test videos (every measure recomputed on the same resample). The interval covers
  test-set sampling only, not the finetuning's seed (one finetuning per checkpoint).

Writes ``OUT/table2.json`` and ``OUT/table2.png`` and prints both tables. Resumable: the
pretraining resumes, each finished checkpoint's measures are kept in ``OUT/points/``.

    .venv/bin/python benchmarks/table2.py --out runs/table2      # ~35 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import yaml

os.environ.setdefault("CSVR_PROGRESS", "0")

from csvr.cli import main as cli  # noqa: E402
from csvr.config import from_dict  # noqa: E402
from csvr.data.index import load_manifest  # noqa: E402
from csvr.engine.config import PretrainConfig  # noqa: E402
from csvr.engine.model import load_method  # noqa: E402
from csvr.eval.video_quality import VideoScorer, inception_score, measure_quality  # noqa: E402

PAPER = {  # Table II (UCF101), at pretraining epochs 1, 5, 10, 20, 50, 120
    "epochs": [1, 5, 10, 20, 50, 120],
    "context matching top-1 (%)": [36.3, 47.0, 49.9, 52.9, 52.0, 63.9],
    "pose MSE x100": [32, 16, 5, 4.2, 3.4, 2.9],
    "video IS": [1.4, 8.2, 9.3, 11.9, 14.6, 15.1],
    "action top-1 (%)": [65.0, 72, 82.4, 83.5, 88.3, 89.6],
}
SEPARATE = {"pose": 200, "context": 120, "video": 60}  # the demo preset's separate stages
PRETEXT = (("context top-1", +1), ("pose MSE", -1), ("video IS", +1))
DOWNSTREAM = ("finetune top-1", "linear top-1")


def joint_points(joint: int) -> list[int]:
    """Joint-stage steps of the paper's epochs scaled to ``joint`` steps (0: the stage's start)."""
    return [0] + sorted({max(1, round(joint * e / 120)) for e in PAPER["epochs"]})


def ensure_data(args) -> dict[str, str]:
    manifest, poses = Path(args.manifest), Path(args.pose_cache)
    if not manifest.exists() or not poses.exists():
        root = manifest.parent / "data"
        assert cli(["data", "synth", "--out", str(root), "--gop", "12", *args.synth.split()]) == 0
        assert cli(["prepare", "index", str(root), "--out", str(manifest)]) == 0
        assert cli(["prepare", "poses", "--manifest", str(manifest), "--out", str(poses), "--source", "openpose-json",
                    "--json-dir", str(root / "poses" / "openpose")]) == 0
    return {"manifest": str(manifest), "poses": str(poses)}


def pretrain(out: Path, data: dict, joint: int, keep: list[int], preset: str, separate: dict) -> Path:
    run = out / "pretrain"
    if not (run / "summary.json").exists():
        stages = ", ".join(f"{{name: {s}, epochs: 1000, max_steps: {n}}}" for s, n in [*separate.items(),
                                                                                       ("joint", joint)])
        argv = ["pretrain", "--config", preset, "--out", str(run), f"data.manifest={data['manifest']}",
                f"data.pose_cache={data['poses']}", f"train.stages=[{stages}]", f"train.keep_steps={keep}",
                "train.knn_monitor.every=0"]
        if (run / "checkpoints").is_dir():
            argv.insert(5, "--resume")
        print("$ csvr " + " ".join(argv), flush=True)
        assert cli(argv) == 0
    return run


def classifier(out: Path, run: Path, data: dict, epochs: int, preset: str) -> Path:
    """A 3D CNN (the f_s network) trained from scratch on the training split at the generators'
    resolution: the IS classifier."""
    size = yaml.safe_load((run / "config.yaml").read_text())["model"]["video"]["size"]
    cls = out / "classifier"
    if not (cls / "results.json").exists():
        assert cli(["finetune", "--config", preset, "--pretrained", str(run), "--feature", "scratch",
                    f"data.manifest={data['manifest']}", f"data.clip.size={size}",
                    f"train.stages=[{{name: main, epochs: {epochs}}}]", "--out", str(cls)]) == 0
    return cls


def measure_point(out: Path, ckpt: Path, cls: Path, data: dict, preset: str) -> dict:
    """Every measure of one checkpoint, per test video where it has one."""
    step = int(ckpt.stem.split("-")[1])
    path = out / "points" / f"step-{step:09d}.json"
    if path.exists():
        return json.loads(path.read_text())
    t0 = time.time()
    dev = torch.device("cpu")
    method, c = load_method(ckpt)
    cfg = from_dict(PretrainConfig, c.config)
    manifest = load_manifest(cfg.data.manifest)
    diag = method.build_diagnostics(manifest, manifest.select("1", "train"), cfg.data.clip, cfg.data.pose_cache,
                                    "1", 10_000, cfg.train.seed)
    pre = diag.pretext(method, dev)
    scorer = VideoScorer.load(sorted((cls / "checkpoints").glob("step-*.pt"))[-1], dev)
    labels = np.array([int(s["label"]) for s in diag.samples])
    q = measure_quality(method, diag, scorer, dev, labels, boot=200, seed=0, keep_probs=True)
    probs = {tag: q[tag].pop("probs") for tag in ("r", "p") if tag in q}
    del method
    ft = out / "finetune" / f"step-{step:09d}"
    if not (ft / "results.json").exists():
        assert cli(["finetune", "--config", preset, "--pretrained", str(ckpt), f"data.manifest={data['manifest']}",
                    f"data.pose_cache={data['poses']}", "--out", str(ft)]) == 0
    fr = json.loads((ft / "results.json").read_text())
    kn = out / "knn" / f"step-{step:09d}"
    if not (kn / "knn.json").exists():
        assert cli(["knn", "--checkpoint", str(ckpt), "--feature", "fi", "--manifest", data["manifest"],
                    "--pose-cache", data["poses"], "--linear", "--clips", "5", "--control-seeds", "3",
                    "--cache", str(out / "feature-cache"), "--out", str(kn)]) == 0
    kr = json.loads((kn / "knn.json").read_text())
    test = manifest.select("1", "test")
    label_of = {r.id: r.label for r in test}
    ft_hit = {v: int(p == label_of[v]) for v, p in zip(fr["video_ids"], fr["video_predictions"])}
    pv = kr["per_video"]
    lin_hit = dict(zip(pv["test_ids"], pv["pretrained"]["linear_top1"]))
    lin_ctrl = dict(zip(pv["test_ids"], np.mean([cc["linear_top1"] for cc in pv["controls"]], axis=0).tolist()))
    point = {
        "step": step, "ids": diag.ids, "labels": labels.tolist(),
        "context_hit": pre["context_hit"].tolist(), "context_chance": pre["context_chance"].tolist(),
        "pose_mse": pre["pose_mse"].tolist(), "pose_mse_copy": pre["pose_mse_copy"].tolist(),
        "is_probs": probs["r"], "quality": q,
        "finetune_hit": ft_hit, "linear_hit": lin_hit, "linear_control": lin_ctrl,
        "finetune_top1": fr["video_top1"], "seconds": round(time.time() - t0, 1),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(point) + "\n")
    return point


def point_measures(p: dict, idx: np.ndarray, ids: list[str]) -> dict[str, float]:
    """The table's numbers of one checkpoint on the test videos ``ids[idx]`` (a resample)."""
    pos = {v: i for i, v in enumerate(p["ids"])}
    j = np.array([pos[ids[i]] for i in idx])
    return {
        "context top-1": 100 * float(np.mean(np.asarray(p["context_hit"])[j])),
        "pose MSE": 100 * float(np.mean(np.asarray(p["pose_mse"])[j])),
        "video IS": inception_score(np.asarray(p["is_probs"])[j]),
        "finetune top-1": 100 * float(np.mean([p["finetune_hit"][ids[i]] for i in idx])),
        "linear top-1": 100 * float(np.mean([p["linear_hit"][ids[i]] for i in idx])),
    }


def spearman(points: list[dict], boot: int, seed: int = 0) -> dict:
    """Spearman rho over checkpoints of each (pretext, downstream) pair, with its bootstrap CI
    over test videos (the clips every measure has)."""
    from scipy.stats import spearmanr  # optional: SciPy comes with the test extra (scikit-image), not csvr

    ids = sorted(set.intersection(*[set(p["ids"]) & set(p["finetune_hit"]) & set(p["linear_hit"]) for p in points]))
    full = np.arange(len(ids))

    def rhos(idx):
        rows = [point_measures(p, idx, ids) for p in points]
        out = {}
        for name, sign in PRETEXT:
            x = [sign * r[name] for r in rows]
            for d in DOWNSTREAM:
                y = [r[d] for r in rows]
                rho = spearmanr(x, y).statistic if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
                out[f"{name} ~ {d}"] = float(rho)
        return out

    est = rhos(full)
    rng = np.random.default_rng(seed)
    draws = [rhos(rng.integers(0, len(ids), len(ids))) for _ in range(boot)]
    res = {}
    for k, v in est.items():
        vals = np.array([d[k] for d in draws])
        vals = vals[np.isfinite(vals)]
        ci = tuple(float(x) for x in np.percentile(vals, [2.5, 97.5])) if vals.size else (np.nan, np.nan)
        res[k] = {"rho": v, "ci": ci, "videos": len(ids), "resamples": int(vals.size)}
    return {"pairs": res, "videos": len(ids), "table": [point_measures(p, full, ids) for p in points]}


def figure(points: list[dict], table: list[dict], joint0: int, path: Path) -> None:
    import matplotlib  # heavy, and only for the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["step"] - joint0 for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    names = ("context top-1", "pose MSE", "video IS", "finetune top-1", "linear top-1")
    for name in names:
        v = np.array([r[name] for r in table], dtype=float)
        axes[0].plot(steps, (v - v.min()) / max(np.ptp(v), 1e-12), marker="o", label=name)
    axes[0].set_xscale("symlog", linthresh=4)
    axes[0].set_xlabel("joint-stage step")
    axes[0].set_ylabel("min-max scaled")
    axes[0].set_title("csvr (built-in data): measures over pretraining")
    axes[0].legend(fontsize=7)
    for name in ("context matching top-1 (%)", "pose MSE x100", "video IS", "action top-1 (%)"):
        v = np.array(PAPER[name], dtype=float)
        axes[1].plot(PAPER["epochs"], (v - v.min()) / np.ptp(v), marker="o", label=name)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("pretraining epoch")
    axes[1].set_title("paper Table II (UCF101)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/table2")
    ap.add_argument("--manifest", default="runs/demo/manifest.jsonl")
    ap.add_argument("--pose-cache", default="runs/demo/poses")
    ap.add_argument("--joint-steps", type=int, default=480)
    ap.add_argument("--synth", default="", help="extra csvr data synth options when the data is made here (one string)")
    ap.add_argument("--classifier-epochs", type=int, default=30)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--preset", default="demo", help="pretraining and finetuning preset (default demo)")
    ap.add_argument("--separate", default=",".join(str(v) for v in SEPARATE.values()),
                    help="steps of the pose, context and video stages (default: the demo's 200,120,60)")
    args = ap.parse_args()
    separate = dict(zip(SEPARATE, (int(x) for x in args.separate.split(","))))
    out = Path(args.out)
    t0 = time.time()
    data = ensure_data(args)
    joint0 = sum(separate.values())
    keep = [joint0 + s for s in joint_points(args.joint_steps)]
    run = pretrain(out, data, args.joint_steps, keep, args.preset, separate)
    cls = classifier(out, run, data, args.classifier_epochs, args.preset)
    ckpts = [run / "checkpoints" / f"step-{s:09d}.pt" for s in keep]
    points = [measure_point(out, c, cls, data, args.preset) for c in ckpts]
    sp = spearman(points, args.bootstrap)
    clsr = json.loads((cls / "results.json").read_text())
    res = {"joint_steps": joint_points(args.joint_steps), "global_steps": keep, "paper": PAPER,
           "classifier": {"video_top1": clsr["video_top1"], "checkpoint": str(cls)},
           "real_is": [p["quality"]["r"]["is_real"] for p in points],
           "context_chance": [100 * float(np.mean(p["context_chance"])) for p in points],
           "pose_mse_copy": [100 * float(np.mean(p["pose_mse_copy"])) for p in points],
           "linear_control": [100 * float(np.mean(list(p["linear_control"].values()))) for p in points],
           "quality": [p["quality"] for p in points], **sp, "seconds": round(time.time() - t0, 1)}
    (out / "table2.json").write_text(json.dumps(res, indent=1) + "\n")
    figure(points, sp["table"], joint0, out / "table2.png")
    print_tables(res)


def print_tables(res: dict) -> None:
    print("paper Table II (UCF101):")
    print("| epoch | " + " | ".join(str(e) for e in PAPER["epochs"]) + " |")
    for k, v in PAPER.items():
        if k != "epochs":
            print(f"| {k} | " + " | ".join(str(x) for x in v) + " |")
    print(f"\ncsvr, built-in data ({res['videos']} test videos), joint-stage step:")
    print("| measure | " + " | ".join(str(s) for s in res["joint_steps"]) + " |")
    for name in ("context top-1", "pose MSE", "video IS", "finetune top-1", "linear top-1"):
        print(f"| {name} | " + " | ".join(f"{r[name]:.1f}" for r in res["table"]) + " |")
    print("| context chance | " + " | ".join(f"{x:.1f}" for x in res["context_chance"]) + " |")
    print("| pose MSE, copy last | " + " | ".join(f"{x:.1f}" for x in res["pose_mse_copy"]) + " |")
    print("| IS of real clips | " + " | ".join(f"{x:.2f}" for x in res["real_is"]) + " |")
    print("| linear, random init | " + " | ".join(f"{x:.1f}" for x in res["linear_control"]) + " |")
    print(f"\nSpearman rho over the {len(res['joint_steps'])} checkpoints (+: better pretext, better downstream), "
          "95 % CI over test videos:")
    for k, v in res["pairs"].items():
        print(f"  {k}: {v['rho']:+.2f} [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]")


if __name__ == "__main__":
    main()
