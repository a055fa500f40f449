"""Retrieval (paper Table VIII): recall_at_k against a hand computation, faiss == torch, tie
order, NaN features, and `csvr retrieve` end to end on the tiny built-in dataset with real
pretrained and finetuned checkpoints, including the bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from csvr.cli import main
from csvr.errors import CsvrError
from csvr.eval.retrieval import FeatureError, nearest_neighbors, recall_at_k, recall_from_neighbors

BACKENDS = ["faiss", "torch"]


# ----------------------------------------------------------------------------- shared tiny runs
def make_eval_runs(base: Path, ds: dict) -> dict[str, Path]:
    """A tiny CSVR pretraining run and a finetuning run (f_i) on it, made once per test session
    (cached under pytest's base temp folder, shared by the evaluation test modules)."""
    from csvr.config import load_config
    from csvr.engine.checkpoint import list_checkpoints
    from csvr.engine.commands import resolve_config_path
    from csvr.engine.config import PretrainConfig
    from csvr.engine.pretrain import pretrain

    pre, ft = base / "pretrain-csvr", base / "finetune-fi"
    if not (pre / "summary.json").is_file():
        cfg = load_config(PretrainConfig, resolve_config_path("tiny-test"),
                          [f"data.manifest={ds['manifest']}", f"data.pose_cache={ds['poses']}", f"out={pre}",
                           "train.threads=1", "train.stages=[{name: pose, epochs: 1, max_steps: 1}, "
                           "{name: context, epochs: 1, max_steps: 1}, {name: video, epochs: 1, max_steps: 1}, "
                           "{name: joint, epochs: 1, max_steps: 2}]"])
        pretrain(cfg)
    ckpt = list_checkpoints(pre)[-1]
    if not (ft / "results.json").is_file():
        rc = main(["finetune", "--config", "tiny-test", "--pretrained", str(ckpt), "--feature", "fi", "--out", str(ft),
                   f"data.manifest={ds['manifest']}", f"data.pose_cache={ds['poses']}", "train.threads=1",
                   "train.stages=[{name: main, epochs: 1}]"])
        assert rc == 0
    return {"pretrain": pre, "pretrain_ckpt": ckpt, "finetune": ft, "finetune_ckpt": list_checkpoints(ft)[-1]}


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return make_eval_runs(tmp_path_factory.getbasetemp() / "eval-runs", tiny_synth)


def untrained_checkpoint(path: Path, method: str, model: dict, ds: dict) -> Path:
    """A real pretraining checkpoint (the format `csvr pretrain` writes) of an untrained method."""
    from csvr.config import from_dict, to_dict
    from csvr.engine.checkpoint import save_checkpoint
    from csvr.engine.config import PretrainConfig
    from csvr.methods import get_method

    cfg = from_dict(PretrainConfig, {"method": method, "model": model, "out": str(path),
                                     "data": {"manifest": str(ds["manifest"]),
                                              "clip": {"frames": 4, "stride": 2, "size": 32, "future_frames": 4,
                                                       "decode_short_side": None}}})
    cls = get_method(method)
    m = cls(from_dict(cls.config_class, cfg.model, where="model"))
    state = {"kind": "pretrain", "method": method, "config": to_dict(cfg), "stage": "main", "stage_index": 0,
             "epoch": 0, "step_in_epoch": 0, "stage_step": 0, "global_step": 0, "model": m.state_dict()}
    return save_checkpoint(state, path, 0, keep_last=1)


# ----------------------------------------------------------------------------- recall_at_k by hand
# Gallery (after L2 normalisation): g0 = g2 = [1, 0] (an exact tie), g1 = [0, 1], g3 = [-1, 0],
# g4 = [1, 1] / sqrt 2; labels 1, 0, 0, 0, 2.
GALLERY = np.array([[1, 0], [0, 2], [3, 0], [-1, 0], [1, 1]], dtype=np.float32)
GALLERY_LABELS = np.array([1, 0, 0, 0, 2])
QUERIES = np.array([[2, 0], [0, 1], [0, -1], [-1, -1], [1, 0.1]], dtype=np.float32)
QUERY_LABELS = np.array([0, 2, 0, 3, 1])
# cosine rankings worked out by hand (ties -> lower gallery index first):
#   q0 [1,0]:   g0 = g2 = 1 > g4 = .71 > g1 = 0 > g3 = -1        -> 0 2 4 1 3, first hit (label 0) at rank 2
#   q1 [0,1]:   g1 = 1 > g4 = .71 > g0 = g2 = g3 = 0              -> 1 4 0 2 3, first hit (label 2) at rank 2
#   q2 [0,-1]:  g0 = g2 = g3 = 0 > g4 = -.71 > g1 = -1            -> 0 2 3 4 1, first hit (label 0) at rank 2
#   q3:         label 3 is not in the gallery                                          -> never a hit
#   q4 [1,.1]:  g0 = g2 = .995 > g4 = .77 > g1 = .0995 > g3 = -.995 -> 0 2 4 1 3, hit (label 1) at rank 1
HAND_ORDER = [[0, 2, 4, 1, 3], [1, 4, 0, 2, 3], [0, 2, 3, 4, 1], None, [0, 2, 4, 1, 3]]
# R@1 = 1/5 (q4); R@2 = R@3 = 4/5; R@10 is clamped to the 5 gallery videos: still 4/5 (q3 never).
# Breaking ties towards the higher index instead would give R@1 = 2/5 (q0 via g2, q2 via g3, not q4).
HAND_RECALL = {1: 0.2, 2: 0.8, 3: 0.8, 10: 0.8}


@pytest.mark.parametrize("backend", BACKENDS)
def test_recall_at_k_matches_the_hand_computation(backend):
    got = recall_at_k(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(1, 2, 3, 10), backend=backend)
    assert got == pytest.approx(HAND_RECALL, abs=1e-12)
    nb = nearest_neighbors(QUERIES, GALLERY, k=10, backend=backend)
    assert nb.indices.shape == (5, 5)  # k = 10 clamped to the gallery
    for q, order in enumerate(HAND_ORDER):
        if order is not None:
            assert nb.indices[q].tolist() == order, q
    np.testing.assert_allclose(nb.scores[0], [1, 1, 2 ** -0.5, 0, -1], atol=1e-12)
    # torch tensors are accepted as well, and a query whose class is missing is never a hit
    assert recall_at_k(torch.from_numpy(QUERIES), QUERY_LABELS, torch.from_numpy(GALLERY), GALLERY_LABELS,
                       ks=(50,), backend=backend) == {50: 0.8}


def test_faiss_and_torch_identical_on_random_features_with_ties():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((600, 64)).astype(np.float32)
    gallery = np.concatenate([base, base[:200], base[100:300] * 3.0])   # exact duplicates (ties) at 3 scales
    labels = rng.integers(0, 20, len(gallery))
    queries = np.concatenate([base[::7], rng.standard_normal((150, 64)).astype(np.float32)])
    qlabels = rng.integers(0, 20, len(queries))
    a = nearest_neighbors(queries, gallery, 50, "faiss")
    b = nearest_neighbors(queries, gallery, 50, "torch")
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)
    # documented order: non-increasing scores, ties in increasing gallery index
    s, i = a.scores, a.indices
    assert (np.diff(s, axis=1) <= 0).all()
    tie = np.diff(s, axis=1) == 0
    assert tie.any() and (np.diff(i, axis=1)[tie] > 0).all()
    ks = (1, 5, 10, 20, 50)
    ra = recall_at_k(queries, qlabels, gallery, labels, ks, backend="faiss")
    assert ra == recall_at_k(queries, qlabels, gallery, labels, ks, backend="torch")
    assert ra == recall_from_neighbors(i, qlabels, labels, ks)
    assert 0 < ra[1] < ra[50] < 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_beyond_the_candidate_margin_fall_back_to_an_exact_ranking(backend):
    """100 identical gallery rows tie for the top: the engine's candidates are an arbitrary subset
    of them, so the whole gallery is ranked exactly and the lowest indices win."""
    rng = np.random.default_rng(1)
    gallery = rng.standard_normal((400, 16))
    same = rng.permutation(400)[:100]
    gallery[same] = gallery[same[0]]
    nb = nearest_neighbors(gallery[same[:1]], gallery, 5, backend)
    assert nb.indices[0].tolist() == sorted(same)[:5]
    assert nb.exact_fallbacks == 1


