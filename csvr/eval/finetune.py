"""``csvr finetune`` and ``csvr linear-probe``: train a classifier on a pretrained encoder with the
training engine (checkpoints, resume, DDP, mixed precision as in pretraining), then evaluate it
on the test split: clip-level and video-level top-1 (the mean of the class scores of N
uniformly spaced clips), per-class accuracy and the confusion matrix (``results.json``).

Protocol (paper IV-B): init from the pretraining checkpoint except the last FC layer, dropout
0.3 before the classifier, SGD with a cosine schedule, UCF101 ``lr = 0.0001 x B``, weight decay
0.003; HMDB51 ``lr = 0.0002 x B``, weight decay 0.002; batch 32, 100 epochs; the pretraining
augmentation. ``csvr/configs/finetune/{ucf101,hmdb51}.yaml`` hold those settings.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np
import torch

from csvr.config import from_dict, to_dict
from csvr.data.datasets import ClipDataset
from csvr.data.index import load_manifest
from csvr.engine.checkpoint import CLASSIFIER_KINDS, HEAD_PREFIX, PRETRAIN_KIND, Checkpoint, load_weights
from csvr.engine.config import PretrainConfig
from csvr.engine.lock import RunLock, launch_rank
from csvr.engine.model import load_encoder
from csvr.engine.pretrain import print_summary
from csvr.engine.trainer import stratified_subset, train
from csvr.errors import CsvrError
from csvr.eval.classifier import Classifier, Supervised, SupervisedConfig, describe_network
from csvr.eval.features import report_left_out, run_eval
from csvr.eval.metrics import classification_report
from csvr.methods import get_method
from csvr.models.features import needs_poses
from csvr.pose_format.cache import check_coverage
from csvr.synth import CLASSES
from csvr.utils.io import atomic_write_json


@dataclass
class EvalConfig:
    clips: int = 10  # uniformly spaced clips per test video (video-level accuracy)
    batch_size: int = 8  # videos per batch
    subset: Literal["test", "train", "all"] = "test"
    split: Optional[str] = None  # default: data.split

    def __post_init__(self):
        if self.clips < 1 or self.batch_size < 1:
            raise ValueError("clips and batch_size must be >= 1")


@dataclass
class FinetuneConfig(PretrainConfig):
    method: str = "supervised"
    out: str = "runs/finetune"
    eval: EvalConfig = field(default_factory=EvalConfig)


def class_groups(manifest) -> dict[str, str]:
    """Fig. 4 groups (motion / context / both) of the built-in dataset's classes, when known."""
    groups = {c.name: c.group for c in CLASSES}
    if not all(c in groups for c in manifest.classes):
        return {}  # not the built-in dataset: groups unknown
    return {c: groups[c] for c in manifest.classes}


def classifier_on(encoder, ckpt: Checkpoint) -> Classifier:
    """The classifier of a finetune / linear-probe checkpoint around its (loaded) ``encoder``:
    the linear layer's weights and the class names come from the checkpoint (eval mode)."""
    mcfg = from_dict(SupervisedConfig, ckpt.config.get("model") or {}, where="model")
    classifier = Classifier(encoder, mcfg.num_classes, mcfg.classes, 0.0 if mcfg.freeze_encoder else mcfg.dropout)
    load_weights(classifier.head, ckpt.sub_state(HEAD_PREFIX), ckpt.path, "the classifier's linear layer its config "
                 f"describes ({mcfg.num_classes} classes)")
    return classifier.eval()


def load_classifier(path: str | os.PathLike, map_location="cpu"):
    """(``Classifier`` with the checkpoint's weights, checkpoint dict) from a finetune /
    linear-probe checkpoint. The architecture comes from the checkpoint's own config
    (:func:`csvr.engine.model.load_encoder`)."""
    ckpt = Checkpoint.load(path, map_location).require(*CLASSIFIER_KINDS, what="a finetuned classifier")
    return classifier_on(load_encoder(ckpt), ckpt), ckpt.raw


