"""Optimisers by role and the learning-rate schedule of a pretraining run.

A method sorts its parameters into roles (:meth:`csvr.methods.base.Method.parameter_roles`):
``encoder`` (feature extractors and heads: the paper's SGD, lr 0.0005 x B), ``generator`` and
``critic`` (the pose GAN's networks: Adam by default, as WGAN-GP trains them), ``video_generator``
and ``video_critic`` (CSVR's video GANs: TGANv2's Adam settings, a constant rate after warm-up). One
:class:`RoleOptimizer` holds one torch optimiser per role behind the ordinary ``Optimizer``
interface, so Fabric, DDP and the AMP grad scaler see one optimiser (the scaler unscales every
role's gradients before any role steps, which separate optimisers with one scaler would not
guarantee).

The OSGAN one-stage update (:mod:`csvr.losses.adversarial`) stays exact: one backward gives every
parameter its own player's gradient, and each role's optimiser applies that gradient with its
own rule; nothing mixes the roles' gradients.

The optimisers live for the whole run (their state, e.g. momentum and Adam moments, carries
over from one stage to the next); a stage trains only its own parameters because the engine
drops the gradients of every other parameter before the step.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
from torch import nn

from csvr.engine.config import OptimConfig, RoleOptimConfig

ROLES = ("encoder", "generator", "critic", "video_generator", "video_critic")
GAN_ROLES = ROLES[1:]


class RoleOptimizer(torch.optim.Optimizer):
    """Several optimisers (one per role) seen as one.

    ``param_groups`` is the concatenation of the roles' groups (the same dicts, so changing a
    group's ``lr`` changes it in the role's optimiser); ``step`` steps every role;
    ``state_dict`` is ``{role: state_dict}``. Each group carries ``role`` and ``base_lr``.
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        if not optimizers:
            raise ValueError("RoleOptimizer needs at least one optimiser")
        self.optimizers = dict(optimizers)
        params = [p for o in self.optimizers.values() for g in o.param_groups for p in g["params"]]
        super().__init__(params, {})
        self.param_groups = [g for o in self.optimizers.values() for g in o.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers.values():
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {role: opt.state_dict() for role, opt in self.optimizers.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        missing = sorted(set(self.optimizers) - set(state_dict))
        extra = sorted(set(state_dict) - set(self.optimizers))
        if missing or extra:
            raise ValueError(f"optimiser roles differ from the checkpoint's: missing {missing}, unexpected {extra}")
        for role, opt in self.optimizers.items():
            opt.load_state_dict(state_dict[role])
        self.param_groups = [g for o in self.optimizers.values() for g in o.param_groups]

    def set_lr_factor(self, factor: float | dict[str, float]) -> None:
        """Every group's lr = its ``base_lr`` x ``factor`` (the schedule): one number for every
        role, or one per role (:func:`lr_factors`)."""
        for g in self.param_groups:
            f = factor if not isinstance(factor, dict) else factor[g["role"]]
            g["lr"] = g["base_lr"] * f

    def lrs(self) -> dict[str, float]:
        """The current learning rate of each role."""
        return {role: opt.param_groups[0]["lr"] for role, opt in self.optimizers.items()}


def _role_settings(cfg: OptimConfig, role: str, encoder_lr: float) -> tuple[str, dict[str, Any]]:
    if role == "encoder":
        return "sgd", {"lr": encoder_lr, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay,
                       "nesterov": cfg.nesterov}
    rc: RoleOptimConfig = getattr(cfg, role)
    if rc.name == "adam":
        return "adam", {"lr": rc.lr, "betas": tuple(rc.betas), "weight_decay": rc.weight_decay}
    return "sgd", {"lr": rc.lr, "momentum": rc.momentum, "weight_decay": rc.weight_decay}


def build_role_optimizer(roles: dict[str, list[nn.Parameter]], cfg: OptimConfig, encoder_lr: float) -> RoleOptimizer:
    """One optimiser per non-empty role; a role whose config says ``name: same`` joins the encoders."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown parameter role(s) {unknown}; valid: {', '.join(ROLES)}")
    merged: dict[str, list[nn.Parameter]] = {"encoder": list(roles.get("encoder", []))}
    for role in GAN_ROLES:
        params = list(roles.get(role, []))
        if getattr(cfg, role).name == "same":
            merged["encoder"] += params
        elif params:
            merged[role] = params
    opts: dict[str, torch.optim.Optimizer] = {}
    for role, params in merged.items():
        params = [p for p in params if p.requires_grad]
        if not params:
            continue
        kind, kw = _role_settings(cfg, role, encoder_lr)
        opt = torch.optim.Adam(params, **kw) if kind == "adam" else torch.optim.SGD(params, **kw)
        for g in opt.param_groups:
            g["role"], g["base_lr"] = role, g["lr"]
        opts[role] = opt
    return RoleOptimizer(opts)


def lr_factor(cfg: OptimConfig, step: int, total: int) -> float:
    """Multiplier of every base learning rate at ``step`` (0-based) of ``total``.

    Linear warm-up ``(step + 1) / warmup_steps``, then ``m + (1 - m) (1 + cos(pi t)) / 2`` with
    ``t`` the fraction of the post-warm-up steps done and ``m = min_lr_ratio`` (constant 1 for
    ``schedule: constant``).
    """
    warm = cfg.warmup_steps
    if warm and step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant" or total <= warm:
        return 1.0
    t = min(1.0, (step - warm) / max(1, total - warm))
    m = cfg.min_lr_ratio
    return m + (1.0 - m) * 0.5 * (1.0 + math.cos(math.pi * t))


def lr_factors(cfg: OptimConfig, step: int, total: int) -> dict[str, float]:
    """The multiplier of each role's base rate at ``step`` of ``total``: :func:`lr_factor`, or
    the warm-up alone for a role whose ``schedule`` is ``constant``."""
    shared = lr_factor(cfg, step, total)
    warm = (step + 1) / cfg.warmup_steps if cfg.warmup_steps and step < cfg.warmup_steps else 1.0
    out = {"encoder": shared}
    for role in GAN_ROLES:
        out[role] = warm if getattr(cfg, role).schedule == "constant" else shared
    return out


def drop_grads_outside(params: Iterable[nn.Parameter]) -> None:
    """Set ``grad`` to None for ``params`` (the parameters a stage does not train): no optimiser
    touches a parameter without a gradient (no step, no weight decay)."""
    for p in params:
        p.grad = None


__all__ = ["GAN_ROLES", "ROLES", "RoleOptimizer", "build_role_optimizer", "drop_grads_outside", "lr_factor", "lr_factors"]
