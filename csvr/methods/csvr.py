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

Optimiser roles (:mod:`csvr.engine.optim`): the pose generator G_p is ``generator``, D_p
``critic``, the video generators ``video_generator``, the video critics ``video_critic``
(TGANv2's Adam, constant after warm-up), everything else (V-network, I-network, heads,
integration layer) ``encoder``.

Pretext diagnostics (each beside its trivial baseline, logged every step): ``pose_mse`` vs
``pose_mse_copy`` (repeat the last observed pose), ``pose_d_gap`` / ``video_r_d_gap`` /
``video_p_d_gap`` (critic logit on real minus on fake), ``context_top1`` vs ``context_chance``,
``video_r_mse`` / ``video_p_mse`` vs ``video_r_mse_mean`` / ``video_p_mse_mean`` (every clip
predicted as the batch's mean clip), ``iframe_own_frac`` (clips whose span holds an I-frame) and
``iframes_per_clip`` (I-frames inside the span, before ``max_iframes`` caps them).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import default_collate

from csvr.data.datasets import PretrainDataset
from csvr.data.transforms import normalize, to_float_clip
from csvr.errors import ConfigError
from csvr.methods.base import Method, PretextCheck, register_method
from csvr.models.csvr_model import CSVRBatch, CSVRModel, CSVRModelConfig
from csvr.models.features import FEATURE_NAMES
from csvr.losses import LossOutput, generator_loss
from csvr.models.video_gan import pixel_l2_loss, video_noise, video_target_from_clip

log = logging.getLogger(__name__)

#: below this ``iframe_own_frac`` (over the run) the summary warns: most clips are matched with an
#: I-frame outside their span, so context matching (Eq. 2) has little to learn from
IFRAME_OWN_FRAC_MIN = 0.5

STAGE_GROUPS = {
    "pose": ("pose_generator", "pose_critic"),
    "context": ("v_network", "i_network", "heads"),
    "video": ("integration", "video_generators", "video_critics"),
    "joint": ("pose_generator", "pose_critic", "v_network", "i_network", "heads", "integration",
              "video_generators", "video_critics"),
}
STAGE_BRANCHES = {"pose": ("pose",), "context": ("context",), "video": ("video",), "joint": None}
ROLE_GROUPS = {
    "generator": ("pose_generator",),
    "critic": ("pose_critic",),
    "video_generator": ("video_generators",),
    "video_critic": ("video_critics",),
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
        # the video checks read the held-out diagnostics of epochs.csv (VideoDiagnostics) when
        # the run has them, the training batches' values otherwise
        PretextCheck("video reconstruct", "video_r_mse", "video_r_mse_mean", "lower", 0.9, "epochs"),
        PretextCheck("video predict", "video_p_mse", "video_p_mse_mean", "lower", 0.9, "epochs"),
        PretextCheck("video predict vs copy", "video_p_mse", "video_p_mse_copy", "lower", 1.0, "epochs"),
        PretextCheck("video r uses f_i", "video_r_mse_shuffled", "video_r_mse", "higher", 1.1, "epochs"),
        PretextCheck("video p uses f_i", "video_p_mse_shuffled", "video_p_mse", "higher", 1.1, "epochs"),
        PretextCheck("video r critic", "video_r_d_gap", None, "gap", 0.3, "epochs"),
        PretextCheck("video p critic", "video_p_d_gap", None, "gap", 0.3, "epochs"),
    )
    diagnostic_stages = ("video", "joint")

    def __init__(self, cfg: CSVRModelConfig, color=None):
        super().__init__(cfg, color)
        self.model = CSVRModel(cfg)

    @classmethod
    def signal_warnings(cls, means: dict[str, float]) -> list[str]:
        """A warning when fewer than :data:`IFRAME_OWN_FRAC_MIN` of the training clips held an
        I-frame of their own (real videos with an I-frame every 50-250 frames)."""
        own = means.get("iframe_own_frac")
        if own is None or own >= IFRAME_OWN_FRAC_MIN:
            return []
        return [f"only {100 * own:.0f}% of the training clips held an I-frame of their own (iframe_own_frac "
                f"{own:.2f} < {IFRAME_OWN_FRAC_MIN:g}): context matching learns little from the others, which are "
                "matched with an I-frame outside their span. Re-encode the videos with an I-frame every 12 frames "
                "(csvr prepare reencode --manifest MANIFEST --out NEW_ROOT --gop 12; then pretrain on "
                "NEW_ROOT/manifest.jsonl), or make a clip span more frames than the I-frame interval "
                "(data.clip.frames x data.clip.stride)"]

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

    def encoder_state_keys(self, feature: str | None = None) -> set[str]:
        """The state keys shared with the encoder of ``feature`` (built without copying modules)."""
        held = {id(t) for t in self.model.encoder(feature or "fi", copy_modules=False).state_dict(keep_vars=True).values()}
        return {k for k, t in self.state_dict(keep_vars=True).items() if id(t) in held}

    def build_diagnostics(self, manifest, train_records, clip_cfg, pose_cache, split: str, videos: int, seed: int):
        """:class:`VideoDiagnostics` on ``videos`` held-out clips (None without video branch or poses)."""
        if not self.cfg.use_video or not videos or pose_cache is None:
            return None
        return VideoDiagnostics.build(manifest, train_records, clip_cfg, pose_cache, split, videos, seed)


class VideoDiagnostics:
    """Do the video generators use f_i? Measured on a fixed set of clips with fixed noise, at each
    epoch end of the video and joint stages, and written to ``epochs.csv`` (issue 23):

    * ``video_r_mse`` / ``video_p_mse``: the dense generators (eval mode) against the clip and the
      future clip, per pixel and channel in [-1, 1];
    * ``video_r_mse_mean`` / ``video_p_mse_mean``: the training set's mean clip (the running mean
      the model keeps over every target it trained on; never these clips' own mean);
    * ``video_p_mse_copy``: the last observed frame repeated over the future;
    * ``video_r_mse_shuffled`` / ``video_p_mse_shuffled``: the same generator, noise and targets,
      fed the f_i of another clip of the set (rolled by one): >> the matched MSE only when the
      generator uses its condition;
    * ``video_r_d_gap`` / ``video_p_d_gap``: the finest level critic's mean logit on the real
      clips minus on the generated ones (each with its own f_i);
    * ``video_adv_l2_ratio``: ||gradient of the weighted adversarial term|| / ||gradient of the
      weighted L2 term|| at the generated clip, finest level, at the current adversarial weight
      (mean of the two generators): above 1, the critic's opinion outweighs agreement with f_i.

    Clips: ``videos`` of the split's test part (never decoded by pretraining on ``subset:
    train``), else the training part's last ones (``diag_heldout`` says which; ``diag_clips``: how many), one
    deterministic centre-cropped clip each (``PretrainDataset(augment=False)``), decoded once.
    Nothing here draws from a global random stream, changes a weight, a BatchNorm statistic or
    the model's buffers: a run trains exactly as without it.
    """

    #: every column it writes to ``epochs.csv`` (an epoch row of its stages without a measurement
    #: leaves them blank rather than showing the training batches' values under the same names)
    names = tuple(f"video_{t}_{m}" for t in ("r", "p") for m in ("mse", "mse_mean", "mse_shuffled", "d_gap")) + (
        "video_p_mse_copy", "video_adv_l2_ratio", "diag_heldout", "diag_clips")

    #: what a clip keeps of its PretrainDataset sample (the video measures, :meth:`pretext` and
    #: the label of the video-quality classifier, csvr.eval.video_quality)
    KEYS = ("clip", "future", "poses", "future_poses", "iframes", "iframe_mask", "label")

    def __init__(self, samples: list[dict], heldout: bool, seed: int, ids: list[str] | None = None):
        self.samples = samples
        self.ids = list(ids) if ids is not None else [str(i) for i in range(len(samples))]  # the clips' video ids
        self.heldout = heldout
        self.seed = seed
        self.batch = default_collate(samples)

    @classmethod
    def build(cls, manifest, train_records, clip_cfg, pose_cache, split: str, videos: int, seed: int
              ) -> "VideoDiagnostics | None":
        test = manifest.select(split, "test")  # the run's split: training already checked it exists
        heldout = len(test) > 0
        pool = test if heldout else list(reversed(train_records))
        if not pool:
            return None
        ds = PretrainDataset(manifest, pool, clip_cfg, seed=seed, pose_cache=str(pose_cache), augment=False)
        samples, ids = [], []
        for k in range(len(pool)):
            if len(samples) == videos:
                break
            try:
                item = ds.load(k, np.random.default_rng([seed, 23, k]))
            except Exception as e:  # noqa: BLE001 - an unreadable video or one without poses: skip it
                log.debug("csvr: video diagnostics skip %s (%s)", pool[k].id, e)
                continue
            if "future" not in item or not bool(item.get("pose_valid", True)):
                continue
            samples.append({k2: item[k2] for k2 in cls.KEYS if k2 in item})
            ids.append(pool[k].id)
        if len(samples) < 2:
            log.warning("csvr: video diagnostics off: fewer than 2 usable clips with poses and a future")
            return None
        return cls(samples, heldout, seed, ids)

    @torch.no_grad()
    def __call__(self, method: "CSVR", device: torch.device) -> dict[str, float]:
        """The means over the clips (what ``epochs.csv`` gets)."""
        per_clip, overall = self.measure(method, device)
        out = {k: float(v.mean()) for k, v in per_clip.items()}
        out.update(overall)
        out["diag_heldout"] = float(self.heldout)
        out["diag_clips"] = float(len(self.samples))
        return out

    @torch.no_grad()
    def measure(self, method: "CSVR", device: torch.device) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """(per-clip values (N,) of every measure but the gradient ratio, {``video_adv_l2_ratio``}):
        the per-clip values let a benchmark put intervals on them (bootstrap over clips)."""
        m = method.model
        was_training = m.training
        m.eval()
        try:
            return self._measure(m, m.cfg.video, device)
        finally:
            m.train(was_training)

    @torch.no_grad()
    def pretext(self, method: "CSVR", device: torch.device) -> dict[str, np.ndarray]:
        """Table II's pose and context measures on the same clips, per clip, in eval mode
        (:meth:`CSVRModel.pretext_per_clip`; fixed pose noise; context top-1 over all the clips'
        I-frames, so its chance level is ~1 / clips, ``context_chance``)."""
        m = method.model
        was_training = m.training
        m.eval()
        try:
            b = CSVRBatch.from_samples(self.batch).to(device)
            out = m.pretext_per_clip(b, torch.Generator(device=device).manual_seed(self.seed))
            return {k: v.float().cpu().numpy() for k, v in out.items()}
        finally:
            m.train(was_training)

    @staticmethod
    def _clip_mse(a: Tensor, b: Tensor) -> Tensor:
        return (a.float() - b.float()).pow(2).flatten(1).mean(dim=1)

    def _measure(self, m, vcfg, device) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        b = CSVRBatch.from_samples(self.batch).to(device)  # the engine's pixel and pose conversion
        targets = {"r": video_target_from_clip(b.clip, vcfg, m.pixel_mean, m.pixel_std),
                   "p": video_target_from_clip(b.future, vcfg, m.pixel_mean, m.pixel_std)}
        f_i = m.encode(b.clip, b.poses, b.pose_conf, "fi")
        z = video_noise(f_i.shape[0], vcfg, torch.Generator(device=device).manual_seed(self.seed), device, f_i.dtype)
        step = m.video_branch_steps()
        adv_w = vcfg.adversarial_weight(step)
        mse = self._clip_mse
        out: dict[str, Tensor] = {}
        ratios = []
        for tag, gen, critics in (("r", m.reconstructor, m.reconstructor_critic),
                                  ("p", m.predictor, m.predictor_critic)):
            if gen is None:
                continue
            target = targets[tag]
            fake = gen(z, f_i)
            out[f"video_{tag}_mse"] = mse(fake, target)
            if step > 0:  # the training set's mean clip exists once the branch has trained
                out[f"video_{tag}_mse_mean"] = mse(getattr(m, f"video_mean_{tag}")[None].expand_as(target), target)
            out[f"video_{tag}_mse_shuffled"] = mse(gen(z, f_i.roll(1, dims=0)), target)
            critic = critics[-1]
            out[f"video_{tag}_d_gap"] = critic(target, f_i) - critic(fake, f_i)
            with torch.enable_grad():
                x = fake.detach().requires_grad_(True)
                (g_adv,) = torch.autograd.grad(generator_loss(critic(x, f_i), m.cfg.adversarial_loss) * adv_w, x)
                (g_l2,) = torch.autograd.grad(vcfg.l2_weight * pixel_l2_loss(x, target), x)
            ratios.append(float(g_adv.norm() / g_l2.norm().clamp_min(1e-12)))
        if m.predictor is not None:
            out["video_p_mse_copy"] = mse(targets["r"][:, :, -1:].expand_as(targets["p"]), targets["p"])
        overall = {"video_adv_l2_ratio": float(np.mean(ratios))} if ratios else {}
        return {k: v.cpu().numpy() for k, v in out.items()}, overall


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
