"""The old name of :mod:`csvr.synth` (the built-in dataset generator), kept so that existing
imports keep working: ``csvr.data.synth`` and its submodules are :mod:`csvr.synth`'s, and
``load_manifest`` is :func:`csvr.synth.read_synth_json`. New code imports :mod:`csvr.synth`."""

from __future__ import annotations

import importlib
import sys

from csvr.synth import *  # noqa: F401,F403
from csvr.synth import __all__ as _synth_all
from csvr.synth import read_synth_json as load_manifest

_SUBMODULES = ("catalogue", "commands", "dataset", "encode", "generator", "motions", "openpose", "readme", "render",
               "scenes", "skeleton")
for _name in _SUBMODULES:
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"csvr.synth.{_name}")

__all__ = [*_synth_all, "load_manifest"]
