"""Adaptation-layer endpoints (``dlms14908.adaptation.endpoint``) without LonTalk: the
exchange design of the module docstring, OSGP protection per PDU, bounded state, counted
drops, class 131 inactivity, and "random bytes only raise our hierarchy"."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms14908 import profile as P
from dlms14908.adaptation.endpoint import (
    ClientEndpoint,
    Done,
    OutOfCommunication,
    Send,
    ServerEndpoint,
    address_bytes,
)
from dlms14908.adaptation.pdu import decode_pdu
from dlms14908.errors import ProtocolError, SecurityError
from osgp.channel import Role, SecureChannel

NID = bytes.fromhex("04a1b2c3d4e5")
NNAP = bytes.fromhex("4e4e41500001")
PSK = bytes(range(16))
DEST = address_bytes(b"\x42", subnet=2, node=5)


def handler(apdu: bytes) -> bytes:
    return bytes(reversed(apdu)) * 3


def pair(osgp: bool, *, server_psk: bytes = PSK, client_psk: bytes = PSK) -> tuple[ClientEndpoint, ServerEndpoint]:
    cch = sch = None
    if osgp:
        cch = SecureChannel(role=Role.NNAP, local_id=NNAP, peer_id=NID, psk=client_psk)
        sch = SecureChannel(role=Role.LNAP, local_id=NID, peer_id=NNAP, psk=server_psk)
    return (ClientEndpoint(channel=cch, dest=DEST),
            ServerEndpoint(handler, channel=sch, dest=DEST))


def drive(c: ClientEndpoint, s: ServerEndpoint, apdu: bytes, log: list[tuple[bool, bytes, bytes | None]] | None = None,
          now: float = 0.0) -> bytes | None:
    step = c.begin(apdu, now=now)
    while isinstance(step, Send):
        reply = s.on_message(("peer",), step.data, confirmed=step.confirmed, now=now)
        if log is not None:
            log.append((step.confirmed, step.data, reply))
        assert (reply is not None) == step.confirmed
        step = c.feed(reply, now)
    assert isinstance(step, Done)
    return step.apdu


@pytest.mark.parametrize("osgp", [False, True])
@pytest.mark.parametrize("size", [1, 78, 79, 200, 201, 450, 5000])
def test_exchange_shapes(osgp: bool, size: int) -> None:
    c, s = pair(osgp)
    apdu = bytes(i & 0xFF for i in range(size))
    log: list[tuple[bool, bytes, bytes | None]] = []
    assert drive(c, s, apdu, log) == handler(apdu)
    hs = 2 if osgp else 0
    req_segs = -(-size // P.AL_MAX_SEGMENT_DEFAULT)  # 200
    resp_segs = -(-3 * size // P.AL_MAX_RESPONSE_SEGMENT_DEFAULT)  # 236
    assert len(log) == hs + req_segs + resp_segs - 1
    msgs = log[hs:]
    # every request segment but the last goes unconfirmed (ACKD), the last as REQUEST
    assert [conf for conf, _, _ in msgs[:req_segs]] == [False] * (req_segs - 1) + [True]
    for _, data, reply in msgs:
        assert data[0] == P.AL_MSG_CODE
        pdu = decode_pdu(data[1:])
        assert pdu.protected == osgp
        if reply is not None:
            assert decode_pdu(reply[1:]).protected == osgp
    # the pulls: empty segments asking for counter 1, 2, ...
    pulls = msgs[req_segs:]
    for k, (conf, data, _) in enumerate(pulls, 1):
        pdu = decode_pdu(data[1:])
        assert conf and pdu.segmented and not pdu.first and pdu.counter == k
    assert s.counters.stray_pulls == 0 and not s._pending


def test_protected_payload_is_not_in_clear() -> None:
    c, s = pair(True)
    secret = b"METER-SECRET-PAYLOAD" * 4
    log: list[tuple[bool, bytes, bytes | None]] = []
    drive(c, s, secret, log)
    for _, data, reply in log:
        assert secret[:16] not in data and (reply is None or secret[::-1][:16] not in reply)


def test_wrong_psk_fails_the_handshake() -> None:
    c, s = pair(True, client_psk=b"\x01" * 16)
    with pytest.raises(SecurityError):
        drive(c, s, b"\x01")
    assert not c.busy


def test_server_refuses_unprotected_when_it_has_a_channel() -> None:
    c, _ = pair(False)
    _, s = pair(True)
    step = c.begin(b"\x01", now=0)
    assert isinstance(step, Send)
    # an unconfirmed request is dropped silently, counted
    assert s.on_message(("p",), step.data, confirmed=False, now=0) is None
    assert s.counters.unprotected_refused == 1
    # a confirmed one is told why: an AuthenticationFailure error PDU, which the client
    # turns into a SecurityError naming the cure (not a timeout)
    reply = s.on_message(("p",), step.data, confirmed=True, now=0)
    assert reply is not None and s.counters.unprotected_refused == 2
    with pytest.raises(SecurityError, match=r"requires OSGP-AES-128-PSK.*\[osgp\]"):
        c.feed(reply, 0)
    # rate-limited like every error message (default burst 2): no oracle for a prober
    assert all(s.on_message(("p",), step.data, confirmed=True, now=0) is None for _ in range(5))
    assert s.counters.unprotected_refused == 7


def test_tampered_protected_request_answers_an_error_pdu() -> None:
    c, s = pair(True)
    drive(c, s, b"\x01")  # handshake done
    step = c.begin(b"\x02\x03", now=1)
    assert isinstance(step, Send)
    bad = bytearray(step.data)
    bad[-1] ^= 1
    reply = s.on_message(("p",), bytes(bad), confirmed=True, now=1)
    assert reply is not None and decode_pdu(reply[1:]).type == P.AL_TYPE_ERROR
    with pytest.raises(SecurityError):
        c.feed(reply, 1)
    assert s.counters.security_drops == 1


def test_aad_binds_the_destination() -> None:
    c, s = pair(True)
    drive(c, s, b"\x01")
    step = c.begin(b"\x09", now=1)
    other = address_bytes(b"\x42", subnet=2, node=6)
    assert s.on_message(("p",), step.data, confirmed=True, now=1, dest=other) is not None  # an error PDU
    assert s.counters.security_drops == 1
    assert s.on_message(("p",), step.data, confirmed=True, now=1, dest=DEST) is not None
    assert s.counters.security_drops == 1


def test_unknown_sap_is_counted() -> None:
    s = ServerEndpoint(route=lambda srv, cli: handler if srv == 1 else None)
    c = ClientEndpoint(server_sap=0x02)
    step = c.begin(b"\x01", now=0)
    assert s.on_message(("p",), step.data, confirmed=True, now=0) is None
    assert s.counters.unknown_sap == 1


def test_stray_pull_and_reassembly_drop_are_counted() -> None:
    c, s = pair(False)
    step = c.begin(bytes(450), now=0)  # 3 segments: feed only the first, then a new APDU
    s.on_message(("peer",), step.data, confirmed=step.confirmed, now=0)
    assert s.reassembler.pending == 1
    c.abort()
    assert drive(c, s, b"\x07") == handler(b"\x07")
    assert s.counters.reassembly_dropped == 1
    from dlms14908.adaptation.pdu import AdaptationPdu, encode_pdu

    pull = AdaptationPdu(0, 1, 0x10, b"", segmented=True, counter=3)
    assert s.on_message(("p",), bytes((P.AL_MSG_CODE,)) + encode_pdu(pull), confirmed=True, now=0) is None
    assert s.counters.stray_pulls == 1


def test_inactivity_timeout_class131() -> None:
    c, s = pair(False)
    s.inactivity_timeout = 5  # minutes
    assert s.reassembler.gap_timeout == min(P.AL_SEGMENT_GAP_TIMEOUT, 300)
    drive(c, s, b"\x01", now=100.0)
    assert s.in_communication and s.next_timer() == 400.0
    s.handle_timer(399.0)
    assert s.in_communication and not s.events
    s.handle_timer(400.0)
    assert not s.in_communication and s.events == [OutOfCommunication(100.0)]
    assert s.counters.inactivity_expired == 1
    with pytest.raises(ProtocolError):
        s.inactivity_timeout = 70000


def test_pending_responses_are_bounded_and_expire() -> None:
    c, s = pair(False)
    s.inactivity_timeout = 1
    step = c.begin(bytes(150), now=0)  # response 450 bytes -> 3 segments, pull never comes
    s.on_message(("p",), step.data, confirmed=True, now=0)
    assert len(s._pending) == 1
    s.handle_timer(61.0)
    assert not s._pending and s.counters.responses_expired == 1


@settings(max_examples=200)
@given(st.binary(max_size=300), st.booleans())
def test_server_random_bytes_never_raise(data: bytes, osgp: bool) -> None:
    _, s = pair(osgp)
    for prefix in (b"", bytes((P.AL_MSG_CODE,))):
        s.on_message(("p",), prefix + data, confirmed=True, now=0)


@settings(max_examples=200)
@given(st.binary(max_size=300), st.booleans())
def test_client_random_reply_raises_only_our_errors(data: bytes, osgp: bool) -> None:
    c, _ = pair(osgp)
    c.begin(b"\x01", now=0)
    try:
        c.feed(bytes((P.AL_MSG_CODE,)) + data, 0)
    except ProtocolError:
        pass
    c.abort()
    c.begin(b"\x01", now=0)
    try:
        c.feed(data, 0)
    except ProtocolError:
        pass


@settings(max_examples=40)
@given(st.binary(min_size=1, max_size=1500), st.booleans())
def test_round_trip_any_apdu(apdu: bytes, osgp: bool) -> None:
    c, s = pair(osgp)
    assert drive(c, s, apdu) == handler(apdu)


def test_every_server_timer_is_gone_once_handled_at_its_deadline() -> None:
    """Handling the server's timers at exactly next_timer() must move next_timer() past it,
    whatever the timer (pending segmented response, reassembly, inactivity): a driver that
    fires timers when due would otherwise never leave that instant."""
    c, s = pair(False)
    s.inactivity_timeout = 1
    step = c.begin(bytes(150), now=0)  # a 3-segment response whose pulls never come
    s.on_message(("p",), step.data, confirmed=True, now=0)
    seen = []
    while (t := s.next_timer()) is not None:
        assert not seen or t > seen[-1]
        seen.append(t)
        s.handle_timer(t)
        assert len(seen) < 10
    assert s.counters.responses_expired == 1 and not s.in_communication
