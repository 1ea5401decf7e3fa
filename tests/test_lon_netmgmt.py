"""Network management / diagnostics codecs: vectors, round trips, key hygiene, fuzz."""

from __future__ import annotations

import json

import pytest
from conftest import VECTORS
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import DecodeError, EncodeError
from dlms14908.lon.frame import Apdu, decode_frame
from dlms14908.lon.netmgmt import (
    AddressEntry,
    ClearStatusRequest,
    DomainEntry,
    ExpandedUpdateKeyRequest,
    LeaveDomainRequest,
    ProxyRequest,
    QueryAddressRequest,
    QueryDomainRequest,
    QueryDomainResponse,
    QueryIdRequest,
    QueryIdResponse,
    QueryStatusRequest,
    QueryStatusResponse,
    ReadMemoryRequest,
    RespondToQueryRequest,
    Response,
    ServicePin,
    SetNodeModeRequest,
    UpdateAddressRequest,
    UpdateDomainRequest,
    UpdateGroupAddressRequest,
    UpdateKeyRequest,
    WinkRequest,
    WriteMemoryRequest,
    apply_key_delta,
    decode_request,
    decode_response,
    is_response_to,
    message_to_jsonable,
)

VECS = json.loads((VECTORS / "lon" / "netmgmt.json").read_text())["vectors"]


def _flatten(tree: dict) -> dict:
    flat: dict = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            for k2, v2 in _flatten(value).items():
                flat.setdefault(k2, v2)
        flat.setdefault(key, value)
    return flat


@pytest.mark.parametrize("v", VECS, ids=[v["name"] for v in VECS])
def test_vector(v: dict) -> None:
    raw = bytes.fromhex(v["apdu"])
    assert v["source"]
    if v["kind"] == "request":
        msg = decode_request(raw)
        assert msg.encode() == raw
        tree = message_to_jsonable(msg)
    else:
        msg = decode_response(v["request_code"], raw)
        assert msg.encode() == raw
        tree = message_to_jsonable(msg)
    flat = _flatten(tree)
    for key, value in v["expect"].items():
        assert flat[key] == value, key
    json.dumps(tree)


def test_worked_frames_carry_nm() -> None:
    e4 = decode_frame(bytes.fromhex("001c018100010203040506076d010000068945"))
    assert decode_request(e4.apdu) == ReadMemoryRequest(1, 0, 6)  # type: ignore[arg-type]
    e13 = decode_frame(bytes.fromhex("003000800061 00c49e".replace(" ", "")))
    assert decode_request(e13.apdu) == QueryIdRequest(0)  # type: ignore[arg-type]


def test_response_codes() -> None:
    assert Response(0x6D, True).code == 0x2D
    assert Response(0x6D, False).code == 0x0D
    assert Response(0x51, True).code == 0x31
    assert Response(0x51, False).code == 0x11
    assert Response(0x52, True).code == 0x32
    assert is_response_to(0x61, 0x21) is True
    assert is_response_to(0x61, 0x01) is False
    assert is_response_to(0x61, 0x2D) is None
    with pytest.raises(DecodeError) as info:
        decode_response(0x61, b"\x2d")
    assert info.value.field == "nm.response_code"
    with pytest.raises(EncodeError):
        is_response_to(0x10, 0x30)


def test_keys_never_in_repr_or_json() -> None:
    key = bytes.fromhex("a1a2a3a4a5a6")
    messages = [
        UpdateKeyRequest(0, key),
        ExpandedUpdateKeyRequest(False, key * 2),
        UpdateDomainRequest(0, DomainEntry.make(b"\x42", 1, 5, key)),
        QueryDomainResponse(DomainEntry.make(b"\x42", 1, 5, key)),
    ]
    for msg in messages:
        for text in (repr(msg), json.dumps(message_to_jsonable(msg))):
            assert "a1a2a3" not in text and "\\xa1" not in text
        wire = msg.encode() if hasattr(msg, "encode") else msg.body()
        assert key.hex() in wire.hex()


def test_key_delta_addition() -> None:
    assert apply_key_delta(bytes.fromhex("ff0102030405"), bytes.fromhex("0201010101ff")) == bytes.fromhex(
        "010203040504"
    )


def test_domain_entry_bits() -> None:
    entry = DomainEntry.make(b"\x01\x02\x03", 7, 9, bytes(6), invalid=True, auth_type=1)
    raw = entry.encode()
    assert len(raw) == 15
    assert raw[7] == 0x89 and raw[8] == 0x80 | (1 << 3) | 3
    assert DomainEntry.decode(raw) == entry
    assert entry.id == b"\x01\x02\x03"


@pytest.mark.parametrize(
    "build",
    [
        lambda: QueryIdRequest(3, None, 1),
        lambda: SetNodeModeRequest(3),
        lambda: SetNodeModeRequest(1, 2),
        lambda: UpdateKeyRequest(0, b"12345"),
        lambda: ExpandedUpdateKeyRequest(True, b"1" * 6),
        lambda: UpdateGroupAddressRequest(AddressEntry(b"\x01\x00\x00\x00\x00")),
        lambda: ProxyRequest(1, b"\x02\x00\x00\x00\x00"),
        lambda: WinkRequest(None, b"\x01"),
        lambda: AddressEntry(b"1234"),
        lambda: QueryStatusResponse(transmit_errors=70000),
        lambda: ReadMemoryRequest(0, 0x10000, 1),
    ],
)
def test_misuse(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EncodeError):
        build()


