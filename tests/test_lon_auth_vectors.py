"""The LonTalk authentication transform against public values (``vectors/lon/auth_transform.json``).

No LonTalk challenge/reply pair is published.  The OSGP legacy scheme uses the same round
function and key schedule (reference ``osgp-62056-8-8.md`` §6.1), and its OMA digest has a
public test vector (ttaubert/osgp-oma-digest), so the 96-bit path is checked against it and
the 48-bit path against the OSGP key-derivation output of a third-party implementation.
"""

from __future__ import annotations

import json

import pytest
from conftest import VECTORS
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.lon.frame import Apdu, AuthPdu, AuthType, Tpdu, TpduType, decode_frame
from dlms14908.lon.transaction import (
    LonConfig,
    LonTransactions,
    NodeDest,
    auth_transform,
    oma_address,
)

DOC = json.loads((VECTORS / "lon" / "auth_transform.json").read_text())
VECS = DOC["vectors"]


@pytest.mark.parametrize("v", VECS, ids=[v["name"] for v in VECS])
def test_public_vectors(v: dict) -> None:
    assert v["source"]
    if "message_reversed_from" in v:
        message = bytes.fromhex(v["message_reversed_from"])[::-1]
    else:
        message = bytes.fromhex(v["message"])
    got = auth_transform(bytes.fromhex(v["challenge"]), message, bytes.fromhex(v["key"]))
    assert got.hex() == v["expect"]


@given(st.binary(max_size=300), st.binary(min_size=12, max_size=12))
def test_oma_transform_equals_osgp_digest(message: bytes, key: bytes) -> None:
    """The separately written OSGP digest (osgp.legacy, forward over 144-byte blocks) and our
    transform (backwards, zero-filled passes) agree on every message."""
    from osgp.legacy import oma_digest

    assert auth_transform(bytes(8), message[::-1], key) == oma_digest(message, key)


def test_reply_on_the_wire_uses_the_public_transform() -> None:
    """A challenge answered by the transaction layer carries exactly transform(challenge,
    OMA block + APDU, key) - the function pinned by the vectors above."""
    key = bytes.fromhex("dfdfdfdfdfdfdfdfdfdfdfdf")
    a = LonTransactions(LonConfig(1, 1, domain=b"\x42", oma_key=key))
    a.request(NodeDest(2, 5), b"\x10\x77", auth=True, now=0.0)
    msg = decode_frame(a.frames_to_send(0.0)[0])
    assert isinstance(msg.pdu, Tpdu) and msg.pdu.type is TpduType.ACKD and msg.pdu.auth
    b = LonTransactions(LonConfig(2, 5, domain=b"\x42", oma_key=key, oma=True), rng=bytes)
    assert b.receive_frame(msg.encode(), 0.1) == []
    (chal,) = b.frames_to_send(0.1)
    cp = decode_frame(chal).pdu
    assert isinstance(cp, AuthPdu) and cp.type is AuthType.CHALLENGE_OMA and cp.value == bytes(8)
    a.receive_frame(chal, 0.2)
    rp = decode_frame(a.frames_to_send(0.2)[0]).pdu
    assert isinstance(rp, AuthPdu) and rp.type is AuthType.REPLY_OMA
    block = oma_address(domain=b"\x42", subnet=2, node=5)
    assert block == bytes.fromhex("420000000000" "01" "0205")
    # with a zero challenge the reply is the OSGP digest of the reversed (block + APDU)
    from osgp.legacy import oma_digest

    assert rp.value == oma_digest((block + Apdu(0x10, b"\x77").encode())[::-1], key)


def test_authenticated_broadcast_oma_block_is_all_ff() -> None:
    """lon-stack-ex getOmaDestData fills nothing for a broadcast: the OMA block stays 9 x 0xFF."""
    from dlms14908.lon.crc import append_crc
    from dlms14908.lon.events import MessageReceived
    from dlms14908.lon.frame import BroadcastAddress, Frame, SubnetNodeAddress

    assert oma_address(broadcast=True) == b"\xff" * 9
    key = bytes(range(12))
    b = LonTransactions(LonConfig(2, 5, domain=b"\x42", oma_key=key, oma=True), rng=lambda n: b"\x5a" * n)
    apdu = Apdu(0x10, b"\x01")
    msg = Frame.make(BroadcastAddress(1, 1, 0), Tpdu(TpduType.ACKD, 3, apdu, auth=True), b"\x42")
    assert b.receive_frame(msg.encode(), 0.0) == []
    (chal,) = b.frames_to_send(0.0)
    cf = decode_frame(chal)
    assert isinstance(cf.pdu, AuthPdu) and cf.pdu.fmt == 0 and cf.address == SubnetNodeAddress(2, 5, 1, 1)
    value = auth_transform(cf.pdu.value, b"\xff" * 9 + apdu.encode(), key)
    reply = Frame.make(SubnetNodeAddress(1, 1, 2, 5), AuthPdu(AuthType.REPLY_OMA, 3, 0, value), b"\x42")
    (m,) = b.receive_frame(append_crc(reply.encode(crc=False)), 0.1)
    assert isinstance(m, MessageReceived) and m.authenticated and m.apdu == apdu


def test_authenticated_request_challenge_reply_response_and_retry_not_rechallenged() -> None:
    from dlms14908.lon.events import MessageCompleted, MessageReceived, ResponseReceived, Service
    from dlms14908.lon.frame import Spdu, SpduType

    key = bytes.fromhex("5791bc23f201")
    a = LonTransactions(LonConfig(1, 1, domain=b"\x42", auth_key=key))
    b = LonTransactions(LonConfig(2, 5, domain=b"\x42", auth_key=key), rng=lambda n: bytes(range(n)))
    tid = a.request(NodeDest(2, 5), b"\x6d\x01\x00\x00\x06", service=Service.REQUEST, auth=True, now=0.0)
    (req,) = a.frames_to_send(0.0)
    assert decode_frame(req).pdu == Spdu(SpduType.REQUEST, 0, Apdu(0x6D, b"\x01\x00\x00\x06"), auth=True)
    assert b.receive_frame(req, 0.1) == []
    (chal,) = b.frames_to_send(0.1)
    cp = decode_frame(chal).pdu
    assert isinstance(cp, AuthPdu) and cp.type is AuthType.CHALLENGE and cp.value == bytes(range(8))
    a.receive_frame(chal, 0.2)
    (reply,) = a.frames_to_send(0.2)
    rp = decode_frame(reply).pdu
    assert isinstance(rp, AuthPdu) and rp.value == auth_transform(bytes(range(8)), b"\x6d\x01\x00\x00\x06", key)
    (m,) = b.receive_frame(reply, 0.3)
    assert isinstance(m, MessageReceived) and m.authenticated and m.handle is not None
    b.respond(m.handle, b"\x2d" + bytes(6), now=0.3)
    (resp,) = b.frames_to_send(0.3)
    assert b.receive_frame(req, 0.4) == [] and b.frames_to_send(0.4) == [resp]  # retry: stored response
    ev = a.receive_frame(resp, 0.5)
    assert [type(e) for e in ev] == [ResponseReceived, MessageCompleted]
    assert ev[1] == MessageCompleted(tid, Service.REQUEST, 1)
