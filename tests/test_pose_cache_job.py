"""Pose cache (format, round trip, no-person markers) and the job (resume, shards, failures, CLI)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

import csvr.cli
from csvr.pose import (NoPersonError, PoseCache, PoseNotCachedError, clean, entry_status, load,
                       load_record, run_pose_job, write_record)
from csvr.pose.clean import CleanSettings
from csvr.pose_format.base import PoseError
from csvr.pose_format.cache import cache_path, write_no_person
from csvr.utils.parallel import parse_shard

W, H = 160, 120


def _with_pose_commands(monkeypatch):
    """Make sure ``csvr.cli`` registers the pose commands (whether or not cli.py lists them yet)."""
    mods = list(csvr.cli.COMMAND_MODULES)
    if "csvr.pose.commands" not in mods:
        mods.append("csvr.pose.commands")
    monkeypatch.setattr(csvr.cli, "COMMAND_MODULES", mods)


def _record(T=7, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random((T, 18, 3)).astype(np.float32)
    p[2, 3:9, 2] = 0.0
    return clean(p, CleanSettings(conf_threshold=0.2), frame_size=(W, H))


def test_cache_round_trip_plain_npz(tmp_path):
    rec = _record()
    path = write_record(tmp_path, "Walk/v_Walk_g01_c01", rec, {"source": "test"})
    assert path == (tmp_path / "Walk" / "v_Walk_g01_c01.npz").resolve()
    # a plain npz without pickles: readable without csvr
    with np.load(path, allow_pickle=False) as z:
        assert z["poses"].dtype == np.float32 and z["poses"].shape == (7, 18, 3)
        assert z["valid"].dtype == bool and z["filled"].shape == (7, 18) and z["person_found"].shape == (7,)
        assert all(z[k].dtype != object for k in z.files)
        meta = json.loads(str(z["meta"][()]))
        assert meta["status"] == "ok" and meta["version"] == 1 and meta["source"] == "test"
        assert meta["frame_size"] == [W, H] and meta["clean"]["conf_threshold"] == 0.2
        assert z["frame_size"].tolist() == [W, H]
    np.testing.assert_array_equal(load(tmp_path, "Walk/v_Walk_g01_c01"), rec.poses)
    back = load_record(tmp_path, "Walk/v_Walk_g01_c01")
    for k in ("valid", "interpolated", "filled", "person_found"):
        np.testing.assert_array_equal(getattr(back, k), getattr(rec, k))
    cache = PoseCache(tmp_path)
    assert cache.has("Walk/v_Walk_g01_c01") and "Walk/v_Walk_g01_c01" in cache
    np.testing.assert_array_equal(cache.get("Walk/v_Walk_g01_c01"), rec.poses)
    assert cache.get("Walk/nope") is None and not cache.has("Walk/nope")
    with pytest.raises(PoseNotCachedError):
        load(tmp_path, "Walk/nope")


def test_no_person_marker(tmp_path):
    write_no_person(tmp_path, "Sit/v_empty", num_frames=12, frame_size=(W, H), meta={"source": "test"})
    with pytest.raises(NoPersonError):
        load(tmp_path, "Sit/v_empty")
    cache = PoseCache(tmp_path, memory_items=0)
    assert cache.get("Sit/v_empty") is None and not cache.has("Sit/v_empty")
    assert cache.status("Sit/v_empty") == "no_person" and entry_status(tmp_path, "Sit/v_empty") == "no_person"


@pytest.mark.parametrize("bad", ["../escape", "/abs/path", "a/../../b", "", "a//b"])
def test_bad_ids_refused(tmp_path, bad):
    with pytest.raises(PoseError):
        cache_path(tmp_path / "cache", bad)


def test_corrupt_and_temp_files(tmp_path):
    write_record(tmp_path, "A/good", _record())
    (tmp_path / "A" / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "A" / ".half.npz.x8k2.tmp").write_bytes(b"partial")
    assert entry_status(tmp_path, "A/broken") == "stale"
    assert entry_status(tmp_path, "A/half") == "missing"
    assert PoseCache(tmp_path).get("A/broken") is None
    with pytest.raises(PoseNotCachedError, match="unreadable"):
        load(tmp_path, "A/broken")


# ----------------------------------------------------------------------------- the job
def _write_json_video(root: Path, vid: str, T: int, people_fn) -> None:
    cls, name = vid.split("/")
    folder = root / cls
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(T):
        people = people_fn(t)
        doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [float(v) for v in p.reshape(-1)]}
                                          for p in people]}
        (folder / f"{name}_{t:012d}_keypoints.json").write_text(json.dumps(doc))


def _kp(rng, x=80.0, y=40.0):
    kp = np.zeros((18, 3))
    kp[:, 0] = x + 30 * (rng.random(18) - 0.5)
    kp[:, 1] = y + 60 * rng.random(18)
    kp[:, 2] = 0.5 + 0.5 * rng.random(18)
    return kp


@pytest.fixture()
def json_dataset(tmp_path):
    """Six videos as OpenPose JSON + a manifest: 4 fine, 1 without people, 1 without files."""
    from csvr.data.index import MANIFEST_FORMAT, MANIFEST_VERSION, VideoRecord, write_manifest

    rng = np.random.default_rng(7)
    root = tmp_path / "data"
    jdir = root / "poses" / "openpose"
    ids = ["Walk/v_Walk_g01_c01", "Walk/v_Walk_g01_c02", "Jump/v_Jump_g01_c01", "Jump/v_Jump_g02_c01",
           "Sit/v_Sit_g01_c01", "Sit/v_Sit_g01_c02"]
    for k, vid in enumerate(ids[:4]):
        _write_json_video(jdir, vid, 6 + k, lambda t: [_kp(rng)])
    _write_json_video(jdir, ids[4], 5, lambda t: [])  # OpenPose ran, nobody there
    # ids[5]: no JSON files at all -> failure, retried on the next run
    records = [VideoRecord(id=v, path=v + ".mp4", label=i // 2, class_name=v.split("/")[0], num_frames=6 + i,
                           width=W, height=H, fps=25.0) for i, v in enumerate(ids)]
    header = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "layout": "folder", "root": str(root),
              "classes": ["Jump", "Sit", "Walk"], "splits": ["1"], "complete": True}
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, header, records)
    return {"root": root, "json_dir": jdir, "manifest": manifest, "ids": ids}


def _items(ds):
    from csvr.data.index import load_manifest
    from csvr.pose import items_from_manifest

    return items_from_manifest(load_manifest(ds["manifest"], check_files=False))  # JSON import: no video files


def test_job_counts_resume_and_reports(json_dataset, tmp_path):
    ds = json_dataset
    cache = tmp_path / "cache"
    items = _items(ds)
    assert [it.video_id for it in items] == ds["ids"] and items[0].width == W and items[2].num_frames == 8
    s = run_pose_job(items, cache, source="openpose-json", json_dir=ds["json_dir"], workers=1, shard=(0, 1))
    assert (s.total, s.done, s.skipped, s.no_person, s.failed) == (6, 4, 0, 1, 1)
    assert s.no_person_ids == ["Sit/v_Sit_g01_c01"]
    assert s.failures[0]["video_id"] == "Sit/v_Sit_g01_c02" and "no OpenPose" in s.failures[0]["reason"]
    assert s.frames == 6 + 7 + 8 + 9 + 10
    report = json.loads(Path(s.report_path).read_text())
    assert report["failed"] == 1 and report["failures"][0]["path"].endswith("v_Sit_g01_c02.mp4")
    assert any("failed: Sit/v_Sit_g01_c02" in line for line in s.lines())
    for vid in ds["ids"][:4]:
        p = load(cache, vid)
        assert p.shape[0] == ds["ids"].index(vid) + 6 and np.isfinite(p).all()
    with pytest.raises(NoPersonError):
        load(cache, "Sit/v_Sit_g01_c01")
    mtimes = {p: p.stat().st_mtime_ns for p in cache.rglob("*.npz")}
    # second run: everything cached is skipped (the no-person marker too); the failure is retried
    s2 = run_pose_job(items, cache, source="openpose-json", json_dir=ds["json_dir"], workers=1, shard=(0, 1))
    assert (s2.done, s2.skipped, s2.no_person, s2.failed) == (0, 5, 0, 1)
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.npz")} == mtimes
    # --force redoes everything
    s3 = run_pose_job(items, cache, source="openpose-json", json_dir=ds["json_dir"], workers=1, shard=(0, 1),
                      force=True)
    assert (s3.done, s3.skipped, s3.no_person, s3.failed) == (4, 0, 1, 1)


def test_job_interrupted_leaves_no_partial_file_and_resumes(json_dataset, tmp_path, monkeypatch):
    ds = json_dataset
    cache = tmp_path / "cache"
    items = _items(ds)[:4]
    real = np.savez_compressed
    calls = {"n": 0}

    def dying_savez(f, **arrays):
        calls["n"] += 1
        if calls["n"] == 3:  # the third video: write half a file, then the process is interrupted
            f.write(b"PK\x03\x04 half a zip")
            raise KeyboardInterrupt
        return real(f, **arrays)

    monkeypatch.setattr(np, "savez_compressed", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        run_pose_job(items, cache, source="openpose-json", json_dir=ds["json_dir"], workers=1, shard=(0, 1))
    monkeypatch.setattr(np, "savez_compressed", real)
    files = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    # the interrupted write left neither a temp file nor a half .npz: only the two finished videos
    assert files == sorted(v + ".npz" for v in ds["ids"][:2]), files
    # a SIGKILLed run leaves temp files behind: old ones are removed, any are ignored
    stale = cache / "Walk" / ".v_Walk_g01_c02.npz.abcd1234.tmp"
    stale.write_bytes(b"PK partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = cache / "Jump" / ".v_Jump_g02_c01.npz.zzzz.tmp"
    fresh.parent.mkdir(exist_ok=True)
    fresh.write_bytes(b"in progress elsewhere")
    s = run_pose_job(items, cache, source="openpose-json", json_dir=ds["json_dir"], workers=1, shard=(0, 1))
    assert (s.done, s.skipped, s.failed) == (2, 2, 0)
    assert not stale.exists() and fresh.exists()
    for vid in ds["ids"][:4]:
        assert load(cache, vid).shape[1:] == (18, 3)


def test_shards_cover_every_video_exactly_once(json_dataset, tmp_path, monkeypatch):
    ds = json_dataset
    items = _items(ds)[:5]
    seen: list[str] = []
    for i in range(3):
        cache = tmp_path / f"cache{i}"
        s = run_pose_job(items, cache, source="openpose-json", json_dir=ds["json_dir"], workers=1, shard=f"{i}/3")
        assert s.shard == (i, 3)
        got = sorted(p.relative_to(cache).with_suffix("").as_posix() for p in cache.rglob("*.npz"))
        assert s.total == len(got)
        seen += got
    assert sorted(seen) == sorted(ds["ids"][:5])
    # torchrun's environment picks the shard when --shard is not given
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert parse_shard(None) == (1, 2)
    s = run_pose_job(items, tmp_path / "cache_env", source="openpose-json", json_dir=ds["json_dir"], workers=1)
    assert s.shard == (1, 2) and s.total == 2


def test_job_in_worker_processes(json_dataset, tmp_path):
    ds = json_dataset
    cache = tmp_path / "cache"
    s = run_pose_job(_items(ds), cache, source="openpose-json", json_dir=ds["json_dir"], workers=2, shard=(0, 1))
    assert (s.done, s.no_person, s.failed) == (4, 1, 1)
    serial = tmp_path / "cache_serial"
    run_pose_job(_items(ds), serial, source="openpose-json", json_dir=ds["json_dir"], workers=1, shard=(0, 1))
    for vid in ds["ids"][:4]:
        np.testing.assert_array_equal(load(cache, vid), load(serial, vid))


def test_job_accepts_id_path_pairs_and_reports_unreadable_videos(tmp_path):
    from csvr.data.writer import write_video

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    empty = tmp_path / "empty.mp4"
    write_video(empty, np.full((6, 64, 64, 3), 40, np.uint8), fps=25)  # a grey wall: nobody there
    items = [("X/bad", bad), ("X/missing", tmp_path / "missing.mp4"), ("X/empty", empty)]
    s = run_pose_job(items, tmp_path / "cache", source="mediapipe", workers=1, shard=(0, 1))
    assert (s.total, s.failed, s.done, s.no_person) == (3, 2, 0, 1)
    assert s.no_person_ids == ["X/empty"] and entry_status(tmp_path / "cache", "X/empty") == "no_person"
    with pytest.raises(NoPersonError):
        load(tmp_path / "cache", "X/empty")
    reasons = {f["video_id"]: f["reason"] for f in s.failures}
    assert "file not found" in reasons["X/missing"]
    assert reasons["X/bad"] and str(bad) == next(f["path"] for f in s.failures if f["video_id"] == "X/bad")


def test_cli_prepare_poses(json_dataset, tmp_path, monkeypatch, capsys):
    ds = json_dataset
    _with_pose_commands(monkeypatch)
    monkeypatch.setenv("CSVR_PROGRESS", "0")
    cache = tmp_path / "cache"
    argv = ["prepare", "poses", "--manifest", str(ds["manifest"]), "--out", str(cache), "--source",
            "openpose-json", "--json-dir", str(ds["json_dir"]), "--workers", "1", "--shard", "0/1"]
    rc = csvr.cli.main(argv)
    out = capsys.readouterr()
    assert rc == 1  # one video failed
    assert "4 done, 0 skipped (already cached), 1 no person, 1 failed" in out.out
    assert "Sit/v_Sit_g01_c02" in out.err
    assert PoseCache(cache).has("Walk/v_Walk_g01_c01")
    # usage mistakes are one-line errors
    rc = csvr.cli.main(["prepare", "poses", "--manifest", str(ds["manifest"]), "--out", str(cache), "--source",
                        "openpose-json"])
    assert rc == 2 and "--json-dir" in capsys.readouterr().err
    rc = csvr.cli.main(["prepare", "poses", "--manifest", str(tmp_path / "nope.jsonl"), "--out", str(cache)])
    assert rc == 2 and "manifest not found" in capsys.readouterr().err


def test_extractor_start_failure_is_reported_per_video(tmp_path, monkeypatch):
    import csvr.pose.sources.mediapipe as mpsrc

    def broken(**kw):
        raise PoseError("cannot start MediaPipe pose with model_complexity=2: no network")

    monkeypatch.setattr(mpsrc, "MediaPipeExtractor", broken)
    s = run_pose_job([("A/v1", tmp_path / "v1.mp4"), ("A/v2", tmp_path / "v2.mp4")], tmp_path / "cache",
                     source="mediapipe", workers=1, shard=(0, 1))
    assert (s.failed, s.done) == (2, 0)
    assert all("model_complexity=2" in f["reason"] for f in s.failures)


def test_job_reports_per_video_detection_rates_and_flags_low_ones(tmp_path):
    """Issue 14 item 8: the summary gives each video's fraction of frames with a person and lists
    those under 50 %, in the lines, the JSON report and the cache entry's metadata."""
    rng = np.random.default_rng(11)
    jdir = tmp_path / "json"
    # A: a person in every frame (10/10); B: in frames 0..2 of 10 (3/10 = 30 %, flagged);
    # C: in 5 of 10 frames (50 %: not below the threshold); D: nobody (a "no person" marker)
    _write_json_video(jdir, "X/A", 10, lambda t: [_kp(rng)])
    _write_json_video(jdir, "X/B", 10, lambda t: [_kp(rng)] if t < 3 else [])
    _write_json_video(jdir, "X/C", 10, lambda t: [_kp(rng)] if t % 2 else [])
    _write_json_video(jdir, "X/D", 10, lambda t: [])
    from csvr.pose.job import PoseJobItem

    items = [PoseJobItem(video_id=f"X/{v}", path=None, num_frames=10, width=W, height=H) for v in "ABCD"]
    cache = tmp_path / "cache"
    s = run_pose_job(items, cache, source="openpose-json", json_dir=jdir, workers=1, shard=(0, 1))
    assert (s.done, s.no_person) == (3, 1)
    assert s.detection_rates == {"X/A": 1.0, "X/B": 0.3, "X/C": 0.5, "X/D": 0.0}
    assert s.low_detection == ["X/B"]  # D is listed as "no person" already
    lines = s.lines()
    # mean over the four videos: (1 + 0.3 + 0.5 + 0) / 4 = 45 %
    assert "detection rate (frames with a person): mean 45.0 %, lowest 0.0 % (X/D)" in lines[1]
    assert "  low detection rate (< 50 %): X/B: 30.0 % (3/10 frames)" in lines
    report = json.loads(Path(s.report_path).read_text())
    assert report["detection_rates"]["X/B"] == 0.3 and report["low_detection"] == ["X/B"]
    assert load_record(cache, "X/B").meta["detection_rate"] == 0.3
    assert load_record(cache, "X/A").meta["detection_rate"] == 1.0


def test_summary_names_videos_where_identity_was_lost():
    from csvr.pose.job import JobSummary

    s = JobSummary(source="mediapipe", shard=(0, 1), total=1, done=1)
    s.add_rate({"video_id": "Two/people", "frames": 22, "person_frames": 16, "detection_rate": 16 / 22,
                "identity": {"tracks": 2, "kept_frames": 16, "dropped_frames": 4, "switch_frames": [11, 16]}})
    assert s.identity_lost == [{"video_id": "Two/people", "tracks": 2, "kept_frames": 16, "dropped_frames": 4,
                                "switch_frames": [11, 16]}]
    assert ("  identity lost: Two/people: the pose jumped between 2 people (first at frame 11); kept 16 frames "
            "of the main one, dropped 4") in s.lines()
    assert s.low_detection == []  # 16/22 = 72.7 %
