"""osgp.channel: the Annex D secure channel, both roles (design choice, docs/wire-format.md §4)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import profile as P
from dlms14908.errors import LocalProtocolError
from osgp import channel as C
from osgp.channel import (
    BroadcastSender,
    ChannelConfig,
    ChannelEstablished,
    ChannelFailed,
    ChannelState,
    DataReceived,
    DropReason,
    FrameDropped,
    HandshakeFailed,
    KeyActivated,
    KeyInstalled,
    KeyKind,
    KeyUpdateConfirmed,
    OmaKeyReceived,
    PeerErrorReported,
    Role,
    SecureChannel,
    SendError,
    SendHandshake,
    SendProtected,
)
from osgp.drbg import CtrDrbg
from osgp.messages import (
    AuthenticationFailure,
    ChallengeRequest,
    ChallengeResponse,
    SequenceError,
    decode_message,
)

NNAP_ID = bytes.fromhex("4e4e41500001")
METER_A = bytes.fromhex("000102030405")
METER_B = bytes.fromhex("00010203040a")
PSK_A = bytes.fromhex("00112233445566778899aabbccddeeff")
PSK_B = bytes.fromhex("ffeeddccbbaa99887766554433221100")
HDR = bytes((0x80 | P.AL_TYPE_XDLMS, 0x01, 0x10))
MGMT_HDR = bytes((0x80 | P.AL_TYPE_SECURITY, 0x01, 0x01))
DEST_A = bytes.fromhex("010105")  # domain-free subnet/node bytes, opaque to the channel
DEST_B = bytes.fromhex("010106")


def drbg(tag: bytes) -> CtrDrbg:
    return CtrDrbg(tag, entropy=bytes)


def make(role, local, peer, psk, cfg=None, tag=None):
    return SecureChannel(
        role=role,
        local_id=local,
        peer_id=peer,
        psk=psk,
        config=cfg,
        random=drbg(tag or (role.value.encode() + local)),
    )


def only(events, cls):
    found = [e for e in events if isinstance(e, cls)]
    assert len(found) == 1, events
    return found[0]


def handshake(nn, ln, now=0.0):
    """Run the four messages; returns the transcript."""
    m1 = nn.start_handshake(now)
    m2 = only(ln.receive_message(m1, now), SendHandshake).data
    m3 = only(nn.receive_message(m2, now), SendHandshake).data
    ev = ln.receive_message(m3, now)
    m4 = only(ev, SendHandshake).data
    only(ev, ChannelEstablished)
    only(nn.receive_message(m4, now), ChannelEstablished)
    return [m1, m2, m3, m4]


def pair(cfg=None, meter=METER_A, psk=PSK_A):
    nn = make(Role.NNAP, NNAP_ID, meter, psk, cfg)
    ln = make(Role.LNAP, meter, NNAP_ID, psk, cfg)
    return nn, ln, handshake(nn, ln)


def send(src, dst, data, now=1.0, hdr=HDR, dest=DEST_A, **kw):
    body = src.protect(data, header=hdr, dest=dest, now=now)
    return body, dst.receive_protected(body, header=hdr, dest=dest, now=now, **kw)


# ----------------------------------------------------------------------------- independent oracle
def _cmac(key, data):
    c = CMAC(AES(key))
    c.update(data)
    return c.finalize()


def _gkdf(key, z, n):
    return b"".join(_cmac(key, i.to_bytes(2, "big") + z) for i in range(1, (n + 15) // 16 + 1))[:n]


def test_state_table_complete():
    for role in Role:
        rows = C._TRANSITIONS[role]
        assert set(rows) == set(ChannelState)
        assert rows[ChannelState.FAILED] == {}  # sticky
        for row in rows.values():
            for target in row.values():
                assert isinstance(target, ChannelState)
        assert all(
            rows[s][C._In.FAILURE_LIMIT] is ChannelState.FAILED
            for s in ChannelState
            if s is not ChannelState.FAILED
        )


def test_handshake_keys_match_an_independent_gpsk_schedule():
    nn, ln, (m1, m2, m3, m4) = pair()
    assert nn.state is ln.state is ChannelState.COMMISSIONED
    req, resp = decode_message(m1), decode_message(m2)
    assert isinstance(req, ChallengeRequest) and isinstance(resp, ChallengeResponse)
    # Reference §2.4 computed with cryptography's CMAC directly (not osgp.primitives).
    inp = resp.rand_c + METER_A + req.rand_s + NNAP_ID
    mk = _gkdf(PSK_A, b"\x00\x10" + PSK_A + bytes.fromhex("000000000100") + inp, 16)
    sched = _gkdf(mk, inp, 160)
    sk, pk = sched[128:144], sched[144:160]
    assert resp.mac == _cmac(sk, m2[:-16])
    assert m3[-16:] == _cmac(sk, m3[:-16])
    assert m4[-16:] == _cmac(sk, m4[:2] + resp.rand_c + req.rand_s + METER_A + NNAP_ID)
    pd = m3[1 + 16 + 16 + 6 + 6 : -16]
    nonce = NNAP_ID + bytes(6) + b"\x01"
    assert AESCCM(pk, tag_length=8).decrypt(nonce, pd, m3[1:45]) == b"\x00\x00\x00\x01\x00"
    # Both sides hold PK as the unicast key; a data frame opens with AESCCM under the documented nonce/AAD.
    body, ev = send(nn, ln, b"hello")
    assert only(ev, DataReceived) == DataReceived(b"hello", 0, 1, False)
    nonce = NNAP_ID + body[1:5] + bytes((body[0], HDR[0], 0))
    assert AESCCM(pk, tag_length=8).decrypt(nonce, body[5:], HDR + body[:5] + DEST_A) == b"hello"


def test_both_directions_and_roles():
    nn, ln, _ = pair()
    for i in range(1, 6):
        _, ev = send(ln, nn, b"up%d" % i)
        assert only(ev, DataReceived).seq == i
        _, ev = send(nn, ln, b"down%d" % i)
        assert only(ev, DataReceived).data == b"down%d" % i
    assert nn.counters.frames_ok == ln.counters.frames_ok == 5


def test_wrong_psk():
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_A)
    ln = make(Role.LNAP, METER_A, NNAP_ID, PSK_B)
    m2 = only(ln.receive_message(nn.start_handshake(0.0), 0.0), SendHandshake).data
    ev = nn.receive_message(m2, 0.0)
    assert not any(isinstance(e, SendHandshake) for e in ev)
    only(ev, HandshakeFailed)
    assert only(ev, FrameDropped).reason is DropReason.AUTH
    assert nn.state is ChannelState.CHALLENGED
    assert nn.counters.auth_failures == 1 and nn.counters.handshake_failures == 1
    with pytest.raises(LocalProtocolError):
        nn.protect(b"x", header=HDR, dest=DEST_A, now=0.0)


def test_wrong_psk_on_the_meter_side():
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_B)
    ln = make(Role.LNAP, METER_A, NNAP_ID, PSK_A)
    # A NNAP with the wrong PSK cannot even verify the meter's answer; forge its CommissionRequest
    # from a correct NNAP run instead: the meter must reject a CommissionRequest MAC'd under another key.
    good = make(Role.NNAP, NNAP_ID, METER_A, PSK_A)
    m1 = good.start_handshake(0.0)
    m2 = only(ln.receive_message(m1, 0.0), SendHandshake).data
    m3 = bytearray(only(good.receive_message(m2, 0.0), SendHandshake).data)
    m3[-1] ^= 1
    ev = ln.receive_message(bytes(m3), 0.0)
    only(ev, HandshakeFailed)
    assert ln.state is ChannelState.CHALLENGED and ln.counters.auth_failures == 1
    assert nn.state is ChannelState.NONE


def test_replayed_handshake_messages_are_ignored():
    nn, ln, (_, m2, m3, m4) = pair()
    # Keep traffic going, then replay the whole old handshake at both ends.
    send(nn, ln, b"a")
    before = ln.snapshot()
    ev = ln.receive_message(m3, 5.0)  # retransmitted CommissionRequest: cached answer, no reset
    assert only(ev, SendHandshake).data == m4 and not any(
        isinstance(e, ChannelEstablished) for e in ev
    )
    assert ln.snapshot().keys == before.keys
    assert only(nn.receive_message(m4, 5.0), FrameDropped).reason is DropReason.UNEXPECTED
    assert only(nn.receive_message(m2, 5.0), FrameDropped).reason is DropReason.UNEXPECTED
    # A new handshake: the old ChallengeResponse does not answer the new challenge.
    n1 = nn.start_handshake(6.0)
    assert only(nn.receive_message(m2, 6.0), FrameDropped).reason is DropReason.UNEXPECTED
    n2 = only(ln.receive_message(n1, 6.0), SendHandshake).data
    # The old CommissionRequest does not commission the new exchange.
    assert (
        only(ln.receive_message(m3, 6.0), SendHandshake).data == m4
    )  # still only the cached answer
    n3 = only(nn.receive_message(n2, 6.0), SendHandshake).data
    assert n3 != m3
    ev = ln.receive_message(n3, 6.0)
    only(ev, ChannelEstablished)
    only(nn.receive_message(only(ev, SendHandshake).data, 6.0), ChannelEstablished)
    # The re-keyed channel works; frames under the old session key are dead.
    old = nn.snapshot()
    assert only(send(nn, ln, b"new")[1], DataReceived).data == b"new"
    assert old.state is ChannelState.COMMISSIONED


def test_unauthenticated_challenge_does_not_break_a_running_channel():
    nn, ln, _ = pair()
    attacker = make(Role.NNAP, NNAP_ID, METER_A, PSK_B, tag=b"evil")
    ev = ln.receive_message(attacker.start_handshake(1.0), 1.0)
    only(ev, SendHandshake)
    assert ln.state is ChannelState.COMMISSIONED
    assert only(send(nn, ln, b"still")[1], DataReceived).data == b"still"


def test_replay_and_reorder_inside_and_beyond_window():
    cfg = ChannelConfig(unicast_window=8, error_burst=100)
    nn, ln, _ = pair(cfg)
    frames = [nn.protect(b"%d" % i, header=HDR, dest=DEST_A, now=1.0) for i in range(1, 21)]

    def rx(i):
        return ln.receive_protected(frames[i - 1], header=HDR, dest=DEST_A, now=1.0)

    assert only(rx(10), DataReceived).seq == 10
    # Replay of the same frame.
    ev = rx(10)
    assert only(ev, FrameDropped).reason is DropReason.REPLAY
    err = decode_message(only(ev, SendError).data)
    assert err == SequenceError(key_id=0, expected_min_seq=11)
    # Reordered inside the window (10 - 8 < seq < 10): accepted once, each.
    for i in (9, 5, 3):
        assert only(rx(i), DataReceived).seq == i
        assert only(rx(i), FrameDropped).reason is DropReason.REPLAY
    # Beyond the window (10 - seq >= 8).
    for i in (2, 1):
        assert only(rx(i), FrameDropped).reason is DropReason.REPLAY
    # Jump ahead, then older ones fall out.
    assert only(rx(20), DataReceived).seq == 20
    assert only(rx(12), FrameDropped).reason is DropReason.REPLAY
    assert only(rx(13), DataReceived).seq == 13
    assert ln.counters.replays == 7


def test_strict_unicast_window_of_one():
    nn, ln, _ = pair(ChannelConfig(unicast_window=1))
    f1, f2 = (nn.protect(b"x", header=HDR, dest=DEST_A, now=1.0) for _ in range(2))
    assert only(ln.receive_protected(f2, header=HDR, dest=DEST_A, now=1.0), DataReceived)
    assert (
        only(ln.receive_protected(f1, header=HDR, dest=DEST_A, now=1.0), FrameDropped).reason
        is DropReason.REPLAY
    )


@pytest.mark.parametrize("where", ["body", "header", "dest"])
def test_forged_frames_are_counted_and_dropped_whole(where):
    nn, ln, _ = pair(ChannelConfig(max_auth_failures=1000, error_burst=0))
    body = nn.protect(b"pay 100", header=HDR, dest=DEST_A, now=1.0)
    size = {"body": len(body), "header": len(HDR), "dest": len(DEST_A)}[where]
    for pos in range(size):
        for bit in (0x01, 0x80):
            b, h, d = bytearray(body), bytearray(HDR), bytearray(DEST_A)
            {"body": b, "header": h, "dest": d}[where][pos] ^= bit
            ev = ln.receive_protected(bytes(b), header=bytes(h), dest=bytes(d), now=1.0)
            assert len(ev) == 1 and isinstance(ev[0], FrameDropped), (where, pos, ev)
            assert not any(isinstance(e, DataReceived) for e in ev)
    # Nothing was half-processed: the genuine frame (seq 1) is still fresh.
    assert (
        only(ln.receive_protected(body, header=HDR, dest=DEST_A, now=1.0), DataReceived).data
        == b"pay 100"
    )
    c = ln.counters
    assert c.auth_failures + c.unknown_key + c.replays == 2 * size


def test_retargeted_frames():
    nn_a, ln_a, _ = pair(meter=METER_A, psk=PSK_A)
    _, ln_b, _ = pair(meter=METER_B, psk=PSK_B)
    body = nn_a.protect(b"open valve", header=HDR, dest=DEST_A, now=1.0)
    # Delivered to meter B (same KeyID 0, same SeqNo range): B's key does not open it.
    ev = ln_b.receive_protected(body, header=HDR, dest=DEST_B, now=1.0)
    assert only(ev, FrameDropped).reason is DropReason.AUTH
    ev = ln_b.receive_protected(body, header=HDR, dest=DEST_A, now=1.0)
    assert only(ev, FrameDropped).reason is DropReason.AUTH
    # Same meter, but the LonTalk destination rewritten: the AAD binds the address.
    ev = ln_a.receive_protected(body, header=HDR, dest=DEST_B, now=1.0)
    assert only(ev, FrameDropped).reason is DropReason.AUTH
    # And with same keys on both meters (a shared PSK), the Neuron IDs still separate them:
    _, ln_c, _ = pair(meter=METER_B, psk=PSK_A)
    body = nn_a.protect(b"x", header=HDR, dest=DEST_A, now=1.0)
    assert (
        only(ln_c.receive_protected(body, header=HDR, dest=DEST_A, now=1.0), FrameDropped).reason
        is DropReason.AUTH
    )
    assert (
        only(ln_a.receive_protected(body, header=HDR, dest=DEST_A, now=1.0), DataReceived).data
        == b"x"
    )


def test_failed_after_n_failures_is_sticky():
    nn, ln, _ = pair(ChannelConfig(max_auth_failures=4, error_burst=0))
    good = nn.protect(b"ok", header=HDR, dest=DEST_A, now=1.0)
    forged = bytearray(good)
    forged[-1] ^= 0xFF
    for _i in range(3):
        assert (
            ln.receive_protected(bytes(forged), header=HDR, dest=DEST_A, now=1.0)[0].reason
            is DropReason.AUTH
        )
    assert ln.state is ChannelState.COMMISSIONED
    # A verified frame resets the consecutive count ...
    assert only(ln.receive_protected(good, header=HDR, dest=DEST_A, now=1.0), DataReceived)
    forged = bytearray(nn.protect(b"ok2", header=HDR, dest=DEST_A, now=1.0))  # fresh SeqNo 2
    forged[-1] ^= 0xFF
    for _i in range(3):
        assert (
            ln.receive_protected(bytes(forged), header=HDR, dest=DEST_A, now=1.0)[0].reason
            is DropReason.AUTH
        )
    assert ln.state is ChannelState.COMMISSIONED
    # ... the fourth consecutive failure ends the context.
    ev = ln.receive_protected(bytes(forged), header=HDR, dest=DEST_A, now=1.0)
    only(ev, ChannelFailed)
    assert ln.state is ChannelState.FAILED
    # Sticky: genuine frames, new challenges and local calls are all refused; keys are gone.
    later = nn.protect(b"late", header=HDR, dest=DEST_A, now=2.0)
    assert (
        only(ln.receive_protected(later, header=HDR, dest=DEST_A, now=2.0), FrameDropped).reason
        is DropReason.NOT_READY
    )
    assert (
        only(ln.receive_message(nn.start_handshake(3.0), 3.0), FrameDropped).reason
        is DropReason.NOT_READY
    )
    with pytest.raises(LocalProtocolError):
        ln.protect(b"x", header=HDR, dest=DEST_A, now=3.0)
    assert ln.snapshot().keys == () and ln.counters.auth_failures == 7


def test_failed_after_n_handshake_failures_nnap():
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_A, ChannelConfig(max_auth_failures=3))
    for i in range(3):
        bad = make(Role.LNAP, METER_A, NNAP_ID, PSK_B, tag=b"x%d" % i)
        m2 = only(bad.receive_message(nn.start_handshake(float(i)), float(i)), SendHandshake).data
        ev = nn.receive_message(m2, float(i))
    only(ev, ChannelFailed)
    assert nn.state is ChannelState.FAILED
    with pytest.raises(LocalProtocolError):
        nn.start_handshake(10.0)


def test_error_messages_are_rate_limited_and_carry_no_plaintext():
    cfg = ChannelConfig(error_burst=2, error_interval=10.0, max_auth_failures=10**6)
    nn, ln, _ = pair(cfg)
    secret = b"meter reading 123456"
    body = bytearray(nn.protect(secret, header=HDR, dest=DEST_A, now=0.0))
    body[-1] ^= 1
    sent = []
    for i in range(50):
        ev = ln.receive_protected(bytes(body), header=HDR, dest=DEST_A, now=1.0 + i * 0.01)
        sent += [e.data for e in ev if isinstance(e, SendError)]
    assert len(sent) == 2
    assert ln.counters.errors_suppressed == 48 and ln.counters.errors_sent == 2
    for data in sent:
        assert decode_message(data) == AuthenticationFailure(key_id=0, seq=1)
        assert secret not in data and len(data) == 6
    # One token per interval comes back, never more than the burst.
    ev = ln.receive_protected(bytes(body), header=HDR, dest=DEST_A, now=11.5)
    assert len([e for e in ev if isinstance(e, SendError)]) == 1
    ev = ln.receive_protected(bytes(body), header=HDR, dest=DEST_A, now=11.6)
    assert not [e for e in ev if isinstance(e, SendError)]
    ev = [
        ln.receive_protected(bytes(body), header=HDR, dest=DEST_A, now=1000.0 + i) for i in range(5)
    ]
    assert sum(isinstance(e, SendError) for evs in ev for e in evs) == 2
    # Replays share the same bucket (SequenceError).
    assert ln.counters.errors_sent == 5


def test_peer_error_messages_are_informational():
    nn, ln, _ = pair()
    ev = nn.receive_message(AuthenticationFailure(key_id=0, seq=9).encode(), 1.0)
    assert ev == [PeerErrorReported("authentication-failure", 0, 9)]
    ev = nn.receive_message(SequenceError(key_id=0, expected_min_seq=4).encode(), 1.0)
    assert ev == [PeerErrorReported("sequence-error", 0, 4)]
    assert nn.state is ChannelState.COMMISSIONED and nn.counters.peer_errors == 2
    assert only(send(nn, ln, b"x")[1], DataReceived)


def _pump_mgmt(src, dst, events, now=1.0):
    """Send each SendProtected of ``events`` from ``src`` to ``dst``; return dst's events."""
    out = []
    for e in events:
        if isinstance(e, SendProtected):
            body = src.protect(e.data, header=MGMT_HDR, dest=DEST_A, now=now)
            out += dst.receive_protected(
                body, header=MGMT_HDR, dest=DEST_A, now=now, management=True
            )
    return out


