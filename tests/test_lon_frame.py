"""ISO/IEC 14908-1 frame codec: worked frames E1-E14, CRC, errors, fuzz."""

from __future__ import annotations

import json
import random

import pytest
from conftest import VECTORS
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import CrcError, DecodeError, EncodeError
from dlms14908.lon.crc import append_crc, check_crc, crc16, strip_crc
from dlms14908.lon.frame import (
    Apdu,
    AuthPdu,
    AuthType,
    BroadcastAddress,
    Frame,
    GroupAckAddress,
    L2Header,
    NeuronIdAddress,
    Npdu,
    NvApdu,
    Spdu,
    SpduType,
    SubnetNodeAddress,
    Tpdu,
    TpduType,
    decode_apdu,
    decode_frame,
    decode_npdu,
    encode_frame,
    frame_to_jsonable,
)

DOC = json.loads((VECTORS / "lon" / "frames.json").read_text())
VECS = DOC["vectors"]


# --------------------------------------------------------------------------- CRC


def test_crc_check_value() -> None:
    check = DOC["crc_check"]
    assert crc16(check["input_ascii"].encode()) == check["crc"] == 0xD64E


def test_crc_worked_example() -> None:
    assert append_crc(bytes.fromhex("003001820351")) == bytes.fromhex("003001820351c108")


def _bitwise_crc(data: bytes) -> int:
    """A second, bit-at-a-time formulation (the product uses a table)."""
    reg = 0xFFFF
    for byte in data:
        for i in range(7, -1, -1):
            bit = (byte >> i) & 1
            top = (reg >> 15) & 1
            reg = (reg << 1) & 0xFFFF
            if top ^ bit:
                reg ^= 0x1021
    return reg ^ 0xFFFF


@given(st.binary(max_size=64))
def test_crc_table_matches_bitwise(data: bytes) -> None:
    assert crc16(data) == _bitwise_crc(data)


