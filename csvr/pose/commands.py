"""CLI: ``csvr prepare poses`` (extract / import into the pose cache) and ``csvr viz poses``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from csvr.data.index import load_manifest
from csvr.errors import CsvrError
from csvr.pose.job import extract_record, items_from_manifest, run_pose_job
from csvr.pose.sources import source_names
from csvr.pose.viz import render
from csvr.pose_format.cache import load_record
from csvr.utils.io import check_output_dir, check_output_file
from csvr.utils.parallel import default_workers

log = logging.getLogger(__name__)

PREPARE_HELP = "extract (MediaPipe) or import (OpenPose JSON, mmaction2 pickle) poses into the pose cache"
PREPARE_DESCRIPTION = PREPARE_HELP + """.

One .npz per video, <out>/<video id>.npz: (frames, 18, 3) OpenPose COCO-18 joints, x and y in
[0, 1] of the frame, confidence, plus masks and metadata. Resumable (finished videos are skipped
unless --force), parallel (--workers), shardable (--shard i/n, or torchrun's RANK/WORLD_SIZE).
A video that fails is reported and counted, never stops the job; the exit status is 1 when any
video failed. A video without any person is cached as a 'no person' marker."""

VIZ_HELP = "draw poses over a video's frames into a PNG contact sheet or a GIF"


def _add_prepare(groups) -> None:
    p = groups["prepare"].add_parser(
        "poses", help=PREPARE_HELP, description=PREPARE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  csvr prepare poses --manifest data/ucf101/manifest.jsonl --out data/ucf101/poses "
               "--source mediapipe --workers 8\n"
               "  csvr prepare poses --manifest M --out CACHE --source openpose-json --json-dir openpose_output/\n"
               "  csvr prepare poses --manifest M --out CACHE --source mmaction-pkl --pkl ucf101_2d.pkl\n"
               "  csvr prepare poses --manifest M --out CACHE --shard 0/4\n")
    p.add_argument("--manifest", required=True, help="the dataset manifest (csvr prepare index)")
    p.add_argument("--root", default=None, help="dataset root, overriding the manifest's")
    p.add_argument("--out", required=True, help="the pose cache folder")
    p.add_argument("--source", choices=source_names(), default="mediapipe", help="where poses come from (default mediapipe)")
    p.add_argument("--json-dir", default=None, help="openpose-json: the folder of *_keypoints.json files")
    p.add_argument("--pkl", default=None, help="mmaction-pkl: mmaction2's ucf101_2d.pkl / hmdb51_2d.pkl")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: the number of CPU cores, at most 8)")
    p.add_argument("--shard", default=None, help="i/n: process shard i of n (0-based); default: torchrun's "
                   "RANK/WORLD_SIZE, else everything")
    p.add_argument("--force", action="store_true", help="redo videos that are already cached")
    p.add_argument("--conf-threshold", type=float, default=None,
                   help="joints below this confidence are missing (default: mediapipe 0.5, openpose-json 0.05, "
                   "mmaction-pkl 0.2)")
    p.add_argument("--max-gap", type=int, default=None, help="interpolate gaps up to this many frames (default 10)")
    p.add_argument("--min-detection-confidence", type=float, default=None, help="mediapipe (default 0.5)")
    p.add_argument("--min-tracking-confidence", type=float, default=None, help="mediapipe (default 0.5)")
    p.add_argument("--no-smooth", action="store_true", help="mediapipe: turn off its landmark smoothing")
    p.add_argument("--limit", type=int, default=None, help="only the first N videos of the manifest (trials)")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="allow manifest paths that leave the dataset root as written (../x, absolute paths "
                        "elsewhere); symlinks inside the root need no flag")
    p.set_defaults(func=cmd_prepare_poses)


def _add_viz(groups) -> None:
    p = groups["viz"].add_parser("poses", help=VIZ_HELP, description=VIZ_HELP + ". Poses come from the cache "
                                 "(--cache DIR --id ID) or are extracted on the fly (--source).",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  csvr viz poses video.mp4 --cache data/ucf101/poses "
                                        "--id Class/video --out sheet.png\n")
    p.add_argument("video", help="the video file")
    p.add_argument("--out", required=True, help="FILE.png (contact sheet) or FILE.gif")
    p.add_argument("--cache", default=None, help="a pose cache folder (with --id)")
    p.add_argument("--id", default=None, help="the video id in the cache (e.g. Walk/v_Walk_g01_c01), or the name "
                   "to look up with --source openpose-json / mmaction-pkl (default: the video's file name)")
    p.add_argument("--source", choices=source_names(), default=None, help="extract the poses instead (default mediapipe)")
    p.add_argument("--json-dir", default=None, help="openpose-json: the folder of *_keypoints.json files")
    p.add_argument("--pkl", default=None, help="mmaction-pkl: the skeleton file")
    p.add_argument("--frames", type=int, default=None,
                   help="frames in a PNG contact sheet (default 16); for a GIF, at most this many frames, "
                   "evenly spaced (default 150)")
    p.add_argument("--cols", type=int, default=4, help="columns of the contact sheet (default 4)")
    p.set_defaults(func=cmd_viz_poses)


def register(commands, groups) -> None:
    _add_prepare(groups)
    _add_viz(groups)


def cmd_prepare_poses(args: argparse.Namespace) -> int:
    check_output_dir(args.out)
    # importers of pose files (OpenPose JSON, mmaction2) never open the videos: they need not be here
    manifest = load_manifest(args.manifest, root=args.root, allow_outside_root=args.allow_outside_root,
                             check_files=args.source == "mediapipe")
    items = items_from_manifest(manifest)
    if args.limit is not None:
        items = items[: max(0, args.limit)]
    mp_opts = {}
    if args.min_detection_confidence is not None:
        mp_opts["min_detection_confidence"] = args.min_detection_confidence
    if args.min_tracking_confidence is not None:
        mp_opts["min_tracking_confidence"] = args.min_tracking_confidence
    if args.no_smooth:
        mp_opts["smooth_landmarks"] = False
    if args.source == "openpose-json" and not args.json_dir:
        raise CsvrError("--source openpose-json needs --json-dir")
    if args.source == "mmaction-pkl" and not args.pkl:
        raise CsvrError("--source mmaction-pkl needs --pkl")
    workers = args.workers if args.workers is not None else default_workers()
    summary = run_pose_job(items, args.out, source=args.source, workers=workers, shard=args.shard,
                           force=args.force, json_dir=args.json_dir, pkl=args.pkl,
                           conf_threshold=args.conf_threshold, max_gap=args.max_gap, mediapipe_options=mp_opts)
    for line in summary.lines():
        print(line, file=sys.stderr if line.startswith("  ") else sys.stdout)
    if summary.report_path:
        print(f"report: {summary.report_path}")
    return 1 if summary.failed else 0


def cmd_viz_poses(args: argparse.Namespace) -> int:
    check_output_file(args.out)
    if not Path(args.video).is_file():  # before loading any pose model
        raise CsvrError(f"{args.video}: file not found")
    if args.cache:
        if not args.id:
            raise CsvrError("--cache needs --id (the video id in the cache)")
        if args.source:
            raise CsvrError("give either --cache/--id or --source, not both")
        record = load_record(args.cache, args.id)
    else:
        opts = {"video_id": args.id} if args.id else {}
        if args.json_dir:
            opts["json_dir"] = args.json_dir
        if args.pkl:
            opts["pkl"] = args.pkl
        record = extract_record(args.video, args.source or "mediapipe", **opts)
    frames = {} if args.frames is None else {"num_frames": args.frames, "max_gif_frames": args.frames}
    out = render(args.video, record, args.out, cols=args.cols, **frames)
    print(f"wrote {out}")
    return 0
