"""The pretraining loop: Lightning Fabric, staged schedules, resumable to the exact sample.

Why Fabric and not Trainer: a CSVR step is one forward and *one* backward that trains critics
and generators together (OSGAN), the schedule switches the trained parameter groups between
stages, and resuming must continue at the exact sample of the interrupted epoch. Fabric gives
the device choice, the launchers (``torchrun``, SLURM, multi-node), DDP, mixed precision and
gradient-sync control, and leaves the loop to us; Trainer's loop would have to be bent
(manual optimisation, custom loops) to do the same.

Everything a run writes lives in ``cfg.out``: ``config.yaml`` (the resolved config),
``checkpoints/step-*.pt``, ``metrics.csv`` (one row per logged step), ``epochs.csv`` (per-epoch
means of every loss term and pretext metric: Table II), ``tb/`` (TensorBoard) and
``summary.json``.
"""

from __future__ import annotations

import csv
import logging
import os
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from csvr.config import from_dict, to_dict
from csvr.data.index import load_manifest
from csvr.engine.checkpoint import latest_checkpoint, list_checkpoints, rng_state, save_checkpoint, set_rng_state
from csvr.engine.config import PretrainConfig, StageConfig
from csvr.engine.optim import build_role_optimizer, drop_grads_outside, lr_factor
from csvr.errors import ConfigError, CsvrError
from csvr.methods import get_method
from csvr.utils.io import atomic_write_json, atomic_write_text
from csvr.utils.progress import progress

log = logging.getLogger(__name__)


class TrainingDiverged(CsvrError):
    """Too many consecutive non-finite losses."""


