"""The downstream features of a trained model, named once (no torch: the CLI lists them in --help).

A *feature* is what an encoder hands to a classifier or to retrieval (paper III-C, III-D):

========== ============================================================== ===== =====
name       what it is                                                      clip  poses
========== ============================================================== ===== =====
``fi``     integrated feature f_i (Eq. 3-5): f_s and f_d through the       yes   yes
           integration layer (the paper's choice for finetuning)
``fs``     static feature f_s = g^V(pool(V-network(clip))) (III-C)         yes   no
``fd``     motion feature f_d: G_p's encoder (up to ``pose.fd_layer``) +   no    yes
           the conv + MLP head (III-B)
``backbone`` the pooled V-network map, before g^V (the contrastive          yes   no
           baselines' only feature)
========== ============================================================== ===== =====

:data:`FeatureName` is the one spelling of the names; :func:`needs_poses` the one rule that says
whether an encoder must be given the clip's poses.
"""

from __future__ import annotations

from typing import Literal, get_args

FeatureName = Literal["fi", "fs", "fd", "backbone"]
FEATURE_NAMES: tuple[str, ...] = get_args(FeatureName)
_WITH_POSES = frozenset({"fi", "fd"})  # the two that read G_p's encoder


def needs_poses(feature: str) -> bool:
    """Whether an encoder of ``feature`` reads the clip's poses (``fi``, ``fd``)."""
    check_feature(feature)
    return feature in _WITH_POSES


def needs_clip(feature: str) -> bool:
    """Whether an encoder of ``feature`` reads the clip (every feature but ``fd``)."""
    check_feature(feature)
    return feature != "fd"


def check_feature(feature: str, available: tuple[str, ...] = FEATURE_NAMES, owner: str = "") -> str:
    """``feature`` when it is one of ``available``; else a ValueError naming the valid ones."""
    if feature not in available:
        whose = f" of {owner}" if owner else ""
        raise ValueError(f"unknown feature {feature!r}{whose}; valid: {', '.join(available)}")
    return feature


__all__ = ["FEATURE_NAMES", "FeatureName", "check_feature", "needs_clip", "needs_poses"]
