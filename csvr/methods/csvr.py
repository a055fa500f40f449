"""CSVR (the paper) as a method of the engine: data sampling, device-side augmentation and the
staged schedule around :class:`csvr.models.csvr_model.CSVRModel`.

Stages (paper III-E and IV-B: "we firstly pretrain each branch separately and then jointly
optimize them"): ``pose`` (the pose CGAN alone, L_pose), ``context`` (context matching alone,
L_context), ``video`` (the integration layer and the two video GANs on detached f_s / f_d,
L_video), ``joint`` (everything with Eq. 9; GANs not frozen). Each stage's optimiser holds only
the parameters that stage trains.

Augmentation: the clip and its future clip share the spatial crop (in the worker) and the colour
parameters (here), so the predictor's input is the same view of the world as its target; the
I-frames get their own crop and colour parameters, so context matching cannot succeed on
identical pixels. The video GANs' *targets* are the geometrically augmented clip and future
clip without colour jitter, grayscale or blur (the same crop and flip as the encoder's input):
reconstructing photometric nuisance would push f_s to encode exactly what context matching
with independently jittered I-frames teaches it to discard.

Optimiser roles (:mod:`csvr.engine.optim`): the pose generator G_p and the video generators are
``generator``, D_p and the video critics ``critic``, everything else (V-network, I-network,
heads, integration layer) ``encoder``.

Pretext diagnostics (each beside its trivial baseline, logged every step): ``pose_mse`` vs
``pose_mse_copy`` (repeat the last observed pose), ``pose_d_gap`` / ``video_r_d_gap`` /
``video_p_d_gap`` (critic logit on real minus on fake), ``context_top1`` vs ``context_chance``,
``video_r_mse`` / ``video_p_mse`` vs ``video_r_mse_mean`` / ``video_p_mse_mean`` (every clip
predicted as the batch's mean clip), ``iframe_own_frac`` (clips whose span holds an I-frame) and
``iframes_per_clip`` (I-frames inside the span, before ``max_iframes`` caps them).
"""

from __future__ import annotations

from torch import Tensor

from csvr.data.datasets import PretrainDataset
from csvr.data.transforms import normalize, to_float_clip
from csvr.errors import ConfigError
from csvr.methods.base import LossOutput, Method, PretextCheck, register_method
from csvr.models.csvr_model import CSVRBatch, CSVRModel, CSVRModelConfig
from csvr.models.features import FEATURE_NAMES
from csvr.models.video_gan import video_target_from_clip

STAGE_GROUPS = {
    "pose": ("pose_generator", "pose_critic"),
    "context": ("v_network", "i_network", "heads"),
    "video": ("integration", "video_generators", "video_critics"),
    "joint": ("pose_generator", "pose_critic", "v_network", "i_network", "heads", "integration",
              "video_generators", "video_critics"),
}
STAGE_BRANCHES = {"pose": ("pose",), "context": ("context",), "video": ("video",), "joint": None}
ROLE_GROUPS = {
    "generator": ("pose_generator", "video_generators"),
    "critic": ("pose_critic", "video_critics"),
    "encoder": ("v_network", "i_network", "heads", "integration"),
}


@register_method("csvr")
class CSVR(Method):
    config_class = CSVRModelConfig
    stages = ("pose", "context", "video", "joint")
    default_stages = ("pose", "context", "video", "joint")
    features = FEATURE_NAMES
    pretext_checks = (
        PretextCheck("pose", "pose_mse", "pose_mse_copy", "lower", 0.9),
        PretextCheck("pose critic", "pose_d_gap", None, "gap", 0.3),
        PretextCheck("context", "context_top1", "context_chance", "higher", 2.0),
        PretextCheck("video reconstruct", "video_r_mse", "video_r_mse_mean", "lower", 0.9),
        PretextCheck("video predict", "video_p_mse", "video_p_mse_mean", "lower", 0.9),
        PretextCheck("video r critic", "video_r_d_gap", None, "gap", 0.3),
        PretextCheck("video p critic", "video_p_d_gap", None, "gap", 0.3),
    )

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

    def parameter_roles(self):
        groups = self.model.parameter_groups()
        return {role: [p for g in names for p in groups[g]] for role, names in ROLE_GROUPS.items()}

    def _iframes(self, iframes_u8: Tensor) -> Tensor:
        """uint8 (B, K, S, S, 3) -> normalised (B, K, 3, S, S) with their own colour parameters."""
        x = to_float_clip(iframes_u8)  # (B, 3, K, S, S): the K I-frames of a clip as "time"
        x = normalize(self.color.apply(x, self.color.sample(x.shape[0], x.device)))
        return x.permute(0, 2, 1, 3, 4)

    def training_step(self, batch: dict[str, Tensor], stage: str) -> LossOutput:
        branches = STAGE_BRANCHES[stage] or ("pose", "context", "video")
        on = {"pose": self.cfg.use_pose, "context": self.cfg.use_context, "video": self.cfg.use_video}
        need_pixels = any(on[b] for b in branches if b in ("context", "video"))
        # the augmented views; the pose stage never looks at pixels, so it skips the colour
        # augmentation and everything else (poses, masks) is CSVRBatch.from_samples' conversion
        aug: dict[str, Tensor] = {}
        params = None
        if need_pixels:
            aug["clip"], params = self.augment_clip(batch["clip"])
        video_on = "video" in branches and on["video"]
        if video_on:
            aug["video_target"] = self._clean_target(batch["clip"])
        if video_on and "future" in batch:
            aug["future_target"] = self._clean_target(batch["future"])
        if "context" in branches and on["context"] and "iframes" in batch:
            aug["iframes"] = self._iframes(batch["iframes"])
        # the model reads the future clip only to make its pixel target, made above: converting
        # (and colour-augmenting) it again would be thrown away
        inputs = CSVRBatch.from_samples({k: v for k, v in batch.items() if k != "future"}, **aug)
        out = self.model.compute_losses(inputs, branches=STAGE_BRANCHES[stage], detach_features=(stage == "video"))
        if "context" in branches and on["context"]:
            out.metrics.update(iframe_statistics(batch))
        return out

    def _clean_target(self, clip_u8: Tensor) -> Tensor:
        """The video GANs' pixel target: the worker's crop and flip, no colour augmentation."""
        m = self.model
        return video_target_from_clip(normalize(to_float_clip(clip_u8)), m.cfg.video, m.pixel_mean, m.pixel_std)

    def encoder(self, feature: str | None = None):
        return self.model.encoder(feature or "fi")


def iframe_statistics(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """``iframe_own_frac`` (clips whose span holds an I-frame of its own) and ``iframes_per_clip``
    (I-frames inside the span before ``max_iframes`` caps them; the used ones when the batch does
    not carry ``iframe_count``)."""
    out: dict[str, Tensor] = {}
    if "iframe_fallback" in batch:
        out["iframe_own_frac"] = 1.0 - batch["iframe_fallback"].float().mean()
    if "iframe_count" in batch:
        out["iframes_per_clip"] = batch["iframe_count"].float().mean()
    elif "iframe_mask" in batch:
        out["iframes_per_clip"] = batch["iframe_mask"].float().sum(dim=1).mean()
    return out
