"""CLI of the data layer: ``csvr prepare index`` and ``csvr prepare reencode``."""

from __future__ import annotations

import argparse
from pathlib import Path

from csvr.data.index import build_index
from csvr.data.layouts import layout_names
from csvr.data.reencode import reencode_dataset
from csvr.errors import CsvrError
from csvr.utils.io import check_output_dir, check_output_file


def register(commands, groups) -> None:
    p = groups["prepare"].add_parser(
        "index", help="index a video dataset into a manifest (probe, keyframes, I-frames)",
        description="Scan a dataset (UCF101, HMDB51, folder-per-class or CSV layout), probe every video "
                    "in parallel (fps, frames, size, codec, keyframes, I-frames) and write one JSON Lines "
                    "manifest. Re-running only probes new or changed files; bad videos are reported with "
                    "the reason and kept out of training. The end of every video is decoded: a truncated one "
                    "is indexed with the frames that decode (a warning line) or refused when most are lost. "
                    "Training and evaluation skip, with one warning, videos changed or missing since indexing.",
        # defaults are written in the help texts (ArgumentDefaultsHelpFormatter would repeat them)
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  csvr prepare index data/UCF101 --out data/ucf101/manifest.jsonl\n"
               "  csvr prepare index my_videos/ --layout folder --test-ratio 0.2 --out data/mine/manifest.jsonl\n"
               "  csvr prepare index raw_clips/ --layout folder --unlabelled --out data/raw/manifest.jsonl\n")
    p.add_argument("root", help="dataset root folder")
    p.add_argument("--out", "-o", default=None, help="manifest path (default: ROOT/manifest.jsonl)")
    p.add_argument("--layout", default="auto", choices=["auto", *layout_names()],
                   help="dataset layout (default auto: detects UCF101/HMDB51 split files, else folder-per-class)")
    p.add_argument("--splits", default=None, metavar="DIR",
                   help="folder with the split files (default: searched in ROOT and its usual sub-folders)")
    p.add_argument("--csv", default=None, help="CSV manifest path,label[,split] (layout csv)")
    p.add_argument("--test-ratio", type=float, default=None,
                   help="folder layout: fraction of each class's readable videos put in the test split "
                        "(deterministic; assigned after unreadable files are dropped)")
    p.add_argument("--test-list", default=None, help="folder layout: file listing the test videos")
    p.add_argument("--unlabelled", action="store_true", help="folder layout: index every video, no labels")
    p.add_argument("--workers", type=int, default=0,
                   help="probe processes (default 0 = number of cores, max 8)")
    p.add_argument("--clip-span", type=int, default=61,
                   help="report videos shorter than this many frames (default 61: one 16-frame clip at stride 4)")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="allow split/CSV paths that leave ROOT as written (../x, absolute paths elsewhere); "
                        "symlinks inside ROOT need no flag")
    p.set_defaults(func=_run_index)

    r = groups["prepare"].add_parser(
        "reencode", help="re-encode videos with too few I-frames to a fixed GOP (CoViAR: MPEG-4, 12)",
        description="Re-encode the videos of a manifest whose largest gap between I-frames exceeds "
                    "--max-gap frames (or all, with --all) to a fixed GOP, copy the others, and write a "
                    "manifest for the new root. The paper follows CoViAR: MPEG-4 part 2, an I-frame every "
                    "12 frames.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  csvr prepare reencode --manifest data/mine/manifest.jsonl --out data/mine-gop12\n")
    r.add_argument("--manifest", required=True, help="manifest of the source dataset")
    r.add_argument("--out", required=True, help="new dataset root (same relative paths)")
    r.add_argument("--codec", default="mpeg4", choices=["mpeg4", "h264"],
                   help="encoder of the re-encoded videos (default mpeg4: MPEG-4 part 2, as CoViAR; h264: "
                        "libx264 at CRF 18)")
    r.add_argument("--gop", type=int, default=12, help="I-frame interval in frames (default 12)")
    r.add_argument("--max-gap", type=int, default=None, help="re-encode when an I-frame gap exceeds this (default 2*gop)")
    r.add_argument("--all", action="store_true", help="re-encode every video")
    r.add_argument("--workers", type=int, default=0,
                   help="parallel encoder processes (default 0 = number of cores, max 8)")
    r.set_defaults(func=_run_reencode)


def _run_index(args) -> int:
    out = args.out or str(Path(args.root) / "manifest.jsonl")
    if args.out or Path(args.root).is_dir():  # a root that is not a folder is build_index's message
        check_output_file(out, "--out" if args.out else "the manifest (--out)")
    s = build_index(args.root, out, args.layout, split_dir=args.splits, csv_path=args.csv,
                    test_ratio=args.test_ratio, test_list=args.test_list, unlabelled=args.unlabelled,
                    workers=args.workers, allow_outside_root=args.allow_outside_root, clip_span=args.clip_span)
    for line in s.lines():
        print(line)
    if s.indexed == 0:  # a manifest without one readable video would only fail later, in training
        first = f"; the first: {s.bad[0][0]}: {s.bad[0][1]}" if s.bad else ""
        raise CsvrError(f"nothing was indexed: all {len(s.bad)} video(s) found for {args.root} are bad (listed "
                        f"above{first})")
    return 0


def _run_reencode(args) -> int:
    check_output_dir(args.out)
    s = reencode_dataset(args.manifest, args.out, codec=args.codec, gop=args.gop, max_gap=args.max_gap,
                         reencode_all=args.all, workers=args.workers)
    print(f"manifest: {s.manifest}")
    print(f"re-encoded {s.reencoded}, copied {s.copied}, already done {s.skipped}, failed {len(s.failed)} "
          f"in {s.seconds:.1f} s")
    for path, reason in s.failed:
        print(f"  failed: {path}: {reason}")
    return 0 if not s.failed else 1
