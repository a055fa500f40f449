"""GPU benchmark (issue 15): one short script, no downloads, makes its own data.

Measures on one CUDA device, at the paper's setting (r3d_18, 16x112x112 clips at stride 4, a
16-frame future clip, up to 4 I-frames, video GANs at 16x64x64, batch 16 per device):

1. samples/s and peak device memory of one training step (forward, backward, the engine's
   optimisers by role) for CSVR's joint stage (Eq. 9, all three branches), CVRL and IIC, in fp32
   and in bf16-mixed (``torch.autocast(dtype=bfloat16)``: what ``train.precision=bf16-mixed``
   runs), on real batches of the built-in dataset;
2. the data loader's samples/s with N workers (the pretraining dataset of each method: decoding,
   sampling, I-frames, poses), i.e. how many workers one GPU needs to be fed.

Writes ``<out>/gpu.json`` and prints a table. ``--smoke`` runs the same code on the CPU with the
tiny-test shapes in well under a minute (tests/test_gpu_benchmark.py keeps it working).

Run:  python benchmarks/gpu.py [--out runs/gpu-bench] [--workers 1 4 8 16]
      python benchmarks/gpu.py --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from csvr.cli import main as csvr_main
from csvr.config import load_config
from csvr.data.index import load_manifest
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _steps import build_for_steps  # noqa: E402

METHODS = {"csvr": "joint", "cvrl": "main", "iic": "main"}


def make_data(root: Path, smoke: bool) -> Path:
    """A small built-in dataset (GOP 12, long enough for a 16-frame clip + future at stride 4),
    indexed, with its ground-truth poses imported. Skipped when ``root`` already holds it."""
    manifest = root / "manifest.jsonl"
    if manifest.exists() and (root / "poses_cache").exists():
        return root
    synth = ["data", "synth", "--out", str(root / "videos"), "--gop", "12"]
    synth += (["--classes", "3", "--videos-per-class", "4", "--seconds", "2", "--size", "64x48"] if smoke else
              ["--classes", "6", "--videos-per-class", "8", "--seconds", "6"])
    assert csvr_main(synth) == 0
    assert csvr_main(["prepare", "index", str(root / "videos"), "--out", str(manifest)]) == 0
    assert csvr_main(["prepare", "poses", "--manifest", str(manifest), "--out", str(root / "poses_cache"),
                 "--source", "openpose-json", "--json-dir", str(root / "videos" / "poses" / "openpose")]) == 0
    return root


def method_config(root: Path, method: str, smoke: bool, batch: int) -> PretrainConfig:
    """The paper's preset (tiny-test with --smoke); IIC and CVRL take the same clip settings and
    backbone with their own method defaults."""
    over = [f"data.manifest={root / 'manifest.jsonl'}", f"data.pose_cache={root / 'poses_cache'}",
            f"method={method}", f"train.batch_size={batch}"]
    preset = "tiny-test" if smoke else "paper/ucf101-r3d"
    if method != "csvr":
        backbone = "{name: r3d_18, width: 4, layers: [1, 1, 1, 1]}" if smoke else "{name: r3d_18}"
        over.append(f"model={{backbone: {backbone}}}")
    return load_config(PretrainConfig, resolve_config_path(preset), over)


def dataset(cfg: PretrainConfig, m):
    man = load_manifest(cfg.data.manifest)
    return m.train_dataset(man, man.select(cfg.data.split, cfg.data.subset), cfg.data.clip, 0, cfg.data.pose_cache)


def real_batches(cfg: PretrainConfig, m, n: int) -> list[dict]:
    dl = torch.utils.data.DataLoader(dataset(cfg, m), batch_size=cfg.train.batch_size, shuffle=True,
                                     num_workers=0, drop_last=True, generator=torch.Generator().manual_seed(0))
    out, it = [], iter(dl)
    while len(out) < n:
        try:
            out.append(next(it))
        except StopIteration:
            it = iter(dl)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rate(m, opt, stage: str, batches: list[dict], device: torch.device, precision: str, steps: int) -> dict:
    """Median samples/s of ``steps`` timed steps (after 2 warm-up steps) and the peak memory."""
    batches = [{k: v.to(device, non_blocking=True) for k, v in b.items()} for b in batches]
    m.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps + 2):
        b = batches[i % len(batches)]
        _sync(device)
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            out = m(b, stage)
        out.total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t)
    times.sort()
    bs = next(iter(batches[0].values())).shape[0]
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"samples_per_s": bs / times[len(times) // 2], "step_s": times[len(times) // 2], "peak_gib": peak}


def loader_rate(cfg: PretrainConfig, m, workers: int, batches: int) -> float:
    """Samples/s of the method's pretraining DataLoader with ``workers`` workers (start-up excluded)."""
    dl = torch.utils.data.DataLoader(dataset(cfg, m), batch_size=cfg.train.batch_size, shuffle=True,
                                     num_workers=workers, drop_last=True, persistent_workers=False,
                                     generator=torch.Generator().manual_seed(0))
    n, t0, it = 0, None, iter(dl)
    done = 0
    while done < batches + 1:
        try:
            b = next(it)
        except StopIteration:
            it = iter(dl)
            continue
        if t0 is None:  # the first batch pays the workers' start-up
            t0 = time.perf_counter()
        else:
            n += next(iter(b.values())).shape[0]
        done += 1
    return n / (time.perf_counter() - t0)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(out: Path, smoke: bool, workers: list[int], steps: int, precisions: list[str], data: Path | None) -> dict:
    device = torch.device("cpu" if smoke or not torch.cuda.is_available() else "cuda")
    if not smoke and device.type != "cuda":
        raise SystemExit("no CUDA device: run with --smoke for the CPU check")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    batch = 4 if smoke else 16
    root = make_data(data or (out / "data"), smoke)
    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "smoke": smoke, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "torch": torch.__version__, "cpus": os.cpu_count(), "batch": batch, "steps": [], "loader": [],
    }
    for method, stage in METHODS.items():
        cfg = method_config(root, method, smoke, batch)
        clip = cfg.data.clip
        m, opt = build_for_steps(cfg, device)
        batches = real_batches(cfg, m, 2)
        for precision in precisions:
            if device.type == "cuda":
                torch.cuda.empty_cache()
            try:
                r = step_rate(m, opt, stage, batches, device, precision, steps)
            except torch.OutOfMemoryError:
                r = {"samples_per_s": float("nan"), "step_s": float("nan"), "peak_gib": float("nan"), "error": "OOM"}
            row = {"method": method, "stage": stage, "precision": precision,
                   "clip": f"{clip.frames}x{clip.size}x{clip.size}/{clip.stride}", **r}
            result["steps"].append(row)
            print(f"step {method}:{stage} {precision}: {r['samples_per_s']:.1f} samples/s, peak {r['peak_gib']:.2f} GiB",
                  file=sys.stderr, flush=True)
        for w in workers:
            rate = loader_rate(cfg, m, w, 2 if smoke else 8)
            result["loader"].append({"method": method, "workers": w, "samples_per_s": rate})
            print(f"loader {method} workers={w}: {rate:.1f} samples/s", file=sys.stderr, flush=True)
        del m, opt, batches
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(result, indent=1))
    print_table(result)
    return result


