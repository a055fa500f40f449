"""Issue 14 item 3: ``csvr pretrain --out RUN --resume`` continues RUN with RUN/config.yaml
(overrides allowed and reported, ``--config`` compared with the run's), and a config or checkpoint
whose parameters do not match is one message naming them, not a ``size mismatch`` traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from csvr.cli import main
from csvr.engine.checkpoint import list_checkpoints



def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and "size mismatch" not in err
    lines = [x for x in err.splitlines() if x.startswith("csvr: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def run(tiny_synth, tmp_path_factory) -> Path:
    """A finished 2-step CSVR run of the tiny preset (its joint stage only)."""
    out = tmp_path_factory.mktemp("resume") / "run"
    assert main(["pretrain", "--config", "tiny-test", f"data.manifest={tiny_synth['manifest']}",
                 f"data.pose_cache={tiny_synth['poses']}", f"out={out}", "train.threads=1", "train.ckpt_every_steps=1",
                 "train.stages=[{name: joint, epochs: 1, max_steps: 2}]"]) == 0
    return out


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_resume_with_the_run_folder_alone(run, capsys):
    capsys.readouterr()
    # no --config, no data.manifest: everything comes from RUN/config.yaml; the run is done
    assert main(["pretrain", "--out", str(run), "--resume"]) == 0
    out = capsys.readouterr()
    assert "overriding" not in out.err and _summary(run)["global_step"] == 2
    # an override is allowed, applied and reported: one more step
    assert main(["pretrain", "--out", str(run), "--resume", "train.stages=[{name: joint, epochs: 2, max_steps: 3}]",
                 "train.log_every_steps=2"]) == 0
    err = capsys.readouterr().err
    assert "csvr: --resume: overriding train.log_every_steps: 1 -> 2" in err
    assert ("overriding train.stages: [{name: joint, epochs: 1, max_steps: 2}] -> "
            "[{name: joint, epochs: 2, max_steps: 3}]") in err
    assert _summary(run)["global_step"] == 3
    assert [p.name for p in list_checkpoints(run)][-1] == "step-000000003.pt"


def test_resume_without_a_run_config_says_what_to_pass(tmp_path, capsys):
    assert main(["pretrain", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    msg = _one_error(capsys)
    assert "config.yaml" in msg and "--config" in msg
    assert main(["pretrain", "--resume"]) == 2
    assert "--out" in _one_error(capsys)


def test_resume_with_a_config_reports_its_differences(run, tiny_synth, capsys):
    capsys.readouterr()
    rc = main(["pretrain", "--config", "tiny-test", "--out", str(run), "--resume",
               f"data.manifest={tiny_synth['manifest']}", f"data.pose_cache={tiny_synth['poses']}", "train.threads=1",
               "train.ckpt_every_steps=1", "train.stages=[{name: joint, epochs: 2, max_steps: 3}]", "train.seed=5"])
    assert rc == 0
    err = capsys.readouterr().err
    assert f"differs from {run / 'config.yaml'}" in err
    assert "train.seed: 0 -> 5" in err
    assert "train.log_every_steps" not in err or "train.log_every_steps: 2 -> 1" in err


def test_a_model_that_does_not_match_the_checkpoint_is_one_message(run, capsys):
    capsys.readouterr()
    assert main(["pretrain", "--out", str(run), "--resume", "model.backbone.width=8"]) == 2
    msg = _one_error(capsys)
    assert "model.backbone.width: 4 -> 8" in msg  # the config key that differs
    assert "v_network." in msg and "(8," in msg and "(4," in msg  # parameter names and shapes
    # the count, computed independently: the width-8 network's tensors against the checkpoint's
    from csvr.engine.model import build_architecture

    state = torch.load(list_checkpoints(run)[-1], weights_only=True)["model"]
    model = yaml.safe_load((run / "config.yaml").read_text())["model"]
    model["backbone"]["width"] = 8
    own = build_architecture("csvr", model).state_dict()
    differ = {k for k in own if k not in state or own[k].shape != state[k].shape} | {k for k in state if k not in own}
    assert len(differ) > 5 and f" {len(differ)} parameter(s) differ" in msg
    assert "more" in msg  # first few, then the count


def test_a_checkpoint_whose_weights_do_not_fit_its_config_is_one_message(run, tiny_synth, tmp_path, capsys):
    """finetune / retrieve / export load through the same check (a checkpoint edited or written by
    another csvr version)."""
    state = torch.load(list_checkpoints(run)[-1], weights_only=True)
    state["config"]["model"]["backbone"]["width"] = 8
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    capsys.readouterr()
    assert main(["finetune", "--config", "tiny-test", "--pretrained", str(bad), "--feature", "fs",
                 "--out", str(tmp_path / "ft"), f"data.manifest={tiny_synth['manifest']}", "train.threads=1"]) == 2
    msg = _one_error(capsys)
    assert str(bad) in msg and "parameter(s) differ" in msg and "v_network." in msg
    assert main(["export", "--checkpoint", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "parameter(s) differ" in _one_error(capsys)


def test_finetune_resume_with_the_run_folder_alone(run, tiny_synth, tmp_path, capsys):
    ft = tmp_path / "ft"
    args = ["finetune", "--config", "tiny-test", "--pretrained", str(list_checkpoints(run)[-1]), "--feature",
            "fs", "--out", str(ft), f"data.manifest={tiny_synth['manifest']}", "train.threads=1",
            "train.stages=[{name: main, epochs: 1, max_steps: 1}]"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["finetune", "--out", str(ft), "--resume", "train.stages=[{name: main, epochs: 1, max_steps: 2}]"]) == 0
    err = capsys.readouterr().err
    assert "overriding train.stages" in err and "data.manifest" not in err
    assert json.loads((ft / "results.json").read_text())["checkpoint"].endswith("step-000000002.pt")
