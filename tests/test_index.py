"""`csvr prepare index`: layouts, manifest contents, bad input, resumability, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from csvr.cli import main
from csvr.data.index import build_index, load_manifest, video_id
from csvr.errors import CsvrError, DatasetError


def _ucf(root, clip_bytes):
    classes = ["ApplyEyeMakeup", "HandstandPushups", "Walk"]
    (root / "ucfTrainTestlist").mkdir(parents=True)
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    train, test = [], []
    for ci, c in enumerate(classes):
        (root / c).mkdir()
        for g in (1, 2):
            disk = c if c != "HandstandPushups" else "HandStandPushups"  # UCF101's own inconsistency
            name = f"v_{disk}_g0{g}_c01.avi"
            (root / c / name).write_bytes(clip_bytes["a"])
            listed = f"{c}/v_{c}_g0{g}_c01.avi"  # split files spell the class folder's way
            (train if g == 1 else test).append(listed)
    lines = [f"{p} {classes.index(p.split('/')[0]) + 1}" for p in train]
    lines.append("Jump/v_Jump_g01_c01.avi 4")  # unknown class
    lines.append("Walk/v_Walk_g09_c01.avi 3")  # missing video
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text("\n".join(lines) + "\n")
    test += ["Walk/v_Walk_g03_c01.avi", "Walk/v_Walk_g04_c01.avi", "Walk/v_Walk_g05_c01.avi"]
    (root / "Walk" / "v_Walk_g03_c01.avi").write_bytes(b"")  # zero bytes
    (root / "Walk" / "v_Walk_g04_c01.avi").write_bytes(np.random.default_rng(0).bytes(3000))  # junk
    (root / "Walk" / "v_Walk_g05_c01.avi").write_bytes(clip_bytes["a"][:900])  # truncated
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text("\n".join(test) + "\n")
    return classes


def test_ucf101_layout_manifest(tmp_path, clip_bytes):
    root = tmp_path / "UCF101"
    classes = _ucf(root, clip_bytes)
    out = tmp_path / "ucf.jsonl"
    s = build_index(root, out, workers=1)
    m = load_manifest(out)
    assert m.header["layout"] == "ucf101" and m.header["complete"] is True
    assert m.classes == classes and m.split_names == ["1"]
    good = {r.id: r for r in m.records}
    assert len(good) == 6
    hs = good["HandstandPushups/v_HandStandPushups_g01_c01"]  # found case-insensitively
    assert hs.label == 1 and hs.class_name == "HandstandPushups" and hs.splits == {"1": "train"}
    r = good["Walk/v_Walk_g02_c01"]
    assert r.splits == {"1": "test"} and r.label == 2
    assert (r.num_frames, r.width, r.height, r.codec) == (30, 64, 48, "mpeg4")
    assert r.keyframes == r.iframes == [0, 12, 24] and r.fps == pytest.approx(25.0)
    assert r.duration == pytest.approx(1.2)
    bad = dict(s.bad)
    assert "empty" in bad["Walk/v_Walk_g03_c01.avi"]
    assert "Walk/v_Walk_g04_c01.avi" in bad and "Walk/v_Walk_g05_c01.avi" in bad
    assert any("unknown class 'Jump'" in reason for reason in bad.values())
    assert "not found" in bad["Walk/v_Walk_g09_c01.avi"]
    assert len(s.bad) == 5 and s.indexed == 6 and s.probed == 9
    assert {r.path for r in m.errors} == {"Walk/v_Walk_g03_c01.avi", "Walk/v_Walk_g04_c01.avi",
                                          "Walk/v_Walk_g05_c01.avi"}
    assert [r.id for r in m.select("1", "train")] == sorted(r.id for r in m.records if r.splits["1"] == "train")
    assert m.video_path(hs).is_file()


def test_reindex_reuses_and_probes_only_changes(tmp_path, clip_bytes):
    root = tmp_path / "UCF101"
    _ucf(root, clip_bytes)
    out = tmp_path / "m.jsonl"
    build_index(root, out, workers=1)
    s2 = build_index(root, out, workers=1)
    assert s2.probed == 0 and s2.reused == 9 and s2.indexed == 6 and len(s2.bad) == 5
    # repair the junk file and change one good file: only those two are probed again
    junk = root / "Walk" / "v_Walk_g04_c01.avi"
    junk.write_bytes(clip_bytes["a"])
    changed = root / "Walk" / "v_Walk_g01_c01.avi"
    changed.write_bytes(clip_bytes["short"])
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    s3 = build_index(root, out, workers=1, clip_span=10)
    assert s3.probed == 2 and s3.indexed == 7
    m = load_manifest(out)
    assert m.get("Walk/v_Walk_g01_c01").num_frames == 5
    assert s3.short == 1  # the 5-frame video is shorter than one clip span


def test_partial_manifest_from_killed_run_is_reused(tmp_path, clip_bytes):
    root = tmp_path / "UCF101"
    _ucf(root, clip_bytes)
    out = tmp_path / "m.jsonl"
    build_index(root, out, workers=1)
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    header["complete"] = False
    out.write_text("\n".join([json.dumps(header)] + lines[1:4]) + "\n")  # 3 records survived
    s = build_index(root, out, workers=1)
    assert s.reused == 3 and s.probed == 6 and s.indexed == 6


def test_parallel_probe_matches_serial(tmp_path, clip_bytes):
    root = tmp_path / "UCF101"
    _ucf(root, clip_bytes)
    build_index(root, tmp_path / "a.jsonl", workers=1)
    build_index(root, tmp_path / "b.jsonl", workers=2)
    a = [l for l in (tmp_path / "a.jsonl").read_text().splitlines()[1:]]
    b = [l for l in (tmp_path / "b.jsonl").read_text().splitlines()[1:]]
    assert a == b


def test_hmdb51_layout(tmp_path, clip_bytes):
    root = tmp_path / "hmdb"
    sp = root / "testTrainMulti_7030_splits"
    sp.mkdir(parents=True)
    for c in ("wave", "clap"):
        (root / c).mkdir()
        for k in range(3):
            (root / c / f"{c}_{k}.avi").write_bytes(clip_bytes["a"])
        for s in (1, 2):
            codes = [1, 2, 0] if s == 1 else [2, 1, 1]
            (sp / f"{c}_test_split{s}.txt").write_text("".join(f"{c}_{k}.avi {codes[k]} \n" for k in range(3)))
    build_index(root, tmp_path / "h.jsonl", workers=1)
    m = load_manifest(tmp_path / "h.jsonl")
    assert m.classes == ["clap", "wave"] and m.split_names == ["1", "2"]
    r = m.get("wave/wave_2")
    assert r.label == 1 and r.splits == {"1": "unused", "2": "train"}
    assert [x.id for x in m.select("1", "train")] == ["clap/clap_0", "wave/wave_0"]
    with pytest.raises(DatasetError, match="split '3'"):
        m.select("3", "train")


def test_folder_layout_with_test_ratio_is_deterministic(tmp_path, clip_bytes):
    root = tmp_path / "mine"
    for c in ("a", "b"):
        (root / c / "sub").mkdir(parents=True)
        for k in range(10):
            (root / c / ("sub" if k % 2 else "") / f"{k}.mp4").write_bytes(clip_bytes["a"])
    s = build_index(root, tmp_path / "f.jsonl", layout="folder", test_ratio=0.3, workers=1)
    m = load_manifest(tmp_path / "f.jsonl")
    assert s.indexed == 20
    for c in ("a", "b"):
        assert sum(r.splits["1"] == "test" for r in m.records if r.class_name == c) == 3
    first = [r.splits for r in m.records]
    build_index(root, tmp_path / "g.jsonl", layout="folder", test_ratio=0.3, workers=1)
    assert [r.splits for r in load_manifest(tmp_path / "g.jsonl").records] == first


def test_csv_layout_and_paths_escaping_root(tmp_path, clip_bytes):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "x.avi").write_bytes(clip_bytes["a"])
    (root / "y.avi").write_bytes(clip_bytes["a"])
    (tmp_path / "outside.avi").write_bytes(clip_bytes["a"])
    csv = tmp_path / "list.csv"
    csv.write_text("path,label,split\nx.avi,run,train\ny.avi,jump,test\n../outside.avi,run,train\n")
    s = build_index(root, tmp_path / "c.jsonl", layout="csv", csv_path=csv, workers=1)
    m = load_manifest(tmp_path / "c.jsonl")
    assert m.classes == ["jump", "run"]
    assert {(r.id, r.label, r.splits["1"]) for r in m.records} == {("x", 1, "train"), ("y", 0, "test")}
    assert any("outside the dataset root" in reason for _, reason in s.bad)
    s2 = build_index(root, tmp_path / "d.jsonl", layout="csv", csv_path=csv, workers=1, allow_outside_root=True)
    assert s2.indexed == 3


def test_manifest_with_escaping_path_is_refused(tmp_path, clip_bytes):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "x.avi").write_bytes(clip_bytes["a"])
    build_index(root, tmp_path / "m.jsonl", layout="folder", unlabelled=True, workers=1)
    m = load_manifest(tmp_path / "m.jsonl")
    m.records[0].path = "../../etc/passwd"
    with pytest.raises(CsvrError, match="outside the dataset root"):
        m.video_path(m.records[0])


def test_load_manifest_errors(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"hello": 1}\n')
    with pytest.raises(DatasetError, match="not a csvr manifest"):
        load_manifest(p)
    p.write_text('{"format": "csvr-manifest", "version": 99}\n')
    with pytest.raises(DatasetError, match="version 99"):
        load_manifest(p)
    with pytest.raises(DatasetError, match="not found"):
        load_manifest(tmp_path / "nope.jsonl")


def test_video_id():
    assert video_id("Walk/v_Walk_g01_c01.avi") == "Walk/v_Walk_g01_c01"
    assert video_id("a.b/c") == "a.b/c"


def test_cli_index_and_user_errors(tmp_path, clip_bytes, capsys):
    root = tmp_path / "UCF101"
    _ucf(root, clip_bytes)
    assert main(["prepare", "index", str(root), "--out", str(tmp_path / "m.jsonl"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "6 indexed" in out and "5 bad" in out and "v_Walk_g04_c01.avi" in out
    assert main(["prepare", "index", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("csvr: error:") and "not found" in err[0]
    assert main(["prepare", "index", str(root), "--layout", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice" in err[0]


def test_cli_debug_shows_traceback_and_module_entry_point(tmp_path):
    exe = [sys.executable, "-m", "csvr"]
    r = subprocess.run(exe + ["prepare", "index", str(tmp_path / "nope")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    r = subprocess.run(exe + ["--debug", "prepare", "index", str(tmp_path / "nope")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" in r.stderr
    r = subprocess.run(exe + ["prepare", "index", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--test-ratio" in r.stdout
