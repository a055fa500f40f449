"""The evaluation commands: ``csvr finetune``, ``csvr linear-probe``, ``csvr test``,
``csvr predict``, ``csvr retrieve``, ``csvr report``, ``csvr export``, ``csvr knn`` and
``csvr video-quality``.

The one command module of :mod:`csvr.eval` (listed in :data:`csvr.cli.COMMAND_MODULES`): its
:func:`register` adds their parsers, and each handler reads the command line and calls the
library that does the work - :mod:`csvr.eval.finetune` (finetune, linear-probe),
:mod:`csvr.eval.inference` (test, predict), :mod:`csvr.eval.retrieval` (retrieve),
:mod:`csvr.eval.report` (report), :mod:`csvr.eval.export` (export), :mod:`csvr.eval.frozen`
(knn), :mod:`csvr.eval.video_quality` (video-quality); checkpoints are loaded by
:mod:`csvr.eval.loading`, and the options several commands share are :mod:`csvr.eval.options`'.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from csvr.config import command_line_overrides, dump_yaml, from_dict, load_config, to_dict
from csvr.data.index import load_manifest
from csvr.engine.checkpoint import Checkpoint
from csvr.engine.commands import resolve_config_path, resume_config
from csvr.engine.config import PretrainConfig
from csvr.engine.model import method_config, pretrain_feature
from csvr.errors import CsvrError
from csvr.eval import frozen, inference, video_quality
from csvr.eval.classifier import SupervisedConfig
from csvr.eval.export import backbone_name, export_model, torchvision_compatible
from csvr.eval.finetune import FinetuneConfig, print_results, run_finetune
from csvr.eval.knn import KNN_TAU
from csvr.eval.loading import check_classes, load_model
from csvr.eval.options import (add_allow_outside_root_option, add_checkpoint_option, add_clip_options,
                               add_clips_option, add_device_option, add_feature_batch_options, add_manifest_options,
                               add_pose_cache_option, add_workers_option, check_pose_cache, clip_settings,
                               resolve_device)
from csvr.eval.report import build_report
from csvr.eval.retrieval import format_recall_table, retrieve_videos
from csvr.models.features import FEATURE_NAMES
from csvr.utils.io import (atomic_save_npz, atomic_write_json, atomic_write_text, check_output_dir,
                           check_output_file)

FORMATTER = argparse.RawDescriptionHelpFormatter


# ----------------------------------------------------------------------------- finetune, linear-probe
def _model_config_overrides(args) -> list[str]:
    """``--model-config``: the architecture of a pretraining config as ``model.arch_method`` /
    ``model.arch`` overrides (only for ``--feature scratch``; a pretrained run's network is its
    checkpoint's)."""
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
        cfg = resume_config(FinetuneConfig, None, overrides, args.out)
    else:
        cfg = load_config(FinetuneConfig, resolve_config_path(args.config, "finetune"), overrides)
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


def _add_classifier_jobs(commands) -> None:
    """``csvr finetune`` and ``csvr linear-probe`` (same options; the latter freezes the encoder)."""
    for name, linear in (("finetune", False), ("linear-probe", True)):
        what = "a linear classifier on frozen features" if linear else "the whole network"
        p = commands.add_parser(
            name, help=f"train {what} on a labelled dataset from a pretraining checkpoint, then evaluate",
            description=f"Train {what} (engine: checkpoints, --resume, DDP) from a pretraining checkpoint, then "
                        "report clip- and video-level top-1, per-class accuracy and the confusion matrix on the "
                        "test split (results.json). Config: --config (YAML or a preset name in csvr/configs/finetune) plus "
                        "key=value overrides.",
            formatter_class=FORMATTER,
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


# ----------------------------------------------------------------------------- test, predict
def _run_test(args) -> int:
    def run_folder() -> Path:  # where the default output goes: beside the checkpoint's run
        ckpt = inference.resolve_checkpoint(args.checkpoint)
        return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent

    # the output folder is checked before the checkpoint and the data are read (the default one's
    # name needs the checkpoint's split and subset: its run folder is checked instead)
    if args.out is not None:
        check_output_dir(args.out)
    elif Path(args.checkpoint).exists():  # a missing checkpoint is run_test's message
        check_output_dir(run_folder(), "the run folder of --checkpoint")
    report = inference.run_test(args.checkpoint, args.manifest, args.root, args.pose_cache, args.split, args.subset,
                                args.clips, args.batch_size, args.workers, resolve_device(args.device),
                                args.allow_outside_root)
    out = args.out
    if out is None:
        out = run_folder() / f"test-split{report['split']}-{report['subset']}"
    written = inference.write_test(report, out)
    print(inference.format_test(report))
    print("written: " + ", ".join(str(p) for p in written))
    return 0


def _run_predict(args) -> int:
    if args.json:
        check_output_file(args.json, "--json")
    p = inference.predict_video(args.video, args.checkpoint, args.top_k, args.poses, args.clips,
                                resolve_device(args.device))
    print(inference.format_prediction(p))
    if args.json:
        atomic_write_json(args.json, p)
        print(f"written: {args.json}")
    return 0


def _add_test(commands) -> None:
    p = commands.add_parser(
        "test", help="evaluate a finetuned checkpoint on a split without training (top-1/5, per class, confusion)",
        formatter_class=FORMATTER,
        description="Evaluate a finetune / linear-probe checkpoint exactly as 'csvr finetune' does at its end: the "
                    "checkpoint's clip settings and eval.clips uniformly spaced, centre-cropped clips per video; a "
                    "video's score is the mean of its clips' softmax. Prints top-1, top-5, the mean per-class "
                    "accuracy, per-class accuracy and the confusion matrix; writes OUT/test.json and "
                    "OUT/confusion.csv. Every setting not given comes from the checkpoint's config.",
        epilog="examples:\n  csvr test --checkpoint runs/finetune\n"
               "  csvr test --checkpoint runs/finetune/checkpoints/step-000000500.pt --manifest "
               "data/ucf101/manifest.jsonl --pose-cache data/ucf101/poses --split 2 --out runs/finetune/test-split2\n")
    add_checkpoint_option(p, "a finetune / linear-probe checkpoint, or its run folder (latest checkpoint)")
    add_manifest_options(p, "manifest to evaluate on (default: the checkpoint's data.manifest)", required=False)
    add_pose_cache_option(p, "pose cache for features fi / fd (default: the checkpoint's data.pose_cache when "
                             "--manifest is not given)")
    p.add_argument("--split", default=None, help="split name, e.g. 1 (default: the checkpoint's eval.split / "
                   "data.split)")
    p.add_argument("--subset", choices=("test", "train", "all"), default=None,
                   help="videos of the split to evaluate (default: the checkpoint's eval.subset, test)")
    add_clips_option(p, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="videos per batch (default: the checkpoint's "
                   "eval.batch_size)")
    add_workers_option(p, 0)
    add_device_option(p)
    p.add_argument("--out", default=None, help="output folder (default: RUN/test-split<split>-<subset> beside the "
                   "checkpoint's run)")
    add_allow_outside_root_option(p)
    p.set_defaults(func=_run_test)


def _add_predict(commands) -> None:
    p = commands.add_parser(
        "predict", help="top-k classes of one video file from a finetuned checkpoint",
        formatter_class=FORMATTER,
        description="Score one video as evaluation does (the checkpoint's clip settings, eval.clips uniformly spaced "
                    "clips, the mean of their softmax) and print the top-k classes with their probabilities. A "
                    "feature that reads poses (fi, fd) gets them from --poses (a pose-cache .npz from 'csvr prepare "
                    "poses', or a folder of this video's OpenPose JSON files) or, without --poses, from MediaPipe "
                    "run on the video now.",
        epilog="examples:\n  csvr predict clip.mp4 --checkpoint runs/finetune\n"
               "  csvr predict data/synth/Walk/walk_000.mp4 --checkpoint runs/finetune --poses "
               "data/synth/poses/Walk/walk_000.npz --top-k 3\n")
    p.add_argument("video", metavar="VIDEO", help="a video file")
    add_checkpoint_option(p, "a finetune / linear-probe checkpoint, or its run folder")
    p.add_argument("--top-k", type=int, default=5, help="classes to show (default 5)")
    p.add_argument("--poses", default=None, metavar="FILE.npz|DIR",
                   help="poses for features fi / fd: a pose-cache .npz of this video, or a folder of its OpenPose "
                        "JSON files (default: extract with MediaPipe)")
    add_clips_option(p, default=None)
    add_device_option(p)
    p.add_argument("--json", default=None, metavar="FILE", help="also write the prediction as JSON")
    p.set_defaults(func=_run_predict)


# ----------------------------------------------------------------------------- retrieve
def _ks(text: str) -> list[int]:
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CsvrError(f"--ks must be comma-separated positive integers, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise CsvrError(f"--ks must be comma-separated positive integers, got {text!r}")
    return sorted(set(ks))


def _run_retrieve(args) -> int:
    check_output_dir(args.out)
    ks = _ks(args.ks)
    model = load_model(args.checkpoint, args.feature, random_init=args.random_init, seed=args.seed)
    # paths are checked here, before any data-loader worker could hit one that leaves the root
    manifest = load_manifest(args.manifest, root=args.root, allow_outside_root=args.allow_outside_root)
    if not args.any_classes:
        check_classes(model, manifest)
    records = manifest.select_nonempty(args.split, "test", key="--split") + manifest.select_nonempty(
        args.split, "train", key="--split")
    check_pose_cache(args.pose_cache, model.feature, manifest, records)
    clip = clip_settings(model, args.frames, args.stride, args.size)
    if args.clips < 1:
        raise CsvrError(f"--clips must be >= 1, got {args.clips}")
    result, q, g = retrieve_videos(model.encoder, manifest, args.split, clip, num_clips=args.clips,
                                   pose_cache=args.pose_cache, ks=ks, backend=args.backend,
                                   device=resolve_device(args.device), batch_size=args.batch_size,
                                   workers=args.workers, checkpoint=model.path)
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


def _add_retrieve(commands) -> None:
    p = commands.add_parser(
        "retrieve", help="nearest-neighbour video retrieval, Recall@k (paper Table VIII)", formatter_class=FORMATTER,
        description="Every test video of the split queries the training videos. A video is the mean of the features "
                    "of N uniformly spaced, centre-cropped clips, L2-normalised; similarity is cosine; a query is a "
                    "hit at k when one of its k nearest training videos has its class (k is clamped to the number "
                    "of training videos). Exact search (faiss, or torch); ties go to the lower gallery index. "
                    "Writes OUT/retrieval.json.",
        epilog="examples:\n  csvr retrieve --checkpoint runs/csvr/checkpoints/step-000001000.pt --feature fi "
               "--manifest data/synth/manifest.jsonl --pose-cache data/synth/poses --out runs/csvr/retrieval-fi\n"
               "  csvr retrieve --checkpoint runs/finetune/checkpoints/step-000000500.pt --manifest "
               "data/ucf101/manifest.jsonl --out runs/finetune/retrieval\n")
    add_checkpoint_option(p)
    p.add_argument("--feature", choices=FEATURE_NAMES, default=None,
                   help="encoder feature (pretraining checkpoints; default: fi for csvr, backbone for iic/cvrl; a "
                        "finetuned checkpoint uses its own)")
    add_manifest_options(p)
    add_pose_cache_option(p)
    p.add_argument("--split", default="1", help="split whose test videos query its training videos (default 1)")
    add_clips_option(p)
    p.add_argument("--ks", default="1,5,10,20,50", help="comma-separated k values (default 1,5,10,20,50)")
    add_clip_options(p)
    p.add_argument("--backend", choices=("auto", "faiss", "torch"), default="auto", help="search engine (default auto: "
                   "faiss when installed); both give identical results")
    add_feature_batch_options(p)
    p.add_argument("--any-classes", action="store_true",
                   help="allow a finetuned checkpoint whose classes differ from the dataset's (cross-dataset "
                        "retrieval with a finetuned encoder)")
    p.add_argument("--random-init", action="store_true",
                   help="the checkpoint's architecture with random weights (the no-pretraining baseline)")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-init (default 0)")
    p.add_argument("--save-features", action="store_true", help="also write OUT/features.npz (video features)")
    add_allow_outside_root_option(p)
    p.add_argument("--out", required=True, help="output folder (retrieval.json)")
    p.set_defaults(func=_run_retrieve)


# ----------------------------------------------------------------------------- report
def _run_report(args) -> int:
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


def _add_report(commands) -> None:
    p = commands.add_parser(
        "report", help="an HTML page and a Markdown file with the tables and pictures of runs, side by side",
        formatter_class=FORMATTER,
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
    add_allow_outside_root_option(p, "the pictures may read manifest paths that leave the dataset root as written (as "
                                     "the runs themselves may have, with data.allow_outside_root=true or "
                                     "--allow-outside-root)")
    p.add_argument("--no-retrieval-examples", action="store_true",
                   help="skip the retrieval example pictures (they read the videos)")
    p.set_defaults(func=_run_report)


# ----------------------------------------------------------------------------- export
def _run_export(args) -> int:
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


def _add_export(commands) -> None:
    p = commands.add_parser(
        "export", help="export an encoder: torchvision state dict (R3D-18 / R(2+1)D-18) and ONNX",
        formatter_class=FORMATTER,
        description="torchvision: a plain state dict (tensors only) that torchvision.models.video.r3d_18() / "
                    "r2plus1d_18() loads (strict when a finetuned head on the pooled backbone gives fc.*). onnx: "
                    "the encoder (and the classifier of a finetuned checkpoint), opset >= 17, dynamic batch axis, "
                    "checked with onnxruntime against PyTorch (max abs difference <= 1e-4), exported with "
                    "torch.onnx.export(dynamo=False). Files are written only when every format succeeded.",
        epilog="example:\n  csvr export --checkpoint runs/csvr/checkpoints/step-000001000.pt --feature fi "
               "--out exported/\n")
    add_checkpoint_option(p)
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


# ----------------------------------------------------------------------------- knn
KNN_DESCRIPTION = """\
Frozen-feature evaluation (InstDisc / solo-learn protocol): a video is the L2-normalised mean of
the features of N uniformly spaced, centre-cropped clips; the split's training videos are the
memory, its test videos the queries; weighted kNN (k = 20 and 1, vote weight exp(sim / T),
T = 0.07) gives top-1 and top-5; --linear adds a logistic-regression probe on the same features.

In the same command, the control: the same network and feature from random weights (seeds
0 .. S-1, --control-seeds), printed side by side with the paired difference (pretrained - control
mean) and its 95 % bootstrap interval over test videos. Features are extracted once into a cache
(.npz, float32 arrays and labels, no pickles) keyed by the checkpoint's hash, the feature, the
initialisation, the clip settings and the manifest; a second run reads them in seconds.
Writes OUT/knn.json (percentages, per-video scores, the cache files used)."""


def _run_knn(args) -> int:
    check_output_dir(args.out)
    if args.cache:
        check_output_dir(args.cache, "--cache")
    if args.clips < 1:
        raise CsvrError(f"--clips must be >= 1, got {args.clips}")
    if args.control_seeds < 0:
        raise CsvrError(f"--control-seeds must be >= 0, got {args.control_seeds}")
    if not args.k or min(args.k) < 1:
        raise CsvrError(f"--k must be positive integers, got {args.k}")
    if args.temperature <= 0:
        raise CsvrError(f"--temperature must be > 0, got {args.temperature}")
    if args.linear_wd < 0:
        raise CsvrError(f"--linear-wd must be >= 0, got {args.linear_wd}")
    ckpt = Checkpoint.load(args.checkpoint)
    if not ckpt.is_classifier:  # before the pose check, whose advice names other features
        pretrain_feature(ckpt, args.feature)
    manifest = load_manifest(args.manifest, root=args.root, allow_outside_root=args.allow_outside_root)
    records = manifest.select(args.split, "test") + manifest.select(args.split, "train")
    check_pose_cache(args.pose_cache, args.feature, manifest, records)
    clip = clip_settings(ckpt, args.frames, args.stride, args.size)
    ks = list(dict.fromkeys(args.k))
    doc = frozen.frozen_evaluation(ckpt, args.feature, manifest, split=args.split, clip_cfg=clip, clips=args.clips,
                                   pose_cache=args.pose_cache, ks=ks, tau=args.temperature,
                                   control_seeds=args.control_seeds, linear=args.linear, weight_decay=args.linear_wd,
                                   cache_dir=args.cache, device=resolve_device(args.device),
                                   batch_size=args.batch_size, workers=args.workers)
    out = Path(args.out)
    atomic_write_json(out / "knn.json", doc, indent=1)
    print(frozen.format_table(doc))
    reused = sum(doc["cache"]["reused"])
    print(f"features: {reused} of {len(doc['cache']['reused'])} sets from the cache {doc['cache']['dir']}")
    print(f"written: {out / 'knn.json'}")
    return 0


def _add_knn(commands) -> None:
    p = commands.add_parser(
        "knn", help="frozen-feature kNN (and linear probe) with the random-init control, difference and 95%% CI",
        formatter_class=FORMATTER,
        description=KNN_DESCRIPTION,
        epilog="examples:\n  csvr knn --checkpoint runs/csvr/checkpoints/step-000001000.pt --feature fi --manifest "
               "data/synth/manifest.jsonl --pose-cache data/synth/poses --out runs/csvr/knn-fi\n"
               "  csvr knn --checkpoint runs/cvrl/checkpoints/step-000001000.pt --feature backbone --manifest "
               "data/synth/manifest.jsonl --linear --control-seeds 5 --out runs/cvrl/knn\n")
    add_checkpoint_option(p, "a pretraining checkpoint (or a finetuned one with --control-seeds 0)")
    p.add_argument("--feature", required=True, choices=FEATURE_NAMES, help="encoder feature")
    add_manifest_options(p)
    add_allow_outside_root_option(p)
    add_pose_cache_option(p)
    p.add_argument("--split", default="1", help="split: its training videos are the memory, its test videos the "
                   "queries (default 1)")
    add_clips_option(p)
    p.add_argument("--k", type=int, nargs="+", default=list(frozen.DEFAULT_KS), metavar="K",
                   help="neighbours (default: 20 1)")
    p.add_argument("--temperature", type=float, default=KNN_TAU, help=f"vote weight exp(sim / T) (default {KNN_TAU})")
    p.add_argument("--control-seeds", type=int, default=3,
                   help="random-init seeds of the control, 0 .. S-1 (default 3; 0: no control)")
    p.add_argument("--linear", action="store_true",
                   help="also a logistic-regression probe on the cached features (with its control)")
    p.add_argument("--linear-wd", type=float, default=frozen.LINEAR_WEIGHT_DECAY,
                   help=f"L2 penalty of --linear on standardised features (default {frozen.LINEAR_WEIGHT_DECAY})")
    add_clip_options(p)
    p.add_argument("--cache", default=None, help="feature cache folder (default: RUN/feature-cache of the "
                   "checkpoint's run)")
    add_feature_batch_options(p)
    p.add_argument("--out", required=True, help="output folder (knn.json)")
    p.set_defaults(func=_run_knn)


# ----------------------------------------------------------------------------- video-quality
def _run_video_quality(args) -> int:
    out = None
    if args.json:
        out = check_output_file(args.json, "--json")
    r = video_quality.quality_of_checkpoint(args.checkpoint, args.classifier, args.videos,
                                            resolve_device(args.device), args.bootstrap)
    print(video_quality.format_quality(r))
    if out is not None:
        atomic_write_text(out, json.dumps(r, indent=1) + "\n")
    return 0


def _add_video_quality(commands) -> None:
    doc = video_quality.__doc__ or ""  # the measures, as the module documents them (up to its note on pixels)
    p = commands.add_parser(
        "video-quality", help="IS, conditional top-1 and Frechet distance of a CSVR checkpoint's generated clips",
        formatter_class=FORMATTER, description=doc.split("\n\n")[0] + "\n\n" +
        doc.split("\n\n", 1)[1].split("\n\nPixels")[0],
        epilog="examples:\n"
               "  # a classifier trained from scratch at the generators' 32 px, then the scores\n"
               "  csvr finetune --config demo --pretrained runs/demo/pretrain-csvr --feature scratch "
               "data.clip.size=32 --out runs/demo/video-classifier\n"
               "  csvr video-quality runs/demo/pretrain-csvr --classifier runs/demo/video-classifier\n")
    p.add_argument("checkpoint", help="a CSVR pretraining checkpoint, or its run folder (the latest)")
    p.add_argument("--classifier", required=True, help="a csvr finetune checkpoint (or run folder) of feature backbone, fs or scratch")
    p.add_argument("--videos", type=int, default=10_000, help="at most this many test videos (default: all)")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of the IS and FD intervals (default 1000)")
    add_device_option(p)
    p.add_argument("--json", default=None, help="also write the numbers here")
    p.set_defaults(func=_run_video_quality)


# ----------------------------------------------------------------------------- registration
def register(commands, groups) -> None:
    """Add the evaluation commands to the top level of ``csvr`` (``groups``: unused)."""
    _add_classifier_jobs(commands)
    _add_test(commands)
    _add_predict(commands)
    _add_retrieve(commands)
    _add_report(commands)
    _add_export(commands)
    _add_knn(commands)
    _add_video_quality(commands)


__all__ = ["KNN_DESCRIPTION", "register"]
