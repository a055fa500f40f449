"""Atomic writes and safe paths.

Every file csvr writes that another job reads (manifests, caches, checkpoints, reports) goes
through :func:`atomic_write` or :func:`atomic_save_torch`: the data is written to a temporary
file in the same directory, flushed and fsync'ed, then renamed over the target with
``os.replace`` (atomic on POSIX). A killed process therefore leaves either the old file or the
new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from csvr.errors import OutsideRootError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600; give the file the permissions a plain open() would (0666 & ~umask)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=indent, sort_keys=False)
        f.write("\n")


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file + rename (see module docstring)."""
    import torch

    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def atomic_save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """``np.savez_compressed`` through a temporary file + rename. Arrays only, no pickles."""
    import numpy as np

    with atomic_write(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def resolve_inside(root: str | os.PathLike, relative: str | os.PathLike, *, allow_outside: bool = False,
                   what: str = "path") -> Path:
    """Join ``relative`` to ``root`` and refuse a result that escapes ``root`` *as written*.

    Paths read from manifests, split files and CSVs are untrusted: ``../../etc/passwd`` or an
    absolute path elsewhere must not make csvr read or write outside the dataset. The rule is
    lexical (``os.path.normpath``, no ``..`` escaping): symlinks *inside* the root are not
    followed for the check, so a dataset assembled from symlinks works, and where a link the user
    made points is the user's business. The returned path is the normalised one (what is opened).
    ``allow_outside=True`` (the user's explicit choice: ``--allow-outside-root`` or
    ``data.allow_outside_root=true``) lifts the check.
    """
    root_abs = Path(os.path.abspath(root))
    rel = Path(relative)
    full = Path(os.path.normpath(rel if rel.is_absolute() else root_abs / rel))
    if not allow_outside and not _within(full, root_abs) and not _within(full, root_abs.resolve()):
        raise OutsideRootError(what, str(relative), str(root_abs))
    return full


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"
