"""Launched by test_engine.py with torchrun (2 processes, CPU, gloo): trains a few steps with
real DDP and saves each rank's parameters."""

import sys
from pathlib import Path

import torch

from csvr.config import load_config
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.pretrain import pretrain


def main() -> None:
    manifest, poses, out = sys.argv[1:4]
    Path(out).mkdir(parents=True, exist_ok=True)
    cfg = load_config(PretrainConfig, resolve_config_path("tiny-test"), [
        f"data.manifest={manifest}", f"data.pose_cache={poses}", f"out={out}", "train.threads=1",
        "train.strategy=ddp", "train.accelerator=cpu", "train.devices=2", "train.batch_size=2",
        "train.stages=[{name: joint, epochs: 1, max_steps: 3}]"])
    captured = {}

    def on_start(method, fabric):
        if fabric.global_rank == 0:
            torch.save({k: v.detach().clone() for k, v in method.named_parameters()}, Path(out) / "params-init.pt")

    def on_end(method, fabric):
        # parameters (BatchNorm running statistics are per-rank until DDP's next broadcast)
        state = {k: v.detach().clone() for k, v in method.named_parameters()}
        torch.save(state, Path(out) / f"params-rank{fabric.global_rank}.pt")
        captured["ok"] = True

    pretrain(cfg, hooks={"on_start": on_start, "on_end": on_end})
    assert captured["ok"]


if __name__ == "__main__":
    main()