def print_table(result: dict) -> None:
    print(f"\n{result['device_name']} ({result['device']}), torch {result['torch']}, batch {result['batch']}")
    print("\n| method | stage | precision | clip | samples/s | step (s) | peak memory (GiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in result["steps"]:
        print(f"| {r['method']} | {r['stage']} | {r['precision']} | {r['clip']} | {r['samples_per_s']:.1f} | "
              f"{r['step_s']:.3f} | {r['peak_gib']:.2f} |")
    print("\n| method | loader workers | samples/s |")
    print("|---|---|---|")
    for r in result["loader"]:
        print(f"| {r['method']} | {r['workers']} | {r['samples_per_s']:.1f} |")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny shapes, under a minute (what CI runs)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default runs/gpu-bench; a temp folder with --smoke)")
    ap.add_argument("--data", type=Path, default=None, help="an existing dataset folder made by this script")
    ap.add_argument("--workers", type=int, nargs="+", default=None, help="loader worker counts (default 1 4 8 16)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per row (default 10; 2 with --smoke)")
    ap.add_argument("--precision", nargs="+", default=["32", "bf16-mixed"], choices=["32", "bf16-mixed"])
    args = ap.parse_args(argv)
    workers = args.workers or ([0, 1] if args.smoke else [1, 4, 8, 16])
    steps = args.steps or (2 if args.smoke else 10)
    precisions = ["32"] if args.smoke and args.precision == ["32", "bf16-mixed"] else args.precision
    if args.smoke:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    if args.out is None and args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            return run(Path(tmp), True, workers, steps, precisions, args.data)
    return run(args.out or Path("runs/gpu-bench"), args.smoke, workers, steps, precisions, args.data)


if __name__ == "__main__":
    main()
