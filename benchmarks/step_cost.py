"""Where a CSVR joint step spends its time, and how efficient it is (issue 15).

On real batches of the built-in dataset and the ``small-cpu`` preset (batch 16, 8x64x64 clips,
r3d_18 width 16, video GANs at 8x32x32), 2 threads:

1. the step time of CSVR's joint stage and of a CVRL step (same backbone, batch and precision),
   median of ``--repeats`` steps after a warm-up; both use the engine's optimisers by role;
2. a breakdown by part, from the profiler's own timings of the forward and backward of each
   module (``torch.profiler`` with module hierarchy: each top-level module of the model, the rest
   is losses and glue);
3. FLOPs of one step (forward + backward) counted by ``torch.utils.flop_counter`` and the achieved
   GFLOP/s against the fp32 matmul peak measured in the same run (a 2048^3 matrix product);
4. variants: ``channels_last_3d`` memory format, ``torch.compile`` of the model's modules.

Run:  .venv/bin/python benchmarks/step_cost.py --data runs/bench-data [--variants] [--engine]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ensure_builtin_data  # noqa: E402
from _steps import build_for_steps, training_batches  # noqa: E402

from csvr.config import load_config  # noqa: E402
from csvr.engine.commands import resolve_config_path  # noqa: E402
from csvr.engine.config import PretrainConfig  # noqa: E402
from csvr.engine.optim import build_role_optimizer  # noqa: E402
from csvr.engine.pretrain import pretrain  # noqa: E402
from csvr.engine.trainer import to_channels_last_3d  # noqa: E402

BASELINE_MODEL = "{backbone: {name: r3d_18, width: 16, layers: [1, 1, 1, 1]}, proj_dim: 64}"


def config(root: Path, method: str, extra: list[str] | None = None) -> PretrainConfig:
    over = [f"data.manifest={root / 'manifest.jsonl'}", f"data.pose_cache={root / 'poses_cache'}", f"method={method}"]
    if method == "cvrl":
        over.append(f"model={BASELINE_MODEL}")
    preset = "small-cpu-cvrl" if method == "cvrl" else "small-cpu"
    return load_config(PretrainConfig, resolve_config_path(preset), over + (extra or []))


def one_step(m, opt, b: dict, stage: str) -> None:
    out = m(b, stage)
    out.total.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def step_time(m, opt, batches: list[dict], stage: str, repeats: int) -> float:
    m.train()
    times = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        one_step(m, opt, batches[i % len(batches)], stage)
        if i:
            times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


class _FlopCount(TorchDispatchMode):
    """``torch.utils.flop_counter``'s per-op formulas (the ones FlopCounterMode uses) applied in a
    plain dispatch mode: FlopCounterMode's module tracker breaks ``autograd.grad`` inside the
    step (the WGAN-GP penalty), this does not."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def step_flops(m, b: dict, stage: str) -> float:
    """FLOPs of one forward + backward, a multiply-add counted as 2 (the optimiser's element-wise
    work, normalisation and activations are not counted, as in benchmarks/model_cost.py)."""
    m.train()
    counter = _FlopCount()
    with counter:
        m(b, stage).total.backward()
    m.zero_grad(set_to_none=True)
    return float(counter.total)


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def module_breakdown(m, opt, b: dict, stage: str) -> dict[str, float]:
    """Forward + backward time per top-level module of CSVRModel, measured with hooks: the
    wall time between a module's forward pre-hook and forward hook (forward), and between its
    full-backward pre-hook and backward hook (backward)."""
    model = getattr(m, "model", m)
    names = [n for n, _ in model.named_children()]
    acc: dict[str, float] = defaultdict(float)
    start: dict[tuple[str, str], float] = {}
    handles = []
    for name, mod in model.named_children():
        handles.append(mod.register_forward_pre_hook(lambda _m, _i, n=name: start.__setitem__((n, "f"), time.perf_counter())))
        handles.append(mod.register_forward_hook(
            lambda _m, _i, _o, n=name: acc.__setitem__(f"{n}.forward", acc[f"{n}.forward"] + time.perf_counter() - start[(n, "f")])))
        handles.append(mod.register_full_backward_pre_hook(
            lambda _m, _g, n=name: start.__setitem__((n, "b"), time.perf_counter())))
        handles.append(mod.register_full_backward_hook(
            lambda _m, _gi, _go, n=name: acc.__setitem__(f"{n}.backward", acc[f"{n}.backward"] + time.perf_counter() - start[(n, "b")])))
    try:
        one_step(m, opt, b, stage)
        acc.clear()
        t = time.perf_counter()
        one_step(m, opt, b, stage)
        total = time.perf_counter() - t
    finally:
        for h in handles:
            h.remove()
    out = {k: v * 1000 for k, v in sorted(acc.items())}
    out["step_total"] = total * 1000
    out["modules"] = names  # type: ignore[assignment]
    return out


def paper_flops(root: Path) -> dict[str, float]:
    """GFLOPs of one training step per sample at the paper's setting (r3d_18, 16x112x112 clips,
    video GANs at 16x64x64; presets paper/ucf101-r3d, -cvrl, -iic), counted on a batch of 2 real
    samples: what a GPU has to compute per sample, for the loader arithmetic of the README."""
    out = {}
    for method, preset, stage in (("csvr", "paper/ucf101-r3d", "joint"), ("cvrl", "paper/ucf101-r3d-cvrl", "main"),
                                  ("iic", "paper/ucf101-r3d-iic", "main")):
        cfg = load_config(PretrainConfig, resolve_config_path(preset),
                          [f"data.manifest={root / 'manifest.jsonl'}", f"data.pose_cache={root / 'poses_cache'}",
                           "train.batch_size=2"])
        m, _ = build_for_steps(cfg)
        b = training_batches(cfg, m, 1)[0]
        out[method] = step_flops(m, b, stage) / 2 / 1e9
        print(f"paper {method}: {out[method]:.0f} GFLOP per sample", file=sys.stderr)
        del m
    return out


