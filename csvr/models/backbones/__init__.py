"""Backbone registry: every V-network and I-network of the paper, built by name.

``create_backbone(name, **kwargs)`` returns an ``nn.Module`` with an ``out_channels`` attribute
whose ``forward`` returns the last feature *map* (no pooling, no classifier):

* video backbones (V-network, paper IV-B): ``(B, 3, T, H, W) -> (B, C1, T1, H1, W1)``;
* image backbones (I-network): ``(B, 3, H, W) -> (B, C2, H2, W2)``.

Every backbone takes a ``width`` keyword (base channel count; the default builds the paper-size
network) so that tiny CPU presets (``width=8``) can be built; the ResNets also take ``layers``
(blocks per stage). Registered names: ``c3d``, ``r3d_18``, ``r2plus1d_18``, ``s3d`` (video) and
``r2d_10`` (image).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Literal

from torch import nn

from csvr.errors import ConfigError

BackboneKind = Literal["video", "image"]


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., nn.Module]
    kind: BackboneKind


_REGISTRY: dict[str, _Entry] = {}


def register_backbone(name: str, kind: BackboneKind) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``factory`` under ``name`` (``kind`` is ``"video"`` or ``"image"``)."""

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} registered twice")
        _REGISTRY[name] = _Entry(factory, kind)
        return factory

    return deco


def list_backbones(kind: BackboneKind | None = None) -> list[str]:
    """Registered backbone names (all, or only ``"video"`` / ``"image"`` ones), sorted."""
    return sorted(n for n, e in _REGISTRY.items() if kind is None or e.kind == kind)


def backbone_kind(name: str) -> BackboneKind:
    """``"video"`` or ``"image"``; :class:`ConfigError` for an unknown name."""
    return _entry(name).kind


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown backbone {name!r}; valid backbones: {', '.join(list_backbones())}")
    return _REGISTRY[name]


def create_backbone(name: str, **kwargs) -> nn.Module:
    """Build backbone ``name`` with keyword arguments (``width``, ``layers``, ...).

    An unknown name or an argument the backbone does not take is a :class:`ConfigError` that
    names it and lists the valid ones.
    """
    entry = _entry(name)
    params = inspect.signature(entry.factory).parameters
    valid = [p for p in params if params[p].kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    bad = [k for k in kwargs if k not in valid]
    if bad:
        raise ConfigError(
            f"backbone {name!r} does not take option(s) {', '.join(map(repr, bad))}; valid options: {', '.join(valid)}"
        )
    return entry.factory(**kwargs)


# Importing the modules registers them.
from csvr.models.backbones import c3d, r2d, r2plus1d, r3d, s3d  # noqa: E402,F401

__all__ = ["backbone_kind", "create_backbone", "list_backbones", "register_backbone"]
