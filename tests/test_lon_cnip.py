"""ISO/IEC 14908-4 (CN/IP) data-packet header codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import DecodeError, EncodeError
from dlms14908.lon.cnip import (
    HEADER_LENGTH,
    CnipPacket,
    decode_packet,
    encode_data_packet,
    encode_packet,
)

E2 = bytes.fromhex("010901810285420500c001c100030100010800ff0200b970")


def test_e2_data_packet_layout() -> None:
    # lontalk.md §3.2: "Packet length: 44 Version: 1 Packet type: Data Packet (0x01) ...
    # Session ID: 305419896 Sequence Number: 2" for E2 in CN/IP
    wire = encode_data_packet(E2, session=305419896, sequence=2, timestamp=0x01020304)
    assert len(wire) == 44 == HEADER_LENGTH + len(E2)
    assert wire[:20] == bytes.fromhex("002c" "01" "01" "00" "00" "0000" "12345678" "00000002" "01020304")
    pkt = decode_packet(wire)
    assert (pkt.length, pkt.version, pkt.packet_type, pkt.protocol) == (44, 1, 1, 0)
    assert (pkt.session, pkt.sequence, pkt.timestamp, pkt.payload) == (305419896, 2, 0x01020304, E2)
    assert encode_packet(pkt) == wire


def test_extension_header_and_digest() -> None:
    pkt = CnipPacket(E2, ext_header=b"\xaa" * 8, digest=b"\x55" * 16, vendor=7)
    wire = encode_packet(pkt)
    assert wire[4] == 2 and wire[5] == 0x20  # 2 words, security flag
    assert len(wire) == 20 + 8 + len(E2) + 16 == int.from_bytes(wire[:2], "big")
    back = decode_packet(wire)
    assert back == pkt and back.security


@pytest.mark.parametrize(
    ("wire", "field"),
    [
        (b"\x00\x14\x01", "cnip.header"),
        (bytes.fromhex("0015 0101 0000 0000 00000000 00000000 00000000".replace(" ", "")), "cnip.length"),
        (bytes.fromhex("0014 0101 0100 0000 00000000 00000000 00000000".replace(" ", "")), "cnip.ext_header"),
        (bytes.fromhex("0018 0101 0020 0000 00000000 00000000 00000000 01020304".replace(" ", "")), "cnip.digest"),
    ],
)
def test_malformed(wire: bytes, field: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_packet(wire)
    assert info.value.field == field


@pytest.mark.parametrize(
    "kw",
    [{"session": 1 << 32}, {"protocol": 32}, {"ext_header": b"abc"}, {"digest": b"x"}, {"packet_type": -1}],
)
def test_misuse(kw: dict) -> None:
    with pytest.raises(EncodeError):
        CnipPacket(b"", **kw)
    with pytest.raises(EncodeError):
        CnipPacket(b"x" * 65520)


@given(
    st.builds(
        CnipPacket,
        st.binary(max_size=64),
        st.integers(0, 255),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 0xFFFF),
        st.integers(0, 31),
        st.integers(0, 255),
        st.binary(max_size=12).map(lambda b: b[: len(b) // 4 * 4]),
        st.one_of(st.none(), st.binary(min_size=16, max_size=16)),
        st.integers(0, 3),
    )
)
def test_round_trip(pkt: CnipPacket) -> None:
    assert decode_packet(encode_packet(pkt)) == pkt


@given(st.binary(max_size=64))
def test_random_bytes(data: bytes) -> None:
    try:
        pkt = decode_packet(data)
    except DecodeError:
        return
    assert encode_packet(pkt) == data
