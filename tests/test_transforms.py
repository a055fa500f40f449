"""Augmentation: crop/flip geometry, pose coordinates, colour operations against hand values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csvr.data.transforms import (COCO18_FLIP_PERM, ColorAugment, ColorAugmentConfig, ColorParams, CropBox,
                                  _hsv_to_rgb, _rgb_to_hsv, center_crop_box, crop_poses, crop_resize,
                                  gaussian_blur, normalize, denormalize, random_resized_crop_box, to_float_clip)


def test_crop_resize_identity_and_flip():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(3, 8, 8, 3), dtype=np.uint8)
    out = crop_resize(frames, CropBox(0, 0, 8, 8), 8)
    assert torch.equal(out, torch.from_numpy(frames))
    flipped = crop_resize(frames, CropBox(2, 1, 4, 4, flip=True), 4)
    assert torch.equal(flipped, torch.from_numpy(frames[:, 2:6, 1:5][:, :, ::-1].copy()))


def test_crop_resize_downscale_of_constant_is_constant():
    frames = np.full((2, 40, 60, 3), 77, np.uint8)
    out = crop_resize(frames, CropBox(0, 10, 40, 40), 16)
    assert out.shape == (2, 16, 16, 3) and int(out.min()) == int(out.max()) == 77


def test_random_resized_crop_box_within_bounds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        b = random_resized_crop_box(120, 160, rng, (0.3, 1.0), (0.75, 4 / 3))
        assert 0 <= b.top and b.top + b.height <= 120 and 0 <= b.left and b.left + b.width <= 160
        assert 0.3 * 120 * 160 * 0.9 <= b.height * b.width <= 120 * 160
    assert center_crop_box(120, 160) == CropBox(0, 20, 120, 120, False)


def test_crop_poses_coordinates_and_flip_swaps_sides():
    poses = np.zeros((1, 18, 3), np.float32)
    poses[0, 2] = (0.25, 0.5, 0.9)  # right shoulder at pixel (40, 60) of a 160x120 frame
    poses[0, 5] = (0.75, 0.5, 0.8)  # left shoulder at pixel (120, 60)
    box = CropBox(top=20, left=20, height=80, width=120)
    out = crop_poses(poses, box, 120, 160)
    assert out[0, 2, :2] == pytest.approx(((40 - 20) / 120, (60 - 20) / 80))
    assert out[0, 5, 2] == pytest.approx(0.8)
    fl = crop_poses(poses, CropBox(20, 20, 80, 120, flip=True), 120, 160)
    # mirrored x, and the old right shoulder is now the left one (index 5)
    assert fl[0, 5, :2] == pytest.approx((1 - (40 - 20) / 120, (60 - 20) / 80))
    assert fl[0, 5, 2] == pytest.approx(0.9) and fl[0, 2, 2] == pytest.approx(0.8)
    assert sorted(COCO18_FLIP_PERM) == list(range(18))


def _params(b, **kw):
    z = torch.zeros(b)
    base = dict(brightness=torch.ones(b), contrast=torch.ones(b), saturation=torch.ones(b), hue=z.clone(),
                jitter=torch.ones(b, dtype=torch.bool), gray=torch.zeros(b, dtype=torch.bool), blur_sigma=z.clone())
    base.update(kw)
    return ColorParams(**base)


def test_color_identity_brightness_contrast_gray():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 6, 6) * 0.5
    aug = ColorAugment()
    assert torch.allclose(aug.apply(x, _params(2)), x, atol=1e-6)
    y = aug.apply(x, _params(2, brightness=torch.tensor([2.0, 0.5])))
    assert torch.allclose(y[0], (x[0] * 2).clamp(0, 1), atol=1e-6)
    assert torch.allclose(y[1], x[1] * 0.5, atol=1e-6)
    # contrast 0 -> every pixel equals the clip's mean luma
    y = aug.apply(x, _params(2, contrast=torch.zeros(2)))
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(y[0], luma[0].mean().expand_as(y[0]), atol=1e-6)
    g = aug.apply(x, _params(2, gray=torch.tensor([True, False])))
    assert torch.allclose(g[0, 0], g[0, 1]) and torch.allclose(g[0, 0], luma[0], atol=1e-6)
    assert torch.allclose(g[1], x[1], atol=1e-6)


def test_hsv_round_trip_and_hue_rotation():
    torch.manual_seed(1)
    x = torch.rand(4, 3, 5, 5)
    assert torch.allclose(_hsv_to_rgb(_rgb_to_hsv(x)), x, atol=1e-5)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1, 1).expand(1, 3, 1, 2, 2).clone()
    y = ColorAugment().apply(red, _params(1, hue=torch.tensor([1 / 3])))
    assert torch.allclose(y[0, :, 0, 0, 0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)  # red -> green


def test_same_parameters_for_every_frame():
    frame = torch.rand(1, 3, 1, 16, 16)
    clip = frame.expand(1, 3, 5, 16, 16).clone()
    aug = ColorAugment(ColorAugmentConfig(jitter_prob=1, grayscale_prob=0.5, blur_prob=1))
    y = aug(clip, torch.Generator().manual_seed(0))
    for t in range(1, 5):
        assert torch.allclose(y[:, :, t], y[:, :, 0])


def test_gaussian_blur_preserves_constant_and_mean():
    x = torch.full((2, 3, 2, 20, 20), 0.3)
    assert torch.allclose(gaussian_blur(x, torch.tensor([1.5, 0.0])), x, atol=1e-6)
    z = torch.zeros(1, 1, 1, 21, 21)
    z[..., 10, 10] = 1.0
    b = gaussian_blur(z, torch.tensor([1.0]))
    assert float(b.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(b[..., 10, 10]) < 1.0 and float(b[..., 10, 11]) == pytest.approx(float(b[..., 11, 10]), abs=1e-7)


def test_normalize_round_trip():
    u8 = torch.randint(0, 256, (2, 4, 8, 8, 3), dtype=torch.uint8)
    x = to_float_clip(u8)
    assert x.shape == (2, 3, 4, 8, 8) and float(x.max()) <= 1.0
    assert torch.allclose(denormalize(normalize(x)), x, atol=1e-6)
