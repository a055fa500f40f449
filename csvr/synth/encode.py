"""H.264 encoding with a per-video GOP policy (PyAV / libx264).

GOP policy (documented in the dataset README):

* each video draws its own maximum keyframe interval ``keyint`` (x264 ``keyint``), so I-frames
  are regular within a video but their spacing differs between videos;
* scene-cut-like events (a camera cut or a sudden lighting change) force an I-frame on the
  event's frame: PyAV hands ``frame.pict_type = I`` to libx264, which codes an IDR frame there
  and restarts its keyint count;
* x264's own scene-cut detection is off (``scenecut=0``), so every I-frame is one of the above
  and :func:`expected_iframes` predicts them exactly;
* B-frames are on (x264's preset default), so decode order differs from display order, as in
  real videos; 25 fps, yuv420p (even sizes only);
* bit-exact across runs: ``threads=1`` and ``mbtree=0`` (see :class:`H264Writer`).

Fixed GOP (``csvr data synth --gop N``): every video gets ``keyint=N``, ``min-keyint=N``,
``scenecut=0`` and no forced I-frames, so its I-frames are exactly frames 0, N, 2N, ... (the
paper re-encodes every video with a GOP of 12, as CoViAR). x264 clips ``min-keyint`` to
``keyint / 2 + 1``; with scene-cut detection off that changes nothing.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterable

import av
import numpy as np
from av.video.frame import PictureType


CRF = 26
PRESET = "veryfast"


def expected_iframes(num_frames: int, keyint: int, forced: Iterable[int]) -> list[int]:
    """Frames x264 codes as I (IDR) under the policy above."""
    forced = set(int(f) for f in forced)
    out, last = [], None
    for i in range(num_frames):
        if last is None or i in forced or i - last >= keyint:
            out.append(i)
            last = i
    return out


class H264Writer:
    """Encode RGB uint8 frames one at a time into an .mp4 written atomically.

    Use as a context manager; the file appears under ``path`` only when the block finishes
    without an exception: it is written to ``.<name>.tmp`` beside it and renamed. There is no
    fsync (it cost ~30 ms per file on a busy disk, more than encoding): a killed process cannot
    leave a partial file under the final name, and the generator's size check catches a file
    truncated by a power cut.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: int = 25,
                 keyint: int = 50, forced: Iterable[int] = (), crf: int = CRF, preset: str = PRESET,
                 min_keyint: int | None = None):
        if width % 2 or height % 2:
            raise ValueError(f"H.264 with yuv420p needs an even width and height, got {width}x{height}")
        self.path = path
        self.width, self.height = width, height
        self.fps, self.keyint, self.crf, self.preset = fps, int(keyint), crf, preset
        # x264 min-keyint: min(keyint, 25) by default (the per-video GOP policy), keyint for a fixed GOP
        self.min_keyint = min(self.keyint, 25) if min_keyint is None else int(min_keyint)
        self.forced = set(int(f) for f in forced)
        self.index = 0
        self.keyframes: list[int] = []   # pts of packets flagged key, in frame units

    def __enter__(self) -> "H264Writer":
        self._tmp = os.path.join(os.path.dirname(os.fspath(self.path)) or ".",
                                 "." + os.path.basename(os.fspath(self.path)) + ".tmp")
        try:
            self._container = av.open(self._tmp, "w", format="mp4")
            st = self._container.add_stream("libx264", rate=Fraction(self.fps, 1))
            st.width, st.height = self.width, self.height
            st.pix_fmt = "yuv420p"
            st.codec_context.gop_size = self.keyint
            st.codec_context.thread_count = 1
            st.options = {
                "crf": str(self.crf), "preset": self.preset,
                # mbtree=0: with B-frames on, x264's macroblock-tree rate control (in the libx264
                # PyAV 18.1 bundles) gave a different bitstream on every run, even single-threaded
                # (12 distinct outputs in 12 runs with a perturbed heap); without it, 1 in 12.
                "x264-params": (f"keyint={self.keyint}:min-keyint={self.min_keyint}:scenecut=0"
                                ":threads=1:mbtree=0"),
            }
            self._stream = st
        except BaseException:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)
            raise
        return self

    def _mux(self, packets) -> None:
        for p in packets:
            if p.is_keyframe and p.pts is not None:
                self.keyframes.append(int(round(float(p.pts * p.time_base) * self.fps)))
            self._container.mux(p)

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.index
        frame.time_base = Fraction(1, self.fps)
        if self.index in self.forced:
            frame.pict_type = PictureType.I
        self._mux(self._stream.encode(frame))
        self.index += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        ok = False
        try:
            if exc_type is None:
                self._mux(self._stream.encode(None))
            self._container.close()
            ok = exc_type is None
        finally:
            if ok:
                os.replace(self._tmp, self.path)
            elif os.path.exists(self._tmp):
                os.unlink(self._tmp)
        self.keyframes.sort()
