"""Self-supervised methods, one file each, on one engine (solo-learn style).

Each module defines a :class:`csvr.methods.base.Method` subclass decorated with
:func:`register_method`; every module of this package is imported on first use
(:class:`csvr.utils.registry.Registry`), so adding a method means adding one file.
``get_method("csvr")`` returns the class.
"""

from __future__ import annotations

from csvr.methods.base import METHODS, Method, register_method


def list_methods() -> list[str]:
    return METHODS.names()


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name`` (:class:`ConfigError` naming the valid ones)."""
    return METHODS.get(name)


__all__ = ["Method", "get_method", "list_methods", "register_method"]