def test_unicast_key_update_mid_traffic_with_overlap():
    nn, ln, _ = pair()
    for i in range(3):
        send(nn, ln, b"pre%d" % i)
        send(ln, nn, b"up%d" % i)
    in_flight_old = nn.protect(b"late old-key frame", header=HDR, dest=DEST_A, now=2.0)
    up_old = ln.protect(b"late old uplink", header=HDR, dest=DEST_A, now=2.0)
    ev_l = _pump_mgmt(nn, ln, nn.renew_unicast_key(2.0))
    assert only(ev_l, KeyInstalled) == KeyInstalled(1, KeyKind.UNICAST)
    ev_n = _pump_mgmt(ln, nn, ev_l)
    assert only(ev_n, KeyUpdateConfirmed) == KeyUpdateConfirmed(1, KeyKind.UNICAST, True)
    assert nn.tx_key_id == 1 and ln.tx_key_id == 0  # the LNAP switches when it sees the new key
    # The old in-flight downlink frame is still accepted during the overlap.
    assert (
        only(
            ln.receive_protected(in_flight_old, header=HDR, dest=DEST_A, now=3.0), DataReceived
        ).key_id
        == 0
    )
    # First frame under the new key: old key retired, LNAP switches its transmit key.
    body, ev = send(nn, ln, b"new key", now=3.0)
    assert body[0] == 1 and int.from_bytes(body[1:5], "big") == 1
    assert only(ev, DataReceived).data == b"new key"
    assert only(ev, KeyActivated) == KeyActivated(1, KeyKind.UNICAST)
    assert ln.tx_key_id == 1 and ln.rx_key_ids == (1,)
    # After the overlap an old-key frame is rejected.
    late = ln.receive_protected(in_flight_old, header=HDR, dest=DEST_A, now=4.0)
    assert only(late, FrameDropped).reason is DropReason.UNKNOWN_KEY
    # Uplink: the NNAP still takes the old-key uplink until the LNAP's first new-key frame.
    assert (
        only(nn.receive_protected(up_old, header=HDR, dest=DEST_A, now=4.0), DataReceived).key_id
        == 0
    )
    body, ev = send(ln, nn, b"up new", now=4.0)
    assert body[0] == 1 and only(ev, KeyActivated)
    assert (
        only(nn.receive_protected(up_old, header=HDR, dest=DEST_A, now=4.0), FrameDropped).reason
        is DropReason.UNKNOWN_KEY
    )
    assert nn.rx_key_ids == (1,)


