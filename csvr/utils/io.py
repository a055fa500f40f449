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

import numpy as np

from csvr.errors import CsvrError, OutsideRootError


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
    import torch  # not at the top: spawned data-generator workers import this module and never save tensors

    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def atomic_save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """``np.savez_compressed`` through a temporary file + rename. Arrays only, no pickles."""
    with atomic_write(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def _unwritable(path: Path) -> str | None:
    """Why a folder could not be created at ``path`` (None when it exists or could be): the first
    existing ancestor must be a folder csvr may write into (nothing is created to find out)."""
    for ancestor in path.parents:
        if os.path.lexists(ancestor):
            break
    else:  # pragma: no cover - the file-system root always exists
        return None
    if os.path.islink(ancestor) and not ancestor.exists():
        return f"{ancestor} is a broken symbolic link"
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable (permission denied)"
    return None


def _output_path(path: str | os.PathLike, what: str, give: str) -> Path:
    """``path`` made absolute; a broken symbolic link there is a :class:`CsvrError` (``give``
    says what to give instead)."""
    full = Path(os.path.abspath(path))
    if os.path.lexists(full) and not full.exists():
        raise CsvrError(f"{what} {path}: is a broken symbolic link (give {give})")
    return full


def _creatable(path: Path, message: str) -> Path:
    """``path`` when what is missing of it could be created (:func:`_unwritable`); else a
    :class:`CsvrError`: ``message`` and the reason."""
    reason = _unwritable(path)
    if reason:
        raise CsvrError(f"{message}: {reason}")
    return path


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """``path`` when csvr can write a folder of outputs there; else one :class:`CsvrError` line.

    Every command that writes calls this (or :func:`check_output_file`) first, before it probes
    data or loads a model: a file where the folder should be, a path under a file, a folder that
    cannot be created or is not writable would otherwise end a long job with a traceback. Nothing
    is created here; ``what`` names the option in the message (``--out``, ``--cache``).
    """
    given, path = path, _output_path(path, what, "a folder")
    if os.path.lexists(path):
        if not path.is_dir():
            raise CsvrError(f"{what} {given}: is a file, not a folder (give a folder, or remove the file)")
        if not os.access(path, os.W_OK | os.X_OK):
            raise CsvrError(f"{what} {given}: the folder is not writable (permission denied)")
        return path
    return _creatable(path, f"{what} {given}: the folder cannot be created")


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """``path`` when csvr can write a file there (atomically: a temporary file in its folder, then
    a rename); else one :class:`CsvrError` line (see :func:`check_output_dir`)."""
    given, path = path, _output_path(path, what, "a file path")
    if os.path.lexists(path) and path.is_dir():
        raise CsvrError(f"{what} {given}: is a folder, not a file (give a file path)")
    parent = path.parent
    if parent.is_dir():
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CsvrError(f"{what} {given}: cannot be written: {parent} is not writable (permission denied)")
        return path
    return _creatable(path, f"{what} {given}: cannot be written")


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
