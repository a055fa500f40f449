"""What the evaluation commands share: the device choice, the pose-cache check, a checkpoint's clip
settings, and the command-line options that several of them take, each defined once.

The ``add_*_option`` functions add one option (or a fixed group) to an ``argparse`` parser with
its one help text; a command whose option means something else (another default, another
source of the default) passes its own ``help``.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Mapping, Sequence

import torch

from csvr.config import from_dict
from csvr.data.datasets import ClipConfig
from csvr.errors import CsvrError
from csvr.models.features import needs_poses
from csvr.pose_format.cache import check_coverage

DEVICE_HELP = "auto (cuda when available), cpu, cuda, cuda:1, ..."
ALLOW_OUTSIDE_ROOT_HELP = ("allow manifest paths that leave the dataset root as written (../x, absolute paths "
                           "elsewhere); symlinks inside the root need no flag")
POSE_CACHE_HELP = "pose cache (needed by fi and fd)"
CHECKPOINT_HELP = "a pretraining or finetuning / linear-probe checkpoint, or a run folder (its latest checkpoint)"


# ----------------------------------------------------------------------------- library
def resolve_device(name: str) -> str:
    """``--device``: ``auto`` is ``cuda`` when a CUDA device is there, else ``cpu``; a ``cuda``
    device without one is a :class:`CsvrError`; anything else is passed on as written."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CsvrError(f"--device {name}: no CUDA device here")
    return name


def check_pose_cache(pose_cache: str | None, feature: str, manifest, records: Sequence) -> None:
    """A feature that reads poses needs ``--pose-cache``, and the cache must hold every video of
    ``records`` (of ``manifest``); nothing to check for the other features."""
    if not needs_poses(feature):
        return
    if not pose_cache:
        raise CsvrError(f"feature {feature!r} needs poses: pass --pose-cache (a cache made by 'csvr prepare poses'), "
                        "or use --feature fs / backbone")
    check_coverage(pose_cache, [r.id for r in records], key="--pose-cache", what="videos", source=str(manifest.path))


def clip_settings(source: Any, frames: int | None = None, stride: int | None = None, size: int | None = None, *,
                  what: str = "clip settings") -> ClipConfig:
    """The clip settings (``data.clip``) of a checkpoint, with the command line's ``frames`` /
    ``stride`` / ``size`` over them (None: the checkpoint's). ``source``: the checkpoint's config
    dict, or anything with that dict as ``.config`` (a :class:`~csvr.engine.checkpoint.Checkpoint`,
    a :class:`~csvr.eval.loading.LoadedModel`). A missing section gives the defaults; a bad one is a
    :class:`CsvrError` that starts with ``what``."""
    config = source if isinstance(source, Mapping) else source.config
    data = config.get("data") or {}
    clip = data.get("clip") if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(clip or {}, Mapping):
        raise CsvrError(f"{what}: data.clip of the checkpoint's config is not a mapping")
    try:
        cfg = from_dict(ClipConfig, dict(clip or {}), where="data.clip")
        over = {k: v for k, v in (("frames", frames), ("stride", stride), ("size", size)) if v is not None}
        return dataclasses.replace(cfg, **over)
    except (ValueError, TypeError) as e:
        raise CsvrError(f"{what}: {e}") from None


# ----------------------------------------------------------------------------- options
def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device`` (default ``auto``; :func:`resolve_device` reads it)."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_allow_outside_root_option(parser: argparse.ArgumentParser, help: str = ALLOW_OUTSIDE_ROOT_HELP) -> None:
    """``--allow-outside-root`` (``args.allow_outside_root``; the CLI's advice on an
    :class:`~csvr.errors.OutsideRootError` names it)."""
    parser.add_argument("--allow-outside-root", action="store_true", help=help)


def add_checkpoint_option(parser: argparse.ArgumentParser, help: str = CHECKPOINT_HELP) -> None:
    """``--checkpoint`` (required): a checkpoint file or a run folder."""
    parser.add_argument("--checkpoint", required=True, help=help)


def add_manifest_options(parser: argparse.ArgumentParser, manifest_help: str = "manifest from 'csvr prepare index'",
                         required: bool = True) -> None:
    """``--manifest`` and ``--root`` (another video root than the manifest's)."""
    parser.add_argument("--manifest", required=required, default=None, help=manifest_help)
    parser.add_argument("--root", default=None, help="override the manifest's video root")


def add_pose_cache_option(parser: argparse.ArgumentParser, help: str = POSE_CACHE_HELP) -> None:
    """``--pose-cache`` (:func:`check_pose_cache` checks it)."""
    parser.add_argument("--pose-cache", default=None, help=help)


def add_clips_option(parser: argparse.ArgumentParser, default: int | None = 10) -> None:
    """``--clips``: clips per video, ``default`` of them, or None: the checkpoint's ``eval.clips``."""
    if default is None:
        parser.add_argument("--clips", type=int, default=None, help="clips per video (default: the checkpoint's "
                            "eval.clips)")
    else:
        parser.add_argument("--clips", type=int, default=default,
                            help=f"uniformly spaced clips per video (default {default})")


def add_clip_options(parser: argparse.ArgumentParser) -> None:
    """``--frames``, ``--stride``, ``--size`` over the checkpoint's ``data.clip`` (:func:`clip_settings`)."""
    parser.add_argument("--frames", type=int, default=None, help="clip frames (default: the checkpoint's data.clip)")
    parser.add_argument("--stride", type=int, default=None, help="clip stride (default: the checkpoint's)")
    parser.add_argument("--size", type=int, default=None, help="crop size (default: the checkpoint's)")


def add_feature_batch_options(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--batch-size`` and ``--workers`` of feature extraction (retrieve, knn)."""
    add_device_option(parser)
    parser.add_argument("--batch-size", type=int, default=8, help="videos per feature batch (default 8)")
    add_workers_option(parser, 2)


def add_workers_option(parser: argparse.ArgumentParser, default: int) -> None:
    """``--workers``: data-loader worker processes."""
    parser.add_argument("--workers", type=int, default=default, help=f"data-loader workers (default {default})")


__all__ = ["ALLOW_OUTSIDE_ROOT_HELP", "CHECKPOINT_HELP", "DEVICE_HELP", "POSE_CACHE_HELP",
           "add_allow_outside_root_option", "add_checkpoint_option", "add_clip_options", "add_clips_option",
           "add_device_option", "add_feature_batch_options", "add_manifest_options", "add_pose_cache_option",
           "add_workers_option", "check_pose_cache", "clip_settings", "resolve_device"]
