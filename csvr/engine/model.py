"""One contract for trained models: build a method from a config, load one from a checkpoint,
get a downstream encoder out of any checkpoint.

Every command that builds or loads a model goes through here:

* :func:`method_config` / :func:`build_method` - the method class and its typed ``model:``
  config from a job config, and the method itself (``csvr pretrain``, the engine);
* :func:`build_architecture` - a method with random weights from a method name and a ``model:``
  dict (a classifier's encoder architecture, ``--feature scratch``);
* :func:`load_method` - a pretraining checkpoint's method with its weights (the report's samples);
* :func:`load_trained` / :func:`load_encoder` - the :class:`~csvr.models.encoder.Encoder` of a
  ``feature`` from a pretraining checkpoint (or its architecture with fresh weights,
  ``random_init``), or the encoder a finetuned / linear-probe checkpoint was trained with
  (``csvr finetune``, ``retrieve``, ``export``, ``report``).

The encoder declares ``feature``, ``out_dim``, ``needs_poses`` and the ``mean``/``std`` the
checkpoint says its clips were normalised with (:mod:`csvr.models.encoder`); the feature names
and the needs-poses rule are :mod:`csvr.models.features`'.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from csvr.config import from_dict
from csvr.engine.checkpoint import CLASSIFIER_KINDS, ENCODER_PREFIX, PRETRAIN_KIND, Checkpoint, load_weights
from csvr.engine.config import PretrainConfig
from csvr.errors import ConfigError, CsvrError
from csvr.methods import get_method
from csvr.methods.base import Method
from csvr.models.encoder import Encoder

log = logging.getLogger(__name__)


def typed_model_config(method: str, model: Mapping[str, Any], where: str = "model") -> tuple[type[Method], Any]:
    """The class of method ``method`` and its typed config from a ``model:`` dict (checked: a bad
    key is a :class:`ConfigError` naming it and the section ``where``), without building networks."""
    method_cls = get_method(method)
    return method_cls, from_dict(method_cls.config_class, dict(model), where=where)


def build_architecture(method: str, model: Mapping[str, Any], color=None, where: str = "model") -> Method:
    """Method ``method`` built from its ``model:`` config dict, with random weights."""
    method_cls, model_cfg = typed_model_config(method, model, where)
    return method_cls(model_cfg, color)


def method_config(cfg: PretrainConfig) -> tuple[type[Method], Any]:
    """The method class of a job config and its typed ``model:`` section."""
    return typed_model_config(cfg.method, cfg.model)


def build_method(cfg: PretrainConfig) -> Method:
    """The method of a job config, with random weights (the engine seeds first)."""
    method_cls, model_cfg = method_config(cfg)
    return method_cls(model_cfg, cfg.data.color)


#: why a checkpoint's weights would not fit the model its own config describes
_DRIFT = ("its weights and its config disagree (a checkpoint edited by hand, or written by another csvr version "
          "whose networks differ); use a checkpoint written by this csvr, or train again")


def _checkpoint(source: str | os.PathLike | Checkpoint) -> Checkpoint:
    return source if isinstance(source, Checkpoint) else Checkpoint.load(source)


def load_method(source: str | os.PathLike | Checkpoint, feature: str | None = None) -> tuple[Method, Checkpoint]:
    """(the method of a pretraining checkpoint with its weights, the checkpoint).

    Every weight must fit, except with ``feature`` (a downstream use of that feature's encoder
    only): then weights that this csvr's networks describe differently *outside* that encoder
    (an older csvr's video generators, issue 23) are left at random with a warning, and the
    method's ``weights_not_loaded`` lists them; a difference inside the encoder is still an error.
    """
    ckpt = _checkpoint(source).require(PRETRAIN_KIND, what="a pretraining one")
    method = build_method(from_dict(PretrainConfig, ckpt.config))
    what = f"the {method.name} model its own config describes"
    own, given = method.state_dict(), ckpt.state
    differ = sorted({k for k in own if k not in given or tuple(given[k].shape) != tuple(own[k].shape)}
                    | {k for k in given if k not in own})
    if differ and feature is not None and not set(differ) & method.encoder_state_keys(feature):
        method.load_state_dict({k: v for k, v in given.items() if k in own and k not in differ}, strict=False)
        method.weights_not_loaded = differ
        log.warning("csvr: %s: %d weight(s) outside the %s encoder do not fit this csvr's %s model (e.g. %s: written "
                    "by an older csvr); the %s encoder is loaded, those weights are not", ckpt.path, len(differ),
                    feature, method.name, differ[0], feature)
        return method, ckpt
    load_weights(method, given, ckpt.path, what, _DRIFT)
    method.weights_not_loaded = []
    return method, ckpt



def pretrain_feature(ckpt: Checkpoint, feature: str | None = None, method: str | None = None) -> str:
    """The encoder feature to take from a pretraining checkpoint: ``feature``, or by default its
    method's first (``fi`` for CSVR, ``backbone`` for IIC / CVRL); a feature the method does not
    have is a :class:`CsvrError` naming those it has. ``method``: the checkpoint config's, when
    already read (:class:`PretrainConfig`'s default when the config names none)."""
    method = method or str(ckpt.config.get("method") or PretrainConfig.method)
    feats = tuple(get_method(method).features)
    feature = feature or feats[0]
    if feature not in feats:
        raise CsvrError(f"{ckpt.path} is a {method!r} pretraining checkpoint; its encoder features are "
                        f"{', '.join(feats)}, not {feature!r}")
    return feature


@dataclass
class TrainedModel:
    """What :func:`load_trained` gives: the checkpoint, the encoder of ``feature`` and, for a
    pretraining checkpoint, the whole method (None for a classifier checkpoint, which holds the
    encoder's weights only)."""

    checkpoint: Checkpoint
    feature: str
    encoder: Encoder
    method: Method | None = None


def load_trained(source: str | os.PathLike | Checkpoint, feature: str | None = None, *, random_init: bool = False,
                 seed: int = 0) -> TrainedModel:
    """The encoder of any checkpoint csvr writes (see :func:`load_encoder`), with its method."""
    ckpt = _checkpoint(source)
    path = ckpt.path
    if ckpt.kind == PRETRAIN_KIND:
        cfg = from_dict(PretrainConfig, ckpt.config)
        feature = pretrain_feature(ckpt, feature, cfg.method)
        if random_init:
            torch.manual_seed(seed)
            method = build_method(cfg)
        else:
            method, _ = load_method(ckpt, feature)  # the encoder's weights must fit; the rest may not
        encoder = method.encoder(feature)
    elif ckpt.kind in CLASSIFIER_KINDS:
        if random_init:
            raise CsvrError(f"--random-init needs a pretraining checkpoint (its architecture); {path} is a "
                            f"{ckpt.kind!r} one")
        have = ckpt.feature
        if feature is not None and feature != have:
            raise CsvrError(f"{path} was finetuned on feature {have!r}; --feature {feature} does not match it (leave "
                            "--feature out, or use the pretraining checkpoint for other features)")
        name, arch = ckpt.architecture
        encoder = build_architecture(name, arch, where="model.arch").encoder(have)
        load_weights(encoder, ckpt.sub_state(ENCODER_PREFIX), ckpt.path,
                     f"the {name} {have} encoder its own config describes", _DRIFT)
        feature, method = have, None
    else:
        raise CsvrError(f"{path} is a {ckpt.kind!r} checkpoint; expected a pretraining ('csvr pretrain') or a "
                        "finetuning / linear-probe checkpoint")
    encoder.mean, encoder.std = ckpt.mean, ckpt.std
    return TrainedModel(ckpt, feature, encoder, method)


def load_encoder(source: str | os.PathLike | Checkpoint, feature: str | None = None, *, random_init: bool = False,
                 seed: int = 0) -> Encoder:
    """The downstream :class:`~csvr.models.encoder.Encoder` of a checkpoint.

    A pretraining checkpoint gives the encoder of ``feature`` (default: its method's first, ``fi``
    for CSVR, ``backbone`` for IIC / CVRL), with the checkpoint's weights or, ``random_init``, the
    same architecture with fresh weights seeded by ``seed`` (the no-pretraining baseline). A
    finetuning / linear-probe checkpoint gives the encoder it trained (``feature``, if given, must
    be that one). Anything else is a :class:`CsvrError` that says what was expected.
    """
    return load_trained(source, feature, random_init=random_init, seed=seed).encoder


def check_method_feature(method: str, features: tuple[str, ...], feature: str, where: str) -> None:
    """``feature`` must be one of a method's ``features`` (a :class:`ConfigError` otherwise)."""
    if feature not in features:
        raise ConfigError(f"feature {feature!r} does not exist for {where} (it has {', '.join(features)})")


__all__ = ["Checkpoint", "TrainedModel", "build_architecture", "build_method", "check_method_feature", "load_encoder",
           "load_method", "load_trained", "method_config", "pretrain_feature", "typed_model_config"]
