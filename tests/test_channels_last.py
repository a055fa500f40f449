"""train.channels_last (issue 15): 3D-convolution weights in channels_last_3d memory format change
the order of the arithmetic, not its result, and the engine runs and checkpoints with it."""

from __future__ import annotations

import copy

import torch

from csvr.config import load_config
from csvr.engine.checkpoint import latest_checkpoint
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.pretrain import pretrain
from csvr.engine.trainer import to_channels_last_3d
from csvr.models import CSVRModel
from tests.test_models_csvr import make_batch, tiny_cfg


def test_same_losses_and_gradients_in_channels_last():
    torch.manual_seed(0)
    a = CSVRModel(tiny_cfg()).train()
    b = to_channels_last_3d(copy.deepcopy(a))
    convs = [p for p in b.parameters() if p.dim() == 5]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in convs)
    batch = make_batch()
    outs = []
    for m in (a, b):
        out = m.compute_losses(batch, generator=torch.Generator().manual_seed(1))
        out.total.backward()
        outs.append(out)
    for key, value in outs[0].terms.items():
        torch.testing.assert_close(outs[1].terms[key], value, rtol=1e-4, atol=1e-5, msg=key)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        if pa.grad is not None:
            torch.testing.assert_close(pb.grad, pa.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_engine_trains_and_checkpoints_in_channels_last(tiny_synth, tmp_path):
    cfg = load_config(PretrainConfig, resolve_config_path("tiny-test"),
                      [f"data.manifest={tiny_synth['manifest']}", f"data.pose_cache={tiny_synth['poses']}",
                       f"out={tmp_path / 'run'}", "train.threads=1", "train.channels_last=true",
                       "train.stages=[{name: joint, epochs: 1, max_steps: 2}]"])
    pretrain(cfg)
    _, state = latest_checkpoint(tmp_path / "run")
    w = state["model"]["model.v_network.stem.0.weight"]
    assert w.dim() == 5 and torch.isfinite(w).all()
