"""Training-step helpers shared by the step benchmarks (step_cost.py, train_throughput.py, gpu.py)."""

from __future__ import annotations

import torch

from csvr.data.index import load_manifest
from csvr.engine.config import PretrainConfig
from csvr.engine.model import build_method
from csvr.engine.optim import RoleOptimizer, build_role_optimizer
from csvr.methods.base import Method


def build_for_steps(cfg: PretrainConfig, device: torch.device | str = "cpu") -> tuple[Method, RoleOptimizer]:
    """The config's method with seed-0 random weights on ``device``, and the engine's optimisers by
    role at the learning rate of ``optim.lr_per_sample`` x the config's batch size."""
    torch.manual_seed(0)
    m = build_method(cfg).to(device)
    opt = build_role_optimizer(m.parameter_roles(), cfg.optim, cfg.optim.lr_per_sample * cfg.train.batch_size)
    return m, opt


def training_batches(cfg: PretrainConfig, method: Method, n: int) -> list[dict]:
    """The first ``n`` batches of ``method``'s own training dataset on split 1 of the config's
    data (the config's batch size, shuffled with seed 0, no loader workers)."""
    man = load_manifest(cfg.data.manifest)
    ds = method.train_dataset(man, man.select("1", "train"), cfg.data.clip, 0, cfg.data.pose_cache)
    dl = torch.utils.data.DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True, num_workers=0,
                                     generator=torch.Generator().manual_seed(0))
    it = iter(dl)
    return [next(it) for _ in range(n)]
