"""Pose importers: OpenPose JSON (COCO-18, BODY_25, several people), mmaction2 pickles (safe)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from csvr.pose import NoPersonError, extract, extract_record
from csvr.pose.sources.mmaction import (UnsafePickleError, load_mmaction_annotations, read_mmaction_annotation,
                                        safe_load_pickle)
from csvr.pose.sources.openpose import find_openpose_files, read_openpose_video
from csvr.pose.track import select_actor

W, H = 160, 120


def write_openpose_frame(folder: Path, name: str, frame: int, people: list[np.ndarray]) -> Path:
    """One keypoint file exactly as the built-in dataset writes it (x, y, c in pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1.3, "people": [
        {"person_id": [-1], "pose_keypoints_2d": [float(v) for v in np.asarray(p, np.float64).reshape(-1)],
         "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
         "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
         "hand_right_keypoints_3d": []} for p in people]}
    path = folder / f"{name}_{frame:012d}_keypoints.json"
    path.write_text(json.dumps(doc))
    return path


def random_person(rng, cx=80.0, cy=60.0, spread=30.0, conf_lo=0.3):
    kp = np.empty((18, 3))
    kp[:, 0] = np.clip(cx + spread * (rng.random(18) - 0.5), 1, W - 1)
    kp[:, 1] = np.clip(cy + spread * (rng.random(18) - 0.5) * 1.5, 1, H - 1)
    kp[:, 2] = conf_lo + (1 - conf_lo) * rng.random(18)
    return np.round(kp, 3)


def test_openpose_json_exact_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "poses" / "openpose"
    T = 10
    written = {}
    for t in range(T):
        if t == 4:
            continue  # no file: missing frame
        people = [] if t == 6 else [random_person(rng)]
        if t == 2:
            people[0][7] = 0.0  # an undetected joint is 0, 0, 0
        write_openpose_frame(root / "Walk", "v_Walk_g01_c01", t, people)
        if people:
            written[t] = people[0]
    files = find_openpose_files(root, "Walk/v_Walk_g01_c01")
    assert sorted(files) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    raw = read_openpose_video(files, T, (W, H))
    assert raw.person_found.tolist() == [t in written for t in range(T)]
    for t, kp in written.items():
        expect = np.float32(kp / np.array([W, H, 1.0]))
        np.testing.assert_array_equal(raw.poses[t], expect)
    assert raw.poses[2, 7, 2] == 0.0
    # through the public API (cleaned): every observed joint is unchanged, bit for bit
    rec = extract_record(None, "openpose-json", json_dir=root, video_id="Walk/v_Walk_g01_c01", num_frames=T,
                         frame_size=(W, H))
    assert rec.poses.shape == (T, 18, 3)
    for t, kp in written.items():
        expect = np.float32(kp / np.array([W, H, 1.0]))
        ok = expect[:, 2] >= 0.05
        np.testing.assert_array_equal(rec.poses[t][ok], expect[ok])
        assert rec.valid[t][ok].all()
    assert not rec.person_found[4] and not rec.person_found[6]
    assert rec.interpolated[4].any() and np.isfinite(rec.poses).all()


def test_openpose_per_video_folder_layout(tmp_path):
    rng = np.random.default_rng(1)
    for t in range(3):
        write_openpose_frame(tmp_path / "Jump" / "v_Jump_g01_c02", "whatever", t, [random_person(rng)])
    files = find_openpose_files(tmp_path, "Jump/v_Jump_g01_c02")
    assert sorted(files) == [0, 1, 2]
    assert find_openpose_files(tmp_path, "Jump/other") == {}


def test_body25_is_mapped_to_coco18(tmp_path):
    rng = np.random.default_rng(2)
    coco = [random_person(rng) for _ in range(3)]
    for t, kp in enumerate(coco):
        b25 = np.zeros((25, 3))
        b25[[0, 1, 2, 3, 4, 5, 6, 7]] = kp[[0, 1, 2, 3, 4, 5, 6, 7]]
        b25[8] = (0.5 * (kp[8, 0] + kp[11, 0]), 0.5 * (kp[8, 1] + kp[11, 1]), 0.9)  # MidHip
        b25[9:15] = kp[8:14]
        b25[15:19] = kp[14:18]
        b25[19:25] = (5.0, 110.0, 0.7)  # feet: dropped
        write_openpose_frame(tmp_path, "v_x", t, [b25])
    raw = read_openpose_video(find_openpose_files(tmp_path, "v_x"), 3, (W, H))
    for t, kp in enumerate(coco):
        np.testing.assert_array_equal(raw.poses[t], np.float32(kp / np.array([W, H, 1.0])))