def test_key_update_wrapped_with_rfc3394_under_kek():
    nn, ln, _ = pair()
    ev = nn.renew_unicast_key(1.0)
    udk = decode_message(only(ev, SendProtected).data)
    kek = _gkdf(PSK_A, b"OSGP-KEK\x00" + METER_A, 16)  # independent of osgp.keys
    new_key = aes_key_unwrap(kek, udk.wrapped_key)
    assert len(new_key) == 16 and udk.flags == 0
    _pump_mgmt(ln, nn, _pump_mgmt(nn, ln, ev))
    body = nn.protect(b"z", header=HDR, dest=DEST_A, now=2.0)
    nonce = NNAP_ID + body[1:5] + bytes((body[0], HDR[0], 0))
    assert AESCCM(new_key, tag_length=8).decrypt(nonce, body[5:], HDR + body[:5] + DEST_A) == b"z"


def test_broadcast_key_distribution_and_rollover():
    nn_a, ln_a, _ = pair(meter=METER_A, psk=PSK_A)
    nn_b, ln_b, _ = pair(meter=METER_B, psk=PSK_B)
    bs = BroadcastSender(NNAP_ID, random=drbg(b"bc"))
    bs.new_key()
    for nn, ln in ((nn_a, ln_a), (nn_b, ln_b)):
        ev = _pump_mgmt(nn, ln, nn.send_broadcast_key(bs, 1.0))
        assert only(ev, KeyInstalled) == KeyInstalled(0, KeyKind.BROADCAST)
        assert only(_pump_mgmt(ln, nn, ev), KeyUpdateConfirmed).accepted
    bs.activate()
    BHDR, BDEST = bytes((0x80, 0x01, 0x10)), b"\x00"
    frames = [bs.protect(b"tariff %d" % i, header=BHDR, dest=BDEST, now=2.0) for i in range(4)]
    for ln in (ln_a, ln_b):
        # Repeaters reorder: 3, 1, 2 inside the window; duplicates dropped without error messages.
        for i in (3, 1, 2, 0):
            assert only(
                ln.receive_protected(frames[i], header=BHDR, dest=BDEST, now=2.0, broadcast=True),
                DataReceived,
            ).broadcast
        ev = ln.receive_protected(frames[1], header=BHDR, dest=BDEST, now=2.0, broadcast=True)
        assert ev == [FrameDropped(DropReason.REPLAY, 0, 2)]
        # A broadcast frame is not accepted as unicast (different key table and AAD role).
        assert only(ln.receive_protected(frames[0], header=BHDR, dest=BDEST, now=2.0), FrameDropped)
    # Rollover: new key distributed, old stays valid until the first new-key frame.
    bs.new_key()
    for nn, ln in ((nn_a, ln_a), (nn_b, ln_b)):
        _pump_mgmt(ln, nn, _pump_mgmt(nn, ln, nn.send_broadcast_key(bs, 3.0)))
    old_late = frames[-1]
    old_fresh = bs.protect(b"old", header=BHDR, dest=BDEST, now=3.0)
    bs.activate()
    new = bs.protect(b"new", header=BHDR, dest=BDEST, now=3.0)
    assert new[0] == 1
    assert (
        only(
            ln_a.receive_protected(old_fresh, header=BHDR, dest=BDEST, now=3.0, broadcast=True),
            DataReceived,
        ).key_id
        == 0
    )
    ev = ln_a.receive_protected(new, header=BHDR, dest=BDEST, now=3.0, broadcast=True)
    assert only(ev, KeyActivated) == KeyActivated(1, KeyKind.BROADCAST)
    assert (
        only(
            ln_a.receive_protected(old_fresh, header=BHDR, dest=BDEST, now=3.0, broadcast=True),
            FrameDropped,
        ).reason
        is DropReason.UNKNOWN_KEY
    )
    # Broadcast failures never produce error messages.
    bad = bytearray(new)
    bad[-1] ^= 1
    ev = ln_b.receive_protected(bytes(bad), header=BHDR, dest=BDEST, now=3.0, broadcast=True)
    assert ev == [FrameDropped(DropReason.AUTH, 1, 1)]
    assert old_late


