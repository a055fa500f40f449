"""How hard is the built-in synthetic dataset?  (issue 3; run by hand, not in CI)

    .venv/bin/python benchmarks/synth_difficulty.py [--data DIR] [--seeds 3] [--out results.json]

On the default-size dataset (generated into ``--data`` unless it is already there) this trains,
from scratch and with plain PyTorch:

(a) a small 3D CNN on 16-frame clips (stride 2) at 64x64, all classes, trainlist01 -> testlist01;
(b) a pose-only 1D CNN on the ground-truth OpenPose sequences (read from the JSON files);
(c) a single-frame appearance-only 2D CNN on one random frame at 64x64;

(m) opt-in (``--only m``): the 3D CNN of (a) trained and tested on the motion group alone.

(b) and (c) are trained and tested within each class group (motion / context / both), so chance
is 1 / (classes in the group). The claim to check: (a) is clearly above chance but far from
100 %; (b) beats chance on the motion group and is near chance on the context group; (c) the
reverse; on the "both" group each gets only its half of the information.

Takes ~15-30 min on 2 CPU cores (most of it in (a)).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csvr.synth import generate, read_openpose_sequence, read_synth_json  # noqa: E402

CLIP_T, CLIP_STRIDE, SIDE = 16, 2, 64
GROUP_NAMES = ("motion", "context", "both")


# ----------------------------------------------------------------------------- data

def decode_all(root: Path, videos: list[dict]) -> dict[str, np.ndarray]:
    """Every video decoded once at 85x64 (short side 64), uint8 (T, 64, 85, 3)."""
    out = {}
    for v in videos:
        with av.open(str(root / v["rel"])) as c:
            frames = [f.reformat(width=86, height=64, format="rgb24", interpolation="AREA").to_ndarray()
                      for f in c.decode(video=0)]
        out[v["rel"]] = np.stack(frames)
    return out


def load_poses(root: Path, videos: list[dict], size: tuple[int, int]) -> dict[str, np.ndarray]:
    W, H = size
    out = {}
    for v in videos:
        kp = read_openpose_sequence(root / v["pose_dir"], Path(v["rel"]).stem)
        x = kp.copy()
        x[..., 0] /= W
        x[..., 1] /= H
        out[v["rel"]] = x.reshape(len(x), -1)  # (T, 54)
    return out


# ----------------------------------------------------------------------------- models

class Small3DCNN(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        def blk(i, o, k, s, p):
            return nn.Sequential(nn.Conv3d(i, o, k, s, p, bias=False), nn.BatchNorm3d(o), nn.ReLU(inplace=True))
        self.f = nn.Sequential(blk(3, 16, (3, 5, 5), (1, 2, 2), (1, 2, 2)), blk(16, 32, 3, (1, 2, 2), 1),
                               blk(32, 64, 3, (2, 2, 2), 1), blk(64, 128, 3, (2, 2, 2), 1))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, n))

    def forward(self, x):
        return self.head(self.f(x).mean(dim=(2, 3, 4)))


class Small2DCNN(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        def blk(i, o, k, s):
            return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))
        self.f = nn.Sequential(blk(3, 32, 5, 2), blk(32, 64, 3, 2), blk(64, 96, 3, 2), blk(96, 128, 3, 2))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, n))

    def forward(self, x):
        return self.head(self.f(x).mean(dim=(2, 3)))


class Pose1DCNN(nn.Module):
    def __init__(self, n: int, c_in: int = 108):
        super().__init__()
        def blk(i, o, k, s):
            return nn.Sequential(nn.Conv1d(i, o, k, s, k // 2, bias=False), nn.BatchNorm1d(o), nn.ReLU(inplace=True))
        self.f = nn.Sequential(blk(c_in, 64, 5, 1), blk(64, 96, 5, 2), blk(96, 128, 3, 2), blk(128, 128, 3, 1))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, n))

    def forward(self, x):
        return self.head(self.f(x).mean(dim=2))


# ----------------------------------------------------------------------------- samplers

def to_tensor_clip(frames: np.ndarray, train: bool, rng: np.random.Generator) -> torch.Tensor:
    """(T, 64, 86, 3) uint8 -> (3, T, 64, 64) float, random or centre crop (+ flip in training)."""
    w = frames.shape[2]
    x0 = int(rng.integers(0, w - SIDE + 1)) if train else (w - SIDE) // 2
    x = frames[:, :, x0:x0 + SIDE]
    if train and rng.random() < 0.5:
        x = x[:, :, ::-1]
    t = torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)
    t = (t - 0.45) / 0.25
    if train:
        t = t * float(rng.uniform(0.85, 1.15)) + float(rng.uniform(-0.1, 0.1))
    return t.permute(3, 0, 1, 2)


def clip_indices(T: int, start: int) -> np.ndarray:
    return start + np.arange(CLIP_T) * CLIP_STRIDE


def train_loop(model, batches_fn, epochs: int, lr: float, wd: float = 5e-4):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * batches_fn.steps,
                                                pct_start=0.15)
    for ep in range(epochs):
        model.train()
        for x, y in batches_fn(ep):
            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()


class Batches:
    def __init__(self, items, make, batch, seed):
        self.items, self.make, self.batch, self.seed = items, make, batch, seed
        self.steps = (len(items) + batch - 1) // batch

    def __call__(self, ep):
        rng = np.random.default_rng([self.seed, ep])
        order = rng.permutation(len(self.items))
        for i in range(0, len(order), self.batch):
            xs, ys = zip(*(self.make(self.items[j], rng) for j in order[i:i + self.batch]))
            yield torch.stack(xs), torch.tensor(ys)


# ----------------------------------------------------------------------------- experiments

def run_3dcnn(frames, train, test, n_cls, seed, epochs, clips_per_video=2):
    torch.manual_seed(seed)
    model = Small3DCNN(n_cls)
    items = [v for v in train for _ in range(clips_per_video)]

    def make(v, rng):
        f = frames[v["rel"]]
        s = int(rng.integers(0, len(f) - (CLIP_T - 1) * CLIP_STRIDE))
        return to_tensor_clip(f[clip_indices(len(f), s)], True, rng), v["y"]

    train_loop(model, Batches(items, make, 16, seed), epochs, 2e-3)
    model.eval()
    preds = []
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for v in test:
            f = frames[v["rel"]]
            span = (CLIP_T - 1) * CLIP_STRIDE
            starts = np.linspace(0, len(f) - 1 - span, 5).astype(int)
            x = torch.stack([to_tensor_clip(f[clip_indices(len(f), s)], False, rng) for s in starts])
            preds.append(model(x).mean(0).numpy())
    return np.stack(preds)  # (videos, classes) mean logits


def run_pose(poses, train, test, n_cls, seed, epochs, win=64):
    torch.manual_seed(seed)
    model = Pose1DCNN(n_cls)

    def feats(p):
        vel = np.diff(p, axis=0, prepend=p[:1])
        return torch.from_numpy(np.concatenate([p, vel * 10.0], 1).T.copy()).float()

    def make(v, rng):
        p = poses[v["rel"]]
        s = int(rng.integers(0, len(p) - win + 1))
        return feats(p[s:s + win]), v["y"]

    train_loop(model, Batches(train, make, 16, seed), epochs, 3e-3)
    model.eval()
    preds = []
    with torch.no_grad():
        for v in test:
            p = poses[v["rel"]]
            starts = np.linspace(0, len(p) - win, 4).astype(int)
            x = torch.stack([feats(p[s:s + win]) for s in starts])
            preds.append(int(model(x).mean(0).argmax()))
    return np.array(preds)


def run_frame(frames, train, test, n_cls, seed, epochs, per_video=8):
    torch.manual_seed(seed)
    model = Small2DCNN(n_cls)
    items = [v for v in train for _ in range(per_video)]

    def make(v, rng):
        f = frames[v["rel"]]
        i = int(rng.integers(0, len(f)))
        return to_tensor_clip(f[i:i + 1], True, rng)[:, 0], v["y"]

    train_loop(model, Batches(items, make, 32, seed), epochs, 2e-3)
    model.eval()
    correct = []
    rng = np.random.default_rng(123)
    with torch.no_grad():
        for v in test:
            f = frames[v["rel"]]
            idx = rng.choice(len(f), 10, replace=False)
            x = torch.stack([to_tensor_clip(f[i:i + 1], False, rng)[:, 0] for i in idx])
            correct.append((model(x).argmax(1) == v["y"]).float().mean().item())
    return np.array(correct)  # per test video: fraction of its single frames classified right


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="runs/synth-default", help="dataset folder (generated when absent)")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per experiment (b, c)")
    ap.add_argument("--epochs-3d", type=int, default=70)
    ap.add_argument("--epochs-pose", type=int, default=60)
    ap.add_argument("--epochs-frame", type=int, default=12)
    ap.add_argument("--seeds-3d", type=int, default=2, help="training seeds for (a)")
    ap.add_argument("--only", default="a,b,c", help="which experiments to run: a, b, c, and the opt-in m "
                    "(the 3D CNN trained on the motion group alone)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    root = Path(args.data)
    t0 = time.perf_counter()
    summary = generate(root)
    print(summary.describe(), flush=True)
    m = read_synth_json(root)
    W, H = m["params"]["size"]
    groups = {c["name"]: c["group"] for c in m["classes"]}
    videos = m["videos"]
    t1 = time.perf_counter()
    frames = decode_all(root, videos)
    poses = load_poses(root, videos, (W, H))
    print(f"decoded {len(videos)} videos and read their poses in {time.perf_counter() - t1:.0f} s", flush=True)
    results: dict = {"dataset": {"videos": len(videos), "classes": len(m["classes"]), "size": [W, H],
                                 "seconds": m["params"]["seconds"], "train": summary.train, "test": summary.test,
                                 "generation_s": round(summary.seconds, 1), "bytes": summary.bytes_total}}

    # (a) 3D CNN, all classes
    only = set(args.only.split(","))
    if "a" in only:
        names = [c["name"] for c in m["classes"]]
        lab = {n: i for i, n in enumerate(names)}
        train = [dict(v, y=lab[v["class"]]) for v in videos if v["split"] == "train"]
        test = [dict(v, y=lab[v["class"]]) for v in videos if v["split"] == "test"]
        accs, per_group, within = [], {g: [] for g in GROUP_NAMES}, {g: [] for g in GROUP_NAMES}
        for s in range(args.seeds_3d):
            t = time.perf_counter()
            logits = run_3dcnn(frames, train, test, len(names), s, args.epochs_3d)
            pred = logits.argmax(1)
            y = np.array([v["y"] for v in test])
            accs.append(float((pred == y).mean()))
            for g in GROUP_NAMES:
                mask = np.array([groups[v["class"]] == g for v in test])
                cols = np.array([i for i, n in enumerate(names) if groups[n] == g])
                per_group[g].append(float((pred[mask] == y[mask]).mean()))
                # the same model, choosing only among the group's classes
                within[g].append(float((cols[logits[mask][:, cols].argmax(1)] == y[mask]).mean()))
            print(f"(a) 3D CNN seed {s}: top-1 {accs[-1]:.3f} | 15-way per group "
                  + " ".join(f"{g} {per_group[g][-1]:.3f}" for g in GROUP_NAMES) + " | within group "
                  + " ".join(f"{g} {within[g][-1]:.3f}" for g in GROUP_NAMES)
                  + f" ({time.perf_counter() - t:.0f} s)", flush=True)
        results["3dcnn"] = {"top1": accs, "per_group": per_group, "within_group": within, "chance": 1 / len(names)}

    # (m, opt-in) the 3D CNN trained and tested on the motion group alone: can pixels carry motion?
    if "m" in only:
        names = [c["name"] for c in m["classes"] if c["group"] == "motion"]
        lab = {n: i for i, n in enumerate(names)}
        train = [dict(v, y=lab[v["class"]]) for v in videos if v["class"] in lab and v["split"] == "train"]
        test = [dict(v, y=lab[v["class"]]) for v in videos if v["class"] in lab and v["split"] == "test"]
        y = np.array([v["y"] for v in test])
        accs = []
        for s in range(args.seeds_3d):
            t = time.perf_counter()
            accs.append(float((run_3dcnn(frames, train, test, len(names), s, args.epochs_3d).argmax(1) == y).mean()))
            print(f"(m) 3D CNN motion group only seed {s}: {accs[-1]:.3f} (chance {1 / len(names):.3f}, "
                  f"{time.perf_counter() - t:.0f} s)", flush=True)
        results["3dcnn_motion_only"] = {"acc": accs, "chance": 1 / len(names)}

    # (b) pose-only and (c) single-frame, within each group
    for g in ("motion", "context", "both"):
        names = [c["name"] for c in m["classes"] if c["group"] == g]
        if len(names) < 2:
            continue
        lab = {n: i for i, n in enumerate(names)}
        train = [dict(v, y=lab[v["class"]]) for v in videos if v["class"] in lab and v["split"] == "train"]
        test = [dict(v, y=lab[v["class"]]) for v in videos if v["class"] in lab and v["split"] == "test"]
        y = np.array([v["y"] for v in test])
        for kind in [k for k, e in (("pose", "b"), ("frame", "c")) if e in only]:
            accs = []
            for s in range(args.seeds):
                t = time.perf_counter()
                if kind == "pose":
                    accs.append(float((run_pose(poses, train, test, len(names), s, args.epochs_pose) == y).mean()))
                else:
                    accs.append(float(run_frame(frames, train, test, len(names), s, args.epochs_frame).mean()))
                print(f"({'b' if kind == 'pose' else 'c'}) {kind} {g} seed {s}: {accs[-1]:.3f} "
                      f"(chance {1 / len(names):.3f}, {time.perf_counter() - t:.0f} s)", flush=True)
            results.setdefault(kind, {})[g] = {"acc": accs, "chance": 1 / len(names), "classes": names}
    results["total_s"] = round(time.perf_counter() - t0, 1)

    def ms(xs):
        return f"{100 * np.mean(xs):.1f} +- {100 * np.std(xs):.1f}"

    chance_in = {g: 1 / sum(1 for c in m["classes"] if c["group"] == g) for g in GROUP_NAMES}
    print("\n| classifier | all classes | motion | context | both |\n|---|---|---|---|---|")
    if "3dcnn" in results:
        r = results["3dcnn"]
        print(f"| (a) 3D CNN, 15-way (chance {100 * r['chance']:.1f}) | {ms(r['top1'])} | "
              + " | ".join(ms(r["per_group"][g]) for g in GROUP_NAMES) + " |")
        print("| (a) same model, argmax within the group | - | " + " | ".join(
            f"{ms(r['within_group'][g])} (chance {100 * chance_in[g]:.0f})" for g in GROUP_NAMES) + " |")
    if "3dcnn_motion_only" in results:
        r = results["3dcnn_motion_only"]
        print(f"| (m) 3D CNN trained on the motion group only | - | {ms(r['acc'])} (chance {100 * r['chance']:.0f}) | - | - |")
    for kind, label in (("pose", "(b) pose-only, within group"), ("frame", "(c) single frame, within group")):
        if kind in results:
            r = results[kind]
            print(f"| {label} | - | " + " | ".join(
                f"{ms(r[g]['acc'])} (chance {100 * r[g]['chance']:.0f})" if g in r else "-"
                for g in ("motion", "context", "both")) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
