"""Finetuning / linear probing through the engine, and the classification metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csvr.cli import main
from csvr.config import load_config
from csvr.data.index import load_manifest
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.pretrain import load_pretrained, stratified_subset
from csvr.errors import CsvrError
from csvr.eval.finetune import evaluate_classifier, load_classifier
from csvr.eval.metrics import classification_report

from conftest import pretrain_tiny


def test_classification_report_by_hand():
    # 3 videos x 2 clips x 3 classes
    logits = np.array([
        [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]],   # clips say 0 and 1; softmax mean favours 0
        [[0.0, 0.0, 3.0], [0.0, 0.0, 3.0]],   # class 2 twice
        [[0.0, 5.0, 0.0], [4.0, 0.0, 0.0]],   # 1 (p=.9867) vs 0 (p=.9643): mean favours 1
    ])
    labels = np.array([0, 1, 1])
    r = classification_report(logits, labels, ["a", "b", "c"])
    assert r["clip_top1"] == pytest.approx(2 / 6)  # video 0 clip 0, video 2 clip 0
    assert r["video_predictions"] == [0, 2, 1]
    assert r["video_top1"] == pytest.approx(2 / 3)
    assert r["per_class"] == {"a": 1.0, "b": 0.5, "c": None}
    assert r["confusion"] == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    with pytest.raises(ValueError):
        classification_report(logits * np.nan, labels, ["a", "b", "c"])


def test_stratified_subset(tiny_synth):
    m = load_manifest(tiny_synth["manifest"])
    train = m.select("1", "train")
    sub = stratified_subset(train, 0.5, seed=0)
    for c in range(m.num_classes):
        n = sum(r.label == c for r in train)
        assert sum(r.label == c for r in sub) == max(1, round(0.5 * n))
    assert stratified_subset(train, 0.5, seed=0) == sub and stratified_subset(train, 0.5, seed=1) != sub
    assert [r.label for r in stratified_subset(train, 0.01, 0)] == list(range(m.num_classes))  # >= 1 per class


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_synth, tmp_path_factory):
    return pretrain_tiny(tiny_synth, tmp_path_factory.mktemp("pre") / "run")["checkpoint"]


def _ft(tiny_synth, ckpt, out, *extra):
    return main(["finetune", "--config", "tiny-test", "--pretrained", str(ckpt), f"data.manifest={tiny_synth['manifest']}",
                 f"data.pose_cache={tiny_synth['poses']}", "--out", str(out), "train.threads=1", *extra])


def test_finetune_fi_writes_results_and_loads_back(tiny_synth, tiny_ckpt, tmp_path, capsys):
    assert _ft(tiny_synth, tiny_ckpt, tmp_path / "ft") == 0
    assert "video top-1" in capsys.readouterr().out
    r = json.loads((tmp_path / "ft" / "results.json").read_text())
    m = load_manifest(tiny_synth["manifest"])
    n_test = len(m.select("1", "test"))
    assert r["kind"] == "finetune" and r["feature"] == "fi" and r["num_videos"] == n_test
    assert np.array(r["confusion"]).sum() == n_test and 0.0 <= r["video_top1"] <= 1.0
    assert set(r["class_groups"].values()) <= {"motion", "context", "both"} and len(r["class_groups"]) == 4
    classifier, state = load_classifier(r["checkpoint"])
    # the encoder started from the pretrained f_i network (all but the last FC)
    pre, _ = load_pretrained(tiny_ckpt)
    assert set(classifier.encoder.state_dict()) == set(pre.encoder("fi").state_dict())
    again = evaluate_classifier(classifier, m, m.select("1", "test"), load_config(
        PretrainConfig, resolve_config_path("tiny-test"), []).data.clip, clips=2, pose_cache=str(tiny_synth["poses"]))
    assert again["video_predictions"] == r["video_predictions"]  # deterministic evaluation


def test_linear_probe_freezes_the_encoder(tiny_synth, tiny_ckpt, tmp_path):
    assert main(["linear-probe", "--config", "tiny-test", "--pretrained", str(tiny_ckpt), "--feature", "fs",
                 f"data.manifest={tiny_synth['manifest']}", "--out", str(tmp_path / "lp"), "train.threads=1"]) == 0
    r = json.loads((tmp_path / "lp" / "results.json").read_text())
    assert r["kind"] == "linear_probe"
    classifier, _ = load_classifier(r["checkpoint"])
    pre, _ = load_pretrained(tiny_ckpt)
    ref = pre.encoder("fs").state_dict()
    for k, v in classifier.encoder.state_dict().items():
        assert torch.equal(v, ref[k]), k  # weights and BatchNorm statistics untouched


def test_scratch_and_label_fraction(tiny_synth, tiny_ckpt, tmp_path):
    assert _ft(tiny_synth, tiny_ckpt, tmp_path / "s", "--feature", "scratch", "--label-fraction", "0.5") == 0
    r = json.loads((tmp_path / "s" / "results.json").read_text())
    assert r["init"] == "scratch" and r["feature"] == "fs" and r["label_fraction"] == 0.5
    classifier, _ = load_classifier(r["checkpoint"])
    pre, _ = load_pretrained(tiny_ckpt)
    ref = pre.encoder("fs").state_dict()
    w = "v_network.stem.0.weight"
    assert not torch.equal(classifier.encoder.state_dict()[w], ref[w])


def test_finetune_bad_inputs(tiny_synth, tiny_ckpt, tmp_path, capsys):
    assert _ft(tiny_synth, tmp_path / "nope.pt", tmp_path / "x") == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert _ft(tiny_synth, tiny_ckpt, tmp_path / "y", "model.feature=fz") == 2
    assert "model.feature" in capsys.readouterr().err


def test_classifier_manifest_class_mismatch(tiny_synth, tiny_ckpt, tmp_path):
    assert _ft(tiny_synth, tiny_ckpt, tmp_path / "ft") == 0
    r = json.loads((tmp_path / "ft" / "results.json").read_text())
    classifier, _ = load_classifier(r["checkpoint"])
    m = load_manifest(tiny_synth["manifest"])
    m.header["classes"] = list(reversed(m.classes))
    with pytest.raises(CsvrError, match="differ from the manifest"):
        evaluate_classifier(classifier, m, m.records[:2], None)
