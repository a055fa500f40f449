"""Encoding videos with PyAV: :func:`write_video`.

The writing side of the data layer, separate from reading (:mod:`csvr.data.video`): re-encoding a
dataset (:mod:`csvr.data.reencode`, ``csvr prepare reencode``) writes through it, and so do the
tests and benchmarks that need real encoded videos with a known GOP. The built-in synthetic
dataset (:mod:`csvr.synth`, a lower layer) has its own writer.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from csvr.utils.io import atomic_write

_PICT_I = 1  # AVPictureType.AV_PICTURE_TYPE_I: a frame given this type is encoded as an I-frame
# the container format for each suffix (others: FFmpeg guesses from the name)
_FORMATS = {".avi": "avi", ".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov"}
# encoders that take no max_b_frames setting
_NO_BFRAMES = ("libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1", "mjpeg")

av.logging.set_level(av.logging.PANIC)  # FFmpeg's own stderr chatter (encoder statistics) stays quiet


def write_video(path: str | os.PathLike, frames: Sequence[np.ndarray] | np.ndarray, fps: float = 25.0,
                codec: str = "libx264", gop: int = 12, bframes: int = 0, crf: int | None = None,
                bitrate: int | None = None, pix_fmt: str = "yuv420p", force_iframes: Sequence[int] = (),
                fixed_gop: bool = True, options: dict | None = None, threads: int = 1) -> None:
    """Encode uint8 RGB frames ``(n, H, W, 3)`` to ``path``; the container follows the suffix.

    ``gop`` is the keyframe interval; ``fixed_gop`` disables x264's scene-cut keyframes (an
    I-frame exactly every ``gop`` frames, as CoViAR's MPEG-4 re-encoding). ``force_iframes``
    makes the given frames I-frames (x264 turns them into IDR keyframes). Written through a
    temporary file and renamed, so a killed encode never leaves a truncated video.
    """
    path = Path(path)
    frames = np.asarray(frames) if not isinstance(frames, np.ndarray) else frames
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (n, H, W, 3), got {frames.dtype} {frames.shape}")
    h, w = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (h % 2 or w % 2):
        raise ValueError(f"{codec} with yuv420p needs even width and height, got {w}x{h}")
    forced = set(int(i) for i in force_iframes)
    fmt = _FORMATS.get(path.suffix.lower())
    with atomic_write(path, "wb") as f:
        container = av.open(f, "w", format=fmt)
        try:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = w, h
            stream.pix_fmt = pix_fmt
            stream.gop_size = gop
            ctx = stream.codec_context
            ctx.thread_count = threads
            if bframes is not None and codec not in _NO_BFRAMES:
                ctx.max_b_frames = bframes
            opts = dict(options or {})
            if codec == "libx264":
                params = [f"keyint={gop}", f"bframes={bframes}"]
                if fixed_gop:
                    params += [f"min-keyint={gop}", "scenecut=0"]
                opts.setdefault("x264-params", ":".join(params))
                if crf is not None:
                    opts.setdefault("crf", str(crf))
                opts.setdefault("preset", "veryfast")
            elif codec in ("libvpx-vp9", "libvpx"):
                opts.setdefault("g", str(gop))
                if fixed_gop:
                    opts.setdefault("keyint_min", str(gop))
                if crf is not None:
                    opts.setdefault("crf", str(crf))
                    opts.setdefault("b", "0")
                opts.setdefault("deadline", "realtime")
                opts.setdefault("cpu-used", "8")
            elif codec in ("mpeg4", "msmpeg4", "msmpeg4v2") and fixed_gop:
                opts.setdefault("sc_threshold", "1000000000")
            if bitrate is not None:
                stream.bit_rate = int(bitrate)
            stream.options = opts
            for i, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                if i in forced:
                    frame.pict_type = _PICT_I
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
