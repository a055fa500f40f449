"""csvr.data.bitstream: H.264 slice headers read from bytes (the I-frames without decoding).

The same parsing on real encoded video (MP4 / AVCC and MPEG-TS / Annex B, against a full decode)
is tested in tests/test_video.py.
"""

from __future__ import annotations

from csvr.data.bitstream import avcc_nal_length_size, h264_nal_units, h264_packet_is_intra


def nal(payload: bytes) -> bytes:
    """One AVCC NAL unit with a 4-byte length prefix."""
    return len(payload).to_bytes(4, "big") + payload


def ue(value: int) -> str:
    """Exp-Golomb ue(v) code of ``value`` as a bit string."""
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def escaped(bits: str) -> bytes:
    """Bits padded to bytes, with H.264's emulation-prevention bytes (00 00 -> 00 00 03 before
    00..03) inserted."""
    bits += "1" + "0" * (-(len(bits) + 1) % 8)  # rbsp stop bit and alignment
    raw = int(bits, 2).to_bytes(len(bits) // 8, "big")
    out, zeros = bytearray(), 0
    for x in raw:
        if zeros >= 2 and x <= 3:
            out.append(3)
            zeros = 0
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
    return bytes(out)


def test_h264_slice_header_parser():
    # AVCC, 4-byte lengths: an SEI NAL (type 6), then a non-IDR slice (type 1) whose header
    # starts with first_mb_in_slice = 0 ('1') and slice_type = 7 ('0001000' = I, all slices)
    i_slice = bytes([0x41, 0b10001000, 0x00])
    p_slice = bytes([0x41, 0b1010_0000])  # first_mb 0, slice_type ue '010' = 1 (B)... -> not intra
    assert h264_packet_is_intra(nal(b"\x06\x05\x01") + nal(i_slice), 4) is True
    assert h264_packet_is_intra(nal(p_slice), 4) is False
    assert h264_packet_is_intra(nal(bytes([0x65, 0x88])), 4) is True  # IDR
    assert h264_packet_is_intra(b"\x00\x00\x01" + i_slice, 0) is True  # Annex B
    assert h264_packet_is_intra(nal(b"\x06\x05"), 4) is None  # no slice at all
    assert h264_packet_is_intra(nal(b"\x41\x00\x00\x00"), 4) is None  # an unreadable header


def test_slice_type_behind_an_emulation_prevention_byte():
    """A large first_mb_in_slice starts with 22 zero bits: the encoder escapes 00 00 02 as
    00 00 03 02, and the parser must drop the 03 to read the slice type after it."""
    for slice_type, intra in [(7, True), (2, True), (4, True), (0, False), (5, False), (6, False)]:
        header = escaped(ue(2 ** 22 - 1) + ue(slice_type))
        assert header[:4] == b"\x00\x00\x03\x02"
        assert h264_packet_is_intra(nal(b"\x41" + header), 4) is intra, slice_type


def test_nal_framing():
    assert list(h264_nal_units(nal(b"\x06\x05") + nal(b"\x41\x88"), 4)) == [b"\x06\x05", b"\x41\x88"]
    two = (2).to_bytes(2, "big")
    assert list(h264_nal_units(two + b"\x65\x88" + two + b"\x41\x9a", 2)) == [b"\x65\x88", b"\x41\x9a"]
    assert list(h264_nal_units(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x65\x88", 0)) == [b"\x09\xf0", b"\x65\x88"]
    # the avcC box's lengthSizeMinusOne (low 2 bits of byte 4); anything else means Annex B
    assert avcc_nal_length_size(bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1])) == 4
    assert avcc_nal_length_size(bytes([1, 0x64, 0, 0x1F, 0xFD, 0xE1])) == 2
    assert avcc_nal_length_size(b"\x00\x00\x00\x01\x67") == 0
    assert avcc_nal_length_size(b"") == avcc_nal_length_size(None) == 0
