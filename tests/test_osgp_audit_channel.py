"""Audit of issue 4 items 3, 4 and 8 from outside osgp.channel (tests only):

* no key bytes in the repr of any object reachable from channels, senders, snapshots, stores
  and events, in hex *or* as a bytes repr (a ``field(repr=True)`` leak shows as ``b'...'``,
  which a hex-only check misses), in any state: mid-handshake, commissioned, after
  unicast/broadcast/OMA key updates, FAILED, restored from SQLite;
* handshake messages re-targeted to another meter or another NNAP channel are refused
  (the MACs bind both IDs), and do not disturb the victim channel;
* intrusion counters count each kind of attack, and error messages stay within the
  token bucket over a long attack (no oracle), for replays as well as forgeries;
* any delivery order (loss, duplicates, reordering inside and beyond the window), unicast
  and broadcast, against an independent RFC 4303 window model.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms14908 import profile as P
from osgp.channel import (
    BroadcastSender,
    ChannelConfig,
    ChannelEstablished,
    ChannelState,
    DataReceived,
    DropReason,
    FrameDropped,
    HandshakeFailed,
    MemoryPersistence,
    Role,
    SecureChannel,
    SendError,
    SendHandshake,
    SendProtected,
)
from osgp.drbg import CtrDrbg
from osgp.keys import derive_session_keys  # noqa: F401  (SessionKeys reachable below)
from osgp.store import ChannelStore

NNAP_ID = bytes.fromhex("4e4e41500001")
NNAP_2 = bytes.fromhex("4e4e41500002")
METER_A = bytes.fromhex("000102030405")
METER_B = bytes.fromhex("00010203040a")
PSK_A = bytes.fromhex("00112233445566778899aabbccddeeff")
PSK_B = bytes.fromhex("ffeeddccbbaa99887766554433221100")
HDR = bytes((0x80 | P.AL_TYPE_XDLMS, 0x01, 0x10))
MGMT_HDR = bytes((0x80 | P.AL_TYPE_SECURITY, 0x01, 0x01))
DEST = bytes.fromhex("010105")
OMA = bytes.fromhex("a1a2a3a4a5a6a7a8a9aaabac")


def drbg(tag: bytes) -> CtrDrbg:
    return CtrDrbg(tag, entropy=bytes)


def make(role: Role, local: bytes, peer: bytes, psk: bytes, cfg: ChannelConfig | None = None,
         **kw: object) -> SecureChannel:
    return SecureChannel(role=role, local_id=local, peer_id=peer, psk=psk, config=cfg,
                         random=drbg(role.value.encode() + local + peer), **kw)  # type: ignore[arg-type]


def only(events: list, cls: type):  # type: ignore[no-untyped-def,type-arg]
    found = [e for e in events if isinstance(e, cls)]
    assert len(found) == 1, events
    return found[0]


def handshake(nn: SecureChannel, ln: SecureChannel, now: float = 0.0) -> list[bytes]:
    m1 = nn.start_handshake(now)
    m2 = only(ln.receive_message(m1, now), SendHandshake).data
    m3 = only(nn.receive_message(m2, now), SendHandshake).data
    ev = ln.receive_message(m3, now)
    m4 = only(ev, SendHandshake).data
    only(ev, ChannelEstablished)
    only(nn.receive_message(m4, now), ChannelEstablished)
    return [m1, m2, m3, m4]


def pump(src: SecureChannel, dst: SecureChannel, events: list, now: float = 1.0) -> list:  # type: ignore[type-arg]
    out: list = []  # type: ignore[type-arg]
    for e in events:
        if isinstance(e, SendProtected):
            body = src.protect(e.data, header=MGMT_HDR, dest=DEST, now=now)
            out += dst.receive_protected(body, header=MGMT_HDR, dest=DEST, now=now, management=True)
    return out


# ----------------------------------------------------------------------------- reprs


_OPAQUE_MODULES = ("builtins", "functools", "threading", "sqlite3", "_thread", "pathlib", "posixpath", "enum")


def _reachable(roots: list[object], limit: int = 5000) -> Iterator[object]:
    """Every object reachable through attributes/slots/containers (not modules/types/functions)."""
    seen: set[int] = set()
    stack = list(roots)
    while stack and len(seen) < limit:
        o = stack.pop()
        if id(o) in seen or isinstance(o, (bytes, bytearray, memoryview, str, int, float, bool, type(None), type)):
            continue
        if callable(o) and not hasattr(o, "__slots__") and not hasattr(o, "__dict__"):
            continue
        if type(o).__module__ in _OPAQUE_MODULES and not isinstance(o, (tuple, list, dict, set, frozenset)):
            continue
        seen.add(id(o))
        yield o
        if isinstance(o, dict):
            stack += list(o.keys()) + list(o.values())
        elif isinstance(o, (tuple, list, set, frozenset)):
            stack += list(o)
        else:
            names: list[str] = []
            for cls in type(o).__mro__:
                s = cls.__dict__.get("__slots__", ())
                names += [s] if isinstance(s, str) else list(s)
            names += list(getattr(o, "__dict__", {}))
            for n in names:
                if n.startswith("__"):
                    continue
                try:
                    v = object.__getattribute__(o, n)
                except AttributeError:
                    continue
                if type(v).__name__ in ("method", "builtin_function_or_method", "function"):
                    continue
                stack.append(v)


def _secret_forms(secrets: set[bytes]) -> set[str]:
    forms = set()
    for s in secrets:
        forms |= {s.hex(), s.hex().upper(), repr(s)[2:-1], s[:8].hex()}
    return forms


def _collect_key_bytes(objs: list[object]) -> set[bytes]:
    """Every 12/16-byte value stored under a key-like attribute name anywhere in the graph."""
    keys: set[bytes] = set()
    for o in _reachable(objs):
        for n in ("key", "_key", "psk", "_psk", "sk", "pk", "mk", "kek"):
            try:
                v = object.__getattribute__(o, n)
            except (AttributeError, TypeError):
                continue
            if isinstance(v, (bytes, bytearray)) and len(v) in (12, 16):
                keys.add(bytes(v))
    return keys


def _assert_no_leak(roots: list[object], secrets: set[bytes]) -> int:
    forms = _secret_forms(secrets)
    n = 0
    for o in _reachable(roots):
        if isinstance(o, (tuple, list, dict, set, frozenset)):
            continue
        text = repr(o) + str(o)
        for f in forms:
            assert f not in text, f"key bytes in repr of {type(o).__name__}: {text[:200]}"
        n += 1
    return n


def test_no_key_in_any_reachable_repr(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ChannelStore(tmp_path / "s.db")
    mem = MemoryPersistence()
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_A, persistence=store, name="nn")
    ln = make(Role.LNAP, METER_A, NNAP_ID, PSK_A, persistence=mem, name="ln")
    # mid-handshake: the NNAP holds SK/PK in its handshake record
    m1 = nn.start_handshake(0.0)
    m2 = only(ln.receive_message(m1, 0.0), SendHandshake).data
    m3 = only(nn.receive_message(m2, 0.0), SendHandshake).data
    mid = [nn, ln]
    secrets_mid = _collect_key_bytes(mid) | {PSK_A}
    assert len(secrets_mid) >= 2  # PSK and at least the handshake's session keys
    assert _assert_no_leak(mid, secrets_mid) > 5
    ev = ln.receive_message(m3, 0.0)
    only(nn.receive_message(only(ev, SendHandshake).data, 0.0), ChannelEstablished)
    events: list = list(ev)  # type: ignore[type-arg]
    # key updates of every kind
    bs = BroadcastSender(NNAP_ID, random=drbg(b"bc"), persistence=store, name="bc")
    bs.new_key()
    events += pump(nn, ln, nn.renew_unicast_key(1.0))
    events += pump(nn, ln, nn.send_broadcast_key(bs, 1.0))
    events += pump(nn, ln, nn.send_oma_key(OMA, 3, 1.0))
    bs.activate()
    body = nn.protect(b"x", header=HDR, dest=DEST, now=2.0)
    events += ln.receive_protected(body, header=HDR, dest=DEST, now=2.0)
    snaps = [nn.snapshot(), ln.snapshot(), bs.snapshot()]
    restored = SecureChannel.from_snapshot(store.load_channel("nn"), persistence=store)  # type: ignore[arg-type]
    roots = [nn, ln, bs, store, mem, restored, *snaps, *events, store.load_channel("nn"), store.load_broadcast("bc")]
    secrets = _collect_key_bytes(roots) | {PSK_A, OMA}
    assert len(secrets) >= 5, len(secrets)  # PSK, PK, new unicast key, broadcast key(s), OMA
    assert _assert_no_leak(roots, secrets) > 20
    store.close()


def test_detector_sees_a_bytes_repr_leak() -> None:
    """The check above can fail: a dataclass with a plain key field is caught."""
    from dataclasses import dataclass

    @dataclass
    class Leaky:
        key: bytes

    with pytest.raises(AssertionError, match="key bytes"):
        _assert_no_leak([Leaky(PSK_B)], {PSK_B})


def test_failed_channel_repr_and_errors_have_no_keys() -> None:
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_A)
    ln = make(Role.LNAP, METER_A, NNAP_ID, PSK_A, ChannelConfig(max_auth_failures=2, error_burst=0))
    handshake(nn, ln)
    secrets = _collect_key_bytes([nn, ln]) | {PSK_A}
    bad = bytearray(nn.protect(b"x", header=HDR, dest=DEST, now=1.0))
    bad[-1] ^= 1
    evs = []
    for _ in range(2):
        evs += ln.receive_protected(bytes(bad), header=HDR, dest=DEST, now=1.0)
    assert ln.state is ChannelState.FAILED
    _assert_no_leak([nn, ln, *evs], secrets)
    from dlms14908.errors import LocalProtocolError

    with pytest.raises(LocalProtocolError) as ei:
        ln.protect(b"x", header=HDR, dest=DEST, now=2.0)
    text = str(ei.value) + repr(ei.value)
    assert not any(f in text for f in _secret_forms(secrets))
    gc.collect()


# ----------------------------------------------------------------------------- re-targeted handshakes


def test_challenge_response_retargeted_to_another_meters_channel() -> None:
    """Meter A's ChallengeResponse, delivered to the NNAP's channel for meter B (even with the
    same PSK), does not commission it: the MAC binds the meter's ID."""
    for psk_b in (PSK_B, PSK_A):
        nn_b = make(Role.NNAP, NNAP_ID, METER_B, psk_b)
        ln_a = make(Role.LNAP, METER_A, NNAP_ID, PSK_A)
        m1 = nn_b.start_handshake(0.0)
        m2_from_a = only(ln_a.receive_message(m1, 0.0), SendHandshake).data
        ev = nn_b.receive_message(m2_from_a, 0.0)
        assert not any(isinstance(e, (SendHandshake, ChannelEstablished)) for e in ev), ev
        assert any(isinstance(e, (HandshakeFailed, FrameDropped)) for e in ev)
        assert nn_b.state is not ChannelState.COMMISSIONED


