"""Any evaluation input checkpoint (pretraining, finetuning, linear probe) as the encoder the
evaluation commands run on: :func:`load_model` gives a :class:`LoadedModel`, built on the engine's
model contract (:func:`csvr.engine.model.load_trained`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from csvr.engine.model import load_trained
from csvr.errors import CsvrError
from csvr.eval.finetune import classifier_on


@dataclass
class LoadedModel:
    """What a checkpoint gives an evaluation command (built on :func:`csvr.engine.model.load_trained`).

    ``kind``: ``"pretrain"``, ``"finetune"``, ``"linear_probe"`` (or ``"random_init"``);
    ``encoder``: the :class:`~csvr.models.encoder.Encoder` (``feature``, ``out_dim``,
    ``needs_poses``, ``mean``/``std``); ``classifier``/``classes``: the finetuned classifier and its
    class names (None for a pretraining checkpoint); ``backbone``: the V-network (None for a
    pose-only ``fd`` model); ``config``: the job config stored in the checkpoint (its ``data.clip``:
    :func:`csvr.eval.options.clip_settings`).
    """

    path: str
    kind: str
    method: str
    feature: str
    encoder: nn.Module
    config: dict
    classifier: nn.Module | None = None
    classes: list[str] | None = None
    backbone: nn.Module | None = None


def load_model(path: str | Path, feature: str | None = None, random_init: bool = False, seed: int = 0
               ) -> LoadedModel:
    """Load a pretraining checkpoint (encoder of ``feature``; default: the method's first, ``fi``
    for CSVR) or a finetuning / linear-probe checkpoint (its classifier; ``feature`` must then be
    the one it was trained on). Clear :class:`CsvrError` for anything else.

    ``random_init``: the pretraining checkpoint's architecture with fresh random weights (seeded
    by ``seed``) - the "no pretraining" baseline of the same network.
    """
    trained = load_trained(path, feature, random_init=random_init, seed=seed)
    ckpt = trained.checkpoint
    if trained.method is not None:  # a pretraining checkpoint
        core = getattr(trained.method, "model", trained.method)
        return LoadedModel(path=str(ckpt.path), kind="random_init" if random_init else "pretrain",
                           method=trained.method.name, feature=trained.feature, encoder=trained.encoder,
                           config=dict(ckpt.config), backbone=getattr(core, "v_network", None))
    return from_classifier(classifier_on(trained.encoder, ckpt), ckpt.raw, str(ckpt.path))  # a run folder: its file


def from_classifier(classifier: nn.Module, state: dict, path: str) -> LoadedModel:
    """A :class:`LoadedModel` around a finetuned / linear-probe classifier (``encoder``, ``head``,
    ``classes``); ``state``: its checkpoint dict (``kind``, ``method``, ``config``)."""
    encoder = classifier.encoder
    cfg = dict(state.get("config") or {})
    method = state.get("method") or cfg.get("method") or "?"
    if method == "supervised":  # the finetuning job: name the architecture's method instead
        method = (cfg.get("model") or {}).get("arch_method") or method
    return LoadedModel(path=str(path), kind=str(state.get("kind")), method=str(method), feature=encoder.feature,
                       encoder=encoder, config=cfg, classifier=classifier, classes=list(classifier.classes),
                       backbone=getattr(encoder, "v_network", None))


def check_classes(model: LoadedModel, manifest) -> None:
    """A finetuned classifier's head must name the manifest's classes, in order."""
    if model.classes is None:
        return
    have, want = list(model.classes), list(manifest.classes)
    if have == want:
        return
    extra = [c for c in have if c not in want]
    missing = [c for c in want if c not in have]
    if not extra and not missing:
        detail = "the same classes in another order (labels would be permuted)"
    else:
        detail = (f"head only: {', '.join(extra[:8]) or '-'}{' ...' if len(extra) > 8 else ''}; "
                  f"dataset only: {', '.join(missing[:8]) or '-'}{' ...' if len(missing) > 8 else ''}")
    raise CsvrError(f"the classes of {model.path} ({len(have)}) differ from those of {manifest.path} ({len(want)}): "
                    f"{detail}")


__all__ = ["LoadedModel", "check_classes", "from_classifier", "load_model"]
