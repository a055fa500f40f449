"""``csvr test`` and ``csvr predict``: a finished finetuned (or linear-probe) checkpoint, used.

``csvr test`` evaluates a checkpoint on a split of a manifest without training, exactly as
``csvr finetune`` does at its end (:func:`csvr.eval.finetune.evaluate_classifier`: the
checkpoint's clip settings, ``eval.clips`` uniformly spaced centre-cropped clips per video, the
video's score the mean of its clips' softmax, paper IV-B), so the numbers equal the run's
``results.json`` for the same split. It adds nothing to the protocol, only the reading: top-1,
top-5, mean per-class accuracy, per-class accuracy and the confusion matrix, printed and written
to ``OUT/test.json`` and ``OUT/confusion.csv``.

``csvr predict`` runs the same evaluation path on one video file that no manifest lists: the
video is probed like ``csvr prepare index`` does, its poses (for a feature that reads them,
:func:`csvr.models.features.needs_poses`) come from a pose-cache entry, an OpenPose JSON folder
or MediaPipe (with a progress bar over the frames), and are put into a temporary pose cache so
that the dataset reads them exactly as it reads a prepared dataset's. A checkpoint that keeps
the source frame size (``data.clip.decode_short_side: null``, the CPU presets) would have every
clip frame of a large video decoded at full size (10 clips of 8 frames of 4K: 2 GB); predict
decodes them with a short side of at most :data:`PREDICT_DECODE_CROPS` times the model's crop
instead (:func:`predict_clip_config`), which leaves videos of the size the model was trained on
untouched.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csvr.config import from_dict
from csvr.data.datasets import ClipDataset
from csvr.data.index import Manifest, VideoRecord, load_manifest
from csvr.data.video import probe
from csvr.engine.checkpoint import list_checkpoints
from csvr.errors import CsvrError, VideoError
from csvr.eval.finetune import EvalConfig, class_groups, evaluate_classifier, load_classifier, predict
from csvr.eval.metrics import video_scores
from csvr.eval.options import clip_settings
from csvr.pose_format.base import NoPersonError, PoseError
from csvr.pose_format.cache import load_record, write_record
from csvr.pose.consistency import describe
from csvr.pose.job import extract_record
from csvr.pose.sources.openpose import index_directory
from csvr.utils.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- checkpoints
def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder (its newest checkpoint; it is loaded, and checked, by
    :meth:`csvr.engine.checkpoint.Checkpoint.load`)."""
    p = Path(path)
    if p.is_dir():
        found = list_checkpoints(p.parent if p.name == "checkpoints" else p)
        if not found:
            raise CsvrError(f"{p} is a folder without checkpoints (expected a checkpoint file or a run folder with "
                            "checkpoints/step-*.pt)")
        return found[-1]
    return p


@dataclass
class EvalSettings:
    """How a classifier checkpoint was evaluated at the end of its run (its stored config)."""

    clip: Any  # csvr.data.datasets.ClipConfig
    clips: int
    batch_size: int
    split: str
    subset: str
    manifest: str | None
    root: str | None
    pose_cache: str | None
    allow_outside_root: bool


def eval_settings(config: dict) -> EvalSettings:
    """The data and ``eval`` settings of a finetune / linear-probe checkpoint's config."""
    what = "the checkpoint's settings cannot be read"
    data = dict(config.get("data") or {})
    clip = clip_settings(config, what=what)
    try:
        ev = from_dict(EvalConfig, dict(config.get("eval") or {}), where="eval")
    except (ValueError, TypeError) as e:
        raise CsvrError(f"{what}: {e}") from None
    return EvalSettings(clip=clip, clips=ev.clips, batch_size=ev.batch_size, split=str(ev.split or data.get("split", "1")),
                        subset=ev.subset, manifest=data.get("manifest") or None, root=data.get("root"),
                        pose_cache=data.get("pose_cache"), allow_outside_root=bool(data.get("allow_outside_root")))