def test_nan_features_and_bad_shapes_are_clear_errors():
    g = GALLERY.copy()
    g[3, 1] = np.nan
    with pytest.raises(FeatureError, match=r"gallery features contain NaN or inf in 1 of 5 rows \(first: row 3\)"):
        recall_at_k(QUERIES, QUERY_LABELS, g, GALLERY_LABELS)
    assert issubclass(FeatureError, CsvrError) and issubclass(FeatureError, ValueError)
    q = QUERIES.copy()
    q[0, 0] = np.inf
    with pytest.raises(FeatureError, match="query features"):
        nearest_neighbors(q, GALLERY, 2)
    with pytest.raises(FeatureError, match="dimension 3"):
        nearest_neighbors(np.ones((2, 3)), GALLERY, 2)
    with pytest.raises(FeatureError, match="labels"):
        recall_at_k(QUERIES, QUERY_LABELS[:3], GALLERY, GALLERY_LABELS)
    with pytest.raises(FeatureError, match="positive integer"):
        recall_at_k(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(0, 5))


# ----------------------------------------------------------------------------- csvr retrieve
def test_retrieve_cli_end_to_end_pretrained_and_finetuned(tiny_synth, runs, tmp_path, capsys):
    from csvr.data.index import load_manifest

    out = tmp_path / "ret"
    rc = main(["retrieve", "--checkpoint", str(runs["pretrain_ckpt"]), "--feature", "fi", "--manifest",
               str(tiny_synth["manifest"]), "--pose-cache", str(tiny_synth["poses"]), "--workers", "0",
               "--save-features", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "R@1" in printed and "8 test videos query 8 training videos, 10 clips" in printed
    r = json.loads((out / "retrieval.json").read_text())
    m = load_manifest(tiny_synth["manifest"])
    assert r["query_ids"] == [x.id for x in m.select("1", "test")]
    assert r["gallery_ids"] == [x.id for x in m.select("1", "train")]
    assert r["num_queries"] == 8 and r["num_gallery"] == 8 and r["feature"] == "fi" and r["method"] == "csvr"
    assert r["protocol"]["clips_per_video"] == 10 and r["clip"]["frames"] == 4  # the checkpoint's clip settings
    assert np.asarray(r["neighbors"]).shape == (8, 8)  # top-50 clamped to the 8 training videos
    recall = {int(k): v for k, v in r["recall"].items()}
    assert sorted(recall) == [1, 5, 10, 20, 50]
    # the stored recall follows from the stored neighbours and labels, and from the saved features
    assert recall == recall_from_neighbors(r["neighbors"], r["query_labels"], r["gallery_labels"], list(recall))
    f = np.load(out / "features.npz")
    assert f["query"].shape == (8, 16)
    assert recall == recall_at_k(f["query"], f["query_labels"], f["gallery"], f["gallery_labels"], list(recall),
                                 backend="torch")
    # every class is in the gallery: with k >= 8 every query is a hit
    assert recall[10] == recall[50] == 1.0 and recall[1] <= recall[5] <= 1.0

    # a finetuned checkpoint: its classifier's encoder (f_i) is used
    out2 = tmp_path / "ret-ft"
    rc = main(["retrieve", "--checkpoint", str(runs["finetune_ckpt"]), "--manifest", str(tiny_synth["manifest"]),
               "--pose-cache", str(tiny_synth["poses"]), "--workers", "0", "--clips", "2", "--ks", "1,3",
               "--out", str(out2)])
    assert rc == 0
    r2 = json.loads((out2 / "retrieval.json").read_text())
    assert r2["checkpoint_kind"] == "finetune" and r2["feature"] == "fi" and sorted(r2["recall"]) == ["1", "3"]
    assert r2["neighbor_scores"] != r["neighbor_scores"]

    # the same architecture with random weights (the no-pretraining baseline)
    out3 = tmp_path / "ret-rand"
    rc = main(["retrieve", "--checkpoint", str(runs["pretrain_ckpt"]), "--feature", "fs", "--random-init",
               "--manifest", str(tiny_synth["manifest"]), "--workers", "0", "--clips", "2", "--out", str(out3)])
    assert rc == 0
    assert json.loads((out3 / "retrieval.json").read_text())["init"] == "random"


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_retrieve_bad_inputs_say_what_does_not_match(tiny_synth, runs, tmp_path, capsys):
    base = ["--manifest", str(tiny_synth["manifest"]), "--workers", "0", "--clips", "1"]
    out = tmp_path / "out"

    # a checkpoint of another method than the feature needs
    iic = untrained_checkpoint(tmp_path / "iic", "iic", {"backbone": {"name": "r3d_18", "width": 4,
                                                                       "layers": [1, 1, 1, 1]}}, tiny_synth)
    assert main(["retrieve", "--checkpoint", str(iic), "--feature", "fi", *base, "--out", str(out)]) == 2
    assert "is a 'iic' pretraining checkpoint; its encoder features are backbone, not 'fi'" in _err(capsys)

    # f_i needs poses
    assert main(["retrieve", "--checkpoint", str(runs["pretrain_ckpt"]), "--feature", "fi", *base,
                 "--out", str(out)]) == 2
    assert "feature 'fi' needs poses: pass --pose-cache" in _err(capsys)
    assert main(["retrieve", "--checkpoint", str(runs["pretrain_ckpt"]), "--feature", "fd", *base,
                 "--pose-cache", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "--pose-cache" in (msg := _err(capsys)) and "no pose cache (nothing there)" in msg

    # a finetuned checkpoint asked for another feature than it was trained on
    assert main(["retrieve", "--checkpoint", str(runs["finetune_ckpt"]), "--feature", "fs", *base,
                 "--out", str(out)]) == 2
    assert "was finetuned on feature 'fi'; --feature fs does not match" in _err(capsys)

    # a dataset whose classes differ from the finetuned head
    lines = Path(tiny_synth["manifest"]).read_text().splitlines()
    header = json.loads(lines[0])
    header["classes"] = [c if c != "Walk" else "Jump" for c in header["classes"]]
    header["root"] = str(Path(tiny_synth["manifest"]).parent)
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    assert main(["retrieve", "--checkpoint", str(runs["finetune_ckpt"]), "--manifest", str(other), "--pose-cache",
                 str(tiny_synth["poses"]), "--workers", "0", "--out", str(out)]) == 2
    msg = _err(capsys)
    assert "differ from those of" in msg and "head only: Walk" in msg and "dataset only: Jump" in msg

    # non-finite features: a checkpoint whose weights hold NaN
    state = torch.load(runs["pretrain_ckpt"], weights_only=True)
    key = next(k for k in state["model"] if k.startswith("model.v_network.stem.0"))
    state["model"][key] = torch.full_like(state["model"][key], float("nan"))
    bad = tmp_path / "nan.pt"
    torch.save(state, bad)
    assert main(["retrieve", "--checkpoint", str(bad), "--feature", "fs", *base, "--out", str(out)]) == 2
    assert "non-finite features" in _err(capsys)

    # not a checkpoint at all
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["retrieve", "--checkpoint", str(junk), *base, "--out", str(out)]) == 2
    assert "is not a csvr checkpoint: not a PyTorch file" in (msg := _err(capsys)) and "weights_only" not in msg
    assert not out.exists()  # nothing written by any of the failures
