"""The training loop: Lightning Fabric, staged schedules, resumable to the exact sample.

Why Fabric and not Trainer: a CSVR step is one forward and *one* backward that trains critics
and generators together (OSGAN), the schedule switches the trained parameter groups between
stages, and resuming must continue at the exact sample of the interrupted epoch. Fabric gives
the device choice, the launchers (``torchrun``, SLURM, multi-node), DDP, mixed precision and
gradient-sync control, and leaves the loop to us; Lightning's Trainer would have to be bent
(manual optimisation, custom loops) to do the same.

:class:`Trainer` trains whatever :class:`~csvr.methods.base.Method` it is handed (a pretext
method for ``csvr pretrain``, the classifier of ``csvr finetune``), in these pieces:

* set-up (:meth:`Trainer._select_data`, :meth:`~Trainer._launch`, :meth:`~Trainer._build`):
  the manifest's records, the Fabric processes, the seeded method and its dataset;
* resume (:meth:`~Trainer._resume`): weights, optimiser, position and RNG from the run's latest
  loadable checkpoint;
* the stage loop (:meth:`~Trainer._run_stage`, :meth:`~Trainer._run_epoch`) and one optimiser
  step (:meth:`~Trainer._step`);
* logging (:mod:`csvr.engine.logging`) and checkpoints (:meth:`~Trainer._checkpoint`).

Everything a run writes lives in ``cfg.out``: ``config.yaml`` (the resolved config),
``checkpoints/step-*.pt``, ``metrics.csv``, ``epochs.csv``, ``tb/`` and ``summary.json``.

Stopping: SIGTERM / SIGUSR1 (SLURM pre-emption, or ``kill`` of the whole process group) and a
first Ctrl-C (SIGINT) finish the step, write a checkpoint and end with one message; a second
Ctrl-C quits at once, without one. Data-loader workers ignore these signals (they are shut down
by the main process), so a signal sent to the whole group does not kill them under the loop. A
worker that dies on its own (the out-of-memory killer's SIGKILL) ends the run with one message
naming the last checkpoint, which is left as it was.

One job per run folder: rank 0 holds ``RUN/csvr.lock`` (:mod:`csvr.engine.lock`) from before the
job reads anything to its end, whichever way it ends; a second job into the folder is refused.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from csvr.config import config_differences, dump_yaml, show_value, to_dict
from csvr.data.index import load_manifest
from csvr.data.transforms import MEAN, STD
from csvr.engine.checkpoint import (latest_checkpoint, list_checkpoints, load_weights, rng_state, save_checkpoint,
                                   set_rng_state)
from csvr.engine.config import PretrainConfig, StageConfig
from csvr.engine.lock import RunLock, launch_rank
from csvr.engine.logging import EpochMeans, RunLog, to_float
from csvr.engine.monitor import KnnMonitor
from csvr.engine.optim import build_role_optimizer, drop_grads_outside, lr_factors
from csvr.errors import ConfigError, CsvrError
from csvr.methods.base import Method
from csvr.pose_format.cache import check_coverage
from csvr.utils.io import atomic_write_json, atomic_write_text
from csvr.utils.progress import progress

log = logging.getLogger(__name__)


class TrainingDiverged(CsvrError):
    """Too many consecutive non-finite losses."""


class StoppedBySignal(CsvrError):
    """SIGTERM / SIGUSR1 or a first Ctrl-C arrived: the step finished and a checkpoint was written."""


class DataWorkerDied(CsvrError):
    """A data-loader worker process died (usually the out-of-memory killer)."""


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
class Position:
    """Where a run is: what a checkpoint stores and a resume continues from."""

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
    """``train.stages``, or the method's default stages (one epoch each); each must be one of its stages."""
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
    from lightning.fabric import Fabric  # heavy (about 4 s): only once a run starts
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


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class StopFlag:
    """SIGTERM/SIGUSR1 (SLURM pre-emption) or a first Ctrl-C (SIGINT): finish the step,
    checkpoint, exit cleanly. A Ctrl-C while a stop is pending quits at once (KeyboardInterrupt).
    ``announce``: say so on stderr when the first Ctrl-C arrives (rank 0); ``running``: False
    during set-up, where a Ctrl-C quits at once (nothing to save yet; other stop signals are
    kept for the check before the first step)."""

    def __init__(self, announce: bool = True, running: bool = True):
        self.set = False
        self.signum: int | None = None
        self.announce = announce
        self.running = running
        self._old = {}
        for sig in STOP_SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except (ValueError, OSError):  # not the main thread
                pass

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and (self.set or not self.running):
            raise KeyboardInterrupt
        if not self.set and signum == signal.SIGINT and self.announce:
            # os.write, not print: the handler may run while the progress bar writes to stderr
            os.write(2, b"\ncsvr: Ctrl-C: finishing the step, then saving a checkpoint (Ctrl-C again quits at once, "
                        b"without it)\n")
        self.set = True
        self.signum = self.signum or signum

    @property
    def what(self) -> str:
        """The signal that asked for the stop, in words."""
        return "Ctrl-C" if self.signum == signal.SIGINT else "a signal"

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _worker_ignores_stop_signals(_worker_id: int) -> None:
    """Data-loader workers leave SIGTERM / SIGUSR1 / SIGINT to the main process, which checkpoints and
    then shuts them down (a signal to the whole process group would otherwise kill them first)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _is_worker_death(e: RuntimeError) -> bool:
    return str(e).startswith("DataLoader worker")


def to_channels_last_3d(module: torch.nn.Module) -> torch.nn.Module:
    """Every 5-D parameter (Conv3d weights) in ``torch.channels_last_3d`` memory format, in place.

    A convolution follows its weight's format, so activations flow channels-last through the 3D
    networks (oneDNN's and cuDNN's faster layout for them); values and shapes are unchanged, so
    checkpoints load either way and optimiser state created afterwards follows the parameters.
    """
    for p in module.parameters():
        if p.dim() == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    return module


class Trainer:
    """Train ``build()`` (a :class:`Method` of class ``method_cls``) as ``cfg`` says; see the
    module docstring. ``hooks``: optional callables ``on_start(method, fabric)`` (after the
    weights are loaded, before the first step) and ``on_end(method, fabric)`` (after the last
    step, on every rank).

    ``build`` is called after the processes are launched and seeded (``train.seed`` + rank), so
    that the method's random initialisation is a function of the seed alone.
    """

    def __init__(self, cfg: PretrainConfig, method_cls: type[Method], build: Callable[[], Method], fabric=None,
                 hooks: dict | None = None):
        self.cfg = cfg
        self.method_cls = method_cls
        self.build = build
        self.fabric = fabric
        self.hooks = hooks or {}
        self.stages = resolve_stages(cfg, method_cls)
        self.run_dir = Path(cfg.out)
        self.keep_steps = frozenset(int(k) for k in cfg.train.keep_steps)
        self.pos = Position()
        self.loaded: dict | None = None
        self.consecutive_bad = 0
        self.nonfinite_total = 0

    # ------------------------------------------------------------------ entry point
    def fit(self, resume: bool = False) -> dict:
        """Run (or resume) the job; returns the summary (also written to ``summary.json``).

        Rank 0 holds the run folder's lock from before anything is read to the end, whichever
        way the job ends (:mod:`csvr.engine.lock`); stop signals are caught from the start.
        """
        self.lock = None
        rank0 = launch_rank() == 0
        self.stop = StopFlag(announce=rank0, running=False)
        try:
            if rank0:  # the other ranks belong to rank 0's job: they share its lock
                self.lock = RunLock(self.run_dir).acquire()
            return self._fit(resume)
        finally:
            self.stop.restore()
            if self.lock is not None:
                self.lock.release()

    def _fit(self, resume: bool) -> dict:
        self._select_data(resume)
        self._launch()
        if self.lock is not None and self.rank != 0:  # the environment misnamed the rank: Fabric knows
            self.lock.release()
            self.lock = None
        self._build()
        if resume:
            self._resume()
        self._setup_optimizer()
        if "on_start" in self.hooks:
            self.hooks["on_start"](self.method, self.fabric)
        if self.stop.set:  # a stop signal during set-up: nothing new trained, nothing to save
            raise StoppedBySignal(f"stopped by {self.stop.what} before the first step: nothing was trained, so "
                                  "nothing new is saved; run the same command again to start")
        self._open_run()
        self.stop.running = True
        self.t_start = time.time()
        stage_summaries = []
        try:
            for si in range(self.pos.stage_index, len(self.stages)):
                stage_summaries.append(self._run_stage(si))
            final = list_checkpoints(self.run_dir)
            final_path = final[-1] if final else None
            if "on_end" in self.hooks:
                self.hooks["on_end"](self.method, self.fabric)
        except RuntimeError as e:  # a worker's death is raised (SIGCHLD) wherever the main process is
            if _is_worker_death(e):
                raise self._worker_died(e) from None
            raise
        finally:
            self.logs.close()
        return self._summary(stage_summaries, final_path)

    # ------------------------------------------------------------------ set-up
    def _select_data(self, resume: bool) -> None:
        cfg = self.cfg
        if list_checkpoints(self.run_dir) and not resume:
            raise CsvrError(f"{self.run_dir} already holds checkpoints: pass --resume to continue that run, or choose "
                            "another --out / out=...")
        if not cfg.data.manifest:
            raise ConfigError("data.manifest is required (a manifest from 'csvr prepare index')")
        self.manifest = load_manifest(cfg.data.manifest, root=cfg.data.root,
                                      allow_outside_root=cfg.data.allow_outside_root)
        records = self.manifest.select_nonempty(cfg.data.split, cfg.data.subset, key="data.split / data.subset")
        if cfg.data.max_videos:
            records = records[: cfg.data.max_videos]
        if cfg.data.label_fraction < 1.0:
            records = stratified_subset(records, cfg.data.label_fraction, cfg.train.seed)
        self.records = records

    def _launch(self) -> None:
        cfg = self.cfg
        self.fabric = self.fabric or make_fabric(cfg)
        self.fabric.launch()
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.fabric.seed_everything(cfg.train.seed + self.fabric.global_rank, verbose=False)
        torch.manual_seed(cfg.train.seed + self.fabric.global_rank)
        self.world, self.rank = self.fabric.world_size, self.fabric.global_rank

    def _build(self) -> None:
        cfg = self.cfg
        self.method = self.build()
        if cfg.train.channels_last:
            to_channels_last_3d(self.method)
        self.method.check_stages([s.name for s in self.stages])
        self.dataset = self.method.train_dataset(self.manifest, self.records, cfg.data.clip, cfg.train.seed,
                                                 cfg.data.pose_cache)
        # a run that reads poses checks its cache before any step: a wrong path must not train
        # silently on zero poses (every pose loss 0)
        self.pose_coverage = None
        if getattr(self.dataset, "with_poses", False):
            self.pose_coverage = check_coverage(cfg.data.pose_cache, [r.id for r in self.records],
                                                source=str(self.manifest.path))
        self.per_step = cfg.train.batch_size * self.world * cfg.train.accumulate
        self.steps_per_epoch = len(self.dataset) // (cfg.train.batch_size * self.world) // cfg.train.accumulate
        if self.steps_per_epoch < 1:
            raise CsvrError(f"{len(self.dataset)} videos are fewer than one global batch ({self.per_step} = batch_size "
                            "x devices x accumulate): lower train.batch_size")
        self.lr = learning_rate(cfg, self.world)
        spe = self.steps_per_epoch
        self.stage_totals = [min(st.epochs * spe, st.max_steps or st.epochs * spe) for st in self.stages]
        # the online kNN monitor (train.knn_monitor; off by default): checked here, before any step
        self.monitor = KnnMonitor.build(cfg, self.method, self.manifest)
        # the method's held-out epoch-end diagnostics (train.diagnostics_videos), rank 0 only
        self.diagnostics = None
        self.diagnosed_at = -(10 ** 9)  # the step of the last measurement (none yet)
        if self.rank == 0 and cfg.train.diagnostics_videos and self.method.diagnostic_stages:
            self.diagnostics = self.method.build_diagnostics(
                self.manifest, self.records, cfg.data.clip, cfg.data.pose_cache, cfg.data.split,
                cfg.train.diagnostics_videos, cfg.train.seed)

    # ------------------------------------------------------------------ resume
    def _resume(self) -> None:
        found = latest_checkpoint(self.run_dir)
        if found is None:
            log.info("csvr: --resume: no checkpoint in %s yet, starting from scratch", self.run_dir)
            return
        path, loaded = found
        kind, method = self.method.job_kind, self.cfg.method
        if loaded.get("method") != method or loaded.get("kind") != kind:
            raise CsvrError(f"{path} is a {loaded.get('kind')} checkpoint of method {loaded.get('method')!r}, "
                            f"not a {kind} checkpoint of {method!r}")
        load_weights(self.method, loaded["model"], path, f"the {method} model of this config",
                     self._model_config_hint(loaded))
        self.pos = Position(loaded["stage_index"], loaded["epoch"], loaded["step_in_epoch"], loaded["stage_step"],
                            loaded["global_step"])
        self.loaded = loaded
        self.fabric.print(f"csvr: resuming from {path} (stage {self.stages[self.pos.stage_index].name}, epoch "
                          f"{self.pos.epoch}, step {self.pos.global_step})")

    def _model_config_hint(self, loaded: dict) -> str:
        """The ``model.*`` keys where this config differs from the checkpoint's (the likely reason
        its weights do not fit), and what to do."""
        saved = (loaded.get("config") or {}).get("model") or {}
        diff = config_differences(saved, to_dict(self.cfg).get("model") or {}, "model.")
        keys = ", ".join(f"{k}: {show_value(a)} -> {show_value(b)}" for k, a, b in diff[:4])
        more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
        return (f"the config differs from the checkpoint's in {keys}{more}; resume with the run's own model "
                "settings (leave those overrides out), or start a new run (another --out)") if diff else \
            "the checkpoint was written by another model definition (another csvr version?)"

    def _setup_optimizer(self) -> None:
        fabric = self.fabric
        self.model = fabric.setup_module(self.method)
        # one optimiser per parameter role for the whole run (csvr.engine.optim)
        self.role_opt = build_role_optimizer(self.method.parameter_roles(), self.cfg.optim, self.lr)
        if self.loaded is not None:
            if "optimizers" in self.loaded:
                self.role_opt.load_state_dict(self.loaded["optimizers"])
            else:
                fabric.print("csvr: the checkpoint predates optimisers by role: weights and position resume, the "
                             "optimiser state (momentum) starts afresh")
        self.opt = fabric.setup_optimizers(self.role_opt)
        self.scaler = getattr(fabric.strategy.precision, "scaler", None)

    def _restore_stage_state(self, si: int) -> None:
        """The scaler and RNG states of a resumed checkpoint, once its stage is reached."""
        loaded = self.loaded
        if loaded is not None and loaded["stage_index"] == si:
            if self.scaler is not None and loaded.get("scaler"):
                self.scaler.load_state_dict(loaded["scaler"])
            set_rng_state(loaded["rng"])
            self.loaded = None

    def _open_run(self) -> None:
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.yaml", dump_yaml(self.cfg))
        self.logs = RunLog(self.run_dir, self.rank == 0, self.pos.global_step)

    # ------------------------------------------------------------------ stages and epochs
    def _run_stage(self, si: int) -> dict:
        stage = self.stages[si]
        if si != self.pos.stage_index:
            self.pos = Position(si, 0, 0, 0, self.pos.global_step)
        total = self.stage_totals[si]
        in_stage = {id(p) for p in self.method.stage_parameters(stage.name)}
        self.outside = [p for p in self.method.parameters() if id(p) not in in_stage]
        self._restore_stage_state(si)
        self.method.train()
        bar = progress(total=total, initial=self.pos.stage_step, desc=f"{self.cfg.method}:{stage.name}", unit="step")
        t_stage = time.time()
        while self.pos.stage_step < total:
            self._run_epoch(si, stage, total, bar)
        bar.close()
        summary = {"stage": stage.name, "steps": self.pos.stage_step, "epochs": self.pos.epoch,
                   "seconds": round(time.time() - t_stage, 1),
                   "pretext": self.logs.verdicts(stage.name, self.method_cls.pretext_checks)}
        self.pos.stage_step = total
        return summary

    def _loader(self, si: int) -> DataLoader:
        cfg, pos = self.cfg, self.pos
        self.dataset.set_epoch(si * 100_000 + pos.epoch)
        sampler = ResumableSampler(len(self.dataset), cfg.train.seed, si * 100_000 + pos.epoch, self.rank, self.world,
                                   start=pos.step_in_epoch * cfg.train.batch_size * cfg.train.accumulate)
        workers = cfg.data.workers
        return DataLoader(self.dataset, batch_size=cfg.train.batch_size, sampler=sampler, num_workers=workers,
                          drop_last=True, pin_memory=self.fabric.device.type == "cuda",
                          persistent_workers=False, prefetch_factor=4 if workers else None,
                          worker_init_fn=_worker_ignores_stop_signals if workers else None,
                          # its own generator: creating an iterator must not draw from the
                          # global RNG, or a resumed run would drift from the original
                          generator=torch.Generator().manual_seed(cfg.train.seed))

    def _run_epoch(self, si: int, stage: StageConfig, total: int, bar) -> None:
        """Steps of one epoch of stage ``si`` (from the current position), its means, its checkpoint."""
        cfg, pos = self.cfg, self.pos
        loader = self._loader(si)
        it = iter(loader)
        means = EpochMeans()
        while pos.step_in_epoch < self.steps_per_epoch and pos.stage_step < total:
            t0 = time.perf_counter()
            micro = self._next_batches(it, si)
            t1 = time.perf_counter()
            out, finite, lr_now = self._step(stage, micro, total)
            t2 = time.perf_counter()
            means.wait += t1 - t0
            means.busy += t2 - t1
            pos.step_in_epoch += 1
            pos.stage_step += 1
            pos.global_step += 1
            vals = {}
            if finite:
                vals = to_float({**out.terms, **out.metrics})
                means.add(vals)
            bar.update(1)
            knn = self._monitor() if self.monitor is not None and self.monitor.due(pos.global_step) else {}
            if (pos.global_step % cfg.train.log_every_steps == 0 or knn) and finite:
                self._log_step(stage, {**vals, **knn}, lr_now, t2 - t0, means, bar)
            if pos.global_step % cfg.train.ckpt_every_steps == 0 or pos.global_step in self.keep_steps:
                self._checkpoint(si)
            if self.stop.set:
                self._stop(si)
        self._close(it)
        del it, loader
        epoch_done = pos.step_in_epoch >= self.steps_per_epoch
        extra, drop = {}, ()
        if self.diagnostics is not None and stage.name in self.method_cls.diagnostic_stages and means.count:
            drop = getattr(self.diagnostics, "names", ())
            if pos.stage_step >= total or pos.global_step - self.diagnosed_at >= cfg.train.diagnostics_every:
                extra = self.diagnostics(self.method, self.fabric.device)
                self.diagnosed_at = pos.global_step
        self.logs.epoch(means, stage.name, pos.epoch, pos.global_step, extra, drop)
        if epoch_done:
            pos.epoch += 1
            pos.step_in_epoch = 0
        self._checkpoint(si)  # every epoch end (and the stage's end)

    def _next_batches(self, it, si: int) -> list:
        """The next ``train.accumulate`` batches; a stop signal or a dead worker ends the run here."""
        try:
            return [next(it) for _ in range(self.cfg.train.accumulate)]
        except RuntimeError as e:
            if not _is_worker_death(e):
                raise
            time.sleep(0.5)  # a stop signal sent to the whole group may still be on its way here
            if self.stop.set:  # between two steps: the state is consistent, checkpoint it
                self._stop(si)
            raise self._worker_died(e) from None

    def _close(self, it) -> None:
        """Shut the epoch's workers down here rather than in the iterator's ``__del__``, where the
        death of a worker (raised by torch's SIGCHLD handler) would be printed and ignored."""
        shutdown = getattr(it, "_shutdown_workers", None)  # absent when data.workers = 0
        if shutdown is not None:
            shutdown()

    def _worker_died(self, e: RuntimeError) -> DataWorkerDied:
        last = list_checkpoints(self.run_dir)
        return DataWorkerDied(
            f"a data-loader worker died at step {self.pos.global_step} ({str(e).strip()}); the out-of-memory killer is "
            "the usual cause: lower data.workers, train.batch_size or the clip size. The last checkpoint, "
            f"{last[-1] if last else '(none yet)'}, is intact: continue with --resume")

    # ------------------------------------------------------------------ one step
    def _step(self, stage: StageConfig, micro: list, total: int):
        """Forward + backward of every micro-batch, then one optimiser step unless a loss is
        non-finite (skipped; ``train.max_nonfinite`` in a row stop the run)."""
        cfg, pos, fabric, model = self.cfg, self.pos, self.fabric, self.model
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
            factor = lr_factors(cfg.optim, pos.global_step, sum(self.stage_totals))
        else:
            factor = lr_factors(cfg.optim, pos.stage_step, total)
        self.role_opt.set_lr_factor(factor)
        lr_now = self.role_opt.lrs()
        if finite:
            drop_grads_outside(self.outside)  # this stage trains only its own parameters
            if cfg.optim.grad_clip:
                fabric.clip_gradients(model, self.opt, max_norm=cfg.optim.grad_clip)
            self.opt.step()
            self.consecutive_bad = 0
        else:
            self.consecutive_bad += 1
            self.nonfinite_total += 1
            fabric.print(f"csvr: non-finite loss at step {pos.global_step} ({stage.name}); step skipped "
                         f"({self.consecutive_bad} in a row)")
            if self.consecutive_bad >= cfg.train.max_nonfinite:
                self.opt.zero_grad(set_to_none=True)
                last = list_checkpoints(self.run_dir)
                raise TrainingDiverged(
                    f"{self.consecutive_bad} consecutive non-finite losses in stage {stage.name!r} at step "
                    f"{pos.global_step}: training stopped. The last good checkpoint is "
                    f"{last[-1] if last else '(none yet)'}; lower the learning rate or check the data.")
        self.opt.zero_grad(set_to_none=True)
        return out, finite, lr_now

    def _monitor(self) -> dict[str, float]:
        """The kNN monitor's values at this step (rank 0; {} elsewhere): logged in the step's row."""
        if self.rank != 0:
            return {}
        values = self.monitor(self.method, self.pos.global_step, self.fabric.device)
        if values:
            self.fabric.print(self.monitor.line(self.pos.global_step, values))
        return values

    def _log_step(self, stage: StageConfig, vals: dict, lr_now: dict, seconds: float, means: EpochMeans, bar) -> None:
        pos = self.pos
        sps = self.per_step / max(seconds, 1e-9)
        row = {"step": pos.global_step, "stage": stage.name, "epoch": pos.epoch,
               "lr": lr_now["encoder"] if "encoder" in lr_now else next(iter(lr_now.values())),
               **{f"lr_{r}": v for r, v in lr_now.items() if r != "encoder"}, **vals, "samples_per_s": sps,
               "data_wait_frac": means.wait_frac}
        bar.set_postfix({k: f"{v:.3g}" for k, v in list(vals.items())[:4]} | {"sps": f"{sps:.1f}"})
        self.logs.step(row, stage.name, pos.global_step)

    # ------------------------------------------------------------------ checkpoints
    def _state(self, si: int) -> dict:
        pos, cfg = self.pos, self.cfg
        return {
            "kind": self.method.job_kind, "method": cfg.method, "config": to_dict(cfg),
            "stage": self.stages[si].name, "stage_index": si, "epoch": pos.epoch,
            "step_in_epoch": pos.step_in_epoch, "stage_step": pos.stage_step, "global_step": pos.global_step,
            "model": self.method.state_dict(), "optimizers": self.role_opt.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {}, "rng": rng_state(),
            "world_size": self.world, "input": {"mean": list(MEAN), "std": list(STD)},
        }

    def _checkpoint(self, si: int) -> None:
        # a checkpoint is only written from a healthy state: never while non-finite losses are
        # being skipped, never with non-finite weights (an update can blow them up), so the
        # latest checkpoint is always a good one to resume from
        healthy = self.consecutive_bad == 0 and all(bool(torch.isfinite(p).all()) for p in self.method.parameters())
        if self.rank == 0 and healthy:
            save_checkpoint(self._state(si), self.run_dir, self.pos.global_step, self.cfg.train.keep_last,
                            self.keep_steps)
        elif self.rank == 0:
            self.fabric.print(f"csvr: checkpoint at step {self.pos.global_step} not written (non-finite state)")
        self.fabric.barrier()

    def _stop(self, si: int) -> None:
        self._checkpoint(si)
        raise StoppedBySignal(f"stopped by {self.stop.what} at step {self.pos.global_step}; the checkpoint is saved, "
                              f"continue with --resume --out {self.run_dir}")

    # ------------------------------------------------------------------ summary
    def _summary(self, stage_summaries: list[dict], final_path) -> dict:
        summary = {
            "kind": self.method.job_kind, "method": self.cfg.method, "out": str(self.run_dir),
            "checkpoint": str(final_path) if final_path else None, "global_step": self.pos.global_step,
            "world_size": self.world, "global_batch": self.per_step, "lr": self.lr, "stages": stage_summaries,
            "nonfinite_steps": self.nonfinite_total, "seconds": round(time.time() - self.t_start, 1),
            "videos": len(self.records),
            "videos_with_poses": self.pose_coverage.with_poses if self.pose_coverage is not None else None,
        }
        last = self.logs.last_epoch_metrics()
        if last is not None:
            summary["last_epoch_metrics"] = last
        if self.monitor is not None:
            summary["knn_monitor"] = self.monitor.summary()
        if self.rank == 0:
            atomic_write_json(self.run_dir / "summary.json", summary)
        return summary


def train(cfg: PretrainConfig, method_cls: type[Method], build: Callable[[], Method], resume: bool = False,
          fabric=None, hooks: dict | None = None) -> dict:
    """``Trainer(cfg, method_cls, build, fabric, hooks).fit(resume)``."""
    return Trainer(cfg, method_cls, build, fabric, hooks).fit(resume)


__all__ = ["DataWorkerDied", "Position", "ResumableSampler", "StopFlag", "StoppedBySignal", "Trainer",
           "TrainingDiverged", "learning_rate", "make_fabric", "resolve_stages", "stratified_subset", "train"]
