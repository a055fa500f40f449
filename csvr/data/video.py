"""Reading videos: the reader contract, the PyAV reader, keyframes and I-frames.

The data layer's decoding side. The datasets (:mod:`csvr.data.datasets`) read clips and I-frames
through :class:`FrameReader`; the index (:mod:`csvr.data.index`, ``csvr prepare index``) describes
each video with :func:`probe`; re-encoding, pose extraction (:mod:`csvr.pose`), inference and the
report's figures (:mod:`csvr.eval`) open videos with :class:`VideoReader` or the functions below.
Parsing H.264 slice headers is :mod:`csvr.data.bitstream`; encoding is :mod:`csvr.data.writer`.

Public API (documented in the README):

- :class:`FrameReader`: the contract every reader the datasets use implements (``path``,
  ``num_frames``, ``width``, ``height``, ``fps``, ``read``, ``iframe_indices``, ``close``):
  :class:`VideoReader` here and :class:`csvr.data.torchcodec_reader.TorchCodecReader`;
- :func:`probe` ``(path) -> VideoInfo``: fps, frame count, size, codec, keyframe and I-frame
  indices;
- :func:`read_frames` ``(path, indices) -> uint8 (len(indices), H, W, 3)``;
- :func:`read_iframes` ``(path) -> (indices, frames)``;
- :class:`VideoReader`: the same on an open container (what data-loader workers keep open);
- :func:`iter_frames`: every frame in order (pose extraction).

Frame indices
    Counted from 0 in *presentation* order: the reader demuxes the stream once (no decoding,
    cheap) and ranks the packets' timestamps, so frame ``i`` is the ``i``-th smallest pts. This
    is exact for constant and variable frame rates and for B-frames (decode order != display
    order), where ``round(t * fps)`` arithmetic is not.

Keyframes vs I-frames
    *Keyframes* are random-access points: packets the container flags as key (H.264 IDR frames,
    MPEG-4 I-VOPs, VP9 key frames). Seeking goes to them. *I-frames* are frames whose picture type
    is intra (CoViAR's and the paper's "I-frames", the context branch's positives). They differ for
    H.264: x264 inserts non-IDR I-frames at scene cuts that are not keyframes. How each codec is
    handled (decoding only intra pictures, never the whole video):

    - H.264: the slice header of every packet is parsed while demuxing (NAL type 5 = IDR, or
      ``slice_type`` I/SI in a type-1 slice; :mod:`csvr.data.bitstream`), so the I-frames are
      known without decoding anything, and only those packets are sent to the decoder (an intra
      picture decodes on its own; the frames are exactly those of a full decode, tested);
    - HEVC (and H.264 whose packets cannot be parsed): the decoder runs with
      ``skip_frame="NONINTRA"``, so it decodes only intra pictures, and frames whose
      ``pict_type`` is I are kept;
    - MPEG-4 part 2, msmpeg4, VP8/VP9, AV1, MJPEG and everything else: only the packets flagged
      key are sent to the decoder (``skip_frame`` is ignored by the VP9 decoder and
      ``NONINTRA`` by the MPEG-4 one); their decoded ``pict_type`` is I. For these codecs the
      I-frames are the keyframes (an MPEG-4 I-VOP is always flagged key; VP9 intra-only non-key
      frames, which encoders practically never emit, would be missed).

Damaged files (checked, never trusted)
    A container's keyframe flags are checked against the stream when they are implausible: a
    codec that is not intra-only whose packets are more than half flagged key, or flagged key
    three in a row (FFmpeg's AVI demuxer, reading past a missing index, flags every chunk key).
    The flagged frames' picture types are then decoded (those packets only) and only the intra
    ones stay keyframes (for seeking) and I-frames; :attr:`VideoReader.notes`
    says so. :func:`probe` also decodes the video's last GOP: a truncated file whose container
    still lists every frame is indexed with the frames that decode (a note says how many of how
    many), or refused when less than half of them do.
"""

from __future__ import annotations

import abc
import bisect
import dataclasses
import logging
import os
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Self, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from csvr.data.bitstream import avcc_nal_length_size, h264_packet_is_intra
from csvr.errors import VideoError

log = logging.getLogger(__name__)