def test_oma_key_update():
    nn, ln, _ = pair()
    oma = bytes.fromhex("0102030405060708090a0b0c")
    ev = _pump_mgmt(nn, ln, nn.send_oma_key(oma, 7, 1.0))
    got = only(ev, OmaKeyReceived)
    assert got.key == oma and got.key_id == 7 and oma.hex() not in repr(got)
    assert only(_pump_mgmt(ln, nn, ev), KeyUpdateConfirmed) == KeyUpdateConfirmed(
        7, KeyKind.OMA, True
    )


def test_management_messages_must_be_protected_and_role_checked():
    nn, ln, _ = pair()
    udk = decode_message(only(nn.renew_unicast_key(1.0), SendProtected).data)
    # Unprotected UpdateDomainKeys is ignored.
    assert only(ln.receive_message(udk.encode(), 1.0), FrameDropped).reason is DropReason.UNEXPECTED
    # A ChallengeRequest sent to the NNAP is not for its role.
    assert (
        only(
            nn.receive_message(ChallengeRequest(id_s=NNAP_ID, rand_s=bytes(16)).encode(), 1.0),
            FrameDropped,
        ).reason
        is DropReason.UNEXPECTED
    )
    # Local misuse raises.
    with pytest.raises(LocalProtocolError):
        ln.renew_unicast_key(1.0)
    with pytest.raises(LocalProtocolError):
        ln.start_handshake(1.0)
    with pytest.raises(LocalProtocolError):
        BroadcastSender(NNAP_ID).protect(b"x", header=HDR, dest=b"", now=0.0)