def test_commission_request_retargeted_to_another_meter_or_from_another_nnap() -> None:
    # A CommissionRequest built for meter A is offered to meter B (same PSK), after B answered
    # the same challenge: B refuses it and stays uncommissioned.
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_A)
    ln_a = make(Role.LNAP, METER_A, NNAP_ID, PSK_A)
    ln_b = make(Role.LNAP, METER_B, NNAP_ID, PSK_A)
    m1 = nn.start_handshake(0.0)
    m2 = only(ln_a.receive_message(m1, 0.0), SendHandshake).data
    only(ln_b.receive_message(m1, 0.0), SendHandshake)
    m3 = only(nn.receive_message(m2, 0.0), SendHandshake).data
    ev = ln_b.receive_message(m3, 0.0)
    assert not any(isinstance(e, (SendHandshake, ChannelEstablished)) for e in ev), ev
    assert ln_b.state is not ChannelState.COMMISSIONED
    # ... while the addressed meter accepts it.
    only(ln_a.receive_message(m3, 0.0), ChannelEstablished)
    # A second NNAP (another ID) cannot reuse the first NNAP's CommissionRequest either.
    ln_c = make(Role.LNAP, METER_A, NNAP_2, PSK_A)
    ev = ln_c.receive_message(m1, 0.0)  # a challenge from the wrong NNAP is not answered
    assert only(ev, FrameDropped).reason is DropReason.UNEXPECTED
    ev = ln_c.receive_message(m3, 0.0)
    assert not any(isinstance(e, ChannelEstablished) for e in ev)
    assert ln_c.state is not ChannelState.COMMISSIONED


