"""``csvr test`` and ``csvr predict`` on a tiny finetuned checkpoint and real encoded videos."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from csvr.cli import main
from csvr.data.datasets import ClipDataset
from csvr.data.index import load_manifest
from csvr.eval.metrics import classification_report

from conftest import pretrain_tiny


def test_top5_and_mean_class_accuracy_by_hand():
    # 2 videos x 1 clip x 6 classes; the video score is the softmax of its single clip
    logits = np.array([[[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]],    # true 5: ranked 6th -> not in the top 5
                       [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]])   # true 1: ranked 5th -> in the top 5
    r = classification_report(logits, np.array([5, 1]), list("abcdef"))
    assert r["video_top1"] == 0.0 and r["video_top5"] == 0.5
    assert r["video_predictions"] == [0, 5]
    assert r["per_class"] == {"a": None, "b": 0.0, "c": None, "d": None, "e": None, "f": 0.0}
    assert r["mean_class_accuracy"] == 0.0
    # classes a (2 of 3 right) and b (1 of 1 right): mean per class 5/6, overall 3/4
    logits = np.eye(2)[[0, 0, 1, 1]][:, None, :] * 3.0
    r = classification_report(logits, np.array([0, 0, 0, 1]), ["a", "b"])
    assert r["video_top1"] == 0.75 and r["per_class"] == {"a": 2 / 3, "b": 1.0}
    assert r["mean_class_accuracy"] == pytest.approx(5 / 6) and r["video_top5"] == 1.0
    assert r["confusion"] == [[2, 1], [0, 1]]


@pytest.fixture(scope="module")
def finetuned(tiny_synth, tmp_path_factory):
    """A tiny CSVR pretraining run, finetuned on feature fi (reads poses): the run folder."""
    base = tmp_path_factory.mktemp("infer")
    ckpt = pretrain_tiny(tiny_synth, base / "pre")["checkpoint"]
    run = base / "ft"
    assert main(["finetune", "--config", "tiny-test", "--pretrained", str(ckpt), f"data.manifest={tiny_synth['manifest']}",
                 f"data.pose_cache={tiny_synth['poses']}", "--out", str(run), "train.threads=1"]) == 0
    return run


def test_test_command_equals_what_finetune_reported(tiny_synth, finetuned, tmp_path, capsys):
    capsys.readouterr()
    assert main(["test", "--checkpoint", str(finetuned), "--out", str(tmp_path / "t")]) == 0
    printed = capsys.readouterr().out
    ft = json.loads((finetuned / "results.json").read_text())
    t = json.loads((tmp_path / "t" / "test.json").read_text())
    for key in ("clip_top1", "video_top1", "video_top5", "mean_class_accuracy", "per_class", "confusion",
                "video_predictions", "video_ids", "num_videos", "clips_per_video"):
        assert t[key] == ft[key], key
    assert t["checkpoint"] == ft["checkpoint"] and t["split"] == "1" and t["subset"] == "test"
    assert f"top-1 {100 * ft['video_top1']:.1f}%" in printed and f"top-5 {100 * ft['video_top5']:.1f}%" in printed
    # per class and confusion by hand, from the manifest's labels and the per-video predictions
    m = load_manifest(tiny_synth["manifest"])
    labels = [m.get(v).label for v in t["video_ids"]]
    want = np.zeros((4, 4), int)
    for y, p in zip(labels, t["video_predictions"]):
        want[y, p] += 1
    assert t["confusion"] == want.tolist()
    for k, c in enumerate(m.classes):
        n = sum(y == k for y in labels)
        assert t["per_class"][c] == (want[k, k] / n if n else None)
    assert t["video_top1"] == pytest.approx(np.trace(want) / len(labels))
    assert t["mean_class_accuracy"] == pytest.approx(np.mean([v for v in t["per_class"].values() if v is not None]))
    with open(tmp_path / "t" / "confusion.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][1:] == m.classes and [[int(x) for x in r[1:]] for r in rows[1:]] == want.tolist()
    # the other subset of the split, with one clip: a different evaluation, said so in the report
    assert main(["test", "--checkpoint", str(finetuned), "--subset", "train", "--clips", "1", "--out",
                 str(tmp_path / "tr")]) == 0
    tr = json.loads((tmp_path / "tr" / "test.json").read_text())
    assert tr["subset"] == "train" and tr["clips_per_video"] == 1 and tr["num_videos"] == len(m.select("1", "train"))


def test_test_command_errors(tiny_synth, finetuned, tmp_path, capsys):
    pre = next((finetuned.parent / "pre" / "checkpoints").glob("step-*.pt"))
    assert main(["test", "--checkpoint", str(pre), "--out", str(tmp_path / "x")]) == 2
    assert "not a finetuned classifier" in capsys.readouterr().err
    assert main(["test", "--checkpoint", str(finetuned), "--split", "7", "--out", str(tmp_path / "x")]) == 2
    assert "split '7'" in capsys.readouterr().err
    assert main(["test", "--checkpoint", str(finetuned), "--manifest", str(tiny_synth["manifest"]),
                 "--out", str(tmp_path / "x")]) == 2  # another manifest: its pose cache must be named
    assert "--pose-cache" in capsys.readouterr().err


def _scores_from_the_manifest(tiny_synth, run, video_id):
    """Independently: the video's mean clip softmax through the evaluation dataset of the manifest."""
    from csvr.eval.finetune import load_classifier, predict
    from csvr.eval.inference import eval_settings, resolve_checkpoint
    from csvr.eval.metrics import video_scores

    classifier, state = load_classifier(resolve_checkpoint(run))
    s = eval_settings(state["config"])
    m = load_manifest(tiny_synth["manifest"])
    ds = ClipDataset(m, [m.get(video_id)], s.clip, mode="eval", num_clips=s.clips, pose_cache=str(tiny_synth["poses"]))
    logits, _, _ = predict(classifier, ds, 1, 0, "cpu")
    return video_scores(logits)[0]


