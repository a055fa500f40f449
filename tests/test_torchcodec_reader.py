"""The optional torchcodec decoder (issue 15): the same samples as the PyAV reader.

What every reader must do (frame count, frames by index, I-frames, errors) is checked on both in
tests/test_video_reader_contract.py. torchcodec needs FFmpeg's shared libraries, which CI does not
have: the comparisons skip there (with the reason); the error a user gets without it is tested
everywhere.
"""

from __future__ import annotations

import pytest
import torch

import csvr.data.torchcodec_reader as tcr
from csvr.data.datasets import ClipConfig, PretrainDataset
from csvr.data.index import load_manifest
from csvr.errors import ConfigError

WHY = tcr.torchcodec_available()
needs_torchcodec = pytest.mark.skipif(WHY is not None, reason=f"torchcodec unusable here: {WHY}")


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