def test_data_frame_to_other_nnap_channel_is_refused() -> None:
    # Same meter, same PSK, two NNAP IDs: a frame of one channel is not accepted by the other.
    nn1, ln1 = make(Role.NNAP, NNAP_ID, METER_A, PSK_A), make(Role.LNAP, METER_A, NNAP_ID, PSK_A)
    nn2, ln2 = make(Role.NNAP, NNAP_2, METER_A, PSK_A), make(Role.LNAP, METER_A, NNAP_2, PSK_A)
    handshake(nn1, ln1)
    handshake(nn2, ln2)
    body = nn1.protect(b"cut", header=HDR, dest=DEST, now=1.0)
    assert only(ln2.receive_protected(body, header=HDR, dest=DEST, now=1.0), FrameDropped).reason is DropReason.AUTH
    assert only(ln1.receive_protected(body, header=HDR, dest=DEST, now=1.0), DataReceived).data == b"cut"


# ----------------------------------------------------------------------------- counters, rate limit


def test_intrusion_counters_and_error_budget_over_a_long_mixed_attack() -> None:
    burst, interval = 3, 5.0
    cfg = ChannelConfig(error_burst=burst, error_interval=interval, max_auth_failures=10**6, unicast_window=8)
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_A, cfg)
    ln = make(Role.LNAP, METER_A, NNAP_ID, PSK_A, cfg)
    handshake(nn, ln)
    frames = [nn.protect(b"%d" % i, header=HDR, dest=DEST, now=1.0) for i in range(30)]
    for f in frames[:20]:
        only(ln.receive_protected(f, header=HDR, dest=DEST, now=1.0), DataReceived)
    forged = bytearray(frames[25])
    forged[-1] ^= 0x40
    unknown = bytes([9]) + frames[26][1:]
    sent = 0
    t, duration = 2.0, 100.0
    n_forged = n_replay = n_unknown = 0
    while t < 2.0 + duration:
        for kind in range(3):
            if kind == 0:
                ev = ln.receive_protected(bytes(forged), header=HDR, dest=DEST, now=t)
                n_forged += 1
            elif kind == 1:
                ev = ln.receive_protected(frames[3], header=HDR, dest=DEST, now=t)  # old replay
                n_replay += 1
            else:
                ev = ln.receive_protected(unknown, header=HDR, dest=DEST, now=t)
                n_unknown += 1
            assert not any(isinstance(e, DataReceived) for e in ev)
            sent += sum(isinstance(e, SendError) for e in ev)
        t += 0.05
    c = ln.counters
    assert c.auth_failures == n_forged and c.replays == n_replay and c.unknown_key == n_unknown
    # token bucket: at most burst + duration/interval messages, whatever the attack rate
    assert 0 < sent <= burst + duration / interval + 1, sent
    assert c.errors_sent == sent and c.errors_sent + c.errors_suppressed >= n_forged + n_replay
    assert ln.state is ChannelState.COMMISSIONED
    # genuine traffic still flows
    assert only(ln.receive_protected(frames[20], header=HDR, dest=DEST, now=t), DataReceived).seq == 21