@torch.no_grad()
def predict(classifier, dataset: ClipDataset, batch_size: int = 8, workers: int = 0,
            device: torch.device | str = "cpu", desc: str = "evaluating") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits ``(V, N, C)``, labels ``(V,)`` and ``ok`` ``(V,)`` of an eval-mode dataset (rows with
    ``ok`` False are videos that could not be decoded: zeros, to be left out)."""
    classifier = classifier.to(device).eval()
    return run_eval(classifier, dataset, batch_size, workers, device, desc)


def evaluate_classifier(classifier, manifest, records, clip_cfg, clips: int = 10, pose_cache: str | None = None,
                        batch_size: int = 8, workers: int = 0, device=None) -> dict:
    """Clip/video top-1, per-class accuracy and confusion on ``records`` (paper IV-B protocol)."""
    if list(classifier.classes) != list(manifest.classes):
        raise CsvrError(f"the classifier's classes ({len(classifier.classes)}: {', '.join(classifier.classes[:5])}...) "
                        f"differ from the manifest's ({len(manifest.classes)}: {', '.join(manifest.classes[:5])}...)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    use_poses = classifier.encoder.needs_poses
    if use_poses and pose_cache is None:
        raise CsvrError(f"feature {classifier.feature!r} needs poses: give a pose cache")
    ds = ClipDataset(manifest, records, clip_cfg, mode="eval", num_clips=clips, pose_cache=pose_cache if use_poses else None)
    logits, labels, ok = predict(classifier, ds, batch_size, workers, device)
    left = report_left_out(ds, ok, "the test evaluation")
    if not ok.any():
        raise CsvrError(f"none of the {len(records)} test videos could be decoded, e.g. {left[0]}")
    report = classification_report(logits[ok], labels[ok], list(manifest.classes))
    report["video_ids"] = [r.id for r, k in zip(records, ok) if k]
    report["left_out_videos"] = left
    return report


def check_every_class_trained(manifest, records, cfg: FinetuneConfig, max_named: int = 10) -> None:
    """Refuse (:class:`CsvrError`, one line) a classifier job in which some of the manifest's
    classes have no training video: the videos the engine will train on (``records`` of
    ``data.split`` / ``data.subset``, cut to ``data.max_videos``, then ``data.label_fraction``
    of each class, as :class:`~csvr.engine.trainer.Trainer` selects them). Such a class, e.g.
    one whose only videos are in the test split, would be scored like any other and fail every
    test video silently."""
    chosen = records[: cfg.data.max_videos] if cfg.data.max_videos else records
    if cfg.data.label_fraction < 1.0:
        chosen = stratified_subset(chosen, cfg.data.label_fraction, cfg.train.seed)
    seen = {r.label for r in chosen}
    missing = [c for k, c in enumerate(manifest.classes) if k not in seen]
    if not missing:
        return
    named = ", ".join(missing[:max_named]) + (f" and {len(missing) - max_named} more" if len(missing) > max_named else "")
    where = f"the {cfg.data.subset} part of split {cfg.data.split} of {manifest.path}"
    cut = [f"data.max_videos={cfg.data.max_videos}"] if cfg.data.max_videos else []
    cut += [f"data.label_fraction={cfg.data.label_fraction:g}"] if cfg.data.label_fraction < 1.0 else []
    verb = "has" if len(missing) == 1 else "have"
    raise CsvrError(f"{len(missing)} of {manifest.num_classes} classes {verb} no training video in {where}"
                    f"{' with ' + ', '.join(cut) if cut else ''}: {named}; the classifier could never predict them: "
                    "give them training videos (re-index, e.g. csvr prepare index --test-ratio), choose another "
                    "data.split, or leave those classes out of the dataset")


def classifier_feature(model: dict, source: str, from_preset: bool = False) -> str:
    """The encoder feature of a classifier job: ``model["feature"]`` (default ``fi``) when the
    architecture's method (``model["arch_method"]``) has it. When it does not, a feature that is
    only the preset's default (``from_preset``: not the user's ``--feature``) gives way to the
    method's only feature (a CVRL / IIC checkpoint has only ``backbone``), said in one line on
    stderr; otherwise a :class:`CsvrError` naming the method's features. ``source``: the network's
    origin for the messages (the checkpoint, or ``model.arch``)."""
    method = str(model.get("arch_method") or "csvr")
    feature = str(model.get("feature") or "fi")
    have = tuple(get_method(method).features)
    if feature in have:
        return feature
    if from_preset and len(have) == 1:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"csvr: {source} is a {method} network, whose only feature is {have[0]!r}: using it instead of the "
                  f"preset's {feature!r} (pass --feature to choose)", file=sys.stderr)
        return have[0]
    scratch = model.get("init") == "scratch"
    hint = (f"; its random-init network: --feature {have[0]} model.init=scratch" if scratch else "")
    raise CsvrError(f"feature {feature!r}{' (--feature scratch)' if scratch and feature == 'fs' else ''} does not "
                    f"exist for {source}, a {method} network: its features are {', '.join(have)} (choose one with "
                    f"--feature){hint}")


def run_finetune(cfg: FinetuneConfig, resume: bool = False, linear: bool = False,
                 feature_from_preset: bool = False) -> dict:
    """Train (engine) then evaluate; writes ``results.json`` in the run folder and returns it.
    ``feature_from_preset``: ``model.feature`` is the preset's, not the user's choice, so a
    checkpoint whose method lacks it uses the method's only feature (:func:`classifier_feature`)."""
    if not cfg.data.manifest:
        raise CsvrError("data.manifest is required")
    manifest = load_manifest(cfg.data.manifest, root=cfg.data.root, allow_outside_root=cfg.data.allow_outside_root)
    if manifest.num_classes < 2:
        raise CsvrError(f"{cfg.data.manifest} has {manifest.num_classes} classes: finetuning needs labels")
    model = dict(cfg.model)
    given = model.get("classes")
    if given and list(given) != list(manifest.classes):
        raise CsvrError("model.classes differ from the manifest's classes")
    model["classes"], model["num_classes"] = list(manifest.classes), manifest.num_classes
    model["freeze_encoder"] = bool(linear or model.get("freeze_encoder", False))
    if model["freeze_encoder"]:
        model["dropout"] = 0.0
    if model.get("pretrained"):
        ckpt = Checkpoint.load(model["pretrained"]).require(PRETRAIN_KIND, what="a pretraining one")
        model["arch_method"], model["arch"] = ckpt.architecture
        model["pretrained"] = str(ckpt.path)  # a run folder given: the file it stands for
        del ckpt
        model["feature"] = classifier_feature(model, f"the checkpoint {model['pretrained']}", feature_from_preset)
    elif not model.get("arch"):  # never a silent default network (a scratch baseline must match the pretrained one)
        raise CsvrError("the classifier's network is not named: pass --pretrained CKPT (a pretraining checkpoint; with "
                        "--feature scratch only its architecture is used) or --model-config PRESET_OR_YAML (a "
                        "pretraining config, e.g. small-cpu), or set model.arch_method and model.arch")
    else:  # --model-config / model.arch
        model["feature"] = classifier_feature(model, "model.arch", feature_from_preset)
    cfg.model = model
    cfg.method = Supervised.name
    mcfg = from_dict(SupervisedConfig, model, where="model")
    network = describe_network(mcfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{'linear probe' if linear else 'finetune'} network: {network['text']}")
    # both selections are checked before any step: an empty test split found after training
    # would waste the whole run
    split = cfg.eval.split or cfg.data.split
    train_records = manifest.select_nonempty(cfg.data.split, cfg.data.subset, key="data.split / data.subset")
    check_every_class_trained(manifest, train_records, cfg)
    test_records = manifest.select_nonempty(split, cfg.eval.subset, key="eval.split / eval.subset")
    if needs_poses(mcfg.feature):
        check_coverage(cfg.data.pose_cache, [r.id for r in test_records], what=f"{cfg.eval.subset} videos",
                       source=str(manifest.path))
    # the run folder's lock covers the evaluation too (the trainer re-takes it as the same holder)
    lock = RunLock(cfg.out).acquire() if launch_rank() == 0 else None
    try:
        return _train_and_evaluate(cfg, mcfg, model, manifest, network, split, test_records, resume)
    finally:
        if lock is not None:
            lock.release()


def _train_and_evaluate(cfg, mcfg, model, manifest, network, split, test_records, resume) -> dict:
    summary = train(cfg, Supervised, lambda: Supervised.build(mcfg, cfg.data.color), resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:
        return summary
    print_summary(summary)
    classifier, state = load_classifier(summary["checkpoint"])
    report = evaluate_classifier(classifier, manifest, test_records, cfg.data.clip, cfg.eval.clips,
                                 cfg.data.pose_cache, cfg.eval.batch_size, cfg.data.workers)
    results = {
        "kind": state["kind"], "feature": model.get("feature", "fi"), "init": model.get("init", "pretrained"),
        "pretrained": model.get("pretrained"), "checkpoint": summary["checkpoint"], "classes": manifest.classes,
        "label_fraction": cfg.data.label_fraction, "eval_clips": cfg.eval.clips, "split": split,
        "class_groups": class_groups(manifest), "train_seconds": summary["seconds"], **report,
        "network": {k: v for k, v in network.items() if k != "text"}, "config": to_dict(cfg),
    }
    atomic_write_json(os.path.join(cfg.out, "results.json"), results)
    return results


def print_results(r: dict) -> None:
    print(f"{r['kind']} ({r['feature']}, {r['init']}): clip top-1 {100 * r['clip_top1']:.1f}%, "
          f"video top-1 {100 * r['video_top1']:.1f}% on {r['num_videos']} {r['split']}-split test videos "
          f"({r['eval_clips']} clips each)")
    if r.get("left_out_videos"):
        print(f"  {len(r['left_out_videos'])} unreadable test video(s) left out: {', '.join(r['left_out_videos'][:5])}")
    groups = r.get("class_groups") or {}
    if groups:
        for g in ("motion", "context", "both"):
            accs = [a for c, a in r["per_class"].items() if groups.get(c) == g and a is not None]
            if accs:
                print(f"  {g:8s} classes: {100 * float(np.mean(accs)):.1f}% (mean per-class accuracy)")
