"""Decoding in a parent process and then in forked data-loader workers (issue 15's loader work).

The readers share one scaler context per thread and process. A context made in the parent must
never be used or freed in a forked child: FFmpeg's scaler thread pool does not survive a fork and
freeing it there deadlocked the worker (found while speeding up the loader; this reproduced it).
"""

from __future__ import annotations

import numpy as np
import torch

from csvr.data.datasets import ClipConfig, PretrainDataset
from csvr.data.index import load_manifest
from csvr.data.video import VideoReader


def test_forked_workers_decode_after_the_parent_did(tiny_synth):
    m = load_manifest(tiny_synth["manifest"])
    cfg = ClipConfig(frames=4, stride=2, future_frames=4, size=32, decode_short_side=None, max_iframes=2)
    ds = PretrainDataset(m, m.records[:4], cfg)
    in_parent = [ds[i]["clip"] for i in range(4)]  # the parent's scaler context now exists
    ctx = torch.multiprocessing.get_context("fork")
    dl = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, multiprocessing_context=ctx, timeout=60)
    in_workers = [b["clip"][0] for b in dl]
    for a, b in zip(in_parent, in_workers):
        assert torch.equal(a, b)  # same seed, epoch and index: the same sample, decoded in the child


def test_shared_scaler_gives_the_frames_of_a_fresh_one(videos, reference_decode):
    ref, _ = reference_decode(videos["h264_b.mp4"])
    with VideoReader(videos["h264_b.mp4"]) as r1, VideoReader(videos["mpeg4.avi"]) as r2:
        assert r1._reformatter is r2._reformatter
        a = r1.read([5, 30, 31])
        r2.read([3])  # same size, other video, between two reads of the first
        b = r1.read([40])
    assert np.array_equal(a, np.stack([ref[5], ref[30], ref[31]]))
    assert np.array_equal(b[0], ref[40])