def test_crc_detects_every_single_bit_flip() -> None:
    wire = bytes.fromhex(VECS[1]["hex"].replace(" ", ""))
    assert check_crc(wire)
    for i in range(len(wire) * 8):
        bad = bytearray(wire)
        bad[i // 8] ^= 1 << (i % 8)
        assert not check_crc(bad)
        with pytest.raises(CrcError) as info:
            decode_frame(bytes(bad))
        assert info.value.field == "crc"


def test_strip_crc_short() -> None:
    with pytest.raises(DecodeError) as info:
        strip_crc(b"\x00")
    assert info.value.field == "crc"


# --------------------------------------------------------------------------- E1-E14


def _wire(v: dict) -> bytes:
    return bytes.fromhex(v["hex"].replace(" ", ""))


@pytest.mark.parametrize("v", VECS, ids=[v["name"] for v in VECS])
def test_worked_frame(v: dict) -> None:
    wire = _wire(v)
    exp = v["expect"]
    assert v["source"]
    assert int.from_bytes(wire[-2:], "big") == exp["crc"] == crc16(wire[:-2])
    frame = decode_frame(wire)
    tree = frame_to_jsonable(frame)
    assert tree["l2"] == exp["l2"]
    assert tree["npdu"]["pdu_format"] == exp["pdu_format"]
    assert tree["npdu"]["address"] == exp["address"]
    assert tree["npdu"]["domain"] == exp["domain"]
    for layer in ("tpdu", "spdu", "authpdu"):
        if layer in exp:
            got = tree[layer]
            for key, value in exp[layer].items():
                assert got[key] == value, (layer, key)
        else:
            assert layer not in tree
    if "apdu" in exp:
        assert tree["apdu"]["code"] == exp["apdu"]["code"]
        assert tree["apdu"]["data"] == exp["apdu"]["data"]
    if "nv" in exp:
        assert isinstance(frame.apdu, NvApdu)
        assert tree["apdu"]["selector"] == exp["nv"]["selector"]
        assert tree["apdu"]["direction"] == exp["nv"]["direction"]
        assert tree["apdu"]["data"] == exp["nv"]["data"]
    # byte-exact re-encode, with and without CRC
    assert encode_frame(frame) == wire
    assert encode_frame(frame, crc=False) == wire[:-2]
    assert decode_frame(wire[:-2], crc=False) == frame
    json.dumps(tree)


def test_e2_built_from_parts() -> None:
    frame = Frame.make(
        SubnetNodeAddress(1, 1, 2, 5),
        Tpdu(TpduType.ACKD, 5, Apdu(0x00, bytes.fromhex("c001c100030100010800ff0200"))),
        b"\x42",
        delta_backlog=1,
    )
    assert encode_frame(frame) == _wire(VECS[1])


def test_e7_group_ack_selector_bit() -> None:
    frame = decode_frame(_wire(VECS[6]))
    assert isinstance(frame.address, GroupAckAddress)
    assert frame.address.encode()[1] & 0x80 == 0


def test_e8_m_list_members() -> None:
    tree = frame_to_jsonable(decode_frame(_wire(VECS[7])))
    assert tree["tpdu"]["m_list_members"] == [0, 2]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("hexstr", "field"),
    [
        ("", "l2"),
        ("00", "l2"),
        ("0030", "address"),
        ("00300182", "address"),
        ("0070018203", "npdu.version"),
        ("00b0018203", "npdu.version"),
        ("0030010203", "address.src_node"),  # fmt 0 with selector bit 0
        ("0008018102", "address.dst_node"),  # 2a truncated
        ("000801810205", "address.dst_node"),  # dst node without bit 7
        ("0008010102850741", "address.member"),  # 2b member byte with high bits
        ("00090181028542", "tpdu"),  # no TPDU header
        ("0009018102854235", "tpdu.type"),  # TPDU type 3
        ("0019018102854215", "spdu.type"),  # SPDU type 1
        ("0009018102854205", "apdu"),  # ACKD without APDU
        ("000901810285422500", "tpdu.trailing"),  # ACK with a body
        ("0009018102854245", "tpdu.m_list_length"),
        ("000901810285424509", "tpdu.m_list_length"),  # M_List longer than 8
        ("00090181028542450201", "tpdu.m_list"),
        ("0029018102854285001122", "authpdu.value"),
        ("002501810742450011223344556677", "authpdu.group"),
        ("00290181028542850011223344556677ff", "authpdu.trailing"),
        ("003001820380", "apdu.nv_selector"),
        ("0033018203", "npdu.domain"),
        ("003c0181", "address"),
        ("003c01810001020304", "address.neuron_id"),
    ],
)
def test_malformed_names_field(hexstr: str, field: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_frame(bytes.fromhex(hexstr), crc=False)
    assert info.value.field == field
    assert not isinstance(info.value, CrcError)


def test_error_offsets_point_into_frame() -> None:
    with pytest.raises(DecodeError) as info:
        decode_frame(bytes.fromhex("000801810205"), crc=False)
    assert info.value.offset == 5


@pytest.mark.parametrize(
    "build",
    [
        lambda: L2Header(delta_backlog=64),
        lambda: BroadcastAddress(256, 1),
        lambda: BroadcastAddress(1, 128),
        lambda: GroupAckAddress(1, 1, 1, 1, 1, 64),
        lambda: NeuronIdAddress(1, 1, 0, b"12345"),
        lambda: Apdu(0x80),
        lambda: Apdu(True),
        lambda: NvApdu(0x4000),
        lambda: NvApdu(1, direction=2),
        lambda: Tpdu(TpduType.ACKD, 1),
        lambda: Tpdu(TpduType.ACK, 1, Apdu(1)),
        lambda: Tpdu(TpduType.REMINDER, 1),
        lambda: Tpdu(TpduType.REMINDER, 1, m_list=b"123456789"),
        lambda: Tpdu(TpduType.ACKD, 16, Apdu(1)),
        lambda: Tpdu(3, 1, Apdu(1)),
        lambda: Spdu(SpduType.REQUEST, 1, m_list=b"", apdu=Apdu(1)),
        lambda: Spdu(1, 1, Apdu(1)),
        lambda: AuthPdu(AuthType.CHALLENGE, 1, 1, b"12345678"),
        lambda: AuthPdu(AuthType.CHALLENGE, 1, 2, b"12345678", 3),
        lambda: AuthPdu(AuthType.REPLY, 1, 2, b"1234567"),
        lambda: Npdu(BroadcastAddress(1, 1), Apdu(1), b"12"),
        lambda: Npdu(BroadcastAddress(1, 1), "apdu"),  # type: ignore[arg-type]
        lambda: Npdu("addr", Apdu(1)),  # type: ignore[arg-type]
        lambda: encode_frame("frame"),  # type: ignore[arg-type]
        lambda: decode_frame("001122"),  # type: ignore[arg-type]
        lambda: decode_npdu(None),  # type: ignore[arg-type]
    ],
)
def test_local_misuse_raises_encode_error(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EncodeError):
        build()


def test_frozen() -> None:
    frame = decode_frame(_wire(VECS[0]))
    with pytest.raises(AttributeError):
        frame.l2 = L2Header()  # type: ignore[misc]


def test_all_auth_types_and_group_auth() -> None:
    for t in AuthType:
        pdu = AuthPdu(t, 9, 1, bytes(range(8)), 0x21)
        frame = Frame.make(GroupAckAddress(1, 2, 3, 4, 0x21, 5), pdu, b"\x42")
        wire = encode_frame(frame)
        assert wire[1 + 1 + 6 + 1] == (1 << 6) | (t << 4) | 9
        assert decode_frame(wire) == frame
        assert frame_to_jsonable(frame)["authpdu"]["group"] == 0x21


def test_nv_poll_direction_bit() -> None:
    wire = NvApdu(0x3FFF, b"", 1).encode()
    assert wire == b"\xff\xff"
    assert decode_apdu(wire) == NvApdu(0x3FFF, b"", 1)


def test_decode_npdu_alone() -> None:
    wire = _wire(VECS[3])
    assert decode_npdu(wire[1:-2]) == decode_frame(wire).npdu


# --------------------------------------------------------------------------- fuzz


@given(st.binary(max_size=40))
def test_random_bytes_only_decode_error(data: bytes) -> None:
    for crc in (True, False):
        try:
            frame = decode_frame(data, crc=crc)
        except DecodeError:
            continue
        # anything that decodes is canonical
        assert encode_frame(frame, crc=crc) == data


def test_random_bytes_bulk() -> None:
    rng = random.Random(14908)
    decoded = 0
    for _ in range(20000):
        data = rng.randbytes(rng.randrange(0, 24))
        try:
            frame = decode_frame(data, crc=False)
        except DecodeError:
            continue
        decoded += 1
        assert encode_frame(frame, crc=False) == data
    assert decoded > 100  # the fuzz actually reaches the inner layers


@given(st.binary(max_size=40), st.integers(0, 100))
def test_random_bytes_apdu_and_npdu(data: bytes, offset: int) -> None:
    try:
        apdu = decode_apdu(data, offset)
    except DecodeError as exc:
        assert exc.offset == offset
    else:
        assert apdu.encode() == data
    try:
        npdu = decode_npdu(data, offset=offset)
    except DecodeError as exc:
        assert exc.offset is not None and exc.offset >= offset
    else:
        assert npdu.encode() == data


# --------------------------------------------------------------------------- stored tshark output

TSHARK_DOC = json.loads((VECTORS / "lon" / "tshark_fields.json").read_text())


@pytest.mark.parametrize("v", TSHARK_DOC["vectors"], ids=lambda v: v["hex"][:16])
def test_stored_tshark_fields_match_our_decode(v: dict) -> None:
    """Field values tshark printed for these frames (stored, so this runs without tshark)."""
    from test_tshark_lon import SKIP, expected_lon_fields

    wire = bytes.fromhex(v["hex"])
    frame = decode_frame(wire)
    assert encode_frame(frame) == wire
    want = expected_lon_fields(frame, wire)
    for name, shown in v["tshark"].items():
        if want[name] is not SKIP:
            assert shown == want[name], name
