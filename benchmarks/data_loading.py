"""Data-loading benchmark (issue 2): clip loader vs naive loader, keyframe-only I-frames vs full decode.

Videos: 10-second, 25 fps, 320x240 clips (UCF101-like), encoded in this script with PyAV as
MPEG-4 part 2 in .avi with a 12-frame GOP (what the paper's CoViAR re-encoding gives) and as
H.264 (12-frame GOP, B-frames).

Measures
  1. pretraining samples/s of ``PretrainDataset`` (16x112x112 clip + 16-frame future clip + its
     I-frames, stride 4) through a DataLoader with 1 and 2 workers, against a naive loader that
     decodes the whole video and then indexes the same frames (same crops), in the same run;
  2. I-frame extraction (``read_iframes``) against decoding every frame and keeping the I-frames;
  3. peak RSS of one loader worker process at 16x112x112.

Run:  .venv/bin/python benchmarks/data_loading.py [--videos 8] [--samples 48]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from csvr.data.datasets import ClipConfig, PretrainDataset
from csvr.data.index import build_index, load_manifest
from csvr.data.sampling import iframes_for_span, sample_pretrain_indices
from csvr.data.transforms import crop_resize, random_resized_crop_box
from csvr.data.video import read_iframes, write_video


def make_videos(root: Path, n: int, codec: str, suffix: str) -> None:
    """UCF101-like content: a textured scene under a slow camera pan, two moving objects and mild
    sensor noise, so P-frames carry real residuals (pure static noise would make every P-frame
    nearly free and every I-frame enormous, unlike real video)."""
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    for v in range(n):
        d = root / f"c{v % 2}"
        d.mkdir(parents=True, exist_ok=True)
        noise = torch.from_numpy(rng.random((1, 3, 300, 600)).astype(np.float32))
        scene = F.avg_pool2d(noise, 9, stride=1, padding=4) * 0.6 + F.avg_pool2d(noise, 3, 1, 1) * 0.4
        scene = (scene[0].permute(1, 2, 0).numpy() * 200 + 20).astype(np.float32)
        frames = np.empty((250, 240, 320, 3), np.uint8)
        for t in range(250):
            ox, oy = int(t * 1.1) % 280, int(20 + 15 * np.sin(t / 30))
            img = scene[oy:oy + 240, ox:ox + 320].copy()
            for k in range(2):
                cx, cy = 160 + 100 * np.sin(t / (20 + 7 * k) + v), 120 + 60 * np.cos(t / (15 + 5 * k))
                blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (500.0 + 300 * k))[..., None]
                img = img * (1 - blob) + blob * np.array([230, 60 + 2 * v, 40 + 100 * k])
            frames[t] = np.clip(img + rng.normal(0, 2, img.shape), 0, 255)
        kw = dict(bitrate=800_000) if codec == "mpeg4" else dict(crf=23, bframes=2)
        write_video(d / f"v{v}{suffix}", frames, codec=codec, gop=12, **kw)


class NaiveDataset(torch.utils.data.Dataset):
    """Decodes the whole video, then indexes the frames a sample needs (same crops)."""

    def __init__(self, manifest, cfg: ClipConfig):
        self.m, self.records, self.cfg = manifest, manifest.records, cfg

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        rec, c = self.records[i], self.cfg
        rng = np.random.default_rng(i)
        with av.open(str(self.m.video_path(rec))) as cont:
            s = cont.streams.video[0]
            s.codec_context.thread_count = 1
            frames = np.stack([f.to_ndarray(format="rgb24") for f in cont.decode(s)])
        clip, fut, (a, b) = sample_pretrain_indices(len(frames), c.frames, c.stride, c.future_frames, rng)
        ifr, _ = iframes_for_span(rec.iframes, a, b, c.max_iframes, rng)
        sel = frames[np.concatenate([clip, fut, ifr])]
        box = random_resized_crop_box(sel.shape[1], sel.shape[2], rng)
        return {"clip": crop_resize(sel, box, c.size)}


def rate(ds, workers: int, samples: int) -> float:
    dl = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=workers, shuffle=False,
                                     sampler=list(range(len(ds))) * (samples // len(ds) + 1))
    it = iter(dl)
    next(it)  # start-up (worker spawn, first open) excluded
    t = time.perf_counter()
    n = 0
    for _ in it:
        n += 1
        if n >= samples:
            break
    return n / (time.perf_counter() - t)


def _worker_rss(manifest_path: str, q) -> None:
    torch.set_num_threads(1)
    m = load_manifest(manifest_path)
    ds = PretrainDataset(m, m.records, ClipConfig())
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(40):
        ds[i % len(ds)]
    q.put((base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--samples", type=int, default=48)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.time()
        make_videos(tmp / "avi", args.videos, "mpeg4", ".avi")
        make_videos(tmp / "h264", args.videos, "libx264", ".mp4")
        print(f"encoded {2 * args.videos} videos in {time.time() - t:.0f} s", file=sys.stderr)
        cfg = ClipConfig()  # 16 frames, stride 4, future 16, 112 px, short side 128
        rows = []
        for name in ("avi", "h264"):
            build_index(tmp / name, tmp / f"{name}.jsonl", layout="folder", workers=1)
            m = load_manifest(tmp / f"{name}.jsonl")
            ds, naive = PretrainDataset(m, m.records, cfg), NaiveDataset(m, cfg)
            for w in (1, 2):
                r_fast = rate(ds, w, args.samples)
                r_naive = rate(naive, w, max(8, args.samples // 4))
                rows.append((name, w, r_fast, r_naive))
            # I-frame extraction: keyframe-only vs full decode
            paths = [m.video_path(r) for r in m.records]
            t = time.perf_counter()
            for p in paths:
                read_iframes(p)
            t_key = time.perf_counter() - t
            t_full = {}
            for convert_all in (False, True):
                t = time.perf_counter()
                for p in paths:
                    with av.open(str(p)) as c:
                        s = c.streams.video[0]
                        s.codec_context.thread_count = 1
                        if convert_all:  # the usual naive way: every frame to an array, then pick
                            arrs = [(int(f.pict_type), f.to_ndarray(format="rgb24")) for f in c.decode(s)]
                            _ = [a for typ, a in arrs if typ == 1]
                        else:  # strictest baseline: decode everything, convert only the I-frames
                            _ = [f.to_ndarray(format="rgb24") for f in c.decode(s) if int(f.pict_type) == 1]
                t_full[convert_all] = time.perf_counter() - t
            rows.append((name, "iframes", len(paths) / t_key, len(paths) / t_full[False], len(paths) / t_full[True]))
        q = mp.get_context("spawn").Queue()
        p = mp.get_context("spawn").Process(target=_worker_rss, args=(str(tmp / "avi.jsonl"), q))
        p.start()
        base, peak = q.get()
        p.join()
    print("| videos | workers | csvr loader (samples/s) | naive loader (samples/s) | ratio |")
    print("|---|---|---|---|---|")
    for name, w, a, b, *_ in rows:
        if w == "iframes":
            continue
        print(f"| {name} 320x240 10 s GOP 12 | {w} | {a:.1f} | {b:.2f} | {a / b:.1f}x |")
    print()
    print("| videos | read_iframes (videos/s) | decode all, convert I only (videos/s) | ratio "
          "| decode + convert all (videos/s) | ratio |")
    print("|---|---|---|---|---|---|")
    for name, w, a, *b in rows:
        if w == "iframes":
            print(f"| {name} | {a:.1f} | {b[0]:.2f} | {a / b[0]:.1f}x | {b[1]:.2f} | {a / b[1]:.1f}x |")
    print()
    print(f"peak RSS of one loader worker (16x112x112 clip + future + I-frames, 40 samples): "
          f"{peak / 1024:.0f} MiB (after imports: {base / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
