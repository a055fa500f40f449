"""Typed configs of the pretraining job (``csvr pretrain --config FILE key=value ...``).

Learning-rate scaling rule (documented in the README): the paper sets ``lr = 0.0005 x B`` for a
batch of B = 16 on its machine. csvr keeps that linear rule for any set-up:
``lr = optim.lr_per_sample x global batch``, where the global batch is
``train.batch_size (per device) x devices x nodes x train.accumulate``. Doubling the GPUs or
the accumulation therefore doubles the learning rate, as in Goyal et al.'s linear scaling
rule; set ``optim.lr`` to fix it instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from csvr.data.datasets import ClipConfig
from csvr.data.transforms import ColorAugmentConfig


@dataclass
class DataConfig:
    manifest: str = ""
    root: Optional[str] = None  # override the manifest's root
    split: str = "1"
    subset: Literal["train", "test", "all"] = "train"
    pose_cache: Optional[str] = None
    clip: ClipConfig = field(default_factory=ClipConfig)
    color: ColorAugmentConfig = field(default_factory=ColorAugmentConfig)
    workers: int = 4
    max_videos: Optional[int] = None  # use only the first N videos (debugging)
    label_fraction: float = 1.0  # stratified fraction of the training labels (finetuning, semi-supervised)
    allow_outside_root: bool = False

    def __post_init__(self):
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ValueError("label_fraction must be in (0, 1]")


@dataclass
class StageConfig:
    """One stage of the schedule: ``epochs`` passes over the data, at most ``max_steps`` steps."""

    name: str = "main"
    epochs: int = 1
    max_steps: Optional[int] = None

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError("a stage needs epochs >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be >= 1 or null")


@dataclass
class RoleOptimConfig:
    """The optimiser of one parameter role other than the encoders (``optim.generator``,
    ``optim.critic``).

    ``name: adam`` (default; TGANv2 and WGAN-GP train their generators and critics with Adam);
    ``name: sgd`` uses ``lr``/``momentum``/``weight_decay`` here; ``name: same`` puts the role in
    the encoders' SGD group (one optimiser for every network, csvr's behaviour before 0.2). The
    learning rate is absolute: it does not scale with the batch (Adam's step size does not grow
    with the gradient's variance the way SGD's linear rule assumes).
    """

    name: Literal["adam", "sgd", "same"] = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    # "shared": the run's schedule (warm-up, then cosine); "constant": the warm-up, then the base
    # rate (a role that trains only in late stages is not left at the tail of a run-wide cosine)
    schedule: Literal["shared", "constant"] = "shared"

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError("lr must be > 0")
        if not (0.0 <= self.betas[0] < 1.0 and 0.0 <= self.betas[1] < 1.0):
            raise ValueError("betas must be in [0, 1)")
        if self.weight_decay < 0:
            raise ValueError("weight_decay must be >= 0")


@dataclass
class OptimConfig:
    """Optimisers by role (docs/training.md) and one learning-rate schedule.

    Encoders and heads (``role "encoder"``): SGD as the paper (IV-B: momentum 0.9, weight decay
    0.005, lr 0.0005 x B). Generators and critics of the GANs: ``generator`` / ``critic``
    (the pose GAN; Adam by default, :class:`RoleOptimConfig`) and ``video_generator`` /
    ``video_critic`` (CSVR's video GANs: TGANv2's Adam settings, constant rate after warm-up).

    Schedule: linear warm-up over ``warmup_steps``, then cosine decay to ``min_lr_ratio`` x the
    base rate. ``schedule_scope: run`` (default) lays one warm-up and one cosine over the whole
    run, all stages together; ``stage`` restarts both at each stage (then keep a floor,
    ``min_lr_ratio`` > 0, so a short stage does not spend half its steps near 0). Every role
    follows the same factor, except a role whose ``schedule`` is ``constant`` (the warm-up only).
    """

    lr_per_sample: float = 0.0005
    lr: Optional[float] = None  # absolute learning rate; overrides lr_per_sample x global batch
    momentum: float = 0.9
    weight_decay: float = 0.005
    nesterov: bool = False
    schedule: Literal["cosine", "constant"] = "cosine"
    schedule_scope: Literal["run", "stage"] = "run"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: Optional[float] = None
    generator: RoleOptimConfig = field(default_factory=RoleOptimConfig)
    critic: RoleOptimConfig = field(default_factory=RoleOptimConfig)
    # the video GANs (CSVR's G_v^r, G_v^p and their critics): TGANv2's Adam (lr 1e-4, betas
    # (0, 0.9), equal rates) at a constant rate after the warm-up (csvr.models.video_gan)
    video_generator: RoleOptimConfig = field(default_factory=lambda: RoleOptimConfig(
        lr=1e-4, betas=(0.0, 0.9), schedule="constant"))
    video_critic: RoleOptimConfig = field(default_factory=lambda: RoleOptimConfig(
        lr=1e-4, betas=(0.0, 0.9), schedule="constant"))

    def __post_init__(self):
        if self.lr_per_sample <= 0 or (self.lr is not None and self.lr <= 0):
            raise ValueError("learning rates must be > 0")
        if self.warmup_steps < 0:
            raise ValueError("warmup_steps must be >= 0")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("min_lr_ratio must be in [0, 1]")


@dataclass
class KnnMonitorConfig:
    """The online kNN monitor (``train.knn_monitor``; :mod:`csvr.engine.monitor`): every ``every``
    steps, the weighted-kNN top-1 (k = ``k``, temperature ``tau``) of the current encoder's
    ``feature`` on ``videos`` labelled videos: those of the split's training part are the memory,
    those of its test part the queries. The labels are read by the monitor only; training never
    sees them. ``every: 0`` turns it off."""

    every: int = 0
    videos: int = 64  # labelled videos, memory and queries together (class-balanced)
    feature: Optional[str] = None  # default: the method's first feature (csvr: fi, iic/cvrl: backbone)
    k: int = 20
    tau: float = 0.07
    clips: int = 1  # uniformly spaced clips per video
    batch_size: int = 16
    manifest: Optional[str] = None  # labelled manifest (default: data.manifest)
    pose_cache: Optional[str] = None  # its pose cache (default: data.pose_cache)
    split: Optional[str] = None  # default: data.split

    def __post_init__(self):
        if self.every < 0:
            raise ValueError("every must be >= 0 (0 turns the monitor off)")
        if self.videos < 2 or self.k < 1 or self.clips < 1 or self.batch_size < 1:
            raise ValueError("videos >= 2, k >= 1, clips >= 1 and batch_size >= 1 are required")
        if self.tau <= 0:
            raise ValueError("tau must be > 0")


@dataclass
class TrainConfig:
    batch_size: int = 16  # per device
    accumulate: int = 1
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true"] = "32-true"
    accelerator: str = "auto"
    devices: Union[int, str] = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    seed: int = 0
    stages: list[StageConfig] = field(default_factory=list)  # empty: the method's default stages, 1 epoch each
    ckpt_every_steps: int = 200
    keep_last: int = 3
    # global steps at which a checkpoint is also written and never rotated away by keep_last
    # (a curve of checkpoints, e.g. benchmarks/table2.py's paper Table II points)
    keep_steps: list[int] = field(default_factory=list)
    log_every_steps: int = 10
    max_nonfinite: int = 5  # stop after this many consecutive non-finite losses
    threads: Optional[int] = None  # torch intra-op threads in the main process (CPU)
    # 3D-convolution weights (and so their activations) in channels_last_3d memory format: the
    # same arithmetic in another order, 1.2x faster CSVR steps on this project's CPU
    # (benchmarks/RESULTS.md, "The CSVR step"); off by default until measured on GPUs
    channels_last: bool = False
    knn_monitor: KnnMonitorConfig = field(default_factory=KnnMonitorConfig)
    # clips of the method's held-out epoch-end diagnostics (CSVR: do the video generators use
    # f_i; csvr.methods.csvr.VideoDiagnostics), written to epochs.csv; 0 turns them off
    diagnostics_videos: int = 32
    # ... measured at the first epoch end at least this many steps after the last measurement,
    # and at every stage's end (each measurement costs ~2 s at the CPU presets)
    diagnostics_every: int = 50

    def __post_init__(self):
        if self.diagnostics_videos < 0:
            raise ValueError("diagnostics_videos must be >= 0 (0 turns them off)")
        if self.diagnostics_every < 1:
            raise ValueError("diagnostics_every must be >= 1")
        if self.batch_size < 1 or self.accumulate < 1:
            raise ValueError("batch_size and accumulate must be >= 1")
        if self.keep_last < 1 or self.ckpt_every_steps < 1 or self.log_every_steps < 1:
            raise ValueError("keep_last, ckpt_every_steps and log_every_steps must be >= 1")
        if any(int(k) < 1 for k in self.keep_steps):
            raise ValueError("keep_steps must be global steps >= 1")
        if self.max_nonfinite < 1:
            raise ValueError("max_nonfinite must be >= 1")


@dataclass
class PretrainConfig:
    method: str = "csvr"
    out: str = "runs/pretrain"
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=dict)  # the method's own config (see its config_class)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
