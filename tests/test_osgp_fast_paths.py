"""osgp.channel fast paths (_seal_pdu / _open_pdu) against the stored vectors and the full path.

``_seal_pdu`` must give exactly ``lead || header || protect(...)`` and ``_open_pdu`` must either
deliver what :meth:`SecureChannel.receive_protected` would, with the same state afterwards, or
change nothing (the caller then hands the frame to ``receive_protected``).  The wire bytes are
checked against vectors/osgp/protected_frames.json (design choice: docs/wire-format.md §4),
re-derived here by the same deterministic handshake the vector generator uses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms14908.errors import LocalProtocolError
from osgp.channel import (
    ChannelConfig,
    ChannelSnapshot,
    DataReceived,
    KeySnapshot,
    MemoryPersistence,
    ReplayWindow,
    Role,
    SecureChannel,
    SendHandshake,
    SendProtected,
)
from osgp.drbg import CtrDrbg

ROOT = Path(__file__).resolve().parents[1]
PROTECTED = json.loads((ROOT / "vectors" / "osgp" / "protected_frames.json").read_text())
NNAP_ID = bytes.fromhex("4e4e41500001")
LNAP_ID = bytes.fromhex("0400a1b2c3d4")
PSK = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
CODE = 0x30
DEST = bytes.fromhex("0105")
UP_DEST = bytes.fromhex("0101")


def _entry(name: str) -> dict:
    return next(e for e in PROTECTED["entries"] if e["name"] == name)


def commissioned(
    config: ChannelConfig | None = None, persistence: object = None
) -> tuple[SecureChannel, SecureChannel]:
    """The vector generator's deterministic pair (CtrDrbg 'NNAP'/'LNAP', zero entropy)."""
    nn = SecureChannel(
        role=Role.NNAP,
        local_id=NNAP_ID,
        peer_id=LNAP_ID,
        psk=PSK,
        random=CtrDrbg(b"NNAP", entropy=bytes),
        config=config,
    )
    ln = SecureChannel(
        role=Role.LNAP,
        local_id=LNAP_ID,
        peer_id=NNAP_ID,
        psk=PSK,
        random=CtrDrbg(b"LNAP", entropy=bytes),
        config=config,
        persistence=persistence,  # type: ignore[arg-type]
    )
    msg = nn.start_handshake(0.0)
    for ch in (ln, nn, ln):
        msg = next(e.data for e in ch.receive_message(msg, 0.0) if isinstance(e, SendHandshake))
    nn.receive_message(msg, 0.0)
    assert nn.state.value == ln.state.value == "commissioned"
    return nn, ln


def clone(ch: SecureChannel, **kw: object) -> SecureChannel:
    return SecureChannel.from_snapshot(ch.snapshot(), **kw)  # type: ignore[arg-type]


def test_seal_and_open_give_the_vector_bytes() -> None:
    nn, ln = commissioned()
    for name, tx, rx, dest in (
        ("unicast downlink (get-request)", nn, ln, DEST),
        ("unicast downlink, SeqNo 2", nn, ln, DEST),
        ("unicast uplink", ln, nn, UP_DEST),
    ):
        e = _entry(name)
        assert bytes.fromhex(e["dest"]) == dest
        hdr = bytes.fromhex(e["header"])
        pt = bytes.fromhex(e["plaintext"])
        msg = tx._seal_pdu(CODE, hdr[0], hdr[1], hdr[2], pt, dest)
        assert msg == bytes((CODE,)) + hdr + bytes.fromhex(e["body"]), name
        assert rx._open_pdu(msg, 1, 4, dest) == pt, name
        # ... and once only: the second copy is a replay, which the fast path leaves alone
        assert rx._open_pdu(msg, 1, 4, dest) is None
    assert nn.counters.frames_ok == 1 and ln.counters.frames_ok == 2


