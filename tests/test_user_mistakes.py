"""Issue 14 items 1, 6 and 7: what a new user's mistakes and odd inputs must produce (one clear
line, a warning that names the videos, or the right behaviour), never a silent wrong run."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from csvr.cli import main
from csvr.data.index import load_manifest
from csvr.engine.checkpoint import list_checkpoints


def _one_line_error(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("csvr: error")]
    assert len(err) == 1, err
    return err[0]


def _pretrain(ds, out, *extra) -> int:
    return main(["pretrain", "--config", "tiny-test", f"data.manifest={ds['manifest']}", f"out={out}",
                 "train.threads=1", *extra])


# ----------------------------------------------------------------------------- item 1: pose cache
def test_pretrain_with_a_pose_cache_that_is_not_there_stops_before_training(tiny_synth, tmp_path, capsys):
    rc = _pretrain(tiny_synth, tmp_path / "a", f"data.pose_cache={tmp_path / 'nope'}")
    line = _one_line_error(capsys)
    assert rc == 2 and "data.pose_cache" in line and "nothing there" in line
    assert not list_checkpoints(tmp_path / "a")  # no step was run
    (tmp_path / "empty").mkdir()
    rc = _pretrain(tiny_synth, tmp_path / "b", f"data.pose_cache={tmp_path / 'empty'}")
    n_train = len(load_manifest(tiny_synth["manifest"]).select("1", "train"))
    line = _one_line_error(capsys)
    assert rc == 2 and "data.pose_cache" in line and f"none of the {n_train} training videos" in line
    assert "found 0 cache file(s)" in line and not list_checkpoints(tmp_path / "b")


def test_partial_pose_cache_is_warned_and_counted_in_the_summary(tiny_synth, tmp_path, capsys, caplog):
    cache = tmp_path / "poses"
    shutil.copytree(tiny_synth["poses"], cache)
    train = load_manifest(tiny_synth["manifest"]).select("1", "train")
    dropped = sorted(r.id for r in train[:3])
    for vid in dropped:
        (cache / f"{vid}.npz").unlink()
    with caplog.at_level(logging.WARNING):
        assert _pretrain(tiny_synth, tmp_path / "run", f"data.pose_cache={cache}") == 0
    warned = [r.getMessage() for r in caplog.records if "have no poses" in r.getMessage()]
    assert len(warned) == 1 and f"3 of {len(train)} training videos" in warned[0]
    assert all(vid in warned[0] for vid in dropped)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["videos"] == len(train) and summary["videos_with_poses"] == len(train) - 3
    assert f"poses: {len(train) - 3} of {len(train)} training videos have poses" in capsys.readouterr().out


def test_finetune_fi_with_a_wrong_pose_cache_stops_before_training(tiny_synth, tmp_path, capsys):
    ckpt_run = tmp_path / "pre"
    assert _pretrain(tiny_synth, ckpt_run, f"data.pose_cache={tiny_synth['poses']}", "train.stages=[{name: pose, "
                     "max_steps: 1}]") == 0
    capsys.readouterr()
    rc = main(["finetune", "--config", "tiny-test", "--pretrained", str(list_checkpoints(ckpt_run)[-1]),
               "--feature", "fi", f"data.manifest={tiny_synth['manifest']}", f"data.pose_cache={tmp_path / 'nope'}",
               "--out", str(tmp_path / "ft"), "train.threads=1"])
    line = _one_line_error(capsys)
    assert rc == 2 and "data.pose_cache" in line and not list_checkpoints(tmp_path / "ft")


# ----------------------------------------------------------------------------- item 6: empty splits
def test_test_ratio_is_assigned_over_readable_videos(tmp_path, clip_bytes):
    from csvr.data.index import build_index
    from csvr.data.layouts.folder import ratio_test_paths

    root = tmp_path / "ds"
    names = {c: [f"{c}/{k}.avi" for k in range(3)] for c in ("a", "b")}
    for c, paths in names.items():
        (root / c).mkdir(parents=True)
        # the video the ratio picks for the test split over all files is the unreadable one
        (bad,) = ratio_test_paths(paths, 0.34)
        for p in paths:
            (root / p).write_bytes(clip_bytes["junk"] if p == bad else clip_bytes["a"])
    s = build_index(root, tmp_path / "m.jsonl", layout="folder", test_ratio=0.34, workers=1)
    m = load_manifest(tmp_path / "m.jsonl")
    assert s.indexed == 4 and len(s.bad) == 2
    for c in ("a", "b"):  # round(0.34 x 2 readable) = 1 test video per class, a readable one
        assert sum(r.splits["1"] == "test" for r in m.records if r.class_name == c) == 1
        assert sum(r.splits["1"] == "train" for r in m.records if r.class_name == c) == 1
    assert s.empty == [] and not any(ln.startswith("warning") for ln in s.lines())


def test_index_warns_about_splits_and_classes_left_empty(tmp_path, clip_bytes, capsys):
    root = tmp_path / "ds"
    for c, files in {"a": ["a", "a"], "b": ["a", "junk"], "c": ["junk", "junk"]}.items():
        (root / c).mkdir(parents=True)
        for k, kind in enumerate(files):
            (root / c / f"{k}.avi").write_bytes(clip_bytes[kind])
    # 0.3 of 2 readable videos rounds to 1 test video in a, 0 in b (1 readable), none in c
    assert main(["prepare", "index", str(root), "--layout", "folder", "--test-ratio", "0.3", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    warning = [ln for ln in out.splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1, out
    assert "in 2 selection(s): class b in split 1 test; class c." in warning[0]
    assert "class a" not in warning[0] and "split 1 train" not in warning[0]


def _manifest_without_test(ds, out: Path) -> Path:
    from csvr.data.index import write_manifest

    m = load_manifest(ds["manifest"])
    for r in m.all_records:
        r.splits = {"1": "train"}
    header = {**m.header, "root": str(m.root)}
    write_manifest(out, header, m.all_records)
    return out


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_synth, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("pre") / "run"
    assert _pretrain(tiny_synth, run, f"data.pose_cache={tiny_synth['poses']}",
                     "train.stages=[{name: pose, max_steps: 1}, {name: context, max_steps: 1}]") == 0
    return list_checkpoints(run)[-1]


def test_finetune_and_retrieve_refuse_an_empty_test_split_before_training(tiny_synth, tiny_ckpt, tmp_path, capsys):
    manifest = _manifest_without_test(tiny_synth, tmp_path / "notest.jsonl")
    for cmd in ("finetune", "linear-probe"):
        rc = main([cmd, "--config", "tiny-test", "--pretrained", str(tiny_ckpt), "--feature", "fs",
                   f"data.manifest={manifest}", "--out", str(tmp_path / cmd), "train.threads=1"])
        line = _one_line_error(capsys)
        assert rc == 2 and f"the test part of split 1 of {manifest}" in line and "eval.split" in line
        assert not list_checkpoints(tmp_path / cmd)
    rc = main(["retrieve", "--checkpoint", str(tiny_ckpt), "--feature", "fs", "--manifest", str(manifest),
               "--out", str(tmp_path / "r"), "--workers", "0"])
    line = _one_line_error(capsys)
    assert rc == 2 and "the test part of split 1" in line and "--split" in line


# ----------------------------------------------------------------------------- item 7: messages
def test_malformed_yaml_override_is_one_line_naming_it(capsys):
    rc = main(["pretrain", "--config", "tiny-test", "train.stages=[{name: joint"])
    line = _one_line_error(capsys)
    assert rc == 2 and "override 'train.stages=[{name: joint'" in line and "not valid YAML" in line
    assert "Traceback" not in capsys.readouterr().err


def _not_checkpoints(d: Path) -> dict[str, str]:
    """Files that are not csvr checkpoints, and what the message must say about each."""
    import fractions
    import zipfile

    import torch

    d.mkdir(parents=True, exist_ok=True)
    (d / "random.pt").write_bytes(np.random.default_rng(0).bytes(3000))
    (d / "config.yaml").write_text("method: csvr\ntrain: {batch_size: 4}\n")
    with zipfile.ZipFile(d / "other.zip", "w") as z:
        z.writestr("a.txt", "hello")
    torch.save({"x": fractions.Fraction(1, 3)}, d / "objects.pt")
    torch.save(torch.nn.Linear(2, 2).state_dict(), d / "state_dict.pt")
    torch.save({"format": "csvr-checkpoint", "version": 1, "kind": "pretrain", "config": {"method": "csvr"},
                "model": [1, 2]}, d / "odd.pt")
    torch.save({"format": "csvr-checkpoint", "version": 1, "kind": 101, "config": {}, "model": {}}, d / "odd2.pt")
    return {"random.pt": "not a PyTorch file", "config.yaml": "not a PyTorch file",
            "other.zip": "not a PyTorch checkpoint", "objects.pt": "Python objects other than tensors",
            "state_dict.pt": "without the csvr format tag", "odd.pt": "unexpected structure ('model' is of type list)",
            "odd2.pt": "unexpected structure ('kind' is of type int)"}


def test_files_that_are_not_checkpoints_are_one_line_without_unsafe_advice(tiny_synth, tmp_path, capsys):
    for name, says in _not_checkpoints(tmp_path / "files").items():
        path = tmp_path / "files" / name
        for argv in (["export", "--checkpoint", str(path), "--out", str(tmp_path / "x")],
                     ["finetune", "--config", "tiny-test", "--pretrained", str(path), "--feature", "fs",
                      f"data.manifest={tiny_synth['manifest']}", "--out", str(tmp_path / "ft")]):
            rc = main(argv)
            err = capsys.readouterr().err
            lines = err.strip().splitlines()
            assert rc == 2 and len(lines) == 1, (name, err)
            assert f"{path} is not a csvr checkpoint" in lines[0] and says in lines[0], (name, lines[0])
            assert "weights_only" not in err and "KeyError" not in err


def test_a_run_folder_as_checkpoint_means_its_latest_checkpoint(tiny_synth, tiny_ckpt, tmp_path, capsys, caplog):
    from csvr.eval.loading import load_model

    run = tiny_ckpt.parent.parent
    with caplog.at_level(logging.INFO):
        model = load_model(run)
    assert model.kind == "pretrain" and model.path == str(tiny_ckpt)
    assert any(f"using its latest checkpoint, {tiny_ckpt}" in r.getMessage() for r in caplog.records)
    assert load_model(run / "checkpoints").path == str(tiny_ckpt)
    rc = main(["retrieve", "--checkpoint", str(run), "--feature", "fs", "--manifest", str(tiny_synth["manifest"]),
               "--out", str(tmp_path / "r"), "--workers", "0", "--clips", "1", "--ks", "1"])
    assert rc == 0 and (tmp_path / "r" / "retrieval.json").is_file()
    assert json.loads((tmp_path / "r" / "retrieval.json").read_text())["checkpoint"] == str(tiny_ckpt)
    rc = main(["finetune", "--config", "tiny-test", "--pretrained", str(run), "--feature", "fs",
               f"data.manifest={tiny_synth['manifest']}", "--out", str(tmp_path / "ft"), "train.threads=1",
               "train.stages=[{name: main, max_steps: 1}]", "eval.clips=1"])
    assert rc == 0 and json.loads((tmp_path / "ft" / "results.json").read_text())["pretrained"] == str(tiny_ckpt)
    (tmp_path / "empty").mkdir()
    assert main(["export", "--checkpoint", str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == 2
    assert "is a folder without checkpoints" in _one_line_error(capsys)


def test_short_videos_are_named(tmp_path, clip_bytes):
    from csvr.data.index import build_index

    root = tmp_path / "ds"
    (root / "a").mkdir(parents=True)
    for k in range(7):
        (root / "a" / f"s{k}.avi").write_bytes(clip_bytes["short"])
    (root / "a" / "long.avi").write_bytes(clip_bytes["a"])
    s = build_index(root, tmp_path / "m.jsonl", layout="folder", workers=1, clip_span=20)
    line = next(ln for ln in s.lines() if "shorter than one clip span" in ln)
    assert line.startswith("7 video(s) shorter than one clip span (a/s0.avi, a/s1.avi, a/s2.avi, a/s3.avi, "
                           "a/s4.avi and 2 more)")


def _parsers():
    import argparse

    from csvr.cli import build_parser

    def walk(p, name):
        yield name, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for n, sp in a.choices.items():
                    yield from walk(sp, f"{name} {n}")

    return list(walk(build_parser(), "csvr"))


def test_help_shows_each_default_once_and_every_option_has_help():
    for name, p in _parsers():
        text = p.format_help()  # every --help renders (a stray '%' in a help text breaks it)
        assert "(default: None)" not in text, name
        fmt = p.formatter_class(prog=p.prog)
        for a in p._actions:
            if not a.option_strings or a.help == "==SUPPRESS==" or "-h" in a.option_strings:
                continue
            assert a.help, f"{name} {a.option_strings[0]} has no help text"
            if fmt._get_help_string(a) != a.help:  # the formatter appends the default: the text must not
                assert "default" not in a.help.lower(), f"{name} {a.option_strings[0]}: default shown twice"
    reencode = dict(_parsers())["csvr prepare reencode"].format_help()
    assert "--codec" in reencode and "default mpeg4" in reencode and "parallel encoder processes" in reencode


def test_overriding_stages_keeps_the_preset_epochs(caplog):
    from csvr.config import load_config
    from csvr.engine.commands import resolve_config_path
    from csvr.engine.config import PretrainConfig

    preset = load_config(PretrainConfig, resolve_config_path("small-cpu"))
    joint = next(s for s in preset.train.stages if s.name == "joint")
    assert joint.epochs > 1  # the case of the issue: a preset with more than the default 1 epoch
    with caplog.at_level(logging.INFO):
        cfg = load_config(PretrainConfig, resolve_config_path("small-cpu"),
                          ["train.stages=[{name: joint}, {name: pose, max_steps: 5}]"])
    got = {s.name: (s.epochs, s.max_steps) for s in cfg.train.stages}
    pose = next(s for s in preset.train.stages if s.name == "pose")
    assert got == {"joint": (joint.epochs, joint.max_steps), "pose": (pose.epochs, 5)}
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"'joint' keeps the config file's epochs={joint.epochs}, max_steps={joint.max_steps}" in said


def test_video_whose_packets_all_have_timestamp_zero_is_refused_and_reported(tmp_path, clip_bytes):
    """The issue's file was indexed as 1 frame at 6900 fps; made here by remuxing real packets
    into MP4 with pts = dts = 0 (MP4 then reports 750 fps for 30 frames)."""
    import av

    from csvr.data.index import build_index
    from csvr.data.video import probe
    from csvr.errors import VideoError

    src = tmp_path / "src.avi"
    src.write_bytes(clip_bytes["a"])
    root = tmp_path / "ds"
    (root / "a").mkdir(parents=True)
    bad = root / "a" / "zero.mp4"
    with av.open(str(src)) as i, av.open(str(bad), "w") as o:
        s = i.streams.video[0]
        out = o.add_stream_from_template(s)
        n = 0
        for packet in i.demux(s):
            if packet.size:
                packet.pts = packet.dts = 0
                packet.stream = out
                o.mux(packet)
                n += 1
    with av.open(str(bad)) as c:
        assert {p.pts for p in c.demux(c.streams.video[0]) if p.size} == {0}  # really degenerate
    with pytest.raises(VideoError, match=f"degenerate timestamps: its {n} video packets carry only 1 distinct"):
        probe(bad)
    (root / "a" / "good.avi").write_bytes(clip_bytes["a"])
    s = build_index(root, tmp_path / "m.jsonl", layout="folder", workers=1)
    assert s.indexed == 1 and [p for p, _ in s.bad] == ["a/zero.mp4"]
    assert any("bad: a/zero.mp4: degenerate timestamps" in ln for ln in s.lines())
