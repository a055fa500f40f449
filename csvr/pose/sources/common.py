"""Helpers shared by the sources."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import sys
import threading

import numpy as np

from csvr.data.video import VideoReader


def to_unit(points: np.ndarray, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """``(..., J, 3)`` (x, y, confidence) -> x, y in [0, 1], confidence in [0, 1], float32.

    ``frame_size=(width, height)`` divides pixel coordinates by the frame size (``None``: the
    points are already normalised). A joint *outside the frame* (x or y outside [0, 1] after
    the division) is clipped to the border and gets confidence 0: it was not seen in the frame,
    and the cleaner treats it as missing. Non-finite values become missing joints (0, 0, 0).
    """
    p = np.asarray(points, dtype=np.float64).copy()
    if frame_size is not None:
        w, h = frame_size
        if w <= 0 or h <= 0:
            raise ValueError(f"bad frame size {frame_size}")
        p[..., 0] /= w
        p[..., 1] /= h
    bad = ~np.isfinite(p).all(-1)
    p[bad] = 0.0
    conf = np.clip(p[..., 2], 0.0, 1.0)
    xy = p[..., :2]
    outside = ((xy < 0.0) | (xy > 1.0)).any(-1)
    conf[outside] = 0.0
    p[..., :2] = np.clip(xy, 0.0, 1.0)
    p[..., 2] = conf
    return p.astype(np.float32)


def video_geometry(item) -> tuple[int | None, tuple[int, int] | None]:
    """(num_frames, (w, h)) of a pose job item, probing its video for what the item lacks."""
    n, size = item.num_frames, (item.width, item.height) if item.width and item.height else None
    if (n is None or size is None) and item.path:
        with VideoReader(item.path) as r:
            n = n if n is not None else r.num_frames
            size = size or (r.width, r.height)
    return n, size


#: Lines that MediaPipe / TF Lite's C++ side writes straight to file descriptor 2 and that say
#: nothing a user can act on: absl INFO / WARNING records (``I0000 ...`` / ``W0000 ...``, e.g.
#: "Feedback manager requires a model with a single signature inference"), TF Lite's
#: "INFO: Created TensorFlow Lite XNNPACK delegate" and absl's pre-initialisation notice.
HARMLESS_NATIVE_LINE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d\d[.\d]* +\d+ [\w.\-]+:\d+\] |INFO: |"
    r"WARNING: All log messages before absl::InitializeLog\(\) is called)")
#: an unfinished line that may become a harmless one (held back until its end arrives)
HARMLESS_NATIVE_PREFIX = re.compile(r"^[IW]")


class NativeStderr:
    """While active, filter what anything in this process writes to file descriptor 2.

    MediaPipe 0.10.21 logs through absl's C++ logging, which ignores ``GLOG_minloglevel``,
    ``TF_CPP_MIN_LOG_LEVEL`` and Python's ``absl.logging`` (measured: the same ``W0000`` lines
    with all three set), and it logs from the graph's own threads at any time (measured: during
    the caller's video decoding, between two ``process`` calls), so the only reliable switch is
    the file descriptor, for as long as the graph lives. Inside ``with`` blocks (re-entrant),
    fd 2 is a pipe read by a thread: harmless lines (:data:`HARMLESS_NATIVE_LINE`) go to the
    debug log, every other line (an ``E``/``F`` record, a Python warning or traceback, the
    progress bar) is written through to the real stderr as it arrives. Leaving the outermost
    block (or the interpreter exiting) restores fd 2 and drains the pipe.
    """

    def __init__(self, logger: logging.Logger | None = None):
        self.log = logger or logging.getLogger(__name__)
        self._depth = 0
        self._saved: int | None = None
        self._write: int | None = None
        self._thread: threading.Thread | None = None
        self.dropped_lines = 0

    def __enter__(self) -> "NativeStderr":
        self._depth += 1
        if self._depth == 1:
            self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._stop()

    def _start(self) -> None:
        try:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            read, write = os.pipe()
            self._saved = os.dup(2)
            os.dup2(write, 2)
        except OSError:  # no fd 2 (a daemon): run unfiltered
            self._saved = None
            return
        self._write = write
        self._thread = threading.Thread(target=self._pump, args=(read, self._saved), daemon=True,
                                        name="csvr-native-stderr")
        self._thread.start()
        atexit.register(self._stop)

    def _stop(self) -> None:
        if self._saved is None:
            return
        atexit.unregister(self._stop)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(self._saved, 2)  # fd 2 no longer holds the pipe's write end
        os.close(self._write)  # the last write end: the thread reads to EOF and ends
        if self._thread is not None:
            self._thread.join(timeout=10)
        os.close(self._saved)
        self._saved = self._write = self._thread = None

    def _pump(self, read: int, out: int) -> None:
        with os.fdopen(read, "rb", buffering=0) as pipe:
            pending = b""
            while True:
                try:
                    chunk = pipe.read(65536)
                except OSError:
                    break
                if not chunk:
                    break
                pending += chunk
                # complete lines are judged now; a partial one (a progress bar's "\r...") is
                # passed on at once unless it could be the start of a native log record
                *lines, pending = pending.split(b"\n")
                self._emit([line + b"\n" for line in lines], out)
                if pending and not HARMLESS_NATIVE_PREFIX.match(pending.decode("utf-8", "replace")):
                    self._emit([pending], out)
                    pending = b""
            if pending:
                self._emit([pending], out)

    def _emit(self, lines: list[bytes], out: int) -> None:
        keep = []
        for raw in lines:
            text = raw.decode("utf-8", "replace")
            if HARMLESS_NATIVE_LINE.match(text):
                self.dropped_lines += 1
                self.log.debug("native: %s", text.rstrip())
            else:
                keep.append(raw)
        if keep:
            with contextlib.suppress(OSError):
                os.write(out, b"".join(keep))

    def close(self) -> None:
        """Restore fd 2 whatever the nesting (for ``finally`` blocks)."""
        self._depth = 0
        self._stop()
