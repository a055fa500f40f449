"""Issue 14 item 5: a ``--feature scratch`` run names its architecture - from a checkpoint
(``--pretrained``, whose weights are not used) or a pretraining config (``--model-config``) - and
prints it (method, backbone, width, feature, parameter count); without either it is an error that
names both flags, never the default full-size network built silently."""

from __future__ import annotations

import json

import pytest
import yaml

from csvr.cli import main
from csvr.engine.checkpoint import Checkpoint, list_checkpoints
from csvr.engine.commands import resolve_config_path
from csvr.engine.model import build_architecture
from csvr.eval.classifier import SupervisedConfig, Supervised

STAGES = "train.stages=[{name: main, epochs: 1, max_steps: 1}]"


def _count(method: str, model: dict, feature: str, classes: int) -> int:
    """Parameters of encoder(feature) + a linear layer on it, counted on a network built here."""
    enc = build_architecture(method, model).encoder(feature)
    return sum(p.numel() for p in enc.parameters()) + (enc.out_dim + 1) * classes


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("csvr: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", ["finetune", "linear-probe"])
def test_scratch_without_an_architecture_is_an_error_naming_the_flags(command, tiny_synth, tmp_path, capsys):
    assert main([command, "--config", "tiny-test", "--feature", "scratch", "--out", str(tmp_path / "ft"),
                 f"data.manifest={tiny_synth['manifest']}", STAGES]) == 2
    msg = _one_error(capsys)
    assert "--pretrained" in msg and "--model-config" in msg
    assert not (tmp_path / "ft" / "checkpoints").exists()  # nothing trained


def test_scratch_from_a_model_config_prints_and_trains_that_network(tiny_synth, tmp_path, capsys):
    run = tmp_path / "ft"
    assert main(["finetune", "--config", "tiny-test", "--feature", "scratch", "--model-config", "tiny-test",
                 "--out", str(run), f"data.manifest={tiny_synth['manifest']}", "train.threads=1", STAGES]) == 0
    out = capsys.readouterr().out
    model = yaml.safe_load(resolve_config_path("tiny-test").read_text())["model"]
    n = _count("csvr", model, "fs", 4)
    line = next(x for x in out.splitlines() if x.startswith("finetune network:"))
    assert "csvr architecture" in line and "backbone r3d_18 width 4" in line and "feature fs" in line
    assert f"{n:,} parameters" in line and "random init" in line
    ckpt = Checkpoint.load(list_checkpoints(run)[-1])
    assert ckpt.architecture == ("csvr", model)  # the checkpoint rebuilds the same network
    assert sum(v.numel() for k, v in ckpt.state.items() if "running" not in k and "num_batches" not in k) == n
    net = json.loads((run / "results.json").read_text())["network"]
    assert net["parameters"] == n and net["backbone"] == "r3d_18" and net["width"] == 4 and net["method"] == "csvr"


def test_scratch_from_a_checkpoint_uses_its_architecture_not_its_weights(tiny_synth, tmp_path, capsys):
    pre = tmp_path / "pre"
    assert main(["pretrain", "--config", "tiny-test", f"data.manifest={tiny_synth['manifest']}",
                 f"data.pose_cache={tiny_synth['poses']}", f"out={pre}", "train.threads=1",
                 "train.stages=[{name: joint, epochs: 1, max_steps: 1}]"]) == 0
    ckpt = Checkpoint.load(list_checkpoints(pre)[-1])
    capsys.readouterr()
    run = tmp_path / "ft"
    assert main(["finetune", "--config", "tiny-test", "--feature", "scratch", "--pretrained", str(ckpt.path),
                 "--out", str(run), f"data.manifest={tiny_synth['manifest']}", "train.threads=1", STAGES,
                 "--print-config"]) == 0
    capsys.readouterr()
    assert main(["finetune", "--config", "tiny-test", "--feature", "scratch", "--pretrained", str(ckpt.path),
                 "--out", str(run), f"data.manifest={tiny_synth['manifest']}", "train.threads=1", STAGES]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("finetune network:"))
    assert f"csvr architecture of {ckpt.path}" in line and "random init" in line
    assert f"{_count('csvr', ckpt.config['model'], 'fs', 4):,} parameters" in line
    # the weights it started from are not the checkpoint's (the same network, fresh weights)
    mcfg = SupervisedConfig(pretrained=str(ckpt.path), init="scratch", feature="fs", arch_method="csvr",
                            arch=ckpt.config["model"], num_classes=4)
    fresh = Supervised.build(mcfg).classifier.encoder.state_dict()
    trained = {k[len("model.v_network."):]: v for k, v in ckpt.state.items() if k.startswith("model.v_network.")}
    key = next(k for k in trained if k.endswith("weight") and trained[k].dim() == 5)
    got = next(v for k, v in fresh.items() if k.endswith(key))
    assert got.shape == trained[key].shape and not bool((got == trained[key]).all())


def test_model_config_conflicts(tiny_synth, tmp_path, capsys):
    base = ["finetune", "--config", "tiny-test", "--out", str(tmp_path / "ft"), f"data.manifest={tiny_synth['manifest']}"]
    assert main([*base, "--feature", "fi", "--model-config", "tiny-test"]) == 2
    assert "--feature scratch" in _one_error(capsys)
    assert main([*base, "--feature", "scratch", "--model-config", "tiny-test", "--pretrained", "x.pt"]) == 2
    assert "not both" in _one_error(capsys)
    assert main([*base, "--feature", "scratch", "--model-config", "nope-such-preset"]) == 2
    assert "nope-such-preset" in _one_error(capsys)


def test_python_api_never_builds_a_default_network(tiny_synth, tmp_path):
    from csvr.errors import ConfigError

    with pytest.raises(ConfigError, match="model.pretrained .* or model.arch_method and model.arch"):
        Supervised.build(SupervisedConfig(init="scratch", feature="fs", num_classes=4))
    # a checkpoint alone names the architecture (its weights unused with init=scratch)
    pre = tmp_path / "pre"
    assert main(["pretrain", "--config", "tiny-test", f"data.manifest={tiny_synth['manifest']}",
                 f"data.pose_cache={tiny_synth['poses']}", f"out={pre}", "train.threads=1",
                 "train.stages=[{name: joint, epochs: 1, max_steps: 1}]"]) == 0
    ckpt = list_checkpoints(pre)[-1]
    model = yaml.safe_load(resolve_config_path("tiny-test").read_text())["model"]
    sup = Supervised.build(SupervisedConfig(pretrained=str(ckpt), init="scratch", feature="fs", num_classes=4))
    assert sum(p.numel() for p in sup.classifier.parameters()) == _count("csvr", model, "fs", 4)
