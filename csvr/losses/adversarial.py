"""Adversarial losses: GAN losses on logits, the WGAN-GP penalty and the OSGAN one-stage update.

Conventions: a critic returns one logit per sample, shape (B,) (or (B, 1)); ``weight`` is an
optional per-sample weight (B,) (e.g. 0 for a video without a person), and every loss is the
weighted mean ``sum_i w_i l_i / sum_i w_i`` (0 when all weights are 0).

Loss kinds (``AdversarialKind``), with per-sample critic terms ``l_D`` and generator term ``l_G``
as functions of the critic logit ``y``:

============== ============================== ===================== ===========================
kind           l_D (real) + l_D (fake)        l_G (fake)            dl_G/dy / dl_D_fake/dy
============== ============================== ===================== ===========================
nonsaturating  softplus(-y_r) + softplus(y_f)  softplus(-y_f)        -(1 - s(y))/s(y) = -exp(-y)
minimax        softplus(-y_r) + softplus(y_f)  -softplus(y_f)        -1
wgan           -y_r + y_f                     -y_f                  -1
============== ============================== ===================== ===========================

(``softplus(-y) = -log sigmoid(y)``, ``softplus(y) = -log(1 - sigmoid(y))``: the BCE terms of the
paper's Eq. 1/6/7; "minimax" is Eq. 1 read literally, "nonsaturating" Goodfellow's usual
generator loss.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

AdversarialKind = Literal["nonsaturating", "minimax", "wgan"]
ADVERSARIAL_KINDS: tuple[str, ...] = ("nonsaturating", "minimax", "wgan")

# exp(80) ~ 5.5e34 stays finite in float32; see generator_gradient_ratio.
_MAX_NEG_LOGIT = 80.0


def _check_kind(kind: str) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"unknown adversarial loss {kind!r}; valid: {', '.join(ADVERSARIAL_KINDS)}")


def _flat_logits(y: Tensor) -> Tensor:
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise ValueError(f"critic logits must be (B,) or (B, 1), got {tuple(y.shape)}")
    return y.to(_at_least_float32(y.dtype))


def _at_least_float32(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def weighted_mean(values: Tensor, weight: Tensor | None) -> Tensor:
    """``sum_i w_i v_i / sum_i w_i`` (plain mean without weights; 0 when all weights are 0)."""
    if weight is None:
        return values.mean()
    w = weight.to(values.dtype)
    return (values * w).sum() / w.sum().clamp_min(1e-12)


def critic_loss(real_logits: Tensor, fake_logits: Tensor, kind: AdversarialKind = "nonsaturating",
                weight: Tensor | None = None) -> Tensor:
    """The critic's loss (it *minimises* it): BCE ``-log D(real) - log(1 - D(fake))`` or WGAN ``-D(real) + D(fake)``."""
    _check_kind(kind)
    yr, yf = _flat_logits(real_logits), _flat_logits(fake_logits)
    if kind == "wgan":
        per = -yr + yf
    else:
        per = F.softplus(-yr) + F.softplus(yf)
    return weighted_mean(per, weight)


def generator_loss(fake_logits: Tensor, kind: AdversarialKind = "nonsaturating", weight: Tensor | None = None) -> Tensor:
    """The generator's adversarial loss (it minimises it); see the module table."""
    _check_kind(kind)
    yf = _flat_logits(fake_logits)
    if kind == "nonsaturating":
        per = F.softplus(-yf)
    elif kind == "minimax":
        per = -F.softplus(yf)
    else:
        per = -yf
    return weighted_mean(per, weight)


def generator_gradient_ratio(fake_logits: Tensor, kind: AdversarialKind = "nonsaturating") -> Tensor:
    """Per-sample ``(dl_G/dy) / (dl_D_fake/dy)`` at the critic's fake logits, (B,), at least float32.

    Non-saturating BCE: ``-(1 - sigmoid(y)) / sigmoid(y) = -exp(-y)``; the exponent is capped at
    80 so the ratio stays finite in float32 (for logits below -80, i.e. ``sigmoid(y) < 2e-35``,
    the generator's gradient is underestimated; the incoming critic gradient has underflowed
    there anyway). Minimax BCE and WGAN: ``-1`` (a gradient reversal).
    """
    _check_kind(kind)
    y = _flat_logits(fake_logits).detach()
    if kind == "nonsaturating":
        return -torch.exp((-y).clamp(max=_MAX_NEG_LOGIT))
    return torch.full_like(y, -1.0)


class _OneStageLink:
    """Carries the per-sample ratio from the critic's forward to the backward of :class:`OneStageGradient`."""

    __slots__ = ("ratio",)

    def __init__(self) -> None:
        self.ratio: Tensor | None = None