def test_openpose_bad_length_is_an_error(tmp_path):
    write_openpose_frame(tmp_path, "v_bad", 0, [np.ones(20)])
    with pytest.raises(Exception, match="expected 54"):
        read_openpose_video(find_openpose_files(tmp_path, "v_bad"), 1, (W, H))


# a standing person, COCO-18, in units of body height (neck at the origin)
TEMPLATE = np.array([
    (0.0, -0.12), (0.0, 0.0), (-0.1, 0.0), (-0.14, 0.17), (-0.16, 0.32), (0.1, 0.0), (0.14, 0.17), (0.16, 0.32),
    (-0.06, 0.33), (-0.07, 0.58), (-0.07, 0.82), (0.06, 0.33), (0.07, 0.58), (0.07, 0.82), (-0.03, -0.15),
    (0.03, -0.15), (-0.06, -0.13), (0.06, -0.13)])


def template_person(rng, nx, ny, height):
    kp = np.empty((18, 3))
    kp[:, :2] = np.array([nx, ny]) + height * TEMPLATE + rng.normal(0, 0.5, (18, 2))
    kp[:, 0] = np.clip(kp[:, 0], 1, W - 1)
    kp[:, 1] = np.clip(kp[:, 1], 1, H - 1)
    kp[:, 2] = 0.4 + 0.6 * rng.random(18)
    return np.round(kp, 3)


def test_multi_person_keeps_largest_most_persistent(tmp_path):
    rng = np.random.default_rng(3)
    T = 20
    actor = []
    for t in range(T):
        a = template_person(rng, 50 + 2 * t, 25, 90)  # big, always there, walking right
        b = template_person(rng, 140, 20, 40)  # small bystander, always there
        people = [b, a]
        if 8 <= t < 11:
            people.append(template_person(rng, 100, 12, 130))  # bigger, close to the actor, 3 frames only
        rng.shuffle(people)  # list order carries no identity
        write_openpose_frame(tmp_path / "Run", "v_Run_g01_c01", t, people)
        actor.append(a)
    rec = extract_record(None, "openpose-json", json_dir=tmp_path, video_id="Run/v_Run_g01_c01",
                         num_frames=T, frame_size=(W, H), conf_threshold=0.0)
    for t in range(T):
        np.testing.assert_array_equal(rec.poses[t], np.float32(actor[t] / np.array([W, H, 1.0])), err_msg=f"frame {t}")
    assert rec.meta["source_info"]["max_people_per_frame"] == 3
    assert rec.meta["source_info"]["kept_track_frames"] == T
    assert rec.meta["source_info"]["tracks"] == 3


def _body(x, y, s):
    """A synthetic person: 18 joints spread over a box of width ``s`` and height ``2 s`` around (x, y)."""
    p = np.zeros((18, 3), np.float32)
    p[:, 0] = x + s * np.linspace(-0.5, 0.5, 18)
    p[:, 1] = y + s * np.linspace(-1, 1, 18) ** 2
    p[:, 2] = 0.9
    return p


def test_tracker_links_through_a_gap_and_follows_identity():
    frames = []
    for t in range(12):
        dets = [_body(0.8, 0.5, 0.1)]
        if t not in (4, 5):  # the actor vanishes for two frames
            dets.append(_body(0.2 + 0.01 * t, 0.5, 0.3))
        frames.append(np.stack(dets[::-1] if t % 2 else dets))
    poses, found, info = select_actor(frames)
    assert found.tolist() == [t not in (4, 5) for t in range(12)]
    assert abs(poses[11, 1, 0] - _body(0.31, 0.5, 0.3)[1, 0]) < 1e-6
    assert info["tracks"] == 2


