"""Issue 24 item 2 (zero tracebacks for user mistakes) and two items of its point 6.

Every sub-command that writes checks its output path first (csvr.utils.io.check_output_dir /
check_output_file): a file where a folder is needed, a folder where a file is needed, a path under
a file, a folder it may not write -> one ``csvr: error:`` line, before any data is probed or any
model loaded (the checkpoints given here are junk files: loading one would be another error).
Also: a checkpoint method's only feature replaces the preset's default, an explicit --feature is
never overridden, `csvr prepare index` fails when nothing was indexed (with the CLI's flag in the
advice of a CSV path outside the root), and a truncated checkpoint's message is whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from csvr.cli import main

from test_eval_retrieval import untrained_checkpoint


def _tree(base: Path) -> set[str]:
    return {str(p.relative_to(base)) for p in base.rglob("*")}


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("csvr: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def inputs(tiny_synth, tmp_path_factory) -> dict[str, str]:
    """The cheapest valid other arguments: the tiny dataset, one of its videos, a junk checkpoint
    file and a run folder (the output check must come before either is read)."""
    base = tmp_path_factory.mktemp("inputs")
    (base / "junk.pt").write_bytes(b"not a checkpoint")
    (base / "run").mkdir()
    return {"manifest": str(tiny_synth["manifest"]), "root": str(tiny_synth["root"]),
            "poses": str(tiny_synth["poses"]), "json_dir": str(tiny_synth["root"] / "poses" / "openpose"),
            "video": str(next(tiny_synth["root"].rglob("*.mp4"))), "ckpt": str(base / "junk.pt"),
            "run": str(base / "run")}


# (name, kind of output: "dir" or "file", argv with OUT where the output path goes)
COMMANDS = [
    ("prepare index", "file", lambda i: ["prepare", "index", i["root"], "--out", "OUT", "--workers", "1"]),
    ("prepare poses", "dir", lambda i: ["prepare", "poses", "--manifest", i["manifest"], "--out", "OUT", "--source",
                                        "openpose-json", "--json-dir", i["json_dir"], "--workers", "1"]),
    ("prepare reencode", "dir", lambda i: ["prepare", "reencode", "--manifest", i["manifest"], "--out", "OUT",
                                           "--workers", "1"]),
    ("data synth", "dir", lambda i: ["data", "synth", "--out", "OUT", "--classes", "1", "--videos-per-class", "2",
                                     "--workers", "1"]),
    ("viz poses", "file", lambda i: ["viz", "poses", i["video"], "--out", "OUT", "--source", "openpose-json",
                                     "--json-dir", i["json_dir"]]),
    ("pretrain", "dir", lambda i: ["pretrain", "--config", "tiny-test", f"data.manifest={i['manifest']}", "--out",
                                   "OUT", "train.threads=1"]),
    ("pretrain out=", "dir", lambda i: ["pretrain", "--config", "tiny-test", f"data.manifest={i['manifest']}",
                                        "out=OUT"]),
    ("finetune", "dir", lambda i: ["finetune", "--config", "tiny-test", "--pretrained", i["ckpt"],
                                   f"data.manifest={i['manifest']}", "--out", "OUT"]),
    ("linear-probe", "dir", lambda i: ["linear-probe", "--config", "tiny-test", "--pretrained", i["ckpt"], "--feature",
                                       "fs", f"data.manifest={i['manifest']}", "--out", "OUT"]),
    ("test", "dir", lambda i: ["test", "--checkpoint", i["ckpt"], "--manifest", i["manifest"], "--out", "OUT"]),
    ("predict --json", "file", lambda i: ["predict", i["video"], "--checkpoint", i["ckpt"], "--json", "OUT"]),
    ("retrieve", "dir", lambda i: ["retrieve", "--checkpoint", i["ckpt"], "--manifest", i["manifest"], "--out", "OUT"]),
    ("knn", "dir", lambda i: ["knn", "--checkpoint", i["ckpt"], "--feature", "fs", "--manifest", i["manifest"],
                              "--out", "OUT"]),
    ("knn --cache", "dir", lambda i: ["knn", "--checkpoint", i["ckpt"], "--feature", "fs", "--manifest",
                                      i["manifest"], "--out", str(Path(i["run"]).parent / "knn-ok"), "--cache", "OUT"]),
    ("report", "dir", lambda i: ["report", i["run"], "--out", "OUT"]),
    ("export", "dir", lambda i: ["export", "--checkpoint", i["ckpt"], "--out", "OUT"]),
    ("video-quality --json", "file", lambda i: ["video-quality", i["ckpt"], "--classifier", i["ckpt"], "--json",
                                                "OUT"]),
    ("demo", "dir", lambda i: ["demo", "--out", "OUT", "--workers", "1"]),
]


def test_the_sweep_covers_every_command_that_writes():
    """A new sub-command must join the sweep (the three groups' and the top-level commands)."""
    import argparse

    from csvr.cli import build_parser

    def leaves(parser, path=()):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            for name, sub in action.choices.items():
                yield from leaves(sub, path + (name,))
        if not subs and path:
            yield " ".join(path)

    swept = {name.split(" --")[0].replace(" out=", "") for name, _, _ in COMMANDS}
    assert set(leaves(build_parser())) <= swept  # predict writes only with --json, which is swept


@pytest.mark.parametrize("case", ["file-instead", "under-a-file"])
@pytest.mark.parametrize("name,kind,argv", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_bad_output_path_is_one_line_before_any_work(name, kind, argv, case, inputs, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    if kind == "dir" or case == "under-a-file":
        blocker.write_text("a file the user already has\n")
    else:  # a file output where a folder is
        blocker.mkdir()
    out = blocker / "sub" if case == "under-a-file" else blocker
    before = _tree(tmp_path)
    args = [a.replace("OUT", str(out)) for a in argv(inputs)]
    rc = main(args)
    line = _one_error(capsys)
    assert rc == 2, (name, line)
    assert str(out) in line, line  # the output check spoke, not a later one (the checkpoints are junk)
    want = {("dir", "file-instead"): "is a file, not a folder", ("file", "file-instead"): "is a folder, not a file",
            ("dir", "under-a-file"): f"cannot be created: {blocker} is a file, not a folder",
            ("file", "under-a-file"): f"cannot be written: {blocker} is a file, not a folder"}[kind, case]
    assert want in line, line
    assert _tree(tmp_path) == before  # nothing created, nothing deleted
    assert blocker.is_dir() or blocker.read_text() == "a file the user already has\n"


def test_a_folder_it_may_not_write_is_one_line(inputs, tmp_path, capsys, monkeypatch):
    """Permission denied (simulated: these tests may run as root, for whom every folder is writable)."""
    import os

    import csvr.utils.io as io

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(io.os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode))
    for out, says in ((locked, f"--out {locked}: the folder is not writable (permission denied)"),
                      (locked / "new", f"the folder cannot be created: {locked} is not writable (permission denied)")):
        assert main(["retrieve", "--checkpoint", inputs["ckpt"], "--manifest", inputs["manifest"], "--out",
                     str(out)]) == 2
        assert says in _one_error(capsys)
    assert main(["viz", "poses", inputs["video"], "--out", str(locked / "x.png")]) == 2
    assert f"cannot be written: {locked} is not writable (permission denied)" in _one_error(capsys)
    (locked / "step.pt").write_bytes(b"junk")  # csvr test's default output goes beside the checkpoint's run
    assert main(["test", "--checkpoint", str(locked / "step.pt")]) == 2
    assert f"the run folder of --checkpoint {locked}: the folder is not writable" in _one_error(capsys)


def test_a_writable_output_path_passes_the_check(tmp_path):
    from csvr.utils.io import check_output_dir, check_output_file

    (tmp_path / "old.json").write_text("{}")
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_output_dir(tmp_path) == tmp_path
    assert check_output_file(tmp_path / "old.json") == tmp_path / "old.json"  # replaced (atomically) later
    assert check_output_file(tmp_path / "new" / "x.json") == tmp_path / "new" / "x.json"
    assert not (tmp_path / "a").exists() and not (tmp_path / "new").exists()  # checking creates nothing


# ----------------------------------------------------------------------------- features of a checkpoint's method
@pytest.fixture(scope="module")
def cvrl_ckpt(tiny_synth, tmp_path_factory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("cvrl"), "cvrl", {"backbone": {"name": "r3d_18", "width": 4,
                                "layers": [1, 1, 1, 1]}, "proj_dim": 8}, tiny_synth)


def _finetune(ds, ckpt, out, *extra) -> int:
    # data.split=none: the job stops (one line) right after the network is built, before training
    return main(["finetune", "--config", "tiny-test", "--pretrained", str(ckpt), f"data.manifest={ds['manifest']}",
                 "--out", str(out), "data.split=none", *extra])


def test_the_presets_feature_follows_a_cvrl_checkpoint(tiny_synth, cvrl_ckpt, tmp_path, capsys):
    assert _finetune(tiny_synth, cvrl_ckpt, tmp_path / "ft") == 2
    cap = capsys.readouterr()
    assert (f"csvr: the checkpoint {cvrl_ckpt} is a cvrl network, whose only feature is 'backbone': using it instead "
            "of the preset's 'fi' (pass --feature to choose)") in cap.err.splitlines()
    assert "cvrl architecture" in cap.out and "feature backbone" in cap.out  # the network that would train
    errors = [ln for ln in cap.err.splitlines() if ln.startswith("csvr: error:")]
    assert len(errors) == 1 and "split 'none'" in errors[0] and "feature" not in errors[0]


@pytest.mark.parametrize("feature,says", [
    ("fi", "feature 'fi' does not exist for the checkpoint {ckpt}, a cvrl network: its features are backbone (choose "
           "one with --feature)"),
    ("scratch", "feature 'fs' (--feature scratch) does not exist for the checkpoint {ckpt}, a cvrl network: its "
                "features are backbone (choose one with --feature); its random-init network: --feature backbone "
                "model.init=scratch")])
def test_an_explicit_feature_the_method_lacks_is_never_overridden(tiny_synth, cvrl_ckpt, tmp_path, capsys, feature,
                                                                  says):
    assert _finetune(tiny_synth, cvrl_ckpt, tmp_path / "ft", "--feature", feature) == 2
    assert _one_error(capsys) == "csvr: error: " + says.format(ckpt=cvrl_ckpt)
    assert not (tmp_path / "ft").exists()
    assert _finetune(tiny_synth, cvrl_ckpt, tmp_path / "ft", "model.feature=fi") == 2  # an override is explicit too
    assert "feature 'fi' does not exist" in _one_error(capsys)


def test_knn_names_the_checkpoints_features_before_asking_for_poses(tiny_synth, cvrl_ckpt, tmp_path, capsys):
    assert main(["knn", "--checkpoint", str(cvrl_ckpt), "--feature", "fi", "--manifest", str(tiny_synth["manifest"]),
                 "--out", str(tmp_path / "knn")]) == 2
    line = _one_error(capsys)
    assert "is a 'cvrl' pretraining checkpoint; its encoder features are backbone, not 'fi'" in line
    assert "pose" not in line and not (tmp_path / "knn").exists()


# ----------------------------------------------------------------------------- point 6
def test_index_of_nothing_fails_and_a_csv_path_outside_the_root_names_the_flag(tiny_synth, tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    video = next(tiny_synth["root"].rglob("*.mp4"))
    shutil.copyfile(video, tmp_path / "outside.mp4")
    (tmp_path / "list.csv").write_text("path,label\n../outside.mp4,Walk\n")
    argv = ["prepare", "index", str(root), "--csv", str(tmp_path / "list.csv"), "--out", str(tmp_path / "m.jsonl"),
            "--workers", "1"]
    assert main(argv) == 2
    line = _one_error(capsys)
    assert line.startswith(f"csvr: error: nothing was indexed: all 1 video(s) found for {root} are bad")
    assert "path in CSV '../outside.mp4' points outside the dataset root" in line
    assert "(pass --allow-outside-root if that is intended)" in line and "allow_outside_root=True" not in line
    assert main([*argv, "--allow-outside-root"]) == 0  # the advised flag exists and works
    assert "videos: 1 indexed" in capsys.readouterr().out


def test_a_truncated_checkpoint_is_one_whole_sentence(cvrl_ckpt, tmp_path, capsys):
    data = cvrl_ckpt.read_bytes()
    cut, empty = tmp_path / "cut.pt", tmp_path / "empty.pt"
    cut.write_bytes(data[: len(data) // 2])
    empty.write_bytes(b"")
    advice = ("a write or a copy of it did not finish, or the disk was full; use an earlier checkpoint of the run (its "
              "checkpoints/ folder), or copy the file again")
    assert main(["export", "--checkpoint", str(cut), "--out", str(tmp_path / "x")]) == 2
    assert _one_error(capsys) == (f"csvr: error: {cut} is cut short or damaged (PyTorch: PytorchStreamReader failed "
                                  f"reading zip archive: failed finding central directory): {advice}")
    assert main(["export", "--checkpoint", str(empty), "--out", str(tmp_path / "x")]) == 2
    assert _one_error(capsys) == f"csvr: error: {empty} is empty (0 bytes): {advice}"
    assert not (tmp_path / "x").exists()
