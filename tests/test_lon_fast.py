"""The LonTalk hot paths against the general code they short-cut.

* ``LonTransactions.receive_frame`` takes a fast path for format-2a TPDU/SPDU frames given as
  ``bytes``; a ``bytearray`` copy of the same frame takes the general path (``decode_frame``
  and the validating constructors).  Two identical nodes fed the same random frame sequence,
  one each way, must return equal events, send equal frames and count equally.
* Frames the transaction layer now assembles as bytes must equal what the public, validating
  constructors + ``encode_frame`` make of the same message (the reference encoder), for every
  destination form, service, retry, alt path and M_List.
* ``decode_frame`` builds its values without re-validation: each decoded value must pass the
  validating constructor unchanged.  The CRC check by residue must agree with recomputing it.
"""

from __future__ import annotations

import dataclasses
import pickle
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import CrcError, DecodeError, EncodeError, LocalProtocolError
from dlms14908.lon.crc import CRC_RESIDUE, append_crc, check_crc, crc16, strip_crc
from dlms14908.lon.events import (
    AckReceived,
    MessageCompleted,
    MessageReceived,
    ReceiveHandle,
    ResponseReceived,
    Service,
)
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
    wire_apdu,
)
from dlms14908.lon.transaction import (
    BroadcastDest,
    GroupDest,
    LonConfig,
    LonTransactions,
    NeuronIdDest,
    NodeDest,
    m_list_encode,
)
from tests.test_lon_strategies import addresses, apdus, authpdus, frames, spdus, tpdus

DOM = b"\x42"
ME = (2, 5)
PEER = (1, 1)
NID = bytes.fromhex("010203040506")
KEY = bytes.fromhex("5791bc23f201")


def _node(seed: int = 0, **kw: object) -> LonTransactions:
    cfg = LonConfig(*ME, domain=DOM, neuron_id=NID, groups={7: 3}, **kw)  # type: ignore[arg-type]
    return LonTransactions(cfg, rng=random.Random(seed).randbytes)


def _counters(lon: LonTransactions) -> dict[str, int]:
    return dataclasses.asdict(lon.counters)


# --------------------------------------------------------------------------- receive: fast == general

_src = st.sampled_from([PEER, PEER, PEER, (3, 9), ME])
_dst = st.sampled_from([ME, ME, ME, (2, 6)])


@st.composite
def _unicast_2a(draw: st.DrawFn) -> SubnetNodeAddress:
    s, d = draw(_src), draw(_dst)
    return SubnetNodeAddress(s[0], s[1], d[0], d[1])


_hot_apdus = st.builds(Apdu, st.sampled_from([0x30, 0x30, 0x2D, 0x4D, 0x00, 0x7F]), st.binary(max_size=6))


@st.composite
def _hot_pdu(draw: st.DrawFn) -> Tpdu | Spdu:
    """Mostly what the fast path takes, with transaction numbers that collide."""
    tn = draw(st.one_of(st.sampled_from([0, 0, 1, 1]), st.integers(0, 15)))
    apdu = draw(st.one_of(_hot_apdus, _hot_apdus, _hot_apdus, _hot_apdus, apdus))
    kind = draw(st.sampled_from(["req", "resp", "ackd", "rpt", "ack"]))
    if kind == "req":
        return Spdu(SpduType.REQUEST, tn, apdu)
    if kind == "resp":
        return Spdu(SpduType.RESPONSE, tn, apdu)
    if kind == "ackd":
        return Tpdu(TpduType.ACKD, tn, apdu, auth=draw(st.booleans()))
    if kind == "rpt":
        return Tpdu(TpduType.UNACKD_RPT, tn, apdu)
    return Tpdu(TpduType.ACK, tn)


