"""H.264 bitstream parsing: which access units are I-frames, read from their slice headers.

Pure functions over bytes (no FFmpeg, no decoding). The PyAV reader (:mod:`csvr.data.video`)
calls them on every packet while it demuxes an H.264 stream, so it knows the I-frames, including
x264's non-IDR I-frames at scene cuts that the container does not flag key, without decoding
anything, and later sends only those packets to the decoder.

What is parsed
    - the NAL units of a packet: AVCC framing (MP4, MKV, MOV: big-endian length prefixes whose
      size the ``avcC`` box of the stream's extradata gives, :func:`avcc_nal_length_size`) or
      Annex B framing (MPEG-TS, raw ``.h264``, some AVI / MKV: ``00 00 01`` start codes);
    - the first slice header's ``first_mb_in_slice`` and ``slice_type`` (two Exp-Golomb codes
      after emulation-prevention bytes are removed). FFmpeg's ``pict_type`` also follows the
      first slice, so the answer is the one a full decode gives (tests/test_video.py).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


def _read_ue(bits: np.ndarray, pos: int) -> tuple[int, int]:
    """Exp-Golomb ue(v) at bit ``pos`` (raises IndexError past the end)."""
    zeros = 0
    while bits[pos] == 0:
        zeros += 1
        pos += 1
        if zeros > 31:
            raise ValueError("bad exp-golomb code")
    pos += 1
    value = 0
    for _ in range(zeros):
        value = (value << 1) | int(bits[pos])
        pos += 1
    return (1 << zeros) - 1 + value, pos


def _rbsp_bits(payload: bytes, max_bytes: int = 16) -> np.ndarray:
    """First bytes of a NAL payload with emulation-prevention bytes (00 00 03) removed, as bits."""
    out = bytearray()
    zeros = 0
    for x in payload[: max_bytes + 8]:
        if zeros >= 2 and x == 3:
            zeros = 0
            continue
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
        if len(out) >= max_bytes:
            break
    return np.unpackbits(np.frombuffer(bytes(out), np.uint8))


def avcc_nal_length_size(extradata: bytes | None) -> int:
    """The NAL length-prefix size (1, 2 or 4 bytes) an ``avcC`` extradata box declares; 0 when
    the extradata is not an ``avcC`` box (the packets then use Annex B start codes)."""
    extra = extradata or b""
    if len(extra) > 4 and extra[0] == 1:  # avcC box: configurationVersion 1
        return (extra[4] & 3) + 1
    return 0


def h264_nal_units(data: bytes, nal_length_size: int) -> Iterator[bytes]:
    """The NAL units of one packet: length-prefixed (AVCC) when ``nal_length_size`` is nonzero,
    else split at Annex B start codes."""
    if nal_length_size:  # AVCC (MP4, MKV, MOV): big-endian length prefixes
        i, n = 0, len(data)
        while i + nal_length_size <= n:
            size = int.from_bytes(data[i:i + nal_length_size], "big")
            i += nal_length_size
            yield data[i:i + size]
            i += size
    else:  # Annex B (TS, raw .h264, some AVI/MKV): start codes
        for part in data.split(b"\x00\x00\x01")[1:]:
            yield part


def h264_packet_is_intra(data: bytes, nal_length_size: int) -> bool | None:
    """Whether an H.264 access unit is an I-frame, from its first slice header (no decoding).

    True for an IDR slice (NAL type 5) or a non-IDR slice (type 1) whose ``slice_type`` is I or SI
    (FFmpeg's ``pict_type`` also follows the first slice). None when no slice is found or the
    header cannot be parsed (the caller then decodes to find out).
    """
    try:
        for nal in h264_nal_units(data, nal_length_size):
            if not nal:
                continue
            kind = nal[0] & 0x1F
            if kind == 5:
                return True
            if kind == 1:
                bits = _rbsp_bits(nal[1:])
                _, pos = _read_ue(bits, 0)  # first_mb_in_slice
                slice_type, _ = _read_ue(bits, pos)
                return slice_type % 5 in (2, 4)
    except (IndexError, ValueError):
        return None
    return None


__all__ = ["avcc_nal_length_size", "h264_nal_units", "h264_packet_is_intra"]
