"""The adaptation endpoints' fast paths for one whole xDLMS PDU (ClientEndpoint.begin/feed,
ServerEndpoint.on_message): the same wire bytes as the PDU codec + SecureChannel.protect
(vectors/adaptation/pdu.json, design choice: docs/wire-format.md §3), and the same counting,
dropping and answering on every failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms14908 import profile as P
from dlms14908.adaptation.endpoint import ClientEndpoint, Done, Send, ServerEndpoint, address_bytes
from dlms14908.adaptation.pdu import AdaptationPdu, decode_pdu, encode_pdu, header_bytes
from dlms14908.errors import (
    DecodeError,
    DlmsTimeout,
    LocalProtocolError,
    ProtocolError,
    SecurityError,
)
from osgp.channel import ChannelSnapshot, KeySnapshot, Role, SecureChannel
from osgp.messages import AuthenticationFailure, SequenceError, decode_message

ROOT = Path(__file__).resolve().parents[1]
VECTORS = {v["name"]: v for v in json.loads((ROOT / "vectors" / "adaptation" / "pdu.json").read_text())["vectors"]}
NID = bytes.fromhex("04a1b2c3d4e5")
NNAP = bytes.fromhex("4e4e41500001")
PSK = bytes(range(16))
DEST = address_bytes(b"\x42", subnet=2, node=5)
CODE = bytes((P.AL_MSG_CODE,))


class Handler:
    def __init__(self, answer: bytes | None = None) -> None:
        self.calls: list[bytes] = []
        self.answer = answer

    def __call__(self, apdu: bytes) -> bytes:
        self.calls.append(apdu)
        return bytes(reversed(apdu)) if self.answer is None else self.answer


def commissioned(handler: Handler, client_sap: int = 0x10, server_sap: int = 0x01,
                 ) -> tuple[ClientEndpoint, ServerEndpoint]:
    """A pair after the handshake and one exchange: client tx/rx 3/3 PDUs, server rx 3, tx 1
    (the server does not count the handshake answers it sends)."""
    cch = SecureChannel(role=Role.NNAP, local_id=NNAP, peer_id=NID, psk=PSK)
    sch = SecureChannel(role=Role.LNAP, local_id=NID, peer_id=NNAP, psk=PSK)
    c = ClientEndpoint(client_sap=client_sap, server_sap=server_sap, channel=cch, dest=DEST)
    s = ServerEndpoint(handler, channel=sch, dest=DEST)
    step = c.begin(b"\x00", now=0)
    while isinstance(step, Send):
        step = c.feed(s.on_message(("p",), step.data, confirmed=True, now=0), 0)
    handler.calls.clear()
    return c, s


def clone(ch: SecureChannel | None) -> SecureChannel:
    """A channel in the same transmit state (a restored snapshot resumes at the reservation
    ceiling; here at the next SeqNo itself)."""
    assert ch is not None and ch.next_tx_seq is not None
    snap = ch.snapshot()
    keys = tuple(KeySnapshot(k.role, k.key_id, k.key, slot=k.slot, ceiling=ch.next_tx_seq) if k.role == "uc-tx"
                 else k for k in snap.keys)
    return SecureChannel.from_snapshot(ChannelSnapshot(**{**{f: getattr(snap, f) for f in ChannelSnapshot.__slots__},
                                                        "keys": keys}))


def test_unprotected_vector_bytes_both_ways() -> None:
    v = VECTORS["get_request_unsegmented"]
    payload = bytes.fromhex(v["payload"])
    h = Handler(b"\xc4\x01\xc1\x00")
    c = ClientEndpoint(client_sap=v["src_sap"], server_sap=v["dst_sap"])
    s = ServerEndpoint(h)
    step = c.begin(payload, now=0)
    assert step == Send(CODE + bytes.fromhex(v["hex"]), True)
    reply = s.on_message(("p",), step.data, confirmed=True, now=0)
    assert h.calls == [payload]
    assert reply == CODE + encode_pdu(AdaptationPdu(0, v["src_sap"], v["dst_sap"], h.answer))
    assert c.feed(reply, 0) == Done(h.answer)
    assert (c.counters.tx_pdus, c.counters.rx_pdus, s.counters.rx_pdus, s.counters.tx_pdus) == (1, 1, 1, 1)
    assert not c.busy and s.in_communication and s.last_rx == 0


@settings(max_examples=40)
@given(
    exchanges=st.lists(st.tuples(st.binary(min_size=1, max_size=P.AL_MAX_SEGMENT_DEFAULT), st.binary(max_size=236)),
                       min_size=1, max_size=5),
    saps=st.tuples(st.integers(0, 255), st.integers(0, 255)),
)
def test_protected_whole_pdus_are_the_codec_and_protect_bytes(exchanges, saps) -> None:
    h = Handler()
    c, s = commissioned(h, *saps)
    cref, sref = clone(c.channel), clone(s.channel)  # the same transmit state, driven through the public API
    for request, response in exchanges:
        h.answer = response
        step = c.begin(request, now=1)
        hdr = header_bytes(AdaptationPdu(0, saps[1], saps[0], b""), protected=True)
        assert step == Send(CODE + hdr + cref.protect(request, header=hdr, dest=DEST, now=1), True)
        reply = s.on_message(("p",), step.data, confirmed=True, now=1)
        assert h.calls[-1] == request
        rhdr = header_bytes(AdaptationPdu(0, saps[0], saps[1], b""), protected=True)
        assert reply == CODE + rhdr + sref.protect(response, header=rhdr, dest=DEST, now=1)
        if response:
            assert c.feed(reply, 1) == Done(response)
        else:
            with pytest.raises(DlmsTimeout):
                c.feed(reply, 1)
        assert not c.busy
    n = len(exchanges)
    assert s.counters.rx_pdus == c.counters.rx_pdus == c.counters.tx_pdus == n + 3
    assert s.counters.tx_pdus == n + 1
    assert s.counters.security_drops == c.counters.security_drops == 0
    assert s.channel is not None and s.channel.counters.frames_ok == n + 1


def test_replayed_request_is_answered_with_a_sequence_error_once() -> None:
    h = Handler()
    c, s = commissioned(h)
    step = c.begin(b"\x05\x06", now=1)
    assert s.on_message(("p",), step.data, confirmed=True, now=1) is not None
    reply = s.on_message(("p",), step.data, confirmed=True, now=1)
    assert h.calls == [b"\x05\x06"]  # delivered once
    pdu = decode_pdu(reply[1:])
    assert pdu.type == P.AL_TYPE_ERROR and not pdu.protected and (pdu.dst_sap, pdu.src_sap) == (0x10, 0x01)
    assert isinstance(decode_message(pdu.payload), SequenceError)
    assert s.counters.security_drops == 1 and s.channel is not None and s.channel.counters.replays == 1
    # unconfirmed: dropped and counted, no answer
    assert s.on_message(("p",), step.data, confirmed=False, now=1) is None
    assert s.counters.security_drops == 2 and s.counters.rx_pdus == 6


def test_forged_request_counts_an_authentication_failure_and_changes_nothing() -> None:
    h = Handler()
    c, s = commissioned(h)
    step = c.begin(b"\x01\x02\x03", now=1)
    bad = step.data[:-1] + bytes((step.data[-1] ^ 0x80,))
    assert s.channel is not None
    before = s.channel.snapshot().keys
    reply = s.on_message(("p",), bad, confirmed=True, now=1)
    assert isinstance(decode_message(decode_pdu(reply[1:]).payload), AuthenticationFailure)
    assert s.channel.snapshot().keys == before and s.channel.counters.auth_failures == 1
    assert not h.calls and s.counters.security_drops == 1
    # the genuine frame (same SeqNo) is still accepted: the window did not move
    assert s.on_message(("p",), step.data, confirmed=True, now=1) is not None and h.calls == [b"\x01\x02\x03"]


def test_client_rejects_a_forged_or_replayed_response_and_is_idle_after() -> None:
    h = Handler()
    c, s = commissioned(h)
    step = c.begin(b"\x01", now=1)
    reply = s.on_message(("p",), step.data, confirmed=True, now=1)
    forged = reply[:-1] + bytes((reply[-1] ^ 1,))
    with pytest.raises(SecurityError, match="authentication"):
        c.feed(forged, 1)
    assert not c.busy and c.counters.security_drops == 1 and c.counters.rx_pdus == 4
    step = c.begin(b"\x02", now=2)
    reply2 = s.on_message(("p",), step.data, confirmed=True, now=2)
    assert c.feed(reply2, 2) == Done(b"\x02")
    step = c.begin(b"\x03", now=3)
    s.on_message(("p",), step.data, confirmed=True, now=3)
    with pytest.raises(SecurityError, match="replay"):
        c.feed(reply2, 3)  # an accepted response again: its SeqNo is consumed
    assert not c.busy and c.counters.security_drops == 2
    assert c.channel is not None and c.channel.counters.replays == 1 and c.channel.counters.auth_failures == 1


def test_client_response_for_another_sap_pair_or_unprotected() -> None:
    h = Handler()
    c, _ = commissioned(h)
    c.begin(b"\x01", now=1)
    other = CODE + encode_pdu(AdaptationPdu(0, 0x11, 0x01, b"\x09"))
    with pytest.raises(DecodeError):
        c.feed(other, 1)
    assert c.counters.unknown_sap == 1 and not c.busy
    c.begin(b"\x01", now=1)
    with pytest.raises(SecurityError, match="unprotected"):
        c.feed(CODE + encode_pdu(AdaptationPdu(0, 0x10, 0x01, b"\x09")), 1)
    assert c.counters.unprotected_refused == 1 and not c.busy


def test_unconfirmed_whole_pdu() -> None:
    h = Handler()
    c, s = commissioned(h)
    step = c.begin(b"\x0a", confirmed=False, now=1)
    assert isinstance(step, Send) and not step.confirmed and not c.busy
    assert s.on_message(("p",), step.data, confirmed=False, now=1) is None
    assert h.calls == [b"\x0a"] and s.counters.tx_pdus == 1


def test_whole_pdu_interrupts_a_reassembly_and_is_counted() -> None:
    h = Handler()
    c, s = commissioned(h)
    step = c.begin(bytes(450), now=1)  # 3 segments, only the first delivered
    s.on_message(("p",), step.data, confirmed=step.confirmed, now=1)
    assert s.reassembler.pending == 1
    c.abort()
    step = c.begin(b"\x07", now=1)
    assert c.feed(s.on_message(("p",), step.data, confirmed=True, now=1), 1) == Done(b"\x07")
    assert s.counters.reassembly_dropped == 1 and s.reassembler.pending == 0 and not s.reassembler.dropped


def test_unknown_sap_and_refused_unprotected_on_the_fast_path() -> None:
    h = Handler()
    s = ServerEndpoint(route=lambda srv, cli: h if srv == 1 else None,
                       channel=SecureChannel(role=Role.LNAP, local_id=NID, peer_id=NNAP, psk=PSK), dest=DEST)
    assert s.on_message(("p",), CODE + bytes((0x80, 2, 0x10)) + bytes(20), confirmed=True, now=0) is None
    assert s.counters.unknown_sap == 1
    reply = s.on_message(("p",), CODE + bytes((0x00, 1, 0x10, 1)), confirmed=True, now=0)
    assert isinstance(decode_message(decode_pdu(reply[1:]).payload), AuthenticationFailure)
    # a protected PDU before commissioning: dropped (not ready), counted, never delivered
    assert s.on_message(("p",), CODE + bytes((0x80, 1, 0x10)) + bytes(20), confirmed=False, now=0) is None
    assert s.counters.unprotected_refused == 1 and s.counters.security_drops == 1 and not h.calls
    assert s.counters.rx_pdus == 3
    plain = ServerEndpoint(h)
    assert plain.on_message(("p",), CODE + bytes((0x80, 1, 0x10, 1)), confirmed=True, now=0) is None
    assert plain.counters.unprotected_refused == 1


def test_failed_seal_leaves_the_client_idle() -> None:
    h = Handler()
    c, _ = commissioned(h)
    assert c.channel is not None
    snap = c.channel.snapshot()
    keys = tuple(KeySnapshot(k.role, k.key_id, k.key, slot=k.slot, ceiling=1 << 32) if k.role == "uc-tx" else k
                 for k in snap.keys)
    fields = {f: getattr(snap, f) for f in ChannelSnapshot.__slots__}
    c.channel = SecureChannel.from_snapshot(ChannelSnapshot(**{**fields, "keys": keys}))
    with pytest.raises(LocalProtocolError, match="exhausted"):
        c.begin(b"\x01", now=1)
    assert not c.busy and c.counters.tx_pdus == 3
    with pytest.raises(LocalProtocolError, match="exhausted"):
        c.begin(bytes(450), now=1)  # segmented: the general path
    assert not c.busy


@settings(max_examples=150)
@given(st.sampled_from([0x00, 0x80]), st.binary(min_size=2, max_size=60), st.booleans())
def test_server_fast_path_random_bytes_never_raise(ctrl: int, rest: bytes, confirmed: bool) -> None:
    h = Handler()
    _, s = commissioned(h)
    s.on_message(("p",), CODE + bytes((ctrl,)) + rest, confirmed=confirmed, now=1)
    assert s.counters.rx_pdus == 4


@settings(max_examples=150)
@given(st.sampled_from([0x00, 0x80]), st.binary(max_size=60))
def test_client_fast_path_random_replies_raise_only_our_errors(ctrl: int, rest: bytes) -> None:
    h = Handler()
    c, _ = commissioned(h)
    c.begin(b"\x01", now=1)
    try:
        step = c.feed(CODE + bytes((ctrl, 0x10, 0x01)) + rest, 1)
    except ProtocolError:
        assert not c.busy
    else:  # pragma: no cover - a forged tag verifying: 2^-64
        raise AssertionError(f"random reply accepted: {step!r}")