def test_handshake_timeout():
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_A, ChannelConfig(handshake_timeout=5.0))
    ln = make(Role.LNAP, METER_A, NNAP_ID, PSK_A)
    m2 = only(ln.receive_message(nn.start_handshake(0.0), 0.0), SendHandshake).data
    assert only(nn.receive_message(m2, 6.0), FrameDropped).reason is DropReason.UNEXPECTED
    assert nn.state is ChannelState.CHALLENGED


def test_lost_commission_response_is_recovered_by_retransmission():
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_A)
    ln = make(Role.LNAP, METER_A, NNAP_ID, PSK_A)
    m1 = nn.start_handshake(0.0)
    m2 = only(ln.receive_message(m1, 0.0), SendHandshake).data
    m2_again = only(
        ln.receive_message(m1, 0.1), SendHandshake
    ).data  # duplicate challenge: new RAND_C
    m3 = only(nn.receive_message(m2_again, 0.2), SendHandshake).data
    assert only(nn.receive_message(m2_again, 0.3), SendHandshake).data == m3  # resend, same bytes
    assert only(nn.receive_message(m2, 0.3), FrameDropped)  # superseded answer
    ev = ln.receive_message(m3, 0.4)
    lost = only(ev, SendHandshake).data  # lost on the line
    ev2 = ln.receive_message(m3, 1.0)
    assert only(ev2, SendHandshake).data == lost and not any(
        isinstance(e, ChannelEstablished) for e in ev2
    )
    only(nn.receive_message(lost, 1.1), ChannelEstablished)
    assert only(send(nn, ln, b"ok")[1], DataReceived)


