"""Dataset layouts ``csvr prepare index`` reads, one module each (:class:`csvr.utils.registry.Registry`).

A layout is a function ``scan(root, opts: LayoutOptions) -> LayoutScan`` registered with
:func:`register_layout` (``detect``: a test for ``--layout auto``, tried in ``order``; a layout
without one is chosen only by name). Adding a layout is adding one module here.
Registered: ``ucf101``, ``hmdb51``, ``folder`` (the ``auto`` fallback), ``csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from csvr.data.layouts._common import Entry, LayoutOptions, LayoutScan, video_id
from csvr.errors import DatasetError
from csvr.utils.registry import Registry

ScanFn = Callable[[Path, LayoutOptions], LayoutScan]

#: every layout reader (``detect``, ``order``: how ``--layout auto`` finds it, and where it is listed)
LAYOUTS: Registry[ScanFn] = Registry("layout", __name__, error=DatasetError)
FALLBACK = "folder"


def register_layout(name: str, detect: Callable[[Path], bool] | None = None, order: int = 100):
    """Decorator: register a layout reader (see the module docstring)."""
    return LAYOUTS.register(name, detect=detect, order=order)


def layout_names() -> list[str]:
    return LAYOUTS.names()


def detect_layout(root: Path) -> str:
    """The first layout (in ``order``) whose ``detect`` accepts ``root``; else ``folder``."""
    for name in LAYOUTS.names():
        detect = LAYOUTS.info(name)["detect"]
        if detect is not None and detect(root):
            return name
    return FALLBACK


def scan_layout(name: str, root: Path, opts: LayoutOptions) -> LayoutScan:
    """Run layout ``name``'s reader on ``root``."""
    if name not in LAYOUTS:
        raise DatasetError(f"unknown layout {name!r} (choose {', '.join(LAYOUTS.names())} or auto)")
    return LAYOUTS.get(name)(root, opts)


__all__ = ["Entry", "LAYOUTS", "LayoutOptions", "LayoutScan", "detect_layout", "layout_names", "register_layout",
           "scan_layout", "video_id"]
