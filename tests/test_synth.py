"""The built-in synthetic dataset (issue 3): layout, split, videos, I-frames, poses, determinism,
resume, CLI. One tiny dataset is generated per session (4 classes x 4 videos x 1.2 s at 96x72)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from csvr.synth import (
    CLASSES,
    generate,
    group_layout,
    read_synth_json,
    openpose_json,
    parse_size,
    read_openpose_sequence,
    select_classes,
)
from csvr.synth.dataset import MANIFEST, PROGRESS
from csvr.synth.encode import expected_iframes
from csvr.errors import CsvrError

W, H, SECONDS, VPC = 96, 72, 1.2, 4
FRAMES = 30
NAME_RE = re.compile(r"^v_([A-Za-z]+)_g(\d\d)_c(\d\d)$")
OPENPOSE_KEYS = ["person_id", "pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
                 "hand_right_keypoints_2d", "pose_keypoints_3d", "face_keypoints_3d",
                 "hand_left_keypoints_3d", "hand_right_keypoints_3d"]


def _gen(out: Path, seed: int = 0, workers: int = 1, **kw):
    args = dict(classes=4, videos_per_class=VPC, seconds=SECONDS, size=(W, H), seed=seed, workers=workers)
    args.update(kw)
    return generate(out, **args)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    return out, _gen(out)


@pytest.fixture(scope="session")
def twin(tmp_path_factory) -> Path:
    """The same parameters and seed again, made by two worker processes."""
    out = tmp_path_factory.mktemp("synth") / "twin"
    _gen(out, workers=2)
    return out


def _decode(path: Path) -> tuple[np.ndarray, list[str], av.video.stream.VideoStream]:
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        frames, types = [], []
        for f in c.decode(st):
            frames.append(f.to_ndarray(format="rgb24"))
            types.append(f.pict_type.name if hasattr(f.pict_type, "name") else str(f.pict_type))
        info = (st.codec_context.name, st.codec_context.width, st.codec_context.height,
                float(st.average_rate), st.codec_context.pix_fmt)
    return np.stack(frames), types, info


def _pose_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "poses").rglob("*.json"))}


# ----------------------------------------------------------------------------- layout

def test_layout_is_ucf101(tiny):
    root, summary = tiny
    names = sorted(c.name for c in select_classes(4))
    assert summary.classes == names and summary.videos == 16 and summary.frames == 16 * FRAMES
    class_ind = (root / "classInd.txt").read_text().splitlines()
    assert class_ind == [f"{i + 1} {n}" for i, n in enumerate(names)]
    label = {n: i + 1 for i, n in enumerate(names)}
    train = (root / "trainlist01.txt").read_text().splitlines()
    test = (root / "testlist01.txt").read_text().splitlines()
    assert len(train) == 8 and len(test) == 8
    listed = []
    for line in train:
        rel, lab = line.split(" ")
        cls, fname = rel.split("/")
        assert int(lab) == label[cls]
        listed.append(rel)
    for line in test:
        assert " " not in line
        listed.append(line)
    for rel in listed:
        cls, fname = rel.split("/")
        m = NAME_RE.match(Path(fname).stem)
        assert m and m.group(1) == cls and fname.endswith(".mp4")
        assert (root / rel).is_file() and (root / rel).stat().st_size > 1000
    on_disk = sorted(f"{p.parent.name}/{p.name}" for n in names for p in (root / n).iterdir())
    assert on_disk == sorted(listed)  # no stray or temporary files
    assert not (root / PROGRESS).exists()
    readme = (root / "README.md").read_text()
    for n in names:
        assert n in readme
    for word in ("Motion classes", "Context classes", "GOP", "poses/openpose", "keyint"):
        assert word in readme


def test_split_is_by_group(tiny):
    root, _ = tiny
    groups = {}
    for kind in ("train", "test"):
        for line in (root / f"{kind}list01.txt").read_text().splitlines():
            g = int(NAME_RE.match(Path(line.split()[0]).stem).group(2))
            groups.setdefault(kind, set()).add(g)
    assert groups["test"] == {1} and groups["train"] == {2}
    # the default size: 8 groups of 2 clips, groups 1-2 test (as UCF101's split 1: 7 of 25)
    pairs, test_groups = group_layout(16)
    assert len(pairs) == 16 and test_groups == [1, 2]
    pairs, test_groups = group_layout(100)
    assert len({g for g, _ in pairs}) == 25 and test_groups == list(range(1, 8))
    pairs, test_groups = group_layout(5)
    assert pairs == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)] and test_groups == [1]


# ----------------------------------------------------------------------------- videos

def test_every_video_decodes_with_as_many_frames_as_pose_files(tiny):
    root, _ = tiny
    m = read_synth_json(root)
    for v in m["videos"]:
        frames, types, (codec, w, h, fps, pix) = _decode(root / v["rel"])
        assert (codec, w, h, fps, pix) == ("h264", W, H, 25.0, "yuv420p")
        assert frames.shape == (FRAMES, H, W, 3) and v["frames"] == FRAMES
        stem = Path(v["rel"]).stem
        files = sorted((root / "poses/openpose" / v["class"]).glob(f"{stem}_*_keypoints.json"))
        assert len(files) == FRAMES
        assert files[0].name == f"{stem}_000000000000_keypoints.json"
        assert files[-1].name == f"{stem}_{FRAMES - 1:012d}_keypoints.json"
        assert frames.std() > 10  # a real picture, not a flat frame


def test_iframes_follow_the_gop_policy_and_vary(tiny):
    root, _ = tiny
    m = read_synth_json(root)
    counts, lists = [], []
    for v in m["videos"]:
        _, types, _ = _decode(root / v["rel"])
        iframes = [i for i, t in enumerate(types) if t in ("I", "1")]
        assert iframes == v["iframes"]
        assert iframes == expected_iframes(v["frames"], v["keyint"], [e["frame"] for e in v["events"]])
        assert 16 <= v["keyint"] <= 60 and iframes[0] == 0
        assert "B" in types or "3" in types  # B-frames are on
        counts.append(len(iframes))
        lists.append(tuple(iframes))
    assert len(set(counts)) >= 2, counts
    assert len(set(lists)) >= 3, lists
    assert sum(len(v["events"]) for v in m["videos"]) >= 2
    try:  # the data layer's view agrees (when that module is present)
        from csvr.data.video import probe
    except ImportError:
        return
    for v in m["videos"][:6]:
        info = probe(root / v["rel"])
        assert info.num_frames == FRAMES and info.iframes == v["iframes"]


# ----------------------------------------------------------------------------- poses

def test_pose_files_are_openpose_json(tiny):
    root, _ = tiny
    files = sorted((root / "poses/openpose").rglob("*_keypoints.json"))
    assert len(files) == 16 * FRAMES
    visible = []
    for f in files[::7]:
        text = f.read_text()
        assert text.startswith('{"version":1.3,"people":[{"person_id":[-1],"pose_keypoints_2d":[')
        assert not text.endswith("\n") and " " not in text
        d = json.loads(text)
        assert list(d) == ["version", "people"] and d["version"] == 1.3
        assert len(d["people"]) == 1
        person = d["people"][0]
        assert list(person) == OPENPOSE_KEYS and person["person_id"] == [-1]
        assert all(person[k] == [] for k in OPENPOSE_KEYS[2:])
        kp = np.array(person["pose_keypoints_2d"], float).reshape(18, 3)
        c = kp[:, 2]
        assert ((c >= 0) & (c <= 1)).all()
        assert (kp[c == 0, :2] == 0).all()
        seen = kp[c > 0]
        assert (seen[:, 0] >= 0).all() and (seen[:, 0] <= W - 1).all()
        assert (seen[:, 1] >= 0).all() and (seen[:, 1] <= H - 1).all()
        visible.append((c > 0).mean())
        # body geometry: the neck is above the hips, the hips above the ankles
        if c[1] > 0 and c[8] > 0 and c[10] > 0:
            assert kp[1, 1] < kp[8, 1] < kp[10, 1]
    assert np.mean(visible) > 0.8  # most joints are seen (hidden ears/eyes are 0,0,0)
    assert min(visible) >= 14 / 18


def test_openpose_number_format():
    kp = np.zeros((18, 3))
    kp[0] = [12.3456, 7.0, 0.91234]
    kp[1] = [100.0, 0.004, 1.0]
    text = openpose_json(kp)
    assert text.startswith('{"version":1.3,"people":[{"person_id":[-1],"pose_keypoints_2d":[12.35,7,0.912,100,0,1,0,0,0,')
    assert text.endswith('"hand_right_keypoints_3d":[]}]}')
    assert openpose_json(np.zeros((18, 3))) == '{"version":1.3,"people":[]}'


def test_poses_sit_on_the_drawn_figure(tiny):
    """The neck-hip midpoint lies on the shirt: its colour is closer to the actor's shirt than the
    background a figure-width to the side is."""
    from csvr.synth.generator import group_look

    root, _ = tiny
    m = read_synth_json(root)
    hits, total = 0, 0
    for v in m["videos"]:
        shirt = np.array(group_look(0, v["group"]).body.shirt, float)
        frames, _, _ = _decode(root / v["rel"])
        kp = read_openpose_sequence(root / v["pose_dir"], Path(v["rel"]).stem)
        for t in range(0, FRAMES, 6):
            if kp[t, 1, 2] == 0 or kp[t, 8, 2] == 0 or kp[t, 11, 2] == 0:
                continue
            hip = (kp[t, 8, :2] + kp[t, 11, :2]) / 2
            x, y = np.round(0.5 * kp[t, 1, :2] + 0.5 * hip).astype(int)
            on = frames[t, y, x].astype(float)
            off_x = x + 18 if x < W / 2 else x - 18
            off = frames[t, y, off_x].astype(float)
            total += 1
            hits += np.linalg.norm(on - shirt) < np.linalg.norm(off - shirt)
    assert total >= 40 and hits / total > 0.85, (hits, total)


# ----------------------------------------------------------------------------- determinism

def test_same_seed_gives_identical_poses_and_frames(tiny, twin):
    root, _ = tiny
    a, b = _pose_files(root), _pose_files(twin)
    assert len(a) == 16 * FRAMES and a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)
    assert (root / "trainlist01.txt").read_bytes() == (twin / "trainlist01.txt").read_bytes()
    for v in read_synth_json(root)["videos"]:
        fa, _, _ = _decode(root / v["rel"])
        fb, _, _ = _decode(twin / v["rel"])
        assert np.array_equal(fa, fb)
        assert (root / v["rel"]).read_bytes() == (twin / v["rel"]).read_bytes()
    assert (root / MANIFEST).read_bytes() == (twin / MANIFEST).read_bytes()


def test_other_seed_differs(tiny, tmp_path):
    root, _ = tiny
    other = tmp_path / "seed1"
    _gen(other, seed=1, classes=["Walk"], videos_per_class=2)
    rel = "Walk/v_Walk_g01_c01.mp4"
    fa, _, _ = _decode(root / rel)
    fb, _, _ = _decode(other / rel)
    assert np.abs(fa.astype(int) - fb.astype(int)).mean() > 5
    pa = read_openpose_sequence(root / "poses/openpose/Walk", "v_Walk_g01_c01")
    pb = read_openpose_sequence(other / "poses/openpose/Walk", "v_Walk_g01_c01")
    assert np.abs(pa[:, :, :2] - pb[:, :, :2]).mean() > 2.0


# ----------------------------------------------------------------------------- resume and safety

def test_second_run_skips_and_killed_run_is_completed(tiny, tmp_path):
    src, _ = tiny
    root = tmp_path / "copy"
    shutil.copytree(src, root)
    again = _gen(root)
    assert again.skipped and again.generated == 0
    original = _pose_files(root)
    m = read_synth_json(root)
    # make it look like a run killed after 14 of 16 videos, with a half-written temporary
    keep = m["videos"][:14]
    header = json.dumps({"params": m["params"]}, sort_keys=True)
    (root / PROGRESS).write_text("\n".join([header] + [json.dumps(v) for v in keep]) + "\n{\"rel\": \"trunc")
    for f in (MANIFEST, "classInd.txt", "trainlist01.txt", "testlist01.txt"):
        (root / f).unlink()
    lost = m["videos"][15]
    (root / lost["rel"]).unlink()
    (root / lost["rel"]).with_name("." + Path(lost["rel"]).name + ".tmp").write_bytes(b"\0" * 100)
    stem = Path(lost["rel"]).stem
    (root / lost["pose_dir"] / f"{stem}_000000000003_keypoints.json").write_text('{"version":1.3,')
    done = _gen(root)
    assert not done.skipped and done.generated == 2 and done.reused == 14
    assert _pose_files(root) == original
    assert (root / MANIFEST).read_bytes() == (src / MANIFEST).read_bytes()
    assert not list(root.rglob("*.tmp")) and not (root / PROGRESS).exists()
    # a damaged video in a finished dataset is noticed and made again
    (root / lost["rel"]).write_bytes(b"garbage")
    fixed = _gen(root)
    assert fixed.generated == 1 and (root / lost["rel"]).read_bytes() == (src / lost["rel"]).read_bytes()


def test_refuses_other_parameters_and_foreign_folders(tiny, tmp_path):
    src, _ = tiny
    root = tmp_path / "copy"
    shutil.copytree(src, root)
    with pytest.raises(CsvrError, match="other parameters.*seed.*--overwrite"):
        _gen(root, seed=5)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(CsvrError, match="not empty"):
        _gen(foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    small = _gen(root, overwrite=True, classes=2, videos_per_class=2, seconds=0.4)
    assert small.videos == 4 and not small.skipped
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(small.classes + ["poses"])


# ----------------------------------------------------------------------------- CLI and options

def _cli(argv, monkeypatch):
    from csvr import cli

    mods = list(cli.COMMAND_MODULES)
    if "csvr.synth.commands" not in mods:
        monkeypatch.setattr(cli, "COMMAND_MODULES", mods + ["csvr.synth.commands"])
    return cli.main(argv)


@pytest.mark.parametrize("size, message", [
    ("97x72", "even width and height"), ("abc", "WIDTHxHEIGHT"), ("16x16", "32..1920"),
])
def test_cli_bad_size_is_one_clear_error(size, message, tmp_path, monkeypatch, capsys):
    rc = _cli(["data", "synth", "--out", str(tmp_path / "x"), "--size", size], monkeypatch)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("csvr: error: ") and message in err[0]
    assert not (tmp_path / "x").exists()


def test_cli_unknown_class_and_too_few_videos(tmp_path, monkeypatch, capsys):
    assert _cli(["data", "synth", "--out", str(tmp_path / "x"), "--classes", "Walk,Dance"], monkeypatch) == 2
    assert "unknown class 'Dance'" in capsys.readouterr().err
    assert _cli(["data", "synth", "--out", str(tmp_path / "x"), "--videos-per-class", "1"], monkeypatch) == 2
    assert "at least 2" in capsys.readouterr().err


def test_cli_generates(tmp_path, monkeypatch, capsys):
    out = tmp_path / "cli"
    rc = _cli(["data", "synth", "--out", str(out), "--classes", "3", "--videos-per-class", "2",
               "--seconds", "0.4", "--size", "64x48", "--workers", "1"], monkeypatch)
    assert rc == 0
    assert "3 classes, 6 videos (3 train / 3 test), 60 frames" in capsys.readouterr().out
    assert (out / "classInd.txt").read_text() == "1 StandInKitchen\n2 Walk\n3 WalkOnBeach\n"
    rc = _cli(["data", "synth", "--out", str(out), "--classes", "3", "--videos-per-class", "2",
               "--seconds", "0.4", "--size", "64x48"], monkeypatch)
    assert rc == 0 and "already complete" in capsys.readouterr().out


def test_register_adds_synth_under_data():
    from csvr.synth.commands import register, run_synth

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    data = sub.add_parser("data").add_subparsers(dest="data_cmd")
    register(sub, {"data": data})
    args = parser.parse_args(["data", "synth", "--out", "d", "--size", "128x96", "--classes", "Run,HoldBat"])
    assert args.func is run_synth and args.size == "128x96" and args.videos_per_class == 16
    assert args.seconds == 4.0 and args.seed == 0 and not args.overwrite


def test_parse_size_and_class_selection():
    assert parse_size("160x120") == (160, 120) and parse_size((96, 72)) == (96, 72)
    assert len(CLASSES) == 15
    groups = [c.group for c in CLASSES]
    assert groups.count("motion") == 6 and groups.count("context") == 5 and groups.count("both") == 4
    assert sorted(c.group for c in select_classes(3)) == ["both", "context", "motion"]
    assert [c.name for c in select_classes("holdbat, walk")] == ["HoldBat", "Walk"]
    with pytest.raises(CsvrError):
        select_classes(16)


# ----------------------------------------------------------------------------- the design claims

def test_motion_classes_share_their_single_frame_poses():
    """Every motion class draws its per-frame joint angles from the same distribution (only the
    dynamics differ), while the tempo separates walking from running."""
    from csvr.synth.motions import make_motion
    from csvr.synth.skeleton import Body

    body = Body()
    chans = ("r_hip_flex", "r_shin_flex", "r_sh_flex", "r_fa_flex", "lean")
    samples, tempo = {}, {}
    for name in ("walk", "run", "walk_backward", "run_backward", "moonwalk", "walk_in_place"):
        vals, tps = [], []
        for s in range(60):
            mo = make_motion(name, 100, 25, np.random.default_rng(s), body)
            vals.append(np.stack([mo.angles[c] for c in chans], 1))
            tps.append(mo.info["tempo_hz"])
        samples[name] = np.concatenate(vals)
        tempo[name] = np.mean(tps)
    qs = [0.1, 0.25, 0.5, 0.75, 0.9]
    ref = np.quantile(samples["walk"], qs, axis=0)
    for name, v in samples.items():
        assert np.abs(np.quantile(v, qs, axis=0) - ref).max() < 0.06, name
    assert tempo["run"] > 2 * tempo["walk"] - 0.2 and tempo["run_backward"] > 1.9


def test_groups_fix_the_actor_across_classes():
    from csvr.synth.generator import group_look

    a, b, c = group_look(0, 3), group_look(0, 3), group_look(0, 4)
    assert a.body == b.body and a.styles == b.styles and a.generic == b.generic
    assert a.body != c.body and a.generic != c.generic


# ----------------------------------------------------------------------------- --gop (issue 12)

GOP = 12


@pytest.fixture(scope="session")
def gop12(tmp_path_factory) -> Path:
    """``tiny`` again (same parameters and seed) with a fixed GOP of 12."""
    out = tmp_path_factory.mktemp("synth") / "gop12"
    _gen(out, gop=GOP)
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_fixed_gop_puts_iframes_exactly_at_multiples_of_the_gop(gop12):
    from csvr.data.video import VideoReader

    m = read_synth_json(gop12)
    assert m["params"]["gop"] == GOP
    want = list(range(0, FRAMES, GOP))  # 0, 12, 24
    for v in m["videos"]:
        assert v["keyint"] == GOP and v["iframes"] == want
        with VideoReader(gop12 / v["rel"]) as r:  # read back from the encoded file
            assert r.num_frames == FRAMES
            assert r.iframe_indices() == want
            idx, pics = r.read_iframes()
            assert idx == want and pics.shape == (len(want), H, W, 3)
        _, types, _ = _decode(gop12 / v["rel"])
        assert [i for i, t in enumerate(types) if t in ("I", "1")] == want  # the decoder agrees
        assert "B" in types or "3" in types
    # the scene-cut-like events still happen in the picture; they no longer force I-frames
    assert sum(len(v["events"]) for v in m["videos"]) >= 2
    assert any(e["frame"] % GOP for v in m["videos"] for e in v["events"])
    readme = (gop12 / "README.md").read_text()
    assert f"--gop {GOP}" in readme and f"Fixed GOP of {GOP} frames" in readme
    assert f"keyint={GOP}:min-keyint={GOP}:scenecut=0" in readme


def test_fixed_gop_keeps_everything_but_the_encoding(tiny, gop12):
    """Same random draws: same events, same poses (byte for byte), the same pictures up to coding
    noise; only the I-frames (and so the bitstream) differ."""
    root, _ = tiny
    base, fixed = read_synth_json(root), read_synth_json(gop12)
    assert {k: v for k, v in fixed["params"].items() if k != "gop"} == base["params"]
    assert _pose_files(root) == _pose_files(gop12)
    moved, others = 0, []
    for a, b in zip(base["videos"], fixed["videos"]):
        assert a["rel"] == b["rel"] and a["events"] == b["events"] and a["frames"] == b["frames"]
        assert {k: a[k] for k in ("scene", "tempo_hz") if k in a} == {k: b[k] for k in ("scene", "tempo_hz") if k in b}
        fa, _, _ = _decode(root / a["rel"])
        fb, _, _ = _decode(gop12 / b["rel"])
        assert fa.shape == fb.shape
        assert _psnr(fa, fb) > 30, (a["rel"], _psnr(fa, fb))  # measured 32.8-41.2 dB
        assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 5  # sensor noise coded twice: 0.7-3.3
        moved += a["iframes"] != b["iframes"]
        others.append(fa)
    assert _psnr(others[0], others[1]) < 20  # another video is nowhere near (the check discriminates)
    assert moved >= len(base["videos"]) // 2  # the default policy put them elsewhere


def test_finished_folder_with_another_gop_is_refused(tiny, gop12, tmp_path):
    root, _ = tiny
    plain = tmp_path / "plain"
    shutil.copytree(root, plain)
    with pytest.raises(CsvrError, match=r"other parameters \(gop: off -> 12\); pass --overwrite .* another --out"):
        _gen(plain, gop=GOP)
    fixed = tmp_path / "fixed"
    shutil.copytree(gop12, fixed)
    with pytest.raises(CsvrError, match=r"gop: 12 -> off\).*--overwrite"):
        _gen(fixed)
    with pytest.raises(CsvrError, match=r"gop: 12 -> 16\).*--overwrite"):
        _gen(fixed, gop=16)
    assert _gen(fixed, gop=GOP).skipped  # the same GOP: already complete
    # a run killed part-way with one GOP is not completed with another
    m = read_synth_json(fixed)
    (fixed / PROGRESS).write_text(json.dumps({"params": m["params"]}, sort_keys=True) + "\n"
                                  + json.dumps(m["videos"][0]) + "\n")
    (fixed / MANIFEST).unlink()
    with pytest.raises(CsvrError, match=r"gop: 12 -> off"):
        _gen(fixed)
    for bad in (0, -3, 2.5):
        with pytest.raises(CsvrError, match="--gop"):
            _gen(tmp_path / "bad", gop=bad)


def test_cli_gop_option():
    from csvr.synth.commands import register

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    data = sub.add_parser("data").add_subparsers(dest="data_cmd")
    register(sub, {"data": data})
    assert parser.parse_args(["data", "synth", "--out", "d"]).gop is None
    assert parser.parse_args(["data", "synth", "--out", "d", "--gop", "12"]).gop == 12
    helptext = data.choices["synth"].format_help()
    assert "--gop N" in helptext and "min-keyint=N" in helptext


def test_gop12_clips_always_hold_their_own_iframes(gop12):
    """The point of --gop 12: an 8-frame clip at stride 3 spans 22 frames, so its span always
    holds 1 or 2 I-frames (never the fallback to an earlier one)."""
    from csvr.data.datasets import ClipConfig, PretrainDataset
    from csvr.data.index import build_index
    from csvr.data.index import load_manifest as load_index

    build_index(gop12, gop12 / "manifest.jsonl", workers=1)
    idx = load_index(gop12 / "manifest.jsonl")
    cfg = ClipConfig(frames=8, stride=3, future_frames=2, size=16, decode_short_side=None, max_iframes=4)
    ds = PretrainDataset(idx, idx.records[:4], cfg, seed=0)
    for i in range(len(ds)):
        s = ds[i]
        first = int(s["frame_indices"][0])
        want = len([k for k in range(0, FRAMES, GOP) if first <= k <= first + 21])
        assert int(s["iframe_count"]) == want and want in (1, 2)
        assert not bool(s["iframe_fallback"]) and int(s["iframe_mask"].sum()) == want
