"""The CSVR model (paper Sec. III): three branches, the integration layer and the joint loss (Eq. 9).

Modules (attribute names; ``parameter_groups()`` returns them by group):

* ``v_network`` - the 3D-CNN backbone (C3D / R3D-18 / R(2+1)D-18 / S3D) on the clip;
  ``context_head_v`` = g^V; ``f_s = g^V(pool(v_network(clip)))`` (III-C).
* ``i_network`` - R2D-10 on every I-frame; ``context_head_i`` = g^I (III-C).
* ``pose_generator`` - G_p (encoder-decoder 1D CNN); ``pose_critic`` - D_p (III-B).
* ``motion_head`` - conv + MLP from encoder layer ``pose.fd_layer`` of G_p to f_d (III-B).
* ``integration`` - Eq. 3-5 (AdaIN) or Table I's Concat, f_i from (f_s, f_d) (III-D).
* ``reconstructor`` / ``reconstructor_critic`` (G_v^r / D_v^r) and ``predictor`` /
  ``predictor_critic`` (G_v^p / D_v^p): conditional TGANv2-style video GANs (III-D).

``compute_losses(batch)`` returns ``LossOutput(total, terms, metrics)`` with
``total = sigma_p L_pose + sigma_c L_context + L_video`` (Eq. 9), ``L_video = mean(L_r, L_p)``
(Eq. 8). All GAN terms use the OSGAN one-stage update, so *one* ``total.backward()`` gives every
critic its own (descent) gradient and every generator - including the feature extractors
upstream of f_i, when not detached - the generator's gradient. ``total``'s *value* is therefore
a surrogate (critic losses + generators' non-adversarial terms), not one player's objective;
read the per-term values in ``terms``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

from csvr.losses import (
    LossOutput,
    context_hits,
    context_top1,
    gradient_penalty,
    info_nce_single,
    l2_single,
    mi_infonce,
    one_stage_adversarial_loss,
    sample_negatives,
    weighted_mean,
)
from csvr.data.transforms import MEAN, STD, normalize, to_float_clip
from csvr.models.backbones import BackboneConfig, backbone_kind
from csvr.models.encoder import Encoder
from csvr.models.features import FEATURE_NAMES, FeatureName, needs_clip, needs_poses
from csvr.models.heads import ContextHead, MotionHead, global_average_pool
from csvr.models.integration import IntegrationLayer
from csvr.models.pose_gan import (
    PoseCritic,
    PoseGANConfig,
    PoseGenerator,
    generator_input,
    pose_l2_loss,
    pose_mse,
    poses_to_sequence,
    sequence_to_poses,
)
from csvr.models.video_gan import (
    MultiLevelCritic,
    SparsePlan,
    VideoGANConfig,
    VideoGenerator,
    level_targets,
    pixel_l2_loss,
    r1_penalty,
    video_mse,
    video_noise,
    video_target_from_clip,
)

BRANCHES = ("pose", "context", "video")
FEATURES = FEATURE_NAMES  # csvr.models.features names them

# The clip normalisation of the data layer (pytorchvideo's Kinetics values); here only used to
# turn a normalised clip back into a [-1, 1] pixel target.
INPUT_MEAN = MEAN
INPUT_STD = STD


@dataclass
class CSVRModelConfig:
    """Everything that defines a CSVR model. Defaults are the paper's full-size setting."""

    feature_dim: int = 128          # C, the common width of f_s, f_d, f_i (paper silent; 128 as in SimCLR/MoCo heads)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)                 # V-network
    i_network: BackboneConfig = field(default_factory=lambda: BackboneConfig(name="r2d_10"))
    head_hidden_dim: Optional[int] = None   # hidden width of g^V / g^I; None = the backbone's channels
    pose: PoseGANConfig = field(default_factory=PoseGANConfig)
    video: VideoGANConfig = field(default_factory=VideoGANConfig)
    context_loss: Literal["mi_infonce", "infonce", "l2"] = "mi_infonce"   # Table IV
    tau: float = 0.07               # temperature of Eq. 2 / 10 (paper silent; MoCo / CoCLR value)
    context_negatives: Optional[int] = None   # None: all other clips' I-frames; 3: paper IV-B sampling
    sigma_p: float = 0.75           # Eq. 9
    sigma_c: float = 0.75           # Eq. 9
    use_pose: bool = True
    use_context: bool = True
    use_video: bool = True
    video_targets: Literal["both", "reconstruct", "predict"] = "both"        # Table V
    fusion: Literal["adain", "concat"] = "adain"                              # Table I
    adversarial_loss: Literal["nonsaturating", "minimax", "wgan"] = "nonsaturating"
    input_mean: tuple[float, float, float] = INPUT_MEAN   # clip normalisation (must match the data layer's),
    input_std: tuple[float, float, float] = INPUT_STD     # to rebuild pixel targets from clips

    def __post_init__(self) -> None:
        if self.feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {self.feature_dim}")
        if backbone_kind(self.backbone.name) != "video":
            raise ValueError(f"backbone.name must be a video backbone, got image backbone {self.backbone.name!r}")
        if backbone_kind(self.i_network.name) != "image":
            raise ValueError(f"i_network.name must be an image backbone, got video backbone {self.i_network.name!r}")
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")
        if self.context_negatives is not None and self.context_negatives < 1:
            raise ValueError(f"context_negatives must be >= 1 or null, got {self.context_negatives}")
        if self.sigma_p < 0 or self.sigma_c < 0:
            raise ValueError(f"sigma_p and sigma_c must be >= 0, got {self.sigma_p}, {self.sigma_c}")
        if self.head_hidden_dim is not None and self.head_hidden_dim < 1:
            raise ValueError(f"head_hidden_dim must be >= 1 or null, got {self.head_hidden_dim}")
        if min(self.input_std) <= 0:
            raise ValueError(f"input_std must be positive, got {self.input_std}")


