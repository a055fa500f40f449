"""Issue 12: optimisers by role, the schedule, clean video targets and the pretext diagnostics,
each checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from csvr.config import from_dict, load_config
from csvr.data.transforms import ColorAugmentConfig, normalize, to_float_clip
from csvr.engine.checkpoint import latest_checkpoint
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import OptimConfig, PretrainConfig
from csvr.engine.optim import RoleOptimizer, build_role_optimizer, drop_grads_outside, lr_factor
from csvr.engine.pretrain import pretext_verdicts, pretrain
from csvr.methods.base import PretextCheck
from csvr.methods.csvr import CSVR, iframe_statistics
from csvr.models import CSVRModel, CSVRModelConfig
from csvr.models.pose_gan import pose_mse, poses_to_sequence
from csvr.models.video_gan import video_target_from_clip
from tests.test_models_csvr import TINY, make_batch, tiny_cfg


# ----------------------------------------------------------------------------- optimisers by role
def test_csvr_roles_partition_the_parameters_and_get_their_optimisers():
    method = CSVR(tiny_cfg())
    roles = method.parameter_roles()
    ids = [id(p) for ps in roles.values() for p in ps]
    assert len(ids) == len(set(ids)) == len(list(method.parameters()))
    m = method.model
    assert {id(p) for p in m.pose_critic.parameters()} <= {id(p) for p in roles["critic"]}
    assert {id(p) for p in m.predictor.parameters()} <= {id(p) for p in roles["video_generator"]}
    assert {id(p) for p in m.reconstructor_critic.parameters()} <= {id(p) for p in roles["video_critic"]}
    assert {id(p) for p in m.pose_generator.parameters()} <= {id(p) for p in roles["generator"]}
    assert {id(p) for p in m.v_network.parameters()} <= {id(p) for p in roles["encoder"]}
    cfg = from_dict(OptimConfig, {"critic": {"lr": 3e-4, "betas": [0.0, 0.9]}})
    opt = build_role_optimizer(roles, cfg, encoder_lr=0.008)
    kinds = {r: type(o).__name__ for r, o in opt.optimizers.items()}
    assert kinds == {"encoder": "SGD", "generator": "Adam", "critic": "Adam", "video_generator": "Adam",
                     "video_critic": "Adam"}
    assert opt.lrs() == {"encoder": 0.008, "generator": 2e-4, "critic": 3e-4, "video_generator": 1e-4,
                         "video_critic": 1e-4}
    assert opt.optimizers["critic"].param_groups[0]["betas"] == (0.0, 0.9)
    # the video GANs: TGANv2's Adam (betas (0, 0.9)) by default
    assert opt.optimizers["video_generator"].param_groups[0]["betas"] == (0.0, 0.9)
    assert opt.optimizers["encoder"].param_groups[0]["weight_decay"] == 0.005
    # name: same puts a role back into the encoders' SGD (the behaviour before roles)
    same = build_role_optimizer(roles, from_dict(OptimConfig, {r: {"name": "same"} for r in
                                                               ("generator", "critic", "video_generator",
                                                                "video_critic")}), 0.008)
    assert list(same.optimizers) == ["encoder"]
    assert len(same.param_groups[0]["params"]) == len(list(method.parameters()))


def test_role_optimizer_steps_each_role_with_its_rule_and_round_trips_its_state():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    cfg = from_dict(OptimConfig, {"weight_decay": 0.0, "momentum": 0.0, "generator": {"lr": 0.1}})
    opt = build_role_optimizer({"encoder": list(a.parameters()), "generator": list(b.parameters())}, cfg, 0.5)
    wa, wb = a.weight.detach().clone(), b.weight.detach().clone()
    (a.weight.sum() + b.weight.sum()).backward()
    opt.step()
    # SGD: w - lr * g (g = 1); Adam's first step: w - lr * sign(g)
    torch.testing.assert_close(a.weight, wa - 0.5)
    torch.testing.assert_close(b.weight, wb - 0.1, atol=1e-6, rtol=0)
    opt.set_lr_factor(0.5)
    assert opt.lrs() == {"encoder": 0.25, "generator": 0.05}
    state = opt.state_dict()
    assert set(state) == {"encoder", "generator"} and int(state["generator"]["state"][0]["step"]) == 1
    fresh = build_role_optimizer({"encoder": list(a.parameters()), "generator": list(b.parameters())}, cfg, 0.5)
    fresh.load_state_dict(state)
    assert fresh.lrs() == {"encoder": 0.25, "generator": 0.05}
    with pytest.raises(ValueError, match="roles differ"):
        build_role_optimizer({"encoder": list(a.parameters())}, cfg, 0.5).load_state_dict(state)


def test_parameters_outside_the_stage_do_not_move_even_with_weight_decay():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    opt = build_role_optimizer({"encoder": list(a.parameters()) + list(b.parameters())}, OptimConfig(), 0.1)
    wb = b.weight.detach().clone()
    (a.weight.sum() + b.weight.sum()).backward()
    drop_grads_outside(b.parameters())
    opt.step()
    torch.testing.assert_close(b.weight, wb)
    assert not torch.equal(a.weight, a.weight.detach() * 0)


def test_lr_factor_warmup_then_one_cosine_with_floor():
    cfg = from_dict(OptimConfig, {"warmup_steps": 4, "min_lr_ratio": 0.1})
    assert [lr_factor(cfg, s, 104) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(cfg, 4, 104) == pytest.approx(1.0)
    assert lr_factor(cfg, 54, 104) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway: cos(pi/2) = 0
    assert lr_factor(cfg, 104, 104) == pytest.approx(0.1)
    assert lr_factor(cfg, 29, 104) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert lr_factor(from_dict(OptimConfig, {"schedule": "constant"}), 50, 100) == 1.0


def test_a_critic_that_trains_leaves_zero_gap_and_a_frozen_one_does_not():
    """A few one-stage pose-GAN steps on a fixed batch: with its Adam step the critic's real-fake
    gap grows past 0.3; the same run with the critic left out of the step keeps the gap near 0."""

    def run(train_critic: bool) -> float:
        torch.manual_seed(0)
        model = CSVRModel(tiny_cfg())
        method_roles = {"generator": list(model.pose_generator.parameters())}
        if train_critic:
            method_roles["critic"] = list(model.pose_critic.parameters())
        cfg = from_dict(OptimConfig, {"generator": {"lr": 1e-3}, "critic": {"lr": 1e-3}})
        opt = build_role_optimizer(method_roles, cfg, 0.01)
        batch = make_batch(b=8, t=4, seed=1)
        t = torch.linspace(0, 1, 8)[None, :, None, None]
        base = torch.randn(8, 1, 18, 2, generator=torch.Generator().manual_seed(2))
        batch["poses"] = base + t[:, :4] * 2.0          # joints move linearly in time
        batch["future_poses"] = base + t[:, 4:] * 2.0
        batch["pose_valid"] = torch.ones(8, dtype=torch.bool)
        gaps = []
        for _ in range(25):
            out = model.compute_losses(batch, branches=("pose",))
            out.total.backward()
            opt.step()
            opt.zero_grad()
            gaps.append(float(out.metrics["pose_d_gap"]))
        return float(np.mean(gaps[-5:]))

    assert run(train_critic=True) > 0.3      # signed: it rates real above generated
    assert abs(run(train_critic=False)) < 0.05


# ----------------------------------------------------------------------------- diagnostics
def test_pose_copy_baseline_context_chance_and_mean_clip_baseline_by_hand():
    torch.manual_seed(0)
    model = CSVRModel(tiny_cfg())
    batch = make_batch(b=3, t=4, k=2)  # clip 0 has 1 valid I-frame, clips 1 and 2 have 2: 5 in all
    out = model.compute_losses(batch)
    m = out.metrics
    real = poses_to_sequence(batch["future_poses"])
    last = poses_to_sequence(batch["poses"])[:, :, -1:]
    want = pose_mse(last.expand_as(real), real, batch["future_pose_conf"], batch["pose_valid"].float())
    torch.testing.assert_close(m["pose_mse_copy"], want)
    assert float(m["context_chance"]) == pytest.approx((1 / 5 + 2 / 5 + 2 / 5) / 3)
    # the mean-clip baseline is the training set's mean clip so far: the first training batch
    # has none (its own mean stands in); then a running mean over every target trained on
    target = video_target_from_clip(batch["clip"], model.cfg.video, model.pixel_mean, model.pixel_std)
    torch.testing.assert_close(model.video_mean_r, target.mean(dim=0))
    assert float(model.video_mean_count) == 3 and int(model.video_steps) == 1
    batch2 = make_batch(b=3, t=4, k=2, seed=7)
    target2 = video_target_from_clip(batch2["clip"], model.cfg.video, model.pixel_mean, model.pixel_std)
    with torch.no_grad():  # eval: dense, the whole clip against the mean of batch 1 (not its own)
        m2 = model.eval().compute_losses(batch2, branches=("video",)).metrics
    want = (target.mean(dim=0, keepdim=True) - target2).pow(2).mean()
    assert float(m2["video_r_mse_mean"]) == pytest.approx(float(want), rel=1e-5)
    model.train().compute_losses(batch2, branches=("video",))
    torch.testing.assert_close(model.video_mean_r, torch.cat([target, target2]).mean(dim=0))
    for tag in ("pose", "video_r", "video_p"):
        assert float(m[f"{tag}_d_gap"]) == pytest.approx(float(m[f"{tag}_d_real"] - m[f"{tag}_d_fake"]))


def test_iframe_statistics():
    batch = {"iframe_fallback": torch.tensor([True, False, False, False]),
             "iframe_count": torch.tensor([0, 1, 2, 3]), "iframe_mask": torch.ones(4, 2, dtype=torch.bool)}
    s = iframe_statistics(batch)
    assert float(s["iframe_own_frac"]) == 0.75 and float(s["iframes_per_clip"]) == 1.5
    del batch["iframe_count"]
    assert float(iframe_statistics(batch)["iframes_per_clip"]) == 2.0


def test_video_targets_carry_no_colour_augmentation(monkeypatch):
    torch.manual_seed(0)
    color = ColorAugmentConfig(jitter_prob=1.0, grayscale_prob=1.0, blur_prob=1.0)
    method = CSVR(tiny_cfg(), color)
    g = torch.Generator().manual_seed(0)
    b, t, s = 2, 4, 32
    batch = {"clip": torch.randint(0, 256, (b, t, s, s, 3), dtype=torch.uint8, generator=g),
             "future": torch.randint(0, 256, (b, t, s, s, 3), dtype=torch.uint8, generator=g),
             "iframes": torch.randint(0, 256, (b, 2, s, s, 3), dtype=torch.uint8, generator=g),
             "iframe_mask": torch.ones(b, 2, dtype=torch.bool), "iframe_fallback": torch.zeros(b, dtype=torch.bool),
             "poses": torch.randn(b, t, 18, 3), "future_poses": torch.randn(b, t, 18, 3),
             "pose_valid": torch.ones(b, dtype=torch.bool)}
    seen = {}
    original = method.model.compute_losses

    def spy(inputs, **kw):
        seen.update(vars(inputs))  # the CSVRBatch the training step built
        return original(inputs, **kw)

    monkeypatch.setattr(method.model, "compute_losses", spy)
    out = method.training_step(batch, "joint")
    m = method.model
    for key, target_key in (("clip", "video_target"), ("future", "future_target")):
        clean = normalize(to_float_clip(batch[key]))
        want = video_target_from_clip(clean, m.cfg.video, m.pixel_mean, m.pixel_std)
        torch.testing.assert_close(seen[target_key], want)
    # while the encoder's input is jittered, grayscaled and blurred
    assert (seen["clip"] - normalize(to_float_clip(batch["clip"]))).abs().mean() > 0.05
    # the future clip itself is never converted: the model reads it only to make the target above
    assert seen.get("future") is None
    assert float(out.metrics["iframe_own_frac"]) == 1.0


def test_pretext_verdicts_on_hand_made_rows():
    rows = [{"stage": "pose", "pose_mse": "0.9", "pose_mse_copy": "1.0", "pose_d_gap": "0.0"},
            {"stage": "pose", "pose_mse": "0.5", "pose_mse_copy": "1.0", "pose_d_gap": "-0.5"},
            {"stage": "other", "pose_mse": "5"}]
    checks = (PretextCheck("pose", "pose_mse", "pose_mse_copy", "lower", 0.9),
              PretextCheck("critic", "pose_d_gap", None, "gap", 0.3),
              PretextCheck("absent", "context_top1", "context_chance", "higher", 2.0))
    got = pretext_verdicts(rows, "pose", checks)  # the last half of the stage's rows: row 2 only
    # a negative gap is a fooled critic: not learning
    assert [(c["branch"], c["value"], c["verdict"]) for c in got] == [
        ("pose", 0.5, "learning"), ("critic", -0.5, "not above baseline")]
    rows[1]["pose_d_gap"] = "0.4"
    assert pretext_verdicts(rows, "pose", checks)[1]["verdict"] == "learning"
    rows[1]["pose_mse"] = "0.95"
    assert pretext_verdicts(rows, "pose", checks)[0]["verdict"] == "not above baseline"


def test_a_run_logs_every_signal_beside_its_baseline_and_checkpoints_every_role(tiny_synth, tmp_path):
    import csv

    cfg = load_config(PretrainConfig, resolve_config_path("tiny-test"),
                      [f"data.manifest={tiny_synth['manifest']}", f"data.pose_cache={tiny_synth['poses']}",
                       f"out={tmp_path / 'run'}", "train.threads=1"])
    summary = pretrain(cfg)
    with open(tmp_path / "run" / "metrics.csv") as f:
        cols = set(csv.DictReader(f).fieldnames or [])
    for c in ("pose_mse", "pose_mse_copy", "pose_d_gap", "context_top1", "context_chance", "video_r_mse",
              "video_r_mse_mean", "video_p_mse", "video_p_mse_mean", "video_r_d_gap", "video_p_d_gap",
              "iframe_own_frac", "iframes_per_clip", "lr", "lr_generator", "lr_critic", "lr_video_generator",
              "lr_video_critic", "video_adv_weight"):
        assert c in cols, c
    verdicts = {(s["stage"], c["signal"]) for s in summary["stages"] for c in s["pretext"]}
    assert ("pose", "pose_mse") in verdicts and ("joint", "video_p_d_gap") in verdicts
    _, state = latest_checkpoint(tmp_path / "run")
    assert set(state["optimizers"]) == {"encoder", "generator", "critic", "video_generator", "video_critic"}