def load_finetuned(path: str | os.PathLike):
    """(classifier, checkpoint dict, resolved path) of a finetune / linear-probe checkpoint."""
    ckpt_path = resolve_checkpoint(path)
    classifier, state = load_classifier(ckpt_path)
    return classifier, state, ckpt_path


# ----------------------------------------------------------------------------- csvr test
def run_test(checkpoint: str | os.PathLike, manifest: str | None = None, root: str | None = None,
             pose_cache: str | None = None, split: str | None = None, subset: str | None = None,
             clips: int | None = None, batch_size: int | None = None, workers: int = 0,
             device: str | None = None, allow_outside_root: bool = False) -> dict:
    """Evaluate a finetuned checkpoint on ``split``/``subset`` of ``manifest`` (every setting not
    given comes from the checkpoint's own config); returns the report (see the module docstring).
    ``allow_outside_root``: manifest paths may leave the dataset root (as the run's own
    ``data.allow_outside_root`` may have allowed)."""
    classifier, state, path = load_finetuned(checkpoint)
    s = eval_settings(dict(state.get("config") or {}))
    manifest_path = manifest or s.manifest
    if not manifest_path:
        raise CsvrError(f"{path} names no manifest: pass --manifest")
    m = load_manifest(manifest_path, root=root if (root or manifest) else s.root,
                      allow_outside_root=s.allow_outside_root or allow_outside_root)
    split = split or s.split
    subset = subset or s.subset
    records = m.select(split, subset)  # type: ignore[arg-type]
    if not records:
        raise CsvrError(f"split {split!r} of {m.path} has no {subset} videos (choose another --split / --subset)")
    clips = clips or s.clips
    if clips < 1:
        raise CsvrError(f"--clips must be >= 1, got {clips}")
    cache = pose_cache or (s.pose_cache if not manifest else None)
    if classifier.encoder.needs_poses and not cache:
        raise CsvrError(f"feature {classifier.feature!r} needs poses: pass --pose-cache (a cache made by 'csvr "
                        "prepare poses' for this manifest)")
    if classifier.encoder.needs_poses and not Path(cache).is_dir():
        raise CsvrError(f"pose cache not found: {cache} (pass --pose-cache)")
    report = evaluate_classifier(classifier, m, records, s.clip, clips, cache if classifier.encoder.needs_poses
                                 else None, batch_size or s.batch_size, workers, device)
    return {"checkpoint": str(path), "kind": state.get("kind"), "feature": classifier.feature,
            "step": int(state.get("global_step", 0)), "manifest": str(m.path), "split": split, "subset": subset,
            "eval_clips": clips, "classes": list(m.classes), "class_groups": class_groups(m),
            "pose_cache": cache if classifier.encoder.needs_poses else None, **report}


