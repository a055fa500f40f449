"""An optional decoding backend on torchcodec (``data.clip.decoder: torchcodec``).

Implements the datasets' reader contract, :class:`csvr.data.video.FrameReader` (``path``,
``num_frames``, ``width``, ``height``, ``fps``, ``read(indices, size)``, ``iframe_indices()``,
``close()``; tests/test_video_reader_contract.py checks it against the PyAV reader), on
``torchcodec.decoders.VideoDecoder`` (PyTorch's own FFmpeg-based decoder, which also decodes on
NVIDIA GPUs with NVDEC). Frame indices are the same: torchcodec's ``seek_mode="exact"`` scans the
stream and numbers frames in presentation order, as csvr's reader does (tested: identical frames at
the source size). I-frames come from the manifest as with PyAV (``csvr prepare index`` finds them);
a record without them falls back to PyAV's I-frame detection.

What differs: at a reduced decode size (``decode_short_side``), torchcodec scales with its own
``Resize`` decoder transform (FFmpeg's scaler, its default filter) rather than the bilinear filter
csvr's PyAV reader uses, so pixels differ by a few levels (not the frames). Decoding on a GPU
(``device="cuda"``) returns CUDA tensors and belongs in the training process, not in data-loader
workers; csvr's datasets decode on the CPU (see README, "Feeding a GPU").

torchcodec needs FFmpeg's shared libraries (4 to 7) on the system (``apt-get install ffmpeg`` on
Debian/Ubuntu); it is not a dependency of csvr.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from csvr.data.video import FrameReader, VideoReader, checked_indices, empty_frames
from csvr.errors import ConfigError, VideoError


def torchcodec_available() -> str | None:
    """None when torchcodec imports and finds FFmpeg; else the reason it does not."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception as e:  # ImportError, or its RuntimeError when FFmpeg's libraries are missing
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


class TorchCodecReader(FrameReader):
    """A video opened with torchcodec; ``size=(width, height)`` scales while decoding (every
    :meth:`read` must ask for that size)."""

    def __init__(self, path: str | os.PathLike, threads: int = 1, size: tuple[int, int] | None = None,
                 device: str = "cpu") -> None:
        why = torchcodec_available()
        if why is not None:
            raise ConfigError(f"data.clip.decoder=torchcodec: torchcodec cannot be used here ({why}); install it "
                              "(pip install torchcodec) and FFmpeg's shared libraries (apt-get install ffmpeg), "
                              "or use data.clip.decoder=pyav")
        from torchcodec.decoders import VideoDecoder
        from torchcodec.transforms import Resize

        self.path = str(path)
        if not os.path.exists(self.path):
            raise VideoError(self.path, "file not found")
        self.size = size
        transforms = None if size is None else [Resize((int(size[1]), int(size[0])))]
        try:
            self._decoder = VideoDecoder(self.path, seek_mode="exact", num_ffmpeg_threads=threads,
                                         dimension_order="NHWC", device=device, transforms=transforms)
        except Exception as e:  # torchcodec raises RuntimeError / ValueError for bad files
            raise VideoError(self.path, f"cannot open with torchcodec: {str(e).splitlines()[0] if str(e) else e}") from None
        md = self._decoder.metadata
        self.num_frames = int(md.num_frames)
        self.width, self.height = int(md.width), int(md.height)
        self.fps = float(md.average_fps or 0.0)
        self._iframes: list[int] | None = None

    def read(self, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 ``(n, H, W, 3)`` RGB, at the
        size the reader was opened with (``size`` must match it)."""
        if size != self.size:
            raise ValueError(f"this reader decodes at {self.size}, asked for {size}")
        idx = checked_indices(self, indices)
        if not idx:
            return empty_frames(self, size)
        wanted = sorted(set(idx))
        try:
            batch = self._decoder.get_frames_at(indices=wanted).data
        except Exception as e:
            raise VideoError(self.path, f"decode failed: {str(e).splitlines()[0] if str(e) else e}") from None
        frames = batch.cpu().numpy()
        pos = {j: k for k, j in enumerate(wanted)}
        return frames[[pos[i] for i in idx]]

    def iframe_indices(self) -> list[int]:
        """The I-frames, found by csvr's PyAV reader (torchcodec does not report picture types)."""
        if self._iframes is None:
            with VideoReader(self.path) as r:
                self._iframes = r.iframe_indices()
        return list(self._iframes)

    def close(self) -> None:
        """Drop the decoder (torchcodec frees it with the object)."""
        self._decoder = None


__all__ = ["TorchCodecReader", "torchcodec_available"]