@st.composite
def _wire(draw: st.DrawFn) -> bytes:
    which = draw(st.integers(0, 19))
    if which == 0:  # anything valid, any address form
        return encode_frame(draw(frames))
    if which == 1:  # garbage, sometimes with a right CRC
        raw = draw(st.binary(max_size=20))
        return append_crc(raw) if draw(st.booleans()) else raw
    if which <= 5:  # any address, any PDU, any domain
        address = draw(st.one_of(_unicast_2a(), addresses))
        pdu = draw(st.one_of(_hot_pdu(), tpdus(), spdus(), authpdus()))
        domain = draw(st.sampled_from([DOM, b"", b"\x43", b"\x42\x00\x00"]))
    else:  # the hot case: format 2a from the peer to us, mostly fast-path PDUs
        s = draw(st.sampled_from([PEER, PEER, PEER, PEER, (3, 9), ME]))
        d = draw(st.sampled_from([ME, ME, ME, ME, ME, (2, 6)]))
        address = SubnetNodeAddress(s[0], s[1], d[0], d[1])
        pdu = draw(_hot_pdu())
        domain = draw(st.sampled_from([DOM, DOM, DOM, DOM, DOM, b""]))
    frame = Frame.make(address, pdu, domain, priority=draw(st.booleans()), alt_path=draw(st.booleans()),
                       delta_backlog=draw(st.sampled_from([0, 0, 1, 15, 63])))
    wire = encode_frame(frame)
    if which == 3:  # bytes after the PDU, under a right CRC (an ACK or REMINDER must have none)
        return append_crc(wire[:-2] + draw(st.binary(min_size=1, max_size=3)))
    if which == 2:  # one corrupted byte (the CRC catches it) or a cut frame
        i = draw(st.integers(0, len(wire) - 1))
        wire = wire[:i] + bytes((wire[i] ^ draw(st.integers(1, 255)),)) + wire[i + 1 :]
        if draw(st.booleans()):
            wire = append_crc(wire[: max(i, 1)])
    return wire


@given(
    st.lists(st.tuples(_wire(), st.integers(0, 3), st.booleans()), min_size=3, max_size=30),
    st.sampled_from([Service.REQUEST, Service.ACKD]),
    st.booleans(),
    st.booleans(),
)
def test_fast_receive_path_equals_general_path(
    steps: list[tuple[bytes, int, bool]], service: Service, keyed: bool, prio: bool
) -> None:
    kw = {"auth_key": KEY} if keyed else {}
    fast, general = _node(1, **kw), _node(1, **kw)
    for lon in (fast, general):  # an outstanding transaction for ACKs/RESPONSEs to match
        lon.request(NodeDest(*PEER), b"\x30\x01", service=service, priority=prio, now=0.0)
    assert fast.frames_to_send() == general.frames_to_send()
    now = 0.0
    for wire, repeat, answer in steps:
        for _ in range(1 + (repeat == 3)):  # sometimes the same frame again: a duplicate
            now += 0.25
            ev_fast = fast.receive_frame(wire, now)
            ev_general = general.receive_frame(bytearray(wire), now)
            assert ev_fast == ev_general
            for ef, eg in zip(ev_fast, ev_general):
                if isinstance(ef, MessageReceived) and ef.handle is not None and answer:
                    assert isinstance(eg, MessageReceived) and eg.handle is not None
                    fast.respond(ef.handle, b"\x30\xaa", now=now)
                    general.respond(eg.handle, bytearray(b"\x30\xaa"), now=now)
            assert fast.handle_timer(now) == general.handle_timer(now)
            assert fast.frames_to_send() == general.frames_to_send()
            assert fast.next_timer() == general.next_timer()
            assert _counters(fast) == _counters(general)


def _kinds(tn: int, apdu: Apdu | NvApdu) -> list[Tpdu | Spdu]:
    return [Spdu(SpduType.REQUEST, tn, apdu), Spdu(SpduType.RESPONSE, tn, apdu), Tpdu(TpduType.ACKD, tn, apdu),
            Tpdu(TpduType.UNACKD_RPT, tn, apdu), Tpdu(TpduType.ACK, tn), Tpdu(TpduType.ACKD, tn, apdu, auth=True)]