# Codecs whose decoder honours skip_frame="NONINTRA" (decodes intra pictures only).
_NONINTRA_CODECS = {"h264", "hevc"}
_PICT_I = 1  # AVPictureType.AV_PICTURE_TYPE_I
# probe() refuses a truncated video when fewer than this fraction of its listed frames decode
MIN_DECODABLE_FRACTION = 0.5
# read() seeks ahead to a later keyframe only when that skips at least this many frames; a seek
# (demuxer seek, decoder flush) costs more than decoding a few frames of the GOP in between
SEEK_MIN_SKIP = 1

av.logging.set_level(av.logging.PANIC)  # FFmpeg's own stderr chatter; errors reach us as exceptions


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video. Frame indices are 0-based, presentation order."""

    codec: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    keyframes: list[int] = field(default_factory=list)
    iframes: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was found wrong with the file and how it was taken

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VideoInfo":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class FrameReader(abc.ABC):
    """An open video as the datasets use it, whichever decoder opened it: the reader contract.

    Implemented by :class:`VideoReader` (PyAV, the default) and
    :class:`csvr.data.torchcodec_reader.TorchCodecReader` (``data.clip.decoder: torchcodec``);
    tests/test_video_reader_contract.py runs the same checks on both. The datasets
    (:mod:`csvr.data.datasets`) keep a few readers open per data-loader worker and call only
    what is declared here. Use as a context manager or call :meth:`close`.

    Attributes:
        path: the video file, as a string (errors name it).
        num_frames: how many frames the video has; frame indices run from 0 to ``num_frames - 1``
            in presentation order (see the module docstring), the same for every reader.
        width: the stored frame width in pixels (before any scaling asked of :meth:`read`).
        height: the stored frame height in pixels.
        fps: frames per second (the stream's average rate).
    """

    path: str
    num_frames: int
    width: int
    height: int
    fps: float

    @abc.abstractmethod
    def read(self, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 ``(len(indices), H, W, 3)``
        RGB; ``size=(width, height)`` scales them while decoding (a reader may decode at one size
        only, the one it was opened with). No index: ``(0, H, W, 3)`` (:func:`empty_frames`).

        Raises IndexError naming the indices outside ``0..num_frames - 1``
        (:func:`checked_indices`), and :class:`VideoError` when a wanted frame cannot be decoded.
        """

    @abc.abstractmethod
    def iframe_indices(self) -> list[int]:
        """Sorted indices of the video's I-frames (intra pictures; the context branch's
        positives). The datasets ask only when the manifest does not list them."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the decoder and the file."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def checked_indices(reader: FrameReader, indices: Sequence[int]) -> list[int]:
    """``indices`` as ints, or an IndexError naming the ones outside ``0..reader.num_frames - 1``
    (shared by every reader behind the datasets' interface)."""
    idx = [int(i) for i in indices]
    bad = [i for i in idx if not 0 <= i < reader.num_frames]
    if bad:
        raise IndexError(f"{reader.path}: frame indices {bad[:5]} outside 0..{reader.num_frames - 1}")
    return idx


def empty_frames(reader: FrameReader, size: tuple[int, int] | None) -> np.ndarray:
    """A (0, H, W, 3) uint8 array at the reader's output size (what reading no frame returns)."""
    h, w = (reader.height, reader.width) if size is None else (size[1], size[0])
    return np.zeros((0, h, w, 3), np.uint8)


def _reason(e: BaseException) -> str:
    text = str(e).strip() or e.__class__.__name__
    # PyAV messages look like "[Errno 1094995529] Invalid data found when processing input: 'x'"
    if text.startswith("[Errno"):
        text = text.split("]", 1)[-1].strip()
    if ": '" in text:
        text = text.split(": '", 1)[0]
    return text


class VideoReader(FrameReader):
    """An open video: frame table, random access by frame index, keyframe-only I-frame decoding.

    The PyAV implementation of :class:`FrameReader` (what the datasets open by default), with
    more than the contract: ``codec``, ``duration``, ``keyframes``, ``notes``, :attr:`info`,
    :meth:`read_iframes`, :meth:`iter_frames` (what probing, re-encoding and pose extraction use).
    Opening demuxes the video stream once (packets only, no decoding) to build the table of
    presentation timestamps and keyframes. Use as a context manager or call :meth:`close`.

    Args:
        path: the video file.
        threads: decoder threads; 1 is right inside data-loader workers (parallelism comes
            from the workers), 0 lets FFmpeg choose.
        parse_intra: parse H.264 slice headers while building the table (the I-frames without
            decoding). ``False`` (what datasets pass: the manifest holds the I-frames) defers it to
            the first :meth:`iframe_indices` / :meth:`read_iframes`, which then demux once more;
            opening costs about half as much.
    """

    def __init__(self, path: str | os.PathLike, threads: int = 1, parse_intra: bool = True):
        self.path = str(path)
        if not os.path.exists(self.path):
            raise VideoError(self.path, "file not found")
        if os.path.getsize(self.path) == 0:
            raise VideoError(self.path, "empty file (0 bytes)")
        self._threads = threads
        self._parse_intra = parse_intra
        self._open()
        try:
            if not self._container.streams.video:
                raise VideoError(self.path, "no video stream")
            self.codec = self._stream.codec_context.name
            self._build_table()
        except VideoError:
            self._container.close()
            raise
        except (av.FFmpegError, OSError, ValueError) as e:
            self._container.close()
            raise VideoError(self.path, f"cannot read packets: {_reason(e)}") from None
        self._iframes: list[int] | None = None
        self._seek_unreliable = False
        self.notes: list[str] = []
        self._checked_keyframes: list[int] | None = None
        # one reformatter per thread, shared by its readers, keeps FFmpeg's scaler context between
        # frames and videos of the same size (PyAV's frame.to_ndarray() builds one per frame: twice
        # as slow; a new one per reader costs ~2 ms, a data-loader worker opens a reader per sample)
        self._reformatter = _thread_reformatter()
        if self._keyframes_implausible():
            try:
                self._check_keyframes_by_decoding()
            except VideoError:
                self._container.close()
                raise

    def _open(self) -> None:
        try:
            self._container = av.open(self.path, metadata_errors="ignore")
        except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
            raise VideoError(self.path, f"cannot open: {_reason(e)}") from None
        if self._container.streams.video:
            self._stream = self._container.streams.video[0]
            ctx = self._stream.codec_context
            ctx.thread_count = self._threads
            ctx.thread_type = "AUTO" if self._threads != 1 else "SLICE"

    # ------------------------------------------------------------------ frame table
    def _build_table(self) -> None:
        stamps: list[int] = []
        key_stamps: list[int] = []
        intra_stamps: list[int] = []
        corrupt_stamps: list[int] = []
        is_h264 = self._stream.codec_context.name == "h264"
        parse_h264 = is_h264 and self._parse_intra
        nal_length_size = avcc_nal_length_size(self._stream.codec_context.extradata) if parse_h264 else 0
        width = self._stream.codec_context.width
        height = self._stream.codec_context.height
        for packet in self._container.demux(self._stream):
            if packet.size == 0:
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                # no timestamps at all: fall back to arrival order
                ts = stamps[-1] + 1 if stamps else 0
            stamps.append(int(ts))
            if packet.is_corrupt:  # the demuxer read it short (a truncated file) or damaged
                corrupt_stamps.append(int(ts))
            if packet.is_keyframe:
                key_stamps.append(int(ts))
            if parse_h264:
                intra = h264_packet_is_intra(bytes(packet), nal_length_size)
                if intra is None:
                    parse_h264 = False
                elif intra:
                    intra_stamps.append(int(ts))
        if not stamps:
            raise VideoError(self.path, "no video frames")
        if not width or not height:
            raise VideoError(self.path, "video stream has no frame size (corrupt header)")
        self._pts = np.unique(np.asarray(stamps, dtype=np.int64))
        if len(stamps) > 1 and 2 * len(self._pts) <= len(stamps):
            # frames are found by their timestamps (module docstring); when most packets share
            # one (all 0: a broken muxer) the video would pass as a few frames at an absurd rate
            raise VideoError(self.path, f"degenerate timestamps: its {len(stamps)} video packets carry only "
                                        f"{len(self._pts)} distinct timestamp(s), so frame positions and the frame "
                                        "rate are unknown; re-encode or re-mux it with valid timestamps")
        self.num_frames = int(len(self._pts))
        keys = np.searchsorted(self._pts, np.asarray(sorted(set(key_stamps)), dtype=np.int64))
        self.keyframes: list[int] = [int(k) for k in keys]
        if not self.keyframes or self.keyframes[0] != 0:
            # a stream that does not start on a keyframe can still be decoded from its start
            self.keyframes = [0] + self.keyframes
        self._corrupt_pts = set(corrupt_stamps)
        self.width, self.height = int(width), int(height)
        # H.264 I-frames known from the slice headers (None: decode to find them)
        self._intra_pts: set[int] | None = set(intra_stamps) if parse_h264 else None
        self._intra_deferred = is_h264 and not self._parse_intra
        rate = self._stream.average_rate or self._stream.guessed_rate
        tb = self._stream.time_base or Fraction(1, 1)
        span = float((self._pts[-1] - self._pts[0]) * tb) if self.num_frames > 1 else 0.0
        if rate:
            self.fps = float(rate)
        elif span > 0:
            self.fps = (self.num_frames - 1) / span
        else:
            self.fps = 25.0
        self.duration = self.num_frames / self.fps if self.fps > 0 else span
        self._time_base = tb

    def _index_of(self, pts: int | None, previous: int | None) -> int:
        if pts is None:
            return (previous + 1) if previous is not None else 0
        i = int(np.searchsorted(self._pts, pts))
        if i < self.num_frames and self._pts[i] == pts:
            return i
        # decoders occasionally report a pts that is not a packet pts: take the nearest
        if i == 0:
            return 0
        if i >= self.num_frames:
            return self.num_frames - 1
        return i if (self._pts[i] - pts) < (pts - self._pts[i - 1]) else i - 1

    def keyframe_before(self, index: int) -> int:
        """The last keyframe at or before frame ``index``."""
        k = bisect.bisect_right(self.keyframes, index) - 1
        return self.keyframes[max(k, 0)]

    def _keyframes_implausible(self) -> bool:
        """Whether the container's keyframe flags are too many to believe (module docstring)."""
        n, keys = self.num_frames, self.keyframes
        if n < 3 or len(keys) < 3:
            return False
        try:
            if self._stream.codec_context.codec.intra_only:  # MJPEG, ProRes...: every frame is key
                return False
        except (AttributeError, av.FFmpegError):  # pragma: no cover - a codec PyAV cannot describe
            pass
        if 2 * len(keys) > n:
            return True
        return any(keys[i + 2] == keys[i] + 2 for i in range(len(keys) - 2))

    def _check_keyframes_by_decoding(self) -> None:
        """Keep as keyframes only the flagged frames whose decoded picture type is I."""
        flagged = len(self.keyframes)
        intra = sorted({i for i, _ in self._intra_frames(convert=False, flagged_only=True)})
        found = set(intra)
        self.keyframes = sorted({0, *(k for k in self.keyframes if k in found)})
        self._checked_keyframes = list(self.keyframes)
        if self.codec not in _NONINTRA_CODECS:
            self._iframes = intra  # for these codecs the I-frames are the intra keyframes
        self.notes.append(f"the container flags {flagged} of {self.num_frames} frames as keyframes, implausible for "
                          f"{self.codec} (a damaged or rebuilt index); decoding their picture types found "
                          f"{len(self.keyframes)} intra, and only those are used as keyframes and I-frames")

    def decodable_frames(self) -> int:
        """How many frames, from the first, decode: :attr:`num_frames` for a sound file, fewer for
        a truncated one whose container still lists frames whose data is missing or cut short.

        Decodes the last GOP (one more before it while its keyframe itself does not decode): the
        first frame from there on that the decoder never returns, or whose packet the demuxer
        read damaged, ends the decodable part.
        """
        end = self.num_frames
        for start in reversed(self.keyframes):
            if start >= end:
                continue
            got: set[int] = set()
            try:
                for i, _ in self._decode_from(start):
                    if i >= end:
                        break
                    got.add(i)
            except (av.FFmpegError, OSError):
                pass
            m = start
            while m < end and m in got and int(self._pts[m]) not in self._corrupt_pts:
                m += 1
            if m > start:
                return m
            end = start
        return 0

    @property
    def info(self) -> VideoInfo:
        """Everything :func:`probe` returns (computes the I-frames on first use)."""
        return VideoInfo(
            codec=self.codec, width=self.width, height=self.height, fps=round(self.fps, 6),
            num_frames=self.num_frames, duration=round(self.duration, 6),
            keyframes=list(self.keyframes), iframes=self.iframe_indices(), notes=list(self.notes),
        )

    # ------------------------------------------------------------------ decoding
    def _seek(self, index: int) -> None:
        """Position the demuxer at frame ``index`` (a keyframe). Frame 0 reopens the file: some
        demuxers (MPEG-TS) seek past the first packet, and reopening costs about a millisecond."""
        if index == 0:
            self._container.close()
            self._open()
        else:
            self._container.seek(int(self._pts[index]), stream=self._stream, backward=True, any_frame=False)

    def _decode_from(self, index: int, wanted: set[int] | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode forward from the keyframe at or before ``index`` (yields (idx, frame)).

        With ``wanted`` (H.264/HEVC), packets of frames that are not wanted are decoded with
        ``skip_frame="NONREF"``: the decoder drops them when no other frame refers to them
        (non-reference B-frames), which is exact and saves their decoding.

        If the demuxer's seek lands after the wanted keyframe (broken index in some AVIs, MPEG-TS),
        the reader notices (a first frame after ``index``, or no frame at all), remembers it, and
        from then on decodes such requests from the start.
        """
        start = 0 if self._seek_unreliable else self.keyframe_before(index)
        self._seek(start)
        ctx = self._stream.codec_context
        skipping = wanted is not None and self.codec in _NONINTRA_CODECS
        mode = "DEFAULT"
        previous = None
        first = True
        try:
            for packet in self._container.demux(self._stream):
                if skipping and packet.size:
                    ts = packet.pts if packet.pts is not None else packet.dts
                    want = "DEFAULT" if ts is None or self._index_of(ts, None) in wanted else "NONREF"
                    if want != mode:
                        ctx.skip_frame = mode = want
                try:
                    frames = packet.decode()
                except (av.FFmpegError, ValueError) as e:  # a damaged packet: skip it, keep going
                    log.debug("%s: packet decode error: %s", self.path, _reason(e))
                    continue
                for frame in frames:
                    previous = self._index_of(frame.pts, previous)
                    if first and previous > index and start > 0:
                        self._seek_unreliable = True
                        if mode != "DEFAULT":
                            ctx.skip_frame = mode = "DEFAULT"
                        yield from self._decode_from(index, wanted)
                        return
                    first = False
                    yield previous, frame
            if first and start > 0 and not self._seek_unreliable:
                # nothing decoded at all: the seek landed after the last keyframe, on frames that
                # cannot decode without it (MPEG-TS, H.264), so the check above never saw a frame
                self._seek_unreliable = True
                if mode != "DEFAULT":
                    ctx.skip_frame = mode = "DEFAULT"
                yield from self._decode_from(index, wanted)
        finally:
            if mode != "DEFAULT":
                ctx.skip_frame = "DEFAULT"

    def _to_array(self, frame: av.VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
        # threads=1: a scaler thread pool buys nothing at these sizes (parallelism comes from the
        # data-loader workers) and would not survive a fork
        if size is None:
            return self._reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()
        w, h = size
        return self._reformatter.reformat(frame, width=w, height=h, format="rgb24",
                                          interpolation="BILINEAR", threads=1).to_ndarray()

    def read(self, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 ``(n, H, W, 3)`` RGB.

        Seeks to the keyframe before the first wanted frame and decodes forward; seeks again
        when the next wanted frame lies beyond a later keyframe (so sparse indices spread over a
        long video cost one GOP each, not the whole video). ``size=(width, height)`` resizes
        while converting (FFmpeg's bilinear scaler, whose filter widens when shrinking, so it does not
        alias; 6x cheaper than its area filter), which is much cheaper than resizing after.

        Raises :class:`VideoError` when a wanted frame cannot be decoded.
        """
        idx = checked_indices(self, indices)
        if not idx:
            return empty_frames(self, size)
        wanted = sorted(set(idx))
        wanted_set = set(wanted)
        got: dict[int, np.ndarray] = {}
        pos = 0
        try:
            while pos < len(wanted):
                for i, frame in self._decode_from(wanted[pos], wanted_set):
                    if i < wanted[pos] or i in got:
                        continue
                    if i > wanted[pos]:
                        # the decoder never produced a wanted frame (damaged data)
                        raise VideoError(self.path, f"frame {wanted[pos]} could not be decoded")
                    got[i] = self._to_array(frame, size)
                    pos += 1
                    if pos >= len(wanted):
                        break
                    if self.keyframe_before(wanted[pos]) - (i + 1) >= SEEK_MIN_SKIP:
                        break  # cheaper to seek than to decode the frames in between
                else:
                    raise VideoError(self.path, f"frames from {wanted[pos]} on could not be decoded "
                                                f"(the stream ends early or is damaged)")
        except (av.FFmpegError, OSError) as e:
            raise VideoError(self.path, f"decode failed: {_reason(e)}") from None
        return np.stack([got[i] for i in idx])

    def iter_frames(self, size: tuple[int, int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Every frame from the start, in presentation order, as ``(index, uint8 HxWx3)``."""
        try:
            for i, frame in self._decode_from(0):
                yield i, self._to_array(frame, size)
        except (av.FFmpegError, OSError) as e:
            raise VideoError(self.path, f"decode failed: {_reason(e)}") from None

    def _parse_deferred_intra(self) -> None:
        """The slice-header pass that ``parse_intra=False`` skipped at open (one more demux)."""
        if not self._intra_deferred:
            return
        self._intra_deferred = False
        self._parse_intra = True
        self._container.close()
        self._open()
        try:
            self._build_table()
        except (av.FFmpegError, OSError, ValueError) as e:
            raise VideoError(self.path, f"cannot read packets: {_reason(e)}") from None
        if self._checked_keyframes is not None:  # the table was rebuilt from the container's flags
            self.keyframes = list(self._checked_keyframes)
        self._seek(0)

    def _intra_frames(self, convert: bool, size: tuple[int, int] | None = None, flagged_only: bool = False):
        """Decode only intra pictures (see module docstring); yields (idx, frame-or-None).

        ``flagged_only``: decode the packets the container flags key, whatever the codec (what
        checking implausible flags needs)."""
        if not flagged_only:
            self._parse_deferred_intra()
        ctx = self._stream.codec_context
        self._seek(0)
        previous = None

        def emit(frames):
            nonlocal previous
            for frame in frames:
                previous = self._index_of(frame.pts, previous)
                if int(frame.pict_type) == _PICT_I:
                    yield previous, (self._to_array(frame, size) if convert else None)

        try:
            if self.codec in _NONINTRA_CODECS and self._intra_pts is None and not flagged_only:
                ctx.skip_frame = "NONINTRA"
                try:
                    for packet in self._container.demux(self._stream):
                        try:
                            frames = packet.decode()
                        except (av.FFmpegError, ValueError):
                            continue
                        yield from emit(frames)
                finally:
                    ctx.skip_frame = "DEFAULT"
                    self._seek(0)
            else:
                intra = None if flagged_only else self._intra_pts
                for packet in self._container.demux(self._stream):
                    if packet.size:
                        ts = packet.pts if packet.pts is not None else packet.dts
                        if (intra is not None and ts not in intra) or (intra is None and not packet.is_keyframe):
                            continue
                    try:
                        frames = ctx.decode(packet if packet.size else None)
                    except (av.FFmpegError, ValueError):
                        continue
                    yield from emit(frames)
                ctx.flush_buffers()
                self._seek(0)
        except (av.FFmpegError, OSError) as e:
            raise VideoError(self.path, f"decode failed: {_reason(e)}") from None

    def iframe_indices(self) -> list[int]:
        """Indices of the I-frames (no decoding for H.264 and keyframe-flag codecs; cached)."""
        if self._iframes is None:
            self._parse_deferred_intra()
            if self._intra_pts is not None:
                self._iframes = sorted(self._index_of(p, None) for p in self._intra_pts)
            elif self.codec in _NONINTRA_CODECS or not self._keyframe_flags_real():
                self._iframes = sorted({i for i, _ in self._intra_frames(convert=False)})
            else:
                # I-frames are exactly the keyframes for these codecs: no decoding needed
                self._iframes = list(self.keyframes)
        return list(self._iframes)

    def _keyframe_flags_real(self) -> bool:
        # When the container flags no keyframe at all we inserted frame 0 ourselves; then the
        # flags carry no information and we decode to find intra pictures.
        return len(self.keyframes) > 1 or self.num_frames == 1

    def read_iframes(self, size: tuple[int, int] | None = None) -> tuple[list[int], np.ndarray]:
        """``(indices, uint8 (n, H, W, 3))`` of the I-frames, decoding intra pictures only."""
        items = {}
        for i, arr in self._intra_frames(convert=True, size=size):
            items.setdefault(i, arr)
        if not items:
            raise VideoError(self.path, "no I-frame could be decoded")
        indices = sorted(items)
        if self._iframes is None:
            self._iframes = list(indices)
        return indices, np.stack([items[i] for i in indices])

    def close(self) -> None:
        """Close the container (the file)."""
        self._container.close()

    def __repr__(self) -> str:
        return (f"VideoReader({self.path!r}, codec={self.codec}, {self.width}x{self.height}, "
                f"{self.num_frames} frames @ {self.fps:.3f} fps)")


_local = threading.local()
_inherited: list[VideoReformatter] = []


def _thread_reformatter() -> VideoReformatter:
    """This thread's :class:`VideoReformatter` in this process (FFmpeg scaler contexts are not
    thread-safe). One made before a ``fork`` (a data-loader worker) is never used nor freed in the
    child: its scaler's thread pool did not survive the fork, and freeing it there deadlocks."""
    r = getattr(_local, "reformatter", None)
    if r is None or _local.pid != os.getpid():
        if r is not None:
            _inherited.append(r)  # kept alive: its destructor would wait on threads that do not exist
        r = _local.reformatter = VideoReformatter()
        _local.pid = os.getpid()
    return r


def probe(path: str | os.PathLike, check_decode: bool = True) -> VideoInfo:
    """Read a video's metadata, keyframes and I-frames (indices from 0, presentation order).

    Cost: one demux pass (no decoding) plus, for H.264/HEVC, decoding the intra pictures only,
    plus (``check_decode``) decoding the last GOP: a truncated file is described by the frames
    that decode (:meth:`VideoReader.decodable_frames`; ``num_frames``, ``duration``, keyframes and
    I-frames cut there, a note in ``notes``), and refused when fewer than
    :data:`MIN_DECODABLE_FRACTION` of its listed frames decode.
    Raises :class:`VideoError` with the reason for a file that is not a readable video.
    """
    with VideoReader(path) as r:
        info = r.info
        if not check_decode:
            return info
        n = r.decodable_frames()
    listed = info.num_frames
    if n >= listed:
        return info
    if n < max(1, MIN_DECODABLE_FRACTION * listed):
        raise VideoError(str(path), f"truncated: only {n} of its {listed} frames decode (the file ends early or "
                                    "is damaged); re-encode or replace it")
    note = (f"truncated: only the first {n} of {listed} frames decode (the file ends early or its end is "
            f"damaged); indexed as {n} frames")
    return dataclasses.replace(info, num_frames=n, duration=round(n / info.fps, 6) if info.fps > 0 else 0.0,
                               keyframes=[k for k in info.keyframes if k < n],
                               iframes=[i for i in info.iframes if i < n], notes=[*info.notes, note])


def read_frames(path: str | os.PathLike, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
    """Frames at ``indices`` as uint8 ``(len(indices), H, W, 3)`` RGB (see :meth:`VideoReader.read`)."""
    with VideoReader(path) as r:
        return r.read(indices, size=size)


def read_iframes(path: str | os.PathLike, size: tuple[int, int] | None = None) -> tuple[list[int], np.ndarray]:
    """``(indices, frames)`` of the I-frames, decoding only intra pictures where the codec allows."""
    with VideoReader(path) as r:
        return r.read_iframes(size=size)


def iter_frames(path: str | os.PathLike, size: tuple[int, int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Every frame of the video in presentation order as ``(index, uint8 HxWx3)``."""
    with VideoReader(path) as r:
        yield from r.iter_frames(size=size)
