"""Progress display shared by every long job (tqdm, to stderr).

On a terminal the bar refreshes twice a second; in a log file (SLURM, CI) it prints a line at
most every 30 s so logs stay readable. ``CSVR_PROGRESS=0`` turns bars off.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("CSVR_PROGRESS", "1") not in ("0", "false", "no")


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", leave: bool = True, initial: int = 0, **kw) -> tqdm:
    tty = sys.stderr.isatty()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        initial=initial,
        disable=not progress_enabled(),
        mininterval=0.5 if tty else 30.0,
        dynamic_ncols=True,
        file=sys.stderr,
        **kw,
    )