# ----------------------------------------------------------------------------- mmaction2 pickles
def _mmaction_data(rng, T=12, h=240, w=320):
    kp = np.zeros((2, T, 17, 2), np.float32)
    sc = np.zeros((2, T, 17), np.float32)
    for t in range(T):
        # person 0 in the file is the big actor in even frames, the small one in odd frames
        big = np.stack([100 + 80 * rng.random(17), 40 + 160 * rng.random(17)], -1)
        small = np.stack([260 + 20 * rng.random(17), 20 + 30 * rng.random(17)], -1)
        order = (0, 1) if t % 2 == 0 else (1, 0)
        kp[order[0], t], kp[order[1], t] = big, small
        sc[order[0], t] = 0.5 + 0.5 * rng.random(17)
        sc[order[1], t] = 0.5 + 0.5 * rng.random(17)
        if t == 5:
            kp[order[1], t] = 0.0  # the bystander is absent
            sc[order[1], t] = 0.0
    ann = {"frame_dir": "v_Walk_g01_c01", "label": 3, "img_shape": (h, w), "original_shape": (h, w),
           "total_frames": T, "keypoint": kp, "keypoint_score": sc}
    other = dict(ann, frame_dir="v_Jump_g02_c01")
    return {"split": {"train1": ["v_Walk_g01_c01"], "test1": ["v_Jump_g02_c01"]}, "annotations": [ann, other]}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_mmaction_pickle_read_and_mapped(tmp_path, protocol):
    rng = np.random.default_rng(4)
    data = _mmaction_data(rng)
    path = tmp_path / "ucf101_2d.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    anns = load_mmaction_annotations(path)
    assert set(anns) == {"v_Walk_g01_c01", "v_Jump_g02_c01"}
    ann = anns["v_Walk_g01_c01"]
    np.testing.assert_array_equal(ann["keypoint"], data["annotations"][0]["keypoint"])
    raw = read_mmaction_annotation(ann)
    assert raw.frame_size == (320, 240) and raw.person_found.all()
    kp, sc = data["annotations"][0]["keypoint"], data["annotations"][0]["keypoint_score"]
    for t in range(12):
        m = 0 if t % 2 == 0 else 1  # where the big actor is in this frame
        px = np.concatenate([kp[m, t], sc[m, t][:, None]], -1).astype(np.float64)
        scale = np.array([320, 240, 1.0])
        np.testing.assert_allclose(raw.poses[t, 2], px[6] / scale, rtol=0, atol=1e-7)  # r-shoulder
        np.testing.assert_allclose(raw.poses[t, 15], px[1] / scale, rtol=0, atol=1e-7)  # l-eye
        np.testing.assert_allclose(raw.poses[t, 13], px[15] / scale, rtol=0, atol=1e-7)  # l-ankle
        neck = np.r_[(px[5, :2] + px[6, :2]) / 2 / scale[:2], min(px[5, 2], px[6, 2])]
        np.testing.assert_allclose(raw.poses[t, 1], neck, rtol=0, atol=1e-6)
    # by id through the public API: manifest id "Walk/v_Walk_g01_c01" matches frame_dir by name
    poses = extract(None, "mmaction-pkl", pkl=path, video_id="Walk/v_Walk_g01_c01", num_frames=14)
    assert poses.shape == (14, 18, 3) and np.isfinite(poses).all()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


@pytest.mark.parametrize("kind", ["os_system", "eval", "nested"])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "os_system":
        payload = pickle.dumps(_Evil(marker), protocol=4)
    elif kind == "eval":
        payload = pickle.dumps(_EvalEvil(), protocol=5)
    else:
        data = _mmaction_data(np.random.default_rng(0))
        data["annotations"][0]["keypoint"] = _Evil(marker)
        payload = pickle.dumps(data, protocol=2)
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match="refused to load"):
        load_mmaction_annotations(path)
    with pytest.raises(UnsafePickleError):
        safe_load_pickle(payload)
    assert not marker.exists()
    # the same check guards the public API and the job
    with pytest.raises(UnsafePickleError):
        extract(None, "mmaction-pkl", pkl=path, video_id="v_Walk_g01_c01")
    assert not marker.exists()


def test_mmaction_video_without_people_is_no_person():
    ann = {"frame_dir": "v_empty", "img_shape": (240, 320), "total_frames": 5,
           "keypoint": np.zeros((1, 5, 17, 2), np.float32), "keypoint_score": np.zeros((1, 5, 17), np.float32)}
    with pytest.raises(NoPersonError):
        extract(None, "mmaction-pkl", pkl={"v_empty": ann}, video_id="v_empty")


