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
