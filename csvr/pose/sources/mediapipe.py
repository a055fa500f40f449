"""Pose extraction with MediaPipe BlazePose (mediapipe 0.10.21, ``model_complexity=1``).

BlazePose finds *one* person and tracks it from frame to frame (``static_image_mode=False``):
a detector runs on the first frame and whenever tracking is lost, the landmark model on a
region derived from the previous frame otherwise. Its 33 landmarks are mapped to the 18
OpenPose COCO joints by :data:`csvr.pose_format.skeleton.BLAZEPOSE33_TO_COCO18`:

====  ==========  ================================================
 #    COCO-18     BlazePose landmark
====  ==========  ================================================
 0    nose        0 nose
 1    neck        midpoint of 11 left_shoulder and 12 right_shoulder
 2    r_shoulder  12 right_shoulder
 3    r_elbow     14 right_elbow
 4    r_wrist     16 right_wrist
 5    l_shoulder  11 left_shoulder
 6    l_elbow     13 left_elbow
 7    l_wrist     15 left_wrist
 8    r_hip       24 right_hip
 9    r_knee      26 right_knee
10    r_ankle     28 right_ankle
11    l_hip       23 left_hip
12    l_knee      25 left_knee
13    l_ankle     27 left_ankle
14    r_eye       5 right_eye (eye centre)
15    l_eye       2 left_eye (eye centre)
16    r_ear       8 right_ear
17    l_ear       7 left_ear
====  ==========  ================================================

Confidence: the landmark's ``visibility`` (the model's estimate that the point is in the frame
and not occluded). mediapipe 0.10.21's legacy ``solutions.pose`` leaves ``presence`` unset
(always 0), so it is not used. The neck's confidence is the minimum of the two shoulders'.
Landmarks outside the image (BlazePose extrapolates the body beyond the frame) are clipped to
the border with confidence 0 (:func:`csvr.pose.sources.common.to_unit`).

Only ``model_complexity=1`` works offline: the wheel ships ``pose_landmark_full.tflite``;
complexities 0 and 2 try to download their model at first use.

One :class:`MediaPipeExtractor` is created per worker process and reused for every video; its
graph is reset between videos (:meth:`reset`) so neither the tracked region nor the landmark
smoothing filter carries over from one video to the next.

MediaPipe's C++ side writes log lines straight to file descriptor 2 when it builds and runs the
graph ("INFO: Created TensorFlow Lite XNNPACK delegate", ``W0000 ... Feedback manager requires a
model with a single signature...``, ``W0000 ... Using NORM_RECT without IMAGE_DIMENSIONS...``,
about five per graph, ~30 in a multi-worker job), from the graph's own threads at any time; they
are harmless but break the progress bar, and absl's C++ logging in 0.10.21 ignores
``GLOG_minloglevel`` / ``TF_CPP_MIN_LOG_LEVEL``. While an extractor is open, fd 2 therefore goes
through :class:`~csvr.pose.sources.common.NativeStderr`, which sends those lines to the debug
log and passes everything else through to stderr as it comes.

BlazePose tracks one person, but when it loses them it runs its detector again, which may pick
*another* person: on a two-person video the landmarks jump from one to the other mid-video. The
per-frame poses are therefore linked into tracks like the importers' detections
(:func:`csvr.pose.track.keep_one_identity`) and only the best track is kept; the other frames
count as "no person", and ``info["identity"]`` says how many tracks and frames were dropped.

BlazePose may also keep a confident skeleton frozen in place while the person moves elsewhere.
While the frames are decoded anyway, a :class:`~csvr.pose.consistency.MotionProbe` notes which
cells of a 32 x 32 grayscale picture change; ``info["frozen_skeleton"]``
(:func:`csvr.pose.consistency.frozen_skeleton`) lists the segments where the kept skeleton stays
still with high confidence while the image changes (the job's report and warning name them).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterable

import numpy as np

from csvr.data.video import VideoReader
from csvr.pose.consistency import FrozenSkeletonSettings, MotionProbe, frozen_skeleton
from csvr.pose.raw import RawPoses
from csvr.pose.sources import PoseSource, register_source
from csvr.pose.sources.common import NativeStderr, to_unit
from csvr.pose.track import TrackSettings, keep_one_identity
from csvr.pose_format.base import PoseError
from csvr.pose_format.skeleton import BLAZEPOSE33_TO_COCO18, map_to_coco18
from csvr.utils.progress import progress as progress_bar


class MediaPipeExtractor:
    """A BlazePose graph that turns videos (or frame sequences) into raw COCO-18 poses.

    Args:
        model_complexity: 1 (the only model available offline in mediapipe 0.10.21).
        min_detection_confidence: the person detector's threshold (MediaPipe's default 0.5).
        min_tracking_confidence: below this landmark-tracking confidence the detector runs
            again on the next frame (MediaPipe's default 0.5).
        smooth_landmarks: MediaPipe's temporal landmark filter (tracking mode only).
        threads: decoder threads for the video reader (1 inside worker processes).
        track: how the per-frame poses are linked into one person's track
            (:func:`csvr.pose.track.keep_one_identity`).
    """

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, smooth_landmarks: bool = True, threads: int = 1,
                 track: TrackSettings | None = None):
        self.settings = {"model": "blazepose", "mediapipe_version": None, "model_complexity": int(model_complexity),
                         "min_detection_confidence": float(min_detection_confidence),
                         "min_tracking_confidence": float(min_tracking_confidence),
                         "smooth_landmarks": bool(smooth_landmarks), "static_image_mode": False,
                         "confidence": "visibility"}
        self.threads = threads
        self.track = track or TrackSettings()
        self.frozen_settings = FrozenSkeletonSettings()
        # for the graph's whole life: it logs from its own threads, also between our calls
        self._quiet = NativeStderr().__enter__()
        try:
            import mediapipe as mp

            self.settings["mediapipe_version"] = mp.__version__
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=False, model_complexity=int(model_complexity),
                smooth_landmarks=bool(smooth_landmarks), enable_segmentation=False,
                min_detection_confidence=float(min_detection_confidence),
                min_tracking_confidence=float(min_tracking_confidence))
        except ImportError:
            self._quiet.close()
            raise PoseError("the mediapipe source needs mediapipe 0.10.21 (see README, 'Set-up')") from None
        except Exception as e:  # mediapipe raises plain RuntimeErrors when a model is missing
            self._quiet.close()
            hint = "" if model_complexity == 1 else (
                " (only model_complexity=1 ships with mediapipe 0.10.21; 0 and 2 download their model)")
            raise PoseError(f"cannot start MediaPipe pose with model_complexity={model_complexity}: {e}{hint}") from None
        self.inference_seconds = 0.0  # time spent inside MediaPipe (process + reset), for benchmarks

    def reset(self) -> None:
        """Forget the tracked person and the smoothing state (done before each video)."""
        t0 = time.perf_counter()
        self._pose.reset()
        self.inference_seconds += time.perf_counter() - t0

    def process_frame(self, rgb: np.ndarray) -> np.ndarray | None:
        """``(18, 3)`` float32 pose of one RGB uint8 frame, or None when nobody is found.

        In tracking mode successive calls are successive frames of one video.
        """
        t0 = time.perf_counter()
        res = self._pose.process(np.ascontiguousarray(rgb, dtype=np.uint8))
        self.inference_seconds += time.perf_counter() - t0
        if res.pose_landmarks is None:
            return None
        lm = res.pose_landmarks.landmark
        pts = np.array([(p.x, p.y, p.visibility) for p in lm], dtype=np.float64)
        return to_unit(map_to_coco18(pts, BLAZEPOSE33_TO_COCO18))

    def process_frames(self, frames: Iterable[tuple[int, np.ndarray]] | Iterable[np.ndarray],
                       num_frames: int | None = None, frame_size: tuple[int, int] | None = None) -> RawPoses:
        """Raw poses of one video given as frames (``(index, rgb)`` pairs or plain arrays)."""
        self.reset()
        out: dict[int, np.ndarray] = {}
        seen = 0
        size = frame_size
        probe = MotionProbe(self.frozen_settings)
        for k, item in enumerate(frames):
            idx, rgb = item if isinstance(item, tuple) else (k, item)
            if size is None:
                size = (int(rgb.shape[1]), int(rgb.shape[0]))
            seen = max(seen, idx + 1)
            probe.add(idx, rgb)
            pose = self.process_frame(rgb)
            if pose is not None:
                out[idx] = pose
        T = int(num_frames) if num_frames is not None else seen
        poses = np.zeros((T, 18, 3), np.float32)
        found = np.zeros(T, bool)
        for idx, pose in out.items():
            if idx < T:
                poses[idx] = pose
                found[idx] = True
        w, h = size or (1, 1)
        poses, found, identity = keep_one_identity(poses, found, aspect=w / h if h else 1.0, settings=self.track)
        frozen = frozen_skeleton(poses, found, probe.masks(T), self.frozen_settings)
        return RawPoses(poses=poses, person_found=found, frame_size=size or (0, 0), source="mediapipe",
                        settings=dict(self.settings), info={"decoded_frames": seen, "identity": identity,
                                                            "frozen_skeleton": frozen})

    def process_video(self, path: str | os.PathLike, progress: str | None = None) -> RawPoses:
        """Raw poses of every frame of the video at ``path`` (raises VideoError if unreadable);
        ``progress``: show a progress bar over its frames with this label (one video: csvr predict)."""
        with VideoReader(path, threads=self.threads) as reader:
            frames = reader.iter_frames()
            bar = None
            if progress:
                bar = progress_bar(frames, total=reader.num_frames, desc=progress, unit="frame")
                frames = bar
            try:
                raw = self.process_frames(frames, num_frames=reader.num_frames,
                                          frame_size=(reader.width, reader.height))
            finally:
                if bar is not None:
                    bar.close()
        return raw

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pose.close()
        self._quiet.close()

    def __enter__(self) -> "MediaPipeExtractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@register_source("mediapipe", order=0)
class MediaPipeSource(PoseSource):
    """Extraction with BlazePose: one :class:`MediaPipeExtractor` per process, every video decoded."""

    def start(self) -> None:
        self.extractor = MediaPipeExtractor(**self.options.mediapipe, track=self.options.track)

    def read(self, item, payload=None) -> RawPoses:
        if not item.path:
            raise PoseError(f"{item.video_id}: the mediapipe source needs the video file")
        ext = getattr(self, "extractor", None)
        if ext is None:
            raise RuntimeError("MediaPipe worker not initialised")
        return ext.process_video(item.path, progress=self.options.progress)

    def close(self) -> None:
        ext = self.__dict__.pop("extractor", None)
        if ext is not None:
            ext.close()

    @property
    def inference_seconds(self) -> float:
        ext = getattr(self, "extractor", None)
        return ext.inference_seconds if ext is not None else 0.0
