"""Every loss of the paper, one function per formula (docstrings give the equation numbers).

* contrastive: :func:`mi_infonce` (Eq. 2), :func:`info_nce_single` (Eq. 10), :func:`l2_single`
  (Table IV), :func:`info_nce`, :func:`context_top1` (Table II metric).
* adversarial: :func:`critic_loss`, :func:`generator_loss` (BCE / WGAN terms of Eq. 1, 6, 7),
  :func:`gradient_penalty` (WGAN-GP term of Eq. 1), :func:`one_stage_adversarial_loss` and
  :class:`OneStageGradient` (OSGAN one-stage update, ref. [50]).
* output: :class:`LossOutput`, what a training step returns (the total to backpropagate, named
  terms and metrics).

The L2 reconstruction terms live next to their generators: ``csvr.models.pose_gan.pose_l2_loss``
(Eq. 1) and ``csvr.models.video_gan.pixel_l2_loss`` (Eq. 6, 7).
"""

from csvr.losses.adversarial import (
    ADVERSARIAL_KINDS,
    AdversarialKind,
    OneStageGradient,
    OneStageTerms,
    critic_loss,
    generator_gradient_ratio,
    generator_loss,
    gradient_penalty,
    one_stage_adversarial_loss,
    weighted_mean,
)
from csvr.losses.contrastive import (
    context_hits,
    context_top1,
    cosine_logits,
    info_nce,
    info_nce_single,
    l2_single,
    mi_infonce,
    sample_negatives,
    select_one_positive,
)
from csvr.losses.output import LossOutput

__all__ = [
    "ADVERSARIAL_KINDS", "AdversarialKind", "LossOutput", "OneStageGradient", "OneStageTerms", "context_hits", "context_top1", "cosine_logits",
    "critic_loss", "generator_gradient_ratio", "generator_loss", "gradient_penalty", "info_nce", "info_nce_single",
    "l2_single", "mi_infonce", "one_stage_adversarial_loss", "sample_negatives", "select_one_positive",
    "weighted_mean",
]
