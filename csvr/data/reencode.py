"""``csvr prepare reencode``: give videos a fixed GOP so every clip holds I-frames.

The context branch matches a clip with the I-frames inside it (paper III-C), following CoViAR
(ref. [5]), which re-encodes UCF101/HMDB51 to MPEG-4 part 2 with an I-frame every 12 frames.
Videos from the web often have one keyframe every few seconds, or only one; this job re-encodes
those whose largest gap between I-frames exceeds ``max_gap`` frames (all of them with
``--all``) and copies the others unchanged, into a new root with the same relative paths, then
writes a manifest for the new root (split membership and labels carried over).

The audio stream is dropped (csvr uses video only). Each output is written through a temporary
file and renamed; a re-run skips outputs that already exist and decode to the same frame count.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csvr.data.index import Manifest, VideoRecord, _probe_entry, load_manifest, write_manifest
from csvr.data.video import VideoReader, probe
from csvr.data.writer import write_video
from csvr.errors import CsvrError, DatasetError, OutsideRootError, VideoError
from csvr.utils.parallel import default_workers, imap_progress

log = logging.getLogger(__name__)

# codec name -> (encoder, containers it may go in)
_CODECS = {
    "mpeg4": ("mpeg4", {".avi", ".mp4", ".mkv", ".mov"}),
    "h264": ("libx264", {".mp4", ".mkv", ".mov"}),
}


def max_iframe_gap(rec: VideoRecord) -> int:
    """Largest distance between consecutive I-frames, counting the video's start and end."""
    points = [0] + sorted(rec.iframes) + [max(rec.num_frames - 1, 0)]
    return max(b - a for a, b in zip(points, points[1:]))


def _output_suffix(src: str, codec: str) -> str:
    suffix = Path(src).suffix.lower()
    return suffix if suffix in _CODECS[codec][1] else ".mkv"


@dataclass
class _Job:
    src: str
    dst: str
    codec: str
    gop: int
    reencode: bool


def _bitrate(width: int, height: int, fps: float) -> int:
    # ~0.25 bit per pixel per frame: visually lossless-ish for MPEG-4 part 2 at UCF101 sizes
    return int(max(200_000, 0.25 * width * height * max(fps, 1.0)))


def _run_job(job: _Job) -> dict:
    try:
        if os.path.exists(job.dst):
            try:
                if probe(job.dst).num_frames > 0 and os.path.getsize(job.dst) > 0:
                    return {"status": "skipped"}
            except VideoError:
                pass  # a broken leftover: redo it
        Path(job.dst).parent.mkdir(parents=True, exist_ok=True)
        if not job.reencode:
            tmp = job.dst + ".part"
            shutil.copyfile(job.src, tmp)
            os.replace(tmp, job.dst)
            return {"status": "copied"}
        with VideoReader(job.src, threads=1) as r:
            frames = np.stack([f for _, f in r.iter_frames()])
            fps = r.fps
        h, w = frames.shape[1:3]
        if h % 2 or w % 2:  # yuv420p needs even sizes: drop the last row/column
            frames = frames[:, : h - h % 2, : w - w % 2]
        encoder = _CODECS[job.codec][0]
        write_video(job.dst, frames, fps=fps, codec=encoder, gop=job.gop, bframes=0,
                    bitrate=_bitrate(frames.shape[2], frames.shape[1], fps) if encoder == "mpeg4" else None,
                    crf=18 if encoder == "libx264" else None)
        return {"status": "reencoded"}
    except VideoError as e:
        return {"status": "failed", "reason": e.reason}
    except Exception as e:  # noqa: BLE001 - one bad file never stops the job
        return {"status": "failed", "reason": f"{e.__class__.__name__}: {e}"}


@dataclass
class ReencodeSummary:
    manifest: Path
    reencoded: int
    copied: int
    skipped: int
    failed: list[tuple[str, str]]
    seconds: float


def reencode_dataset(manifest_path: str | os.PathLike, out_root: str | os.PathLike, *, codec: str = "mpeg4",
                     gop: int = 12, max_gap: int | None = None, reencode_all: bool = False, workers: int = 0,
                     out_manifest: str | os.PathLike | None = None) -> ReencodeSummary:
    t0 = time.time()
    if codec not in _CODECS:
        raise CsvrError(f"--codec must be one of {', '.join(_CODECS)}, got {codec!r}")
    if gop < 1:
        raise CsvrError("--gop must be >= 1")
    max_gap = 2 * gop if max_gap is None else max_gap
    try:
        m: Manifest = load_manifest(manifest_path)
    except OutsideRootError as e:  # no flag here: the output keeps each path, so it must stay under --out
        raise DatasetError(f"{e.what} {e.path!r} points outside the dataset root {e.root!r}: re-encoding writes every "
                           "video at its own path under --out, so every path must stay inside the root") from None
    out_root = Path(out_root).resolve()
    if out_root == m.root:
        raise CsvrError("--out must be a different folder than the dataset root (originals are kept)")
    jobs, recs = [], {}
    for rec in m.records:
        redo = reencode_all or max_iframe_gap(rec) > max_gap
        rel = rec.path if not redo else str(Path(rec.path).with_suffix(_output_suffix(rec.path, codec)))
        dst = out_root / rel
        jobs.append(_Job(str(m.video_path(rec)), str(dst), codec, gop, redo))
        recs[str(dst)] = (rec, rel)
    nworkers = workers if workers > 0 else default_workers()
    counts = {"reencoded": 0, "copied": 0, "skipped": 0}
    failed: list[tuple[str, str]] = []
    new_records: dict[str, VideoRecord] = {}
    for job, res in imap_progress(_run_job, jobs, workers=nworkers, desc="re-encoding", unit="video"):
        rec, rel = recs[job.dst]
        if res["status"] == "failed":
            failed.append((rec.path, res["reason"]))
            continue
        counts[res["status"]] += 1
        info = _probe_entry((job.dst, rel))
        new = VideoRecord(rec.id, rel.replace(os.sep, "/"), rec.label, rec.class_name, dict(rec.splits))
        for k, v in info.items():
            setattr(new, k, v)
        new_records[rec.id] = new
    header = dict(m.header)
    header["root"] = os.path.relpath(out_root, Path(out_manifest or out_root / "manifest.jsonl").resolve().parent)
    header["reencoded"] = {"codec": codec, "gop": gop, "max_gap": max_gap, "all": reencode_all,
                           "source_manifest": str(Path(manifest_path).resolve())}
    out_manifest = Path(out_manifest or out_root / "manifest.jsonl")
    ordered = [new_records[r.id] for r in m.records if r.id in new_records]
    write_manifest(out_manifest, header, ordered)
    return ReencodeSummary(out_manifest, counts["reencoded"], counts["copied"], counts["skipped"], failed,
                           time.time() - t0)
