"""The reader contract (:class:`csvr.data.video.FrameReader`) checked the same way on every reader
the datasets can open: the PyAV reader and the optional torchcodec one.

Real videos written with csvr's own writer (16 frames of 64x32 that carry their index, see
``conftest.index_frames``): H.264 with B-frames and a forced IDR frame off the GOP grid, MPEG-4
part 2 in AVI, VP9 in WebM. torchcodec needs FFmpeg's shared libraries, which CI does not have:
its cases skip there, with the reason.
"""

from __future__ import annotations

import numpy as np
import pytest

from csvr.data.torchcodec_reader import TorchCodecReader, torchcodec_available
from csvr.data.video import FrameReader, VideoReader
from csvr.data.writer import write_video
from csvr.errors import VideoError

from conftest import frame_level, index_frames

N, H, W, FPS = 16, 32, 64, 25.0
# how each video is written, and the I-frames that must come out (also checked against a full decode)
SPECS = {
    "h264.mp4": (dict(codec="libx264", gop=8, bframes=2, force_iframes=[5]), [0, 5, 13]),
    "mpeg4.avi": (dict(codec="mpeg4", gop=8), [0, 8]),
    "vp9.webm": (dict(codec="libvpx-vp9", gop=8, bframes=None), [0, 8]),
}
# mean absolute difference (0-255 levels) between a written frame and its decoded copy: the loss of
# these codecs at their default rates (measured 3.5 to 5.7)
CODEC_LOSS = 8.0
WHY = torchcodec_available()
BACKENDS = ["pyav", pytest.param("torchcodec", marks=pytest.mark.skipif(
    WHY is not None, reason=f"torchcodec unusable here: {WHY}"))]


def open_reader(backend: str, path, size: tuple[int, int] | None = None) -> FrameReader:
    """A reader the way the datasets open it (torchcodec scales at open, PyAV per read)."""
    if backend == "pyav":
        return VideoReader(path, threads=1, parse_intra=False)
    return TorchCodecReader(path, threads=1, size=size)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict:
    """``{"frames": what was written, name: path}`` for every video of :data:`SPECS`."""
    d = tmp_path_factory.mktemp("contract")
    frames = index_frames(N, h=H, w=W)
    out = {"frames": frames}
    for name, (kw, _) in SPECS.items():
        write_video(d / name, frames, fps=FPS, **kw)
        out[name] = d / name
    return out


def test_both_readers_declare_the_contract():
    assert issubclass(VideoReader, FrameReader) and issubclass(TorchCodecReader, FrameReader)
    assert FrameReader.__abstractmethods__ == {"read", "iframe_indices", "close"}
    assert set(FrameReader.__annotations__) == {"path", "num_frames", "width", "height", "fps"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(SPECS))
def test_metadata(written, backend, name):
    with open_reader(backend, written[name]) as r:
        assert isinstance(r, FrameReader)
        assert r.path == str(written[name])
        assert r.num_frames == N
        assert r.fps == pytest.approx(FPS)
        assert (r.width, r.height) == (W, H)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(SPECS))
def test_frames_by_index(written, reference_decode, backend, name):
    """Unordered, repeated indices across GOPs: exactly the frames of a full decode with plain
    PyAV (so the same for both readers), within the codec's loss of the written ones."""
    ref, _ = reference_decode(written[name])
    idx = [15, 0, 3, 3, 8, 9, 7, 5]
    with open_reader(backend, written[name]) as r:
        got = r.read(idx)
    assert got.shape == (len(idx), H, W, 3) and got.dtype == np.uint8
    for k, i in enumerate(idx):
        assert np.array_equal(got[k], ref[i]), (name, i)
        assert frame_level(got[k]) == i  # the content says which frame it is
        loss = np.abs(got[k].astype(np.int16) - written["frames"][i].astype(np.int16)).mean()
        assert loss < CODEC_LOSS, (name, i, loss)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_at_a_reduced_size(written, backend):
    """``size=(width, height)`` scales while decoding (the filters differ: pixels, not frames)."""
    idx = [12, 1, 6]
    with open_reader(backend, written["h264.mp4"], size=(32, 16)) as r:
        got = r.read(idx, size=(32, 16))
    assert got.shape == (3, 16, 32, 3) and got.dtype == np.uint8
    assert [frame_level(x) for x in got] == idx


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(SPECS))
def test_iframe_indices(written, reference_decode, backend, name):
    _, ref_iframes = reference_decode(written[name])
    with open_reader(backend, written[name]) as r:
        assert r.iframe_indices() == ref_iframes == SPECS[name][1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_index_and_indices_out_of_range(written, backend):
    with open_reader(backend, written["mpeg4.avi"]) as r:
        empty = r.read([])
        assert empty.shape == (0, H, W, 3) and empty.dtype == np.uint8
        with pytest.raises(IndexError, match=rf"frame indices \[16, -1\] outside 0\.\.{N - 1}"):
            r.read([3, 16, -1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_and_corrupt_files_raise_video_error(tmp_path, backend):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(VideoError) as ei:
        open_reader(backend, missing)
    assert ei.value.path == str(missing) and ei.value.reason == "file not found"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError) as ei:
        open_reader(backend, junk)
    assert ei.value.path == str(junk) and ei.value.reason.startswith("cannot open")