def test_fast_open_declines_during_a_renewal_and_the_full_path_activates() -> None:
    nn, ln = commissioned()
    for name in ("unicast downlink (get-request)", "unicast downlink, SeqNo 2"):
        e = _entry(name)
        nn._seal_pdu(CODE, 0x80, 0x01, 0x10, bytes.fromhex(e["plaintext"]), DEST)
    up = _entry("unicast uplink")
    nn._open_pdu(ln._seal_pdu(CODE, 0x80, 0x10, 0x01, bytes.fromhex(up["plaintext"]), UP_DEST), 1, 4, UP_DEST)
    udk = next(e.data for e in nn.renew_unicast_key(2.0) if isinstance(e, SendProtected))
    ev = ln.receive_protected(nn.protect(udk, header=b"\x81\x01\x01", dest=DEST, now=2.0),
                              header=b"\x81\x01\x01", dest=DEST, now=2.0, management=True)
    resp = next(e.data for e in ev if isinstance(e, SendProtected))
    nn.receive_protected(ln.protect(resp, header=b"\x81\x01\x01", dest=UP_DEST, now=2.0),
                         header=b"\x81\x01\x01", dest=UP_DEST, now=2.0, management=True)
    assert ln.rx_key_ids == (0, 1)
    e = _entry("unicast downlink under the renewed key")
    msg = nn._seal_pdu(CODE, 0x80, 0x01, 0x10, bytes.fromhex(e["plaintext"]), DEST)
    assert msg[4:].hex() == e["body"]
    before = ln.snapshot()
    assert ln._open_pdu(msg, 1, 4, DEST) is None
    assert ln.snapshot() == before
    ev = ln.receive_protected(msg[4:], header=msg[1:4], dest=DEST, now=3.0)
    assert [type(x).__name__ for x in ev] == ["KeyActivated", "DataReceived"]
    assert ln.rx_key_ids == (1,)
    # the renewal is over: the fast path serves the new key again
    msg = nn._seal_pdu(CODE, 0x80, 0x01, 0x10, b"\x07", DEST)
    assert ln._open_pdu(msg, 1, 4, DEST) == b"\x07"


@settings(max_examples=60)
@given(
    frames=st.lists(
        st.tuples(st.binary(max_size=40), st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=6
    ),
    dest=st.binary(min_size=1, max_size=9),
    block=st.integers(1, 4),
)
def test_seal_pdu_is_protect_with_the_header_in_front(frames, dest, block) -> None:
    nn, _ = commissioned(ChannelConfig(seq_block=block))
    pa, pb = MemoryPersistence(), MemoryPersistence()
    a = clone(nn, persistence=pa, config=ChannelConfig(seq_block=block))
    b = clone(nn, persistence=pb, config=ChannelConfig(seq_block=block))
    for pt, dst, src in frames:
        hdr = bytes((0x80, dst, src))
        assert a._seal_pdu(CODE, 0x80, dst, src, pt, dest) == bytes((CODE,)) + hdr + b.protect(
            pt, header=hdr, dest=dest, now=1.0
        )
    assert pa.ceilings == pb.ceilings and pa.ceilings  # the same reservations, made durable
    assert a.snapshot() == b.snapshot()


def test_seal_pdu_refuses_like_protect() -> None:
    fresh = SecureChannel(role=Role.NNAP, local_id=NNAP_ID, peer_id=LNAP_ID, psk=PSK)
    with pytest.raises(LocalProtocolError, match="state none"):
        fresh._seal_pdu(CODE, 0x80, 1, 1, b"x", DEST)
    nn, _ = commissioned()
    snap = nn.snapshot()
    kw = {f: getattr(snap, f) for f in ChannelSnapshot.__slots__}
    kw["keys"] = tuple(  # the transmit key restored at its last SeqNo
        KeySnapshot(k.role, k.key_id, k.key, slot=k.slot, ceiling=0xFFFFFFFF) if k.role == "uc-tx" else k
        for k in snap.keys
    )
    a = SecureChannel.from_snapshot(ChannelSnapshot(**kw))
    b = SecureChannel.from_snapshot(ChannelSnapshot(**kw))
    msg = a._seal_pdu(CODE, 0x80, 1, 1, b"x", DEST)
    assert msg[5:9] == b"\xff\xff\xff\xff"
    assert msg[4:] == b.protect(b"x", header=b"\x80\x01\x01", dest=DEST, now=0)
    with pytest.raises(LocalProtocolError, match="exhausted"):
        b.protect(b"y", header=b"\x80\x01\x01", dest=DEST, now=0)
    with pytest.raises(LocalProtocolError, match="exhausted"):
        a._seal_pdu(CODE, 0x80, 1, 1, b"y", DEST)


# One step of a receive sequence: (index of a frame sent so far, mutation, position).
_MUTATIONS = ("none", "none", "none", "flip", "truncate", "key_id", "header", "dest")


def _mutate(msg: bytes, dest: bytes, how: str, pos: int) -> tuple[bytes, bytes]:
    if how == "flip":
        i = pos % len(msg)
        if i == 0:
            i = 1
        return msg[:i] + bytes((msg[i] ^ 0x04,)) + msg[i + 1 :], dest
    if how == "truncate":
        return msg[: 4 + pos % (len(msg) - 3)], dest
    if how == "key_id":
        return msg[:4] + bytes(((msg[4] + 1 + pos) % 256,)) + msg[5:], dest
    if how == "header":
        return msg[:2] + bytes(((msg[2] + 1) % 256,)) + msg[3:], dest
    if how == "dest":
        return msg, dest + b"\x00"
    return msg, dest


@settings(max_examples=80)
@given(
    plaintexts=st.lists(st.binary(max_size=24), min_size=1, max_size=12),
    steps=st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from(_MUTATIONS), st.integers(0, 60)), max_size=30
    ),
    window=st.sampled_from([1, 2, 5, 32]),
    gaps=st.lists(st.integers(0, 40), max_size=12),
    max_failures=st.sampled_from([2, 8, 10**6]),
    save_interval=st.sampled_from([0, 1, 3]),
)
def test_fast_open_agrees_with_receive_protected(
    plaintexts, steps, window, gaps, max_failures, save_interval
) -> None:
    config = ChannelConfig(
        unicast_window=window, max_auth_failures=max_failures, rx_save_interval=save_interval
    )
    nn, ln = commissioned(config)
    # frames with SeqNo gaps (skipped numbers) so that windows slide by more than one
    sent = []
    for i, pt in enumerate(plaintexts):
        for _ in range(gaps[i] if i < len(gaps) else 0):
            nn._seal_pdu(CODE, 0x80, 1, 0x10, b"", DEST)
        sent.append(nn._seal_pdu(CODE, 0x80, 1, 0x10, pt, DEST))
    pa, pb = MemoryPersistence(), MemoryPersistence()
    fast, full = clone(ln, config=config, persistence=pa), clone(ln, config=config, persistence=pb)
    window_ref = ReplayWindow(window, 0)
    for idx, how, pos in steps:
        msg, dest = _mutate(sent[idx % len(sent)], DEST, how, pos)
        now = 1.0 + idx
        plain = fast._open_pdu(msg, 1, 4, dest)
        if plain is None:
            ev_fast = fast.receive_protected(msg[4:], header=msg[1:4], dest=dest, now=now)
        else:
            seq = int.from_bytes(msg[5:9], "big")
            ev_fast = [DataReceived(plain, msg[4], seq)]
        ev_full = full.receive_protected(msg[4:], header=msg[1:4], dest=dest, now=now)
        assert ev_fast == ev_full
        delivered = [e for e in ev_full if isinstance(e, DataReceived)]
        if delivered:
            seq = delivered[0].seq
            assert window_ref.check(seq)  # the independent window agrees it was new
            window_ref.update(seq)
            assert delivered[0].data == plaintexts[[s[5:9] for s in sent].index(msg[5:9])]
        assert fast.counters == full.counters
        assert fast.state is full.state
        assert fast.snapshot() == full.snapshot()
        assert pa.snapshots == pb.snapshots


