"""What one training step returns: :class:`LossOutput`, the scalar to backpropagate plus named,
detached per-term values and metrics.

Every method's ``training_step`` (:class:`csvr.methods.base.Method`), the classifier of
:mod:`csvr.eval.classifier` and :meth:`csvr.models.csvr_model.CSVRModel.compute_losses` return
one; the engine calls ``total.backward()`` once and logs ``terms`` and ``metrics``. It is a plain
container of losses, so it lives with the losses (below the models), where every method and model
can import it without importing another method's model.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class LossOutput:
    """``total``: the scalar to call ``backward()`` on once. ``terms``: detached per-term values,
    ``total`` among them (CSVR's are listed in :meth:`~csvr.models.csvr_model.CSVRModel.compute_losses`;
    IIC's ``iic``, CVRL's ``nt_xent``, the classifier's ``ce``). ``metrics``: detached pretext
    metrics (accuracies, errors, the critics' mean logits), each logged beside the terms."""

    total: Tensor
    terms: dict[str, Tensor]
    metrics: dict[str, Tensor]


__all__ = ["LossOutput"]