def _patched(wire: bytes, dom_len: int) -> list[bytes]:
    """Header variants under a right CRC: undefined TPDU/SPDU types, the destination node's
    bit 7 or the source selector cleared (2b), another protocol version."""
    body = bytearray(wire[:-2])
    p = 6 + dom_len  # the TPDU/SPDU header
    out = []
    for i, mask, value in ((p, 0x70, 0x10), (p, 0x70, 0x30), (p, 0x70, 0x70), (5, 0x80, 0), (3, 0x80, 0),
                           (1, 0xC0, 0x40)):
        v = bytearray(body)
        v[i] = (v[i] & ~mask & 0xFF) | value
        out.append(append_crc(bytes(v)))
    return out


@pytest.mark.parametrize("service", [Service.REQUEST, Service.ACKD])
def test_fast_receive_path_equals_general_path_sweep(service: Service) -> None:
    """Every header bit the fast path reads, against the general path, in one long sequence
    (duplicates, transaction numbers coming round, not-for-us and echoed frames, trailing bytes)."""
    fast, general = _node(2, auth_key=KEY), _node(2, auth_key=KEY)
    for lon in (fast, general):
        lon.request(NodeDest(*PEER), b"\x30\x01", service=service, priority=True, now=0.0)
    assert fast.frames_to_send() == general.frames_to_send()
    now, n = 0.0, 0
    for src in (PEER, (3, 9), ME):
        for dst in (ME, (2, 6)):
            for domain in (DOM, b"", b"\x42\x00\x00"):
                for tn in (0, 1, 15, 0):
                    for apdu in (Apdu(0x30, b"\x01"), NvApdu(5, b"\x02", 1)):
                        for pdu in _kinds(tn, apdu):
                            for l2 in (0x80, 0x00, 0x40, 0xC1):
                                f = Frame.make(SubnetNodeAddress(*src, *dst), pdu, domain, priority=bool(l2 & 0x80),
                                               alt_path=bool(l2 & 0x40), delta_backlog=l2 & 0x3F)
                                wire = encode_frame(f)
                                variants = [wire, append_crc(wire[:-2] + b"\x00")]
                                if l2 == 0x80:
                                    variants += _patched(wire, len(domain))
                                for w in variants:
                                    now += 0.01
                                    ev = fast.receive_frame(w, now)
                                    assert ev == general.receive_frame(bytearray(w), now), (f, w.hex())
                                    for x in ev:
                                        if isinstance(x, MessageReceived) and x.handle is not None and tn:
                                            n += 1
                                            fast.respond(x.handle, b"\x30\x02", now=now)
                                            general.respond(x.handle, b"\x30\x02", now=now)
                                    assert fast.frames_to_send() == general.frames_to_send()
                                    assert _counters(fast) == _counters(general)
    assert n >= 50 and fast.counters.delivered > 100  # many requests answered, messages delivered


