"""What a CSVR pretraining checkpoint generates on real videos, as arrays (nothing is drawn here).

:func:`generate_csvr_samples` loads a ``csvr`` pretraining checkpoint, takes one deterministic
clip of a few videos of a dataset and runs the model's own
:meth:`~csvr.models.csvr_model.CSVRModel.generate` on them: the pose generator's future poses
(denormalised into the clip's crop coordinates) and, when the model has video generators, the
reconstructed / predicted frames beside the real ones. It returns :class:`CsvrSamples`;
:func:`csvr.eval.plots.csvr_sample_pictures` draws them (PNG / GIF bytes) and
:func:`csvr.eval.report.csvr_samples` does both and writes the pictures (``csvr report --samples``
shows them). This module imports nothing that draws.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from csvr.config import from_dict
from csvr.data.datasets import PretrainDataset
from csvr.data.index import load_manifest
from csvr.data.transforms import normalize as normalize_clip
from csvr.data.transforms import to_float_clip
from csvr.engine.config import PretrainConfig
from csvr.engine.model import load_method
from csvr.errors import CsvrError, DatasetError
from csvr.models.video_gan import video_target_from_clip
from csvr.pose_format.cache import PoseCache
from csvr.pose_format.normalize import denormalize, normalize


@dataclass
class SampleVideo:
    """One video's clip and what the pose generator made of it. Poses are (frames, 18, 3):
    x, y in the clip's crop coordinates and the confidence (the predicted poses carry the real
    future poses' confidences)."""

    video_id: str
    label: int
    class_name: str | None
    clip: np.ndarray  # (T, S, S, 3) uint8: the input clip
    future: np.ndarray  # (T', S, S, 3) uint8: the real future clip
    poses: np.ndarray  # (T, 18, 3): the input clip's poses
    future_poses: np.ndarray  # (T', 18, 3): the real future poses
    predicted_poses: np.ndarray  # (T', 18, 3): the pose generator's prediction


@dataclass
class CsvrSamples:
    """What :func:`generate_csvr_samples` returns: per video its clip and poses; ``videos`` (when
    the model has video generators): ``{"real clip", "reconstructed", "real future", "predicted"}``
    (those the model makes, in this order) -> (videos, frames, size, size, 3) uint8 frames at the
    generators' resolution ``video_size``; ``clip_size``: the clips' side."""

    videos: list[SampleVideo]
    clip_size: int
    generated: dict[str, np.ndarray] = field(default_factory=dict)
    video_size: int | None = None


