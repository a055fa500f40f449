"""What a run writes while it trains: ``metrics.csv`` (one row per logged step), ``epochs.csv``
(per-epoch means of every loss term and pretext metric: Table II), ``tb/`` (TensorBoard), and the
pretext verdicts of ``summary.json`` (:func:`pretext_verdicts`).

Only rank 0 writes (:class:`RunLog` is inert elsewhere). On resume both CSV files drop the rows
after the checkpoint's step, so a resumed run's logs read as if it had never stopped.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from csvr.utils.io import atomic_write_text

log = logging.getLogger(__name__)


class CsvLog:
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


class TensorBoard:
    """Scalars to ``tb/`` when TensorBoard is importable (optional at run time)."""

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


def to_float(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Detached scalars as Python floats, with one device-to-host copy for all of them."""
    if not values:
        return {}
    keys = list(values)
    stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys]).cpu().tolist()
    return dict(zip(keys, stacked))


class EpochMeans:
    """Running sums of a stage-epoch's logged values and the time spent waiting for data."""

    def __init__(self):
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0
        self.wait = 0.0
        self.busy = 0.0

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] += v
        self.count += 1

    @property
    def wait_frac(self) -> float:
        return self.wait / max(self.wait + self.busy, 1e-9)

    def means(self) -> dict[str, float]:
        return {k: v / self.count for k, v in self.sums.items()}


class RunLog:
    """``metrics.csv``, ``epochs.csv`` and ``tb/`` of a run (written by rank 0 only)."""

    def __init__(self, run_dir: Path, enabled: bool, resume_step: int):
        self.steps = CsvLog(run_dir / "metrics.csv") if enabled else None
        self.epochs = CsvLog(run_dir / "epochs.csv") if enabled else None
        if self.steps is not None:
            self.steps.truncate_after(resume_step)
            self.epochs.truncate_after(resume_step)
        self.tb = TensorBoard(run_dir / "tb", enabled)

    def step(self, row: dict, stage: str, step: int) -> None:
        if self.steps is not None:
            self.steps.append(row)
            self.tb.scalars({k: v for k, v in row.items() if isinstance(v, float)}, step, f"train/{stage}")

    def epoch(self, means: EpochMeans, stage: str, epoch: int, step: int, extra: dict | None = None,
              drop: tuple[str, ...] = ()) -> None:
        """The epoch's means, with ``extra`` (held-out diagnostics) in place of same-named means;
        the means named in ``drop`` (the diagnostics' columns) are left out either way."""
        if means.count and self.epochs is not None:
            m = {**{k: v for k, v in means.means().items() if k not in drop}, **(extra or {})}
            self.epochs.append({"step": step, "stage": stage, "epoch": epoch, **m, "data_wait_frac": means.wait_frac})
            self.tb.scalars(m, epoch, f"epoch/{stage}")

    def verdicts(self, stage: str, checks) -> list[dict]:
        return pretext_verdicts(self.steps.rows, stage, checks, self.epochs.rows) if self.steps is not None else []

    def last_epoch_metrics(self) -> dict | None:
        if self.epochs is not None and self.epochs.rows:
            return {k: v for k, v in self.epochs.rows[-1].items() if k not in ("stage",)}
        return None

    def close(self) -> None:
        self.tb.close()


def pretext_verdicts(rows: list[dict], stage: str, checks, epoch_rows: list[dict] | None = None) -> list[dict]:
    """Each :class:`~csvr.methods.base.PretextCheck` whose columns the stage logged, judged on the
    mean over the last half of the stage's logged rows (``metrics.csv``; for a check whose
    ``source`` is ``epochs``, the stage's ``epochs.csv`` rows that hold the held-out diagnostics,
    when there are any): "learning" or "not above baseline"."""
    steps = [r for r in rows if r.get("stage") == stage]
    steps = steps[len(steps) // 2:]
    diag = [r for r in (epoch_rows or []) if r.get("stage") == stage and r.get("diag_clips") not in (None, "")]
    diag = diag[len(diag) // 2:]
    out = []
    for c in checks:
        source = "epochs" if getattr(c, "source", "steps") == "epochs" and diag else "steps"
        mine = diag if source == "epochs" else steps
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
            ok = value >= c.factor  # signed: a critic rating generated above real is fooled, not learning
        out.append({"branch": c.branch, "signal": c.signal, "value": value, "baseline": c.baseline,
                    "baseline_value": base, "rule": f"{c.better} {c.factor:g}", "rows": len(vals),
                    "source": "held-out (epochs.csv)" if source == "epochs" else "training batches (metrics.csv)",
                    "verdict": "learning" if ok else "not above baseline"})
    return out


__all__ = ["CsvLog", "EpochMeans", "RunLog", "TensorBoard", "pretext_verdicts", "to_float"]
