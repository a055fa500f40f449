"""``csvr pretrain``: self-supervised pretraining of a registered method on the engine.

:func:`pretrain` builds the config's method (:func:`csvr.engine.model.build_method`) and hands it
to the :class:`~csvr.engine.trainer.Trainer`; :func:`print_summary` prints what a training job did.
The loop itself (stages, steps, resume, checkpoints, signals) is :mod:`csvr.engine.trainer`, what
a run writes while it trains :mod:`csvr.engine.logging`, and how a trained model is loaded again
:mod:`csvr.engine.model`. The names below are kept here for existing imports.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from csvr.engine.checkpoint import Checkpoint
from csvr.engine.config import PretrainConfig
from csvr.engine.logging import pretext_verdicts
from csvr.engine.model import build_method, load_method, method_config
from csvr.engine.trainer import (ResumableSampler, TrainingDiverged, learning_rate, make_fabric, resolve_stages,
                                 stratified_subset, train)
from csvr.methods import METHODS


def pretrain(cfg: PretrainConfig, resume: bool = False, fabric=None, hooks: dict | None = None) -> dict:
    """Run (or resume) a pretraining job; returns the summary (also written to summary.json).

    ``hooks``: optional callables ``on_start(method, fabric)`` (after the weights are loaded,
    before the first step) and ``on_end(method, fabric)`` (after the last step, on every rank).
    """
    method_cls, _ = method_config(cfg)  # a bad method name or model key fails before anything starts
    return train(cfg, method_cls, lambda: build_method(cfg), resume=resume, fabric=fabric, hooks=hooks)


def load_pretrained(path: str | os.PathLike, map_location="cpu"):
    """(method instance with the checkpoint's weights, checkpoint dict) from a pretrain checkpoint
    (:func:`csvr.engine.model.load_method`)."""
    method, ckpt = load_method(Checkpoint.load(path, map_location))
    return method, ckpt.raw


def run_means(summary: dict) -> dict[str, float]:
    """Each numeric column's mean over the run's epochs (its ``epochs.csv``; the last epoch's
    values when that file cannot be read)."""
    try:
        with open(Path(summary["out"]) / "epochs.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, KeyError, TypeError):
        rows = [summary["last_epoch_metrics"]] if summary.get("last_epoch_metrics") else []
    values: dict[str, list[float]] = {}
    for row in rows:
        for k, v in row.items():
            try:
                values.setdefault(k, []).append(float(v))
            except (TypeError, ValueError):  # blank cells, the stage's name
                pass
    return {k: float(np.mean(v)) for k, v in values.items() if v}


def signal_warnings(summary: dict) -> list[str]:
    """The run's method's :meth:`~csvr.methods.base.Method.signal_warnings` on :func:`run_means`
    (none for a job that is not a registered method, e.g. finetuning)."""
    name = summary.get("method")
    if summary.get("kind", "pretrain") != "pretrain" or name not in METHODS:
        return []
    return METHODS.get(name).signal_warnings(run_means(summary))


def print_summary(summary: dict) -> None:
    what = {"pretrain": "pretraining", "finetune": "finetuning", "linear_probe": "linear probing"}.get(
        summary.get("kind", "pretrain"), "training")
    print(f"{what} done: method {summary['method']}, {summary['global_step']} steps in {summary['seconds']} s "
          f"(global batch {summary['global_batch']}, lr {summary['lr']:.3g}, {summary['world_size']} process(es))")
    if summary.get("videos_with_poses") is not None:
        print(f"  poses: {summary['videos_with_poses']} of {summary['videos']} training videos have poses")
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
    mon = summary.get("knn_monitor")
    if mon and mon["history"]:
        (s0, v0), (s1, v1) = mon["history"][0], mon["history"][-1]
        share = 100 * mon["seconds"] / max(float(summary["seconds"]), 1e-9)
        print(f"  kNN monitor ({mon['feature']}, k={mon['k']}, {mon['memory_videos']} memory / {mon['query_videos']} "
              f"query videos): top-1 {v0:.1f}% at step {s0} -> {v1:.1f}% at step {s1}; {len(mon['history'])} runs, "
              f"{mon['seconds']:.1f} s ({share:.1f}% of the run)")
    if summary["nonfinite_steps"]:
        print(f"  {summary['nonfinite_steps']} step(s) skipped for non-finite losses")
    for w in signal_warnings(summary):
        print(f"  warning: {w}")
    print(f"  checkpoint: {summary['checkpoint']}")
    print(f"  logs: {summary['out']}/metrics.csv, epochs.csv, tb/")


__all__ = ["ResumableSampler", "TrainingDiverged", "learning_rate", "load_pretrained", "make_fabric", "pretext_verdicts",
           "pretrain", "print_summary", "resolve_stages", "run_means", "signal_warnings", "stratified_subset"]
