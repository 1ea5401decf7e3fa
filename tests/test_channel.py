"""Simulated power-line channel: airtime per reference §4, impairments, counters, determinism."""

from __future__ import annotations

import asyncio

import pytest

from dlms14908.errors import LocalProtocolError
from dlms14908.lon.crc import append_crc
from dlms14908.transport.channel import (
    A_BAND_BPS,
    C_BAND_BPS,
    ChannelConfig,
    PlChannel,
    airtime,
    airtime_bits,
)
from dlms14908.transport.sim import AsyncPlChannel

E1 = bytes.fromhex("003001820351c108")


def test_airtime_matches_reference_examples() -> None:
    # lontalk.md §4: "a 30-byte LPDU takes ~76 ms at 3.6 kbps and ~51 ms at 5.4 kbps;
    # a 249-byte LPDU takes ~563 ms at 3.6 kbps" (preamble 33.5 bits, k_FEC = 1)
    assert airtime(30) * 1000 == pytest.approx(76, abs=0.5)
    assert airtime(30, ChannelConfig(bit_rate=C_BAND_BPS)) * 1000 == pytest.approx(51, abs=0.5)
    assert airtime(249) * 1000 == pytest.approx(563, abs=0.5)
    # and the formula itself: (preamble + 8 * bytes * k_FEC) / bit rate
    assert airtime_bits(30) == 33.5 + 240
    assert airtime(8) == pytest.approx((33.5 + 64) / A_BAND_BPS)
    c = ChannelConfig(fec_factor=1.5, preamble_bits=40)
    assert airtime_bits(10, c) == 40 + 120


def test_counters_and_serialised_medium() -> None:
    ch = PlChannel()
    for n in ("a", "b", "c"):
        ch.attach(n)
    end1 = ch.transmit("a", E1, 0.0)
    end2 = ch.transmit("b", E1 + b"", 0.0)  # must wait for a's frame and the inter-packet gap
    t = airtime(len(E1))
    gap = 17.5 / A_BAND_BPS
    assert end1 == pytest.approx(t)
    assert end2 == pytest.approx(2 * t + gap)
    k = ch.counters
    assert (k.frames, k.bytes) == (2, 16)
    assert k.airtime_bits == pytest.approx(2 * (33.5 + 64))
    assert k.busy_wait == pytest.approx(t + gap)
    assert ch.next_timer() == pytest.approx(end1)
    first = ch.deliveries(end1)
    assert sorted(d.node for d in first) == ["b", "c"] and all(d.frame == E1 and d.source == "a" for d in first)
    second = ch.deliveries(10.0)
    assert sorted(d.node for d in second) == ["a", "c"]
    assert ch.nodes["c"].rx_frames == 2 and ch.nodes["a"].tx_frames == 1
    assert ch.nodes["a"].tx_airtime_bits == pytest.approx(33.5 + 64)
    assert ch.next_timer() is None


def _run(cfg: ChannelConfig, n: int = 400) -> tuple[PlChannel, list]:
    ch = PlChannel(cfg)
    ch.attach("tx")
    ch.attach("rx")
    for i in range(n):
        ch.transmit("tx", append_crc(bytes((0x00, 0x30, 1, 0x82, 3, i & 0xFF))), float(i))
    return ch, ch.deliveries(1e9)


def test_seeded_impairments_are_reproducible() -> None:
    cfg = ChannelConfig(loss=0.2, duplicate=0.1, corrupt=0.1, reorder=0.2, reorder_delay=3.0, seed=42)
    ch1, d1 = _run(cfg)
    ch2, d2 = _run(cfg)
    assert d1 == d2 and ch1.counters == ch2.counters
    _, d3 = _run(ChannelConfig(loss=0.2, duplicate=0.1, corrupt=0.1, reorder=0.2, seed=43))
    assert d3 != d1
    k = ch1.counters
    assert 40 < k.lost < 120  # ~20 % of 400
    assert 15 < k.duplicated < 70 and 15 < k.corrupted < 80 and k.reordered > 30
    assert k.deliveries == 400 - k.lost + k.duplicated
    # corruption flips exactly one bit; reordering really changes the arrival order
    for d in d1:
        orig = append_crc(bytes((0x00, 0x30, 1, 0x82, 3, d.frame[5] if not d.corrupted else 0)))
        if not d.corrupted:
            assert d.frame == orig
    flips = []
    for d in d1:
        if d.corrupted:
            diffs = [bin(a ^ b).count("1") for a, b in zip(d.frame, _closest(d.frame))]
            flips.append(sum(diffs))
    assert flips and all(f == 1 for f in flips)
    payload_order = [d.frame[5] for d in d1 if not d.corrupted]
    assert payload_order != sorted(payload_order)


def _closest(frame: bytes) -> bytes:
    """The original frame a one-bit-corrupted copy came from (the one with the fewest bit flips)."""
    best = min(range(256), key=lambda i: sum(bin(a ^ b).count("1") for a, b in zip(
        frame, append_crc(bytes((0x00, 0x30, 1, 0x82, 3, i))))))
    return append_crc(bytes((0x00, 0x30, 1, 0x82, 3, best)))


def test_total_loss_and_alt_path_carrier() -> None:
    ch, d = _run(ChannelConfig(loss=1.0))
    assert d == [] and ch.counters.lost == 400
    # primary carrier dead, secondary clean: only alt_path frames get through
    ch = PlChannel(ChannelConfig(loss=1.0, loss_alt=0.0))
    ch.attach("a")
    ch.attach("b")
    ch.transmit("a", E1, 0.0)
    alt = bytes((E1[0] | 0x40,)) + E1[1:]
    ch.transmit("a", alt, 0.0)
    got = ch.deliveries(10.0)
    assert [g.frame for g in got] == [alt]
    assert ch.counters.alt_path_frames == 1


def test_latency_and_validation() -> None:
    ch = PlChannel(ChannelConfig(latency=0.5))
    ch.attach("a")
    ch.attach("b")
    end = ch.transmit("a", E1, 1.0)
    assert ch.next_timer() == pytest.approx(end + 0.5)
    with pytest.raises(LocalProtocolError):
        ch.attach("a")
    with pytest.raises(LocalProtocolError):
        ch.transmit("zz", E1, 0.0)
    with pytest.raises(LocalProtocolError):
        ChannelConfig(loss=1.5)
    with pytest.raises(LocalProtocolError):
        ChannelConfig(bit_rate=0)


def test_async_channel_time_scale() -> None:
    async def main() -> None:
        sim = AsyncPlChannel(ChannelConfig(), time_scale=0.01)
        a, b, c = sim.link("a"), sim.link("b"), sim.link("c")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await a.send(E1)
        assert await asyncio.wait_for(b.recv(), 2) == E1
        assert await asyncio.wait_for(c.recv(), 2) == E1
        elapsed = loop.time() - t0
        assert elapsed < 0.5  # 27 ms of A-band airtime played at 100x
        assert sim.counters.airtime_bits == pytest.approx(33.5 + 64)
        assert a.recv_nowait() is None  # the sender does not hear itself
        assert a.stats.frames_sent == 1 and b.stats.frames_received == 1
        await c.close()
        await a.send(E1)
        assert await asyncio.wait_for(b.recv(), 2) == E1
        assert sim.channel.nodes.keys() == {"a", "b"}

    asyncio.run(main())
