"""One registry style for everything csvr builds by name: methods, backbones, pose sources and
dataset layouts (timm's ``@register_model``, solo-learn's method dict).

A :class:`Registry` maps names to implementations of one kind. Each implementation lives in its
own module of the registry's package and registers itself with the decorator::

    LAYOUTS = Registry("layout", "csvr.data.layouts")

    @LAYOUTS.register("ucf101", detect=is_ucf101)      # in csvr/data/layouts/ucf101.py
    def scan_ucf101(root, ...): ...

The first lookup imports every module of the package (those starting with ``_`` excepted), so
adding an implementation is adding one file. Keyword arguments of ``register`` are kept as the
entry's metadata (``registry.info(name)``).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Generic, Iterator, TypeVar

from csvr.errors import ConfigError, CsvrError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> implementations of one ``kind`` (see the module docstring).

    ``package``: the dotted package whose modules register themselves (imported on first
    lookup); ``error``: the exception type of an unknown name (:class:`ConfigError` by default),
    whose message names the valid ones.
    """

    def __init__(self, kind: str, package: str | None = None, error: type[CsvrError] = ConfigError,
                 plural: str | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.package = package
        self.error = error
        self._items: dict[str, T] = {}
        self._info: dict[str, dict[str, Any]] = {}
        self._loaded = package is None

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (with ``info`` as metadata)."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            self._info[name] = dict(info)
            return obj

        return deco

    def load_all(self) -> None:
        """Import every module of the package (each registers what it defines)."""
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{self.package}.{mod.name}")

    def get(self, name: str) -> T:
        """The implementation registered as ``name``; ``error`` naming the valid ones otherwise."""
        self.load_all()
        try:
            return self._items[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; valid {self.plural}: {', '.join(self.names())}") from None

    def info(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._info[name]

    def names(self) -> list[str]:
        """Registered names: those registered with an ``order`` first (by it), then by name."""
        self.load_all()
        return sorted(self._items, key=lambda n: (self._info[n].get("order", float("inf")), n))

    def items(self) -> Iterator[tuple[str, T]]:
        return iter([(n, self._items[n]) for n in self.names()])

    def __contains__(self, name: object) -> bool:
        self.load_all()
        return name in self._items


__all__ = ["Registry"]