def _to_uint8_video(v) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] -> uint8 (T, H, W, 3)."""
    a = ((np.asarray(v, dtype=np.float32) + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
    return a.transpose(1, 2, 3, 0)


def _load_samples(manifest, records, clip, pose_cache, seed: int) -> list[dict]:
    """One deterministic current + future clip per record, through the pretraining dataset's own
    no-augmentation path (``PretrainDataset(augment=False)``: centre crop, no flip, no colour
    change), the k-th drawn with the generator ``[seed, k]``; plus the clip's pose normalisation
    parameters (to put predictions in crop coordinates)."""
    ds = PretrainDataset(manifest, records, clip, seed=seed, pose_cache=str(pose_cache), augment=False)
    out = []
    for k in range(len(records)):
        item = ds.load(k, np.random.default_rng([seed, k]))
        item["norm_params"] = normalize(item["poses_raw"].numpy())[1]
        out.append(item)
    return out


def generate_csvr_samples(checkpoint: str | os.PathLike, manifest, pose_cache: str | os.PathLike,
                          num_videos: int = 2, split: str = "1", subset: str = "test", seed: int = 0,
                          device: str = "cpu") -> CsvrSamples:
    """A CSVR pretraining checkpoint at work on real videos of ``manifest`` (a path or a
    :class:`~csvr.data.index.Manifest`): per video the input clip with its poses, the real future
    poses and the pose generator's prediction (denormalised with the clip's own centre / scale);
    with video generators, the real current clip, its reconstruction by G_v^r, the real future
    clip and the prediction by G_v^p (at the generators' resolution), all from ``f_i`` of the
    real clip and poses.

    One deterministic clip per video (the pretraining dataset without augmentation:
    :func:`_load_samples`), the model in eval mode, fixed noise (``seed``). Videos: the first of
    each class of ``subset`` that has poses in the cache, ``num_videos`` of them."""
    method, ckpt = load_method(checkpoint)
    if getattr(method, "name", "") != "csvr":
        raise CsvrError(f"{checkpoint} is a {getattr(method, 'name', '?')!r} checkpoint; CSVR sample pictures need a "
                        "'csvr' pretraining checkpoint")
    cfg = from_dict(PretrainConfig, ckpt.config)
    clip = cfg.data.clip
    if clip.future_frames < 1:
        raise CsvrError(f"{checkpoint}: data.clip.future_frames is 0, so the model predicts nothing to draw")
    model = method.model.to(device).eval()
    man = load_manifest(manifest, allow_outside_root=cfg.data.allow_outside_root) \
        if isinstance(manifest, (str, os.PathLike)) else manifest
    if pose_cache is None or not Path(pose_cache).is_dir():
        raise CsvrError(f"CSVR sample pictures need the pose cache; not a folder: {pose_cache}")
    store = PoseCache(pose_cache)
    try:
        records = man.select(split, subset) or man.records
    except DatasetError:
        records = man.records
    picked, seen = [], set()
    for rec in records:
        if rec.label not in seen and store.has(rec.id):
            seen.add(rec.label)
            picked.append(rec)
        if len(picked) == num_videos:
            break
    if not picked:
        raise CsvrError(f"the pose cache {pose_cache} holds poses for none of the {len(records)} videos of {man.path}")

    samples = _load_samples(man, picked, clip, pose_cache, seed)
    clip_u8 = torch.stack([s["clip"] for s in samples]).to(device)
    fut_u8 = torch.stack([s["future"] for s in samples]).to(device)
    ncur = torch.stack([s["poses"] for s in samples]).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    generated: dict[str, np.ndarray] = {}
    with torch.no_grad():
        x = normalize_clip(to_float_clip(clip_u8))
        out = model.generate(x, ncur[..., :2], ncur[..., 2], clip.future_frames, generator=gen)
        pred_norm = out.future_poses.cpu().numpy()                              # (B, T', 18, 2)
        if out.videos:
            vcfg = model.cfg.video
            videos = {"real clip": video_target_from_clip(x, vcfg, model.pixel_mean, model.pixel_std)}
            if "r" in out.videos:
                videos["reconstructed"] = out.videos["r"]
            xf = normalize_clip(to_float_clip(fut_u8))
            videos["real future"] = video_target_from_clip(xf, vcfg, model.pixel_mean, model.pixel_std)
            if "p" in out.videos:
                videos["predicted"] = out.videos["p"]
            generated = {k: np.stack([_to_uint8_video(v) for v in t.float().cpu().numpy()]) for k, t in videos.items()}

    per_video = []
    for b, (rec, sample) in enumerate(zip(picked, samples)):
        conf = sample["future_poses"].numpy()[..., 2:3]
        pred = denormalize(np.concatenate([pred_norm[b], conf], axis=-1), sample["norm_params"])  # crop coordinates
        per_video.append(SampleVideo(video_id=rec.id, label=rec.label, class_name=rec.class_name,
                                     clip=sample["clip"].numpy(), future=sample["future"].numpy(),
                                     poses=sample["poses_raw"].numpy(), future_poses=sample["future_poses_raw"].numpy(),
                                     predicted_poses=pred))
    return CsvrSamples(videos=per_video, clip_size=clip.size, generated=generated,
                       video_size=model.cfg.video.size if generated else None)


__all__ = ["CsvrSamples", "SampleVideo", "generate_csvr_samples"]