@given(st.binary(max_size=100), st.booleans(), st.booleans())
def test_random_bytes_never_raise(data, broadcast, management):
    nn, ln, _ = _PAIR
    for ch in (nn, ln):
        for ev in (
            ch.receive_message(data, 1.0),
            ch.receive_protected(
                data, header=HDR, dest=DEST_A, now=1.0, broadcast=broadcast, management=management
            ),
        ):
            assert all(isinstance(e, C.ChannelEvent) for e in ev)
            assert not any(isinstance(e, DataReceived) for e in ev)


_PAIR = pair(ChannelConfig(max_auth_failures=10**9))


def test_no_key_material_in_reprs_or_events():
    nn, ln = make(Role.NNAP, NNAP_ID, METER_A, PSK_A), make(Role.LNAP, METER_A, NNAP_ID, PSK_A)
    transcript = [nn.start_handshake(0.0)]
    events: list[object] = []
    for rx in (ln, nn, ln, nn):  # the four handshake messages, every event kept
        ev = rx.receive_message(transcript[-1], 0.0)
        events += ev
        transcript += [e.data for e in ev if isinstance(e, SendHandshake)]
    assert len(transcript) == 4 and nn.state is ln.state is ChannelState.COMMISSIONED
    body, ev = send(nn, ln, b"payload")
    events += ev
    events += ln.receive_protected(body, header=HDR, dest=DEST_A, now=1.0)  # a replay: dropped
    assert {type(e) for e in events} >= {SendHandshake, ChannelEstablished, DataReceived, FrameDropped}
    snap = ln.snapshot()
    texts = [
        repr(nn),
        repr(ln),
        repr(snap),
        repr(nn.snapshot()),
        repr(ln._uc_tx),
        repr(ln._uc_rx),
        repr(BroadcastSender(NNAP_ID)),
        *(repr(e) for e in events),
        *(str(e) for e in events),
        *(m.hex() for m in [*transcript, body]),  # no key travels in clear either
    ]
    secrets = {PSK_A.hex()} | {k.key.hex() for k in snap.keys}
    assert len(secrets) >= 2  # the PSK and the session key
    for t in texts:
        for s in secrets:
            assert s not in t
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(ln)