# ----------------------------------------------------------------------------- replay window model


def _window_model(schedule: list[int], window: int) -> list[bool]:
    """RFC 4303 sliding window, written here: accept iff new, and above or inside the window."""
    highest, seen, out = 0, set(), []
    for seq in schedule:
        ok = seq not in seen and (seq > highest or highest - seq < window)
        out.append(ok)
        if ok:
            seen.add(seq)
            highest = max(highest, seq)
    return out


@settings(max_examples=80)
@given(
    window=st.sampled_from([1, 2, 8, 32]),
    schedule=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=80),
    broadcast=st.booleans(),
)
def test_any_delivery_order_matches_an_independent_window_model(window: int, schedule: list[int],
                                                                broadcast: bool) -> None:
    """Frames 1..60 delivered in any order, with duplicates and losses: exactly the frames an
    independent RFC 4303 window model accepts are delivered, each at most once, with its own
    payload; everything else is a REPLAY drop and counted."""
    cfg = ChannelConfig(unicast_window=window, broadcast_window=window, error_burst=0)
    nn = make(Role.NNAP, NNAP_ID, METER_A, PSK_A, cfg)
    ln = make(Role.LNAP, METER_A, NNAP_ID, PSK_A, cfg)
    handshake(nn, ln)
    if broadcast:
        bs = BroadcastSender(NNAP_ID, random=drbg(b"bc"))
        bs.new_key()
        pump(nn, ln, nn.send_broadcast_key(bs, 0.5))
        bs.activate()
        frames = [bs.protect(b"b%d" % i, header=HDR, dest=b"\x00", now=1.0) for i in range(1, 61)]
        dest = b"\x00"
    else:
        frames = [nn.protect(b"u%d" % i, header=HDR, dest=DEST, now=1.0) for i in range(1, 61)]
        dest = DEST
    assert [int.from_bytes(f[1:5], "big") for f in frames] == list(range(1, 61))
    before = ln.counters.replays
    want = _window_model(schedule, window)
    for seq, ok in zip(schedule, want, strict=True):
        ev = ln.receive_protected(frames[seq - 1], header=HDR, dest=dest, now=1.0, broadcast=broadcast)
        got = [e for e in ev if isinstance(e, DataReceived)]
        if ok:
            assert len(got) == 1 and got[0].seq == seq and got[0].data == (b"b%d" if broadcast else b"u%d") % seq
            assert got[0].broadcast is broadcast
        else:
            assert not got and only(ev, FrameDropped).reason is DropReason.REPLAY
    assert ln.counters.replays - before == want.count(False)
    assert ln.state is ChannelState.COMMISSIONED


# ----------------------------------------------------------------------------- config misuse


def test_bad_error_interval_names_its_field() -> None:
    with pytest.raises(ValueError) as ei:
        ChannelConfig(error_interval=0)
    assert ei.value.field == "error_interval"  # type: ignore[attr-defined]


def test_nonpositive_handshake_timeout_is_refused() -> None:
    with pytest.raises(ValueError) as ei:
        ChannelConfig(handshake_timeout=-1.0)
    assert ei.value.field == "handshake_timeout"  # type: ignore[attr-defined]


def test_config_errors_that_work() -> None:
    for kw, field in (({"max_auth_failures": 0}, "max_auth_failures"), ({"unicast_window": 0}, "unicast_window"),
                      ({"seq_block": 0}, "seq_block"), ({"error_burst": -1}, "error_burst"),
                      ({"rx_save_interval": -1}, "rx_save_interval")):
        with pytest.raises(ValueError) as ei:
            ChannelConfig(**kw)  # type: ignore[arg-type]
        assert ei.value.field == field  # type: ignore[attr-defined]
