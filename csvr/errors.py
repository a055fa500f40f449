"""Exceptions that mean "the user asked for something that cannot be done".

The CLI prints a :class:`CsvrError` as one line (``csvr: error: ...``) and exits non-zero,
without a traceback (``--debug`` shows it). Anything else that escapes is a bug in csvr.
"""

from __future__ import annotations


class CsvrError(Exception):
    """A user mistake or bad input: missing path, bad option, unknown config key, ..."""

    exit_code = 2


class ConfigError(CsvrError):
    """A config file or override that does not fit the typed config."""


class VideoError(CsvrError):
    """A video that cannot be opened or decoded (truncated, not a video, no video stream...)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class DatasetError(CsvrError):
    """A dataset layout, split file or manifest that does not make sense."""


class OutsideRootError(DatasetError):
    """A manifest / split-file path that leaves the dataset root *as written* (``../x``, an absolute
    path elsewhere). The message's advice names the option of the command that hit it: the CLI
    calls :meth:`with_advice` (``--allow-outside-root`` or ``data.allow_outside_root=true``)."""

    def __init__(self, what: str, path: str, root: str, advice: str = "pass allow_outside_root=True"):
        self.what, self.path, self.root, self.advice = what, path, root, advice
        super().__init__(f"{what} {path!r} points outside the dataset root {root!r} ({advice} if that is intended)")

    def with_advice(self, advice: str) -> "OutsideRootError":
        return OutsideRootError(self.what, self.path, self.root, advice)
