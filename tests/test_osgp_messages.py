"""osgp.messages: Annex D management-message codecs (design choice, docs/wire-format.md §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import profile as P
from dlms14908.errors import DecodeError, EncodeError
from osgp import messages as M

ALL = [
    M.ChallengeRequest,
    M.ChallengeResponse,
    M.CommissionRequest,
    M.CommissionResponse,
    M.UpdateDomainKeys,
    M.UpdateDomainKeysResponse,
    M.AuthenticationFailure,
    M.SequenceError,
]

# Wire lengths straight from reference osgp-62056-8-8.md §2.5/2.7/2.8 (opcode + body), computed
# here by hand from the field list so that a drift in profile.py is caught.
EXPECTED_LEN = {
    M.ChallengeRequest: 1 + 6 + 16 + 6,
    M.ChallengeResponse: 1 + 6 + 6 + 16 + 16 + 6 + 16,
    M.CommissionRequest: 1 + 16 + 16 + 6 + 6 + (5 + 8) + 16,
    M.CommissionResponse: 1 + 1 + 16,
    M.UpdateDomainKeys: 1 + 1 + 1 + 24,
    M.UpdateDomainKeysResponse: 1 + 1 + 1,
    M.AuthenticationFailure: 1 + 1 + 4,
    M.SequenceError: 1 + 1 + 4,
}


def _strategy(cls):
    kw = {}
    for name, kind in cls._LAYOUT:
        if kind == "u8":
            kw[name] = st.integers(0, 255)
        elif kind == "u32":
            kw[name] = st.integers(0, 2**32 - 1)
        else:
            kw[name] = st.binary(min_size=kind, max_size=kind)
    if cls is M.UpdateDomainKeys:
        kw["flags"] = st.integers(0, P.OSGP_UDK_FLAGS_KNOWN)
    return st.builds(cls, **kw)


any_message = st.one_of([_strategy(c) for c in ALL])


def test_opcodes_and_lengths():
    assert {c.OPCODE for c in ALL} == {1, 2, 3, 4, 5, 6, 0x7E, 0x7F}
    for cls in ALL:
        assert cls.wire_length() == EXPECTED_LEN[cls], cls.__name__


def test_known_encoding_by_hand():
    msg = M.ChallengeRequest(id_s=bytes.fromhex("4e4e41500001"), rand_s=bytes(range(16)))
    assert msg.encode() == bytes.fromhex(
        "014e4e41500001000102030405060708090a0b0c0d0e0f000000000100"
    )
    assert M.AuthenticationFailure(key_id=3, seq=0x01020304).encode() == bytes.fromhex(
        "7e0301020304"
    )
    assert M.SequenceError(key_id=0, expected_min_seq=7).encode() == bytes.fromhex("7f0000000007")
    udk = M.UpdateDomainKeys(key_id=9, flags=1, wrapped_key=bytes(24))
    assert udk.encode() == bytes.fromhex("050901") + bytes(24)
    assert M.decode_message(bytes.fromhex("060900")) == M.UpdateDomainKeysResponse(
        key_id=9, status=0
    )


@given(any_message)
def test_roundtrip(msg):
    wire = msg.encode()
    assert wire[0] == msg.OPCODE and len(wire) == msg.wire_length()
    assert M.decode_message(wire) == msg
    assert M.encode_message(msg) == wire


@given(any_message, st.data())
def test_every_truncation_names_a_field(msg, data):
    wire = msg.encode()
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(DecodeError) as ei:
        M.decode_message(wire[:cut])
    names = {"opcode"} | {n for n, _ in type(msg)._LAYOUT}
    assert ei.value.field in names
    assert ei.value.offset is not None and ei.value.offset <= cut


@given(any_message, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_rejected(msg, extra):
    with pytest.raises(DecodeError) as ei:
        M.decode_message(msg.encode() + extra)
    assert ei.value.field == "trailing" and ei.value.offset == msg.wire_length()


@given(st.binary(max_size=120))
def test_random_bytes_raise_only_decode_error(data):
    try:
        msg = M.decode_message(data)
    except DecodeError as exc:
        assert exc.field
    else:
        assert msg.encode() == data


def test_specific_errors():
    with pytest.raises(DecodeError) as ei:
        M.decode_message(b"")
    assert ei.value.field == "opcode"
    with pytest.raises(DecodeError) as ei:
        M.decode_message(b"\x42")
    assert ei.value.field == "opcode"
    with pytest.raises(DecodeError) as ei:
        M.decode_message(bytes([P.OSGP_OP_UPDATE_DOMAIN_KEYS, 1, 0x04]) + bytes(24))
    assert ei.value.field == "flags"


def test_encode_errors():
    with pytest.raises(EncodeError) as ei:
        M.ChallengeRequest(id_s=b"short", rand_s=bytes(16))
    assert ei.value.field == "id_s"
    with pytest.raises(EncodeError):
        M.AuthenticationFailure(key_id=256, seq=0)
    with pytest.raises(EncodeError):
        M.SequenceError(key_id=0, expected_min_seq=-1)
    with pytest.raises(EncodeError):
        M.UpdateDomainKeys(key_id=0, flags=0x80, wrapped_key=bytes(24))
    with pytest.raises(EncodeError):
        M.encode_message(object())  # type: ignore[arg-type]


def test_mac_input_is_prefix_without_mac():
    msg = M.CommissionResponse(status=0, mac=bytes(range(16)))
    assert msg.mac_input() == bytes([P.OSGP_OP_COMMISSION_RESPONSE, 0])
    with pytest.raises(EncodeError):
        M.SequenceError(key_id=0, expected_min_seq=1).mac_input()