def engine_rate(root: Path, method: str, channels_last: bool, steps: int) -> float:
    """Samples/s through ``csvr pretrain``'s own loop (2 data-loader workers decoding on the fly),
    CSVR's joint stage or CVRL's main stage, ``steps`` steps, the first two excluded."""
    stage = "joint" if method == "csvr" else "main"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(root, method, [f"out={tmp}/run", "data.workers=2", "train.log_every_steps=1",
                                    f"train.channels_last={str(channels_last).lower()}",
                                    "train.knn_monitor.every=0",
                                    f"train.stages=[{{name: {stage}, epochs: 50, max_steps: {steps}}}]",
                                    "train.ckpt_every_steps=100000"])
        pretrain(cfg)
        with open(Path(tmp) / "run" / "metrics.csv") as f:
            rows = [r for r in csv.DictReader(f) if r.get("samples_per_s")]
    rows = rows[2:]
    return sum(float(r["samples_per_s"]) for r in rows) / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="runs/bench-data")
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--variants", action="store_true", help="also channels_last_3d and torch.compile")
    ap.add_argument("--json", default=None, help="write the numbers here")
    ap.add_argument("--compile", action="store_true", help="also torch.compile (its first step compiles: ~2 min)")
    ap.add_argument("--paper-flops", action="store_true", help="also FLOPs per sample at the paper's setting")
    ap.add_argument("--engine", action="store_true", help="also samples/s through csvr pretrain (2 workers)")
    ap.add_argument("--engine-steps", type=int, default=14)
    args = ap.parse_args()
    torch.set_num_threads(2)
    root = Path(args.data)
    ensure_builtin_data(root)
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": 2}
    res["matmul_peak_gflops"] = matmul_peak() / 1e9
    cfg_c = config(root, "csvr")
    cfg_v = config(root, "cvrl")
    m_c, o_c = build_for_steps(cfg_c)
    m_v, o_v = build_for_steps(cfg_v)
    b_c, b_v = training_batches(cfg_c, m_c, 3), training_batches(cfg_v, m_v, 3)
    res["csvr_joint_s"] = step_time(m_c, o_c, b_c, "joint", args.repeats)
    res["cvrl_s"] = step_time(m_v, o_v, b_v, "main", args.repeats)
    res["ratio"] = res["csvr_joint_s"] / res["cvrl_s"]
    res["csvr_joint_gflop"] = step_flops(m_c, b_c[0], "joint") / 1e9
    res["cvrl_gflop"] = step_flops(m_v, b_v[0], "main") / 1e9
    res["csvr_gflops_per_s"] = res["csvr_joint_gflop"] / res["csvr_joint_s"]
    res["cvrl_gflops_per_s"] = res["cvrl_gflop"] / res["cvrl_s"]
    res["csvr_frac_peak"] = res["csvr_gflops_per_s"] / res["matmul_peak_gflops"]
    res["cvrl_frac_peak"] = res["cvrl_gflops_per_s"] / res["matmul_peak_gflops"]
    res["csvr_modules_ms"] = module_breakdown(m_c, o_c, b_c[0], "joint")
    if args.variants:
        m2, o2 = build_for_steps(cfg_c)
        to_channels_last_3d(m2)  # every Conv3d weight; activations follow the weights' format
        o2 = build_role_optimizer(m2.parameter_roles(), cfg_c.optim, 0.01)
        res["csvr_joint_channels_last_s"] = step_time(m2, o2, b_c, "joint", args.repeats)
        m4, _ = build_for_steps(cfg_v)
        to_channels_last_3d(m4)
        o4 = build_role_optimizer(m4.parameter_roles(), cfg_v.optim, 0.01)
        res["cvrl_channels_last_s"] = step_time(m4, o4, b_v, "main", args.repeats)
        res["ratio_channels_last"] = res["csvr_joint_channels_last_s"] / res["cvrl_channels_last_s"]
    if args.compile:
        m3, o3 = build_for_steps(cfg_c)
        model = m3.model
        for name, child in list(model.named_children()):
            if child is not None and name in ("v_network", "i_network", "reconstructor", "predictor",
                                              "reconstructor_critic", "predictor_critic"):
                setattr(model, name, torch.compile(child))
        t = time.perf_counter()
        one_step(m3, o3, b_c[0], "joint")
        res["compile_first_step_s"] = time.perf_counter() - t
        res["csvr_joint_compiled_s"] = step_time(m3, o3, b_c, "joint", args.repeats)
    if args.paper_flops:
        res["paper_gflop_per_sample"] = paper_flops(root)
    if args.engine:
        for cl in (False, True):
            for method in ("csvr", "cvrl"):
                res[f"engine_{method}{'_channels_last' if cl else ''}_samples_per_s"] = engine_rate(
                    root, method, cl, args.engine_steps)
        for suffix in ("", "_channels_last"):
            res[f"engine_ratio{suffix}"] = (res[f"engine_cvrl{suffix}_samples_per_s"]
                                            / res[f"engine_csvr{suffix}_samples_per_s"])
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
