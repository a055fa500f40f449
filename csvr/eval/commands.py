"""CLI: ``csvr finetune``, ``csvr linear-probe``, ``csvr retrieve``, ``csvr report``,
``csvr export``; and :func:`load_model`, which turns any evaluation input checkpoint (pretraining,
finetuning, linear probe) into the encoder those commands run on (through the engine's model
contract, :mod:`csvr.engine.model`)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only when a command runs (fast --help)
    from torch import nn

from csvr.errors import CsvrError
from csvr.models.features import FEATURE_NAMES, needs_poses

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- checkpoints
@dataclass
class LoadedModel:
    """What a checkpoint gives an evaluation command (built on :func:`csvr.engine.model.load_trained`).

    ``kind``: ``"pretrain"``, ``"finetune"``, ``"linear_probe"`` (or ``"random_init"``);
    ``encoder``: the :class:`~csvr.models.encoder.Encoder` (``feature``, ``out_dim``,
    ``needs_poses``, ``mean``/``std``); ``classifier``/``classes``: the finetuned classifier and its
    class names (None for a pretraining checkpoint); ``backbone``: the V-network (None for a
    pose-only ``fd`` model); ``config``: the job config stored in the checkpoint.
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

    @property
    def clip_settings(self) -> dict:
        data = self.config.get("data") if isinstance(self.config, dict) else None
        clip = data.get("clip") if isinstance(data, dict) else None
        return dict(clip) if isinstance(clip, dict) else {}


def load_model(path: str | Path, feature: str | None = None, random_init: bool = False, seed: int = 0
               ) -> LoadedModel:
    """Load a pretraining checkpoint (encoder of ``feature``; default: the method's first, ``fi``
    for CSVR) or a finetuning / linear-probe checkpoint (its classifier; ``feature`` must then be
    the one it was trained on). Clear :class:`CsvrError` for anything else.

    ``random_init``: the pretraining checkpoint's architecture with fresh random weights (seeded
    by ``seed``) - the "no pretraining" baseline of the same network.
    """
    from csvr.engine.model import load_trained

    trained = load_trained(path, feature, random_init=random_init, seed=seed)
    ckpt = trained.checkpoint
    if trained.method is not None:  # a pretraining checkpoint
        core = getattr(trained.method, "model", trained.method)
        return LoadedModel(path=str(ckpt.path), kind="random_init" if random_init else "pretrain",
                           method=trained.method.name, feature=trained.feature, encoder=trained.encoder,
                           config=dict(ckpt.config), backbone=getattr(core, "v_network", None))
    from csvr.eval.finetune import classifier_on

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


def clip_config(model: LoadedModel, frames: int | None = None, stride: int | None = None, size: int | None = None):
    """The checkpoint's clip settings (``data.clip`` of its config) with command-line overrides."""
    from csvr.config import from_dict
    from csvr.data.datasets import ClipConfig

    try:
        cfg = from_dict(ClipConfig, model.clip_settings, where="data.clip")
        over = {k: v for k, v in (("frames", frames), ("stride", stride), ("size", size)) if v is not None}
        return dataclasses.replace(cfg, **over)
    except (ValueError, TypeError) as e:
        raise CsvrError(f"clip settings: {e}") from None


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CsvrError(f"--device {name}: no CUDA device here")
    return name


