"""PyTorch datasets over a manifest: pretraining samples and labelled clips.

Both decode on the fly in data-loader workers (each worker keeps a few containers open), apply
the spatial part of the augmentation (:mod:`csvr.data.transforms`) and return uint8 clips, so
little data crosses the worker boundary; photometric augmentation runs batched on the device.

Randomness is a pure function of ``(seed, epoch, index)``: the same seed gives the same samples
in any number of workers, and a resumed run sees exactly the samples it would have seen.

Unreadable videos (documented policy): at training time a sample whose video fails to decode is
reported once per worker process (a warning with the path and the reason) and replaced by
another, randomly chosen, sample; after ``max_retries`` consecutive failures the dataset raises,
naming the videos. At evaluation time (``ClipDataset(mode="eval")``) a video is never replaced
by another one (that would score one video twice under the wrong name): the item comes back
with ``ok = False``, zero clips and its own index and label, and the evaluation code
(:func:`csvr.eval.features.extract_features`, :func:`csvr.eval.finetune.predict`) leaves it out
and reports it. The data-loader worker itself never dies on a bad video.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from csvr.data.index import Manifest, VideoRecord
from csvr.data.sampling import (clip_indices, count_iframes_in_span, iframes_for_span,
                                sample_clip_indices, sample_pretrain_indices, uniform_clip_starts)
from csvr.data.transforms import CropBox, center_crop_box, crop_poses, crop_resize, random_resized_crop_box
from csvr.data.torchcodec_reader import TorchCodecReader
from csvr.data.video import FrameReader, VideoReader
from csvr.errors import CsvrError, VideoError
from csvr.pose_format.cache import PoseCache
from csvr.pose_format.normalize import normalize

log = logging.getLogger(__name__)


@dataclass
class ClipConfig:
    """How clips are cut and spatially augmented (paper IV-B: 16 frames, stride 4, 112 px).

    ``decode_short_side``: frames are first scaled (by FFmpeg, while converting) so that their
    short side is this many pixels (the usual 128x171 for 112 px crops), when the video is larger;
    ``None`` keeps the source size. ``decoder``: ``pyav`` (default) or ``torchcodec``
    (:mod:`csvr.data.torchcodec_reader`: the same frames, optional, needs FFmpeg's libraries).
    """

    frames: int = 16
    stride: int = 4
    future_frames: int = 16
    size: int = 112
    decode_short_side: int | None = 128
    max_iframes: int = 4
    short_video: Literal["loop", "pad"] = "loop"
    crop_scale: tuple[float, float] = (0.3, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.3333333)
    flip_prob: float = 0.5
    iframe_crop: Literal["independent", "shared"] = "independent"
    decoder: Literal["pyav", "torchcodec"] = "pyav"

    def __post_init__(self):
        if self.frames < 1 or self.stride < 1 or self.future_frames < 0 or self.size < 8:
            raise ValueError("frames >= 1, stride >= 1, future_frames >= 0 and size >= 8 are required")
        if self.max_iframes < 1:
            raise ValueError("max_iframes must be >= 1")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError("crop_scale must satisfy 0 < lo <= hi <= 1")


class _ReaderPool:
    """A small per-process LRU of open readers (:class:`FrameReader`; not pickled)."""

    def __init__(self, max_open: int = 4, decoder: str = "pyav"):
        self.max_open = max_open
        self.decoder = decoder
        self._open: OrderedDict[str, FrameReader] = OrderedDict()

    def get(self, path: str, size: tuple[int, int] | None = None) -> FrameReader:
        r: FrameReader | None = self._open.get(path)
        if r is not None:
            self._open.move_to_end(path)
            return r
        if self.decoder == "torchcodec":
            r = TorchCodecReader(path, threads=1, size=size)
        else:
            r = VideoReader(path, threads=1, parse_intra=False)  # the manifest holds the I-frames
        self._open[path] = r
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return r

    def drop(self, path: str) -> None:
        r = self._open.pop(path, None)
        if r is not None:
            r.close()


class _VideoDataset(Dataset):
    """Shared machinery: records, readers, deterministic RNG, the bad-video policy, poses."""

    def __init__(self, manifest: Manifest, records: list[VideoRecord], clip: ClipConfig, seed: int = 0,
                 pose_cache: str | None = None, max_retries: int = 20, max_open: int = 4):
        if not records:
            raise CsvrError("the dataset selection is empty (check the manifest, split and subset)")
        self.manifest = manifest
        self.records = list(records)
        self.clip = clip
        self.seed = int(seed)
        self.epoch = 0
        self.max_retries = max_retries
        self.max_open = max_open
        self.pose_cache_dir = pose_cache
        self._pool: _ReaderPool | None = None
        self._poses = None
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pool"] = None
        state["_poses"] = None
        return state

    def set_epoch(self, epoch: int) -> None:
        """Change the randomness of every sample (call before each epoch, like DistributedSampler)."""
        self.epoch = int(epoch)

    def rng(self, index: int, attempt: int = 0) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64([self.seed, self.epoch, int(index), attempt]))

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    def reader(self, rec: VideoRecord) -> FrameReader:
        if self._pool is None:
            self._pool = _ReaderPool(self.max_open, self.clip.decoder)
        return self._pool.get(str(self.manifest.video_path(rec)), self.decode_size(rec))

    def frame_count(self, rec: VideoRecord, reader: FrameReader) -> int:
        """The frames of ``rec`` clips are cut from: the index's count, which is below the reader's
        for a truncated file indexed with the frames that decode. A reader that finds fewer frames
        than were indexed means the file changed since (during the run: the check at manifest load
        saw it unchanged): a :class:`VideoError`, so it is skipped, never sampled as another video."""
        n = reader.num_frames
        if rec.num_frames <= 0:
            return n
        if n < rec.num_frames:
            raise VideoError(reader.path, f"has {n} frames, {rec.num_frames} when indexed: it changed since indexing "
                                          "(run csvr prepare index again)")
        return rec.num_frames

    def pose_store(self):
        if self.pose_cache_dir is None:
            return None
        if self._poses is None:
            self._poses = PoseCache(self.pose_cache_dir)
        return self._poses

    def decode_size(self, rec: VideoRecord) -> tuple[int, int] | None:
        s = self.clip.decode_short_side
        if s is None or min(rec.width, rec.height) <= s:
            return None
        if rec.width <= rec.height:
            return s, int(round(rec.height * s / rec.width / 2)) * 2
        return int(round(rec.width * s / rec.height / 2)) * 2, s

    #: ``True``: an unreadable video gives a placeholder item (``ok = False``) instead of another sample
    skip_unreadable = False

    def __getitem__(self, index: int) -> dict:
        j = index
        failures = []
        for attempt in range(self.max_retries):
            rec = self.records[j]
            try:
                out = self.load(j, self.rng(j, 0 if j == index else attempt))
                out["index"] = torch.tensor(j, dtype=torch.long)
                if self.skip_unreadable:
                    out["ok"] = torch.tensor(True)
                return out
            except (VideoError, IndexError, OSError) as e:
                if self._pool is not None:
                    self._pool.drop(str(self.manifest.video_path(rec)))
                reason = getattr(e, "reason", str(e))
                failures.append(f"{rec.path}: {reason}")
                if rec.path not in self._reported:
                    self._reported.add(rec.path)
                    log.warning("csvr: %s unreadable video %s (%s)%s", "leaving out" if self.skip_unreadable
                                else "skipping", rec.path, reason,
                                "" if self.skip_unreadable else "; using another sample instead")
                if self.skip_unreadable:
                    out = self.placeholder(j)
                    out["index"] = torch.tensor(j, dtype=torch.long)
                    out["ok"] = torch.tensor(False)
                    return out
                j = int(self.rng(index, attempt + 1).integers(0, len(self.records)))
        raise CsvrError(f"{self.max_retries} videos in a row failed to decode, e.g. " + "; ".join(failures[:3]))

    def load(self, index: int, rng: np.random.Generator) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def placeholder(self, index: int) -> dict:  # pragma: no cover - abstract
        """An item of the right shapes for an unreadable video (``skip_unreadable``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ poses
    def poses_for(self, rec: VideoRecord, indices: np.ndarray, box: CropBox, frame_hw: tuple[int, int]
                  ) -> np.ndarray | None:
        """Poses (len(indices), 18, 3) at ``indices``, in the crop's coordinates, or None."""
        store = self.pose_store()
        if store is None:
            return None
        poses = store.get(rec.id)
        if poses is None or len(poses) == 0:
            return None
        idx = np.minimum(np.asarray(indices), len(poses) - 1)
        return crop_poses(poses[idx], box, frame_hw[0], frame_hw[1])


class PretrainDataset(_VideoDataset):
    """CSVR pretraining samples (also serves CVRL/IIC via :class:`ClipDataset`).

    Each item is a dict:

    - ``clip`` uint8 ``(T, S, S, 3)``: a random clip of T frames at stride s;
    - ``future`` uint8 ``(T', S, S, 3)``: the next T' frames at the same stride, right after it
      (same crop and flip as ``clip``: it is the video predictor's target);
    - ``iframes`` uint8 ``(K, S, S, 3)`` and ``iframe_mask`` bool ``(K,)``: the I-frames inside
      the clip's span (padded to K = ``max_iframes``), ``iframe_fallback``: True when the span
      held none and the nearest I-frame before it was used; cropped independently of the clip by
      default (``iframe_crop``), so matching cannot rely on identical pixels; ``iframe_count`` long
      ``()``: how many I-frames the span holds before the cap to K (0 exactly when
      ``iframe_fallback``), e.g. to measure how often clips lack their own I-frame;
    - when a pose cache is given: ``poses`` ``(T, 18, 3)`` and ``future_poses`` ``(T', 18, 3)``
      normalised with :func:`csvr.pose_format.normalize` (the future with the clip's parameters), x/y
      then confidence; ``poses_raw``/``future_poses_raw`` in crop coordinates [0, 1];
      ``pose_valid`` False when the video has no person (the pose losses skip the sample);
    - ``label`` (ignored by pretraining; -1 when unlabelled), ``index``, ``frame_indices``.

    ``augment=False`` centre-crops the clip, its future and the I-frames without flipping (the
    clips are still drawn with the item's random generator): the view the report's CSVR samples
    show the model.
    """

    def __init__(self, manifest: Manifest, records: list[VideoRecord], clip: ClipConfig, seed: int = 0,
                 pose_cache: str | None = None, augment: bool = True, **kw):
        super().__init__(manifest, records, clip, seed, pose_cache, **kw)
        self.with_poses = pose_cache is not None
        self.augment = augment

    def load(self, index: int, rng: np.random.Generator) -> dict:
        rec = self.records[index]
        c = self.clip
        reader = self.reader(rec)
        n = self.frame_count(rec, reader)
        clip_idx, fut_idx, (first, last) = sample_pretrain_indices(n, c.frames, c.stride, c.future_frames, rng,
                                                                   c.short_video)
        iframes = rec.iframes or reader.iframe_indices()
        usable = [i for i in iframes if i < n] or [0]
        if_idx, fallback = iframes_for_span(usable, first, last, c.max_iframes, rng)
        if_count = count_iframes_in_span(usable, first, last)
        wanted = np.concatenate([clip_idx, fut_idx, np.asarray(if_idx, dtype=np.int64)])
        size = self.decode_size(rec)
        frames = reader.read(wanted.tolist(), size=size)
        h, w = frames.shape[1:3]
        if self.augment:
            box = random_resized_crop_box(h, w, rng, c.crop_scale, c.crop_ratio, c.flip_prob)
            ibox = box if c.iframe_crop == "shared" else random_resized_crop_box(h, w, rng, c.crop_scale,
                                                                                  c.crop_ratio, c.flip_prob)
        else:  # the no-augmentation view (the report's samples): centre crop, no flip
            box = ibox = center_crop_box(h, w)
        t, tf = len(clip_idx), len(fut_idx)
        video = crop_resize(frames[: t + tf], box, c.size)
        ifr = crop_resize(frames[t + tf:], ibox, c.size)
        k = c.max_iframes
        iframes_t = torch.zeros((k, c.size, c.size, 3), dtype=torch.uint8)
        iframes_t[: len(if_idx)] = ifr
        mask = torch.zeros(k, dtype=torch.bool)
        mask[: len(if_idx)] = True
        out = {
            "clip": video[:t],
            "future": video[t:],
            "iframes": iframes_t,
            "iframe_mask": mask,
            "iframe_fallback": torch.tensor(fallback),
            "iframe_count": torch.tensor(if_count, dtype=torch.long),
            "label": torch.tensor(rec.label, dtype=torch.long),
            "frame_indices": torch.from_numpy(clip_idx),
        }
        if self.with_poses:
            out.update(self._pose_fields(rec, clip_idx, fut_idx, box, (h, w)))
        return out

    def _pose_fields(self, rec, clip_idx, fut_idx, box, hw) -> dict:
        both = self.poses_for(rec, np.concatenate([clip_idx, fut_idx]), box, hw)
        t, tf = len(clip_idx), len(fut_idx)
        if both is None:
            zeros = torch.zeros((t, 18, 3)), torch.zeros((tf, 18, 3))
            return {"poses": zeros[0], "future_poses": zeros[1], "poses_raw": zeros[0].clone(),
                    "future_poses_raw": zeros[1].clone(), "pose_valid": torch.tensor(False)}
        cur, fut = both[:t], both[t:]
        ncur, params = normalize(cur)
        nfut, _ = normalize(fut, params=params)
        return {
            "poses": torch.from_numpy(np.ascontiguousarray(ncur, dtype=np.float32)),
            "future_poses": torch.from_numpy(np.ascontiguousarray(nfut, dtype=np.float32)),
            "poses_raw": torch.from_numpy(np.ascontiguousarray(cur, dtype=np.float32)),
            "future_poses_raw": torch.from_numpy(np.ascontiguousarray(fut, dtype=np.float32)),
            "pose_valid": torch.tensor(True),
        }


class ClipDataset(_VideoDataset):
    """Labelled clips for finetuning, linear probing, retrieval and the contrastive baselines.

    ``mode="train"``: one random clip per item (``num_clips`` > 1 draws several independent random
    clips, e.g. CVRL's two views, see ``temporal``), random resized crop + flip; items are
    ``clip`` uint8 ``(T, S, S, 3)`` or ``(N, T, S, S, 3)``.

    ``mode="eval"``: ``num_clips`` clips spaced uniformly over the video (paper IV-B: 10 for
    retrieval), short side resized and centre-cropped; ``clip`` is ``(N, T, S, S, 3)``.

    With a pose cache, ``poses`` ``((N,) T, 18, 3)`` normalised per clip and ``pose_valid``.

    ``temporal`` (train mode, ``num_clips`` = 2) samples the second clip's start at a distance drawn
    from a callable ``temporal(rng, max_distance) -> int`` (CVRL's decreasing distribution); each
    clip gets its own crop.
    """

    def __init__(self, manifest: Manifest, records: list[VideoRecord], clip: ClipConfig, mode: str = "train",
                 num_clips: int = 1, seed: int = 0, pose_cache: str | None = None, temporal=None, **kw):
        super().__init__(manifest, records, clip, seed, pose_cache, **kw)
        if mode not in ("train", "eval"):
            raise ValueError("mode must be 'train' or 'eval'")
        self.mode = mode
        self.num_clips = int(num_clips)
        self.temporal = temporal
        self.with_poses = pose_cache is not None
        self.skip_unreadable = mode == "eval"

    def placeholder(self, index: int) -> dict:
        c = self.clip
        lead = () if self.mode == "train" and self.num_clips == 1 else (self.num_clips,)
        out = {"clip": torch.zeros(lead + (c.frames, c.size, c.size, 3), dtype=torch.uint8),
               "label": torch.tensor(self.records[index].label, dtype=torch.long)}
        if self.with_poses:
            out["poses"] = torch.zeros(lead + (c.frames, 18, 3), dtype=torch.float32)
            out["pose_valid"] = torch.tensor(False)
        return out

    def _clip_starts(self, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        c = self.clip
        if self.mode == "eval":
            return [clip_indices(s, c.frames, c.stride, n, c.short_video)
                    for s in uniform_clip_starts(n, c.frames, c.stride, self.num_clips)]
        if self.temporal is not None and self.num_clips == 2:
            span = (c.frames - 1) * c.stride + 1
            max_d = max(0, n - span)
            d = int(self.temporal(rng, max_d))
            s0 = int(rng.integers(0, max(1, n - span - d + 1)))
            s1 = s0 + d
            if rng.random() < 0.5:
                s0, s1 = s1, s0
            return [clip_indices(s, c.frames, c.stride, n, c.short_video) for s in (s0, s1)]
        return [sample_clip_indices(n, c.frames, c.stride, rng, c.short_video) for _ in range(self.num_clips)]

    def load(self, index: int, rng: np.random.Generator) -> dict:
        rec = self.records[index]
        c = self.clip
        reader = self.reader(rec)
        clips = self._clip_starts(self.frame_count(rec, reader), rng)
        frames = reader.read(np.concatenate(clips).tolist(), size=self.decode_size(rec))
        h, w = frames.shape[1:3]
        t = c.frames
        outs, poses, valid = [], [], True
        for k, idx in enumerate(clips):
            if self.mode == "eval":
                box = center_crop_box(h, w)
            else:
                box = random_resized_crop_box(h, w, rng, c.crop_scale, c.crop_ratio, c.flip_prob)
            outs.append(crop_resize(frames[k * t:(k + 1) * t], box, c.size))
            if self.with_poses:
                p = self.poses_for(rec, idx, box, (h, w))
                if p is None:
                    valid = False
                    poses.append(np.zeros((t, 18, 3), np.float32))
                else:
                    poses.append(np.asarray(normalize(p)[0], dtype=np.float32))
        single = self.mode == "train" and self.num_clips == 1
        out = {
            "clip": outs[0] if single else torch.stack(outs),
            "label": torch.tensor(rec.label, dtype=torch.long),
        }
        if self.with_poses:
            pt = torch.from_numpy(np.stack(poses))
            out["poses"] = pt[0] if single else pt
            out["pose_valid"] = torch.tensor(valid)
        return out
