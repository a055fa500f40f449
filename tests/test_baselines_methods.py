"""IIC and CVRL against independent reference computations (loss formulas written out as loops,
the released codes' sampling rules), plus the structural properties issue 12 asks for: IIC's
intra-negatives are RGB clips that differ across samples, its modalities get separate
BatchNorm passes, and both methods report a pair-matching accuracy beside its chance level."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from csvr.data.transforms import ColorAugmentConfig, normalize, to_float_clip
from csvr.losses.baselines import inter_intra_nce, nt_xent
from csvr.methods.base import PretextCheck
from csvr.methods.cvrl import CVRL, CVRLConfig, decreasing_interval
from csvr.methods.iic import (IIC, IICConfig, repeat_frame, residual_frames, running_stats_frozen,
                              shuffle_frames)
from csvr.models.backbones import BackboneConfig

B, T, S = 4, 4, 16
NO_COLOR = ColorAugmentConfig(jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0)


def tiny_backbone() -> BackboneConfig:
    return BackboneConfig(name="r3d_18", width=4, layers=[1, 1, 1, 1])


def uint8_clips(*lead: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (*lead, T, S, S, 3), generator=g, dtype=torch.uint8)


def cos(u: torch.Tensor, v: torch.Tensor) -> float:
    return float(u @ v / (u.norm() * v.norm()))


def first_bn(module: nn.Module) -> nn.modules.batchnorm._BatchNorm:
    return next(m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))


# ----------------------------------------------------------------------------------- losses
def test_nt_xent_matches_a_loop_over_the_2b_anchors():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(B, 8, generator=g, dtype=torch.float64), torch.randn(B, 8, generator=g, dtype=torch.float64)
    tau = 0.1
    z = list(a) + list(b)
    total = 0.0
    for k in range(2 * B):
        pos = (k + B) % (2 * B)
        num = math.exp(cos(z[k], z[pos]) / tau)
        den = sum(math.exp(cos(z[k], z[j]) / tau) for j in range(2 * B) if j != k)
        total += -math.log(num / den)
    assert float(nt_xent(a, b, tau)) == pytest.approx(total / (2 * B), rel=1e-9)


@pytest.mark.parametrize("intra_of", ["batch", "own"])
def test_inter_intra_nce_matches_the_formula(intra_of):
    g = torch.Generator().manual_seed(2)
    m, tau = 2, 0.07
    v1 = torch.randn(B, 8, generator=g, dtype=torch.float64)
    v2 = torch.randn(B, 8, generator=g, dtype=torch.float64)
    u = torch.randn(B, m, 8, generator=g, dtype=torch.float64)
    total = 0.0
    for i in range(B):
        num = math.exp(cos(v1[i], v2[i]) / tau)
        inter = sum(math.exp(cos(v1[i], v2[j]) / tau) for j in range(B))
        owners = range(B) if intra_of == "batch" else [i]
        intra = sum(math.exp(cos(v1[i], u[j, k]) / tau) for j in owners for k in range(m))
        total += -math.log(num / (inter + intra))
    assert float(inter_intra_nce(v1, v2, u, tau, intra_of)) == pytest.approx(total / B, rel=1e-9)


def test_inter_intra_nce_without_intra_negatives_is_cross_view_infonce():
    g = torch.Generator().manual_seed(3)
    v1, v2 = torch.randn(B, 8, generator=g), torch.randn(B, 8, generator=g)
    logits = F.normalize(v1, dim=1) @ F.normalize(v2, dim=1).T / 0.07
    ref = F.cross_entropy(logits, torch.arange(B))
    assert torch.allclose(inter_intra_nce(v1, v2, torch.zeros(B, 0, 8), 0.07), ref, atol=1e-6)


# ------------------------------------------------------------------------ clip transforms
def test_residual_frames_is_the_original_circular_difference():
    x = torch.rand(2, 3, 5, 4, 4, generator=torch.Generator().manual_seed(4))
    r = residual_frames(x)
    for t in range(5):
        assert torch.allclose(r[:, :, t], (x[:, :, t] - x[:, :, t - 1] + 1) / 2)  # t - 1 = -1 wraps to T - 1
    assert float(r.min()) >= 0.0 and float(r.max()) <= 1.0
    # why IIC's intra-negatives stay RGB: a repeated clip's residual is one constant clip for everybody
    still = residual_frames(repeat_frame(x))
    assert torch.equal(still, torch.full_like(x, 0.5))


def tagged_clips(b: int, t: int) -> torch.Tensor:
    """(b, 3, t, 2, 2) with every frame filled with its own tag 100 * sample + time."""
    tag = 100.0 * torch.arange(b).view(b, 1, 1, 1, 1) + torch.arange(t).view(1, 1, t, 1, 1)
    return tag.expand(b, 3, t, 2, 2).contiguous()


def frame_order(y: torch.Tensor) -> list[list[int]]:
    return [[int(v) % 100 for v in row] for row in y[:, 0, :, 0, 0].round()]


def test_repeat_frame_repeats_one_frame_of_each_clip():
    x = tagged_clips(8, T)
    y = repeat_frame(x, torch.Generator().manual_seed(5))
    for i, order in enumerate(frame_order(y)):
        assert len(set(order)) == 1 and 0 <= order[0] < T
        assert torch.all(y[i, 0] // 100 == i)  # its own frame, not another clip's
    assert len({o[0] for o in frame_order(y)}) > 1  # the frame is drawn per clip


@pytest.mark.parametrize("t,segments", [(16, 4), (6, 4), (5, 0), (4, 3)])
def test_shuffle_frames_permutes_each_clips_own_frames(t, segments):
    x = tagged_clips(8, t)
    y = shuffle_frames(x, torch.Generator().manual_seed(6), segments)
    orders = frame_order(y)
    for i, order in enumerate(orders):
        assert sorted(order) == list(range(t))
        assert torch.all(y[i, 0] // 100 == i)
        if segments:
            assert order != list(range(t))  # a swap of two distinct segments is never the identity
    assert len({tuple(o) for o in orders}) > 1  # drawn per clip
    # the same generator seed gives the same result
    assert torch.equal(y, shuffle_frames(x, torch.Generator().manual_seed(6), segments))


def test_shuffle_frames_with_four_segments_swaps_two_blocks_like_the_original():
    x = tagged_clips(16, 16)
    for order in frame_order(shuffle_frames(x, torch.Generator().manual_seed(7), 4)):
        blocks = [order[4 * s:4 * s + 4] for s in range(4)]
        starts = [blk[0] for blk in blocks]
        assert all(blk == list(range(blk[0], blk[0] + 4)) for blk in blocks)  # whole blocks, in order inside
        moved = [s for s in range(4) if starts[s] != 4 * s]
        assert len(moved) == 2 and starts[moved[0]] == 4 * moved[1] and starts[moved[1]] == 4 * moved[0]


def test_decreasing_interval_follows_the_linear_density():
    rng = np.random.default_rng(8)
    d_max, n = 10, 100_000
    draws = np.array([decreasing_interval(rng, d_max) for _ in range(n)])
    assert draws.min() == 0 and draws.max() == d_max
    emp = np.bincount(draws, minlength=d_max + 1) / n
    ref = np.array([d_max + 0.5 - k for k in range(d_max + 1)])  # ∝ D - d on the D + 1 integer cells
    ref /= ref.sum()
    assert np.abs(emp - ref).max() < 0.006
    assert decreasing_interval(rng, 0) == 0


# ------------------------------------------------------------------------------------ IIC
def tiny_iic(**kw) -> IIC:
    torch.manual_seed(0)
    return IIC(IICConfig(backbone=tiny_backbone(), **{"proj_dim": 8, **kw}), NO_COLOR)


@pytest.mark.parametrize("kind", ["repeat", "shuffle"])
def test_iic_intra_negatives_are_rgb_and_differ_across_samples(kind, monkeypatch):
    method = tiny_iic(intra_negatives=kind)
    clip = uint8_clips(B)
    views = method.views(clip, torch.Generator().manual_seed(9))
    (intra,) = views.intra
    assert intra.shape == views.rgb.shape
    for i in range(B):  # built from the sample's own RGB frames
        frames = {tuple(views.rgb[i, :, t].flatten()[:8].tolist()) for t in range(T)}
        assert all(tuple(intra[i, :, t].flatten()[:8].tolist()) in frames for t in range(T))
        assert not torch.equal(intra[i], intra[(i + 1) % B])
    assert float(views.residual.std(dim=0).mean()) > 0

    # the embeddings used as intra-negatives, in the loss of both directions
    import csvr.methods.iic as iic_mod

    seen = []

    def spy(anchor, other, u, tau, intra_of):
        seen.append(u.detach())
        return inter_intra_nce(anchor, other, u, tau, intra_of)

    monkeypatch.setattr(iic_mod, "inter_intra_nce", spy)
    method.training_step({"clip": clip}, "main")
    assert len(seen) == 2
    for u in seen:
        assert u.shape == (B, 1, 8)
        assert float((u - u[:1]).abs().amax()) > 1e-4  # not one constant negative for every sample


def test_iic_runs_one_pass_per_modality_and_keeps_rgb_running_stats():
    method = tiny_iic(intra_negatives="both")
    before = copy.deepcopy(method)
    clip = uint8_clips(B)
    calls: list[torch.Tensor] = []
    sizes: list[int] = []
    method.v_network.register_forward_pre_hook(lambda mod, args: calls.append(args[0].detach().clone()))
    first_bn(method.v_network).register_forward_hook(lambda mod, args, out: sizes.append(args[0].shape[0]))
    out = method.training_step({"clip": clip}, "main")
    out.total.backward()  # the swapped running-stat buffers do not break autograd

    assert sizes == [B] * 4  # RGB, residual, repeated RGB, shuffled RGB: four separate passes
    x = to_float_clip(clip)
    assert torch.allclose(calls[0], normalize(x))
    assert torch.allclose(calls[1], normalize(residual_frames(x)))
    rgb_frames = [{tuple(calls[0][i, :, t].flatten()[:8].tolist()) for t in range(T)} for i in range(B)]
    for neg in calls[2:]:
        for i in range(B):
            assert all(tuple(neg[i, :, t].flatten()[:8].tolist()) in rgb_frames[i] for t in range(T))
    assert torch.equal(calls[2], calls[2][:, :, :1].expand_as(calls[2]))  # the repeat pass

    # running statistics: exactly those of one train-mode pass over the RGB clips
    before.train()
    before.v_network(normalize(x))
    for got, ref in zip(method.v_network.modules(), before.v_network.modules()):
        if isinstance(got, nn.modules.batchnorm._BatchNorm):
            assert torch.allclose(got.running_mean, ref.running_mean, atol=1e-6)
            assert torch.allclose(got.running_var, ref.running_var, atol=1e-6)
            assert int(got.num_batches_tracked) == int(ref.num_batches_tracked) == 1
    assert all(torch.isfinite(p.grad).all() for p in method.parameters() if p.grad is not None)


def test_running_stats_frozen_keeps_batch_normalisation_in_train_mode():
    bn = nn.BatchNorm1d(3)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(10)) * 4 + 2
    with running_stats_frozen(bn):
        y = bn(x)
    assert torch.equal(bn.running_mean, torch.zeros(3)) and torch.equal(bn.running_var, torch.ones(3))
    assert int(bn.num_batches_tracked) == 0
    assert torch.allclose(y, F.batch_norm(x, None, None, training=True), atol=1e-5)


@pytest.mark.parametrize("kind", ["repeat", "both", "none"])
def test_iic_training_step_reports_pair_accuracy_and_chance(kind):
    method = tiny_iic(intra_negatives=kind)
    out = method.training_step({"clip": uint8_clips(B)}, "main")
    assert torch.isfinite(out.total) and out.total.dim() == 0
    assert out.metrics["pair_top1"].dim() == 0 and 0.0 <= float(out.metrics["pair_top1"]) <= 1.0
    assert out.metrics["pair_chance"].dim() == 0 and float(out.metrics["pair_chance"]) == pytest.approx(1 / B)
    if kind != "none":
        m = 2 if kind == "both" else 1
        assert float(out.metrics["intra_chance"]) == pytest.approx(1 / (m + 1))
    assert IIC.pretext_checks == (PretextCheck("pairs", "pair_top1", "pair_chance", "higher", 2.0),)


def test_iic_without_projection_scores_the_backbone_feature():
    method = tiny_iic(proj_dim=0)
    assert isinstance(method.projection, nn.Identity)
    assert torch.isfinite(method.training_step({"clip": uint8_clips(B)}, "main").total)


# ----------------------------------------------------------------------------------- CVRL
def test_cvrl_training_step_one_pass_and_metrics():
    torch.manual_seed(0)
    method = CVRL(CVRLConfig(backbone=tiny_backbone(), proj_dim=8), NO_COLOR)
    assert len([m for m in method.projection if isinstance(m, nn.Linear)]) == 3  # the 3-layer head
    assert method.cfg.tau == 0.1
    sizes: list[int] = []
    first_bn(method.v_network).register_forward_hook(lambda mod, args, out: sizes.append(args[0].shape[0]))
    out = method.training_step({"clip": uint8_clips(B, 2)}, "main")
    assert sizes == [2 * B]  # both views in one batch, as the released code does
    assert torch.isfinite(out.total) and out.total.dim() == 0
    assert out.metrics["pair_top1"].dim() == 0 and 0.0 <= float(out.metrics["pair_top1"]) <= 1.0
    assert out.metrics["pair_chance"].dim() == 0 and float(out.metrics["pair_chance"]) == pytest.approx(1 / B)
    assert CVRL.pretext_checks == (PretextCheck("pairs", "pair_top1", "pair_chance", "higher", 2.0),)
    out.total.backward()
