"""CSVR models: backbones (registry and :class:`BackboneConfig`), the pose and video GANs, the
integration layer, every method's heads (:mod:`csvr.models.heads`), the whole :class:`CSVRModel`
(paper Sec. III) and the downstream encoders' contract
(:mod:`csvr.models.encoder`, :mod:`csvr.models.features`). See ``docs/design-choices.md`` for
every choice the paper leaves open.

The names below are imported on first use, so that ``csvr.models.features`` (the feature names,
read by the CLI's ``--help``) does not pull in torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "backbone_kind": "csvr.models.backbones", "create_backbone": "csvr.models.backbones",
    "list_backbones": "csvr.models.backbones", "BackboneConfig": "csvr.models.backbones",
    "CSVRBatch": "csvr.models.csvr_model",
    "CSVREncoder": "csvr.models.csvr_model", "CSVRModel": "csvr.models.csvr_model",
    "CSVRModelConfig": "csvr.models.csvr_model",
    "Encoder": "csvr.models.encoder", "BackboneEncoder": "csvr.models.encoder",
    "IntegrationLayer": "csvr.models.integration",
    "PoseCritic": "csvr.models.pose_gan", "PoseGANConfig": "csvr.models.pose_gan", "PoseGenerator": "csvr.models.pose_gan",
    "VideoCritic": "csvr.models.video_gan", "VideoGANConfig": "csvr.models.video_gan",
    "VideoGenerator": "csvr.models.video_gan",
    "FEATURE_NAMES": "csvr.models.features", "FeatureName": "csvr.models.features",
    "needs_poses": "csvr.models.features",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'csvr.models' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
