"""Clip index sampling: hand-computed indices, the short-video policy, I-frame selection."""

from __future__ import annotations

import numpy as np
import pytest

from csvr.data.sampling import (clip_indices, clip_span, count_iframes_in_span, iframes_for_span,
                                sample_pretrain_indices, uniform_clip_starts)


def test_clip_span():
    assert clip_span(16, 4) == 61
    assert clip_span(8, 2) == 15


def test_pretrain_future_follows_current_clip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        clip, fut, (first, last) = sample_pretrain_indices(300, 16, 4, 16, rng)
        start = clip[0]
        assert list(clip) == [start + 4 * k for k in range(16)]
        assert list(fut) == [start + 4 * (16 + k) for k in range(16)]
        assert fut[-1] <= 299
        assert (first, last) == (start, start + 60)


def test_pretrain_start_covers_all_valid_positions():
    rng = np.random.default_rng(1)
    starts = {int(sample_pretrain_indices(20, 2, 3, 2, rng)[0][0]) for _ in range(400)}
    # need (2 + 2 - 1) * 3 + 1 = 10 frames: starts 0..10
    assert starts == set(range(11))


def test_short_video_loop_and_pad():
    assert list(clip_indices(0, 6, 2, 7, "loop")) == [0, 2, 4, 6, 1, 3]
    assert list(clip_indices(0, 6, 2, 7, "pad")) == [0, 2, 4, 6, 6, 6]
    rng = np.random.default_rng(0)
    clip, fut, (first, last) = sample_pretrain_indices(5, 3, 1, 3, rng, "loop")
    assert list(clip) == [0, 1, 2] and list(fut) == [3, 4, 0]
    clip, fut, (first, last) = sample_pretrain_indices(5, 3, 1, 3, rng, "pad")
    assert list(fut) == [3, 4, 4]
    with pytest.raises(ValueError):
        clip_indices(0, 3, 1, 5, "wrap")


def test_uniform_clip_starts():
    # 100 frames, clip span 15: starts spread over 0..85
    assert uniform_clip_starts(100, 8, 2, 10) == [0, 9, 19, 28, 38, 47, 57, 66, 76, 85]
    assert uniform_clip_starts(10, 8, 2, 3) == [0, 0, 0]  # shorter than a clip
    assert uniform_clip_starts(100, 8, 2, 1) == [42]


def test_iframes_for_span():
    ifr = [0, 12, 24, 36, 48]
    assert iframes_for_span(ifr, 10, 40, 4) == ([12, 24, 36], False)
    assert iframes_for_span(ifr, 13, 23, 4) == ([12], True)  # none inside: nearest before
    assert iframes_for_span([30, 50], 5, 20, 4) == ([30], True)  # none before: first after
    picked, fb = iframes_for_span(list(range(0, 100, 5)), 0, 99, 3)
    assert picked == [0, 50, 95] and not fb  # evenly spaced without rng
    rng = np.random.default_rng(0)
    picked, _ = iframes_for_span(list(range(0, 100, 5)), 0, 99, 3, rng)
    assert len(picked) == 3 and picked == sorted(picked) and all(p % 5 == 0 for p in picked)
    with pytest.raises(ValueError):
        iframes_for_span([], 0, 10, 2)


def test_count_iframes_in_span():
    ifr = [0, 12, 24, 36, 48]
    assert count_iframes_in_span(ifr, 10, 40) == 3          # 12, 24, 36
    assert count_iframes_in_span(ifr, 12, 24) == 2          # both ends count
    assert count_iframes_in_span(ifr, 13, 23) == 0          # iframes_for_span falls back here
    assert count_iframes_in_span(ifr, 0, 0) == 1
    assert count_iframes_in_span(ifr, 49, 99) == 0
    assert count_iframes_in_span(np.array([24, 0, 12, 12]), 0, 30) == 3  # unsorted, duplicates once
    assert count_iframes_in_span([], 0, 10) == 0
    # not capped: 20 I-frames inside, iframes_for_span keeps 3 of them
    assert count_iframes_in_span(range(0, 100, 5), 0, 99) == 20
    assert len(iframes_for_span(list(range(0, 100, 5)), 0, 99, 3)[0]) == 3
    # GOP 12, an 8-frame clip at stride 3 spans 22 frames: 1 or 2 I-frames, 22/12 on average
    gop = list(range(0, 300, 12))
    counts = [count_iframes_in_span(gop, s, s + clip_span(8, 3) - 1) for s in range(0, 240)]
    assert set(counts) == {1, 2} and np.mean(counts) == pytest.approx(22 / 12)
    for s in range(0, 60):  # 0 exactly when iframes_for_span falls back
        for span in (1, 5, 12, 22):
            n = count_iframes_in_span(ifr, s, s + span - 1)
            assert (n == 0) == iframes_for_span(ifr, s, s + span - 1, 2)[1]
