"""Pose layer: skeleton maps, cleaning (hand-checked values, adversarial input), normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from csvr.pose import NoPersonError, clean, denormalize, normalize
from csvr.pose.clean import CleanSettings
from csvr.pose_format.normalize import NormParams
from csvr.pose_format.skeleton import (BLAZEPOSE33_TO_COCO18, BODY25_TO_COCO18, COCO17_TO_COCO18, FLIP_INDEX,
                                       JOINT_NAMES, LIMBS, PARENT, map_to_coco18, mapping_table)


# ----------------------------------------------------------------------------- skeleton
def test_joint_order_is_openpose_coco18():
    assert JOINT_NAMES == ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
                           "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear",
                           "l_ear")
    assert len(LIMBS) == 17 and all(0 <= a < 18 and 0 <= b < 18 for a, b in LIMBS)
    assert sorted(FLIP_INDEX) == list(range(18)) and all(FLIP_INDEX[FLIP_INDEX[j]] == j for j in range(18))
    # the tree reaches the neck from every joint
    for j in range(18):
        seen, k = set(), j
        while PARENT[k] != -1:
            assert k not in seen
            seen.add(k)
            k = PARENT[k]
        assert k == 1


def test_maps_name_the_same_body_part():
    def norm(name):
        return name.lower().replace("left", "l").replace("right", "r").replace("_", "").replace("shoulder", "shoulder")

    for name in ("body25", "coco17", "blazepose33"):
        for j, coco_name, desc in mapping_table(name):
            if coco_name == "neck" and name != "body25":
                assert "midpoint" in desc and "shoulder" in desc.lower()
                continue
            src_name = desc.split(" ", 1)[1].lower()
            side, part = coco_name.split("_") if "_" in coco_name else ("", coco_name)
            assert part in src_name.replace("_", ""), (name, coco_name, desc)
            if side:
                assert src_name.startswith(side) or src_name.startswith({"r": "right", "l": "left"}[side]), desc
    assert BODY25_TO_COCO18[8] == 9  # r-hip skips BODY_25's MidHip
    assert COCO17_TO_COCO18[2] == 6 and COCO17_TO_COCO18[5] == 5
    assert BLAZEPOSE33_TO_COCO18[14] == 5 and BLAZEPOSE33_TO_COCO18[15] == 2  # eye centres


def test_midpoint_joint_takes_min_confidence():
    pts = np.zeros((17, 3), np.float32)
    pts[5] = (0.6, 0.4, 0.9)  # left shoulder
    pts[6] = (0.4, 0.5, 0.7)  # right shoulder
    out = map_to_coco18(pts, "coco17")
    np.testing.assert_allclose(out[1], (0.5, 0.45, 0.7), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(out[2], pts[6])
    np.testing.assert_array_equal(out[5], pts[5])


# ----------------------------------------------------------------------------- cleaning
def _blank(T):
    return np.zeros((T, 18, 3), np.float32)


def test_interpolation_and_gap_flags_by_hand():
    T = 8
    p = _blank(T)
    p[:, 1] = (0.5, 0.5, 0.9)  # neck always seen
    # joint 0: seen at 0 and 3 -> frames 1, 2 interpolated; 4..7 trailing -> copy of frame 3
    p[0, 0] = (0.1, 0.2, 0.8)
    p[3, 0] = (0.4, 0.5, 0.6)
    # joint 2: seen at 0 and 5, gap of 4 > max_gap=3 -> nearest frame; frame 2.5 would tie
    p[0, 2] = (0.1, 0.1, 0.9)
    p[5, 2] = (0.6, 0.6, 0.9)
    # joint 5: seen only at 6 -> 0..5 leading fill, 7 trailing fill
    p[6, 5] = (0.7, 0.3, 0.5)
    # joint 8: seen at 0 and 4 (gap 3 = max_gap -> linear); conf below threshold at 2 counts as missing
    p[0, 8] = (0.0, 0.0, 1.0)
    p[2, 8] = (0.9, 0.9, 0.05)
    p[4, 8] = (0.8, 0.4, 0.5)
    rec = clean(p, CleanSettings(conf_threshold=0.1, max_gap=3, interp_conf_scale=0.5))
    out = rec.poses
    np.testing.assert_allclose(out[1, 0], (0.2, 0.3, 0.3), atol=1e-6)
    np.testing.assert_allclose(out[2, 0], (0.3, 0.4, 0.3), atol=1e-6)
    for t in range(4, 8):
        np.testing.assert_allclose(out[t, 0], (0.4, 0.5, 0.0), atol=1e-6)
    assert rec.interpolated[:, 0].tolist() == [0, 1, 1, 0, 0, 0, 0, 0]
    assert rec.filled[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert rec.valid[:, 0].tolist() == [1, 0, 0, 1, 0, 0, 0, 0]
    # long gap: frames 1, 2 nearer to 0; 3, 4 nearer to 5
    for t, src in ((1, 0), (2, 0), (3, 5), (4, 5)):
        np.testing.assert_allclose(out[t, 2, :2], p[src, 2, :2], atol=1e-7)
        assert out[t, 2, 2] == 0.0 and rec.filled[t, 2] and not rec.interpolated[t, 2]
    # leading / trailing
    for t in (0, 1, 2, 3, 4, 5, 7):
        np.testing.assert_allclose(out[t, 5], (0.7, 0.3, 0.0), atol=1e-7)
    np.testing.assert_allclose(out[6, 5], (0.7, 0.3, 0.5), atol=1e-7)
    # gap of exactly max_gap is interpolated: x 0 -> 0.8, y 0 -> 0.4 over 4 frames
    for t in (1, 2, 3):
        np.testing.assert_allclose(out[t, 8], (0.2 * t, 0.1 * t, 0.25), atol=1e-6)
    # never-seen joints sit on their nearest seen ancestor: r-elbow(3) -> r-shoulder(2)
    np.testing.assert_array_equal(out[:, 3, :2], out[:, 2, :2])
    np.testing.assert_array_equal(out[:, 4, :2], out[:, 2, :2])
    assert rec.filled[:, 3].all() and (out[:, 3, 2] == 0).all()
    # eyes hang off the nose
    np.testing.assert_array_equal(out[:, 14, :2], out[:, 0, :2])
    assert rec.person_found.all()
    assert rec.meta["stats"]["never_seen_joints"] == [3, 4, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17]


def test_tie_goes_to_earlier_frame_and_unseen_neck_from_shoulders():
    p = _blank(5)
    p[0, 2] = (0.2, 0.2, 1.0)
    p[4, 2] = (0.6, 0.6, 1.0)
    p[:, 5] = (0.8, 0.2, 1.0)
    rec = clean(p, CleanSettings(conf_threshold=0.1, max_gap=2))
    np.testing.assert_allclose(rec.poses[2, 2, :2], (0.2, 0.2))
    np.testing.assert_allclose(rec.poses[3, 2, :2], (0.6, 0.6))
    # neck never seen: midpoint of the shoulders, per frame
    np.testing.assert_allclose(rec.poses[:, 1, :2], 0.5 * (rec.poses[:, 2, :2] + rec.poses[:, 5, :2]), atol=1e-7)
    assert rec.filled[:, 1].all()


def test_person_found_mask_and_max_gap_zero():
    p = _blank(4)
    p[:, 0] = (0.5, 0.5, 0.9)
    p[1, 0] = (0.9, 0.9, 0.9)
    rec = clean(p, CleanSettings(max_gap=0), person_found=np.array([1, 0, 1, 1], bool))
    assert rec.person_found.tolist() == [True, False, True, True]
    # max_gap=0: the one-frame gap is filled by the nearest frame (tie -> earlier), not interpolated
    np.testing.assert_allclose(rec.poses[1, 0], (0.5, 0.5, 0.0))
    assert rec.filled[1, 0] and not rec.interpolated.any()


@pytest.mark.parametrize("case", ["all_zero", "all_nan", "nan_conf", "below_threshold", "no_person_frames", "empty"])
def test_no_person_raises(case):
    T = 6
    if case == "all_zero":
        p = _blank(T)
    elif case == "all_nan":
        p = np.full((T, 18, 3), np.nan, np.float32)
    elif case == "nan_conf":
        p = np.random.default_rng(0).random((T, 18, 3)).astype(np.float32)
        p[..., 2] = np.nan
    elif case == "below_threshold":
        p = np.random.default_rng(0).random((T, 18, 3)).astype(np.float32) * 0.09
    elif case == "no_person_frames":
        p = np.random.default_rng(0).random((T, 18, 3)).astype(np.float32)
    else:
        p = np.zeros((0, 18, 3), np.float32)
    pf = np.zeros(len(p), bool) if case == "no_person_frames" else None
    with pytest.raises(NoPersonError):
        clean(p, CleanSettings(conf_threshold=0.1), person_found=pf)


@pytest.mark.parametrize("seed", range(6))
def test_adversarial_inputs_never_leak_nan_or_inf(seed):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 40))
    p = (rng.random((T, 18, 3)) * 3 - 1).astype(np.float32)  # coords and conf outside [0, 1]
    mask = rng.random((T, 18, 3))
    p[mask < 0.2] = np.nan
    p[(mask >= 0.2) & (mask < 0.25)] = np.inf
    p[(mask >= 0.25) & (mask < 0.3)] = -np.inf
    p[0, 7] = (0.3, 0.3, 0.95)  # at least one valid joint
    rec = clean(p, CleanSettings(conf_threshold=0.2, max_gap=int(rng.integers(0, 12))))
    assert rec.poses.dtype == np.float32 and rec.poses.shape == (T, 18, 3)
    assert np.isfinite(rec.poses).all()
    assert (rec.poses >= 0).all() and (rec.poses <= 1).all()
    assert not (rec.valid & rec.filled).any() and not (rec.valid & rec.interpolated).any()
    assert not (rec.filled & rec.interpolated).any()
    # every joint is either observed, interpolated or filled
    assert (rec.valid | rec.filled | rec.interpolated).all()


def test_single_frame_and_single_joint_video():
    p = _blank(1)
    p[0, 9] = (0.25, 0.75, 0.6)
    rec = clean(p)
    assert rec.poses.shape == (1, 18, 3) and np.isfinite(rec.poses).all()
    # everything collapses onto the only seen joint (neck = mean of seen joints)
    np.testing.assert_allclose(rec.poses[0, :, :2], np.tile([[0.25, 0.75]], (18, 1)), atol=1e-7)
    assert rec.valid.sum() == 1


# ----------------------------------------------------------------------------- normalisation
def _clip(T=16, seed=0, hips=True):
    rng = np.random.default_rng(seed)
    base = np.zeros((18, 2))
    base[1] = (0.5, 0.3)
    base[2], base[5] = (0.44, 0.31), (0.56, 0.31)
    base[8], base[11] = (0.46, 0.55), (0.54, 0.55)
    base[0] = (0.5, 0.24)
    rest = [3, 4, 6, 7, 9, 10, 12, 13, 14, 15, 16, 17]
    base[rest] = 0.5 + 0.2 * (rng.random((len(rest), 2)) - 0.5)
    xy = base[None] + 0.01 * rng.standard_normal((T, 18, 2))
    conf = np.full((T, 18, 1), 0.9)
    if not hips:
        conf[:, [8, 11], 0] = 0.0
    return np.concatenate([xy, conf], -1).astype(np.float32)


def test_normalize_is_exactly_invertible_batched():
    rng = np.random.default_rng(1)
    p = rng.random((4, 3, 16, 18, 3)).astype(np.float32)
    n, params = normalize(p)
    assert n.dtype == np.float32 and n.shape == p.shape
    assert params.center.shape == (4, 3, 2) and params.scale.shape == (4, 3)
    back = denormalize(n, params)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, p, rtol=0, atol=2e-7)
    np.testing.assert_array_equal(n[..., 2], p[..., 2])  # confidence passes through


def test_normalize_neck_centred_torso_scaled():
    p = _clip()
    n, params = normalize(p)
    np.testing.assert_allclose(n[:, 1, :2].mean(0), 0.0, atol=1e-6)
    torso = np.linalg.norm(n[:, 1, :2] - 0.5 * (n[:, 8, :2] + n[:, 11, :2]), axis=-1).mean()
    assert abs(torso - 1.0) < 1e-5


def test_future_uses_current_params():
    cur, fut = _clip(seed=2), _clip(seed=3) + np.array([0.1, 0.05, 0.0], np.float32)
    n_cur, params = normalize(cur)
    n_fut, same = normalize(fut, params=params)
    np.testing.assert_array_equal(same.center, params.center)
    np.testing.assert_array_equal(same.scale, params.scale)
    # the future's own normalisation would centre it; with the clip's params it is shifted
    assert abs(n_fut[:, 1, 0].mean() - 0.1 / float(params.scale)) < 0.02
    np.testing.assert_allclose(denormalize(n_fut, params), fut, atol=2e-7)


def test_scale_fallbacks_and_degenerate_clips():
    p = _clip(hips=False)
    n, params = normalize(p)
    shoulder = np.linalg.norm(p[:, 2, :2] - p[:, 5, :2], axis=-1).mean()
    assert abs(float(params.scale) - 1.5 * shoulder) < 1e-6
    # x, y only (no confidence)
    n2, params2 = normalize(p[..., :2])
    assert n2.shape[-1] == 2
    np.testing.assert_allclose(denormalize(n2, params2), p[..., :2], atol=2e-7)
    # all joints at one point: finite, minimum scale
    flat = np.zeros((5, 18, 3), np.float32)
    nf, pf = normalize(flat)
    assert np.isfinite(nf).all() and float(pf.scale) > 0
    np.testing.assert_allclose(denormalize(nf, pf), flat, atol=1e-7)
    with pytest.raises(ValueError):
        normalize(p, params=NormParams(np.zeros((2, 2)), np.ones(2)))


def test_denormalize_torch_tensors():
    torch = pytest.importorskip("torch")
    p = _clip(seed=5)[None].repeat(2, 0)
    n, params = normalize(p)
    back = denormalize(torch.from_numpy(n), params)
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    np.testing.assert_allclose(back.numpy(), p, atol=2e-7)