def test_sequence_numbers_never_wrap():
    nn, _, _ = pair()
    snap = nn.snapshot()
    tx = snap.keys[0]
    assert tx.role == "uc-tx"
    near_end = C.KeySnapshot(tx.role, tx.key_id, tx.key, tx.slot, P.OSGP_SEQ_MAX - 1)
    nn2 = SecureChannel.from_snapshot(
        C.ChannelSnapshot(
            **{
                **{f: getattr(snap, f) for f in snap.__dataclass_fields__},
                "keys": (near_end,) + snap.keys[1:],
            }
        )
    )
    seqs = [
        int.from_bytes(nn2.protect(b"x", header=HDR, dest=DEST_A, now=1.0)[1:5], "big")
        for _ in range(2)
    ]
    assert seqs == [P.OSGP_SEQ_MAX - 1, P.OSGP_SEQ_MAX]
    with pytest.raises(LocalProtocolError):
        nn2.protect(b"x", header=HDR, dest=DEST_A, now=1.0)
    assert nn2.next_tx_seq == P.OSGP_SEQ_MAX + 1


@given(
    st.binary(max_size=300), st.binary(min_size=1, max_size=4), st.binary(max_size=8), st.booleans()
)
def test_protect_roundtrip_any_payload(data, header, dest, uplink):
    nn, ln, _ = _PAIR
    src, dst = (ln, nn) if uplink else (nn, ln)
    body = src.protect(data, header=header, dest=dest, now=1.0)
    assert len(body) == len(data) + C.PROTECTED_OVERHEAD
    ev = dst.receive_protected(body, header=header, dest=dest, now=1.0)
    assert ev == [DataReceived(data, 0, int.from_bytes(body[1:5], "big"), False)]


