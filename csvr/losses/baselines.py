"""Losses of the peer methods, written as special cases of the multi-positive InfoNCE
(:func:`csvr.losses.mi_infonce`), so all methods share one tested implementation.

* :func:`nt_xent` — CVRL / SimCLR's normalised-temperature cross entropy over 2B embeddings.
* :func:`inter_intra_nce` — IIC's contrastive loss with inter- and intra-negatives.

Both are in-batch: the negatives are the other clips of the (per-process) batch. See
``docs/baselines.md`` for how that relates to the originals (IIC: a memory bank; CVRL: the batch
gathered over all TPU cores).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from csvr.losses.contrastive import mi_infonce


def nt_xent(a: Tensor, b: Tensor, tau: float = 0.1) -> Tensor:
    """NT-Xent (CVRL Eq. 1 / SimCLR Eq. 1): for the 2B embeddings of two views ``a``, ``b`` (B, D),
    each one's positive is the other view of the same video and its negatives the 2B - 2 others:

    ``L = 1/(2B) sum_{k=1}^{2B} -log( e^{s(z_k, z_k+)/tau} / sum_{l != k} e^{s(z_k, z_l)/tau} )``

    with ``s`` the cosine similarity and ``z_k+`` the other view of ``z_k``. (CVRL's released code
    sums the two directions' means, i.e. twice this value.)

    Example: two videos with orthogonal embeddings, identical in both views; each of the 4
    anchors has its positive at similarity 1 and two negatives at 0, so the loss is
    ``log((e + 2) / e) = log(1 + 2/e)``::

        >>> import math, torch
        >>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(float(nt_xent(a, a.clone(), tau=1.0)), 4), round(math.log(1 + 2 / math.e), 4)
        (0.5514, 0.5514)
    """
    n = a.shape[0]
    z = torch.cat([a, b], dim=0)
    idx = torch.arange(2 * n, device=z.device)
    positive = torch.zeros(2 * n, 2 * n, dtype=torch.bool, device=z.device)
    positive[idx, (idx + n) % (2 * n)] = True
    candidates = ~torch.eye(2 * n, dtype=torch.bool, device=z.device)
    return mi_infonce(z, z, positive, tau, candidates=candidates, validate=False)


def inter_intra_nce(anchor: Tensor, other_view: Tensor, intra_negatives: Tensor, tau: float = 0.07,
                    intra_of: Literal["batch", "own"] = "batch") -> Tensor:
    """IIC's contrastive loss for one direction (view 1 anchors against view 2), in-batch.

    ``anchor`` ``v1_i`` (B, D); positive ``v2_i`` = ``other_view[i]``; inter-negatives ``v2_j``
    (j != i); intra-negatives ``u_{j,m}`` = ``intra_negatives[j, m]`` (B, M, D): clip j with its
    temporal structure broken (frame repeating, temporal shuffling).

    ``L = -1/B sum_i log( e^{s(v1_i,v2_i)/tau} / D_i )``,
    ``D_i = sum_j e^{s(v1_i,v2_j)/tau} + sum_{j in J(i)} sum_m e^{s(v1_i,u_jm)/tau}``

    (``s`` the cosine similarity). ``intra_of="batch"`` (default): ``J(i)`` is the whole batch, the
    in-batch counterpart of the original code, whose intra-negative memory bank is read at the same
    indices as the inter-negatives (the anchor's own index and K random others; BestJuly/IIC
    ``lib/NCEAverage.py``, ``NCEAverage.forward``). ``intra_of="own"``: ``J(i) = {i}``, only the
    anchor's own broken clip. ``M = 0`` gives the plain cross-view InfoNCE of CMC (IIC without
    intra-negatives).

    Example: two videos with orthogonal embeddings in both views, and intra-negatives that look
    exactly like their clip (a model that ignores time). Without them the loss is
    ``log(1 + 1/e)``; the anchor's own broken clip adds ``e`` to the denominator
    (``log(2 + 1/e)``), every clip's broken copy adds ``e + 1`` (``log(2 + 2/e)``)::

        >>> import math, torch
        >>> v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> u = v.unsqueeze(1)  # (B, M=1, D)
        >>> round(float(inter_intra_nce(v, v, u[:, :0], tau=1.0)), 4), round(math.log(1 + 1 / math.e), 4)
        (0.3133, 0.3133)
        >>> round(float(inter_intra_nce(v, v, u, tau=1.0, intra_of="own")), 4), round(math.log(2 + 1 / math.e), 4)
        (0.862, 0.862)
        >>> round(float(inter_intra_nce(v, v, u, tau=1.0)), 4), round(math.log(2 + 2 / math.e), 4)
        (1.0064, 1.0064)
    """
    n, m = anchor.shape[0], intra_negatives.shape[1]
    dev = anchor.device
    z = torch.cat([other_view, intra_negatives.reshape(n * m, anchor.shape[1])], dim=0)
    eye = torch.eye(n, dtype=torch.bool, device=dev)
    positive = torch.cat([eye, torch.zeros(n, n * m, dtype=torch.bool, device=dev)], dim=1)
    if intra_of == "batch":
        candidates = None  # every column
    elif intra_of == "own":
        candidates = torch.cat([torch.ones(n, n, dtype=torch.bool, device=dev), eye.repeat_interleave(m, dim=1)], dim=1)
    else:
        raise ValueError(f"intra_of must be 'batch' or 'own', got {intra_of!r}")
    return mi_infonce(anchor, z, positive, tau, candidates=candidates, validate=False)


__all__ = ["inter_intra_nce", "nt_xent"]
