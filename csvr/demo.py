"""``csvr demo`` (what ``make demo`` runs): the whole pipeline, end to end, re-runnable.

1. data      generate the built-in dataset (``csvr data synth``), or use ``--data DIR``
             (a UCF101 / HMDB51 / folder-per-class layout of your own);
2. index     ``csvr prepare index`` (keyframes, I-frames);
3. poses     ``csvr prepare poses``: the built-in dataset's OpenPose-format ground truth through
             the OpenPose importer, MediaPipe for your own videos;
4. pretrain  ``csvr pretrain --config demo`` (CSVR, the four stages, a small CPU preset);
5. finetune  ``csvr finetune`` twice with the same budget: from the CSVR checkpoint (f_i) and
             the same network from random weights (scratch);
6. retrieve  ``csvr retrieve``: the pretrained features vs the same network's random-init
             features (the paper's retrieval uses the pretrained network directly, no finetuning);
7. report    ``csvr report`` -> ``report.html`` and ``report.md``.

Every step prints the equivalent command and skips work already done (its output exists), so an
interrupted demo continues where it stopped; ``--fresh`` starts over.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from pathlib import Path

from csvr.errors import CsvrError


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _run(argv: list[str]) -> None:
    from csvr.cli import main

    print("$ csvr " + " ".join(shlex.quote(a) for a in argv), flush=True)
    rc = main(argv)
    if rc != 0:
        raise CsvrError(f"step failed (exit status {rc}): csvr {' '.join(argv)}")


def _done(path: Path) -> bool:
    return path.is_file()


def _final_checkpoint(run: Path) -> str:
    return json.loads((run / "summary.json").read_text())["checkpoint"]


DEMO_GOP = 12


def _check_demo_data(root: Path, out: Path) -> None:
    """An earlier demo's data made without the fixed GOP cannot be reused: say how to start over."""
    meta = root / "synth.json"
    if meta.exists():
        gop = json.loads(meta.read_text()).get("params", {}).get("gop")
        if gop != DEMO_GOP:
            raise CsvrError(f"{root} holds an earlier demo's data (GOP {gop or 'varying'}, not {DEMO_GOP}): run "
                            f"'csvr demo --out {out} --fresh' (or 'make demo' after deleting {out}) to start over")