def _ks(text: str) -> list[int]:
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CsvrError(f"--ks must be comma-separated positive integers, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise CsvrError(f"--ks must be comma-separated positive integers, got {text!r}")
    return sorted(set(ks))


def _check_pose_cache(pose_cache: str | None, feature: str, manifest, records) -> None:
    if not needs_poses(feature):
        return
    if not pose_cache:
        raise CsvrError(f"feature {feature!r} needs poses: pass --pose-cache (a cache made by 'csvr prepare poses'), "
                        "or use --feature fs / backbone")
    from csvr.pose_format.cache import check_coverage

    check_coverage(pose_cache, [r.id for r in records], key="--pose-cache", what="videos", source=str(manifest.path))


# ----------------------------------------------------------------------------- retrieve
def _run_retrieve(args) -> int:
    import numpy as np

    from csvr.data.index import load_manifest
    from csvr.eval.retrieval import format_recall_table, retrieve_videos
    from csvr.utils.io import atomic_save_npz, atomic_write_json, check_output_dir

    check_output_dir(args.out)
    ks = _ks(args.ks)
    model = load_model(args.checkpoint, args.feature, random_init=args.random_init, seed=args.seed)
    # paths are checked here, before any data-loader worker could hit one that leaves the root
    manifest = load_manifest(args.manifest, root=args.root, allow_outside_root=args.allow_outside_root)
    if not args.any_classes:
        check_classes(model, manifest)
    records = manifest.select_nonempty(args.split, "test", key="--split") + manifest.select_nonempty(
        args.split, "train", key="--split")
    _check_pose_cache(args.pose_cache, model.feature, manifest, records)
    clip = clip_config(model, args.frames, args.stride, args.size)
    if args.clips < 1:
        raise CsvrError(f"--clips must be >= 1, got {args.clips}")
    result, q, g = retrieve_videos(model.encoder, manifest, args.split, clip, num_clips=args.clips,
                                   pose_cache=args.pose_cache, ks=ks, backend=args.backend,
                                   device=_device(args.device), batch_size=args.batch_size, workers=args.workers,
                                   checkpoint=model.path)
    out = Path(args.out)
    doc = result.to_json()
    doc.update({"method": model.method, "checkpoint_kind": model.kind,
                "init": "random" if args.random_init else "checkpoint", "manifest": str(Path(args.manifest).resolve()),
                "root": args.root, "allow_outside_root": args.allow_outside_root, "split": args.split,
                "pose_cache": str(Path(args.pose_cache).resolve()) if args.pose_cache else None,
                "clip": dataclasses.asdict(clip)})
    if args.save_features:
        atomic_save_npz(out / "features.npz", query=q.videos.astype(np.float32), gallery=g.videos.astype(np.float32),
                        query_labels=q.labels, gallery_labels=g.labels)
    atomic_write_json(out / "retrieval.json", doc, indent=1)
    print(format_recall_table(result.recall, f"retrieval ({model.method} {model.kind}, feature {model.feature}): "
                                             f"{result.num_queries} test videos query {result.num_gallery} training "
                                             f"videos, {args.clips} clips per video, {result.backend}"))
    if result.left_out_videos:
        print(f"{len(result.left_out_videos)} unreadable video(s) left out: {', '.join(result.left_out_videos[:5])}")
    print(f"written: {out / 'retrieval.json'}")
    return 0


# ----------------------------------------------------------------------------- export
def input_description(model: LoadedModel, clip) -> dict[str, Any]:
    """How a user of the exported files prepares a clip as evaluation does (``export.json``'s
    ``input``): the normalisation the encoder declares, the clip length, the stride between its
    frames, the short side frames are scaled to and the centre crop's size."""
    from csvr.data.transforms import MEAN, STD

    mean = [float(v) for v in getattr(model.encoder, "mean", MEAN)]
    std = [float(v) for v in getattr(model.encoder, "std", STD)]
    out: dict[str, Any] = {
        "clip": "clip (B, 3, T, S, S) float32: RGB frames scaled to [0, 1], then (x - mean) / std per channel",
        "mean": mean, "std": std, "clip_frames": clip.frames, "frame_stride": clip.stride, "crop_size": clip.size,
        "resize_short_side": clip.decode_short_side,
        "frames": f"T = {clip.frames} frames taken every {clip.stride} frames of the video (a span of "
                  f"{(clip.frames - 1) * clip.stride + 1}); each frame scaled so that its short side is "
                  f"{clip.decode_short_side or 'unchanged'} px, then a centre {clip.size}x{clip.size} crop"}
    if needs_poses(model.feature):
        out["poses"] = ("poses (B, T, 18, 2) float32: COCO-18 joints of the same frames, body-centred and "
                        "torso-scaled as csvr.pose.normalize does; pose_conf (B, T, 18): their confidences in [0, 1]")
    return out


def export_model(model: LoadedModel, out_dir: str | Path, formats: list[str], opset: int = 17,
                 manifest=None, frames: int | None = None, size: int | None = None) -> dict:
    """Export ``model`` into ``out_dir``: ``torchvision`` (``<backbone>_torchvision.pt``) and/or
    ``onnx`` (``encoder-<feature>.onnx``, plus ``classifier.onnx`` for a finetuned model), and
    ``export.json`` describing them. Everything is produced and checked in memory first; files are
    written (atomically) only when every format succeeded."""
    from csvr.eval.export import (ExportError, backbone_name, example_inputs, export_onnx, metadata_for,
                                  state_dict_bytes, torchvision_state_dict_for, write_bytes)
    from csvr.utils.io import atomic_write_json

    bad = [f for f in formats if f not in ("torchvision", "onnx")]
    if bad or not formats:
        raise CsvrError(f"unknown --format {', '.join(bad) or '(none)'}; valid: torchvision, onnx")
    if manifest is not None:
        check_classes(model, manifest)
    clip = clip_config(model, frames=frames, size=size)
    files: dict[str, bytes] = {}
    info: dict[str, Any] = {"checkpoint": model.path, "kind": model.kind, "method": model.method,
                            "feature": model.feature, "backbone": backbone_name(model.backbone),
                            "classes": model.classes, "clip_frames": clip.frames, "clip_size": clip.size,
                            "input": input_description(model, clip), "files": {}}
    if "torchvision" in formats:
        fc = None
        note = None
        if model.classifier is not None:
            head = getattr(model.classifier, "head", None)
            from torch import nn

            if model.feature == "backbone" and isinstance(head, nn.Linear):
                fc = head
            else:
                note = (f"fc not included: the classifier's head sits on feature {model.feature!r}, not on the pooled "
                        "backbone that torchvision's fc reads")
        if model.backbone is None:
            raise ExportError(f"{model.path}: feature {model.feature!r} has no video backbone (pose-only model); the "
                              "torchvision format needs one")
        sd, tv = torchvision_state_dict_for(model.backbone, fc)
        if note:
            tv["note"] = note
        name = backbone_name(model.backbone).split(" ")[0].rstrip(",") + "_torchvision.pt"
        files[name] = state_dict_bytes(sd)
        info["files"][name] = {"format": "torchvision state dict", **tv}
    if "onnx" in formats:
        inputs = example_inputs(model.feature, clip.frames, clip.size)
        mean, std = info["input"]["mean"], info["input"]["std"]
        data, oi = export_onnx(model.encoder, inputs, "features", opset,
                               metadata=metadata_for(model.feature, clip.frames, clip.size, mean=mean, std=std,
                                                     stride=clip.stride))
        name = f"encoder-{model.feature}.onnx"
        files[name] = data
        info["files"][name] = {"format": "onnx", "model": "encoder", **oi}
        if model.classifier is not None:
            data, oi = export_onnx(model.classifier, inputs, "logits", opset,
                                   metadata=metadata_for(model.feature, clip.frames, clip.size, model.classes,
                                                         mean=mean, std=std, stride=clip.stride))
            files["classifier.onnx"] = data
            info["files"]["classifier.onnx"] = {"format": "onnx", "model": "classifier", **oi}
    out = Path(out_dir)
    for name, data in files.items():
        write_bytes(out / name, data)
    atomic_write_json(out / "export.json", info)
    return info


def _run_export(args) -> int:
    from csvr.data.index import load_manifest

    from csvr.eval.export import backbone_name, torchvision_compatible
    from csvr.utils.io import check_output_dir

    check_output_dir(args.out)
    model = load_model(args.checkpoint, args.feature)
    if args.format is None:  # default: ONNX, and the torchvision state dict where torchvision has the model
        formats = ["torchvision", "onnx"] if torchvision_compatible(model.backbone) else ["onnx"]
        if formats == ["onnx"]:
            print(f"torchvision format skipped: torchvision has no model of this backbone ({backbone_name(model.backbone)})")
    else:
        formats = [f.strip() for f in args.format.split(",") if f.strip()]
    # only its classes are read (never its videos), so its paths are not checked
    manifest = load_manifest(args.manifest, check_paths=False) if args.manifest else None
    info = export_model(model, args.out, formats, args.opset, manifest, args.frames, args.size)
    print(f"exported {model.kind} checkpoint {args.checkpoint} ({model.method}, feature {model.feature}, backbone "
          f"{info['backbone']}):")
    for name, fi in info["files"].items():
        if fi["format"] == "onnx":
            ins = ", ".join(f"{n} {s}" for n, s in fi["inputs"])
            print(f"  {Path(args.out) / name}: ONNX opset {fi['opset']}, inputs {ins}; onnxruntime vs PyTorch max abs "
                  f"diff {fi['max_abs_diff']:.2e}")
        else:
            print(f"  {Path(args.out) / name}: {fi['num_tensors']} tensors for {fi['torchvision_model']} "
                  f"({fi['load_with']}){'; ' + fi['note'] if fi.get('note') else ''}")
    print(f"  {Path(args.out) / 'export.json'}")
    return 0


# ----------------------------------------------------------------------------- report
def _run_report(args) -> int:
    from csvr.eval.report import build_report
    from csvr.utils.io import check_output_dir

    if not args.runs and args.study is None:
        raise CsvrError("csvr report: give run folders (RUN_DIR ...), --study PATH/study.json, or both")
    out = args.out
    if out is None:
        if args.runs:
            raise CsvrError("csvr report: --out is required with run folders (--out DIR)")
        out = "reports/study"  # --study alone: a default folder, as the study's one-line command in the README
    check_output_dir(out, "--out" if args.out else "the report folder (--out)")
    written = build_report(args.runs, out, samples=args.samples, title=args.title,
                           retrieval_examples=not args.no_retrieval_examples,
                           allow_outside_root=args.allow_outside_root, study=args.study)
    for p in written:
        print(f"written: {p}")
    return 0


# ----------------------------------------------------------------------------- parsers
def register_classifier_jobs(commands) -> None:
    """``csvr finetune`` and ``csvr linear-probe`` (same options; the latter freezes the encoder)."""
    for name, linear in (("finetune", False), ("linear-probe", True)):
        what = "a linear classifier on frozen features" if linear else "the whole network"
        p = commands.add_parser(
            name, help=f"train {what} on a labelled dataset from a pretraining checkpoint, then evaluate",
            description=f"Train {what} (engine: checkpoints, --resume, DDP) from a pretraining checkpoint, then "
                        "report clip- and video-level top-1, per-class accuracy and the confusion matrix on the "
                        "test split (results.json). Config: --config (YAML or a preset name in csvr/configs/finetune) plus "
                        "key=value overrides.",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=f"examples:\n  csvr {name} --config ucf101 --pretrained runs/csvr/checkpoints/step-000010000.pt "
                   "--feature fi data.manifest=data/UCF101/manifest.jsonl data.pose_cache=data/UCF101/poses\n"
                   f"  csvr {name} --config small-cpu --pretrained CKPT --feature scratch  # same net, random init\n"
                   f"  csvr {name} --config small-cpu --model-config small-cpu --feature scratch  # that preset's net, "
                   "random init\n"
                   f"  csvr {name} --config small-cpu --pretrained CKPT data.label_fraction=0.1  # 10% of the labels")
        p.add_argument("--config", "-c", default=None, help="YAML config or a preset name (csvr/configs/finetune), e.g. small-cpu")
        p.add_argument("--pretrained", default=None, help="pretraining checkpoint, or its run folder (the latest "
                       "checkpoint); model.pretrained")
        p.add_argument("--feature", default=None, choices=[*FEATURE_NAMES, "scratch"],
                       help="feature to build on; scratch = the fs network with random weights (Table I row 1), "
                            "its architecture from --pretrained (weights not used) or --model-config")
        p.add_argument("--model-config", default=None, metavar="PRESET_OR_YAML",
                       help="--feature scratch without --pretrained: the network of this pretraining config (a preset "
                            "name in csvr/configs/pretrain, e.g. small-cpu, or a YAML file): its method and model: "
                            "section (model.arch_method / model.arch)")
        p.add_argument("--label-fraction", type=float, default=None,
                       help="train on a stratified fraction of the training labels (data.label_fraction)")
        p.add_argument("--out", default=None, help="run folder (out=...)")
        p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
        p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
        p.add_argument("overrides", nargs="*", metavar="key=value")
        p.set_defaults(func=_run_finetune, linear=linear)


def _model_config_overrides(args) -> list[str]:
    """``--model-config``: the architecture of a pretraining config as ``model.arch_method`` /
    ``model.arch`` overrides (only for ``--feature scratch``; a pretrained run's network is its
    checkpoint's)."""
    import json

    from csvr.config import load_config, to_dict
    from csvr.engine.commands import resolve_config_path
    from csvr.engine.config import PretrainConfig
    from csvr.engine.model import method_config

    if args.feature != "scratch":
        raise CsvrError("--model-config names the network of a --feature scratch run; a pretrained run's network is "
                        "its checkpoint's (leave --model-config out)")
    if args.pretrained:
        raise CsvrError("give the scratch network once: --pretrained CKPT (its architecture) or --model-config, "
                        "not both")
    path = resolve_config_path(args.model_config, "pretrain")
    pcfg = load_config(PretrainConfig, path)
    method_config(pcfg)  # a bad method or model key fails here, naming it
    print(f"csvr: --model-config {args.model_config}: the {pcfg.method} network of {path} (model.arch), random "
          "weights", file=sys.stderr)  # stderr: --print-config's YAML stays clean
    # JSON is YAML flow syntax: the override carries the whole model: section as one value
    return [f"model.arch_method={pcfg.method}", f"model.arch={json.dumps(to_dict(pcfg)['model'])}"]


def _run_finetune(args) -> int:
    from csvr.config import dump_yaml, load_config
    from csvr.engine.commands import resolve_config_path
    from csvr.eval.finetune import FinetuneConfig, print_results, run_finetune
    from csvr.utils.io import check_output_dir

    from csvr.config import command_line_overrides

    overrides = command_line_overrides(args.overrides)
    if args.pretrained:
        overrides.append(f"model.pretrained={args.pretrained}")
    if args.model_config:
        overrides += _model_config_overrides(args)
    if args.feature == "scratch":
        overrides += ["model.feature=fs", "model.init=scratch"]
    elif args.feature:
        overrides.append(f"model.feature={args.feature}")
    if args.label_fraction is not None:
        overrides.append(f"data.label_fraction={args.label_fraction}")
    if args.out:
        overrides.append(f"out={args.out}")
    if args.resume and args.config is None:  # --out RUN --resume: the run's own config.yaml (and the overrides)
        from csvr.engine.commands import resume_config

        cfg = resume_config(FinetuneConfig, None, overrides, args.out)
    else:
        cfg = load_config(FinetuneConfig, resolve_config_path(args.config, "finetune"), overrides)
    from csvr.config import from_dict
    from csvr.eval.classifier import SupervisedConfig

    from_dict(SupervisedConfig, cfg.model, where="model")  # fail fast on a bad model key
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    check_output_dir(cfg.out, "--out" if args.out else "out (the run folder)")  # before the checkpoint or data
    # the preset's feature (not the user's --feature / model.feature=) gives way to a checkpoint
    # method's only one (a CVRL / IIC checkpoint has only backbone)
    preset_feature = args.feature is None and not any(o.split("=", 1)[0].strip() == "model.feature" for o in overrides)
    results = run_finetune(cfg, resume=args.resume, linear=args.linear, feature_from_preset=preset_feature)
    if "video_top1" in results:
        print_results(results)
    return 0


def register(commands, groups) -> None:
    from csvr.eval.inference import register as register_inference

    register_classifier_jobs(commands)
    register_inference(commands)  # csvr test, csvr predict
    fmt = argparse.RawDescriptionHelpFormatter
    p = commands.add_parser(
        "retrieve", help="nearest-neighbour video retrieval, Recall@k (paper Table VIII)", formatter_class=fmt,
        description="Every test video of the split queries the training videos. A video is the mean of the features "
                    "of N uniformly spaced, centre-cropped clips, L2-normalised; similarity is cosine; a query is a "
                    "hit at k when one of its k nearest training videos has its class (k is clamped to the number "
                    "of training videos). Exact search (faiss, or torch); ties go to the lower gallery index. "
                    "Writes OUT/retrieval.json.",
        epilog="examples:\n  csvr retrieve --checkpoint runs/csvr/checkpoints/step-000001000.pt --feature fi "
               "--manifest data/synth/manifest.jsonl --pose-cache data/synth/poses --out runs/csvr/retrieval-fi\n"
               "  csvr retrieve --checkpoint runs/finetune/checkpoints/step-000000500.pt --manifest "
               "data/ucf101/manifest.jsonl --out runs/finetune/retrieval\n")
    p.add_argument("--checkpoint", required=True, help="a pretraining or finetuning / linear-probe checkpoint, or a run "
                   "folder (its latest checkpoint)")
    p.add_argument("--feature", choices=FEATURE_NAMES, default=None,
                   help="encoder feature (pretraining checkpoints; default: fi for csvr, backbone for iic/cvrl; a "
                        "finetuned checkpoint uses its own)")
    p.add_argument("--manifest", required=True, help="manifest from 'csvr prepare index'")
    p.add_argument("--root", default=None, help="override the manifest's video root")
    p.add_argument("--pose-cache", default=None, help="pose cache (needed by fi and fd)")
    p.add_argument("--split", default="1", help="split whose test videos query its training videos (default 1)")
    p.add_argument("--clips", type=int, default=10, help="uniformly spaced clips per video (default 10)")
    p.add_argument("--ks", default="1,5,10,20,50", help="comma-separated k values (default 1,5,10,20,50)")
    p.add_argument("--frames", type=int, default=None, help="clip frames (default: the checkpoint's data.clip)")
    p.add_argument("--stride", type=int, default=None, help="clip stride (default: the checkpoint's)")
    p.add_argument("--size", type=int, default=None, help="crop size (default: the checkpoint's)")
    p.add_argument("--backend", choices=("auto", "faiss", "torch"), default="auto", help="search engine (default auto: "
                   "faiss when installed); both give identical results")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, default=8, help="videos per feature batch (default 8)")
    p.add_argument("--workers", type=int, default=2, help="data-loader workers (default 2)")
    p.add_argument("--any-classes", action="store_true",
                   help="allow a finetuned checkpoint whose classes differ from the dataset's (cross-dataset "
                        "retrieval with a finetuned encoder)")
    p.add_argument("--random-init", action="store_true",
                   help="the checkpoint's architecture with random weights (the no-pretraining baseline)")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-init (default 0)")
    p.add_argument("--save-features", action="store_true", help="also write OUT/features.npz (video features)")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="allow manifest paths that leave the dataset root as written (../x, absolute paths "
                        "elsewhere); symlinks inside the root need no flag")
    p.add_argument("--out", required=True, help="output folder (retrieval.json)")
    p.set_defaults(func=_run_retrieve)

    p = commands.add_parser(
        "report", help="an HTML page and a Markdown file with the tables and pictures of runs, side by side",
        formatter_class=fmt,
        description="RUN_DIR is a pretraining run (summary.json, metrics.csv, epochs.csv), a finetuning / "
                    "linear-probe run (results.json), or a folder written by 'csvr retrieve' (retrieval.json); a "
                    "run folder may also hold retrieval*/retrieval.json. --study adds the replication study "
                    "(benchmarks/study.py's study.json) with error bars. Writes OUT/report.html (self-contained: "
                    "images embedded), OUT/report.md and OUT/images/*.png.",
        epilog="examples:\n  csvr report runs/finetune-fd runs/finetune-fs runs/finetune-fi --out reports/table1\n"
               "  csvr report --study benchmarks/results/study.json --out reports/study\n")
    p.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run folders (optional with --study)")
    p.add_argument("--out", default=None, help="output folder (required with run folders; --study alone: reports/study)")
    p.add_argument("--study", default=None, metavar="PATH",
                   help="a study.json written by benchmarks/study.py: adds the 'Replication study' section (every "
                        "row and measure with its 95 %% CI, bar charts with error bars, gains over the random-init "
                        "control, the claims and goals with their answers)")
    p.add_argument("--title", default=None, help="page title")
    p.add_argument("--samples", action="store_true",
                   help="also draw CSVR sample pictures (predicted poses and frames) for CSVR pretraining runs "
                        "(reads the run's dataset and pose cache)")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="the pictures may read manifest paths that leave the dataset root as written (as the runs "
                        "themselves may have, with data.allow_outside_root=true or --allow-outside-root)")
    p.add_argument("--no-retrieval-examples", action="store_true",
                   help="skip the retrieval example pictures (they read the videos)")
    p.set_defaults(func=_run_report)

    p = commands.add_parser(
        "export", help="export an encoder: torchvision state dict (R3D-18 / R(2+1)D-18) and ONNX",
        formatter_class=fmt,
        description="torchvision: a plain state dict (tensors only) that torchvision.models.video.r3d_18() / "
                    "r2plus1d_18() loads (strict when a finetuned head on the pooled backbone gives fc.*). onnx: "
                    "the encoder (and the classifier of a finetuned checkpoint), opset >= 17, dynamic batch axis, "
                    "checked with onnxruntime against PyTorch (max abs difference <= 1e-4), exported with "
                    "torch.onnx.export(dynamo=False). Files are written only when every format succeeded.",
        epilog="example:\n  csvr export --checkpoint runs/csvr/checkpoints/step-000001000.pt --feature fi "
               "--out exported/\n")
    p.add_argument("--checkpoint", required=True, help="a pretraining or finetuning / linear-probe checkpoint, or a run "
                   "folder (its latest checkpoint)")
    p.add_argument("--feature", choices=FEATURE_NAMES, default=None,
                   help="encoder feature for ONNX (pretraining checkpoints)")
    p.add_argument("--format", default=None, help="comma-separated: torchvision, onnx (default: onnx, plus torchvision "
                   "for R3D-18 / R(2+1)D-18 backbones at 64 base channels)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default 17)")
    p.add_argument("--frames", type=int, default=None, help="clip frames of the ONNX example input (default: the "
                   "checkpoint's)")
    p.add_argument("--size", type=int, default=None, help="crop size of the ONNX example input (default: the "
                   "checkpoint's)")
    p.add_argument("--manifest", default=None, help="check that a finetuned head's classes are this dataset's")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_run_export)


__all__ = ["LoadedModel", "check_classes", "clip_config", "export_model", "from_classifier", "load_model", "register"]