def test_fast_path_is_taken_and_caches_stay_bounded() -> None:
    lon = _node()
    for i in range(300):  # 300 different sources
        f = encode_frame(Frame.make(SubnetNodeAddress(10 + i // 100, i % 100, *ME),
                                    Tpdu(TpduType.ACKD, 1, Apdu(0x30, b"x")), DOM))
        (ev,) = lon.receive_frame(f, float(i))
        assert isinstance(ev, MessageReceived) and ev.source.src_node == i % 100
        assert type(ev.apdu) is Apdu and ev.apdu == Apdu(0x30, b"x") and ev.apdu.encode() == b"\x30x"
        (ack,) = lon.frames_to_send()
        assert decode_frame(ack) == Frame.make(SubnetNodeAddress(*ME, 10 + i // 100, i % 100),
                                               Tpdu(TpduType.ACK, 1), DOM)
    assert 0 < len(lon._heads) <= 64 and 0 < len(lon._reply_heads) <= 64
    assert lon.counters.delivered == 300


def test_apdu_keeps_its_encoding_without_changing_its_value() -> None:
    a, w = Apdu(0x30, b"\x01\x02"), wire_apdu(b"\x30\x01\x02")
    assert a == w and hash(a) == hash(w) and repr(a) == repr(w) == "Apdu(code=48, data=b'\\x01\\x02')"
    assert a.encode() == w.encode() == b"\x30\x01\x02" and a.encode() is a.encode()
    b = dataclasses.replace(w, data=b"\x09")
    assert b.encode() == b"\x30\x09" and b != w
    assert pickle.loads(pickle.dumps(w)) == w and pickle.loads(pickle.dumps(w)).encode() == w.encode()
    assert [f.name for f in dataclasses.fields(Apdu)] == ["code", "data"]
    assert dataclasses.asdict(w) == {"code": 0x30, "data": b"\x01\x02"}
    with pytest.raises(EncodeError) as exc:
        Apdu(0x80)
    assert exc.value.field == "apdu.code"


def test_events_keep_their_signatures_and_stay_frozen() -> None:
    src = SubnetNodeAddress(1, 1, 2, 5)
    h = ReceiveHandle(key=(1, 2), trans_no=3)
    m = MessageReceived(src, Apdu(1), Service.REQUEST, 3, False, DOM, handle=h)
    assert m.authenticated is False and m.handle == h
    assert m == MessageReceived(source=src, apdu=Apdu(1), service=Service.REQUEST, trans_no=3, priority=False,
                                domain=DOM, handle=ReceiveHandle((1, 2), 3), authenticated=False)
    assert dataclasses.replace(m, trans_no=4).trans_no == 4
    assert MessageReceived.__match_args__[:3] == ("source", "apdu", "service")
    assert AckReceived(1, src) == AckReceived(1, src, None)
    assert MessageCompleted(tid=1, service=Service.ACKD, transmissions=2).transmissions == 2
    assert ResponseReceived(1, src, Apdu(2)).apdu == Apdu(2)
    assert pickle.loads(pickle.dumps(m)) == m
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.trans_no = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        MessageCompleted(1, Service.ACKD)  # type: ignore[call-arg]


@given(
    st.integers(0, 15), st.booleans(), st.booleans(), st.sampled_from([b"", DOM, b"\x01\x02\x03", bytes(6)]),
    st.sampled_from([PEER, (0, 0), (255, 127)]), st.booleans(), _hot_apdus,
)
def test_replies_equal_the_reference_encoder(
    tn: int, prio: bool, alt: bool, domain: bytes, src: tuple[int, int], group: bool, apdu: Apdu
) -> None:
    """ACK and RESPONSE (2a, and 2b to a group message) on the path of the message they answer."""
    lon = LonTransactions(LonConfig(*ME, domain=domain, groups={7: 3}))
    to = GroupAddress(*src, 7) if group else SubnetNodeAddress(*src, *ME)
    back = GroupAckAddress(*ME, *src, 7, 3) if group else SubnetNodeAddress(*ME, *src)
    for i, (pdu, reply) in enumerate([
        (Tpdu(TpduType.ACKD, tn, apdu), Tpdu(TpduType.ACK, tn)),
        (Spdu(SpduType.REQUEST, tn, apdu), Spdu(SpduType.RESPONSE, tn, Apdu(0x31, b"\x01\x02"))),
    ]):
        wire = encode_frame(Frame.make(to, pdu, domain, priority=prio, alt_path=alt, delta_backlog=1))
        (m,) = lon.receive_frame(wire, float(i))
        assert m == MessageReceived(to, apdu, Service.REQUEST if i else Service.ACKD, tn, prio, domain, m.handle)
        if i:
            assert m.handle is not None
            lon.respond(m.handle, b"\x31\x01\x02", now=float(i))
        want = encode_frame(Frame.make(back, reply, domain, priority=prio, alt_path=alt))
        assert lon.frames_to_send() == [want]
        assert lon.receive_frame(wire, float(i)) == [] and lon.frames_to_send() == [want]  # duplicate: again
        lon = LonTransactions(LonConfig(*ME, domain=domain, groups={7: 3}))  # fresh records for the REQUEST


# --------------------------------------------------------------------------- send: bytes == reference encoder


def _dest_address(dest: object) -> object:
    if isinstance(dest, NodeDest):
        return SubnetNodeAddress(*ME, dest.subnet, dest.node)
    if isinstance(dest, GroupDest):
        return GroupAddress(*ME, dest.group)
    if isinstance(dest, BroadcastDest):
        return BroadcastAddress(*ME, dest.subnet)
    assert isinstance(dest, NeuronIdDest)
    return NeuronIdAddress(*ME, dest.subnet, dest.neuron_id)


_dests = st.one_of(
    st.builds(NodeDest, st.integers(0, 255), st.integers(0, 127)),
    st.builds(GroupDest, st.sampled_from([7, 9]), st.integers(1, 40)),
    st.builds(BroadcastDest, st.integers(0, 255), st.integers(1, 3)),
    st.builds(NeuronIdDest, st.binary(min_size=6, max_size=6), st.integers(0, 255)),
)


@pytest.mark.parametrize("kind", [NodeDest, GroupDest, BroadcastDest, NeuronIdDest])
@given(
    data=st.data(),
    service=st.sampled_from(list(Service)),
    apdu=apdus,
    prio=st.booleans(),
    auth=st.booleans(),
    retries=st.integers(0, 4),
    domain=st.sampled_from([b"", DOM, b"\x01\x02\x03", bytes(6)]),
    answering=st.sets(st.integers(0, 39), max_size=12),
)
def test_sent_frames_equal_the_reference_encoder(
    kind: type, data: st.DataObject, service: Service, apdu: Apdu | NvApdu, prio: bool, auth: bool, retries: int,
    domain: bytes, answering: set[int],
) -> None:
    dest = data.draw(next(d for d in _DESTS if d[0] is kind)[1])
    _check_sent_frames(dest, service, apdu, prio, auth, retries, domain, answering)


_DESTS = [
    (NodeDest, st.builds(NodeDest, st.integers(0, 255), st.integers(0, 127))),
    (GroupDest, st.builds(GroupDest, st.sampled_from([7, 9]), st.integers(1, 40))),
    (BroadcastDest, st.builds(BroadcastDest, st.integers(0, 255), st.integers(1, 3))),
    (NeuronIdDest, st.builds(NeuronIdDest, st.binary(min_size=6, max_size=6), st.integers(0, 255))),
]


@given(
    _dests,
    st.sampled_from(list(Service)),
    apdus,
    st.booleans(),
    st.booleans(),
    st.integers(0, 4),
    st.sampled_from([b"", DOM, b"\x01\x02\x03", bytes(6)]),
    st.sets(st.integers(0, 39), max_size=12),
)
def test_sent_frames_any_destination(
    dest: object, service: Service, apdu: Apdu | NvApdu, prio: bool, auth: bool, retries: int, domain: bytes,
    answering: set[int],
) -> None:
    _check_sent_frames(dest, service, apdu, prio, auth, retries, domain, answering)


def _check_sent_frames(
    dest: object, service: Service, apdu: Apdu | NvApdu, prio: bool, auth: bool, retries: int, domain: bytes,
    answering: set[int],
) -> None:
    auth = auth and service in (Service.ACKD, Service.REQUEST) and not isinstance(dest, BroadcastDest)
    cfg = LonConfig(*ME, domain=domain, groups={7: 3}, retries=retries, repeats=retries, tx_timer=1.0,
                    repeat_timer=1.0)
    lon = LonTransactions(cfg)
    tid = lon.request(dest, apdu.encode() if retries % 2 else apdu, service=service, priority=prio,  # type: ignore[arg-type]
                      auth=auth, now=0.0)
    addr = _dest_address(dest)
    group = isinstance(dest, GroupDest)
    me = 3 if group and dest.group == 7 else None  # type: ignore[union-attr]
    expected_members = frozenset(m for m in range(dest.size) if m != me) if group else frozenset()  # type: ignore[union-attr]

    def message(first: bool, alt: bool, answered: frozenset[int]) -> list[bytes]:
        if service is Service.UNACKD:
            return [encode_frame(Frame.make(addr, apdu, domain, priority=prio))]  # type: ignore[arg-type]
        if service is Service.UNACKD_RPT:
            pdu: Tpdu | Spdu = Tpdu(TpduType.UNACKD_RPT, 0, apdu)
            backlog = min(retries, 63) if first else 0
            return [encode_frame(Frame.make(addr, pdu, domain, priority=prio, delta_backlog=backlog))]  # type: ignore[arg-type]
        cls, typ, rem, remind = (
            (Spdu, SpduType.REQUEST, SpduType.REM_MSG, SpduType.REMINDER) if service is Service.REQUEST
            else (Tpdu, TpduType.ACKD, TpduType.REM_MSG, TpduType.REMINDER)
        )
        if group:
            backlog = len(expected_members - answered)
        elif isinstance(dest, BroadcastDest):
            backlog = 15
        else:
            backlog = 1
        out = []
        m_list = None
        if group and not first:
            m_list = m_list_encode(answered) if answered else b""
            if len(m_list) > 2:
                out.append(encode_frame(Frame.make(addr, cls(remind, 0, None, m_list, auth=auth), domain,  # type: ignore[arg-type]
                                                   priority=prio, alt_path=alt)))
                m_list = None
        pdu = cls(rem if m_list is not None else typ, 0, apdu, m_list, auth=auth)  # type: ignore[arg-type]
        out.append(encode_frame(Frame.make(addr, pdu, domain, priority=prio, alt_path=alt,  # type: ignore[arg-type]
                                           delta_backlog=backlog)))
        return out

    acked = service in (Service.ACKD, Service.REQUEST)
    first_alt = acked and retries < 2
    assert lon.frames_to_send() == message(True, first_alt, frozenset())
    answered: set[int] = set()
    if group and acked:  # some members answer the first try: the retries carry their M_List
        for m in sorted(answering & expected_members):
            pdu = Spdu(SpduType.RESPONSE, 0, Apdu(0x30, bytes((m,)))) if service is Service.REQUEST \
                else Tpdu(TpduType.ACK, 0)
            ans = Frame.make(GroupAckAddress(4, m, *ME, dest.group, m), pdu, domain, priority=prio)  # type: ignore[union-attr]
            ev = lon.receive_frame(encode_frame(ans), 0.5)
            assert ev and ev[0].tid == tid  # type: ignore[union-attr]
            answered.add(m)
    now = 0.5 if answered else 0.0
    done = answered == expected_members and group and acked
    for k in range(1, retries + 2):
        now += 1.0
        ev = lon.handle_timer(now)
        sent = lon.frames_to_send()
        if done or (service is Service.UNACKD) or k > retries:
            assert sent == []
            break
        alt = acked and k > retries - 2
        assert sent == message(False, alt, frozenset(answered)), k
        assert not ev


@pytest.mark.parametrize(
    "dest, exc",
    [(NodeDest(256, 1), EncodeError), (NodeDest(1, 128), EncodeError), (NeuronIdDest(b"\x01"), EncodeError),
     (GroupDest(300, 2), EncodeError)],
)
def test_bad_destination_raises_at_request_and_leaves_the_node_usable(dest: object, exc: type) -> None:
    lon = _node()
    with pytest.raises(exc) as e:
        lon.request(dest, b"\x30", now=0.0)  # type: ignore[arg-type]
    assert e.value.field and e.value.field.startswith("address.")
    assert lon.idle and lon.next_timer() is None and lon.frames_to_send() == []
    tid = lon.request(NodeDest(*PEER), b"\x30", now=0.0)
    (f,) = lon.frames_to_send()
    assert decode_frame(f).address == SubnetNodeAddress(*ME, *PEER) and tid == 1


def test_request_and_respond_check_their_apdu_like_before() -> None:
    lon = _node()
    with pytest.raises(LocalProtocolError, match="invalid APDU"):
        lon.request(NodeDest(*PEER), b"\x80", now=0.0)  # a network-variable selector needs 2 bytes
    with pytest.raises(LocalProtocolError, match="apdu must be"):
        lon.request(NodeDest(*PEER), "x", now=0.0)  # type: ignore[arg-type]
    f = encode_frame(Frame.make(SubnetNodeAddress(*PEER, *ME), Spdu(SpduType.REQUEST, 4, Apdu(0x30)), DOM))
    (m,) = lon.receive_frame(f, 0.0)
    assert isinstance(m, MessageReceived) and m.handle is not None
    with pytest.raises(LocalProtocolError, match="invalid APDU"):
        lon.respond(m.handle, b"", now=0.0)
    with pytest.raises(EncodeError):
        lon.respond(m.handle, 5, now=0.0)  # type: ignore[arg-type]
    lon.respond(m.handle, NvApdu(0x123, b"\x01", 1), now=0.0)
    (r,) = lon.frames_to_send()
    assert decode_frame(r) == Frame.make(SubnetNodeAddress(*ME, *PEER),
                                         Spdu(SpduType.RESPONSE, 4, NvApdu(0x123, b"\x01", 1)),
                                         DOM)


# --------------------------------------------------------------------------- decoder and CRC


def _revalidated(obj: object) -> object:
    """Rebuild a decoded dataclass (and its nested values) through the validating constructors."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        vals = {f.name: _revalidated(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return type(obj)(**vals)
    return obj


@given(frames)
def test_decoded_values_pass_the_validating_constructors(frame: Frame) -> None:
    wire = encode_frame(frame)
    got = decode_frame(wire)
    again = _revalidated(got)  # raises EncodeError if the decoder built something out of range
    assert again == got == frame
    assert type(got.npdu.address) is type(frame.npdu.address) and type(got.pdu) is type(frame.pdu)
    assert encode_frame(got) == wire


@given(st.binary(max_size=40), st.integers(0, 0xFFFF))
def test_crc_residue_agrees_with_recomputing(data: bytes, tail: int) -> None:
    lpdu = data + tail.to_bytes(2, "big")
    right = crc16(data) == tail
    assert check_crc(lpdu) is right and check_crc(bytearray(lpdu)) is right
    if right:
        assert strip_crc(lpdu) == data and append_crc(data) == lpdu
    else:
        with pytest.raises(CrcError) as exc:
            strip_crc(memoryview(lpdu))
        assert exc.value.field == "crc" and exc.value.offset == len(data)
    assert (__import__("binascii").crc_hqx(append_crc(data), 0xFFFF)) == CRC_RESIDUE


def test_crc16_public_check_value() -> None:
    assert crc16(b"123456789") == 0xD64E  # CRC-16/GENIBUS check value (reveng catalogue)
    assert not check_crc(b"\x00") and strip_crc(b"\x00\x00") == b""
    with pytest.raises(DecodeError):
        strip_crc(b"\x00")


# --------------------------------------------------------------------------- next_timer cache


def _scan_deadline(lon: LonTransactions) -> float | None:
    """The earliest deadline by a full scan (what next_timer computed before it cached)."""
    ds = [t.deadline for t in (*lon._active.values(), *lon._done_soon) if t is not None and t.deadline is not None]
    return min(ds) if ds else None


@given(st.integers(0, 2**32 - 1))
def test_next_timer_cache_equals_a_full_scan(seed: int) -> None:
    """Random requests (every service, both priorities), answers, duplicates and timer calls
    between two nodes: after every call the cached deadline equals a full scan."""
    rnd = random.Random(seed)
    a = LonTransactions(LonConfig(*PEER, domain=DOM, tx_timer=0.5, repeat_timer=0.3, retries=2, repeats=2))
    b = LonTransactions(LonConfig(*ME, domain=DOM))
    now, wire = 0.0, []
    for _ in range(60):
        op = rnd.randrange(5)
        if op == 0:
            a.request(NodeDest(*ME), bytes((0x30, rnd.randrange(256))), service=rnd.choice(list(Service)),
                      priority=rnd.random() < 0.3, now=now)
        elif op == 1:
            now += rnd.choice([0.0, 0.1, 0.3, 0.5, 1.0])
            a.handle_timer(now)
        elif op == 2:
            wire += a.frames_to_send()
            for f in wire[-3:]:
                for ev in b.receive_frame(f, now):
                    if isinstance(ev, MessageReceived) and ev.handle is not None and rnd.random() < 0.8:
                        b.respond(ev.handle, b"\x30\x00", now=now)
        elif op == 3:
            for f in b.frames_to_send():
                if rnd.random() < 0.8:
                    a.receive_frame(f, now)
        else:
            now += 0.05
        assert a.next_timer() == _scan_deadline(a)
        assert b.next_timer() == _scan_deadline(b)
    assert a.counters.tx_frames > 0