def test_two_people_with_swapping_detector_order_keep_one_identity():
    """Issue 14 item 8: two people of nearly the same size, listed in the opposite order every
    other frame; the kept actor is the same person (the slightly larger, walking one) throughout."""
    T = 16
    a = [_body(0.25 + 0.01 * t, 0.5, 0.22) for t in range(T)]  # walks right
    b = [_body(0.75, 0.5, 0.20) for _ in range(T)]  # stands still
    frames = [np.stack([a[t], b[t]] if t % 2 == 0 else [b[t], a[t]]) for t in range(T)]
    poses, found, info = select_actor(frames)
    assert found.all() and info["tracks"] == 2 and info["kept_track_frames"] == T
    np.testing.assert_array_equal(poses, np.stack(a))


def test_single_pose_source_that_jumps_to_another_person_keeps_the_first():
    """MediaPipe reports one pose a frame; after losing its person it may re-detect someone else.
    Person A in frames 0-9 and 14-19, person B (elsewhere) in 10-13, nobody in frame 7: A is kept
    (10 + 6 - 1 = 15 frames), B's 4 frames become 'no person' and are reported."""
    from csvr.pose.track import keep_one_identity

    T = 20
    poses = np.zeros((T, 18, 3), np.float32)
    found = np.zeros(T, bool)
    for t in range(T):
        if t == 7:
            continue
        poses[t] = _body(0.8, 0.5, 0.2) if 10 <= t < 14 else _body(0.2 + 0.005 * t, 0.5, 0.25)
        found[t] = True
    out, kept, info = keep_one_identity(poses, found)
    expect = np.array([t != 7 and not 10 <= t < 14 for t in range(T)])
    assert kept.tolist() == expect.tolist()
    np.testing.assert_array_equal(out[expect], poses[expect])
    assert not out[~expect].any()  # B's frames are zeroed, not left behind
    assert info == {"tracks": 2, "kept_frames": 15, "dropped_frames": 4, "switch_frames": [10, 14]}
    # one person throughout: nothing dropped
    out, kept, info = keep_one_identity(poses[:10], found[:10])
    assert kept.tolist() == found[:10].tolist() and info["tracks"] == 1 and info["dropped_frames"] == 0


def test_viz_draws_nothing_on_a_frame_without_a_person():
    """Issue 14 item 8: a frame where the actor was not found gets no skeleton (the cleaner fills
    its pose from the nearest frame, which used to be drawn in grey)."""
    from PIL import Image

    from csvr.pose_format.base import PoseRecord
    from csvr.pose.viz import contact_sheet, draw_pose

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)
    pose = _body(0.5, 0.5, 0.4)
    im = draw_pose(Image.fromarray(frame), pose, filled=np.ones(18, bool), person_found=False)
    np.testing.assert_array_equal(np.asarray(im), frame)
    # the person is drawn when found
    assert (np.asarray(draw_pose(Image.fromarray(frame), pose)) != frame).any()
    # in a contact sheet: frame 1 (no person) shows the video frame, apart from the caption
    # strip at the bottom where the frame number and the "no person" tag are written
    T = 2
    rec = PoseRecord(poses=np.stack([pose] * T), valid=np.ones((T, 18), bool), interpolated=np.zeros((T, 18), bool),
                     filled=np.array([[False] * 18, [True] * 18]), person_found=np.array([True, False]),
                     frame_size=(96, 72))
    sheet = np.asarray(contact_sheet([frame, frame], rec, [0, 1], cols=2))
    assert (sheet[:56, :96] != frame[:56]).any()
    np.testing.assert_array_equal(sheet[:56, 96:], frame[:56])


def test_native_stderr_drops_absl_lines_and_passes_the_rest(capfd):
    """What MediaPipe's C++ side writes to fd 2: absl W/I records are dropped, anything else
    (an error record) still reaches stderr."""
    from csvr.pose.sources.common import NativeStderr

    quiet = NativeStderr()
    lines = [b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
             b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
             b"W0000 00:00:1796153970.765036   23100 inference_feedback_manager.cc:114] Feedback manager "
             b"requires a model with a single signature inference. Disabling support for feedback tensors.\n",
             b"E0000 00:00:1796153970.931964   23100 calculator_graph.cc:887] a real error\n"]
    for _ in range(2):  # the temporary file is reused
        with quiet:
            for line in lines:
                os.write(2, line)
    quiet.close()
    err = capfd.readouterr().err
    assert err == "E0000 00:00:1796153970.931964   23100 calculator_graph.cc:887] a real error\n" * 2
    assert quiet.dropped_lines == 6
