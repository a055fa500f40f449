"""CSVR models: backbones (registry), the pose and video GANs, the integration layer, the heads
and the whole :class:`CSVRModel` (paper Sec. III). See ``docs/design-choices.md`` for every choice the
paper leaves open."""

from csvr.models.backbones import backbone_kind, create_backbone, list_backbones
from csvr.models.csvr_model import (
    BackboneConfig,
    CSVRBatch,
    CSVREncoder,
    CSVRModel,
    CSVRModelConfig,
    LossOutput,
)
from csvr.models.integration import IntegrationLayer
from csvr.models.pose_gan import PoseCritic, PoseGANConfig, PoseGenerator
from csvr.models.video_gan import VideoCritic, VideoGANConfig, VideoGenerator

__all__ = [
    "BackboneConfig", "CSVRBatch", "CSVREncoder", "CSVRModel", "CSVRModelConfig", "IntegrationLayer", "LossOutput",
    "PoseCritic", "PoseGANConfig", "PoseGenerator", "VideoCritic", "VideoGANConfig", "VideoGenerator",
    "backbone_kind", "create_backbone", "list_backbones",
]