@dataclass
class CSVRBatch:
    """One pretraining batch (what the engine builds from the data loader).

    ``clip`` (B, 3, T, H, W) and ``future`` (B, 3, T', H, W) normalised like the backbone's input;
    ``iframes`` (B, K, 3, H, W) with ``iframe_mask`` (B, K) bool (>= 1 true per row; false =
    padding); ``poses`` (B, T, 18, 2) and ``future_poses`` (B, T', 18, 2) normalised (same
    parameters), ``pose_conf`` (B, T, 18) / ``future_pose_conf`` (B, T', 18) in [0, 1];
    ``pose_valid`` (B,) bool (false: no person, the sample is left out of the pose losses);
    optional ``video_target`` / ``future_target`` (B, 3, frames, size, size) in [-1, 1], else
    derived from ``clip`` / ``future`` (see :func:`csvr.models.video_gan.video_target_from_clip`).
    Fields a branch does not use may be None. :meth:`from_samples` builds one from
    :class:`~csvr.data.datasets.PretrainDataset` samples (docs/python-api.md).
    """

    clip: Tensor
    future: Optional[Tensor] = None
    iframes: Optional[Tensor] = None
    iframe_mask: Optional[Tensor] = None
    poses: Optional[Tensor] = None
    future_poses: Optional[Tensor] = None
    pose_conf: Optional[Tensor] = None
    future_pose_conf: Optional[Tensor] = None
    pose_valid: Optional[Tensor] = None
    video_target: Optional[Tensor] = None
    future_target: Optional[Tensor] = None

    @classmethod
    def from_samples(cls, batch: "Mapping[str, Any] | Sequence[Mapping[str, Any]]", **ready: Tensor | None
                     ) -> "CSVRBatch":
        """:class:`~csvr.data.datasets.PretrainDataset` samples -> the model's batch.

        ``batch``: a list of samples, or their ``torch.utils.data.default_collate``. Pixels are
        converted as the engine converts them (:func:`~csvr.data.transforms.to_float_clip`, then
        :func:`~csvr.data.transforms.normalize`), without its colour augmentation: ``clip`` /
        ``future`` uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W); ``iframes`` (B, K, S, S, 3) ->
        (B, K, 3, S, S) with ``iframe_mask``; ``poses`` / ``future_poses`` (B, T, 18, 3) -> x, y
        and ``pose_conf`` / ``future_pose_conf``; ``pose_valid``. Keys the model does not read
        (``label``, ``frame_indices``, ``iframe_count``, ``poses_raw``, ...) are ignored.
        ``ready``: fields already converted (the engine passes its augmented clips), used as given.
        """
        if not isinstance(batch, Mapping):
            batch = default_collate(list(batch))

        def pixels(x: Tensor) -> Tensor:  # uint8 (B, T, H, W, 3) -> normalised (B, 3, T, H, W)
            return normalize(to_float_clip(x))

        out: dict[str, Any] = {"clip": pixels(batch["clip"])} if ready.get("clip") is None else {}
        if batch.get("future") is not None and ready.get("future") is None:
            out["future"] = pixels(batch["future"])
        if batch.get("iframes") is not None:
            if ready.get("iframes") is None:  # the K I-frames of a clip converted as K time steps
                out["iframes"] = pixels(batch["iframes"]).permute(0, 2, 1, 3, 4)
            out["iframe_mask"] = batch["iframe_mask"]
        for name in ("poses", "future_poses"):
            if batch.get(name) is not None:  # (x, y, confidence) per joint
                out[name] = batch[name][..., :2]
                out[name.replace("poses", "pose_conf")] = batch[name][..., 2]
        if batch.get("pose_valid") is not None:
            out["pose_valid"] = batch["pose_valid"]
        out.update({k: v for k, v in ready.items() if v is not None})
        return cls(**out)

    @classmethod
    def from_any(cls, batch: "CSVRBatch | Mapping[str, Any] | Sequence[Mapping[str, Any]]") -> "CSVRBatch":
        """A CSVRBatch, a mapping of its fields, or dataset samples (uint8 clips: :meth:`from_samples`)."""
        if isinstance(batch, cls):
            return batch
        if not isinstance(batch, Mapping) or (isinstance(batch.get("clip"), Tensor) and batch["clip"].dtype == torch.uint8):
            return cls.from_samples(batch)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(batch) - names)
        if unknown:
            raise KeyError(f"unknown batch key(s) {unknown}; valid keys: {', '.join(sorted(names))}")
        return cls(**dict(batch))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "CSVRBatch":
        return CSVRBatch(**{f.name: (None if (v := getattr(self, f.name)) is None else v.to(device, non_blocking=non_blocking))
                            for f in dataclasses.fields(self)})

    def require(self, *names: str) -> None:
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"the batch lacks {', '.join(missing)}, needed by the active branches")

    def check(self) -> None:
        """Full consistency check (shapes, >= 1 I-frame per clip). Synchronises; for debugging/first batch."""
        b = self.clip.shape[0]
        if self.clip.dim() != 5 or self.clip.shape[1] != 3:
            raise ValueError(f"clip must be (B, 3, T, H, W), got {tuple(self.clip.shape)}")
        for name in dataclasses.fields(self):
            v = getattr(self, name.name)
            if v is not None and v.shape[0] != b:
                raise ValueError(f"{name.name} has batch size {v.shape[0]}, clip has {b}")
        if self.iframe_mask is not None:
            if self.iframes is None or self.iframes.shape[:2] != self.iframe_mask.shape:
                raise ValueError("iframes must be (B, K, 3, H, W) with iframe_mask (B, K)")
            empty = (~self.iframe_mask.bool().any(dim=1)).nonzero().flatten().tolist()
            if empty:
                raise ValueError(f"clip(s) {empty} have no I-frame in iframe_mask (need at least one)")
        if self.poses is not None and (self.poses.dim() != 4 or self.poses.shape[-1] != 2):
            raise ValueError(f"poses must be (B, T, N, 2), got {tuple(self.poses.shape)}")