class ResumableSampler(Sampler[int]):
    """A deterministic per-epoch shuffle, split across ranks, that can start mid-epoch.

    The order is a pure function of ``(seed, epoch)``; rank ``r`` of ``world`` takes positions
    ``r, r + world, ...`` of it (the tail that does not divide evenly is dropped, as
    ``DistributedSampler(drop_last=True)``), and ``start`` skips that many of its indices (the
    samples already consumed before an interruption) without decoding them.
    """

    def __init__(self, n: int, seed: int, epoch: int, rank: int = 0, world: int = 1, start: int = 0,
                 shuffle: bool = True):
        self.n, self.seed, self.epoch, self.rank, self.world = n, seed, epoch, rank, world
        self.start, self.shuffle = start, shuffle

    def order(self) -> list[int]:
        idx = np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
        per_rank = self.n // self.world
        return idx[: per_rank * self.world][self.rank::self.world].tolist()

    def __iter__(self):
        return iter(self.order()[self.start:])

    def __len__(self) -> int:
        return max(0, self.n // self.world - self.start)


@dataclass
class _Position:
    stage_index: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    stage_step: int = 0
    global_step: int = 0


def stratified_subset(records, fraction: float, seed: int):
    """``fraction`` of the videos of every class (at least one each), chosen by ``seed``; order kept.

    The semi-supervised protocol (``data.label_fraction``): finetuning sees only these labels.
    """
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_class[r.label].append(i)
    keep: set[int] = set()
    for label, idx in sorted(by_class.items()):
        n = max(1, int(round(fraction * len(idx))))
        pick = np.random.default_rng([seed, label + 1]).permutation(len(idx))[:n]
        keep.update(idx[j] for j in pick)
    return [r for i, r in enumerate(records) if i in keep]


def resolve_stages(cfg: PretrainConfig, method_cls) -> list[StageConfig]:
    stages = list(cfg.train.stages) or [StageConfig(name=s) for s in method_cls.default_stages]
    for s in stages:
        if s.name not in method_cls.stages:
            raise ConfigError(f"train.stages: method {cfg.method!r} has no stage {s.name!r}; its stages are "
                              f"{', '.join(method_cls.stages)}")
    return stages


def learning_rate(cfg: PretrainConfig, world: int) -> float:
    """``optim.lr`` if set, else ``lr_per_sample x batch_size x world size x accumulate``."""
    if cfg.optim.lr is not None:
        return cfg.optim.lr
    return cfg.optim.lr_per_sample * cfg.train.batch_size * world * cfg.train.accumulate


def make_fabric(cfg: PretrainConfig):
    """A Fabric for the configured hardware (DDP with unused-parameter detection: CSVR's stages
    leave whole branches out of the graph)."""
    from lightning.fabric import Fabric
    from lightning.fabric.strategies import DDPStrategy

    strategy: Any = cfg.train.strategy
    if strategy in ("ddp", "auto"):
        world_env = int(os.environ.get("WORLD_SIZE", "1"))
        devices = cfg.train.devices
        many = world_env > 1 or cfg.train.num_nodes > 1 or (isinstance(devices, int) and devices > 1)
        if strategy == "ddp" or many:
            strategy = DDPStrategy(find_unused_parameters=True)
    on_cpu = cfg.train.accelerator == "cpu" or (cfg.train.accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and cfg.train.precision.startswith("bf16"):
        # torch 2.13's oneDNN Conv3d weight gradient under CPU bf16 autocast is sometimes NaN
        # (reproduced with a lone nn.Conv3d); the native kernels are correct
        log.warning("csvr: bf16 on CPU: disabling oneDNN (torch.backends.mkldnn) to avoid NaN Conv3d gradients")
        torch.backends.mkldnn.enabled = False
    return Fabric(accelerator=cfg.train.accelerator, devices=cfg.train.devices, num_nodes=cfg.train.num_nodes,
                  strategy=strategy, precision=cfg.train.precision)


class _CsvLog:
    """Append-only CSV whose columns may grow (rewritten atomically when they do)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []
        self.fields: list[str] = []
        if path.exists():
            with open(path, newline="") as f:
                r = csv.DictReader(f)
                self.fields = list(r.fieldnames or [])
                self.rows = list(r)

    def truncate_after(self, step: int) -> None:
        keep = [r for r in self.rows if int(float(r.get("step", 0))) <= step]
        if len(keep) != len(self.rows):
            self.rows = keep
            self._rewrite()

    def _rewrite(self) -> None:
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.fields)
        w.writeheader()
        w.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())

    def append(self, row: dict) -> None:
        row = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
        new = [k for k in row if k not in self.fields]
        self.rows.append(row)
        if new or not self.path.exists():
            self.fields += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields).writerow(row)


class _TB:
    def __init__(self, path: Path, enabled: bool):
        self.w = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.w = SummaryWriter(str(path))
            except Exception as e:  # noqa: BLE001 - TensorBoard is optional at run time
                log.warning("csvr: TensorBoard logging disabled (%s)", e)

    def scalars(self, values: dict[str, float], step: int, prefix: str) -> None:
        if self.w is not None:
            for k, v in values.items():
                self.w.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        if self.w is not None:
            self.w.close()


class _StopFlag:
    """SIGTERM/SIGUSR1 (SLURM pre-emption): finish the step, checkpoint, exit cleanly."""

    def __init__(self):
        self.set = False
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except (ValueError, OSError):  # not the main thread
                pass

    def _handle(self, signum, frame):
        self.set = True

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _to_float(values: dict[str, torch.Tensor]) -> dict[str, float]:
    if not values:
        return {}
    keys = list(values)
    stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys]).cpu().tolist()
    return dict(zip(keys, stacked))


def pretrain(cfg: PretrainConfig, resume: bool = False, fabric=None, hooks: dict | None = None) -> dict:
    """Run (or resume) a pretraining job; returns the summary (also written to summary.json).

    ``hooks``: optional callables ``on_start(method, fabric)`` (after the weights are loaded,
    before the first step) and ``on_end(method, fabric)`` (after the last step, on every rank).
    """
    hooks = hooks or {}
    method_cls = get_method(cfg.method)
    model_cfg = from_dict(method_cls.config_class, cfg.model, where="model")
    stages = resolve_stages(cfg, method_cls)
    run_dir = Path(cfg.out)
    if list_checkpoints(run_dir) and not resume:
        raise CsvrError(f"{run_dir} already holds checkpoints: pass --resume to continue that run, or choose "
                        "another --out / out=...")
    if not cfg.data.manifest:
        raise ConfigError("data.manifest is required (a manifest from 'csvr prepare index')")
    manifest = load_manifest(cfg.data.manifest, root=cfg.data.root, allow_outside_root=cfg.data.allow_outside_root)
    records = manifest.select(cfg.data.split, cfg.data.subset)
    if cfg.data.max_videos:
        records = records[: cfg.data.max_videos]
    if cfg.data.label_fraction < 1.0:
        records = stratified_subset(records, cfg.data.label_fraction, cfg.train.seed)

    fabric = fabric or make_fabric(cfg)
    fabric.launch()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    fabric.seed_everything(cfg.train.seed + fabric.global_rank, verbose=False)
    torch.manual_seed(cfg.train.seed + fabric.global_rank)
    method = method_cls(model_cfg, cfg.data.color)
    job_kind = getattr(method, "job_kind", "pretrain")
    if hasattr(method, "check_stages"):
        method.check_stages([s.name for s in stages])
    dataset = method.train_dataset(manifest, records, cfg.data.clip, cfg.train.seed, cfg.data.pose_cache)
    world, rank = fabric.world_size, fabric.global_rank
    per_step = cfg.train.batch_size * world * cfg.train.accumulate
    steps_per_epoch = len(dataset) // (cfg.train.batch_size * world) // cfg.train.accumulate
    if steps_per_epoch < 1:
        raise CsvrError(f"{len(dataset)} videos are fewer than one global batch ({per_step} = batch_size x devices "
                        "x accumulate): lower train.batch_size")
    lr = learning_rate(cfg, world)

    stage_totals = [min(st.epochs * steps_per_epoch, st.max_steps or st.epochs * steps_per_epoch) for st in stages]
    pos = _Position()
    loaded = None
    if resume:
        found = latest_checkpoint(run_dir)
        if found is None:
            log.info("csvr: --resume: no checkpoint in %s yet, starting from scratch", run_dir)
        else:
            path, loaded = found
            if loaded.get("method") != cfg.method or loaded.get("kind") != job_kind:
                raise CsvrError(f"{path} is a {loaded.get('kind')} checkpoint of method {loaded.get('method')!r}, "
                                f"not a {job_kind} checkpoint of {cfg.method!r}")
            method.load_state_dict(loaded["model"])
            pos = _Position(loaded["stage_index"], loaded["epoch"], loaded["step_in_epoch"], loaded["stage_step"],
                            loaded["global_step"])
            fabric.print(f"csvr: resuming from {path} (stage {stages[pos.stage_index].name}, epoch {pos.epoch}, "
                         f"step {pos.global_step})")

    model = fabric.setup_module(method)
    # one optimiser per parameter role for the whole run (csvr.engine.optim)
    role_opt = build_role_optimizer(method.parameter_roles(), cfg.optim, lr)
    if loaded is not None:
        if "optimizers" in loaded:
            role_opt.load_state_dict(loaded["optimizers"])
        else:
            fabric.print("csvr: the checkpoint predates optimisers by role: weights and position resume, the "
                         "optimiser state (momentum) starts afresh")
    opt = fabric.setup_optimizers(role_opt)
    if "on_start" in hooks:
        hooks["on_start"](method, fabric)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        from csvr.config import dump_yaml

        atomic_write_text(run_dir / "config.yaml", dump_yaml(cfg))
    steps_csv = _CsvLog(run_dir / "metrics.csv") if rank == 0 else None
    epochs_csv = _CsvLog(run_dir / "epochs.csv") if rank == 0 else None
    if steps_csv is not None:
        steps_csv.truncate_after(pos.global_step)
        epochs_csv.truncate_after(pos.global_step)
    tb = _TB(run_dir / "tb", rank == 0)
    stop = _StopFlag()
    nonfinite_total = 0
    t_start = time.time()
    stage_summaries = []
    consecutive_bad = 0
    scaler = getattr(fabric.strategy.precision, "scaler", None)

    def state(stage_i) -> dict:
        return {
            "kind": job_kind, "method": cfg.method, "config": to_dict(cfg),
            "stage": stages[stage_i].name, "stage_index": stage_i, "epoch": pos.epoch,
            "step_in_epoch": pos.step_in_epoch, "stage_step": pos.stage_step, "global_step": pos.global_step,
            "model": method.state_dict(), "optimizers": role_opt.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {}, "rng": rng_state(), "world_size": world,
        }

    def checkpoint(stage_i) -> None:
        # a checkpoint is only written from a healthy state: never while non-finite losses are
        # being skipped, never with non-finite weights (an update can blow them up), so the
        # latest checkpoint is always a good one to resume from
        healthy = consecutive_bad == 0 and all(bool(torch.isfinite(p).all()) for p in method.parameters())
        if rank == 0 and healthy:
            save_checkpoint(state(stage_i), run_dir, pos.global_step, cfg.train.keep_last)
        elif rank == 0:
            fabric.print(f"csvr: checkpoint at step {pos.global_step} not written (non-finite state)")
        fabric.barrier()

    try:
        for si in range(pos.stage_index, len(stages)):
            stage = stages[si]
            if si != pos.stage_index:
                pos = _Position(si, 0, 0, 0, pos.global_step)
            total = stage_totals[si]
            in_stage = {id(p) for p in method.stage_parameters(stage.name)}
            outside = [p for p in method.parameters() if id(p) not in in_stage]
            if loaded is not None and loaded["stage_index"] == si:
                if scaler is not None and loaded.get("scaler"):
                    scaler.load_state_dict(loaded["scaler"])
                set_rng_state(loaded["rng"])
                loaded = None
            method.train()
            bar = progress(total=total, initial=pos.stage_step, desc=f"{cfg.method}:{stage.name}", unit="step")
            t_stage = time.time()
            while pos.stage_step < total:
                dataset.set_epoch(si * 100_000 + pos.epoch)
                sampler = ResumableSampler(len(dataset), cfg.train.seed, si * 100_000 + pos.epoch, rank, world,
                                           start=pos.step_in_epoch * cfg.train.batch_size * cfg.train.accumulate)
                loader = DataLoader(dataset, batch_size=cfg.train.batch_size, sampler=sampler,
                                    num_workers=cfg.data.workers, drop_last=True,
                                    pin_memory=fabric.device.type == "cuda",
                                    persistent_workers=False, prefetch_factor=4 if cfg.data.workers else None,
                                    # its own generator: creating an iterator must not draw from the
                                    # global RNG, or a resumed run would drift from the original
                                    generator=torch.Generator().manual_seed(cfg.train.seed))
                it = iter(loader)
                sums: dict[str, float] = defaultdict(float)
                count = 0
                wait = busy = 0.0
                while pos.step_in_epoch < steps_per_epoch and pos.stage_step < total:
                    t0 = time.perf_counter()
                    micro = [next(it) for _ in range(cfg.train.accumulate)]
                    t1 = time.perf_counter()
                    finite = True
                    out = None
                    for k, batch in enumerate(micro):
                        batch = fabric.to_device(batch)
                        with fabric.no_backward_sync(model, enabled=k < len(micro) - 1):
                            out = model(batch, stage.name)
                            loss = out.total / cfg.train.accumulate
                            bad = fabric.all_reduce((~torch.isfinite(loss.detach())).float(), reduce_op="sum")
                            finite = finite and float(bad) == 0.0
                            fabric.backward(loss)  # also when non-finite: DDP expects the backward
                    if cfg.optim.schedule_scope == "run":
                        factor = lr_factor(cfg.optim, pos.global_step, sum(stage_totals))
                    else:
                        factor = lr_factor(cfg.optim, pos.stage_step, total)
                    role_opt.set_lr_factor(factor)
                    lr_now = role_opt.lrs()
                    if finite:
                        drop_grads_outside(outside)  # this stage trains only its own parameters
                        if cfg.optim.grad_clip:
                            fabric.clip_gradients(model, opt, max_norm=cfg.optim.grad_clip)
                        opt.step()
                        consecutive_bad = 0
                    else:
                        consecutive_bad += 1
                        nonfinite_total += 1
                        fabric.print(f"csvr: non-finite loss at step {pos.global_step} ({stage.name}); step skipped "
                                     f"({consecutive_bad} in a row)")
                        if consecutive_bad >= cfg.train.max_nonfinite:
                            opt.zero_grad(set_to_none=True)
                            last = list_checkpoints(run_dir)
                            raise TrainingDiverged(
                                f"{consecutive_bad} consecutive non-finite losses in stage {stage.name!r} at step "
                                f"{pos.global_step}: training stopped. The last good checkpoint is "
                                f"{last[-1] if last else '(none yet)'}; lower the learning rate or check the data.")
                    opt.zero_grad(set_to_none=True)
                    t2 = time.perf_counter()
                    wait += t1 - t0
                    busy += t2 - t1
                    pos.step_in_epoch += 1
                    pos.stage_step += 1
                    pos.global_step += 1
                    if finite:
                        vals = _to_float({**out.terms, **out.metrics})
                        for k_, v in vals.items():
                            sums[k_] += v
                        count += 1
                    bar.update(1)
                    if pos.global_step % cfg.train.log_every_steps == 0 and finite:
                        sps = per_step / max(t2 - t0, 1e-9)
                        row = {"step": pos.global_step, "stage": stage.name, "epoch": pos.epoch,
                               "lr": lr_now["encoder"] if "encoder" in lr_now else next(iter(lr_now.values())),
                               **{f"lr_{r}": v for r, v in lr_now.items() if r != "encoder"}, **vals, "samples_per_s": sps,
                               "data_wait_frac": wait / max(wait + busy, 1e-9)}
                        bar.set_postfix({k_: f"{v:.3g}" for k_, v in list(vals.items())[:4]} | {"sps": f"{sps:.1f}"})
                        if steps_csv is not None:
                            steps_csv.append(row)
                            tb.scalars({k_: v for k_, v in row.items() if isinstance(v, float)}, pos.global_step,
                                       f"train/{stage.name}")
                    if pos.global_step % cfg.train.ckpt_every_steps == 0:
                        checkpoint(si)
                    if stop.set:
                        checkpoint(si)
                        raise CsvrError(f"stopped by a signal at step {pos.global_step}; the checkpoint is saved, "
                                        "continue with --resume")
                del it, loader
                epoch_done = pos.step_in_epoch >= steps_per_epoch
                if count and epochs_csv is not None:
                    means = {k_: v / count for k_, v in sums.items()}
                    epochs_csv.append({"step": pos.global_step, "stage": stage.name, "epoch": pos.epoch,
                                       **means, "data_wait_frac": wait / max(wait + busy, 1e-9)})
                    tb.scalars(means, pos.epoch, f"epoch/{stage.name}")
                if epoch_done:
                    pos.epoch += 1
                    pos.step_in_epoch = 0
                checkpoint(si)  # every epoch end (and the stage's end)
            bar.close()
            stage_summaries.append({"stage": stage.name, "steps": pos.stage_step, "epochs": pos.epoch,
                                    "seconds": round(time.time() - t_stage, 1),
                                    "pretext": pretext_verdicts(steps_csv.rows, stage.name, method_cls.pretext_checks)
                                    if steps_csv is not None else []})
            pos.stage_step = total
        final_path = list_checkpoints(run_dir)[-1] if list_checkpoints(run_dir) else None
        if "on_end" in hooks:
            hooks["on_end"](method, fabric)
    finally:
        stop.restore()
        tb.close()
    summary = {
        "kind": job_kind, "method": cfg.method, "out": str(run_dir), "checkpoint": str(final_path) if final_path else None,
        "global_step": pos.global_step, "world_size": world, "global_batch": per_step, "lr": lr,
        "stages": stage_summaries, "nonfinite_steps": nonfinite_total, "seconds": round(time.time() - t_start, 1),
    }
    if epochs_csv is not None and epochs_csv.rows:
        summary["last_epoch_metrics"] = {k: v for k, v in epochs_csv.rows[-1].items() if k not in ("stage",)}
    if rank == 0:
        atomic_write_json(run_dir / "summary.json", summary)
    return summary


def pretext_verdicts(rows: list[dict], stage: str, checks) -> list[dict]:
    """Each :class:`~csvr.methods.base.PretextCheck` whose columns the stage logged, judged on the
    mean over the last half of the stage's logged rows (``metrics.csv``): "learning" or "not above
    baseline"."""
    mine = [r for r in rows if r.get("stage") == stage]
    mine = mine[len(mine) // 2:]
    out = []
    for c in checks:
        vals = [float(r[c.signal]) for r in mine if r.get(c.signal) not in (None, "")]
        if not vals:
            continue
        value = float(np.mean(vals))
        base = None
        if c.baseline is not None:
            bvals = [float(r[c.baseline]) for r in mine if r.get(c.baseline) not in (None, "")]
            if not bvals:
                continue
            base = float(np.mean(bvals))
        if c.better == "lower":
            ok = value <= c.factor * base
        elif c.better == "higher":
            ok = value >= c.factor * base
        else:
            ok = abs(value) >= c.factor
        out.append({"branch": c.branch, "signal": c.signal, "value": value, "baseline": c.baseline,
                    "baseline_value": base, "rule": f"{c.better} {c.factor:g}", "rows": len(vals),
                    "verdict": "learning" if ok else "not above baseline"})
    return out


def load_pretrained(path: str | os.PathLike, map_location="cpu"):
    """(method instance with the checkpoint's weights, checkpoint dict) from a pretrain checkpoint."""
    from csvr.engine.checkpoint import load_checkpoint

    state = load_checkpoint(path, map_location)
    if state.get("kind") != "pretrain":
        raise CsvrError(f"{path} is a {state.get('kind')!r} checkpoint, not a pretraining one")
    cfg = from_dict(PretrainConfig, state["config"])
    method_cls = get_method(cfg.method)
    method = method_cls(from_dict(method_cls.config_class, cfg.model, where="model"), cfg.data.color)
    method.load_state_dict(state["model"])
    return method, state


def print_summary(summary: dict) -> None:
    what = {"pretrain": "pretraining", "finetune": "finetuning", "linear_probe": "linear probing"}.get(
        summary.get("kind", "pretrain"), "training")
    print(f"{what} done: method {summary['method']}, {summary['global_step']} steps in {summary['seconds']} s "
          f"(global batch {summary['global_batch']}, lr {summary['lr']:.3g}, {summary['world_size']} process(es))")
    for s in summary["stages"]:
        print(f"  stage {s['stage']:8s} {s['steps']:6d} steps  {s['seconds']:8.1f} s")
    if summary.get("last_epoch_metrics"):
        m = summary["last_epoch_metrics"]
        shown = {k: v for k, v in m.items() if k in ("total", "data_wait_frac", "iframe_own_frac", "iframes_per_clip")}
        print("  last epoch: " + ", ".join(f"{k} {float(v):.4g}" for k, v in shown.items()))
    checks = [(s["stage"], c) for s in summary["stages"] for c in s.get("pretext", [])]
    if checks:
        print("  pretext signals against their trivial baselines (last half of each stage):")
        for stage, c in checks:
            base = "0 (no gap)" if c["baseline"] is None else f"{c['baseline']} {c['baseline_value']:.4g}"
            print(f"    {stage:8s} {c['branch']:18s} {c['signal']} {c['value']:.4g} vs {base}: {c['verdict']}")
    if summary["nonfinite_steps"]:
        print(f"  {summary['nonfinite_steps']} step(s) skipped for non-finite losses")
    print(f"  checkpoint: {summary['checkpoint']}")
    print(f"  logs: {summary['out']}/metrics.csv, epochs.csv, tb/")


__all__ = ["ResumableSampler", "TrainingDiverged", "learning_rate", "load_pretrained", "make_fabric", "pretext_verdicts",
           "pretrain", "print_summary", "resolve_stages"]