@pytest.mark.parametrize(
    ("hexstr", "field"),
    [
        ("", "nm.code"),
        ("8001", "nm.code"),
        ("68", "nm.code"),  # no typed codec
        ("60", "nm.subcode"),
        ("6099", "nm.subcode"),
        ("6d0100", "read_memory"),
        ("6e02001005", "write_memory"),
        ("6e0200100201aa", "write_memory.data"),
        ("6202", "respond_to_query.on"),
        ("6c03", "set_node_mode.state"),
        ("6303", "update_domain"),
        ("69013a", "update_group_address"),
        ("69813a54070000", "update_group_address"),
        ("690102030405", "update_group_address.entry"),
        ("5201020000", "proxy.target"),
        ("7001020304050607", "wink"),
        ("7f0102", "service_pin"),
        ("600a02" + "00" * 12, "expanded_update_key.increment"),
        ("5100", "query_status"),
    ],
)
def test_malformed(hexstr: str, field: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_request(bytes.fromhex(hexstr))
    assert info.value.field == field


def test_malformed_response_payload() -> None:
    with pytest.raises(DecodeError) as info:
        decode_response(0x51, bytes.fromhex("31000102"))
    assert info.value.field == "query_status_response"
    with pytest.raises(DecodeError):
        decode_response(0x61, bytes.fromhex("2101"))


requests = st.one_of(
    st.builds(QueryIdRequest, st.integers(0, 2)),
    st.builds(QueryIdRequest, st.integers(0, 2), st.integers(0, 3), st.integers(0, 0xFFFF), st.binary(max_size=8)),
    st.builds(RespondToQueryRequest, st.booleans()),
    st.builds(
        UpdateDomainRequest,
        st.integers(0, 1),
        st.builds(
            DomainEntry,
            st.binary(min_size=6, max_size=6),
            st.integers(0, 255),
            st.integers(0, 127),
            st.integers(0, 7),
            st.binary(min_size=6, max_size=6),
            st.booleans(),
            st.booleans(),
            st.integers(0, 3),
            st.booleans(),
            st.booleans(),
        ),
    ),
    st.builds(LeaveDomainRequest, st.integers(0, 255)),
    st.builds(UpdateKeyRequest, st.integers(0, 1), st.binary(min_size=6, max_size=6)),
    st.builds(ExpandedUpdateKeyRequest, st.booleans(), st.binary(min_size=12, max_size=12)),
    st.builds(UpdateAddressRequest, st.integers(0, 255), st.builds(AddressEntry, st.binary(min_size=5, max_size=5))),
    st.builds(QueryAddressRequest, st.integers(0, 255)),
    st.builds(
        UpdateGroupAddressRequest,
        st.builds(AddressEntry, st.binary(min_size=5, max_size=5).map(lambda b: bytes((b[0] | 0x80,)) + b[1:])),
    ),
    st.builds(QueryDomainRequest, st.integers(0, 255)),
    st.builds(SetNodeModeRequest, st.sampled_from([0, 1, 2, 4])),
    st.builds(SetNodeModeRequest, st.just(3), st.integers(0, 255)),
    st.builds(ReadMemoryRequest, st.integers(0, 3), st.integers(0, 0xFFFF), st.integers(0, 255)),
    st.builds(WriteMemoryRequest, st.integers(0, 3), st.integers(0, 0xFFFF), st.binary(max_size=16),
              st.integers(0, 12)),
    st.builds(WinkRequest),
    st.builds(WinkRequest, st.integers(0, 255), st.binary(max_size=3)),
    st.builds(ServicePin, st.binary(min_size=6, max_size=6), st.binary(min_size=8, max_size=8)),
    st.builds(QueryStatusRequest),
    st.builds(ClearStatusRequest),
    st.builds(ProxyRequest, st.integers(0, 2)),
    st.builds(ProxyRequest, st.integers(0, 2), st.binary(min_size=5, max_size=5).map(lambda b: b"\x01" + b[1:])),
    st.builds(ProxyRequest, st.integers(0, 2), st.binary(min_size=11, max_size=11).map(lambda b: b"\x02" + b[1:])),
)


@given(requests)
def test_request_round_trip(msg) -> None:  # type: ignore[no-untyped-def]
    apdu = msg.to_apdu()
    assert isinstance(apdu, Apdu)
    assert decode_request(apdu) == msg
    json.dumps(message_to_jsonable(msg))


@given(
    st.sampled_from([0x61, 0x67, 0x6A, 0x6D, 0x51, 0x52, 0x53, 0x60, 0x63]),
    st.booleans(),
    st.binary(max_size=20),
)
def test_response_round_trip_or_decode_error(req: int, ok: bool, body: bytes) -> None:
    raw = Response(req, ok).encode() + body
    try:
        resp = decode_response(req, raw)
    except DecodeError:
        return
    assert resp.success is ok
    assert resp.encode() == raw


def test_typed_response_payloads() -> None:
    resp = decode_response(0x61, Response(0x61, True, QueryIdResponse(b"\x01" * 6, b"\x02" * 8)).encode())
    assert resp.payload == QueryIdResponse(b"\x01" * 6, b"\x02" * 8)


@given(st.binary(max_size=24))
def test_random_bytes_only_decode_error(data: bytes) -> None:
    try:
        msg = decode_request(data)
    except DecodeError:
        pass
    else:
        assert msg.encode() == data
    for req in range(0x50, 0x80):  # every NM/ND request code
        try:
            resp = decode_response(req, data)
        except DecodeError:
            pass
        else:
            assert resp.encode() == data
