"""The method interface: what the training engine needs from a self-supervised method.

A method is an ``nn.Module`` holding every network it trains. The engine calls
``method(batch, stage)`` (so DDP sees a forward), backpropagates the ``total`` of the
:class:`csvr.losses.LossOutput` it returns once, and steps one optimiser over
``stage_parameters(stage)``. Methods own their data sampling (``train_dataset``) and the
device-side part of their augmentation, and say how to build the downstream encoder
(``encoder(feature)``). What methods share lives below them: backbones and
:class:`~csvr.models.backbones.BackboneConfig` in :mod:`csvr.models.backbones`, every head
(``projection_head`` included) in :mod:`csvr.models.heads`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csvr.data.transforms import ColorAugment, ColorAugmentConfig, normalize, to_float_clip
from csvr.losses import LossOutput
from csvr.models.encoder import BackboneEncoder, Encoder
from csvr.utils.registry import Registry

#: every method, one module of :mod:`csvr.methods` each
METHODS: Registry[type["Method"]] = Registry("method", "csvr.methods")


def register_method(name: str):
    """Class decorator: register a :class:`Method` subclass as ``name`` (also its ``name``)."""

    def deco(cls):
        cls.name = name
        return METHODS.register(name)(cls)

    return deco


@dataclass(frozen=True)
class PretextCheck:
    """One pretext signal set beside its trivial baseline (the engine's per-branch verdict).

    ``signal`` and ``baseline`` name metrics of :class:`LossOutput` (``baseline`` None for a
    gap, whose baseline is 0). The verdict is "learning" when, over the last half of a stage's
    logged steps, ``better`` holds:

    * ``"lower"``: mean(signal) <= ``factor`` x mean(baseline) (errors: beat copying / the mean);
    * ``"higher"``: mean(signal) >= ``factor`` x mean(baseline) (accuracies: beat chance);
    * ``"gap"``: mean(signal) >= ``factor`` (a critic that rates real above generated; a
      negative gap is a fooled critic, not a learning one).

    Otherwise "not above baseline".
    """

    branch: str
    signal: str
    baseline: str | None
    better: Literal["lower", "higher", "gap"]
    factor: float
    # "steps": the training batches' values (metrics.csv); "epochs": the method's held-out
    # diagnostics in epochs.csv when the run has them (the steps' values otherwise)
    source: Literal["steps", "epochs"] = "steps"


class Method(nn.Module, metaclass=abc.ABCMeta):
    """Base class of everything the engine trains (:class:`csvr.engine.trainer.Trainer`).

    Declared here, with a default, is every attribute and hook the engine reads; subclasses set
    ``config_class`` (a dataclass: the ``model:`` config section) and override what differs:

    * ``stages`` / ``default_stages``: the training stages it supports, in order, and those a
      config without ``train.stages`` runs; :meth:`check_stages` may refuse a schedule;
    * ``features``: the downstream encoder features :meth:`encoder` can build
      (:mod:`csvr.models.features`), the first one being the default;
    * ``pretext``: False for a job that is not self-supervised pretraining (``csvr pretrain``
      refuses it); ``job_kind``: the ``kind`` its checkpoints carry;
    * ``pretext_checks``: pretext signals judged against their trivial baselines at each stage's end;
      :meth:`signal_warnings`: the run's summary warns when the data lack what a pretext task needs;
    * :meth:`build_diagnostics` and ``diagnostic_stages``: held-out measurements at epoch ends;
    * :meth:`train_dataset`, :meth:`stage_parameters`, :meth:`parameter_roles`,
      :meth:`training_step` (through ``forward``), :meth:`encoder`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    stages: ClassVar[tuple[str, ...]] = ("main",)
    default_stages: ClassVar[tuple[str, ...]] = ("main",)
    features: ClassVar[tuple[str, ...]] = ("backbone",)
    pretext: ClassVar[bool] = True
    pretext_checks: ClassVar[tuple[PretextCheck, ...]] = ()
    diagnostic_stages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: Any, color: ColorAugmentConfig | None = None):
        super().__init__()
        self.cfg = cfg
        self.color = ColorAugment(color)

    # -------------------------------------------------------------- engine hooks
    @property
    def job_kind(self) -> str:
        """The ``kind`` of this job's checkpoints (``"pretrain"``; the classifier jobs of
        :mod:`csvr.eval.finetune` say ``"finetune"`` / ``"linear_probe"``)."""
        return "pretrain"

    def check_stages(self, stages: list[str]) -> None:
        """Refuse (:class:`~csvr.errors.ConfigError`) a schedule this configuration cannot run
        (default: every stage of ``stages`` is fine)."""

    @classmethod
    def signal_warnings(cls, means: dict[str, float]) -> list[str]:
        """Warnings printed with the run's summary when the data lack a signal this method's
        pretext tasks need, judged on ``means`` (each logged column's mean over the run's epochs,
        ``epochs.csv``). Default: none."""
        return []

    @abc.abstractmethod
    def train_dataset(self, manifest, records, clip_cfg, seed: int, pose_cache: str | None):
        """The pretraining dataset (a :mod:`csvr.data.datasets` object with ``set_epoch``)."""

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """Parameters the optimiser updates in ``stage`` (default: all)."""
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_roles(self) -> dict[str, list[nn.Parameter]]:
        """Every parameter in exactly one optimiser role (:mod:`csvr.engine.optim`): ``encoder``
        (SGD, the paper's rule), ``generator`` and ``critic`` (GAN networks, Adam by default).
        Default: everything is an encoder."""
        return {"encoder": [p for p in self.parameters() if p.requires_grad]}

    @abc.abstractmethod
    def training_step(self, batch: dict[str, Tensor], stage: str) -> LossOutput:
        """Losses of one batch (already on the device) in ``stage``."""

    def forward(self, batch: dict[str, Tensor], stage: str) -> LossOutput:  # called by the engine
        return self.training_step(batch, stage)

    def build_diagnostics(self, manifest, train_records, clip_cfg, pose_cache, split: str, videos: int, seed: int):
        """An epoch-end diagnostic of the stages ``diagnostic_stages``: a callable ``(method,
        device) -> {name: value}`` whose values go into that epoch's row of ``epochs.csv``
        (``train.diagnostics_videos`` clips); None (the default): none."""
        return None

    def encoder_state_keys(self, feature: str | None = None) -> set[str]:
        """The keys of :meth:`state_dict` that :meth:`encoder` (``feature``) is built from: the
        weights a downstream user of that feature needs. Default: all of them."""
        return set(self.state_dict())

    @abc.abstractmethod
    def encoder(self, feature: str | None = None) -> Encoder:
        """A standalone downstream :class:`~csvr.models.encoder.Encoder` of ``feature`` (one of
        ``features``; None: the first), weights copied from this method."""

    # -------------------------------------------------------------- helpers
    def augment_clip(self, clip_u8: Tensor, params=None) -> tuple[Tensor, Any]:
        """uint8 (B, T, H, W, 3) -> normalised float (B, 3, T, H, W) with batched colour augmentation."""
        x = to_float_clip(clip_u8)
        if params is None:
            params = self.color.sample(x.shape[0], x.device)
        return normalize(self.color.apply(x, params)), params


def pair_top1(a: Tensor, b: Tensor) -> Tensor:
    """Pretext accuracy of two-view methods: fraction of ``a_i`` whose most similar ``b`` is ``b_i``."""
    with torch.no_grad():
        sim = F.normalize(a.float(), dim=1) @ F.normalize(b.float(), dim=1).T
        return (sim.argmax(dim=1) == torch.arange(sim.shape[0], device=sim.device)).float().mean()


def detach_terms(values: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach() for k, v in values.items()}


__all__ = ["METHODS", "BackboneEncoder", "Encoder", "Method", "PretextCheck", "detach_terms", "pair_top1",
           "register_method"]
