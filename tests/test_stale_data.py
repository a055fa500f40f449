"""A dataset that cannot go stale silently (issue 24): videos changed or missing since indexing,
truncated files that still open, and damaged containers whose keyframe flags lie. Every test
makes its own real file with PyAV (then replaces, truncates or cuts it) and decodes it for real."""

from __future__ import annotations

import json
import logging
import os

import av
import numpy as np
import pytest

from csvr.data.datasets import ClipConfig, ClipDataset, PretrainDataset
from csvr.data.index import build_index, load_manifest
from csvr.data.video import VideoReader, probe
from csvr.data.writer import write_video
from csvr.errors import DatasetError

from conftest import frame_level, index_frames

CFG = ClipConfig(frames=4, stride=2, future_frames=4, size=32, decode_short_side=None, max_iframes=2,
                 crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_prob=0.0)


def _folder(root, n_videos: int = 3, frames: int = 24):
    (root / "a").mkdir(parents=True)
    for k in range(n_videos):
        write_video(root / "a" / f"{k}.avi", index_frames(frames, seed=k), codec="mpeg4", gop=8)
    build_index(root, root / "m.jsonl", layout="folder", workers=1)
    return root / "m.jsonl"


def _warnings(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


def test_video_replaced_or_missing_since_indexing_is_skipped_with_one_line(tmp_path, caplog):
    manifest = _folder(tmp_path / "ds", n_videos=4)
    root = tmp_path / "ds"
    # the user's case: a video replaced after indexing by a 1-frame one (it used to train as 8
    # copies of that frame); and one deleted
    write_video(root / "a" / "1.avi", index_frames(1), codec="mpeg4", gop=8)
    (root / "a" / "3.avi").unlink()
    with caplog.at_level(logging.WARNING):
        m = load_manifest(manifest)
    assert [r.path for r in m.records] == ["a/0.avi", "a/2.avi"]
    assert [(r.path, why) for r, why in m.stale] == [("a/1.avi", m.stale[0][1]), ("a/3.avi", "missing")]
    assert "changed" in m.stale[0][1]
    lines = _warnings(caplog, "since indexing")
    assert len(lines) == 1, lines
    assert "2 of 4" in lines[0] and "a/1.avi" in lines[0] and "a/3.avi" in lines[0]
    assert "csvr prepare index" in lines[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # loaded again by the same job (finetuning does): said once
        assert len(load_manifest(manifest).records) == 2
    assert not _warnings(caplog, "since indexing")
    with pytest.raises(DatasetError, match="no readable video"):  # nothing in that selection survives
        m.select_nonempty("1", "test")
    # a caller that never opens the videos is not bothered
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert len(load_manifest(manifest, check_paths=False).records) == 4
    assert not _warnings(caplog, "since indexing")
    # re-indexing probes only the changed file, and then nothing is stale
    s = build_index(root, manifest, layout="folder", workers=1)
    assert s.probed == 1 and s.total == 3  # the deleted one is no longer listed
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        m2 = load_manifest(manifest)
    assert not m2.stale and m2.get("a/1").num_frames == 1


def test_every_video_stale_is_refused_and_a_new_time_alone_is_a_warning(tmp_path, caplog):
    manifest = _folder(tmp_path / "ds", n_videos=2)
    for k in range(2):  # touched: same bytes, new time (a copy without times): used, one warning
        p = tmp_path / "ds" / "a" / f"{k}.avi"
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    with caplog.at_level(logging.WARNING):
        assert len(load_manifest(manifest).records) == 2
    assert _warnings(caplog, "new modification time")
    for k in range(2):  # replaced: another size
        write_video(tmp_path / "ds" / "a" / f"{k}.avi", index_frames(1), codec="mpeg4", gop=8)
    with pytest.raises(DatasetError, match=r"all 2 .*since indexing.*csvr prepare index"):
        load_manifest(manifest)


def test_dataset_refuses_a_video_changed_during_the_run(tmp_path, caplog):
    manifest = _folder(tmp_path / "ds", n_videos=3)
    m = load_manifest(manifest)
    ds = PretrainDataset(m, m.records, CFG)
    write_video(tmp_path / "ds" / "a" / "1.avi", index_frames(1), codec="mpeg4", gop=8)  # after loading
    with caplog.at_level(logging.WARNING):
        item = ds[1]
    assert int(item["index"]) != 1  # never 8 copies of the one frame
    assert _warnings(caplog, "since indexing")


def test_old_manifest_without_size_and_mtime_loads_with_one_warning(tmp_path, caplog):
    manifest = _folder(tmp_path / "ds", n_videos=2)
    lines = manifest.read_text().splitlines()
    stripped = [lines[0]]
    for line in lines[1:]:
        d = json.loads(line)
        del d["size"], d["mtime_ns"]
        stripped.append(json.dumps(d))
    manifest.write_text("\n".join(stripped) + "\n")
    with caplog.at_level(logging.WARNING):
        m = load_manifest(manifest)
    assert len(m.records) == 2 and not m.stale
    lines = _warnings(caplog, "cannot")
    assert len(lines) == 1 and "csvr prepare index" in lines[0] and "2 of its 2" in lines[0]


def _faststart_mp4(path, frames: np.ndarray) -> None:
    """An MP4 with its index (moov) before the data: cut at the end, it still opens."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"x264-params": "keyint=8:min-keyint=8:scenecut=0:bframes=2", "preset": "veryfast"}
        for img in frames:
            for pk in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)


def test_truncated_mp4_is_indexed_with_the_frames_that_decode(tmp_path, caplog):
    root = tmp_path / "ds"
    (root / "a").mkdir(parents=True)
    _faststart_mp4(root / "a" / "good.mp4", index_frames(33))
    data = (root / "a" / "good.mp4").read_bytes()
    (root / "a" / "cut.mp4").write_bytes(data[:-10])  # the last frame's data is cut short
    (root / "a" / "stub.mp4").write_bytes(data[: len(data) // 4])  # most of it gone
    with VideoReader(root / "a" / "cut.mp4") as r:
        assert r.num_frames == 33  # the container still lists every frame
    s = build_index(root, root / "m.jsonl", layout="folder", workers=1, clip_span=4)
    m = load_manifest(root / "m.jsonl")
    cut = m.get("a/cut")
    assert cut.num_frames == 32 and max(cut.keyframes) < 32 and max(cut.iframes) < 32
    assert cut.notes and "truncated" in cut.notes[0] and "32 of 33" in cut.notes[0]
    assert m.get("a/good").num_frames == 33 and not m.get("a/good").notes
    bad = dict(s.bad)
    assert "a/stub.mp4" in bad and "truncated" in bad["a/stub.mp4"]
    text = "\n".join(s.lines())
    assert "a/cut.mp4" in text and "32 of 33" in text
    # evaluation cuts its clips from the frames that decode: the video is not dropped
    ds = ClipDataset(m, [cut], CFG, mode="eval", num_clips=2)
    item = ds[0]
    assert bool(item["ok"])
    assert frame_level(item["clip"][1, -1].numpy()) == 31


def test_truncated_avi_keyframe_flags_are_checked_against_the_stream(tmp_path, reference_decode):
    """FFmpeg's AVI demuxer, reading past a missing index, flags every msmpeg4 packet as a keyframe."""
    src = tmp_path / "src.avi"
    write_video(src, index_frames(96), codec="msmpeg4", gop=12)
    data = src.read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: int(len(data) * 0.8)])
    with av.open(str(path)) as c:
        flags = sum(p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size)
    _, true_iframes = reference_decode(path)
    assert flags > 2 * len(true_iframes)  # what the container claims
    info = probe(path)
    true_iframes = [i for i in true_iframes if i < info.num_frames]  # its cut last frame is not indexed
    assert len(true_iframes) >= 5 and true_iframes[:2] == [0, 12]
    assert info.iframes == true_iframes and info.keyframes == true_iframes
    assert info.notes and "keyframe" in info.notes[0] and "truncated" in info.notes[-1]
    with VideoReader(path, parse_intra=False) as r:  # what a data-loader worker opens
        assert r.keyframes == true_iframes
        wanted = [info.num_frames - 2, 5, 30]
        got = r.read(wanted)
    assert [frame_level(f) for f in got] == wanted  # seeking never lands on a P-frame


