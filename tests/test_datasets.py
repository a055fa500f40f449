"""Datasets on real encoded video: which frames a sample holds, I-frames, bad videos, determinism."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from csvr.data.datasets import ClipConfig, ClipDataset, PretrainDataset
from csvr.data.index import build_index, load_manifest
from csvr.data.sampling import uniform_clip_starts
from csvr.data.writer import write_video
from csvr.models.encoder import Encoder

from conftest import frame_level, index_frames


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    for c in ("run", "sit"):
        (root / c).mkdir()
        for k in range(3):
            write_video(root / c / f"{c}_{k}.mp4", index_frames(100, h=64, w=64, seed=k), codec="libx264", gop=12, bframes=2)
    build_index(root, root / "m.jsonl", layout="folder", workers=1)
    return root


CFG = ClipConfig(frames=4, stride=3, future_frames=4, size=32, decode_short_side=None, max_iframes=3,
                 crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_prob=0.0)


def test_pretrain_sample_frames_future_and_iframes(dataset):
    m = load_manifest(dataset / "m.jsonl")
    ds = PretrainDataset(m, m.records, CFG, seed=0)
    for i in range(len(ds)):
        s = ds[i]
        assert s["clip"].shape == (4, 32, 32, 3) and s["clip"].dtype == torch.uint8
        levels = [frame_level(f.numpy()) for f in s["clip"]]
        start = levels[0]
        assert levels == [start + 3 * k for k in range(4)]
        assert [frame_level(f.numpy()) for f in s["future"]] == [start + 3 * (4 + k) for k in range(4)]
        assert s["frame_indices"].tolist() == levels
        span = range(start, start + 9 + 1)
        expected = [k for k in range(0, 100, 12) if k in span] or [max(k for k in range(0, 100, 12) if k < start)]
        got_if = [frame_level(f.numpy()) for f, ok in zip(s["iframes"], s["iframe_mask"]) if ok]
        assert got_if == expected[:3]
        assert bool(s["iframe_fallback"]) == (not any(k in span for k in range(0, 100, 12)))
        assert s["iframe_count"].dtype == torch.long and s["iframe_count"].shape == ()
        assert int(s["iframe_count"]) == len([k for k in range(0, 100, 12) if k in span])
        assert int(s["index"]) == i


def test_pretrain_iframe_count_is_before_the_cap(dataset):
    """8 frames at stride 3 span 22 frames: with GOP 12 that is 1 or 2 I-frames; with
    ``max_iframes=1`` the sample keeps one but ``iframe_count`` still says how many there were."""
    m = load_manifest(dataset / "m.jsonl")
    cfg = ClipConfig(frames=8, stride=3, future_frames=2, size=16, decode_short_side=None, max_iframes=1)
    ds = PretrainDataset(m, m.records[:2], cfg, seed=0)
    seen = set()
    for e in range(8):
        ds.set_epoch(e)
        for i in range(len(ds)):
            s = ds[i]
            first = int(s["frame_indices"][0])
            hand = len([k for k in range(0, 100, 12) if first <= k <= first + 21])
            assert int(s["iframe_count"]) == hand and hand in (1, 2)
            assert int(s["iframe_mask"].sum()) == 1 and not bool(s["iframe_fallback"])
            seen.add(hand)
    assert seen == {1, 2}
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["iframe_count"].shape == (2,) and batch["iframe_count"].dtype == torch.long


def test_pretrain_deterministic_per_seed_and_epoch(dataset):
    m = load_manifest(dataset / "m.jsonl")
    a = PretrainDataset(m, m.records, ClipConfig(frames=4, stride=2, future_frames=4, size=24, decode_short_side=None))
    b = PretrainDataset(m, m.records, ClipConfig(frames=4, stride=2, future_frames=4, size=24, decode_short_side=None))
    assert torch.equal(a[2]["clip"], b[2]["clip"]) and torch.equal(a[2]["iframes"], b[2]["iframes"])
    starts = set()
    for e in range(6):
        a.set_epoch(e)
        starts.add(int(a[2]["frame_indices"][0]))
    assert len(starts) > 1


def test_eval_clips_uniform_and_centre_cropped(dataset):
    m = load_manifest(dataset / "m.jsonl")
    ds = ClipDataset(m, m.records, CFG, mode="eval", num_clips=5)
    s = ds[1]
    assert s["clip"].shape == (5, 4, 32, 32, 3)
    firsts = [frame_level(c[0].numpy()) for c in s["clip"]]
    assert firsts == uniform_clip_starts(100, 4, 3, 5)
    assert int(s["label"]) == m.records[1].label


def test_train_clips_two_views_with_temporal_distance(dataset):
    m = load_manifest(dataset / "m.jsonl")
    ds = ClipDataset(m, m.records, CFG, mode="train", num_clips=2, temporal=lambda rng, mx: min(30, mx))
    s = ds[0]
    assert s["clip"].shape == (2, 4, 32, 32, 3)
    a, b = (frame_level(s["clip"][k, 0].numpy()) for k in range(2))
    assert abs(a - b) == 30


def test_bad_video_is_replaced_and_reported_once(tmp_path, caplog):
    root = tmp_path / "ds"
    (root / "a").mkdir(parents=True)
    for k in range(3):
        write_video(root / "a" / f"{k}.mp4", index_frames(40), codec="libx264", gop=12)
    build_index(root, root / "m.jsonl", layout="folder", workers=1)
    m = load_manifest(root / "m.jsonl")
    (root / "a" / "1.mp4").write_bytes(b"garbage" * 100)  # broken during the run (before it, the load skips it)
    ds = PretrainDataset(m, m.records, CFG)
    with caplog.at_level(logging.WARNING):
        s1 = ds[1]
        s2 = ds[1]
    assert int(s1["index"]) != 1 and int(s2["index"]) == int(s1["index"])
    warnings = [r for r in caplog.records if "a/1.mp4" in r.getMessage()]
    assert len(warnings) == 1


class _MeanColour(Encoder):
    """A stand-in encoder with a hand-checkable output: the mean of each colour channel."""

    feature = "backbone"

    def forward(self, x, poses=None, pose_conf=None):
        return x.mean(dim=(2, 3, 4))


def test_eval_never_replaces_a_bad_video_and_leaves_it_out(tmp_path, caplog):
    from csvr.data.transforms import normalize, to_float_clip
    from csvr.eval.features import extract_features

    root = tmp_path / "ds"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for k in range(2):
            write_video(root / c / f"{k}.mp4", index_frames(40, seed=k + (5 if c == "b" else 0)), codec="libx264", gop=12)
    build_index(root, root / "m.jsonl", layout="folder", workers=1)
    m = load_manifest(root / "m.jsonl")
    (root / "a" / "1.mp4").write_bytes(b"garbage" * 100)  # broken during the run (before it, the load skips it)
    ds = ClipDataset(m, m.records, CFG, mode="eval", num_clips=2)
    bad = [r.path for r in m.records].index("a/1.mp4")
    item = ds[bad]
    assert not bool(item["ok"]) and int(item["index"]) == bad and int(item["label"]) == m.records[bad].label
    assert item["clip"].shape == (2, 4, 32, 32, 3) and int(item["clip"].sum()) == 0
    with caplog.at_level(logging.WARNING):
        f = extract_features(_MeanColour(), ds, batch_size=3)
    good = [i for i in range(len(m.records)) if i != bad]
    assert f.ids == [m.records[i].id for i in good] and f.left_out == [m.records[bad].id]
    assert f.labels.tolist() == [m.records[i].label for i in good]
    expected = np.stack([normalize(to_float_clip(ds[i]["clip"])).mean(dim=(2, 3, 4)).numpy() for i in good])
    np.testing.assert_allclose(f.clips, expected, rtol=1e-5, atol=1e-6)
    assert any("left out" in r.getMessage() and "a/1" in r.getMessage() for r in caplog.records)


def test_dataloader_with_workers(dataset):
    m = load_manifest(dataset / "m.jsonl")
    ds = PretrainDataset(m, m.records, CFG, seed=3)
    dl = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    batches = list(dl)
    assert len(batches) == 2 and batches[0]["clip"].shape == (3, 4, 32, 32, 3)
    serial = [ds[i]["clip"] for i in range(3)]
    assert all(torch.equal(batches[0]["clip"][i], serial[i]) for i in range(3))  # same samples in workers


@pytest.mark.parametrize("flip", [False, True])
def test_pretrain_poses_follow_the_crop_when_frames_are_rescaled(tiny_synth, flip):
    """Poses are in [0, 1] of the frame; the crop box is in decoded pixels (here frames decoded at
    a smaller size than the source): the sample's poses must land on the same spot of the crop."""
    from csvr.data.transforms import COCO18_FLIP_PERM
    from csvr.pose import PoseCache, normalize

    m = load_manifest(tiny_synth["manifest"])
    rec = m.records[0]
    dw = int(round(rec.width * 32 / rec.height / 2)) * 2  # decoded width at short side 32
    cfg = ClipConfig(frames=4, stride=1, future_frames=2, size=24, decode_short_side=32, crop_scale=(1.0, 1.0),
                     crop_ratio=(dw / 32, dw / 32), flip_prob=1.0 if flip else 0.0, max_iframes=2)
    ds = PretrainDataset(m, m.records, cfg, pose_cache=str(tiny_synth["poses"]))
    s = ds[0]
    gt = PoseCache(str(tiny_synth["poses"])).get(rec.id)[s["frame_indices"].numpy()]
    want = gt.copy()
    if flip:
        want[..., 0] = 1.0 - want[..., 0]
        want = want[:, COCO18_FLIP_PERM]
    assert bool(s["pose_valid"])
    np.testing.assert_allclose(s["poses_raw"].numpy()[..., :2], want[..., :2], atol=1e-5)
    norm, _ = normalize(s["poses_raw"].numpy())
    np.testing.assert_allclose(s["poses"].numpy(), norm, atol=1e-6)
