"""Issue 24 item 5 (warnings where the signal is missing) and item 6 (a malformed config's place;
csvr predict's progress and its clips at the size the model needs; export.json's input settings
are checked in test_eval_report_export.py): on real encoded videos and real runs, never decoder
mocks."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from csvr.cli import main
from csvr.data.index import load_manifest
from csvr.engine.checkpoint import list_checkpoints


def _one_line_error(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("csvr: error")]
    assert len(err) == 1, err
    return err[0]


# ----------------------------------------------------------------------------- I-frames of their own
def test_iframe_own_frac_below_the_threshold_is_a_warning_naming_the_reencode(tiny_synth, tmp_path_factory, capsys):
    from csvr.engine.pretrain import print_summary
    from csvr.methods.csvr import CSVR, IFRAME_OWN_FRAC_MIN
    from test_eval_retrieval import make_eval_runs

    # a real CSVR run (shared with the evaluation tests): tiny_synth's videos have an I-frame every
    # 16-60 frames and tiny-test's clips span 7 frames
    run = make_eval_runs(tmp_path_factory.getbasetemp() / "eval-runs", tiny_synth)["pretrain"]
    with open(run / "epochs.csv", newline="") as f:  # the context and joint stages log it
        own = float(np.mean([float(r["iframe_own_frac"]) for r in csv.DictReader(f) if r.get("iframe_own_frac")]))
    assert own < IFRAME_OWN_FRAC_MIN
    capsys.readouterr()
    print_summary(json.loads((run / "summary.json").read_text()))
    out = capsys.readouterr().out
    warning = [ln for ln in out.splitlines() if "warning:" in ln]
    assert len(warning) == 1, out
    assert f"iframe_own_frac {own:.2f} < 0.5" in warning[0] and f"only {100 * own:.0f}% of the training clips" in warning[0]
    assert "csvr prepare reencode --manifest MANIFEST --out NEW_ROOT --gop 12" in warning[0]
    # the rule itself, on both sides of the threshold; a run without the column says nothing
    assert CSVR.signal_warnings({"iframe_own_frac": 0.49}) and not CSVR.signal_warnings({"iframe_own_frac": 0.5})
    assert CSVR.signal_warnings({"total": 1.0}) == []


# ----------------------------------------------------------------------------- a class nobody trains
def test_finetune_and_linear_probe_refuse_classes_without_training_videos(tiny_synth, tmp_path, capsys):
    from csvr.data.index import write_manifest

    m = load_manifest(tiny_synth["manifest"])
    test_only = m.classes[1]
    for r in m.all_records:
        if r.class_name == test_only:
            r.splits = {"1": "test"}
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, {**m.header, "root": str(m.root)}, m.all_records)
    for cmd in ("finetune", "linear-probe"):
        rc = main([cmd, "--config", "tiny-test", "--model-config", "tiny-test", "--feature", "scratch",
                   f"data.manifest={manifest}", "--out", str(tmp_path / cmd), "train.threads=1",
                   "data.label_fraction=0.5"])
        line = _one_line_error(capsys)
        assert rc == 2 and f"1 of {len(m.classes)} classes has no training video" in line, line
        assert f": {test_only};" in line and "split 1" in line and "data.label_fraction=0.5" in line
        assert not list_checkpoints(tmp_path / cmd)


# ----------------------------------------------------------------------------- malformed YAML
def test_malformed_yaml_config_names_file_line_and_column(tmp_path, capsys):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("method: csvr\ntrain:\n  batch_size: 4\n  stages: [{name: pose\ndata:\n  workers: 0\n")
    rc = main(["pretrain", "--config", str(cfg)])
    line = _one_line_error(capsys)
    # YAML stops at the ":" of "data:" (line 5, column 5), inside the "{" opened on line 4
    assert rc == 2 and f"{cfg}:5:5: not valid YAML" in line, line
    assert "opened at line 4" in line


# ----------------------------------------------------------------------------- frozen skeletons
def _moving_block_video(path: Path, frames: int = 40, h: int = 96, w: int = 192) -> None:
    """A gray picture in which a textured 32 x 32 block moves across the right half."""
    from csvr.data.writer import write_video

    tex = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    f = np.full((frames, h, w, 3), 200, np.uint8)
    for t in range(frames):
        x, y = 96 + (3 * t) % 64, 30 + int(20 * np.sin(t / 4))
        f[t, y:y + 32, x:x + 32] = tex
    write_video(path, f, codec="mpeg4", gop=12)


def test_a_still_confident_skeleton_on_a_moving_picture_is_flagged(tmp_path):
    """The check on real decoded frames: a skeleton frozen on the empty left half is flagged (the
    change is outside its box); one that follows the block, or a frozen one at low confidence, is not."""
    from csvr.data.video import iter_frames
    from csvr.pose.consistency import MotionProbe, frozen_skeleton

    video = tmp_path / "block.avi"
    _moving_block_video(video)
    probe = MotionProbe()
    for i, rgb in iter_frames(video):
        probe.add(i, rgb)
    masks = probe.masks(40)
    assert not masks[0].any() and masks[1:].mean() > 0.03  # the block changes > 3 % of the cells
    rng = np.random.default_rng(1)
    base = np.concatenate([rng.uniform([0.1, 0.2], [0.35, 0.8], (18, 2)), np.full((18, 1), 0.95)], 1)
    frozen = np.repeat(base[None], 40, 0).astype(np.float32)
    frozen[:, :, :2] += rng.normal(0, 1e-3, (40, 18, 2))  # a tracker's jitter: it does not add up
    found = np.ones(40, bool)
    r = frozen_skeleton(frozen, found, masks)
    (seg,) = r["segments"]
    assert seg["start"] <= 2 and seg["end"] == 39 and r["flagged_frames"] == seg["frames"]
    assert seg["changed_in_box"] == 0.0 and seg["changed_outside_box"] > 0.03 and seg["confidence"] == 0.95
    # the same skeleton at low confidence, or seen in every other frame only (no motion to measure),
    # is not reported
    low = frozen.copy()
    low[:, :, 2] = 0.5
    assert frozen_skeleton(low, found, masks)["segments"] == []
    gappy = found.copy()
    gappy[1::2] = False
    assert frozen_skeleton(frozen, gappy, masks)["segments"] == []
    # a skeleton that moves with the block (3 px of 192 a frame) is not still
    moving = frozen.copy()
    moving[:, :, 0] += (3 * np.arange(40) / 192)[:, None]
    assert frozen_skeleton(moving, found, masks)["segments"] == []


def test_mediapipe_on_a_still_person_while_the_picture_moves_warns_with_progress(tmp_path, monkeypatch, capsys,
                                                                                   caplog):
    """Real BlazePose through csvr predict's pose step: a photographed person stays still on the
    left while a large textured block moves across the right. A progress bar runs over the 64
    frames, the record keeps the flagged segment, predict warns, and the job's summary and report
    name the video."""
    import logging

    pytest.importorskip("mediapipe")
    data = pytest.importorskip("skimage.data")
    from csvr.data.writer import write_video
    from csvr.eval.inference import pose_record_for
    from csvr.pose.job import JobSummary

    person = data.astronaut()[::2, ::2]  # 256 x 256, head and shoulders
    tex = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    frames = np.full((64, 256, 640, 3), 235, np.uint8)
    frames[:, :, :256] = person
    for t in range(64):
        x = 300 + (8 * t) % 200
        frames[t, 64:192, x:x + 128] = tex
    video = tmp_path / "still.mp4"
    write_video(video, frames, crf=18)
    monkeypatch.setenv("CSVR_PROGRESS", "1")
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        rec, what = pose_record_for(video, "still", None, 64)
    err = capsys.readouterr().err.replace("\r", "\n")
    assert what == "MediaPipe" and "poses (MediaPipe)" in err and "64/64" in err
    frozen = rec.meta["source_info"]["frozen_skeleton"]
    seg = frozen["segments"][0]
    # BlazePose's skeleton of a still photograph settles within ~30 frames, then stays put
    assert frozen["flagged_frames"] >= 12 and seg["end"] == 63 and seg["skeleton_motion"] < 0.002
    assert seg["changed_in_box"] < 0.01 < 0.03 <= seg["changed_outside_box"] and seg["confidence"] >= 0.8
    warned = [r.getMessage() for r in caplog.records if "stays still with high confidence" in r.getMessage()]
    assert len(warned) == 1 and f"frames {seg['start']}-63" in warned[0]
    # the pose job's summary: one warning line, one line per video, the report's list
    s = JobSummary(source="mediapipe", shard=(0, 1), total=1, done=1)
    s.add_rate({"video_id": "still", "frames": 64, "person_frames": 64, "detection_rate": 1.0,
                "frozen_skeleton": frozen})
    lines = s.lines()
    warning = [ln for ln in lines if ln.startswith("warning:")]
    assert len(warning) == 1 and "1 video(s) have a skeleton that stays still" in warning[0] and "(still)" in warning[0]
    assert any(ln.startswith(f"  frozen skeleton: still: {frozen['flagged_frames']} of 64 frames: frames "
                             f"{seg['start']}-63") for ln in lines)
    assert s.to_dict()["frozen_skeleton"] == [{"video_id": "still", **frozen}]


# ----------------------------------------------------------------------------- predict on large frames
def test_predict_decodes_a_large_video_at_the_size_the_model_needs(tiny_synth, tmp_path_factory, tmp_path):
    """A real 1920x1080 video: predict's clips are decoded with a short side of 4 crops (128 px for
    tiny-test's 32-px crops, whose checkpoint keeps the source size), not at full size, and its
    scores are evaluation's on those frames (close to the full-size ones)."""
    from csvr.data.datasets import ClipDataset
    from csvr.data.index import Manifest
    from csvr.data.writer import write_video
    from csvr.eval.finetune import predict
    from csvr.eval.inference import eval_settings, load_finetuned, predict_clip_config, predict_video, video_record
    from csvr.eval.metrics import video_scores
    from test_eval_retrieval import make_eval_runs

    runs = make_eval_runs(tmp_path_factory.getbasetemp() / "eval-runs", tiny_synth)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (9, 16, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(base, 120, 0), 120, 1)[None].repeat(6, 0)  # 1080 x 1920
    for t in range(6):
        frames[t, 300:780, 200 + 100 * t:680 + 100 * t] = 255 - frames[t, 300:780, 200 + 100 * t:680 + 100 * t]
    video = tmp_path / "big.avi"
    write_video(video, frames, codec="mpeg4", gop=12)
    classifier, state, _ = load_finetuned(runs["finetune_ckpt"])
    s = eval_settings(state["config"])
    clip = predict_clip_config(s.clip)
    assert s.clip.decode_short_side is None and clip.decode_short_side == 4 * s.clip.size == 128
    rec = video_record(video)
    m = Manifest({"classes": list(classifier.classes)}, [rec], root=tmp_path)
    vid = load_manifest(tiny_synth["manifest"]).records[0].id
    cache = tmp_path / "poses"
    cache.mkdir()
    shutil.copy(tiny_synth["poses"] / f"{vid}.npz", cache / f"{rec.id}.npz")
    ds = ClipDataset(m, [rec], clip, mode="eval", num_clips=2, pose_cache=str(cache))
    assert ds.decode_size(rec) == (228, 128)
    assert ds.reader(rec).read([0, 5], size=ds.decode_size(rec)).shape == (2, 128, 228, 3)
    p = predict_video(video, runs["finetune_ckpt"], top_k=4, poses=str(cache / f"{rec.id}.npz"), clips=2,
                      device="cpu")
    got = np.array([t["probability"] for t in sorted(p["top"], key=lambda t: t["index"])])
    want = video_scores(predict(classifier, ds, 1, 0, "cpu")[0])[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    full = ClipDataset(m, [rec], s.clip, mode="eval", num_clips=2, pose_cache=str(cache))
    assert full.decode_size(rec) is None
    np.testing.assert_allclose(got, video_scores(predict(classifier, full, 1, 0, "cpu")[0])[0], atol=0.01)

