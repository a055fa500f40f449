"""Context-matching losses of the paper's Sec. III-C and Table IV.

Shapes: ``x`` (B, C) clip features ``x_i^*``, ``z`` (K, C) I-frame features ``z_k^*`` (all
I-frames of the batch, flattened), ``positive`` (B, K) bool with ``positive[i, k]`` true when
I-frame ``k`` belongs to clip ``i``. Similarities are cosine similarities over a temperature,
computed in (at least) float32 whatever the autocast dtype.

* :func:`mi_infonce` - Eq. 2, MI-InfoNCE (every I-frame of clip i is a positive).
* :func:`info_nce_single` - Eq. 10, InfoNCE with one random positive I-frame per clip.
* :func:`l2_single` - Table IV's L2 variant (one random positive, no negatives).
* :func:`context_top1` - Table II's context-matching accuracy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cosine_logits(x: Tensor, z: Tensor, tau: float) -> Tensor:
    """``cos(x_i, z_k) / tau`` as a (B, K) float32 matrix."""
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    dt = _at_least_float32(x.dtype)
    xn = F.normalize(x.to(dt), dim=1)
    zn = F.normalize(z.to(dt), dim=1)
    return xn @ zn.t() / tau


def _at_least_float32(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _candidates_mask(candidates: Tensor | None, positive: Tensor) -> Tensor | None:
    if candidates is None:
        return None
    cand = candidates.to(torch.bool)
    if cand.dim() == 1:
        cand = cand.unsqueeze(0)
    return cand.expand_as(positive)


def mi_infonce(x: Tensor, z: Tensor, positive: Tensor, tau: float, *, candidates: Tensor | None = None,
               validate: bool = True) -> Tensor:
    """MI-InfoNCE, the paper's Eq. 2 (Multi-Instance InfoNCE of Vi2CLR, ref. [161]).

    ``L = -1/B sum_i log( sum_{k in pos(i)} exp(cos(x_i, z_k)/tau) / sum_{k in cand(i)} exp(cos(x_i, z_k)/tau) )``

    computed as ``logsumexp`` over the positives minus ``logsumexp`` over the candidates, so it
    is stable for any ``tau``. By default every column is a candidate (the negatives of clip i are
    all I-frames of the other clips in the batch); ``candidates`` ((K,) or (B, K) bool) restricts
    the denominator, e.g. to drop padding I-frames or to keep a few sampled negatives
    (:func:`sample_negatives`). Positives must be candidates.

    ``validate=True`` checks that every row has at least one positive (ValueError otherwise);
    that check synchronises with the device, so training code that guarantees it can pass
    ``validate=False`` (a row without positives then gives a huge, useless loss of about 3e38).
    """
    if x.dim() != 2 or z.dim() != 2 or x.shape[1] != z.shape[1]:
        raise ValueError(f"x must be (B, C) and z (K, C); got {tuple(x.shape)} and {tuple(z.shape)}")
    if positive.shape != (x.shape[0], z.shape[0]):
        raise ValueError(f"positive must be (B, K) = {(x.shape[0], z.shape[0])}, got {tuple(positive.shape)}")
    positive = positive.to(torch.bool)
    cand = _candidates_mask(candidates, positive)
    if validate:
        if not bool(positive.any(dim=1).all()):
            rows = (~positive.any(dim=1)).nonzero().flatten().tolist()
            raise ValueError(f"mi_infonce: clip(s) {rows} have no positive I-frame (need at least one per row)")
        if cand is not None and bool((positive & ~cand).any()):
            raise ValueError("mi_infonce: every positive must also be a candidate")
    logits = cosine_logits(x, z, tau)
    neg_inf = torch.finfo(logits.dtype).min
    log_num = torch.logsumexp(logits.masked_fill(~positive, neg_inf), dim=1)
    den_logits = logits if cand is None else logits.masked_fill(~cand, neg_inf)
    log_den = torch.logsumexp(den_logits, dim=1)
    return (log_den - log_num).mean()


def sample_negatives(positive: Tensor, valid: Tensor | None, num_negatives: int,
                     generator: torch.Generator | None = None) -> Tensor:
    """Candidate mask keeping all positives plus ``num_negatives`` random negatives per clip.

    Paper IV-B: "we sample all the I-frames as positive samples and three negative frames from
    other video". Negatives are drawn uniformly without replacement among the valid
    non-positive columns (fewer when not enough exist). No host synchronisation.
    """
    positive = positive.to(torch.bool)
    neg_ok = ~positive if valid is None else (~positive & _candidates_mask(valid, positive))
    k = min(num_negatives, positive.shape[1])
    scores = torch.rand(positive.shape, generator=generator, device=positive.device)
    scores = scores.masked_fill(~neg_ok, -1.0)
    top, idx = scores.topk(k, dim=1)
    chosen = torch.zeros_like(positive).scatter(1, idx, top >= 0)
    return positive | chosen


def select_one_positive(positive: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Index (B,) of one positive column per row, uniformly at random (``generator`` on the device)."""
    scores = torch.rand(positive.shape, generator=generator, device=positive.device)
    return scores.masked_fill(~positive.to(torch.bool), -1.0).argmax(dim=1)