def confusion_csv(report: dict) -> str:
    """The confusion matrix as CSV: a header row of predicted classes, one row per true class."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true \\ predicted", *report["classes"]])
    for name, row in zip(report["classes"], report["confusion"]):
        w.writerow([name, *row])
    return buf.getvalue()


def format_test(report: dict, max_classes: int = 60) -> str:
    """The table ``csvr test`` prints."""
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = [f"{report['kind']} checkpoint {report['checkpoint']} (feature {report['feature']}, step "
             f"{report['step']}): split {report['split']}, {report['subset']} videos of {report['manifest']}",
             f"  videos {report['num_videos']}, {report['eval_clips']} clips each (video score: mean of the clips' "
             "softmax)",
             f"  top-1 {pct(report['video_top1'])}   top-5 {pct(report['video_top5'])}   mean per-class "
             f"{pct(report['mean_class_accuracy'])}   (clip-level top-1 {pct(report['clip_top1'])})"]
    if report.get("left_out_videos"):
        lines.append(f"  {len(report['left_out_videos'])} unreadable video(s) left out: "
                     f"{', '.join(report['left_out_videos'][:5])}")
    classes = report["classes"]
    conf = np.asarray(report["confusion"])
    width = max(12, *(len(c) for c in classes[:max_classes]))
    groups = report.get("class_groups") or {}
    lines.append(f"  {'class':{width}s}  {'videos':>6s}  {'accuracy':>8s}" + ("  group" if groups else ""))
    for k, c in enumerate(classes[:max_classes]):
        lines.append(f"  {c:{width}s}  {int(conf[k].sum()):6d}  {pct(report['per_class'][c]):>8s}"
                     + (f"  {groups.get(c, '')}" if groups else ""))
    if len(classes) > max_classes:
        lines.append(f"  ... {len(classes) - max_classes} more classes in test.json")
    if len(classes) <= 20:
        lines.append("  confusion (rows: true class, columns: predicted, in the order above):")
        cw = max(3, len(str(int(conf.max(initial=0)))) + 1)
        for k, c in enumerate(classes):
            lines.append(f"  {c:{width}s}  " + "".join(f"{int(x):{cw}d}" for x in conf[k]))
    return "\n".join(lines)


def write_test(report: dict, out: str | os.PathLike) -> list[Path]:
    """``OUT/test.json`` (the whole report) and ``OUT/confusion.csv``."""
    out = Path(out)
    atomic_write_json(out / "test.json", report)
    atomic_write_text(out / "confusion.csv", confusion_csv(report))
    return [out / "test.json", out / "confusion.csv"]


# ----------------------------------------------------------------------------- csvr predict
#: csvr predict decodes frames with a short side of at most this many crop sizes when the
#: checkpoint keeps the source size (its centre crop is then resized from there)
PREDICT_DECODE_CROPS = 4


def predict_clip_config(clip):
    """The checkpoint's clip settings for ``csvr predict``: ``decode_short_side`` None (keep the
    source size) becomes ``PREDICT_DECODE_CROPS x size``, so a large video's frames are scaled by
    FFmpeg while decoding instead of being held at full size; a video whose short side is already
    that small is read exactly as evaluation reads it."""
    if clip.decode_short_side is not None:
        return clip
    return dataclasses.replace(clip, decode_short_side=PREDICT_DECODE_CROPS * clip.size)


def video_record(video: str | os.PathLike):
    """The manifest record ``csvr prepare index`` would write for ``video`` (probed; label 0)."""
    p = Path(video)
    if not p.is_file():
        raise CsvrError(f"video not found: {p}")
    try:
        info = probe(p).to_dict()
    except VideoError as e:
        raise CsvrError(f"{p} is not a readable video ({e.reason})") from None
    if int(info.get("num_frames") or 0) < 1:
        raise CsvrError(f"{p} has no video frames")
    # the resolved file's name: predict reads it from its own folder (a symlink is followed here)
    return VideoRecord.from_json({"id": p.stem, "path": p.resolve().name, "label": 0, **info})


def pose_record_for(video: Path, video_id: str, poses: str | None, num_frames: int):
    """The cleaned poses of ``video`` from ``poses`` (a pose-cache ``.npz`` or an OpenPose JSON
    folder) or, when None, from MediaPipe; None when nobody is found (a warning says so)."""
    try:
        if poses is not None and Path(poses).is_file():
            p = Path(poses)
            if p.suffix != ".npz":
                raise CsvrError(f"--poses {p}: expected a pose-cache .npz file (from 'csvr prepare poses') or an "
                                "OpenPose JSON folder")
            rec = load_record(p.parent, p.stem)
            what = str(p)
        elif poses is not None:
            d = Path(poses)
            if not d.is_dir():
                raise CsvrError(f"--poses {d}: no such file or folder")
            names = index_directory(d)
            name = video_id if video_id in names or len(names) != 1 else next(iter(names))
            rec = extract_record(video, "openpose-json", video_id=name, json_dir=d)
            what = f"the OpenPose JSON files in {d}"
        else:
            if importlib.util.find_spec("mediapipe") is None:
                raise CsvrError("this checkpoint's feature needs poses and MediaPipe is not installed: pip install "
                                "mediapipe, or pass --poses FILE.npz (a cache entry from 'csvr prepare poses') or "
                                "--poses DIR (OpenPose JSON files of this video)")
            rec = extract_record(video, "mediapipe", video_id=video_id, progress="poses (MediaPipe)")
            what = "MediaPipe"
    except NoPersonError:
        log.warning("csvr: no person found in %s (%s): the prediction uses zero poses, as evaluation does for such "
                    "videos", video, "poses" if poses else "MediaPipe")
        return None, "none"
    except PoseError as e:
        raise CsvrError(str(e)) from None
    if rec.num_frames != num_frames:
        log.warning("csvr: %s has %d frames of poses, the video %d: poses are matched by frame index",
                    what, rec.num_frames, num_frames)
    frozen = (rec.meta.get("source_info") or {}).get("frozen_skeleton") or {}
    if frozen.get("segments"):
        log.warning("csvr: the skeleton from %s stays still with high confidence while the image changes in %s: the "
                    "pose may be a frozen track, not the person (see the README, 'Troubleshooting')", what,
                    describe(video_id, frozen))
    return rec, what


def predict_video(video: str | os.PathLike, checkpoint: str | os.PathLike, top_k: int = 5,
                  poses: str | None = None, clips: int | None = None, device: str | None = None) -> dict:
    """Top-``top_k`` classes of one video with their probabilities (the mean of ``clips``
    uniformly spaced clips' softmax, as ``csvr test`` and ``csvr finetune`` score a video)."""
    if top_k < 1:
        raise CsvrError(f"--top-k must be >= 1, got {top_k}")
    classifier, state, path = load_finetuned(checkpoint)
    s = eval_settings(dict(state.get("config") or {}))
    clips = clips or s.clips
    if clips < 1:
        raise CsvrError(f"--clips must be >= 1, got {clips}")
    rec = video_record(video)
    video = Path(video)
    manifest = Manifest({"classes": list(classifier.classes)}, [rec], root=video.resolve().parent)  # one video
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory(prefix="csvr-predict-") as tmp:
        cache, pose_source = None, None
        if classifier.encoder.needs_poses:
            pose_rec, pose_source = pose_record_for(video, rec.id, poses, rec.num_frames)
            cache = tmp
            if pose_rec is not None:
                write_record(tmp, rec.id, pose_rec)
        elif poses is not None:
            log.warning("csvr: feature %r reads no poses: --poses is ignored", classifier.feature)
        ds = ClipDataset(manifest, [rec], predict_clip_config(s.clip), mode="eval", num_clips=clips, pose_cache=cache)
        logits, _, ok = predict(classifier, ds, 1, 0, device, desc="predicting")
    if not ok[0]:
        raise CsvrError(f"{video} could not be decoded")
    scores = video_scores(logits)[0]
    order = np.argsort(-scores, kind="stable")[: min(top_k, len(scores))]
    return {"video": str(video), "checkpoint": str(path), "feature": classifier.feature, "clips": clips,
            "poses": pose_source, "top": [{"class": classifier.classes[i], "index": int(i),
                                           "probability": float(scores[i])} for i in order]}


def format_prediction(p: dict) -> str:
    lines = [f"{p['video']}: feature {p['feature']}, {p['clips']} clips"
             + (f", poses from {p['poses']}" if p.get("poses") else "")]
    for rank, t in enumerate(p["top"], start=1):
        lines.append(f"  {rank}. {t['class']:24s} {100 * t['probability']:6.2f}%")
    return "\n".join(lines)


__all__ = ["PREDICT_DECODE_CROPS", "confusion_csv", "eval_settings", "format_test", "predict_clip_config",
           "predict_video", "resolve_checkpoint", "run_test", "write_test"]
