"""`csvr knn` (issue 16): frozen-feature kNN and the cached-feature linear probe with their
random-init control, on the tiny built-in dataset with a real pretraining checkpoint. The numbers
are checked against a brute-force recomputation from the cached features, the cache against a
second call that must not extract, and the linear probe against the optimality condition of its
objective computed independently in numpy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from csvr.cli import main
from test_eval_retrieval import make_eval_runs


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return make_eval_runs(tmp_path_factory.getbasetemp() / "eval-runs", tiny_synth)


def brute_force_knn(train, ytr, test, yte, k, tau, num_classes):
    """Weighted kNN written out per query, in plain Python (the reference for csvr.eval.knn)."""
    top1, top5 = [], []
    for q, label in zip(test, yte):
        sims = [float(np.dot(q, t) / (np.linalg.norm(q) * np.linalg.norm(t))) for t in train]
        nearest = sorted(range(len(train)), key=lambda j: (-sims[j], j))[:k]
        votes = [0.0] * num_classes
        for j in nearest:
            votes[int(ytr[j])] += math.exp(sims[j] / tau)
        ranked = sorted(range(num_classes), key=lambda c: (-votes[c], c))
        top1.append(float(ranked[0] == label))
        top5.append(float(label in ranked[:5]))
    return np.array(top1), np.array(top5)


def test_linear_probe_solves_its_objective():
    """The L-BFGS probe's weights make the gradient of mean cross-entropy + wd/2 ||W||^2 vanish
    (gradient written out in numpy), and its predictions are the argmax of its own scores."""
    from csvr.eval.frozen import linear_probe

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)) + np.repeat(np.eye(4, 6) * 4.0, 10, axis=0)
    y = np.repeat(np.arange(4), 10)
    xt = rng.normal(size=(12, 6)) + np.repeat(np.eye(4, 6) * 4.0, 3, axis=0)
    yt = np.repeat(np.arange(4), 3)
    wd = 0.01
    r = linear_probe(x, y, xt, yt, 4, weight_decay=wd)
    a = (x - x.mean(0)) / x.std(0)
    logits = a @ r["weight"].T + r["bias"]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(40), y] -= 1.0
    grad_w = p.T @ a / 40 + wd * r["weight"]
    grad_b = p.mean(0)
    assert np.abs(grad_w).max() < 1e-6 and np.abs(grad_b).max() < 1e-6
    scores = ((xt - x.mean(0)) / x.std(0)) @ r["weight"].T + r["bias"]
    assert r["top1"].tolist() == (scores.argmax(1) == yt).astype(float).tolist()
    assert r["top1"].mean() >= 0.75  # separable classes: the probe is not degenerate


def test_knn_cli_with_control_cache_and_numbers(tiny_synth, runs, tmp_path, capsys, monkeypatch):
    from csvr.engine.model import load_encoder
    from csvr.eval import frozen
    from csvr.eval.stats import paired_gain

    cache = tmp_path / "cache"
    argv = ["knn", "--checkpoint", str(runs["pretrain_ckpt"]), "--feature", "fi", "--manifest",
            str(tiny_synth["manifest"]), "--pose-cache", str(tiny_synth["poses"]), "--clips", "2", "--workers", "0",
            "--control-seeds", "2", "--linear", "--cache", str(cache)]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "8 test videos query 8 training videos" in printed and "seeds 0, 1" in printed
    assert "kNN k=20 top-1" in printed and "linear top-1" in printed and "0 of 3 sets from the cache" in printed
    doc = json.loads((tmp_path / "a" / "knn.json").read_text())
    names = ["knn20_top1", "knn20_top5", "knn1_top1", "linear_top1", "linear_top5"]
    assert list(doc["measures"]) == names and doc["units"] == "percent"
    assert doc["num_test"] == 8 and doc["num_train"] == 8 and doc["control"]["seeds"] == [0, 1]
    for m in names:
        for part in ("", "_ci", "_control", "_gain", "_gain_ci"):
            assert m + part in doc
    files = [Path(f) for f in doc["cache"]["files"]]
    assert doc["cache"]["reused"] == [False] * 3 and all(f.parent == cache and f.suffix == ".npz" for f in files)

    # the numbers, recomputed by brute force from the cached features (plain npz, no pickles)
    z = [np.load(f, allow_pickle=False) for f in files]
    per = [doc["per_video"]["pretrained"], *doc["per_video"]["controls"]]
    for zi, scores in zip(z, per):
        for k in (20, 1):
            t1, t5 = brute_force_knn(zi["train"], zi["train_labels"], zi["test"], zi["test_labels"], k, 0.07, 4)
            assert scores[f"knn{k}_top1"] == t1.astype(int).tolist()
            if k > 1:
                assert scores[f"knn{k}_top5"] == t5.astype(int).tolist()
    g = paired_gain(per[0]["knn20_top1"], np.array([per[1]["knn20_top1"], per[2]["knn20_top1"]]))
    assert doc["knn20_top1"] == round(100 * g["mean"], 2) and doc["knn20_top1_gain"] == round(100 * g["gain"], 2)
    assert doc["knn20_top1_gain_ci"] == [round(100 * v, 2) for v in g["gain_ci"]]
    assert doc["knn20_top1_control"] == pytest.approx(100 * (np.mean(per[1]["knn20_top1"]) + np.mean(per[2]["knn20_top1"])) / 2, abs=0.01)
    # same videos on every side; the two control seeds are different networks with different features
    assert all(zi["test_ids"].tolist() == doc["per_video"]["test_ids"] for zi in z)
    assert not np.allclose(z[1]["test"], z[2]["test"]) and not np.allclose(z[0]["test"], z[1]["test"])
    w0, w1 = (load_encoder(runs["pretrain_ckpt"], "fi", random_init=True, seed=s).state_dict() for s in (0, 1))
    assert any(not np.array_equal(w0[n].numpy(), w1[n].numpy()) for n in w0 if w0[n].is_floating_point())

    # a second call reads every set from the cache: the extractor must not run
    def no_extraction(*a, **kw):
        raise AssertionError("features extracted again")

    monkeypatch.setattr(frozen, "split_features", no_extraction)
    assert main(argv + ["--out", str(tmp_path / "b")]) == 0
    assert "3 of 3 sets from the cache" in capsys.readouterr().out
    doc2 = json.loads((tmp_path / "b" / "knn.json").read_text())
    assert doc2["cache"]["reused"] == [True] * 3 and doc2["measures"] == doc["measures"]
    # other clip settings are another key: extraction again (here: the patched extractor)
    with pytest.raises(AssertionError, match="extracted again"):
        main(argv + ["--clips", "1", "--out", str(tmp_path / "c")])


def test_knn_every_feature_kind_and_errors(tiny_synth, runs, tmp_path, capsys):
    base = ["--manifest", str(tiny_synth["manifest"]), "--clips", "1", "--workers", "0", "--k", "1",
            "--cache", str(tmp_path / "cache")]
    for feature in ("fs", "fd"):
        pose = ["--pose-cache", str(tiny_synth["poses"])] if feature == "fd" else []
        rc = main(["knn", "--checkpoint", str(runs["pretrain_ckpt"]), "--feature", feature, "--control-seeds", "1",
                   *pose, *base, "--out", str(tmp_path / feature)])
        assert rc == 0
        doc = json.loads((tmp_path / feature / "knn.json").read_text())
        assert doc["feature"] == feature and list(doc["measures"]) == ["knn1_top1"] and "knn1_top1_gain_ci" in doc
    capsys.readouterr()
    # a finetuned checkpoint has no random-init control; without one it is evaluated alone
    rc = main(["knn", "--checkpoint", str(runs["finetune_ckpt"]), "--feature", "fi", "--pose-cache",
               str(tiny_synth["poses"]), *base, "--out", str(tmp_path / "ft")])
    err = capsys.readouterr().err
    assert rc == 2 and "--control-seeds 0" in err and "Traceback" not in err
    rc = main(["knn", "--checkpoint", str(runs["finetune_ckpt"]), "--feature", "fi", "--pose-cache",
               str(tiny_synth["poses"]), "--control-seeds", "0", *base, "--out", str(tmp_path / "ft")])
    doc = json.loads((tmp_path / "ft" / "knn.json").read_text())
    assert rc == 0 and "knn1_top1_ci" in doc and "knn1_top1_gain" not in doc
    # a run folder stands for its latest checkpoint, which the JSON names
    rc = main(["knn", "--checkpoint", str(runs["pretrain"]), "--feature", "fs", "--control-seeds", "0", *base,
               "--out", str(tmp_path / "run")])
    doc = json.loads((tmp_path / "run" / "knn.json").read_text())
    assert rc == 0 and Path(doc["checkpoint"]).resolve() == Path(runs["pretrain_ckpt"]).resolve()
    # fi without poses: one line naming the flag
    rc = main(["knn", "--checkpoint", str(runs["pretrain_ckpt"]), "--feature", "fi", *base, "--out", str(tmp_path / "x")])
    assert rc == 2 and "--pose-cache" in capsys.readouterr().err
