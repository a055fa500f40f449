"""Issue 14 item 2: one rule for paths in manifests / split files, followed by every command.

The path *as written* (lexically normalised) must stay inside the dataset root; where a symlink
inside the root points is the user's business. A dataset assembled from symlinks therefore
indexes, gets poses and loads with no flag; a path that escapes lexically (``../x``) is refused
with advice naming the option the command has (``--allow-outside-root`` or
``data.allow_outside_root=true``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from csvr.cli import main
from csvr.data.datasets import ClipConfig, PretrainDataset
from csvr.data.index import load_manifest
from csvr.errors import CsvrError
from csvr.utils.io import resolve_inside

CLIP = ClipConfig(frames=4, stride=2, future_frames=4, size=32, decode_short_side=None, max_iframes=2,
                  crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_prob=0.0)


@pytest.fixture(scope="module")
def linked(tiny_synth, tmp_path_factory) -> Path:
    """The tiny synthetic dataset re-assembled from symlinks in another folder: two class folders
    of file symlinks, two class folders that are directory symlinks, the split files linked too."""
    src = tiny_synth["root"]
    root = tmp_path_factory.mktemp("linked") / "ds"
    root.mkdir()
    classes = sorted(p.name for p in src.iterdir() if p.is_dir() and p.name not in ("poses", "poses_cache"))
    assert len(classes) == 4
    for i, cls in enumerate(classes):
        if i % 2:
            os.symlink(src / cls, root / cls, target_is_directory=True)
        else:
            (root / cls).mkdir()
            for v in sorted((src / cls).iterdir()):
                os.symlink(v, root / cls / v.name)
    for f in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        os.symlink(src / f, root / f)
    return root


def test_lexical_rule(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    target = tmp_path / "elsewhere.mp4"
    target.write_bytes(b"x")
    os.symlink(target, root / "a" / "v.mp4")
    # a symlink inside the root may point anywhere: the path as written is inside
    assert resolve_inside(root, "a/v.mp4") == root / "a" / "v.mp4"  # the path as written, not the target
    assert resolve_inside(root, "a/./b/../v.mp4") == root / "a" / "v.mp4"
    for bad in ("../elsewhere.mp4", "a/../../elsewhere.mp4", str(target)):
        with pytest.raises(CsvrError, match="outside the dataset root"):
            resolve_inside(root, bad)
    assert resolve_inside(root, "../elsewhere.mp4", allow_outside=True) == target
    # an absolute path written inside the root is inside
    assert resolve_inside(root, str(root / "a" / "v.mp4")) == root / "a" / "v.mp4"


def test_symlinked_dataset_indexes_gets_poses_and_loads(linked, tiny_synth, tmp_path, capsys):
    manifest = tmp_path / "manifest.jsonl"
    assert main(["prepare", "index", str(linked), "--out", str(manifest), "--workers", "1"]) == 0
    m = load_manifest(manifest)
    orig = load_manifest(tiny_synth["manifest"])
    assert len(m.records) == len(orig.records) == 16 and not m.errors
    assert [(r.id, r.label, r.splits) for r in m.records] == [(r.id, r.label, r.splits) for r in orig.records]
    poses = tmp_path / "poses"
    capsys.readouterr()
    rc = main(["prepare", "poses", "--manifest", str(manifest), "--out", str(poses), "--source", "openpose-json",
               "--json-dir", str(tiny_synth["root"] / "poses" / "openpose"), "--workers", "1"])
    assert rc == 0, capsys.readouterr()
    assert sorted(p.relative_to(poses).as_posix() for p in poses.rglob("*.npz")) == \
        sorted(p.relative_to(tiny_synth["poses"]).as_posix() for p in tiny_synth["poses"].rglob("*.npz"))
    # the dataset reads the same frames and poses through the links as from the originals
    a = PretrainDataset(m, m.records[:3], CLIP, seed=0, pose_cache=str(poses))
    b = PretrainDataset(orig, orig.records[:3], CLIP, seed=0, pose_cache=str(tiny_synth["poses"]))
    for i in range(3):
        sa, sb = a[i], b[i]
        assert sa["clip"].shape == (4, 32, 32, 3)
        assert np.array_equal(sa["clip"].numpy(), sb["clip"].numpy())
        assert np.array_equal(sa["poses"].numpy(), sb["poses"].numpy())
        assert bool(sa["pose_valid"]) and bool(sb["pose_valid"])


def test_folder_layout_follows_symlinked_folders(tiny_synth, tmp_path):
    """Folder per class and --unlabelled find videos behind symlinked folders at any depth (a loop
    back to the root is walked once)."""
    src = tiny_synth["root"]
    root = tmp_path / "folder"
    (root / "run" / "more").mkdir(parents=True)
    os.symlink(src / "Run", root / "run" / "linked", target_is_directory=True)
    os.symlink(src / "Walk" / "v_Walk_g01_c01.mp4", root / "run" / "more" / "w.mp4")
    os.symlink(src / "Walk", root / "walk", target_is_directory=True)
    os.symlink(root, root / "run" / "loop", target_is_directory=True)
    assert main(["prepare", "index", str(root), "--out", str(tmp_path / "f.jsonl"), "--layout", "folder",
                 "--workers", "1"]) == 0
    m = load_manifest(tmp_path / "f.jsonl")
    by_class = {c: sorted(r.path for r in m.records if r.class_name == c) for c in m.classes}
    assert m.classes == ["run", "walk"]
    assert len(by_class["walk"]) == 4 and all(p.startswith("walk/v_Walk_") for p in by_class["walk"])
    assert by_class["run"] == sorted(["run/more/w.mp4", *(f"run/linked/{p.name}" for p in (src / "Run").iterdir())])
    assert main(["prepare", "index", str(root), "--out", str(tmp_path / "u.jsonl"), "--layout", "folder",
                 "--unlabelled", "--workers", "1"]) == 0
    assert len(load_manifest(tmp_path / "u.jsonl").records) == 9


@pytest.fixture
def escaping(tiny_synth, tmp_path) -> Path:
    """A copy of the tiny manifest whose first video is a copy outside the root, written as
    ``../../...``: the file exists, but the path as written leaves the root."""
    src = tiny_synth["manifest"]
    lines = src.read_text().splitlines()
    header = json.loads(lines[0])
    header["root"] = str(tiny_synth["root"])
    rec = json.loads(lines[1])
    outside = tmp_path / "outside.mp4"
    shutil.copy2(tiny_synth["root"] / rec["path"], outside)  # with its mtime: the record's, so it is not stale
    rec["path"] = os.path.relpath(outside, tiny_synth["root"])
    assert rec["path"].startswith("../")
    out = tmp_path / "escaping.jsonl"
    out.write_text("\n".join([json.dumps(header), json.dumps(rec), *lines[2:]]) + "\n")
    return out


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("csvr: error:")]
    assert len(lines) == 1, err
    assert "outside the dataset root" in lines[0]
    return lines[0]


def test_escaping_path_refused_with_the_commands_own_option(escaping, tiny_synth, tmp_path, capsys):
    poses = tmp_path / "poses"
    args = ["prepare", "poses", "--manifest", str(escaping), "--out", str(poses), "--source", "openpose-json",
            "--json-dir", str(tiny_synth["root"] / "poses" / "openpose"), "--workers", "1"]
    capsys.readouterr()
    assert main(args) == 2
    assert "pass --allow-outside-root" in _error(capsys)
    assert main([*args, "--allow-outside-root"]) == 0  # the advised flag exists and works
    assert len(list(poses.rglob("*.npz"))) == 16

    assert main(["pretrain", "--config", "tiny-test", f"data.manifest={escaping}",
                 f"data.pose_cache={tiny_synth['poses']}", f"out={tmp_path / 'run'}"]) == 2
    msg = _error(capsys)
    assert "data.allow_outside_root=true" in msg and "--allow-outside-root" not in msg
    # re-encoding writes each video at its own path under --out, so it takes no such paths (and
    # advises no option it does not have)
    assert main(["prepare", "reencode", "--manifest", str(escaping), "--out", str(tmp_path / "re")]) == 2
    msg = _error(capsys)
    assert "must stay inside the root" in msg and "allow" not in msg


def test_retrieve_refuses_before_any_loader(escaping, tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", "--config", "tiny-test", f"data.manifest={tiny_synth['manifest']}", f"out={run}",
                 f"data.pose_cache={tiny_synth['poses']}", "train.threads=1",
                 "train.stages=[{name: joint, epochs: 1, max_steps: 1}]"]) == 0
    ckpt = sorted((run / "checkpoints").glob("*.pt"))[-1]
    capsys.readouterr()
    args = ["retrieve", "--checkpoint", str(ckpt), "--manifest", str(escaping), "--out", str(tmp_path / "r"),
            "--feature", "fs", "--workers", "2", "--clips", "1", "--device", "cpu"]
    assert main(args) == 2
    assert "pass --allow-outside-root" in _error(capsys)
    # allowed, it runs (in-process loading here: the refusal above is what needs the workers)
    assert main([*[a if a != "2" else "0" for a in args], "--allow-outside-root"]) == 0
    doc = json.loads((tmp_path / "r" / "retrieval.json").read_text())
    assert doc["num_queries"] + doc["num_gallery"] == 16


def test_every_command_that_reads_a_manifest_has_the_option_its_advice_names():
    """The refusal's advice (csvr.cli.outside_root_advice) names --allow-outside-root or
    data.allow_outside_root=true: every command that reads a manifest must have that option."""
    import argparse

    from csvr.cli import build_parser, outside_root_advice

    def commands(parser, path=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from commands(sub, path + (name,))
        if path:
            yield path, parser

    checked = []
    for path, parser in commands(build_parser()):
        dests = {a.dest for a in parser._actions}
        if not ({"manifest", "overrides"} & dests or path in (("prepare", "index"), ("report",))):
            continue
        if path in (("prepare", "reencode"), ("export",)):  # reencode takes no such paths at all (see the
            continue  # escaping test); export reads only the manifest's classes, never its paths
        advice = outside_root_advice(argparse.Namespace(
            **{a.dest: a.default for a in parser._actions if a.dest != "help"}))
        assert advice in ("pass --allow-outside-root", "set data.allow_outside_root=true"), (path, advice)
        if advice == "pass --allow-outside-root":
            assert "--allow-outside-root" in parser._option_string_actions, path
        checked.append(" ".join(path))
    assert {"prepare index", "prepare poses", "pretrain", "finetune", "linear-probe", "retrieve", "report",
            "test"} <= set(checked)
