"""Losses of the peer methods, written as special cases of the multi-positive InfoNCE
(:func:`csvr.losses.mi_infonce`), so all methods share one tested implementation.

* :func:`nt_xent` — CVRL / SimCLR's normalised-temperature cross entropy over 2B embeddings.
* :func:`inter_intra_nce` — IIC's contrastive loss with inter- and intra-negatives.
"""

from __future__ import annotations

import torch
from torch import Tensor

from csvr.losses.contrastive import mi_infonce


def nt_xent(a: Tensor, b: Tensor, tau: float = 0.1) -> Tensor:
    """NT-Xent (CVRL Eq. 1 / SimCLR): for the 2B embeddings of two views ``a``, ``b`` (B, D), each
    one's positive is the other view of the same video and its negatives the 2B - 2 others
    (cosine similarity / tau), averaged over all 2B anchors."""
    n = a.shape[0]
    z = torch.cat([a, b], dim=0)
    idx = torch.arange(2 * n, device=z.device)
    positive = torch.zeros(2 * n, 2 * n, dtype=torch.bool, device=z.device)
    positive[idx, (idx + n) % (2 * n)] = True
    candidates = ~torch.eye(2 * n, dtype=torch.bool, device=z.device)
    return mi_infonce(z, z, positive, tau, candidates=candidates, validate=False)


def inter_intra_nce(anchor: Tensor, other_view: Tensor, intra_negatives: Tensor, tau: float = 0.07) -> Tensor:
    """IIC's loss for one direction: anchor ``v1_i`` (B, D); positive ``v2_i``; inter-negatives
    ``v2_j`` (j != i); intra-negatives ``u_{i,m}`` (B, M, D): the anchor's own clip with its
    temporal structure broken (frame repeating, temporal shuffling), which only time can tell
    apart. ``-log e^{s(v1_i,v2_i)} / (sum_j e^{s(v1_i,v2_j)} + sum_m e^{s(v1_i,u_im)})``."""
    n, m = anchor.shape[0], intra_negatives.shape[1]
    z = torch.cat([other_view, intra_negatives.reshape(n * m, -1)], dim=0)
    eye = torch.eye(n, dtype=torch.bool, device=anchor.device)
    positive = torch.cat([eye, torch.zeros(n, n * m, dtype=torch.bool, device=anchor.device)], dim=1)
    own_intra = eye.repeat_interleave(m, dim=1)
    candidates = torch.cat([torch.ones(n, n, dtype=torch.bool, device=anchor.device), own_intra], dim=1)
    return mi_infonce(anchor, z, positive, tau, candidates=candidates, validate=False)
