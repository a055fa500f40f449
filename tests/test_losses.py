"""Losses checked against hand computations and independent implementations (float64 where exact)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from csvr.losses import (
    context_top1,
    critic_loss,
    generator_gradient_ratio,
    generator_loss,
    gradient_penalty,
    info_nce,
    info_nce_single,
    l2_single,
    mi_infonce,
    one_stage_adversarial_loss,
    sample_negatives,
    select_one_positive,
)
from csvr.models.pose_gan import pose_l2_loss, pose_mse, poses_to_sequence, sequence_to_poses
from csvr.models.video_gan import pixel_l2_loss, to_generator_range

D = torch.float64


def _direct_mi_infonce(x, z, positive, tau, candidates=None):
    """Eq. 2 evaluated literally with Python loops and math.exp."""
    b, k = positive.shape
    total = 0.0
    for i in range(b):
        num = den = 0.0
        for j in range(k):
            if candidates is not None and not candidates[i, j]:
                continue
            cos = float(x[i] @ z[j]) / (float(x[i].norm()) * float(z[j].norm()))
            e = math.exp(cos / tau)
            den += e
            if positive[i, j]:
                num += e
        total += -math.log(num / den)
    return total / b


def _example(b=4, k=9, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, generator=g, dtype=D)
    z = torch.randn(k, c, generator=g, dtype=D)
    positive = torch.rand(b, k, generator=g) < 0.3
    positive[torch.arange(b), (torch.arange(b) * 2) % k] = True  # >= 1 positive per row
    return x, z, positive


# ----------------------------------------------------------------------------- MI-InfoNCE (Eq. 2)
@pytest.mark.parametrize("tau", [0.07, 0.5, 2.0])
def test_mi_infonce_equals_direct_formula(tau):
    x, z, positive = _example()
    got = mi_infonce(x, z, positive, tau)
    assert got.item() == pytest.approx(_direct_mi_infonce(x, z, positive, tau), rel=1e-6)


def test_mi_infonce_with_candidates_equals_direct_formula():
    x, z, positive = _example(seed=3)
    cand = positive | (torch.rand(positive.shape, generator=torch.Generator().manual_seed(1)) < 0.5)
    got = mi_infonce(x, z, positive, 0.2, candidates=cand)
    assert got.item() == pytest.approx(_direct_mi_infonce(x, z, positive, 0.2, cand), rel=1e-6)
    # a (K,) column mask = dropping those columns
    keep = torch.ones(z.shape[0], dtype=torch.bool)
    keep[[1, 5]] = False
    pos = positive.clone()
    pos[:, ~keep] = False
    pos[:, 0] = True
    assert mi_infonce(x, z, pos, 0.2, candidates=keep).item() == pytest.approx(
        mi_infonce(x, z[keep], pos[:, keep], 0.2).item(), rel=1e-10)


def test_mi_infonce_one_positive_is_infonce():
    x, z, _ = _example(b=5, k=5)
    # K = B, z[i] the positive of x[i]: exactly the standard InfoNCE
    eye = torch.eye(5, dtype=torch.bool)
    assert mi_infonce(x, z, eye, 0.1).item() == pytest.approx(info_nce(x, z, 0.1).item(), rel=1e-10)
    # K > B with one positive column per row: cross-entropy on cosine/tau logits
    x, z, _ = _example(b=4, k=11, seed=2)
    target = torch.tensor([3, 0, 10, 7])
    pos = F.one_hot(target, 11).bool()
    logits = F.normalize(x, dim=1) @ F.normalize(z, dim=1).t() / 0.3
    assert mi_infonce(x, z, pos, 0.3).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-10)


def test_mi_infonce_invariant_to_iframe_order():
    x, z, positive = _example(seed=5)
    perm = torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(7))
    a = mi_infonce(x, z, positive, 0.1)
    b = mi_infonce(x, z[perm], positive[:, perm], 0.1)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_mi_infonce_row_without_positive_raises():
    x, z, positive = _example()
    positive[2] = False
    with pytest.raises(ValueError, match=r"\[2\]"):
        mi_infonce(x, z, positive, 0.1)
    with pytest.raises(ValueError, match="tau"):
        mi_infonce(*_example(), 0.0)


def test_mi_infonce_is_stable_at_tiny_tau_and_has_finite_grads():
    x, z, positive = _example()
    x = x.float().requires_grad_(True)
    loss = mi_infonce(x, z.float(), positive, 1e-3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------- Eq. 10, L2, metric
def test_info_nce_single_uses_one_random_positive_per_clip():
    x, z, positive = _example(b=4, k=12, seed=11)
    g = torch.Generator().manual_seed(3)
    idx = select_one_positive(positive, torch.Generator().manual_seed(3))
    assert positive[torch.arange(4), idx].all()
    expected = info_nce(x, z[idx], 0.2)
    assert info_nce_single(x, z, positive, 0.2, generator=g).item() == pytest.approx(expected.item(), rel=1e-12)
    # every positive gets drawn eventually, no negative ever
    seen = torch.zeros_like(positive)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        seen[torch.arange(4), select_one_positive(positive, g)] = True
    assert torch.equal(seen, positive)


def test_l2_single_hand_value():
    x = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=D)
    z = torch.tensor([[0.0, 5.0], [0.0, 1.0], [1.0, 1.0]], dtype=D)
    positive = torch.tensor([[True, False, False], [False, True, False]])
    # row 0: (1,0) vs (0,1) -> 2 ; row 1: (0,1) vs (0,1) -> 0 ; mean 1
    assert l2_single(x, z, positive).item() == pytest.approx(1.0)


def test_context_top1_hand_value():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    z = torch.tensor([[1.0, 0.1], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.9]])
    positive = torch.tensor([[True, False, False, False],   # best z0 -> hit
                             [False, False, True, False],   # best z1 -> miss
                             [False, False, False, True]])  # best z3 -> hit
    assert context_top1(x, z, positive).item() == pytest.approx(2 / 3)
    # hiding z3 from row 2's candidates makes it pick z0 -> miss
    cand = torch.tensor([True, True, True, False])
    assert context_top1(x, z, positive, cand).item() == pytest.approx(1 / 3)


def test_sample_negatives_keeps_positives_and_n_valid_negatives():
    positive = torch.zeros(3, 8, dtype=torch.bool)
    positive[0, :2] = positive[1, 2:5] = positive[2, 5:8] = True
    valid = torch.ones(8, dtype=torch.bool)
    valid[7] = False
    positive[2, 7] = False
    cand = sample_negatives(positive, valid, 3, torch.Generator().manual_seed(0))
    assert (cand & positive).eq(positive).all()
    assert not cand[:, 7].any()
    assert (cand & ~positive).sum(dim=1).tolist() == [3, 3, 3]
    many = sample_negatives(positive, valid, 100)   # more than available: all valid negatives
    assert torch.equal(many, valid.expand(3, 8) | positive)


# ----------------------------------------------------------------------------- GAN losses
def test_bce_and_wgan_losses_hand_values():
    yr = torch.tensor([0.0, 2.0])
    yf = torch.tensor([0.0, -1.0])
    l2 = math.log(2)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert critic_loss(yr, yf).item() == pytest.approx(((l2 + l2) + (sp(-2) + sp(-1))) / 2)
    assert generator_loss(yf, "nonsaturating").item() == pytest.approx((l2 + sp(1)) / 2)
    assert generator_loss(yf, "minimax").item() == pytest.approx(-(l2 + sp(-1)) / 2)
    assert critic_loss(yr, yf, "wgan").item() == pytest.approx(((-0 + 0) + (-2 - 1)) / 2)
    assert generator_loss(yf, "wgan").item() == pytest.approx(0.5)
    w = torch.tensor([1.0, 0.0])
    assert critic_loss(yr, yf, "wgan", weight=w).item() == pytest.approx(0.0)
    assert critic_loss(yr, yf, "wgan", weight=torch.zeros(2)).item() == 0.0
    with pytest.raises(ValueError, match="hinge"):
        critic_loss(yr, yf, "hinge")


@pytest.mark.parametrize("kind", ["nonsaturating", "minimax", "wgan"])
def test_generator_gradient_ratio_matches_autograd(kind):
    y = torch.tensor([-3.0, -0.5, 0.0, 1.5, 4.0], dtype=D, requires_grad=True)
    (gd,) = torch.autograd.grad(critic_loss(torch.zeros_like(y), y, kind) * 5, y)  # only the fake term depends on y
    (gg,) = torch.autograd.grad(generator_loss(y, kind) * 5, y)
    assert torch.allclose(generator_gradient_ratio(y, kind).double(), gg / gd, rtol=1e-6)


# ----------------------------------------------------------------------------- WGAN-GP
class _LinearCritic(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, cond=None):
        return x.flatten(1) @ self.w


def test_gradient_penalty_zero_for_unit_gradient_and_exact_otherwise():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(6, 2, 3, 4, generator=g, dtype=D)
    fake = torch.randn(6, 2, 3, 4, generator=g, dtype=D)
    w = torch.randn(24, generator=g, dtype=D)
    unit = _LinearCritic(w / w.norm())
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-20)
    three = _LinearCritic(3 * w / w.norm())
    assert gradient_penalty(three, real, fake).item() == pytest.approx(4.0, rel=1e-12)
    # a non-linear critic: positive, and per-sample weights pick samples
    quad = lambda x, cond=None: (x.flatten(1) ** 2).sum(1)  # noqa: E731  grad = 2x
    assert gradient_penalty(quad, real, fake).item() > 0
    weight = torch.zeros(6, dtype=D)
    weight[2] = 1
    e = torch.rand((6, 1, 1, 1), generator=torch.Generator().manual_seed(5), dtype=torch.float32).double()
    xh = e * real + (1 - e) * fake
    expected = ((2 * xh[2]).norm() - 1) ** 2
    got = gradient_penalty(quad, real, fake, weight=weight, generator=torch.Generator().manual_seed(5))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradient_penalty_under_no_grad_gives_the_value():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(3, 5, generator=g, dtype=D), torch.randn(3, 5, generator=g, dtype=D)
    w = torch.randn(5, generator=g, dtype=D)
    with torch.no_grad():
        val = gradient_penalty(_LinearCritic(2 * w / w.norm()), real, fake)
    assert val.item() == pytest.approx(1.0) and not val.requires_grad


def test_gradient_penalty_reaches_critic_only():
    gen = nn.Linear(3, 8).double()
    critic = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    z = torch.randn(4, 3, dtype=D)
    fake = gen(z)
    real = torch.randn(4, 8, dtype=D)
    gradient_penalty(lambda x: critic(x)[:, 0], real, fake).backward()
    assert all(p.grad is None for p in gen.parameters())
    # every critic weight that shapes the input gradient is reached (the output bias cannot be)
    for p in (critic[0].weight, critic[0].bias, critic[2].weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- OSGAN one-stage update
class _TinyCritic(nn.Module):
    """Conv critic over (B, C, T) or (B, C, T, H, W), optionally conditioned, samples independent."""

    def __init__(self, c: int, dims: int, cond_dim: int = 0):
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv3d
        self.conv = conv(c, 4, 3, padding=1)
        self.lin = nn.Linear(4 + cond_dim, 1)

    def forward(self, x, cond=None):
        h = torch.tanh(self.conv(x)).flatten(2).mean(2)
        if cond is not None:
            h = torch.cat([h, cond], dim=1)
        return self.lin(h)[:, 0]


def _tiny_gan(shape, cond_dim, seed=0):
    torch.manual_seed(seed)
    n = 1
    for s in shape:
        n *= s
    gen = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, n)).double()
    critic = _TinyCritic(shape[0], len(shape) - 1, cond_dim).double()
    return gen, critic, n


def _grads(module):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4, 4)], ids=["BCT", "BCTHW"])
@pytest.mark.parametrize("kind", ["nonsaturating", "minimax", "wgan"])
@pytest.mark.parametrize("conditioned", [False, True])
def test_osgan_one_backward_equals_two_step_update(shape, kind, conditioned):
    b = 5
    gen, critic, n = _tiny_gan(shape, 2 if conditioned else 0)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(b, 3, generator=g, dtype=D)
    real = torch.randn(b, *shape, generator=g, dtype=D)
    cond = torch.randn(b, 2, generator=g, dtype=D) if conditioned else None
    weight = torch.tensor([1.0, 0.0, 1.0, 0.5, 1.0], dtype=D)
    gw = 0.7

    def crit(x, c=None):
        return critic(x, c)

    # classic two-step: critic step on detached fakes, generator step through the critic
    fake = gen(z).view(b, *shape)
    d_loss = critic_loss(crit(real, cond), crit(fake.detach(), cond), kind, weight)
    critic.zero_grad(), gen.zero_grad()
    d_loss.backward()
    d_ref = _grads(critic)
    critic.zero_grad(), gen.zero_grad()
    (gw * generator_loss(crit(gen(z).view(b, *shape), cond), kind, weight)).backward()
    g_ref = _grads(gen)

    # one stage: one backward
    critic.zero_grad(), gen.zero_grad()
    terms = one_stage_adversarial_loss(crit, real, gen(z).view(b, *shape), kind, cond=cond, weight=weight,
                                       generator_weight=gw)
    terms.loss.backward()
    for got, ref in zip(_grads(critic), d_ref):
        assert torch.allclose(got, ref, rtol=1e-10, atol=1e-12)
    for got, ref in zip(_grads(gen), g_ref):
        assert torch.allclose(got, ref, rtol=1e-10, atol=1e-12)
    assert any(r.abs().sum() > 0 for r in g_ref)
    assert terms.critic.item() == pytest.approx(d_loss.item(), rel=1e-12)

    # the gradient penalty on the same fakes adds to the critic only
    critic.zero_grad(), gen.zero_grad()
    fake = gen(z).view(b, *shape)
    terms = one_stage_adversarial_loss(crit, real, fake, kind, cond=cond, weight=weight, generator_weight=gw)
    (terms.loss + 10.0 * gradient_penalty(crit, real, fake, cond=cond, weight=weight)).backward()
    for got, ref in zip(_grads(gen), g_ref):
        assert torch.allclose(got, ref, rtol=1e-10, atol=1e-12)
    assert any(not torch.allclose(got, ref) for got, ref in zip(_grads(critic), d_ref))


def test_osgan_real_input_gets_no_gradient():
    gen, critic, n = _tiny_gan((3, 5), 0)
    real = torch.randn(4, 3, 5, dtype=D, requires_grad=True)
    terms = one_stage_adversarial_loss(critic, real, gen(torch.randn(4, 3, dtype=D)).view(4, 3, 5))
    terms.loss.backward()
    assert real.grad is None


# ----------------------------------------------------------------------------- L2 terms (Eq. 1, 6, 7)
def test_pose_l2_loss_hand_value():
    pred = torch.zeros(2, 4, 3)              # N = 2 joints, T' = 3
    target = torch.zeros(2, 4, 3)
    target[0, 0, 0] = 1.0                    # sample 0: joint 0 x, frame 0: error 1
    target[0, 3, 2] = 2.0                    # sample 0: joint 1 y, frame 2: error 4
    target[1, 1, 1] = 3.0                    # sample 1: joint 0 y, frame 1: error 9
    assert pose_l2_loss(pred, target).item() == pytest.approx(((1 + 4) / 3 + 9 / 3) / 2)
    conf = torch.ones(2, 3, 2)
    conf[0, 2, 1] = 0.5                      # halves sample 0's error 4
    assert pose_l2_loss(pred, target, conf).item() == pytest.approx(((1 + 2) / 3 + 9 / 3) / 2)
    w = torch.tensor([0.0, 1.0])             # sample 0 has no person
    assert pose_l2_loss(pred, target, conf, w).item() == pytest.approx(3.0)
    # per-coordinate MSE with weights: sample 1 only: 9 / (2 * 2 joints * 3 frames)
    assert pose_mse(pred, target, conf, w).item() == pytest.approx(9 / 12)


def test_pose_sequence_layout_roundtrip():
    poses = torch.arange(2 * 3 * 18 * 2, dtype=torch.float32).view(2, 3, 18, 2)
    seq = poses_to_sequence(poses)
    assert seq.shape == (2, 36, 3)
    assert seq[1, 2 * 5 + 1, 2] == poses[1, 2, 5, 1]      # joint 5's y at frame 2
    assert torch.equal(sequence_to_poses(seq), poses)


def test_pixel_l2_loss_hand_value_and_range_mapping():
    gen = torch.zeros(1, 3, 2, 2, 2)
    tgt = torch.zeros(1, 3, 2, 2, 2)
    tgt[0, :, 0, 0, 0] = 1.0                  # one pixel, 3 channels: ||.||^2 = 3, over THW = 8
    assert pixel_l2_loss(gen, tgt).item() == pytest.approx(3 / 8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    raw = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1, 1).expand(1, 3, 1, 1, 2)
    norm = (raw - torch.tensor(mean).view(1, 3, 1, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1, 1)
    assert torch.allclose(to_generator_range(norm, mean, std), raw * 2 - 1, atol=1e-6)
