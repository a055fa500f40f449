"""The online kNN monitor during pretraining (train.knn_monitor): it logs the weighted-kNN top-1
of the current encoder, equal to one computed independently from the checkpoint, and it changes
nothing about training: same losses, same weights, same exact resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from csvr.config import load_config
from csvr.data.datasets import ClipDataset
from csvr.data.index import load_manifest
from csvr.engine.checkpoint import list_checkpoints, load_checkpoint
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.pretrain import load_pretrained, pretrain
from csvr.errors import CsvrError

MONITOR = ["train.knn_monitor.every=3", "train.knn_monitor.videos=12", "train.knn_monitor.k=3"]


def cfg_for(ds, out, *extra) -> PretrainConfig:
    return load_config(PretrainConfig, resolve_config_path("tiny-test"),
                       [f"data.manifest={ds['manifest']}", f"data.pose_cache={ds['poses']}", f"out={out}",
                        "train.threads=1", "train.ckpt_every_steps=1", "train.keep_last=20", *extra])


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    base = tmp_path_factory.mktemp("monitor")
    off = pretrain(cfg_for(tiny_synth, base / "off"))
    on = pretrain(cfg_for(tiny_synth, base / "on", *MONITOR))
    return base, off, on


def test_the_monitor_changes_nothing_about_training(runs):
    base, off, on = runs
    a, b = rows(base / "off"), rows(base / "on")
    assert [r["step"] for r in a] == [r["step"] for r in b]  # log_every_steps 1: the monitor adds no row
    for ra, rb in zip(a, b):
        for k, v in ra.items():
            if k not in ("samples_per_s", "data_wait_frac"):
                assert rb[k] == v, (ra["step"], k)
    assert "knn_top1" not in a[0]
    assert [r["step"] for r in b if r.get("knn_top1")] == ["3", "6", "9"]
    for p, q in zip(list_checkpoints(base / "off"), list_checkpoints(base / "on")):
        sa, sb = load_checkpoint(p), load_checkpoint(q)
        assert sa["global_step"] == sb["global_step"]
        for k in sa["model"]:
            assert torch.equal(sa["model"][k], sb["model"][k]), (p.name, k)  # weights and BatchNorm statistics
        assert torch.equal(sa["rng"]["torch"], sb["rng"]["torch"])
    mon = json.loads((base / "on" / "summary.json").read_text())["knn_monitor"]
    assert mon["feature"] == "fi" and [s for s, _ in mon["history"]] == [3, 6, 9]
    assert mon["memory_videos"] + mon["query_videos"] == 12 and mon["query_videos"] >= 1
    assert "knn_monitor" not in off


def _knn_by_hand(mem, mem_y, q, q_y, k, tau, classes):
    mem = mem / np.linalg.norm(mem, axis=1, keepdims=True)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    hits = 0
    for f, y in zip(q, q_y):
        sim = mem @ f
        nn = sorted(range(len(sim)), key=lambda i: (-sim[i], i))[:k]
        votes = np.zeros(classes)
        for i in nn:
            votes[mem_y[i]] += np.exp(sim[i] / tau)
        hits += int(np.argmax(votes) == y)
    return 100 * hits / len(q_y)


def test_the_logged_value_is_the_knn_of_the_checkpoint(tiny_synth, runs):
    """Step 9's kNN top-1, recomputed from the step-9 checkpoint through the evaluation path
    (the DataLoader feature extraction of csvr.eval) and a kNN written out here."""
    from csvr.engine.monitor import KnnMonitor
    from csvr.eval.features import extract_features

    base, _, on = runs
    cfg = cfg_for(tiny_synth, base / "on", *MONITOR)
    method, state = load_pretrained(list_checkpoints(base / "on")[-1])
    assert state["global_step"] == 9
    m = load_manifest(tiny_synth["manifest"])
    mon = KnnMonitor.build(cfg, method, m)
    enc = method.encoder("fi")

    def feats(records):
        ds = ClipDataset(m, records, cfg.data.clip, mode="eval", num_clips=1, pose_cache=str(tiny_synth["poses"]))
        f = extract_features(enc, ds, batch_size=5)
        return f.clips.mean(axis=1), f.labels

    (mem, my), (q, qy) = feats(mon.memory), feats(mon.queries)
    want = _knn_by_hand(mem, my, q, qy, k=3, tau=0.07, classes=m.num_classes)
    logged = float([r for r in rows(base / "on") if r["step"] == "9"][0]["knn_top1"])
    assert logged == pytest.approx(want, abs=1e-3)
    # the monitor's videos: class-balanced, memory from the split's training part, queries from its test part
    assert {r.splits["1"] for r in mon.memory} == {"train"} and {r.splits["1"] for r in mon.queries} == {"test"}
    for part in (mon.memory, mon.queries):  # 6 + 6 of 8 + 8 videos (2 + 2 per class): classes in turn
        counts = np.bincount([r.label for r in part], minlength=m.num_classes)
        assert len(part) == 6 and counts.max() - counts.min() <= 1


def test_exact_resume_with_the_monitor_on(tiny_synth, runs, tmp_path, monkeypatch):
    """Interrupted after step 5 (checkpoint every step) and resumed: every loss and every kNN
    value equal the uninterrupted monitored run's."""
    from csvr.engine.trainer import Trainer

    base, _, _ = runs
    real = Trainer._step
    calls = {"n": 0}

    class Crash(Exception):
        pass

    def crashing(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 6:
            raise Crash()
        return real(self, *a, **kw)

    monkeypatch.setattr(Trainer, "_step", crashing)
    with pytest.raises(Crash):
        pretrain(cfg_for(tiny_synth, tmp_path / "r", *MONITOR))
    monkeypatch.setattr(Trainer, "_step", real)
    pretrain(cfg_for(tiny_synth, tmp_path / "r", *MONITOR), resume=True)
    want, got = rows(base / "on"), rows(tmp_path / "r")
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for rw, rg in zip(want, got):
        for k in ("total", "knn_top1", "knn_top5"):
            if rw.get(k):
                assert float(rg[k]) == pytest.approx(float(rw[k]), rel=1e-5, abs=1e-6), (rw["step"], k)


def test_monitor_settings_are_checked_before_training(tiny_synth, tmp_path):
    with pytest.raises(CsvrError, match="train.knn_monitor.feature"):
        pretrain(cfg_for(tiny_synth, tmp_path / "a", "train.knn_monitor.every=2", "train.knn_monitor.feature=fz"))
    with pytest.raises(CsvrError, match="split '7'"):
        pretrain(cfg_for(tiny_synth, tmp_path / "b", "train.knn_monitor.every=2", "train.knn_monitor.split=7"))
    with pytest.raises(CsvrError, match="knn_monitor"):
        pretrain(cfg_for(tiny_synth, tmp_path / "c", "train.knn_monitor.every=-1"))
    assert not list_checkpoints(tmp_path / "a") and not list_checkpoints(tmp_path / "b")


def test_a_preset_monitor_on_data_without_a_test_part_turns_itself_off(tiny_synth, tmp_path, caplog):
    """The presets turn the monitor on; on a pretraining manifest without labelled test videos it
    says so and stays off, unless the user named the monitor's own videos (then: an error)."""
    from csvr.engine.model import build_method
    from csvr.engine.monitor import KnnMonitor

    m = load_manifest(tiny_synth["manifest"])
    for r in m.all_records:
        r.splits = {"1": "train"}
    m.header["root"] = str(m.root)
    m.write(tmp_path / "all-train.jsonl")
    cfg = cfg_for({**tiny_synth, "manifest": tmp_path / "all-train.jsonl"}, tmp_path / "x", "train.knn_monitor.every=2")
    method = build_method(cfg)
    mm = load_manifest(tmp_path / "all-train.jsonl")
    with caplog.at_level("WARNING"):
        assert KnnMonitor.build(cfg, method, mm) is None
    assert "0 test videos" in caplog.text and "train.knn_monitor.manifest" in caplog.text
    cfg.train.knn_monitor.split = "1"
    with pytest.raises(CsvrError, match="the monitor needs both"):
        KnnMonitor.build(cfg, method, mm)
    cfg.train.knn_monitor.split, cfg.train.knn_monitor.manifest = None, str(tiny_synth["manifest"])
    mon = KnnMonitor.build(cfg, method, mm)  # its own labelled manifest: on
    assert mon is not None and len(mon.memory) == len(mon.queries) == 8  # 64 asked, 8 + 8 there


def test_the_monitor_with_data_loader_workers(tiny_synth, runs, tmp_path):
    """The monitor decodes in the main process; the data-loader workers forked at every later
    epoch (2 steps an epoch here) must still run, and give the same losses as without workers."""
    import subprocess
    import sys

    from tests.test_engine import ENV

    base, _, _ = runs
    cmd = [sys.executable, "-m", "csvr", "pretrain", "--config", "tiny-test", f"data.manifest={tiny_synth['manifest']}",
           f"data.pose_cache={tiny_synth['poses']}", "train.threads=1", "data.workers=2", *MONITOR,
           f"out={tmp_path / 'w'}"]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "step 9: kNN top-1" in r.stdout
    want, got = rows(base / "on"), rows(tmp_path / "w")
    assert [(w["step"], w["total"], w["knn_top1"]) for w in want] == [(g["step"], g["total"], g["knn_top1"]) for g in got]