def test_fast_open_saves_the_window_before_delivering() -> None:
    store = MemoryPersistence()
    nn, ln = commissioned(ChannelConfig(rx_save_interval=1), persistence=store)
    msg = nn._seal_pdu(CODE, 0x80, 1, 0x10, b"hello", DEST)
    store.snapshots.clear()
    assert ln._open_pdu(msg, 1, 4, DEST) == b"hello"
    (snap,) = store.snapshots.values()
    (rx,) = [k for k in snap.keys if k.role == "uc-rx"]
    assert rx.highest == 1 and rx.bitmap & 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_channels_without_a_random_share_one_locked_drbg_reseeded_after_fork() -> None:
    """Channels built without ``random=`` share the process CSPRNG (no AES context per
    channel); a forked child gets a fresh one instead of repeating the parent's stream."""
    import os
    import sys

    from osgp.channel import Role, SecureChannel

    a = SecureChannel(role=Role.NNAP, local_id=bytes(6), peer_id=bytes((4, 0, 0, 0, 2, 1)), psk=bytes(16))
    b = SecureChannel(role=Role.NNAP, local_id=bytes(6), peer_id=bytes((4, 0, 0, 0, 2, 2)), psk=bytes(16))
    assert a._random is b._random
    outs = {a._random(16) for _ in range(100)}
    assert len(outs) == 100
    if sys.platform.startswith("win"):
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the next 16 bytes of its stream
        os.close(r)
        os.write(w, a._random(16))
        os._exit(0)
    os.close(w)
    child = os.read(r, 16)
    os.close(r)
    os.waitpid(pid, 0)
    parent = a._random(16)
    assert len(child) == 16 and child != parent
