"""``csvr data synth``: generate the built-in synthetic action dataset."""

from __future__ import annotations

import argparse

from csvr.errors import CsvrError
from csvr.synth.catalogue import DEFAULT_SECONDS, DEFAULT_SIZE, DEFAULT_VIDEOS_PER_CLASS
from csvr.synth.dataset import generate, parse_size
from csvr.utils.io import check_output_dir

DESCRIPTION = """\
Generate the built-in procedural human-action dataset in UCF101 layout: classInd.txt,
trainlist01.txt / testlist01.txt (split by group), ClassName/v_ClassName_gXX_cYY.mp4 (H.264,
25 fps) and per-frame ground-truth poses in OpenPose JSON under poses/openpose/ClassName/.
15 classes in three groups: motion classes (told apart by movement only), context classes
(scene or held object only) and classes that need both; the folder's README.md describes each.
Deterministic for a seed. Running it again on a finished folder does nothing; on a folder left
by a killed run it completes the missing videos; a folder made with other parameters (seed,
size, --gop, ...) is refused unless --overwrite is given. --gop 12 gives every video I-frames
exactly every 12 frames (CoViAR/the paper) instead of the varied default GOP policy. The default size (15 classes x 16 videos x 4 s
at 160x120) takes about 40 s on 2 cores and 21.5 MB (24,000 small pose files).
"""


def register(commands, groups) -> None:
    p = groups["data"].add_parser(
        "synth", help="generate the built-in synthetic action dataset (UCF101 layout + OpenPose poses)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  csvr data synth --out data/synth --gop 12\n"
               "  csvr data synth --out data/tiny --classes 4 --videos-per-class 4 --seconds 1.2 --size 96x72\n")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; must be new, empty, "
                   "or an earlier synth output)")
    p.add_argument("--classes", default=None, metavar="N|NAMES",
                   help="number of classes (1-15, taken round-robin over the three groups) or a comma-separated "
                   "list of class names (default: all 15)")
    p.add_argument("--videos-per-class", type=int, default=DEFAULT_VIDEOS_PER_CLASS, metavar="N",
                   help=f"videos per class, 2 per group, groups split ~28%% test as UCF101 (default {DEFAULT_VIDEOS_PER_CLASS})")
    p.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, metavar="S",
                   help=f"length of every video in seconds at 25 fps (default {DEFAULT_SECONDS:g}; use >= 5.2 for "
                   "2 x 16-frame clips at stride 4)")
    p.add_argument("--size", default=f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}", metavar="WxH",
                   help=f"frame size, both even (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); another seed gives other actors, "
                   "scenes and videos (e.g. a separate pretraining pool in another --out)")
    p.add_argument("--gop", type=int, default=None, metavar="N",
                   help="encode every video with a fixed keyframe interval of N frames (x264 keyint=N, "
                   "min-keyint=N, scenecut=0) and no forced I-frames, so I-frames are exactly frames 0, N, 2N, ... "
                   "(the paper re-encodes with GOP 12, as CoViAR: an 8-frame clip at stride 3 then always holds "
                   "1-2 I-frames for the context branch); the pictures are the same as without it. Default: off "
                   "(a keyint drawn per video from 16..60 plus I-frames forced at scene cuts)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: number of CPUs, at most 8; 1 = no pool)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier synth output in --out (by default a finished one is kept)")
    p.set_defaults(func=run_synth)


def run_synth(args) -> int:
    check_output_dir(args.out)
    size = parse_size(args.size)
    if args.workers is not None and args.workers < 1:
        raise CsvrError("--workers must be at least 1")
    summary = generate(args.out, classes=args.classes, videos_per_class=args.videos_per_class,
                       seconds=args.seconds, size=size, seed=args.seed, workers=args.workers,
                       overwrite=args.overwrite, gop=args.gop)
    print(summary.describe())
    return 0