class OneStageGradient(torch.autograd.Function):
    """OSGAN gradient-scaling layer (Shen et al. 2021, "Training GANs in One Stage", paper ref. [50]).

    Forward: identity on the fake sample (any shape (B, ...), e.g. (B, C, T) poses or
    (B, C, T, H, W) videos). Backward: the incoming gradient (the critic loss's gradient w.r.t.
    the fake sample) is multiplied per sample by ``link.ratio`` = dl_G/dy / dl_D_fake/dy, which,
    because a per-sample critic gives ``dL_D/dx_i = dl_D/dy_i * dy_i/dx_i``, turns it into the
    generator loss's gradient ``dL_G/dx_i``. Use it through :func:`one_stage_adversarial_loss`;
    the critic must not mix samples (no BatchNorm in train mode).
    """

    @staticmethod
    def forward(ctx, fake: Tensor, link: _OneStageLink) -> Tensor:  # type: ignore[override]
        ctx.link = link
        return fake.view_as(fake)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        ratio = ctx.link.ratio
        if ratio is None:
            raise RuntimeError("OneStageGradient: the ratio was never set (call link after the critic's forward)")
        shape = (grad.shape[0],) + (1,) * (grad.dim() - 1)
        dt = _at_least_float32(grad.dtype)
        return (grad.to(dt) * ratio.to(dt).view(shape)).to(grad.dtype), None


@dataclass
class OneStageTerms:
    """Result of :func:`one_stage_adversarial_loss`.

    ``loss`` is the only tensor to put in the objective; the others are detached, for logging.
    """

    loss: Tensor
    critic: Tensor
    generator: Tensor
    real_logits: Tensor
    fake_logits: Tensor


def one_stage_adversarial_loss(critic: Callable[..., Tensor], real: Tensor, fake: Tensor,
                               kind: AdversarialKind = "nonsaturating", cond: Tensor | None = None,
                               weight: Tensor | None = None, generator_weight: float = 1.0) -> OneStageTerms:
    """Adversarial terms for an OSGAN one-stage update (paper ref. [50]), in one critic pass.

    Returns ``terms.loss = L_D(real, fake)`` (:func:`critic_loss`), computed with the fake
    sample passed through :class:`OneStageGradient`. One ``backward()`` of (a positive multiple
    of) ``terms.loss`` gives:

    * critic parameters: exactly ``dL_D/d theta_D``, the critic's descent direction (real and
      fake terms), as in the critic step of a two-step update with the fake detached;
    * everything upstream of ``fake`` (generator, its inputs' encoders): exactly
      ``generator_weight * dL_G/d theta_G``, the generator's descent direction, as in the
      generator step of a two-step update (where the critic's own gradient is thrown away);
    * ``real`` and ``cond`` are detached, so nothing upstream of them receives anything.

    Both gradients are taken at the same critic parameters (no critic update in between, which
    is the one difference from alternating updates). Other terms added to the same objective
    (the generator's L2 term, :func:`gradient_penalty` on detached fakes) simply add their own
    gradients. The critic is run once on ``cat([real, fake])`` (and ``cond`` twice), so it must
    treat samples independently.
    """
    real = real.detach()
    if cond is not None:
        cond = cond.detach()
    link = _OneStageLink()
    fake_in = OneStageGradient.apply(fake, link)
    both = torch.cat([real.to(fake_in.dtype), fake_in], dim=0)
    logits = critic(both) if cond is None else critic(both, torch.cat([cond, cond], dim=0))
    logits = _flat_logits(logits)
    real_logits, fake_logits = logits[: real.shape[0]], logits[real.shape[0]:]
    link.ratio = generator_weight * generator_gradient_ratio(fake_logits, kind)
    loss = critic_loss(real_logits, fake_logits, kind, weight)
    g = generator_loss(fake_logits.detach(), kind, weight) * generator_weight
    return OneStageTerms(loss=loss, critic=loss.detach(), generator=g.detach(),
                         real_logits=real_logits.detach(), fake_logits=fake_logits.detach())


def gradient_penalty(critic: Callable[..., Tensor], real: Tensor, fake: Tensor, cond: Tensor | None = None,
                     weight: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, paper ref. [72]; last term of Eq. 1).

    ``E[(||grad_x D(x_hat | cond)||_2 - 1)^2]`` on ``x_hat = e * real + (1 - e) * fake`` with one
    ``e ~ U(0, 1)`` per sample. ``fake`` (and ``real``, ``cond``) are detached, so the penalty's
    gradient reaches the critic's parameters only (through a double backward), never the
    generator. The norm is over all non-batch dimensions of the sample; ``cond`` is not
    differentiated.
    """
    real = real.detach()
    fake = fake.detach()
    if cond is not None:
        cond = cond.detach()
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    dt = _at_least_float32(real.dtype)
    eps = torch.rand(shape, generator=generator, device=real.device, dtype=torch.float32).to(dt)
    # The penalty is itself a gradient: computed under no_grad too (evaluation), but only
    # differentiable (create_graph) when the caller records gradients.
    outer_grad = torch.is_grad_enabled()
    with torch.enable_grad():
        x_hat = (eps * real.to(dt) + (1 - eps) * fake.to(dt)).to(real.dtype).requires_grad_(True)
        out = critic(x_hat) if cond is None else critic(x_hat, cond)
        (grad,) = torch.autograd.grad(_flat_logits(out).sum(), x_hat, create_graph=outer_grad)
        norm = grad.to(dt).flatten(1).norm(2, dim=1)
        return weighted_mean((norm - 1.0).pow(2), weight)


__all__ = ["ADVERSARIAL_KINDS", "AdversarialKind", "OneStageGradient", "OneStageTerms", "critic_loss",
           "generator_gradient_ratio", "generator_loss", "gradient_penalty", "one_stage_adversarial_loss",
           "weighted_mean"]