def test_predict_one_video_agrees_with_test(tiny_synth, finetuned, tmp_path, capsys):
    assert main(["test", "--checkpoint", str(finetuned), "--out", str(tmp_path / "t")]) == 0
    t = json.loads((tmp_path / "t" / "test.json").read_text())
    m = load_manifest(tiny_synth["manifest"])
    for vid, pred in list(zip(t["video_ids"], t["video_predictions"]))[:2]:
        video = m.video_path(m.get(vid))
        capsys.readouterr()
        assert main(["predict", str(video), "--checkpoint", str(finetuned), "--top-k", "3",
                     "--poses", str(tiny_synth["poses"] / f"{vid}.npz"), "--json", str(tmp_path / "p.json")]) == 0
        p = json.loads((tmp_path / "p.json").read_text())
        assert len(p["top"]) == 3 and p["top"][0]["index"] == pred
        assert p["top"][0]["class"] in capsys.readouterr().out
        want = _scores_from_the_manifest(tiny_synth, finetuned, vid)
        np.testing.assert_allclose([x["probability"] for x in p["top"]], np.sort(want)[::-1][:3], rtol=1e-6)
        # the same poses imported on the fly from the video's OpenPose JSON files
        json_dir = tiny_synth["root"] / "poses" / "openpose" / vid.split("/")[0]
        assert main(["predict", str(video), "--checkpoint", str(finetuned), "--poses", str(json_dir),
                     "--json", str(tmp_path / "q.json")]) == 0
        q = json.loads((tmp_path / "q.json").read_text())
        assert q["top"][0]["index"] == pred and len(q["top"]) == 4  # top-5 clamped to the 4 classes
        np.testing.assert_allclose(q["top"][0]["probability"], p["top"][0]["probability"], rtol=1e-6)


def test_predict_errors(tiny_synth, finetuned, tmp_path, capsys, monkeypatch):
    m = load_manifest(tiny_synth["manifest"])
    video = m.video_path(m.records[0])
    assert main(["predict", str(tmp_path / "nope.mp4"), "--checkpoint", str(finetuned)]) == 2
    assert "video not found" in capsys.readouterr().err
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert main(["predict", str(tmp_path / "bad.mp4"), "--checkpoint", str(finetuned)]) == 2
    assert "not a readable video" in capsys.readouterr().err
    assert main(["predict", str(video), "--checkpoint", str(finetuned), "--poses", str(tmp_path / "none")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real(name, *a))
    assert main(["predict", str(video), "--checkpoint", str(finetuned)]) == 2
    err = capsys.readouterr().err
    assert "MediaPipe is not installed" in err and "--poses FILE.npz" in err and len(err.strip().splitlines()) == 1
