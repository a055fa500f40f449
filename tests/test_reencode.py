"""`csvr prepare reencode`: fixed GOP for videos with too few I-frames, copies for the rest."""

from __future__ import annotations

import numpy as np

from csvr.cli import main
from csvr.data.index import build_index, load_manifest
from csvr.data.reencode import reencode_dataset
from csvr.data.video import read_frames
from csvr.data.writer import write_video

from conftest import frame_level, index_frames


def test_reencode_only_sparse_gop_videos(tmp_path, capsys):
    root = tmp_path / "src"
    (root / "a").mkdir(parents=True)
    f = index_frames(60)
    write_video(root / "a" / "sparse.mp4", f, codec="libx264", gop=300, bframes=2)  # one keyframe
    write_video(root / "a" / "dense.avi", f, codec="mpeg4", gop=12)
    build_index(root, tmp_path / "m.jsonl", layout="folder", workers=1)
    assert load_manifest(tmp_path / "m.jsonl").get("a/sparse").iframes == [0]
    out = tmp_path / "re"
    s = reencode_dataset(tmp_path / "m.jsonl", out, codec="mpeg4", gop=12, workers=1)
    assert (s.reencoded, s.copied, s.failed) == (1, 1, [])
    m = load_manifest(s.manifest)
    sparse = m.get("a/sparse")
    assert sparse.codec == "mpeg4" and sparse.iframes == [0, 12, 24, 36, 48] and sparse.num_frames == 60
    assert sparse.splits == {"1": "train"} and sparse.label == 0
    assert (out / "a" / "dense.avi").read_bytes() == (root / "a" / "dense.avi").read_bytes()
    frames = read_frames(m.video_path(sparse), [0, 31, 59])
    assert [frame_level(x) for x in frames] == [0, 31, 59]
    # a second run finds everything done
    assert main(["prepare", "reencode", "--manifest", str(tmp_path / "m.jsonl"), "--out", str(out),
                 "--workers", "1"]) == 0
    assert "already done 2" in capsys.readouterr().out
