"""Block transfer helpers: GET reassembly (client side), SET/ACTION block builders,
sequence errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import axdr
from dlms14908.errors import LocalProtocolError, ServiceError
from dlms14908.obis import Obis
from dlms14908.xdlms import (
    ActionRequestWithFirstPblock,
    ActionRequestWithPblock,
    AttributeDescriptor,
    BlockSequenceError,
    DataAccessResult,
    DataBlockCollector,
    GetBlockCollector,
    GetResponseWithDatablock,
    MethodDescriptor,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    action_request_blocks,
    decode_apdu,
    encode_apdu,
    set_request_blocks,
    split_blocks,
)

VEC = Path(__file__).resolve().parents[1] / "vectors" / "xdlms" / "services_vectors.json"
PROFILE = AttributeDescriptor(7, Obis.parse("1-0:99.1.0.255"), 2)


def _profile(n: int) -> axdr.Array:
    return axdr.Array([axdr.Structure([axdr.OctetString(bytes(12)), axdr.DoubleLongUnsigned(i),
                                       axdr.LongUnsigned(i & 0xFFFF)]) for i in range(n)])


def test_first_public_block_and_next_request_match_vectors() -> None:
    vecs = {v["id"]: v for v in json.loads(VEC.read_text())["vectors"]}
    first = decode_apdu(bytes.fromhex(vecs["G7"]["hex"]))
    col = GetBlockCollector()
    assert col.receive(first) is False
    # the acknowledgement of block 1 is exactly the public GET-Request-Next vector G2
    assert encode_apdu(col.next_request(0xC1)) == bytes.fromhex(vecs["G2"]["hex"])
    assert col.last_block_number == 1 and not col.done
    with pytest.raises(LocalProtocolError):
        _ = col.data


@given(st.integers(0, 300), st.integers(1, 200))
def test_get_reassembly_round_trip(n: int, block_size: int) -> None:
    value = _profile(n % 40)
    raw = axdr.encode(value)
    col = GetBlockCollector()
    blocks = split_blocks(raw, block_size)
    for i, (last, num, chunk) in enumerate(blocks):
        # each block crosses the wire as a real APDU
        apdu = decode_apdu(encode_apdu(GetResponseWithDatablock(0xC1, last, num, chunk)))
        done = col.receive(apdu)
        assert done == (i == len(blocks) - 1)
        if not done:
            assert col.next_request(0xC1).block_number == num
    assert col.data == raw
    assert col.value() == value


def test_sequence_errors() -> None:
    col = GetBlockCollector()
    with pytest.raises(BlockSequenceError):
        col.receive(GetResponseWithDatablock(0xC1, False, 2, b"x"))
    col.receive(GetResponseWithDatablock(0xC1, False, 1, b"x"))
    with pytest.raises(BlockSequenceError):
        col.receive(GetResponseWithDatablock(0xC1, False, 1, b"x"))  # repeated
    col.receive(GetResponseWithDatablock(0xC1, True, 2, b"y"))
    with pytest.raises(BlockSequenceError):
        col.receive(GetResponseWithDatablock(0xC1, True, 3, b"z"))  # after the last
    with pytest.raises(LocalProtocolError):
        col.next_request(0xC1)
    assert col.data == b"xy"


def test_block_error_result_is_service_error() -> None:
    col = GetBlockCollector()
    col.receive(GetResponseWithDatablock(0xC1, False, 1, b"ab"))
    with pytest.raises(ServiceError) as ei:
        col.receive(GetResponseWithDatablock(0xC1, True, 2, b"",
                                             DataAccessResult.LONG_GET_ABORTED))
    assert ei.value.hint is DataAccessResult.LONG_GET_ABORTED


def test_size_limit() -> None:
    col = DataBlockCollector(max_bytes=5)
    col.add(False, 1, b"abc")
    with pytest.raises(BlockSequenceError):
        col.add(True, 2, b"def")


def test_set_request_blocks() -> None:
    value = _profile(30)
    raw = axdr.encode(value)
    apdus = set_request_blocks(0xC1, PROFILE, raw, 100)
    assert isinstance(apdus[0], SetRequestWithFirstDatablock)
    assert all(isinstance(a, SetRequestWithDatablock) for a in apdus[1:])
    assert [a.block_number for a in apdus] == list(range(1, len(apdus) + 1))
    assert [a.last_block for a in apdus] == [False] * (len(apdus) - 1) + [True]
    # server side: reassemble from the wire
    col = DataBlockCollector()
    for a in apdus:
        back = decode_apdu(encode_apdu(a))
        col.add(back.last_block, back.block_number, back.raw_data)
    assert col.value() == value


def test_action_request_blocks_and_single_block() -> None:
    m = MethodDescriptor(18, Obis.parse("0-0:44.0.0.255"), 2)
    raw = axdr.encode(axdr.Structure([axdr.DoubleLongUnsigned(0), axdr.OctetString(bytes(500))]))
    apdus = action_request_blocks(0xC1, m, raw, 128)
    assert isinstance(apdus[0], ActionRequestWithFirstPblock)
    assert all(isinstance(a, ActionRequestWithPblock) for a in apdus[1:])
    assert b"".join(a.raw_data for a in apdus) == raw
    one = action_request_blocks(0xC1, m, b"\x00", 128)
    assert len(one) == 1 and one[0].last_block and one[0].block_number == 1
    assert split_blocks(b"", 10) == [(True, 1, b"")]
