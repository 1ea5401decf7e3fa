"""The analyzer's fast LonTalk header peek agrees with the reference decoder
(:func:`dlms14908.lon.frame.decode_frame`) on the public frame vectors
(``vectors/lon/frames.json``, each decoded by tshark) and on random frames."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from dlms14908.analyzer.lonhdr import peek
from dlms14908.errors import DecodeError
from dlms14908.lon.frame import (
    Apdu,
    BroadcastAddress,
    Frame,
    GroupAckAddress,
    GroupAddress,
    NeuronIdAddress,
    NvApdu,
    Spdu,
    SpduType,
    SubnetNodeAddress,
    Tpdu,
    TpduType,
    decode_frame,
    encode_frame,
)

ROOT = Path(__file__).resolve().parents[1]
VECS = json.loads((ROOT / "vectors" / "lon" / "frames.json").read_text())["vectors"]


def _same(body: bytes) -> None:
    f = decode_frame(body, crc=False)
    h = peek(body)
    if h is None:
        return  # AuthPDU / version 2: the reference decoder handles these
    a = f.address
    assert (h.src_subnet, h.src_node) == (a.src_subnet, a.src_node)
    assert h.domain == f.domain
    assert bool(h.priority) == f.l2.priority and bool(h.alt_path) == f.l2.alt_path
    assert h.backlog == f.l2.delta_backlog
    kind = {
        BroadcastAddress: "bcast",
        GroupAddress: "group",
        SubnetNodeAddress: "sn",
        GroupAckAddress: "gack",
        NeuronIdAddress: "nid",
    }[type(a)]
    assert h.dst_kind == kind
    if kind in ("sn", "gack"):
        assert (h.dst_subnet, h.dst_node) == (a.dst_subnet, a.dst_node)
    if kind == "nid":
        assert bytes(h.neuron_id) == a.neuron_id and h.dst_subnet == a.dst_subnet
    if kind in ("group", "gack"):
        assert h.group == a.group
    pdu = f.pdu
    if isinstance(pdu, (Tpdu, Spdu)):
        assert h.layer == ("T" if isinstance(pdu, Tpdu) else "S")
        assert h.svc.endswith(pdu.type.name) and h.tn == pdu.trans_no and bool(h.auth) == pdu.auth
        assert h.m_list == pdu.m_list
    else:
        assert h.layer == "A"
    apdu = f.apdu
    if apdu is None:
        assert h.apdu == -1
    else:
        assert body[h.apdu :] == apdu.encode()


def test_public_frame_vectors() -> None:
    n = 0
    for v in VECS:
        raw = bytes.fromhex(v["hex"].replace(" ", ""))
        _same(raw[:-2])
        n += peek(raw[:-2]) is not None
    assert n >= 10


_u8 = st.integers(0, 255)
_node = st.integers(1, 127)
_addr = st.one_of(
    st.builds(BroadcastAddress, _u8, _node, _u8),
    st.builds(GroupAddress, _u8, _node, _u8),
    st.builds(SubnetNodeAddress, _u8, _node, _u8, _node),
    st.builds(GroupAckAddress, _u8, _node, _u8, _node, _u8, st.integers(0, 63)),
    st.builds(NeuronIdAddress, _u8, _node, _u8, st.binary(min_size=6, max_size=6)),
)
_apdu = st.one_of(
    st.builds(Apdu, st.integers(0, 0x7F), st.binary(max_size=20)),
    st.builds(NvApdu, st.integers(0, 0x3FFF), st.binary(max_size=8), st.integers(0, 1)),
)
_tn = st.integers(0, 15)
_pdu = st.one_of(
    _apdu,
    st.builds(Tpdu, st.sampled_from([TpduType.ACKD, TpduType.UNACKD_RPT]), _tn, _apdu),
    st.builds(Tpdu, st.just(TpduType.ACK), _tn),
    st.builds(Spdu, st.sampled_from([SpduType.REQUEST, SpduType.RESPONSE]), _tn, _apdu),
)


@given(
    _addr,
    _pdu,
    st.sampled_from([b"", b"\x42", b"\x01\x02\x03", bytes(range(6))]),
    st.booleans(),
    st.booleans(),
    st.integers(0, 63),
)
def test_random_frames_agree(addr, pdu, domain, pri, alt, backlog) -> None:  # type: ignore[no-untyped-def]
    try:
        frame = Frame.make(addr, pdu, domain, priority=pri, alt_path=alt, delta_backlog=backlog)
        raw = encode_frame(frame, crc=False)
    except Exception:  # noqa: BLE001 - combinations the encoder refuses are not frames
        return
    _same(raw)


@given(st.binary(max_size=40))
def test_random_bytes(data: bytes) -> None:
    try:
        h = peek(data)
    except Exception as exc:  # pragma: no cover - the test fails here
        raise AssertionError(f"peek raised {exc!r}") from exc
    if h is not None:
        try:
            decode_frame(data, crc=False)
        except DecodeError:
            raise AssertionError("peek accepted what the reference decoder refuses") from None


@given(
    st.sampled_from(VECS),
    st.lists(st.tuples(st.integers(0, 300), st.integers(1, 255)), max_size=3),
    st.integers(0, 4),
)
def test_mutated_vectors(vec, flips, cut) -> None:  # type: ignore[no-untyped-def]
    """Bit-flipped / shortened public frames: peek accepts only what the reference accepts,
    and then agrees with it field by field."""
    body = bytearray(bytes.fromhex(vec["hex"].replace(" ", ""))[:-2])
    for pos, x in flips:
        body[pos % len(body)] ^= x
    data = bytes(body[: max(0, len(body) - cut)])
    h = peek(data)
    if h is None:
        return
    try:
        decode_frame(data, crc=False)
    except DecodeError:
        raise AssertionError("peek accepted what the reference decoder refuses") from None
    _same(data)
