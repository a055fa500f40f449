"""csvr: self-supervised video representation learning for action recognition.

Implements CSVR (Zhang et al., "Collaboratively Self-supervised Video Representation Learning
for Action Recognition", IEEE TIFS 2025, arXiv 2401.07584) and the peer methods IIC and CVRL on
one data layer, one set of backbones and one training engine.
"""

__version__ = "0.1.0"

from csvr.errors import CsvrError  # noqa: E402  (re-exported)

__all__ = ["CsvrError", "__version__"]