@dataclass
class Generated:
    """What the generators make of one batch (:meth:`CSVRModel.generate`).

    ``future_poses`` (B, T', N, 2): G_p's prediction, normalised like its input poses;
    ``videos``: ``"r"`` (G_v^r's reconstruction of the clip) and / or ``"p"`` (G_v^p's prediction
    of the future clip), each (B, 3, frames, size, size) in [-1, 1], from ``f_i``."""

    future_poses: Tensor
    videos: dict[str, Tensor]
    f_i: Optional[Tensor] = None


class CSVREncoder(Encoder):
    """Standalone downstream encoder: ``forward(clip, poses=None, pose_conf=None) -> (B, out_dim)``.

    ``feature``: ``"fi"`` (integrated, the paper's choice for finetuning), ``"fs"`` (g^V output),
    ``"fd"`` (motion feature, poses only), ``"backbone"`` (pooled V-network map, before g^V).
    Holds (deep copies of, with ``copy=True``) only the modules that feature needs, so its
    ``state_dict`` is small. Train/eval mode is the caller's business (``.eval()`` for retrieval:
    the integration layer's BatchNorm then uses its running statistics).
    """

    def __init__(self, model: "CSVRModel", feature: FeatureName = "fi", copy_modules: bool = True) -> None:
        super().__init__()
        self.set_feature(feature)
        self.pose_cfg = model.cfg.pose
        take = copy.deepcopy if copy_modules else (lambda m: m)
        if needs_clip(feature):
            self.v_network = take(model.v_network)
        if needs_clip(feature) and feature != "backbone":
            self.context_head_v = take(model.context_head_v)
        if needs_poses(feature):
            upto = model.cfg.pose.fd_layer_index
            self.pose_encoder = take(nn.ModuleList(list(model.pose_generator.encoder[:upto])))
            self.motion_head = take(model.motion_head)
        if feature == "fi":
            self.integration = take(model.integration)
        self.out_dim = model.v_network.out_channels if feature == "backbone" else model.cfg.feature_dim

    def static_feature(self, clip: Tensor) -> Tensor:
        return self.context_head_v(global_average_pool(self.v_network(clip)))

    def motion_feature(self, poses: Tensor | None, pose_conf: Tensor | None) -> Tensor:
        if poses is None:
            raise ValueError(f"feature {self.feature!r} needs poses")
        h = generator_input(poses, pose_conf, self.pose_cfg)
        for layer in self.pose_encoder:
            h = layer(h)
        return self.motion_head(h)

    def forward(self, clip: Tensor | None = None, poses: Tensor | None = None,
                pose_conf: Tensor | None = None) -> Tensor:
        if self.feature != "fd" and clip is None:
            raise ValueError(f"feature {self.feature!r} needs the clip")
        if self.feature == "backbone":
            return global_average_pool(self.v_network(clip))
        if self.feature == "fs":
            return self.static_feature(clip)
        if self.feature == "fd":
            return self.motion_feature(poses, pose_conf)
        return self.integration(self.static_feature(clip), self.motion_feature(poses, pose_conf))


