"""Which frames a sample uses: clip, future clip, I-frames, evaluation clips.

All functions return frame indices (0-based, presentation order) and never touch a file, so they
are cheap to test exhaustively.

Short videos (documented policy, ``short_video``):
    A clip of ``T`` frames at stride ``s`` covers ``(T - 1) * s + 1`` frames; a pretraining
    sample (clip + future clip) covers ``(T + T' - 1) * s + 1``. When a video is shorter, the
    sample starts at frame 0 and indices past the end are either

    - ``"loop"`` (default): wrapped around (``i mod num_frames``), as VCOP/IIC loaders do, or
    - ``"pad"``: clamped to the last frame (the video "freezes").
"""

from __future__ import annotations

from typing import Literal

import numpy as np

ShortVideo = Literal["loop", "pad"]


def clip_span(frames: int, stride: int) -> int:
    """Number of source frames a clip of ``frames`` at ``stride`` covers."""
    return (frames - 1) * stride + 1


def _fit(raw: np.ndarray, num_frames: int, policy: ShortVideo) -> np.ndarray:
    if num_frames <= 0:
        raise ValueError("video has no frames")
    if policy == "loop":
        return raw % num_frames
    if policy == "pad":
        return np.minimum(raw, num_frames - 1)
    raise ValueError(f"short_video must be 'loop' or 'pad', got {policy!r}")


def clip_indices(start: int, frames: int, stride: int, num_frames: int, policy: ShortVideo = "loop") -> np.ndarray:
    """``frames`` indices from ``start`` at ``stride``, fitted to the video by ``policy``."""
    raw = start + stride * np.arange(frames, dtype=np.int64)
    return _fit(raw, num_frames, policy)


def sample_pretrain_indices(num_frames: int, frames: int, stride: int, future_frames: int,
                            rng: np.random.Generator, policy: ShortVideo = "loop",
                            ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """A random current clip and the future clip right after it (paper III-B, III-D).

    The current clip is frames ``start + s*k`` (k < T); the future clip continues at the same
    stride: ``start + s*(T + k)`` (k < T'). Returns ``(clip, future, (first, last))`` where
    ``(first, last)`` is the current clip's span in source frames (clamped to the video), the
    window in which its I-frames are looked for.
    """
    need = clip_span(frames + future_frames, stride)
    start = int(rng.integers(0, num_frames - need + 1)) if num_frames >= need else 0
    raw = start + stride * np.arange(frames + future_frames, dtype=np.int64)
    fitted = _fit(raw, num_frames, policy)
    first = start
    last = min(start + (frames - 1) * stride, num_frames - 1)
    return fitted[:frames], fitted[frames:], (first, last)


def sample_clip_indices(num_frames: int, frames: int, stride: int, rng: np.random.Generator,
                        policy: ShortVideo = "loop") -> np.ndarray:
    """One random clip (training-time sampling for finetuning and contrastive baselines)."""
    need = clip_span(frames, stride)
    start = int(rng.integers(0, num_frames - need + 1)) if num_frames >= need else 0
    return clip_indices(start, frames, stride, num_frames, policy)


def uniform_clip_starts(num_frames: int, frames: int, stride: int, num_clips: int) -> list[int]:
    """Starts of ``num_clips`` clips spaced uniformly over the video (evaluation, retrieval).

    The first clip starts at frame 0 and the last one ends at the last frame; a video shorter
    than one clip gives ``num_clips`` clips starting at 0 (fitted by the short-video policy).
    """
    if num_clips < 1:
        raise ValueError("num_clips must be >= 1")
    room = num_frames - clip_span(frames, stride)
    if room <= 0:
        return [0] * num_clips
    if num_clips == 1:
        return [room // 2]
    return [int(round(x)) for x in np.linspace(0, room, num_clips)]


def count_iframes_in_span(iframes: list[int] | np.ndarray, first: int, last: int) -> int:
    """How many I-frames lie inside the span ``first..last`` (both included), before any cap.

    0 exactly when :func:`iframes_for_span` falls back (``fallback`` True); otherwise the number
    of I-frames it chooses from (it keeps at most ``max_count`` of them). Duplicates count once.
    """
    arr = np.unique(np.asarray(iframes, dtype=np.int64))
    return int(np.count_nonzero((arr >= first) & (arr <= last)))


def iframes_for_span(iframes: list[int] | np.ndarray, first: int, last: int, max_count: int,
                     rng: np.random.Generator | None = None) -> tuple[list[int], bool]:
    """The I-frames the context branch uses for a clip spanning source frames ``first..last``.

    All I-frames inside the span (paper III-C: every I-frame of the clip is a positive). When
    there are more than ``max_count``, a random subset of ``max_count`` (sorted) is kept (a fixed
    tensor size for batching; ``rng=None`` keeps evenly spaced ones). When the span holds none,
    the nearest I-frame *before* it is used (or, when there is none before, the first one after)
    and the second return value, ``fallback``, is True.
    """
    arr = np.asarray(sorted(int(i) for i in iframes), dtype=np.int64)
    if arr.size == 0:
        raise ValueError("the video has no I-frames")
    inside = arr[(arr >= first) & (arr <= last)]
    if inside.size == 0:
        before = arr[arr < first]
        return [int(before[-1] if before.size else arr[0])], True
    if inside.size > max_count:
        if rng is None:
            pick = np.linspace(0, inside.size - 1, max_count).round().astype(int)
        else:
            pick = np.sort(rng.choice(inside.size, size=max_count, replace=False))
        inside = inside[pick]
    return [int(i) for i in inside], False
