"""The transaction layer's own replies reproduce the reference worked frames byte for byte
(``vectors/lon/frames.json`` = lontalk.md §1.7, each decoded by tshark 4.0.17)."""

from __future__ import annotations

import json

import pytest

from dlms14908.lon.events import MessageReceived, Service
from dlms14908.lon.frame import Apdu, Frame, GroupAddress, Tpdu, TpduType, decode_frame
from dlms14908.lon.transaction import LonConfig, LonTransactions, NodeDest


@pytest.fixture(scope="module")
def frames(vectors_dir) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    data = json.loads((vectors_dir / "lon" / "frames.json").read_text())
    return {v["name"]: bytes.fromhex(v["hex"].replace(" ", "")) for v in data["vectors"]}


def test_ack_to_e2_is_e3(frames: dict[str, bytes]) -> None:
    # E2: ACKD tn5 from 1/1 to 2/5, domain 42 -> the ACK of node 2/5 is E3
    node = LonTransactions(LonConfig(2, 5, domain=b"\x42"))
    (ev,) = node.receive_frame(frames["E2"], 0.0)
    assert isinstance(ev, MessageReceived) and ev.service is Service.ACKD and ev.trans_no == 5
    assert node.frames_to_send(0.0) == [frames["E3"]]


def test_response_to_e4_is_e5(frames: dict[str, bytes]) -> None:
    # E4: REQUEST tn7 (Read Memory) by Neuron ID 010203040506, domain-wide, from 1/1;
    # the node (3/9) answers 0x2D + 6 bytes: E5
    node = LonTransactions(LonConfig(3, 9, domain=b"\x42", neuron_id=bytes.fromhex("010203040506")))
    (ev,) = node.receive_frame(frames["E4"], 0.0)
    assert isinstance(ev, MessageReceived) and ev.service is Service.REQUEST and ev.handle is not None
    node.respond(ev.handle, bytes.fromhex("2d010203040506"), now=0.0)
    assert node.frames_to_send(0.0) == [frames["E5"]]


def test_group_member_ack_is_e7(frames: dict[str, bytes]) -> None:
    # ACKD tn3 from 1/1 to group 7 (domain 42); node 3/7 is member 2 -> its 2b ACK is E7
    msg = Frame.make(GroupAddress(1, 1, 7), Tpdu(TpduType.ACKD, 3, Apdu(0x10, b"\xaa")), b"\x42",
                     delta_backlog=3).encode()
    node = LonTransactions(LonConfig(3, 7, domain=b"\x42", groups={7: 2}))
    (ev,) = node.receive_frame(msg, 0.0)
    assert isinstance(ev, MessageReceived)
    assert node.frames_to_send(0.0) == [frames["E7"]]


def test_challenge_to_authenticated_e2_is_e9(frames: dict[str, bytes]) -> None:
    # E2 with the auth bit set; node 2/5 challenges with the random bytes 00 11 .. 77: E9
    f = decode_frame(frames["E2"])
    assert isinstance(f.pdu, Tpdu)
    authed = Frame(f.npdu.__class__(f.address, Tpdu(f.pdu.type, f.pdu.trans_no, f.pdu.apdu, auth=True), f.domain),
                   f.l2).encode()
    node = LonTransactions(LonConfig(2, 5, domain=b"\x42", auth_key=bytes(6)),
                           rng=lambda n: bytes.fromhex("0011223344556677")[:n])
    assert node.receive_frame(authed, 0.0) == []
    assert node.frames_to_send(0.0) == [frames["E9"]]
    # E14 is a REPLY to that challenge from 1/1: same header layout as ours (value illustrative)
    e14 = decode_frame(frames["E14"])
    assert e14.pdu.type.name == "REPLY" and e14.pdu.fmt == 2 and e14.pdu.trans_no == 5  # type: ignore[union-attr]


def test_sixth_ackd_transaction_is_e2(frames: dict[str, bytes]) -> None:
    # the sender side: 1/1, domain 42; numbers run 0, 1, 2, ... after a reset, so the 6th
    # ACKD transaction to 2/5 carries tn5: E2
    # (default 3 retries: the first try is on the primary path, as in E2; the receiver acks each)
    node = LonTransactions(LonConfig(1, 1, domain=b"\x42"))
    peer = LonTransactions(LonConfig(2, 5, domain=b"\x42"))
    apdu = decode_frame(frames["E2"]).apdu
    assert apdu is not None
    sent = []
    for i in range(6):
        node.request(NodeDest(2, 5), apdu, now=float(i))
        (f,) = node.frames_to_send(float(i))
        sent.append(f)
        peer.receive_frame(f, float(i))
        node.receive_frame(peer.frames_to_send(float(i))[0], float(i))
    assert [decode_frame(f).pdu.trans_no for f in sent] == [0, 1, 2, 3, 4, 5]  # type: ignore[union-attr]
    assert sent[5] == frames["E2"]
