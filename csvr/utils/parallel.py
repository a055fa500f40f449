"""A process pool with a progress bar, used by every job that works file by file.

Results are yielded as they complete (so the caller can write them out incrementally and a
killed job loses at most the items in flight). Worker processes are started with ``spawn``:
csvr's jobs load libraries (PyAV, MediaPipe, torch) whose thread pools do not survive ``fork``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence, TypeVar

from csvr.errors import CsvrError
from csvr.utils.progress import progress

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def imap_progress(fn: Callable[[T], R], items: Sequence[T], *, workers: int = 0, desc: str = "",
                  unit: str = "it", initializer: Callable[..., Any] | None = None,
                  initargs: tuple = (), max_in_flight: int | None = None) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` in completion order, with a progress bar.

    ``workers <= 1`` runs in this process (no pool), which is what tests and debuggers want.
    ``fn`` must be a module-level function; it should catch its own per-item errors and return
    them as data, so one bad item never stops the job.
    """
    items = list(items)
    bar = progress(total=len(items), desc=desc, unit=unit)
    try:
        if workers <= 1 or len(items) <= 1:
            if initializer is not None:
                initializer(*initargs)
            for item in items:
                yield item, fn(item)
                bar.update(1)
            return
        limit = max_in_flight or workers * 4
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=initializer,
                                 initargs=initargs) as pool:
            it = iter(items)
            pending: dict[Future, T] = {}
            for item in it:
                pending[pool.submit(fn, item)] = item
                if len(pending) >= limit:
                    break
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    item = pending.pop(fut)
                    yield item, fut.result()
                    bar.update(1)
                    nxt = next(it, None)
                    if nxt is not None:
                        pending[pool.submit(fn, nxt)] = nxt
    finally:
        bar.close()


def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """Items ``index, index + count, ...``: shard ``index`` of ``count`` (0-based, stable)."""
    if count < 1 or not 0 <= index < count:
        raise CsvrError(f"bad shard {index}/{count}: need 0 <= i < n")
    return list(items[index::count])


def parse_shard(text: str | None) -> tuple[int, int]:
    """Parse ``--shard i/n`` (0-based ``i``); ``None`` falls back to torchrun's RANK/WORLD_SIZE."""
    if text is None:
        rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
        world = int(os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1")))
        return rank, world
    try:
        i, n = text.split("/")
        i, n = int(i), int(n)
    except ValueError:
        raise CsvrError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise CsvrError(f"--shard {text}: need 0 <= i < n")
    return i, n
