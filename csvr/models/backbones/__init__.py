"""Backbone registry: every V-network and I-network of the paper, built by name.

``create_backbone(name, **kwargs)`` returns an ``nn.Module`` with an ``out_channels`` attribute
whose ``forward`` returns the last feature *map* (no pooling, no classifier):

* video backbones (V-network, paper IV-B): ``(B, 3, T, H, W) -> (B, C1, T1, H1, W1)``;
* image backbones (I-network): ``(B, 3, H, W) -> (B, C2, H2, W2)``.

Every backbone takes a ``width`` keyword (base channel count; the default builds the paper-size
network) so that tiny CPU presets (``width=8``) can be built; the ResNets also take ``layers``
(blocks per stage). Adding a backbone is adding one module here that registers its factory
with :func:`register_backbone`. Registered names: ``c3d``, ``r3d_18``, ``r2plus1d_18``, ``s3d`` (video) and
``r2d_10`` (image).

:class:`BackboneConfig` is the same call written as configuration (a ``backbone:`` section of a
method's ``model:`` config: name, width, layers, options); ``BackboneConfig.build()`` is
``create_backbone`` with those arguments. It lives here, beside the registry it names, so that
every method (CSVR, IIC, CVRL) takes its backbone from this module and none depends on another
method's model.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Sequence

from torch import nn

from csvr.errors import ConfigError
from csvr.utils.registry import Registry

BackboneKind = Literal["video", "image"]

#: every backbone, one module of this package each (``kind``: "video" or "image")
BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone", __name__)


def register_backbone(name: str, kind: BackboneKind) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``factory`` under ``name`` (``kind`` is ``"video"`` or ``"image"``)."""
    return BACKBONES.register(name, kind=kind)


def list_backbones(kind: BackboneKind | None = None) -> list[str]:
    """Registered backbone names (all, or only ``"video"`` / ``"image"`` ones), sorted."""
    return [n for n in BACKBONES.names() if kind is None or BACKBONES.info(n)["kind"] == kind]


def backbone_kind(name: str) -> BackboneKind:
    """``"video"`` or ``"image"``; :class:`ConfigError` for an unknown name."""
    return BACKBONES.info(name)["kind"]


def create_backbone(name: str, **kwargs) -> nn.Module:
    """Build backbone ``name`` with keyword arguments (``width``, ``layers``, ...).

    An unknown name or an argument the backbone does not take is a :class:`ConfigError` that
    names it and lists the valid ones.
    """
    factory = BACKBONES.get(name)
    params = inspect.signature(factory).parameters
    valid = [p for p in params if params[p].kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    bad = [k for k in kwargs if k not in valid]
    if bad:
        raise ConfigError(
            f"backbone {name!r} does not take option(s) {', '.join(map(repr, bad))}; valid options: {', '.join(valid)}"
        )
    return factory(**kwargs)


def check_width(width: int) -> None:
    """A backbone's base channel count must be positive (``ValueError`` otherwise)."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")


def check_resnet_shape(layers: Sequence[int], width: int) -> None:
    """A ResNet's ``layers`` (blocks per stage) must be four positive counts, and its ``width``
    positive (``ValueError`` otherwise)."""
    if len(layers) != 4 or any(int(n) < 1 for n in layers):
        raise ValueError(f"layers must be 4 positive block counts, got {list(layers)}")
    check_width(width)


@dataclass
class BackboneConfig:
    """A registered backbone by name plus its size knobs (``options``: extra keywords, e.g.
    ``{gating: false}`` for s3d or ``{batch_norm: false}`` for c3d)."""

    name: str = "r3d_18"
    width: int = 64
    layers: Optional[list[int]] = None   # blocks per stage (ResNets); None = the network's default
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        backbone_kind(self.name)  # ConfigError naming the bad name and the valid ones
        if self.width < 1:
            raise ValueError(f"backbone width must be >= 1, got {self.width}")
        if self.layers is not None and (len(self.layers) != 4 or min(self.layers) < 1):
            raise ValueError(f"backbone layers must be 4 positive block counts, got {self.layers}")

    def build(self) -> nn.Module:
        """The backbone: :func:`create_backbone` with ``options``, ``width`` and ``layers``."""
        kwargs = dict(self.options)
        kwargs["width"] = self.width
        if self.layers is not None:
            kwargs["layers"] = tuple(self.layers)
        return create_backbone(self.name, **kwargs)


__all__ = ["BACKBONES", "BackboneConfig", "backbone_kind", "check_resnet_shape", "check_width", "create_backbone",
           "list_backbones", "register_backbone"]
