"""Issue 23: the conditional multi-scale TGANv2 video GANs with sparse training, their critics,
R1, the loss balance, the video roles' schedule and the held-out diagnostics."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from csvr.config import from_dict
from csvr.engine.config import OptimConfig
from csvr.engine.optim import lr_factors
from csvr.models import CSVRModel
from csvr.models.video_gan import (
    MultiLevelCritic,
    SparsePlan,
    VideoCritic,
    VideoGANConfig,
    VideoGenerator,
    level_targets,
    r1_penalty,
    video_noise,
)
from tests.test_models_csvr import make_batch, tiny_cfg

SMALL = dict(frames=8, size=32, base_size=4, noise_dim=8, latent_channels=8, gen_width=4, critic_width=4)


def test_levels_follow_the_size():
    assert VideoGANConfig(**SMALL).num_levels == 3                      # CPU presets: 32 px, 3 levels
    assert VideoGANConfig(**{**SMALL, "size": 64}).num_levels == 4      # 64 px and above: 4
    assert VideoGANConfig(**{**SMALL, "size": 8}).num_levels == 1       # only one up-block
    assert [VideoGANConfig(**SMALL).level_size(i) for i in range(3)] == [8, 16, 32]
    with pytest.raises(ValueError, match="levels"):
        VideoGANConfig(**{**SMALL, "levels": 4})


def test_plan_indices_by_hand():
    plan = SparsePlan([1, 0])
    assert plan.frame_index(8) == [list(range(8)), [1, 3, 5, 7], [1, 5]]
    assert plan.batch_strides(16) == [1, 2, 4] and plan.batch_index(5) == [[0, 1, 2, 3, 4], [0, 2, 4], [0, 4]]
    assert SparsePlan([0, 0]).batch_index(2) == [[0, 1], [0], [0]]      # never below one sample
    assert SparsePlan([1, None], batch=False).frame_index(2) == [[0, 1], [1], [1]]
    cfg = VideoGANConfig(**{**SMALL, "frames": 2})
    drawn = SparsePlan.draw(cfg, torch.Generator().manual_seed(0))
    assert drawn.offsets[1] is None                                      # a one-frame level is not cut again


def test_level_targets_cut_the_real_clip_like_the_generator():
    cfg = VideoGANConfig(**SMALL)
    v = torch.randn(6, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    got = level_targets(v, cfg, SparsePlan([0, 1]))
    # by hand: level 0 all of it pooled 4x4; level 1 samples 0,2,4 frames 0,2,4,6 pooled 2x2;
    # level 2 samples 0,4 frames (0,2,4,6)[1::2] = 2,6 at full size
    torch.testing.assert_close(got[0], F.avg_pool3d(v, (1, 4, 4)))
    torch.testing.assert_close(got[1], F.avg_pool3d(v[[0, 2, 4]][:, :, [0, 2, 4, 6]], (1, 2, 2)))
    torch.testing.assert_close(got[2], v[[0, 4]][:, :, [2, 6]])


def test_sparse_levels_are_the_dense_generator_on_the_kept_samples():
    """With one frame (no temporal cut) and eval-mode BatchNorm (per-sample arithmetic), level l
    of the sparse generator equals the dense generator's level l on samples [::2^l]: the batch
    sub-sampling keeps exactly the samples whose targets level_targets keeps."""
    torch.manual_seed(0)
    cfg = VideoGANConfig(**{**SMALL, "frames": 1})
    gen = VideoGenerator(cfg, 6).eval()
    z, f = video_noise(8, cfg, torch.Generator().manual_seed(1)), torch.randn(8, 6)
    with torch.no_grad():
        sparse = gen.forward_levels(z, f, SparsePlan([None, None]))
        dense = gen.forward_levels(z, f, SparsePlan.dense_plan(cfg))
        final = gen(z, f)
    assert [tuple(x.shape) for x in sparse] == [(8, 3, 1, 8, 8), (4, 3, 1, 16, 16), (2, 3, 1, 32, 32)]
    for level, stride in enumerate((1, 2, 4)):
        torch.testing.assert_close(sparse[level], dense[level][::stride])
    torch.testing.assert_close(final, dense[-1])


def test_generator_levels_and_noise_range():
    cfg = VideoGANConfig(**SMALL)
    gen = VideoGenerator(cfg, 6)
    with torch.no_grad():
        outs = gen.forward_levels(video_noise(16, cfg), torch.randn(16, 6), SparsePlan([1, 0]))
    assert [tuple(o.shape) for o in outs] == [(16, 3, 8, 8, 8), (8, 3, 4, 16, 16), (4, 3, 2, 32, 32)]
    assert all(float(o.abs().max()) <= 1 for o in outs)
    z = video_noise(1000, cfg, torch.Generator().manual_seed(0))
    assert -1 <= float(z.min()) and float(z.max()) <= 1 and abs(float(z.mean())) < 0.05   # U(-1, 1)


def test_projection_critic_adds_the_inner_product_with_the_condition():
    torch.manual_seed(0)
    cfg = VideoGANConfig(**SMALL)
    critic = VideoCritic(cfg, 6)
    x, f = torch.randn(3, 3, 2, 32, 32), torch.randn(3, 6)
    h = F.relu(critic.blocks(x)).sum(dim=(2, 3, 4))           # TGANv2: sum pooling
    want = critic.out(h)[:, 0] + (critic.embed(f) * h).sum(dim=1)
    torch.testing.assert_close(critic(x, f), want)
    torch.testing.assert_close(critic(x), critic.out(h)[:, 0])
    assert VideoCritic(VideoGANConfig(**{**SMALL, "conditional_critic": False}), 6).embed is None
    # the first block pools space only (1x2x2), the next ones time too
    assert tuple(critic.blocks[0](x).shape[2:]) == (2, 16, 16)
    assert tuple(critic.blocks[1](critic.blocks[0](x)).shape[2:]) == (1, 8, 8)
    assert len(MultiLevelCritic(cfg, 6)) == 3


def test_r1_of_a_linear_critic_is_the_squared_weight_norm():
    w = torch.randn(3, 2, 4, 4, requires_grad=True)

    def critic(x, f=None):
        return (x * w).flatten(1).sum(dim=1)

    real = torch.randn(5, 3, 2, 4, 4)
    r1 = r1_penalty(critic, real)
    assert float(r1.detach()) == pytest.approx(float(w.detach().pow(2).sum()), rel=1e-5)
    (g,) = torch.autograd.grad(r1, w)                           # it trains the critic: d/dw ||w||^2 = 2w
    torch.testing.assert_close(g, 2 * w.detach())


def test_adversarial_weight_warms_up_then_ramps():
    cfg = VideoGANConfig(**{**SMALL, "adv_weight": 0.5, "adv_warmup_steps": 2, "adv_ramp_steps": 4})
    assert [cfg.adversarial_weight(s) for s in range(8)] == [0, 0, 0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    assert VideoGANConfig(**SMALL).adversarial_weight(0) == 1.0


def test_video_roles_keep_their_rate_after_the_warm_up():
    cfg = from_dict(OptimConfig, {"warmup_steps": 4, "min_lr_ratio": 0.1})
    early, late = lr_factors(cfg, 1, 104), lr_factors(cfg, 100, 104)
    assert early["video_generator"] == early["encoder"] == 0.5
    assert late["video_generator"] == late["video_critic"] == 1.0 and late["encoder"] < 0.15
    assert late["generator"] == late["encoder"]                 # the pose GAN follows the run's cosine


def _generator_grads(model, batch, seed: int) -> dict[str, torch.Tensor]:
    model.zero_grad()
    out = model.compute_losses(batch, branches=("video",), generator=torch.Generator().manual_seed(seed))
    out.total.backward()
    return {n: p.grad.clone() for n, p in model.reconstructor.named_parameters() if p.grad is not None}


def test_warm_up_trains_the_generators_on_l2_alone_and_r1_is_lazy():
    import copy

    torch.manual_seed(0)
    model = CSVRModel(tiny_cfg(video={"adv_warmup_steps": 1, "r1_every": 2}))
    batch = make_batch(b=4, t=4, seed=3)
    other = copy.deepcopy(model)
    with torch.no_grad():                                        # another critic, same generators
        for p in other.reconstructor_critic.parameters():
            p.add_(torch.randn_like(p))
    g0, g1 = _generator_grads(model, batch, 1), _generator_grads(other, batch, 1)
    # adversarial weight 0 during the warm-up: the generator's gradient does not see the critic
    assert g0 and all(torch.allclose(g0[n], g1[n], atol=1e-6) for n in g0)
    assert int(model.video_steps) == 1
    out = model.compute_losses(batch, branches=("video",), generator=torch.Generator().manual_seed(1))
    assert float(out.metrics["video_adv_weight"]) == 1.0 and "video_r_r1" not in out.terms   # step 1: no R1
    g2 = _generator_grads(copy.deepcopy(model), batch, 1)
    other2 = copy.deepcopy(model)
    with torch.no_grad():
        for p in other2.reconstructor_critic.parameters():
            p.add_(torch.randn_like(p))
    g3 = _generator_grads(other2, batch, 1)
    assert any(not torch.allclose(g2[n], g3[n], atol=1e-6) for n in g2)   # after it, the critic counts
    fresh = CSVRModel(tiny_cfg(video={"r1_every": 2}))
    assert "video_r_r1" in fresh.compute_losses(batch, branches=("video",)).terms          # step 0: R1


def test_diagnostics_leave_training_untouched_and_log_every_signal(tiny_synth, tmp_path):
    from csvr.data.index import load_manifest
    from csvr.data.datasets import ClipConfig
    from csvr.methods.csvr import CSVR

    torch.manual_seed(0)
    method = CSVR(tiny_cfg())
    manifest = load_manifest(tiny_synth["manifest"])
    clip = ClipConfig(frames=4, stride=2, future_frames=4, size=32, decode_short_side=None, max_iframes=2)
    diag = method.build_diagnostics(manifest, manifest.select("1", "train"), clip, tiny_synth["poses"], "1", 6, 0)
    assert diag is not None and len(diag.samples) == 6
    method.model.video_steps += 1                                # the branch has trained: its mean clip (zeros)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    rng = torch.get_rng_state()
    method.train()
    a = diag(method, torch.device("cpu"))
    b = diag(method, torch.device("cpu"))
    assert a == b                                                # fixed clips, fixed noise
    assert torch.equal(torch.get_rng_state(), rng) and method.training
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())
    for key in ("video_r_mse", "video_p_mse", "video_r_mse_mean", "video_p_mse_mean", "video_p_mse_copy",
                "video_r_mse_shuffled", "video_p_mse_shuffled", "video_r_d_gap", "video_p_d_gap",
                "video_adv_l2_ratio"):
        assert np.isfinite(a[key]), key
    # the baselines by hand: the training mean clip (zeros here) and the last frame repeated
    from csvr.data.transforms import normalize, to_float_clip
    from csvr.models.video_gan import video_target_from_clip

    m = method.model
    batch = diag.batch
    tr = video_target_from_clip(normalize(to_float_clip(batch["clip"])), m.cfg.video, m.pixel_mean, m.pixel_std)
    tp = video_target_from_clip(normalize(to_float_clip(batch["future"])), m.cfg.video, m.pixel_mean, m.pixel_std)
    assert a["video_r_mse_mean"] == pytest.approx(float(tr.pow(2).mean()), rel=1e-5)
    assert a["video_p_mse_copy"] == pytest.approx(float((tr[:, :, -1:] - tp).pow(2).mean()), rel=1e-5)
    assert a["diag_heldout"] == 1.0                              # the split's test part


def test_a_run_writes_the_heldout_diagnostics_to_epochs_csv(tiny_synth, tmp_path):
    from csvr.config import load_config
    from csvr.engine.commands import resolve_config_path
    from csvr.engine.config import PretrainConfig
    from csvr.engine.pretrain import pretrain

    cfg = load_config(PretrainConfig, resolve_config_path("tiny-test"),
                      [f"data.manifest={tiny_synth['manifest']}", f"data.pose_cache={tiny_synth['poses']}",
                       f"out={tmp_path / 'run'}", "train.threads=1", "train.diagnostics_videos=4",
                       "train.diagnostics_every=100", "train.stages=[{name: video, epochs: 3, max_steps: 6}]"])
    summary = pretrain(cfg)
    with open(tmp_path / "run" / "epochs.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[-1]["diag_clips"] == "4" and rows[-1]["video_r_mse_shuffled"] != ""
    # a video-stage row without a measurement leaves the held-out columns blank, never the
    # training batches' values under the same names
    blank = [r for r in rows if r["diag_clips"] == ""]
    assert blank and all(r["video_r_mse"] == "" and r["video_r_l2"] != "" for r in blank)
    checks = {(c["signal"], c["baseline"]): c for c in summary["stages"][0]["pretext"]}
    assert checks[("video_r_mse", "video_r_mse_mean")]["source"].startswith("held-out")
    assert {("video_p_mse", "video_p_mse_copy"), ("video_r_mse_shuffled", "video_r_mse")} <= set(checks)


def test_the_step_count_is_mirrored_on_the_host_and_follows_a_weight_load():
    """The branch's step count drives the ramp and lazy R1 without a device read per step; a
    resumed model (weights loaded) continues from the saved count."""
    torch.manual_seed(0)
    a = CSVRModel(tiny_cfg(video={"adv_warmup_steps": 2, "r1_every": 3}))
    batch = make_batch(b=4, t=4, seed=2)
    for _ in range(2):
        a.compute_losses(batch, branches=("video",))
    assert a.video_branch_steps() == int(a.video_steps) == 2
    b = CSVRModel(tiny_cfg(video={"adv_warmup_steps": 2, "r1_every": 3}))
    b.compute_losses(batch, branches=("video",))                 # its own count: 1
    b.load_state_dict(a.state_dict())
    assert b.video_branch_steps() == 2
    out = b.compute_losses(batch, branches=("video",))
    assert float(out.metrics["video_adv_weight"]) == 1.0 and "video_r_r1" not in out.terms   # step 2
    assert b.video_branch_steps() == int(b.video_steps) == 3
    assert "video_r_r1" in b.compute_losses(batch, branches=("video",)).terms                # step 3
    torch.testing.assert_close(b.video_mean_count, torch.tensor(16))
