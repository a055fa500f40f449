"""Self-supervised methods, one file each, on one engine (solo-learn style).

Each module defines a :class:`csvr.methods.base.Method` subclass decorated with
:func:`register_method`; every module of this package is imported on first use, so adding a
method means adding one file. ``get_method("csvr")`` returns the class.
"""

from __future__ import annotations

import importlib
import pkgutil

from csvr.methods.base import METHODS, Method, register_method

_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True


def list_methods() -> list[str]:
    _load_all()
    return sorted(METHODS)


def get_method(name: str) -> type[Method]:
    from csvr.errors import ConfigError

    _load_all()
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; valid methods: {', '.join(sorted(METHODS))}") from None


__all__ = ["Method", "get_method", "list_methods", "register_method"]