def info_nce(x: Tensor, z: Tensor, tau: float) -> Tensor:
    """Standard InfoNCE (CPC/MoCo form): ``z[i]`` is the positive of ``x[i]``, every ``z[k], k != i`` a negative.

    ``-1/B sum_i log( exp(cos(x_i, z_i)/tau) / sum_k exp(cos(x_i, z_k)/tau) )`` = cross-entropy on
    the (B, B) cosine/tau logits with targets ``arange(B)``.
    """
    logits = cosine_logits(x, z, tau)
    return F.cross_entropy(logits, torch.arange(x.shape[0], device=x.device))


def info_nce_single(x: Tensor, z: Tensor, positive: Tensor, tau: float,
                    generator: torch.Generator | None = None) -> Tensor:
    """InfoNCE with one random positive I-frame per clip, the paper's Eq. 10 (Table IV "InfoNCE").

    For each clip i one of its I-frames is drawn (:func:`select_one_positive`); ``z_i^*`` is that
    I-frame and the negatives ``z_k^*, k != i`` are the I-frames drawn for the other clips, i.e.
    :func:`info_nce` on the (B, B) matrix. (Reading used: "we randomly select an I-frame from the
    video clip as learning objective"; the other reading, all I-frames of other clips as
    negatives, is :func:`mi_infonce` with a one-hot ``positive``.)
    """
    idx = select_one_positive(positive, generator)
    return info_nce(x, z[idx], tau)


def l2_single(x: Tensor, z: Tensor, positive: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Table IV's "L2 loss": ``1/B sum_i || x_i/|x_i| - z_i/|z_i| ||_2^2`` with one random positive ``z_i``.

    Features are L2-normalised first (so the value is ``2 - 2 cos``, in [0, 4]); without
    normalisation the loss is trivially minimised by shrinking both features. No negatives, as
    in the paper's ablation.
    """
    idx = select_one_positive(positive, generator)
    dt = _at_least_float32(x.dtype)
    xn = F.normalize(x.to(dt), dim=1)
    zn = F.normalize(z[idx].to(dt), dim=1)
    return (xn - zn).pow(2).sum(dim=1).mean()


def context_hits(x: Tensor, z: Tensor, positive: Tensor, candidates: Tensor | None = None) -> Tensor:
    """Per clip (B,), 1.0 when its most similar (candidate) I-frame is one of its positives."""
    sim = cosine_logits(x.detach(), z.detach(), 1.0)
    cand = _candidates_mask(candidates, positive.to(torch.bool))
    if cand is not None:
        sim = sim.masked_fill(~cand, float("-inf"))
    best = sim.argmax(dim=1, keepdim=True)
    return positive.to(torch.bool).gather(1, best).float().squeeze(1)


def context_top1(x: Tensor, z: Tensor, positive: Tensor, candidates: Tensor | None = None) -> Tensor:
    """Fraction of clips whose most similar (candidate) I-frame is one of their positives (Table II)."""
    return context_hits(x, z, positive, candidates).mean()


__all__ = ["context_hits", "context_top1", "cosine_logits", "info_nce", "info_nce_single", "l2_single", "mi_infonce",
           "sample_negatives", "select_one_positive"]
