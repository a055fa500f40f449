"""Video quality of the generators (issue 23 item 4): the Inception Score analogue and the Frechet
distance against hand-computed and independently computed values, and `csvr video-quality` end
to end on a tiny pretraining run with a classifier trained from scratch."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from csvr.cli import main
from csvr.config import load_config
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.eval.stats import bootstrap_ci, bootstrap_statistic_ci
from csvr.eval.video_quality import (VideoScorer, derangement, frechet_distance, gaussian_frechet, inception_score)

from conftest import pretrain_tiny


def test_inception_score_by_hand():
    # two items, two classes: p(y) = (0.5, 0.5); KL of each = 0.9 ln 1.8 + 0.1 ln 0.2 = 0.368064
    p = np.array([[0.9, 0.1], [0.1, 0.9]])
    assert inception_score(p) == pytest.approx(math.exp(0.9 * math.log(1.8) + 0.1 * math.log(0.2)), rel=1e-9)
    assert inception_score(np.eye(5)) == pytest.approx(5.0)  # confident and spread evenly: C
    assert inception_score(np.tile([0.2, 0.3, 0.5], (7, 1))) == pytest.approx(1.0)  # one prediction for all: 1
    # a zero probability contributes nothing (0 log 0 = 0)
    q = np.array([[1.0, 0.0], [0.5, 0.5]])
    py = q.mean(0)
    kl = [math.log(1 / py[0]), 0.5 * math.log(0.5 / py[0]) + 0.5 * math.log(0.5 / py[1])]
    assert inception_score(q) == pytest.approx(math.exp(np.mean(kl)))
    with pytest.raises(ValueError):
        inception_score(np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError):
        inception_score(np.zeros((0, 3)))


def test_frechet_distance_against_scipy_sqrtm_and_closed_forms():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real  # the usual FID formula, computed independently
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert gaussian_frechet(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-7)
    # diagonal covariances: sum (sqrt(a) - sqrt(b))^2 ; one dimension: (m1-m2)^2 + (sd1-sd2)^2
    d1, d2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    assert gaussian_frechet(np.zeros(3), np.diag(d1), np.ones(3), np.diag(d2)) == pytest.approx(3 + 1 + 0 + 4)
    assert gaussian_frechet([2.0], [[9.0]], [0.0], [[1.0]]) == pytest.approx(4 + 4)
    # a rank-deficient covariance (fewer samples than dimensions) is still defined
    x = rng.normal(size=(4, 10))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    y = x + 3.0  # a shift: the squared mean difference only
    assert frechet_distance(x, y) == pytest.approx(9.0 * 10, rel=1e-6)
    with pytest.raises(ValueError):
        frechet_distance(x[:1], x)


def test_bootstrap_statistic_ci_and_derangement():
    x = np.random.default_rng(1).normal(size=50)
    lo, hi = bootstrap_statistic_ci(lambda i: float(x[i].mean()), x.size, n=4000, seed=0)
    ref = bootstrap_ci(x, n=4000, seed=0)
    assert lo == pytest.approx(ref[0], abs=0.03) and hi == pytest.approx(ref[1], abs=0.03)
    assert bootstrap_statistic_ci(lambda i: 2.5, 10, n=50) == (2.5, 2.5)
    for n in (2, 3, 10, 61):
        p = derangement(n, seed=n)
        assert sorted(p) == list(range(n)) and not np.any(p == np.arange(n))
    assert list(derangement(10, 3)) == list(derangement(10, 3))


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    """A tiny CSVR pretraining run and a classifier trained from scratch at the generators' size."""
    tmp = tmp_path_factory.mktemp("vq")
    ckpt = pretrain_tiny(tiny_synth, tmp / "pre")["checkpoint"]
    # tiny-test's generators make 4 frames of 16 px: the classifier sees exactly that
    assert main(["finetune", "--config", "tiny-test", "--pretrained", str(ckpt), "--feature", "scratch",
                 f"data.manifest={tiny_synth['manifest']}", "data.clip.size=16", "--out", str(tmp / "cls"),
                 "train.threads=1"]) == 0
    return {"ckpt": ckpt, "cls": tmp / "cls", "tmp": tmp}