def _fill_padding(iframes: Tensor, mask: Tensor) -> Tensor:
    """Replace each padding I-frame (mask false) by its clip's first real I-frame.

    The padding slots are masked out of the loss, but the I-network's BatchNorm (train mode)
    would still see them; copies of real frames keep its statistics on real images, without the
    host synchronisation that dropping them (boolean indexing) would cost.
    """
    first = mask.to(torch.uint8).argmax(dim=1)                                   # (B,)
    src = torch.where(mask, torch.arange(mask.shape[1], device=mask.device)[None, :], first[:, None])
    idx = src.view(*src.shape, 1, 1, 1).expand_as(iframes)
    return iframes.gather(1, idx)


class CSVRModel(nn.Module):
    """CSVR: see the module docstring. ``CSVRModel(cfg)``; modules of switched-off branches are not built."""

    def __init__(self, cfg: CSVRModelConfig | None = None) -> None:
        super().__init__()
        cfg = CSVRModelConfig() if cfg is None else cfg
        self.cfg = cfg
        c = cfg.feature_dim
        self.v_network = cfg.backbone.build()
        self.context_head_v = ContextHead(self.v_network.out_channels, c, cfg.head_hidden_dim)
        self.pose_generator = PoseGenerator(cfg.pose)
        self.motion_head = MotionHead(self.pose_generator.encoder_channels[cfg.pose.fd_layer_index - 1], c)
        self.integration = IntegrationLayer(c, cfg.fusion)
        self.pose_critic = PoseCritic(cfg.pose) if cfg.use_pose else None
        if cfg.use_context:
            self.i_network = cfg.i_network.build()
            self.context_head_i = ContextHead(self.i_network.out_channels, c, cfg.head_hidden_dim)
        else:
            self.i_network = self.context_head_i = None
        want_r = cfg.use_video and cfg.video_targets in ("both", "reconstruct")
        want_p = cfg.use_video and cfg.video_targets in ("both", "predict")
        self.reconstructor = VideoGenerator(cfg.video, c) if want_r else None
        self.reconstructor_critic = MultiLevelCritic(cfg.video, c) if want_r else None
        self.predictor = VideoGenerator(cfg.video, c) if want_p else None
        self.predictor_critic = MultiLevelCritic(cfg.video, c) if want_p else None
        # Device-resident copies (not saved): no host-to-device copy per step.
        self.register_buffer("pixel_mean", torch.tensor(cfg.input_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.input_std, dtype=torch.float32), persistent=False)
        if cfg.use_video:
            # saved with the weights, so a resumed run continues the same ramp, lazy-R1 phase and
            # baselines: the video branch's training steps so far, and the training set's mean clip
            # (current and future) over the targets it has trained on (the trivial baseline)
            v = cfg.video
            self.register_buffer("video_steps", torch.zeros((), dtype=torch.long))
            self.register_buffer("video_mean_count", torch.zeros((), dtype=torch.long))
            self.register_buffer("video_mean_r", torch.zeros(3, v.frames, v.size, v.size))
            self.register_buffer("video_mean_p", torch.zeros(3, v.frames, v.size, v.size))
            self._video_steps_host: int | None = None
            # a weight load replaces the buffer: the host mirror is read again on next use
            self.register_load_state_dict_post_hook(lambda module, _keys: setattr(module, "_video_steps_host", None))

    # ------------------------------------------------------------------ parameters
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by group (every parameter in exactly one; groups of absent modules are empty).

        ``pose_generator`` (G_p), ``pose_critic`` (D_p), ``v_network``, ``i_network``, ``heads``
        (g^V, g^I and the f_d motion head), ``integration``, ``video_generators`` (G_v^r, G_v^p),
        ``video_critics`` (D_v^r, D_v^p).
        """

        def params(*mods: nn.Module | None) -> list[nn.Parameter]:
            return [p for m in mods if m is not None for p in m.parameters()]

        return {
            "pose_generator": params(self.pose_generator),
            "pose_critic": params(self.pose_critic),
            "v_network": params(self.v_network),
            "i_network": params(self.i_network),
            "heads": params(self.context_head_v, self.context_head_i, self.motion_head),
            "integration": params(self.integration),
            "video_generators": params(self.reconstructor, self.predictor),
            "video_critics": params(self.reconstructor_critic, self.predictor_critic),
        }

    # ------------------------------------------------------------------ features
    def encoder(self, feature: FeatureName = "fi", copy_modules: bool = True) -> CSVREncoder:
        """A standalone :class:`CSVREncoder` for downstream finetuning / retrieval."""
        return CSVREncoder(self, feature, copy_modules)

    def encode(self, clip: Tensor | None = None, poses: Tensor | None = None, pose_conf: Tensor | None = None,
               feature: FeatureName = "fi") -> Tensor:
        """(B, C) feature ``"fi"`` | ``"fs"`` | ``"fd"`` (or ``"backbone"``: pooled V-network map)."""
        return CSVREncoder(self, feature, copy_modules=False)(clip, poses, pose_conf)

    # ------------------------------------------------------------------ generation
    def generate_poses(self, feats: list[Tensor], cond: Tensor, future_frames: int,
                       generator: torch.Generator | None = None) -> Tensor:
        """G_p's decoder (Eq. 1): the future pose sequence (B, 2N, T') from the encoder features
        ``feats`` of P_in, a fresh noise z_p and the last observed pose of ``cond`` (B, 2N, T)."""
        z = torch.randn(cond.shape[0], self.cfg.pose.noise_dim, generator=generator, device=feats[-1].device)
        return self.pose_generator.decode(feats[-1], z, future_frames, cond[:, :, -1:])

    def generate_video(self, target: Literal["r", "p"], f_i: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """G_v^r (``"r"``, the clip) or G_v^p (``"p"``, the future clip) from ``f_i`` and a fresh
        noise z_v ~ U(-1, 1) (Eq. 6-7), dense: (B, 3, frames, size, size) in [-1, 1]."""
        gen = self.reconstructor if target == "r" else self.predictor
        if gen is None:
            raise ValueError(f"this model has no video generator {target!r} (model.video_targets)")
        z = video_noise(f_i.shape[0], self.cfg.video, generator, f_i.device)
        return gen(z, f_i)

    def generate(self, clip: Tensor, poses: Tensor, pose_conf: Tensor | None, future_frames: int,
                 generator: torch.Generator | None = None) -> Generated:
        """Everything the generators make of one batch: G_p's future poses from ``poses`` (B, T,
        N, 2, normalised) and, when the model has video generators, G_v^r's and G_v^p's clips from
        ``f_i`` of ``clip`` (B, 3, T, H, W, normalised) and the poses. The same pieces as
        :meth:`compute_losses` (:meth:`generate_poses`, :meth:`generate_video`), drawn in the same
        order: z_p, then z_v of G_v^r, then of G_v^p. Train / eval mode is the caller's business."""
        p_in = generator_input(poses, pose_conf, self.cfg.pose)
        feats = self.pose_generator.encode(p_in)
        fake = self.generate_poses(feats, p_in[:, : 2 * self.cfg.pose.num_joints], future_frames, generator)
        videos: dict[str, Tensor] = {}
        f_i = None
        if self.reconstructor is not None or self.predictor is not None:
            f_s = self.context_head_v(global_average_pool(self.v_network(clip)))
            f_d = self.motion_head(feats[self.cfg.pose.fd_layer_index - 1])
            f_i = self.integration(f_s, f_d)
            for target, gen in (("r", self.reconstructor), ("p", self.predictor)):
                if gen is not None:
                    videos[target] = self.generate_video(target, f_i, generator)
        return Generated(sequence_to_poses(fake), videos, f_i)

    # ------------------------------------------------------------------ losses
    def active_branches(self, branches: Iterable[str] | None = None) -> tuple[str, ...]:
        enabled = {"pose": self.cfg.use_pose, "context": self.cfg.use_context, "video": self.cfg.use_video}
        if branches is None:
            wanted = set(BRANCHES)
        else:
            wanted = set(branches)
            bad = sorted(wanted - set(BRANCHES))
            if bad:
                raise ValueError(f"unknown branch(es) {bad}; valid: {', '.join(BRANCHES)}")
        return tuple(b for b in BRANCHES if b in wanted and enabled[b])

    def compute_losses(self, batch: CSVRBatch | Mapping[str, Any] | Sequence[Mapping[str, Any]], branches: Iterable[str] | None = None,
                       detach_features: bool = False, generator: torch.Generator | None = None) -> LossOutput:
        """Eq. 9: ``total = sigma_p L_pose + sigma_c L_context + L_video`` over the active branches.

        ``batch``: a :class:`CSVRBatch`, a mapping of its fields, or PretrainDataset samples (a list
        or their ``default_collate``, uint8 clips), converted by :meth:`CSVRBatch.from_samples`.
        ``branches`` restricts the branches (default: all that the config enables).
        ``detach_features=True`` feeds the video branch detached f_s / f_d (schedule stage 3: only
        the integration layer and the video GANs learn from L_video). ``generator`` (on the
        model's device) drives every random draw (noise, interpolates, I-frame choice).

        The :class:`~csvr.losses.LossOutput`'s ``terms`` are detached per-term values (``pose_adv_d``,
        ``pose_adv_g``, ``pose_l2``, ``pose_gp``, ``pose``, ``context``, ``video_r_adv_d``,
        ``video_r_adv_g``, ``video_r_l2``, ``video_r``, ``video_p_*``, ``video``, ``total``). A
        branch's value (``pose``, ``video_r``, ...) is what it contributes to ``total`` before its
        sigma: critic loss + weighted reconstruction (+ penalty) terms; the generators' adversarial
        values are ``*_adv_g``. ``metrics``: detached pretext metrics (``context_top1``,
        ``pose_mse``, ``video_r_mse``, ``video_p_mse``, critics' mean logits ``*_d_real``/``*_d_fake``).
        """
        b = CSVRBatch.from_any(batch)
        active = self.active_branches(branches)
        terms: dict[str, Tensor] = {}
        metrics: dict[str, Tensor] = {}
        total = b.clip.new_zeros((), dtype=torch.float32)
        if not active:
            raise ValueError("no active branch: enable one in the config or pass branches")

        f_s = None
        if "context" in active or "video" in active:
            f_s = self.context_head_v(global_average_pool(self.v_network(b.clip)))

        feats: list[Tensor] = []
        p_in = None
        if "pose" in active or "video" in active:
            b.require("poses")
            p_in = generator_input(b.poses, b.pose_conf, self.cfg.pose)
            upto = None if "pose" in active else self.cfg.pose.fd_layer_index
            feats = self.pose_generator.encode(p_in, upto)

        if "pose" in active:
            loss = self._pose_branch(b, p_in, feats, terms, metrics, generator)
            total = total + self.cfg.sigma_p * loss
        if "context" in active:
            loss = self._context_branch(b, f_s, terms, metrics, generator)
            total = total + self.cfg.sigma_c * loss
        if "video" in active:
            f_d = self.motion_head(feats[self.cfg.pose.fd_layer_index - 1])
            loss = self._video_branch(b, f_s, f_d, detach_features, terms, metrics, generator)
            total = total + loss
        terms["total"] = total.detach()
        return LossOutput(total=total, terms=terms, metrics=metrics)

    def _pose_branch(self, b: CSVRBatch, p_in: Tensor, feats: list[Tensor], terms: dict, metrics: dict,
                     generator: torch.Generator | None) -> Tensor:
        """L_pose, Eq. 1: adversarial (OSGAN) + (1/T') sum_t ||p_t - p'_t||^2 + WGAN-GP, on valid samples."""
        cfg = self.cfg.pose
        b.require("future_poses")
        real = poses_to_sequence(b.future_poses)
        cond = p_in[:, : 2 * cfg.num_joints]
        weight = None if b.pose_valid is None else b.pose_valid.to(torch.float32)
        fake = self.generate_poses(feats, cond, real.shape[2], generator)
        adv = one_stage_adversarial_loss(self.pose_critic, real, fake, self.cfg.adversarial_loss, cond=cond,
                                         weight=weight, generator_weight=cfg.adv_weight)
        l2 = pose_l2_loss(fake, real, b.future_pose_conf, weight)
        loss = adv.loss + cfg.l2_weight * l2
        terms["pose_adv_d"], terms["pose_adv_g"], terms["pose_l2"] = adv.critic, adv.generator, l2.detach()
        if cfg.gp_weight > 0:
            gp = gradient_penalty(self.pose_critic, real, fake, cond=cond, weight=weight, generator=generator)
            loss = loss + cfg.gp_weight * gp
            terms["pose_gp"] = gp.detach()
        terms["pose"] = loss.detach()
        metrics["pose_mse"] = pose_mse(fake, real, b.future_pose_conf, weight)
        # trivial baseline: every future pose is the last observed one
        metrics["pose_mse_copy"] = pose_mse(cond[:, :, -1:].expand_as(real), real, b.future_pose_conf, weight)
        metrics["pose_d_real"] = weighted_mean(adv.real_logits, weight)
        metrics["pose_d_fake"] = weighted_mean(adv.fake_logits, weight)
        metrics["pose_d_gap"] = metrics["pose_d_real"] - metrics["pose_d_fake"]
        return loss

    def _context_branch(self, b: CSVRBatch, f_s: Tensor, terms: dict, metrics: dict,
                        generator: torch.Generator | None) -> Tensor:
        """L_context: Eq. 2 (MI-InfoNCE), or Eq. 10 (InfoNCE, one random I-frame) / L2 (Table IV)."""
        z, positive, valid = self.iframe_features(b)
        mask = b.iframe_mask.to(torch.bool)
        cand: Tensor = valid
        if self.cfg.context_negatives is not None:
            cand = sample_negatives(positive, valid, self.cfg.context_negatives, generator)
        kind = self.cfg.context_loss
        if kind == "mi_infonce":
            loss = mi_infonce(f_s, z, positive, self.cfg.tau, candidates=cand, validate=False)
        elif kind == "infonce":
            loss = info_nce_single(f_s, z, positive, self.cfg.tau, generator)
        else:
            loss = l2_single(f_s, z, positive, generator)
        terms["context"] = loss.detach()
        metrics["context_top1"] = context_top1(f_s, z, positive, valid)
        # a clip that picks a valid I-frame at random finds one of its own with p = own / all
        own = mask.float().sum(dim=1)
        metrics["context_chance"] = (own / own.sum().clamp_min(1.0)).mean()
        return loss

    def iframe_features(self, b: CSVRBatch) -> tuple[Tensor, Tensor, Tensor]:
        """The context branch's I-frame side: ``z`` (n*k, D) = g^I(pool(I-network(I-frame))) of
        the k I-frame slots of each of the n clips, ``positive`` (n, n*k) (a clip's own valid
        I-frames) and ``valid`` (n*k,) (slots that hold an I-frame)."""
        b.require("iframes", "iframe_mask")
        n, k = b.iframe_mask.shape
        mask = b.iframe_mask.to(torch.bool)
        z = self.context_head_i(global_average_pool(self.i_network(_fill_padding(b.iframes, mask).flatten(0, 1))))
        valid = mask.flatten()                                                           # (n*k,)
        owner = torch.eye(n, dtype=torch.bool, device=valid.device).repeat_interleave(k, dim=1)
        return z, owner & valid[None, :], valid

    @torch.no_grad()
    def pretext_per_clip(self, batch: "CSVRBatch | Mapping[str, Any] | Sequence[Mapping[str, Any]]",
                         generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Table II's pose and context measures, one value per clip of ``batch`` (train / eval
        mode is the caller's; a held-out evaluation uses eval mode):

        * ``pose_mse`` / ``pose_mse_copy``: G_p's future poses (noise from ``generator``) / the
          last observed pose repeated, against the real future poses (confidence-weighted MSE per
          coordinate of the clip, :func:`pose_mse`);
        * ``context_hit``: 1 when the clip's most similar I-frame among *all* the batch's I-frames
          is one of its own (context matching top-1 over the batch), ``context_chance`` its own
          I-frames over all (the hit rate of a random choice).
        """
        b = CSVRBatch.from_any(batch)
        b.require("poses", "future_poses")
        p_in = generator_input(b.poses, b.pose_conf, self.cfg.pose)
        feats = self.pose_generator.encode(p_in)
        real = poses_to_sequence(b.future_poses)
        cond = p_in[:, : 2 * self.cfg.pose.num_joints]
        fake = self.generate_poses(feats, cond, real.shape[2], generator)
        out = {"pose_mse": pose_mse(fake, real, b.future_pose_conf, per_sample=True),
               "pose_mse_copy": pose_mse(cond[:, :, -1:].expand_as(real), real, b.future_pose_conf, per_sample=True)}
        f_s = self.context_head_v(global_average_pool(self.v_network(b.clip)))
        z, positive, valid = self.iframe_features(b)
        out["context_hit"] = context_hits(f_s, z, positive, valid)
        own = b.iframe_mask.float().sum(dim=1)
        out["context_chance"] = own / own.sum().clamp_min(1.0)
        return out

    def _video_branch(self, b: CSVRBatch, f_s: Tensor, f_d: Tensor, detach: bool, terms: dict, metrics: dict,
                      generator: torch.Generator | None) -> Tensor:
        """L_video = (L_r + L_p) / 2, Eq. 6-8 (the mean over the targets of Table V's setting).

        Each of L_r, L_p is TGANv2's multi-level loss (:mod:`csvr.models.video_gan`): per level,
        the OSGAN adversarial terms of that level's conditional critic and the pixel L2 term
        against the real clip cut with the generator's own sparse plan, averaged over levels;
        plus the lazy R1 penalty on real clips. In eval mode the generators run dense (one level
        each, the finest) and the critics see the full clip.
        """
        cfg, vcfg = self.cfg, self.cfg.video
        if detach:
            f_s, f_d = f_s.detach(), f_d.detach()
        f_i = self.integration(f_s, f_d)
        training = self.training
        step = self.video_branch_steps()
        adv_w = vcfg.adversarial_weight(step) if training else vcfg.adv_weight
        do_r1 = training and vcfg.r1_weight > 0 and step % vcfg.r1_every == 0
        jobs = []
        if self.reconstructor is not None:
            target = b.video_target
            if target is None:
                target = video_target_from_clip(b.clip, vcfg, self.pixel_mean, self.pixel_std)
            jobs.append(("r", self.reconstructor, self.reconstructor_critic, target))
        if self.predictor is not None:
            target = b.future_target
            if target is None:
                b.require("future")
                target = video_target_from_clip(b.future, vcfg, self.pixel_mean, self.pixel_std)
            jobs.append(("p", self.predictor, self.predictor_critic, target))
        cond = f_i.detach()  # the critics' projection term sees the condition, never trains it
        losses = []
        for tag, gen, critics, target in jobs:
            want = (target.shape[0], 3, vcfg.frames, vcfg.size, vcfg.size)
            if tuple(target.shape) != want:
                raise ValueError(f"video target for G_v^{tag} is {tuple(target.shape)}, generator gives {want}")
            mean_clip = getattr(self, f"video_mean_{tag}")[None]
            if training:  # every level; sparse (TGANv2) unless video.sparse is off
                z = video_noise(f_i.shape[0], vcfg, generator, f_i.device, f_i.dtype)
                plan = SparsePlan.draw(vcfg, generator) if vcfg.sparse else SparsePlan.dense_plan(vcfg)
                fakes = gen.forward_levels(z, f_i, plan)
                reals = level_targets(target, vcfg, plan)
                conds = [cond[::s] for s in plan.batch_strides(cond.shape[0])]
                means = level_targets(mean_clip, vcfg, SparsePlan(plan.offsets, batch=False))
                critics_used = list(critics.levels)
            else:  # dense, the finest level only (TGANv2's test mode)
                fakes, reals, conds, means = [self.generate_video(tag, f_i, generator)], [target], [cond], [mean_clip]
                critics_used = [critics[-1]]
            adv_terms, l2s = [], []
            for critic, fake, real, c in zip(critics_used, fakes, reals, conds):
                # an unconditional critic (video.conditional_critic: false) ignores c
                adv = one_stage_adversarial_loss(critic, real, fake, cfg.adversarial_loss, cond=c,
                                                 generator_weight=adv_w)
                adv_terms.append(adv)
                l2s.append(pixel_l2_loss(fake, real))
            n = len(adv_terms)
            adv_loss = sum(a.loss for a in adv_terms) / n
            l2 = sum(l2s) / n
            loss = adv_loss + vcfg.l2_weight * l2
            terms[f"video_{tag}_adv_d"] = torch.stack([a.critic for a in adv_terms]).mean()
            terms[f"video_{tag}_adv_g"] = torch.stack([a.generator for a in adv_terms]).mean()
            terms[f"video_{tag}_l2"] = l2.detach()
            if do_r1:
                r1 = sum(r1_penalty(critic, real, c) for critic, real, c in zip(critics_used, reals, conds))
                loss = loss + vcfg.r1_weight * vcfg.r1_every * r1
                terms[f"video_{tag}_r1"] = r1.detach()
            if vcfg.gp_weight > 0:
                gp = sum(gradient_penalty(critic, real, fake, cond=c, generator=generator)
                         for critic, real, fake, c in zip(critics_used, reals, fakes, conds)) / n
                loss = loss + vcfg.gp_weight * gp
                terms[f"video_{tag}_gp"] = gp.detach()
            terms[f"video_{tag}"] = loss.detach()
            # pretext signals of this training batch, at the finest level it trained (the sparse
            # frames and samples), beside the trivial baseline: the training set's mean clip so
            # far (not the batch's mean, which holds the target); the first batch has none yet
            fine, real = fakes[-1], reals[-1]
            metrics[f"video_{tag}_mse"] = video_mse(fine, real)
            base = means[-1].expand_as(real) if step > 0 else real.mean(dim=0, keepdim=True).expand_as(real)
            metrics[f"video_{tag}_mse_mean"] = video_mse(base, real)
            metrics[f"video_{tag}_d_real"] = torch.stack([a.real_logits.mean() for a in adv_terms]).mean()
            metrics[f"video_{tag}_d_fake"] = torch.stack([a.fake_logits.mean() for a in adv_terms]).mean()
            metrics[f"video_{tag}_d_gap"] = metrics[f"video_{tag}_d_real"] - metrics[f"video_{tag}_d_fake"]
            losses.append(loss)
        metrics["video_adv_weight"] = f_i.new_full((), adv_w, dtype=torch.float32)  # a fill, no host copy
        if training:
            self._update_video_state(jobs)
        loss = torch.stack(losses).mean()
        terms["video"] = loss.detach()
        return loss

    def video_branch_steps(self) -> int:
        """The video branch's training steps so far (the saved ``video_steps`` buffer), mirrored on
        the host: read from the device once after construction or a weight load, then counted
        here, so a training step does not wait for the device to learn it."""
        if self._video_steps_host is None:
            self._video_steps_host = int(self.video_steps)
        return self._video_steps_host

    @torch.no_grad()
    def _update_video_state(self, jobs) -> None:
        """One more branch step; the training mean clips take this batch's targets (running mean,
        weights computed on the device)."""
        step = self.video_branch_steps()
        n = jobs[0][3].shape[0]
        w = (n / (self.video_mean_count + n)).float()
        for tag, _gen, _critic, target in jobs:
            mean = getattr(self, f"video_mean_{tag}")
            mean += (target.float().mean(dim=0) - mean) * w
        self.video_mean_count += n
        self.video_steps += 1
        self._video_steps_host = step + 1


__all__ = ["BRANCHES", "FEATURES", "CSVRBatch", "CSVREncoder", "CSVRModel", "CSVRModelConfig",
           "Generated", "INPUT_MEAN", "INPUT_STD"]
