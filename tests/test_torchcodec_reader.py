"""The optional torchcodec decoder (issue 15): the same frames and samples as the PyAV reader.

torchcodec needs FFmpeg's shared libraries, which CI does not have: the comparisons skip there
(with the reason); the error a user gets without it is tested everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csvr.data.torchcodec_reader as tcr
from csvr.data.datasets import ClipConfig, PretrainDataset
from csvr.data.index import load_manifest
from csvr.data.video import VideoReader
from csvr.errors import ConfigError

WHY = tcr.torchcodec_available()
needs_torchcodec = pytest.mark.skipif(WHY is not None, reason=f"torchcodec unusable here: {WHY}")


@needs_torchcodec
@pytest.mark.parametrize("name", ["h264_b.mp4", "mpeg4.avi", "vp9.webm"])
def test_same_frames_as_the_pyav_reader(videos, name):
    idx = [0, 5, 11, 12, 13, 40, 71, 5]
    with VideoReader(videos[name]) as a, tcr.TorchCodecReader(videos[name]) as b:
        assert b.num_frames == a.num_frames
        assert np.array_equal(b.read(idx), a.read(idx))
        assert b.iframe_indices() == a.iframe_indices()


@needs_torchcodec
def test_dataset_samples_are_the_same_with_either_decoder(tiny_synth):
    m = load_manifest(tiny_synth["manifest"])
    kw = dict(frames=4, stride=2, future_frames=4, size=32, decode_short_side=None, max_iframes=2)
    a = PretrainDataset(m, m.records[:3], ClipConfig(**kw))
    b = PretrainDataset(m, m.records[:3], ClipConfig(**kw, decoder="torchcodec"))
    for i in range(3):
        sa, sb = a[i], b[i]
        for key in ("clip", "future", "iframes"):
            assert torch.equal(sa[key], sb[key]), key


def test_a_clear_error_without_torchcodec(monkeypatch, videos):
    monkeypatch.setattr(tcr, "torchcodec_available", lambda: "ImportError: No module named 'torchcodec'")
    with pytest.raises(ConfigError, match="data.clip.decoder=pyav"):
        tcr.TorchCodecReader(videos["mpeg4.avi"])


@pytest.mark.parametrize("backend", ["pyav", "torchcodec"])
def test_both_readers_check_indices_the_same_way(videos, backend):
    if backend == "torchcodec" and WHY is not None:
        pytest.skip(f"torchcodec unusable here: {WHY}")
    open_reader = VideoReader if backend == "pyav" else tcr.TorchCodecReader
    with open_reader(videos["mpeg4.avi"]) as r:
        assert r.read([]).shape == (0, r.height, r.width, 3)
        with pytest.raises(IndexError, match=r"frame indices \[72, -1\] outside 0\.\.71"):
            r.read([3, 72, -1])