def run_demo(out: str | Path, data: str | Path | None = None, layout: str = "auto", workers: int = 0,
             fresh: bool = False, label_fraction: float | None = None, pretrain_config: str = "demo",
             finetune_config: str = "demo", extra_pretrain: list[str] | None = None,
             extra_finetune: list[str] | None = None) -> dict:
    t0 = time.time()
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def timed(name: str, t: float) -> None:
        timings[name] = round(time.time() - t, 1)

    # 1. data --------------------------------------------------------------------------
    t = time.time()
    builtin = data is None
    root = out / "data" if builtin else Path(data)
    if builtin:
        _step("1/7 built-in dataset (fixed GOP 12: every clip holds I-frames of its own, docs/training.md)")
        _check_demo_data(root, out)
        _run(["data", "synth", "--out", str(root), "--gop", str(DEMO_GOP)] + (["--workers", str(workers)] if workers else []))
    elif not root.is_dir():
        raise CsvrError(f"--data {root}: not a folder")
    timed("data", t)

    # 2. index -------------------------------------------------------------------------
    t = time.time()
    _step("2/7 index (keyframes, I-frames)")
    manifest = out / "manifest.jsonl"
    _run(["prepare", "index", str(root), "--out", str(manifest), "--layout", layout]
         + (["--workers", str(workers)] if workers else []))
    if not builtin:
        # the paper's protocol (CoViAR): a fixed GOP of 12, so that context matching always has
        # I-frames inside each clip; videos whose I-frames are already that dense are copied
        _step("2/7 re-encode to GOP 12 where I-frames are sparse (csvr prepare reencode)")
        source = manifest
        manifest = out / "data-gop12" / "manifest.jsonl"
        _run(["prepare", "reencode", "--manifest", str(source), "--out", str(out / "data-gop12"),
              "--gop", str(DEMO_GOP)] + (["--workers", str(workers)] if workers else []))
    timed("index", t)

    # 3. poses -------------------------------------------------------------------------
    t = time.time()
    _step("3/7 poses")
    poses = out / "poses"
    json_dir = root / "poses" / "openpose"
    if json_dir.is_dir():
        _run(["prepare", "poses", "--manifest", str(manifest), "--out", str(poses), "--source", "openpose-json",
              "--json-dir", str(json_dir)] + (["--workers", str(workers)] if workers else []))
    else:
        _run(["prepare", "poses", "--manifest", str(manifest), "--out", str(poses), "--source", "mediapipe"]
             + (["--workers", str(workers)] if workers else []))
    timed("poses", t)

    common = [f"data.manifest={manifest}", f"data.pose_cache={poses}"]

    # 4. pretrain ----------------------------------------------------------------------
    t = time.time()
    _step("4/7 CSVR pretraining")
    pre = out / "pretrain-csvr"
    if not _done(pre / "summary.json"):
        resume = ["--resume"] if (pre / "checkpoints").is_dir() else []
        _run(["pretrain", "--config", pretrain_config, "--out", str(pre), *resume, *common, *(extra_pretrain or [])])
    else:
        print(f"(done: {pre}/summary.json)")
    ckpt = _final_checkpoint(pre)
    timed("pretrain", t)

    # 5. finetune ----------------------------------------------------------------------
    fraction = [f"data.label_fraction={label_fraction}"] if label_fraction else []
    runs = {}
    for name, feature in (("csvr", "fi"), ("scratch", "scratch")):
        t = time.time()
        _step(f"5/7 finetune: {name}")
        run = out / f"finetune-{name}"
        if not _done(run / "results.json"):
            resume = ["--resume"] if (run / "checkpoints").is_dir() else []
            _run(["finetune", "--config", finetune_config, "--pretrained", ckpt, "--feature", feature, "--out", str(run),
                  *resume, *common, *fraction, *(extra_finetune or [])])
        else:
            print(f"(done: {run}/results.json)")
        runs[name] = json.loads((run / "results.json").read_text())
        timed(f"finetune_{name}", t)

    # 6. retrieval ---------------------------------------------------------------------
    retrieval = {}
    for name, extra in (("csvr", ["--feature", "fi"]), ("scratch", ["--feature", "fs", "--random-init"])):
        t = time.time()
        _step(f"6/7 retrieval: {name}")
        run = out / f"retrieval-{name}"
        if not _done(run / "retrieval.json"):
            _run(["retrieve", "--checkpoint", ckpt, *extra, "--manifest", str(manifest), "--pose-cache", str(poses),
                  "--out", str(run)])
        else:
            print(f"(done: {run}/retrieval.json)")
        retrieval[name] = json.loads((run / "retrieval.json").read_text())
        timed(f"retrieval_{name}", t)

    # 7. report ------------------------------------------------------------------------
    t = time.time()
    _step("7/7 report")
    _run(["report", str(pre), str(out / "finetune-scratch"), str(out / "finetune-csvr"), str(out / "retrieval-scratch"),
          str(out / "retrieval-csvr"), "--out", str(out / "report")])
    timed("report", t)

    summary = {
        "out": str(out), "seconds": round(time.time() - t0, 1), "timings": timings,
        "rows": {
            name: {"video_top1": runs[name]["video_top1"], "clip_top1": runs[name]["clip_top1"],
                   "R@1": retrieval[name]["recall"]["1"], "R@5": retrieval[name]["recall"]["5"]}
            for name in ("scratch", "csvr")
        },
        "report": str(out / "report" / "report.html"),
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_table(summary)
    return summary


def print_table(summary: dict) -> None:
    rows = summary["rows"]
    print("\n== result (test split; top-1 = video level, mean of the clips' class scores)")
    print(f"{'':10s} {'top-1':>7s} {'clip top-1':>11s} {'R@1':>7s} {'R@5':>7s}")
    for name in ("scratch", "csvr"):
        r = rows[name]
        label = "scratch" if name == "scratch" else "CSVR"
        print(f"{label:10s} {100 * r['video_top1']:6.1f}% {100 * r['clip_top1']:10.1f}% "
              f"{100 * r['R@1']:6.1f}% {100 * r['R@5']:6.1f}%")
    print(f"\nreport: {summary['report']}   ({summary['seconds']:.0f} s in all)")


def register(commands, groups) -> None:
    import argparse

    p = commands.add_parser(
        "demo", help="the whole pipeline end to end on the built-in dataset (or your own)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output folder (re-running continues there)")
    p.add_argument("--data", default=None, help="your own dataset root (UCF101/HMDB51/folder layout) instead of "
                                                "the built-in one; poses are then extracted with MediaPipe")
    p.add_argument("--layout", default="auto", choices=["auto", "ucf101", "hmdb51", "folder"])
    p.add_argument("--workers", type=int, default=0, help="worker processes for the data steps (0 = cores)")
    p.add_argument("--label-fraction", type=float, default=None,
                   help="finetune on this stratified fraction of the training labels (default: the preset's)")
    p.add_argument("--pretrain-config", default="demo", help="pretraining preset (csvr/configs/pretrain)")
    p.add_argument("--finetune-config", default="demo", help="finetuning preset (csvr/configs/finetune)")
    p.add_argument("--fresh", action="store_true", help="delete --out first and start over")
    p.set_defaults(func=lambda a: (run_demo(a.out, a.data, a.layout, a.workers, a.fresh, a.label_fraction,
                                            a.pretrain_config, a.finetune_config), 0)[1])