@pytest.mark.parametrize("codec,suffix", [("mpeg4", ".mp4"), ("msmpeg4", ".mkv")])
def test_every_packet_flagged_key_is_checked(tmp_path, reference_decode, codec, suffix):
    """A file re-muxed with every packet flagged key (what a broken muxer writes): the flagged
    frames' picture types are decoded, and only the intra ones are keyframes and I-frames."""
    src = tmp_path / "src.mkv"
    write_video(src, index_frames(40), codec=codec, gop=10, bframes=0)
    path = tmp_path / f"allkey{suffix}"
    with av.open(str(src)) as i, av.open(str(path), "w") as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for packet in i.demux(i.streams.video[0]):
            if packet.dts is None:
                continue
            packet.is_keyframe = True
            packet.stream = out
            o.mux(packet)
    with av.open(str(path)) as c:
        assert all(p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size)
    _, true_iframes = reference_decode(path)
    assert true_iframes == [0, 10, 20, 30]
    info = probe(path)
    assert info.keyframes == true_iframes and info.iframes == true_iframes and info.num_frames == 40
    assert "40 of 40 frames as keyframes" in info.notes[0]
    with VideoReader(path, parse_intra=False) as r:
        assert r.keyframes == true_iframes
        assert [frame_level(f) for f in r.read([37, 13])] == [37, 13]


def test_pretrain_refuses_a_dataset_changed_since_indexing(tmp_path, capsys):
    from csvr.cli import main

    manifest = _folder(tmp_path / "ds", n_videos=2)
    for k in range(2):  # replaced after indexing
        write_video(tmp_path / "ds" / "a" / f"{k}.avi", index_frames(1), codec="mpeg4", gop=8)
    capsys.readouterr()
    assert main(["pretrain", "--config", "tiny-test", f"data.manifest={manifest}", f"out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("csvr: error:")]
    assert len(lines) == 1 and "since indexing" in lines[0] and "csvr prepare index" in lines[0], err
    assert not (tmp_path / "run" / "checkpoints").exists()
