"""The classifier of ``csvr finetune`` / ``csvr linear-probe``, and the :class:`Method` the engine
trains it as.

Finetuning (paper IV-B): the encoder is initialised from a pretraining checkpoint, all but the
last FC layer, and the chosen feature (``fi`` — the paper's choice —, ``fs``, ``fd``, or
``backbone``) feeds dropout (0.3) and a new linear classifier; everything is trained with SGD and
a cosine schedule, with the pretraining augmentation. ``pretrained: null`` or
``init: scratch`` trains the same architecture from random weights (Table I's first row).
Linear probing freezes the encoder (eval mode, no gradients) and trains only the linear layer.

The classifier is *given* its encoder (:func:`build_encoder`, through the engine's model contract
:mod:`csvr.engine.model`); :class:`Supervised` wraps it for the engine, which trains whatever
method it is handed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csvr.data.datasets import ClipDataset
from csvr.engine.checkpoint import Checkpoint
from csvr.engine.model import build_architecture, check_method_feature, load_trained, typed_model_config
from csvr.errors import ConfigError
from csvr.losses import LossOutput
from csvr.methods.base import Method
from csvr.models.encoder import Encoder
from csvr.models.features import FeatureName


@dataclass
class SupervisedConfig:
    pretrained: Optional[str] = None  # a pretraining checkpoint (its architecture, and its weights unless init=scratch)
    init: Literal["pretrained", "scratch"] = "pretrained"
    feature: FeatureName = "fi"
    arch_method: str = "csvr"  # architecture when there is no checkpoint: a method name ...
    arch: dict[str, Any] = field(default_factory=dict)  # ... and its model config
    num_classes: int = 0  # filled in from the manifest by the job
    classes: list[str] = field(default_factory=list)
    dropout: float = 0.3
    freeze_encoder: bool = False

    def __post_init__(self):
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")


def build_encoder(cfg: SupervisedConfig, load_weights: bool = True) -> tuple[Encoder, str]:
    """The encoder for ``cfg`` and a description of where its weights come from.

    The architecture is ``arch_method`` + ``arch`` (the finetuning job copies them from the
    pretraining checkpoint's config, so a finetuned checkpoint rebuilds without the pretraining
    file); the weights come from ``pretrained`` when ``init == "pretrained"`` and ``load_weights``.
    """
    if cfg.pretrained and cfg.init == "pretrained" and load_weights:
        trained = load_trained(cfg.pretrained, cfg.feature)
        return trained.encoder, f"{cfg.pretrained} (step {trained.checkpoint.step})"
    arch_method, arch = cfg.arch_method, cfg.arch
    if not arch and cfg.pretrained:  # the Python API with a checkpoint only: its architecture
        arch_method, arch = Checkpoint.load(cfg.pretrained).architecture
    if not arch:  # an empty model config would be the method's full-size default: never silently
        raise ConfigError("the classifier's network is not named: set model.pretrained (a pretraining checkpoint, "
                          "whose architecture is used) or model.arch_method and model.arch (--model-config)")
    method = build_architecture(arch_method, arch, where="model.arch")
    check_method_feature(arch_method, tuple(method.features), cfg.feature, f"method {arch_method!r}")
    origin = f"architecture of {cfg.pretrained}" if cfg.pretrained else f"{cfg.arch_method} architecture"
    return method.encoder(cfg.feature), f"random init ({origin})"


def describe_network(cfg: SupervisedConfig) -> dict[str, Any]:
    """What a classifier job trains: ``method`` (the architecture's), ``backbone``, ``width``,
    ``feature``, ``parameters`` (encoder + linear layer), ``init`` and a one-line ``text``. The
    network is built on the ``meta`` device (shapes only: no memory, no random draws)."""
    method_cls, typed = typed_model_config(cfg.arch_method, cfg.arch, where="model.arch")
    try:
        with torch.device("meta"):
            encoder = method_cls(typed, None).encoder(cfg.feature)
    except Exception:  # noqa: BLE001 - a module that cannot be built on meta: count it on the CPU
        encoder = method_cls(typed, None).encoder(cfg.feature)
    n = sum(p.numel() for p in encoder.parameters()) + (encoder.out_dim + 1) * cfg.num_classes
    bb = getattr(typed, "backbone", None)
    backbone, width = getattr(bb, "name", None), getattr(bb, "width", None)
    layers = getattr(bb, "layers", None)
    scratch = cfg.init == "scratch" or not cfg.pretrained
    init = "random init" if scratch else f"pretrained weights of {cfg.pretrained}"
    origin = f"of {cfg.pretrained}" if cfg.pretrained else "from model.arch"
    shape = f"backbone {backbone} width {width}" + (f" layers {list(layers)}" if layers else "") if backbone else \
        "no video backbone"
    text = (f"{cfg.arch_method} architecture {origin}, {shape}, feature {cfg.feature}, {n:,} parameters "
            f"(encoder + linear layer for {cfg.num_classes} classes), {init}")
    return {"method": cfg.arch_method, "backbone": backbone, "width": width, "feature": cfg.feature,
            "parameters": n, "init": "scratch" if scratch else "pretrained", "text": text}


class Classifier(nn.Module):
    """encoder -> dropout -> linear: ``forward(clip, poses=None, pose_conf=None) -> logits``."""

    def __init__(self, encoder: Encoder, num_classes: int, classes: list[str] | None = None, dropout: float = 0.3):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.out_dim, num_classes)
        self.classes = list(classes or [str(i) for i in range(num_classes)])

    @property
    def feature(self) -> str:
        return self.encoder.feature

    def features(self, clip: Tensor, poses: Tensor | None = None, pose_conf: Tensor | None = None) -> Tensor:
        return self.encoder.encode(clip, poses, pose_conf)

    def forward(self, clip: Tensor, poses: Tensor | None = None, pose_conf: Tensor | None = None) -> Tensor:
        return self.head(self.dropout(self.features(clip, poses, pose_conf)))


class Supervised(Method):
    """Not a pretext task: the engine trains it for ``csvr finetune`` / ``csvr linear-probe``.

    Its checkpoints are of kind ``finetune`` / ``linear_probe`` and method ``supervised``; the
    state dict holds ``classifier.encoder.*`` and ``classifier.head.*``
    (:data:`csvr.engine.checkpoint.ENCODER_PREFIX`)."""

    name = "supervised"
    config_class = SupervisedConfig
    pretext = False

    def __init__(self, cfg: SupervisedConfig, classifier: Classifier, color=None, source: str = ""):
        super().__init__(cfg, color)
        self.classifier = classifier
        self.source = source
        if cfg.freeze_encoder:
            for p in self.classifier.encoder.parameters():
                p.requires_grad_(False)
        self.train()

    @classmethod
    def build(cls, cfg: SupervisedConfig, color=None, load_weights: bool = True) -> "Supervised":
        """The classifier of ``cfg`` on the encoder :func:`build_encoder` gives, wrapped for the engine."""
        if cfg.num_classes < 2:
            raise ConfigError("the classifier needs at least 2 classes (model.num_classes)")
        encoder, source = build_encoder(cfg, load_weights)
        classifier = Classifier(encoder, cfg.num_classes, cfg.classes, 0.0 if cfg.freeze_encoder else cfg.dropout)
        return cls(cfg, classifier, color, source)

    @property
    def job_kind(self) -> str:
        return "linear_probe" if self.cfg.freeze_encoder else "finetune"

    @property
    def features(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.cfg.feature,)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.cfg.freeze_encoder:
            self.classifier.encoder.eval()  # frozen features: BatchNorm keeps its pretrained statistics
        return self

    def train_dataset(self, manifest, records, clip_cfg, seed, pose_cache=None):
        use_poses = self.classifier.encoder.needs_poses
        if use_poses and pose_cache is None:
            raise ConfigError(f"feature {self.cfg.feature!r} needs poses: set data.pose_cache")
        return ClipDataset(manifest, records, clip_cfg, mode="train", num_clips=1, seed=seed,
                           pose_cache=pose_cache if use_poses else None)

    def stage_parameters(self, stage: str):
        if self.cfg.freeze_encoder:
            return list(self.classifier.head.parameters())
        return list(self.classifier.parameters())

    def training_step(self, batch: dict[str, Tensor], stage: str) -> LossOutput:
        clip, _ = self.augment_clip(batch["clip"])
        poses = conf = None
        if "poses" in batch:
            poses, conf = batch["poses"][..., :2].float(), batch["poses"][..., 2].float()
        if self.cfg.freeze_encoder:
            with torch.no_grad():
                f = self.classifier.features(clip, poses, conf)
            logits = self.classifier.head(f)
        else:
            logits = self.classifier(clip, poses, conf)
        loss = F.cross_entropy(logits, batch["label"])
        top1 = (logits.detach().argmax(dim=1) == batch["label"]).float().mean()
        return LossOutput(total=loss, terms={"ce": loss.detach(), "total": loss.detach()},
                          metrics={"train_top1": top1})

    def encoder(self, feature: str | None = None) -> Encoder:
        return copy.deepcopy(self.classifier.encoder)


__all__ = ["Classifier", "Supervised", "SupervisedConfig", "build_encoder", "describe_network"]