def test_forged_broadcasts_do_not_fail_the_channel_and_oversize_is_refused():
    nn, ln, _ = pair(ChannelConfig(max_auth_failures=2))
    bs = BroadcastSender(NNAP_ID, random=drbg(b"bc2"))
    bs.new_key()
    _pump_mgmt(ln, nn, _pump_mgmt(nn, ln, nn.send_broadcast_key(bs, 1.0)))
    bs.activate()
    for _ in range(5):
        bad = bytearray(bs.protect(b"x", header=HDR, dest=b"", now=1.0))
        bad[-1] ^= 1
        ev = ln.receive_protected(bytes(bad), header=HDR, dest=b"", now=1.0, broadcast=True)
        assert only(ev, FrameDropped).reason is DropReason.AUTH
    assert ln.state is ChannelState.COMMISSIONED and ln.counters.auth_failures == 5
    before = nn.next_tx_seq
    with pytest.raises(C.EncodeError):
        nn.protect(bytes(65536), header=HDR, dest=DEST_A, now=1.0)
    assert nn.next_tx_seq == before  # no number consumed
    body = nn.protect(bytes(65535), header=HDR, dest=DEST_A, now=1.0)
    assert only(ln.receive_protected(body, header=HDR, dest=DEST_A, now=1.0), DataReceived)


def test_keys_absent_from_logs_and_errors(caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    nn, ln, _ = pair()
    _pump_mgmt(ln, nn, _pump_mgmt(nn, ln, nn.renew_unicast_key(1.0)))
    send(nn, ln, b"x", now=2.0)
    secrets = {PSK_A.hex()} | {k.key.hex() for k in ln.snapshot().keys}
    assert caplog.records, "state transitions are logged"
    for rec in caplog.records:
        for s in secrets:
            assert s not in rec.getMessage()
    bad_psk = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f")  # 15 bytes
    with pytest.raises(C.EncodeError) as ei:
        SecureChannel(role=Role.LNAP, local_id=METER_A, peer_id=NNAP_ID, psk=bad_psk)
    assert ei.value.field == "psk" and bad_psk.hex() not in str(ei.value)
    assert bad_psk.hex() not in repr(ei.value)
