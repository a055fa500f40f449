"""CSVR (the paper) as a method of the engine: data sampling, device-side augmentation and the
staged schedule around :class:`csvr.models.csvr_model.CSVRModel`.

Stages (paper III-E and IV-B: "we firstly pretrain each branch separately and then jointly
optimize them"): ``pose`` (the pose CGAN alone, L_pose), ``context`` (context matching alone,
L_context), ``video`` (the integration layer and the two video GANs on detached f_s / f_d,
L_video), ``joint`` (everything with Eq. 9; GANs not frozen). Each stage's optimiser holds only
the parameters that stage trains.

Augmentation: the clip and its future clip share the spatial crop (in the worker) and the colour
parameters (here), so the predictor's target is the same view of the world as its input; the
I-frames get their own crop and colour parameters, so context matching cannot succeed on
identical pixels.
"""

from __future__ import annotations

from torch import Tensor

from csvr.data.datasets import PretrainDataset
from csvr.data.transforms import normalize, to_float_clip
from csvr.errors import ConfigError
from csvr.methods.base import LossOutput, Method, register_method
from csvr.models.csvr_model import CSVRModel, CSVRModelConfig

STAGE_GROUPS = {
    "pose": ("pose_generator", "pose_critic"),
    "context": ("v_network", "i_network", "heads"),
    "video": ("integration", "video_generators", "video_critics"),
    "joint": ("pose_generator", "pose_critic", "v_network", "i_network", "heads", "integration",
              "video_generators", "video_critics"),
}
STAGE_BRANCHES = {"pose": ("pose",), "context": ("context",), "video": ("video",), "joint": None}


@register_method("csvr")
class CSVR(Method):
    config_class = CSVRModelConfig
    stages = ("pose", "context", "video", "joint")
    default_stages = ("pose", "context", "video", "joint")
    features = ("fi", "fs", "fd", "backbone")
    needs_poses = True

    def __init__(self, cfg: CSVRModelConfig, color=None):
        super().__init__(cfg, color)
        self.model = CSVRModel(cfg)

    def check_stages(self, stages: list[str]) -> None:
        on = {"pose": self.cfg.use_pose, "context": self.cfg.use_context, "video": self.cfg.use_video}
        for s in stages:
            if s in on and not on[s]:
                raise ConfigError(f"stage {s!r} trains a branch that the config switches off (model.use_{s}=false)")

    def train_dataset(self, manifest, records, clip_cfg, seed, pose_cache=None):
        if pose_cache is None and (self.cfg.use_pose or self.cfg.use_video):
            raise ConfigError("CSVR needs poses: set data.pose_cache to a cache made by 'csvr prepare poses' "
                              "(or switch off model.use_pose and model.use_video)")
        return PretrainDataset(manifest, records, clip_cfg, seed=seed, pose_cache=pose_cache)

    def stage_parameters(self, stage: str):
        groups = self.model.parameter_groups()
        return [p for g in STAGE_GROUPS[stage] for p in groups[g]]

    def _iframes(self, iframes_u8: Tensor) -> Tensor:
        """uint8 (B, K, S, S, 3) -> normalised (B, K, 3, S, S) with their own colour parameters."""
        x = to_float_clip(iframes_u8)  # (B, 3, K, S, S): the K I-frames of a clip as "time"
        x = normalize(self.color.apply(x, self.color.sample(x.shape[0], x.device)))
        return x.permute(0, 2, 1, 3, 4)

    def training_step(self, batch: dict[str, Tensor], stage: str) -> LossOutput:
        branches = STAGE_BRANCHES[stage] or ("pose", "context", "video")
        on = {"pose": self.cfg.use_pose, "context": self.cfg.use_context, "video": self.cfg.use_video}
        need_pixels = any(on[b] for b in branches if b in ("context", "video"))
        if need_pixels:
            clip, params = self.augment_clip(batch["clip"])
        else:  # the pose stage never looks at pixels: skip the colour augmentation
            clip, params = normalize(to_float_clip(batch["clip"])), None
        inputs = {"clip": clip}
        if "video" in branches and on["video"] and "future" in batch:
            inputs["future"], _ = self.augment_clip(batch["future"], params)
        if "context" in branches and on["context"] and "iframes" in batch:
            inputs["iframes"] = self._iframes(batch["iframes"])
            inputs["iframe_mask"] = batch["iframe_mask"]
        if "poses" in batch:
            inputs["poses"] = batch["poses"][..., :2]
            inputs["pose_conf"] = batch["poses"][..., 2]
            inputs["future_poses"] = batch["future_poses"][..., :2]
            inputs["future_pose_conf"] = batch["future_poses"][..., 2]
            inputs["pose_valid"] = batch["pose_valid"]
        return self.model.compute_losses(inputs, branches=STAGE_BRANCHES[stage], detach_features=(stage == "video"))

    def encoder(self, feature: str | None = None):
        return self.model.encoder(feature or "fi")