def test_video_quality_command_end_to_end(tiny_synth, runs, capsys):
    out = runs["tmp"] / "q.json"
    assert main(["video-quality", str(runs["ckpt"]), "--classifier", str(runs["cls"]), "--device", "cpu",
                 "--bootstrap", "50", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "IS" in text and "top-1 of the conditioning action" in text and "FD" in text
    r = json.loads(out.read_text())
    assert r["heldout"] and r["classes"] == 4 and r["clips"] >= 2
    for tag in ("r", "p"):
        row = r[tag]
        assert 1.0 <= row["is"] <= 4.0 and 1.0 <= row["is_real"] <= 4.0
        assert row["is_ci"][0] <= row["is_ci"][1] and row["fd"] >= 0 and row["fd_mean"] >= 0
        assert 0.0 <= row["top1"] <= 1.0 and row["top1_gain"]["items"] == r["clips"]
    assert "fd_copy" in r["p"] and "fd_copy" not in r["r"]


def test_scorer_sees_what_the_classifier_was_trained_on_and_top1_real_independently(tiny_synth, runs):
    """At the classifier's own size the scorer's input is the [-1, 1] clip mapped back to [0, 1]
    and normalised, and ``top1_real`` is the classifier's top-1 on the real targets."""
    from csvr.data.index import load_manifest
    from csvr.data.transforms import normalize
    from csvr.engine.model import load_method
    from csvr.eval.video_quality import measure_quality
    from csvr.models.csvr_model import CSVRBatch
    from csvr.models.video_gan import video_target_from_clip

    scorer = VideoScorer.load(sorted((runs["cls"] / "checkpoints").glob("step-*.pt"))[-1])
    assert (scorer.frames, scorer.size) == (4, 16)
    v = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    assert torch.allclose(scorer.inputs(v), normalize((v + 1) / 2), atol=1e-6)
    # a different size is resized (trilinear) to the classifier's
    assert scorer.inputs(torch.zeros(1, 3, 8, 32, 32)).shape == (1, 3, 4, 16, 16)

    method, ckpt = load_method(runs["ckpt"])
    manifest = load_manifest(tiny_synth["manifest"])
    diag = method.build_diagnostics(manifest, manifest.select("1", "train"), load_config(
        PretrainConfig, resolve_config_path("tiny-test"), []).data.clip, str(tiny_synth["poses"]), "1", 100, 0)
    labels = np.array([int(s["label"]) for s in diag.samples])
    r = measure_quality(method, diag, scorer, "cpu", labels, boot=20)
    m = method.model.eval()
    b = CSVRBatch.from_samples(diag.batch)
    target = video_target_from_clip(b.clip, m.cfg.video, m.pixel_mean, m.pixel_std)
    with torch.no_grad():
        logits = scorer.classifier(normalize((target + 1) / 2))
    assert r["r"]["top1_real"] == pytest.approx(float((logits.argmax(1).numpy() == labels).mean()))
    assert r["r"]["is_real"] == pytest.approx(inception_score(torch.softmax(logits, 1).double().numpy()), rel=1e-5)


def test_a_classifier_that_reads_poses_is_refused_in_one_line(tiny_synth, runs, capsys):
    out = runs["tmp"] / "fi-cls"
    assert main(["finetune", "--config", "tiny-test", "--pretrained", str(runs["ckpt"]),
                 f"data.manifest={tiny_synth['manifest']}", f"data.pose_cache={tiny_synth['poses']}",
                 "--out", str(out), "train.threads=1", "train.stages=[{name: main, epochs: 1}]"]) == 0
    capsys.readouterr()
    assert main(["video-quality", str(runs["ckpt"]), "--classifier", str(out)]) == 2
    err = capsys.readouterr().err
    assert "reads poses" in err and "Traceback" not in err


def test_heldout_pretext_per_clip_agrees_with_the_training_metrics(tiny_synth, runs):
    """Table II's pose and context measures per held-out clip: their context top-1 is the
    training step's metric on the same batch, each clip's pose MSE the batch metric restricted
    to that clip (the same fixed noise)."""
    from csvr.data.index import load_manifest
    from csvr.engine.model import load_method
    from csvr.models.csvr_model import CSVRBatch
    from csvr.models.pose_gan import pose_mse

    method, _ = load_method(runs["ckpt"])
    manifest = load_manifest(tiny_synth["manifest"])
    clip_cfg = load_config(PretrainConfig, resolve_config_path("tiny-test"), []).data.clip
    diag = method.build_diagnostics(manifest, manifest.select("1", "train"), clip_cfg, str(tiny_synth["poses"]),
                                    "1", 100, 0)
    per = diag.pretext(method, torch.device("cpu"))
    n = len(diag.samples)
    assert all(v.shape == (n,) for v in per.values()) and n == len(manifest.select("1", "test"))
    assert per["context_chance"].sum() == pytest.approx(1.0)  # own I-frames over all of them
    m = method.model.eval()
    b = CSVRBatch.from_samples(diag.batch)
    out = m.compute_losses(b, branches=("pose", "context"), generator=torch.Generator().manual_seed(diag.seed))
    assert float(out.metrics["context_top1"]) == pytest.approx(per["context_hit"].mean())
    assert float(out.metrics["pose_mse_copy"]) > 0
    # the per-clip pose MSE against the batch's weighted metric with one clip weighted in
    from csvr.models.pose_gan import generator_input, poses_to_sequence
    p_in = generator_input(b.poses, b.pose_conf, m.cfg.pose)
    with torch.no_grad():
        fake = m.generate_poses(m.pose_generator.encode(p_in), p_in[:, : 2 * m.cfg.pose.num_joints], 4,
                                torch.Generator().manual_seed(diag.seed))
    real = poses_to_sequence(b.future_poses)
    for i in range(n):
        w = torch.zeros(n)
        w[i] = 1
        assert float(pose_mse(fake, real, b.future_pose_conf, w)) == pytest.approx(float(per["pose_mse"][i]), rel=1e-5)
