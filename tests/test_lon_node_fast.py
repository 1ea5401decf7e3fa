"""``LonNode.receive_frame`` against the general event handling it short-cuts.

``receive_frame`` carries its own copy of ``LonNode._handle`` (with ``_serve`` and the direct
exchange's ``_completed`` inline).  Two identical head-end/meter pairs run the same random
script of exchanges, losses, duplicates and timers: one pair receives through
``receive_frame``, the other through ``_handle(lon.receive_frame(...))``.  Every call must
return equal events, both pairs must send equal frames and count equally.
"""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given
from hypothesis import strategies as st

from dlms14908.adaptation.endpoint import Done, Send
from dlms14908.errors import DecodeError, ProtocolError
from dlms14908.lon.transaction import LonConfig, NodeDest
from dlms14908.node import ExchangeDone, ExchangeFailed, LonNode, Route

DOM = b"\x42"


class _Client:
    """One- or two-step exchanges; a reply starting 0x30 0xEE fails the exchange."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.aborted = 0

    def begin(self, apdu: bytes, *, confirmed: bool = True, now: float) -> Send:
        return Send(b"\x30" + apdu, confirmed)

    def feed(self, reply: bytes | None, now: float) -> Send | Done:
        if reply is not None and reply[:2] == b"\x30\xee":
            raise DecodeError("bad reply", field="test.reply")
        self.steps -= 1
        if self.steps > 0:
            return Send(b"\x30\x01" + (reply or b""), True)
        return Done(reply)

    def abort(self) -> None:
        self.aborted += 1


class _Server:
    def __init__(self) -> None:
        self.seen: list[tuple[object, bytes, bool, bytes | None]] = []

    def on_message(self, peer: object, data: bytes, *, confirmed: bool, now: float,
                   dest: bytes | None = None) -> bytes | None:
        self.seen.append((peer, data, confirmed, dest))
        if data[1:2] == b"\x00":
            return None  # no answer
        if data[1:2] == b"\xee":
            return b"\x30\xee"
        return b"\x30" + data[1:][::-1]

    def next_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass


def _pair() -> tuple[LonNode, LonNode, _Server]:
    server = _Server()
    head = LonNode(LonConfig(1, 1, domain=DOM, tx_timer=0.4, retries=2), rng=random.Random(1).randbytes)
    meter = LonNode(LonConfig(2, 1, domain=DOM, receive_timer=5.0), server=server, rng=random.Random(2).randbytes)
    return head, meter, server


def _view(events: list[object]) -> list[object]:
    # exceptions compare by identity: compare their type and text
    return [(type(e).__name__, e.xid, type(e.error).__name__, str(e.error)) if isinstance(e, ExchangeFailed) else e
            for e in events]


@given(st.integers(0, 2**32 - 1))
def test_node_receive_frame_equals_the_general_handling(seed: int) -> None:
    rnd = random.Random(seed)
    fast, general = _pair(), _pair()
    route = Route(NodeDest(2, 1))

    def recv(node: LonNode, frame: bytes, now: float, inline: bool) -> list[object]:
        if inline:
            return node.receive_frame(frame, now)  # type: ignore[return-value]
        return node._handle(node.lon.receive_frame(frame, now), now)  # type: ignore[return-value]

    now = 0.0
    seen_done = 0
    for _ in range(40):
        op = rnd.randrange(6)
        payload = bytes((rnd.choice([0x00, 0x01, 0x02, 0xEE]), rnd.randrange(256)))
        steps = rnd.choice([1, 1, 2])
        confirmed = rnd.random() < 0.8
        coin = [rnd.random() < 0.5 for _ in range(8)]  # the same draws for both pairs
        out: list[tuple[list[object], list[bytes], list[bytes]]] = []
        for inline, (head, meter, _) in ((True, fast), (False, general)):
            if op == 0:
                head.exchange(_Client(steps), route, payload, confirmed=confirmed, now=now)
                ev = head.poll_events()
            elif op in (1, 2):
                # head -> meter, sometimes twice (a duplicate), sometimes lost
                ev = []
                for i, f in enumerate(head.frames_to_send(now)):
                    if op == 1 or coin[i % 4]:
                        ev += recv(meter, f, now, inline)
                        if op == 2:
                            ev += recv(meter, f, now, inline)
            elif op == 3:
                ev = []
                for i, f in enumerate(meter.frames_to_send(now)):
                    ev += recv(head, f, now, inline)
                    if coin[4 + i % 4]:
                        ev += recv(head, f, now, inline)
            elif op == 4:
                ev = head.handle_timer(now) + meter.handle_timer(now)  # type: ignore[operator]
            else:
                ev = []
            out.append((_view(ev), head.lon.frames_to_send(), meter.lon.frames_to_send()))
            # put the frames back: the two pairs' pending frames are compared, not consumed
            head.lon._outbox[:0] = out[-1][1]
            meter.lon._outbox[:0] = out[-1][2]
        assert out[0] == out[1]
        seen_done += sum(1 for e in out[0][0] if isinstance(e, ExchangeDone))
        if op == 4 or rnd.random() < 0.3:
            now += rnd.choice([0.1, 0.3, 0.5])
    for (h1, m1, s1), (h2, m2, s2) in ((fast, general),):
        assert dataclasses.asdict(h1.lon.counters) == dataclasses.asdict(h2.lon.counters)
        assert dataclasses.asdict(m1.lon.counters) == dataclasses.asdict(m2.lon.counters)
        assert h1.counters == h2.counters and m1.counters == m2.counters
        assert s1.seen == s2.seen


def test_node_fast_path_runs_a_round_trip() -> None:
    """The inline path serves the meter and completes the exchange (and is what runs)."""
    head, meter, server = _pair()
    xid = head.exchange(_Client(1), Route(NodeDest(2, 1)), b"\x02\x03", now=0.0)
    (req,) = head.frames_to_send(0.0)
    assert meter.receive_frame(req, 0.0) == []
    assert server.seen == [((1, 1), b"\x30\x02\x03", True, DOM + bytes((2, 1)))]
    (resp,) = meter.frames_to_send(0.0)
    assert head.receive_frame(resp, 0.0) == [ExchangeDone(xid, b"\x30\x03\x02")]
    assert head.counters.exchanges_done == 1 and head.lon.idle


def test_node_fast_path_reports_a_failing_feed() -> None:
    head, meter, _ = _pair()
    client = _Client(1)
    xid = head.exchange(client, Route(NodeDest(2, 1)), b"\xee\x00", now=0.0)
    meter.receive_frame(head.frames_to_send(0.0)[0], 0.0)
    (ev,) = head.receive_frame(meter.frames_to_send(0.0)[0], 0.0)
    assert isinstance(ev, ExchangeFailed) and ev.xid == xid and isinstance(ev.error, ProtocolError)
    assert client.aborted == 1 and head.counters.exchanges_failed == 1


def test_records_built_without_init_equal_the_constructors() -> None:
    """``exchange`` builds its ``_Exchange``/``_Owner`` slot by slot: every field is set,
    to what the constructors give."""
    from dlms14908.node import _Exchange, _Owner

    head, _, _ = _pair()
    client, route = _Client(1), Route(NodeDest(2, 1))
    xid = head.exchange(client, route, b"\x02", now=0.0)
    (o,) = head._owners.values()
    assert o == _Owner(_Exchange(xid, client, route, True, True))


def test_exchange_to_an_unencodable_address_fails_at_once() -> None:
    """The inline first step reports what ``lon.request`` rejects like ``_step`` does."""
    head, _, _ = _pair()
    client = _Client(1)
    xid = head.exchange(client, Route(NodeDest(2, 200)), b"\x02", now=0.0)  # node is 7 bits
    (ev,) = head.poll_events()
    assert isinstance(ev, ExchangeFailed) and ev.xid == xid and type(ev.error).__name__ == "EncodeError"
    assert client.aborted == 1 and head.counters.exchanges_failed == 1 and not head._owners
    assert head.frames_to_send(0.0) == []
