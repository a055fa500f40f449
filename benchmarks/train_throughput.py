"""Training throughput benchmark (issue 6).

1. Samples/s of one training step (forward + backward + SGD step) for CSVR (joint stage and each
   of its stages), IIC and CVRL at the same backbone and batch, on real batches of the built-in
   dataset (small CPU preset), measured in the same run; the ratio of each to CVRL.
2. The fraction of step time spent waiting for data, through the real engine
   (``csvr pretrain``'s loop with DataLoader workers), read from its metrics.csv.
3. Peak RSS of the training process and of one data-loader worker.
4. For the paper's full configuration (r3d_18, 16x112x112, video GANs at 16x64x64): activation
   memory per sample, measured by summing the tensors autograd saves for backward in one
   forward of one sample (CPU), plus parameters, gradients and SGD momentum: an estimate of GPU
   memory per sample so a user can choose a batch size per GPU.

Run:  .venv/bin/python benchmarks/train_throughput.py --data DIR  (a built-in dataset folder with
manifest.jsonl and a pose cache in DIR/poses_cache; made if missing)
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import torch

from csvr.config import load_config
from csvr.data.index import load_manifest
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.model import build_method
from csvr.engine.pretrain import pretrain
from csvr.models.csvr_model import CSVRModel, CSVRModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ensure_builtin_data, peak_rss_mib  # noqa: E402
from _steps import training_batches  # noqa: E402

BASELINE_MODEL = "{backbone: {name: r3d_18, width: 16, layers: [1, 1, 1, 1]}, proj_dim: 64}"


def config(root: Path, method: str, extra: list[str]) -> PretrainConfig:
    over = [f"data.manifest={root / 'manifest.jsonl'}", f"data.pose_cache={root / 'poses_cache'}", f"method={method}"]
    if method != "csvr":
        over.append(f"model={BASELINE_MODEL}")
    return load_config(PretrainConfig, resolve_config_path("small-cpu"), over + extra)


def step_rate(cfg: PretrainConfig, stage: str, batches: list[dict], repeats: int) -> float:
    torch.manual_seed(0)
    m = build_method(cfg)
    opt = torch.optim.SGD(m.stage_parameters(stage), lr=1e-3, momentum=0.9)
    m.train()
    times = []
    for i in range(repeats + 1):
        b = batches[i % len(batches)]
        t = time.perf_counter()
        out = m(b, stage)
        out.total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:  # the first step (allocator and oneDNN warm-up) is not counted
            times.append(time.perf_counter() - t)
    bs = next(iter(batches[0].values())).shape[0]
    times.sort()
    return bs / times[len(times) // 2]


def engine_wait(root: Path, method: str, workers: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stage = "joint" if method == "csvr" else "main"
        cfg = config(root, method, [f"out={tmp}/run", f"data.workers={workers}", "train.log_every_steps=1",
                                    f"train.stages=[{{name: {stage}, epochs: 50, max_steps: {steps}}}]",
                                    "train.ckpt_every_steps=100000"])
        pretrain(cfg)
        with open(Path(tmp) / "run" / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
    rows = rows[2:]  # loader start-up excluded
    return {"samples_per_s": sum(float(r["samples_per_s"]) for r in rows) / len(rows),
            "data_wait_frac": float(rows[-1]["data_wait_frac"]),
            "peak_rss_mib": peak_rss_mib()}


def _worker_rss(args, q) -> None:
    root, method = args
    torch.set_num_threads(1)
    cfg = config(Path(root), method, [])
    m = build_method(cfg)
    man = load_manifest(cfg.data.manifest)
    ds = m.train_dataset(man, man.records, cfg.data.clip, 0, cfg.data.pose_cache)
    del m
    for i in range(64):
        ds[i % len(ds)]
    q.put(peak_rss_mib())


def full_size_memory() -> dict:
    """Activation bytes saved for backward per sample at the paper's size (one CSVR joint step)."""
    torch.manual_seed(0)
    model = CSVRModel(CSVRModelConfig())
    b, t = 1, 16
    batch = {
        "clip": torch.randn(b, 3, t, 112, 112), "future": torch.randn(b, 3, t, 112, 112),
        "iframes": torch.randn(b, 4, 3, 112, 112), "iframe_mask": torch.tensor([[True, True, True, False]]),
        "poses": torch.randn(b, t, 18, 2) * 0.3, "future_poses": torch.randn(b, t, 18, 2) * 0.3,
        "pose_conf": torch.ones(b, t, 18), "future_pose_conf": torch.ones(b, t, 18),
        "pose_valid": torch.ones(b, dtype=torch.bool),
    }
    seen: dict[int, int] = {}

    def pack(x):
        if isinstance(x, torch.Tensor) and x.device.type != "meta":
            st = x.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        return x

    model.train()
    # a batch of 2 for BatchNorm, counted per sample
    batch = {k: torch.cat([v, v]) for k, v in batch.items()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        out = model.compute_losses(batch)
    act = sum(seen.values()) / 2
    params = sum(p.numel() for p in model.parameters())
    del out
    return {"activation_mib_per_sample": act / 2**20, "params_m": params / 1e6,
            "param_grad_momentum_mib": 3 * 4 * params / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="runs/bench-data")
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--engine-steps", type=int, default=12)
    ap.add_argument("--skip-full-size", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    root = Path(args.data)
    ensure_builtin_data(root)
    rows = []
    cvrl_rate = None
    for method in ("cvrl", "iic", "csvr"):
        cfg = config(root, method, [])
        batches = training_batches(cfg, build_method(cfg), 3)
        stages = ["main"] if method != "csvr" else ["joint", "pose", "context", "video"]
        for stage in stages:
            r = step_rate(cfg, stage, batches, args.repeats)
            if method == "cvrl":
                cvrl_rate = r
            rows.append((method, stage, r))
            print(f"{method}:{stage} {r:.2f} samples/s", file=sys.stderr)
    print(f"\n### Step throughput (small-cpu preset, batch {cfg.train.batch_size}, {cfg.data.clip.frames}x"
          f"{cfg.data.clip.size}x{cfg.data.clip.size} clips, r3d_18 width 16, 2 threads)\n")
    print("| method | stage | samples/s | step time vs CVRL |")
    print("|---|---|---|---|")
    for method, stage, r in rows:
        print(f"| {method} | {stage} | {r:.2f} | {cvrl_rate / r:.2f}x |")
    print("\n### Through the engine (DataLoader workers decode on the fly)\n")
    print("| method | workers | samples/s | data wait fraction |")
    print("|---|---|---|---|")
    for method in ("cvrl", "csvr"):
        for workers in (0, 2):
            r = engine_wait(root, method, workers, args.engine_steps)
            print(f"| {method} | {workers} | {r['samples_per_s']:.2f} | {r['data_wait_frac']:.2f} |")
    print(f"\npeak RSS of this benchmark process (training included): {r['peak_rss_mib']:.0f} MiB")
    ctx = mp.get_context("spawn")
    for method in ("csvr", "cvrl"):
        q = ctx.Queue()
        p = ctx.Process(target=_worker_rss, args=((str(root), method), q))
        p.start()
        rss = q.get()
        p.join()
        print(f"peak RSS of one {method} data-loader worker (64 samples): {rss:.0f} MiB")
    if not args.skip_full_size:
        m = full_size_memory()
        print(f"\nfull-size CSVR (r3d_18, 16x112x112, video GANs 16x64x64): {m['params_m']:.1f}M parameters; "
              f"parameters + gradients + momentum {m['param_grad_momentum_mib']:.0f} MiB; activations saved for "
              f"backward {m['activation_mib_per_sample']:.0f} MiB per sample (fp32)")
        print(json.dumps(m))


if __name__ == "__main__":
    main()
