"""Feature integration layer, the paper's Eq. 3-5 and Fig. 2 (and Table I's Concat variant).

AdaIN-style fusion of the static context feature f_s (B, C) and the dynamic motion feature
f_d (B, C):

* Eq. 3: ``f_s_bar = (f_s - mu) / sigma`` - ``BatchNorm1d(C, affine=False)`` (batch statistics in
  training, running statistics in eval mode);
* Eq. 4: ``D = gamma_d * f_s_bar + beta_d`` with ``gamma_d = W_g f_d + b_g``,
  ``beta_d = W_b f_d + b_b`` (a "convolution" of a vector = a linear layer);
* Eq. 5: ``M = sigmoid(W_m f_s_bar + b_m)``, ``f_i = (1 - M) * D + M * f_s`` (note: the
  *un-normalised* f_s, as written in Eq. 5 and Fig. 2).

``gamma_d`` is used literally (not SPADE's ``1 + gamma``) but its bias starts at 1 and its
weight at 0, so that at initialisation ``D = f_s_bar + beta_d`` rather than ``D ~ beta_d``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

FusionKind = Literal["adain", "concat"]


class IntegrationLayer(nn.Module):
    """``forward(f_s, f_d, force_mask=None, return_parts=False)`` -> f_i (B, C).

    ``kind="adain"``: Eq. 3-5. ``kind="concat"``: Table I's ``f_i(Concat)`` -
    ``Linear(2C, C)([f_d, f_s])`` ("directly concatenate f_d and f_s, followed by convolution").

    ``force_mask`` (AdaIN only) replaces M by a constant or tensor broadcastable to (B, C) - e.g.
    0.0 gives ``f_i = D`` and 1.0 gives ``f_i = f_s`` exactly. ``return_parts=True`` also returns
    a dict with ``normalized`` (f_s_bar), ``gamma``, ``beta``, ``D`` and ``M``.
    """

    def __init__(self, dim: int, kind: FusionKind = "adain") -> None:
        super().__init__()
        if kind not in ("adain", "concat"):
            raise ValueError(f"unknown fusion {kind!r}; valid: adain, concat")
        self.dim = dim
        self.kind = kind
        if kind == "adain":
            self.norm = nn.BatchNorm1d(dim, affine=False)
            self.gamma = nn.Linear(dim, dim)
            self.beta = nn.Linear(dim, dim)
            self.mask = nn.Linear(dim, dim)
            nn.init.zeros_(self.gamma.weight)
            nn.init.ones_(self.gamma.bias)
        else:
            self.fuse = nn.Linear(2 * dim, dim)

    def forward(self, f_s: Tensor, f_d: Tensor, force_mask: float | Tensor | None = None,
                return_parts: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        if f_s.shape != f_d.shape or f_s.dim() != 2 or f_s.shape[1] != self.dim:
            raise ValueError(f"f_s and f_d must both be (B, {self.dim}); got {tuple(f_s.shape)}, {tuple(f_d.shape)}")
        if self.kind == "concat":
            if force_mask is not None:
                raise ValueError("force_mask applies to the AdaIN fusion only")
            f_i = self.fuse(torch.cat([f_d, f_s], dim=1))
            return (f_i, {}) if return_parts else f_i
        normalized = self.norm(f_s)                       # Eq. 3
        gamma, beta = self.gamma(f_d), self.beta(f_d)
        d = gamma * normalized + beta                      # Eq. 4
        if force_mask is None:
            m = torch.sigmoid(self.mask(normalized))
        else:
            m = (torch.full_like(d, float(force_mask)) if not isinstance(force_mask, Tensor)
                 else force_mask.to(d.dtype).expand_as(d))
        f_i = (1 - m) * d + m * f_s                        # Eq. 5
        if return_parts:
            return f_i, {"normalized": normalized, "gamma": gamma, "beta": beta, "D": d, "M": m}
        return f_i


__all__ = ["FusionKind", "IntegrationLayer"]
