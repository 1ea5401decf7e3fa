"""Simulated ISO/IEC 14908-3 power-line channel (sans-I/O core).

Model from reference ``lontalk.md`` §4 (an assumption to calibrate; the PL FEC factor is not
published):

* airtime(bits) = preamble_bits + 8 * (LPDU bytes incl. CRC) * fec_factor; seconds =
  bits / bit_rate, with 3600 bit/s (CENELEC A-band) or 5400 bit/s (C-band) per the PL 31x0
  data book, preamble 33.5 bits from the PLT-22 channel definition;
* one shared medium: transmissions are serialised (a frame waits until the medium is free,
  plus the PLT-22 minimum inter-packet gap of 17.5 bit times);
* every attached node hears every frame (the transaction layer filters by address); each
  reception independently suffers loss, corruption (one flipped bit), duplication,
  reordering (an extra random delay) and fixed latency, drawn from one seeded PRNG;
* frames with the L2 alt_path bit travel on the secondary carrier, which may have its own
  loss rate (PL data book p.4: ACKD retries move to the secondary frequency).

Counters (frames, bytes, airtime bits, losses, ...) are kept per channel and per node so
that COSEM classes 132/133 can report them.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import LocalProtocolError

__all__ = [
    "A_BAND_BPS",
    "C_BAND_BPS",
    "PREAMBLE_BITS",
    "ChannelConfig",
    "ChannelCounters",
    "Delivery",
    "NodeCounters",
    "PlChannel",
    "airtime",
    "airtime_bits",
]

A_BAND_BPS = 3600.0
C_BAND_BPS = 5400.0
PREAMBLE_BITS = 33.5
INTERPACKET_BITS = 17.5


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """Channel parameters; probabilities are per reception (0..1)."""

    bit_rate: float = A_BAND_BPS
    preamble_bits: float = PREAMBLE_BITS
    fec_factor: float = 1.0
    interpacket_bits: float = INTERPACKET_BITS
    latency: float = 0.0
    loss: float = 0.0
    loss_alt: float | None = None
    "loss on the secondary carrier (alt_path frames); None = same as ``loss``"
    corrupt: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.25
    "maximum extra delay of a reordered reception, seconds"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.bit_rate <= 0:
            raise LocalProtocolError("bit_rate must be positive")
        for name in ("loss", "corrupt", "duplicate", "reorder"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise LocalProtocolError(f"{name} must be within 0..1")
        if self.loss_alt is not None and not 0.0 <= self.loss_alt <= 1.0:
            raise LocalProtocolError("loss_alt must be within 0..1")


def airtime_bits(nbytes: int, config: ChannelConfig | None = None) -> float:
    """Bits on the medium for an LPDU of ``nbytes`` (CRC included)."""
    c = config or ChannelConfig()
    return c.preamble_bits + 8 * nbytes * c.fec_factor


def airtime(nbytes: int, config: ChannelConfig | None = None) -> float:
    """Seconds on the medium for an LPDU of ``nbytes`` (CRC included)."""
    c = config or ChannelConfig()
    return airtime_bits(nbytes, c) / c.bit_rate


@dataclass(slots=True)
class NodeCounters:
    tx_frames: int = 0
    tx_bytes: int = 0
    tx_airtime_bits: float = 0.0
    rx_frames: int = 0
    rx_bytes: int = 0
    rx_lost: int = 0
    rx_corrupted: int = 0
    rx_duplicated: int = 0


@dataclass(slots=True)
class ChannelCounters:
    frames: int = 0
    bytes: int = 0
    airtime_bits: float = 0.0
    alt_path_frames: int = 0
    deliveries: int = 0
    lost: int = 0
    corrupted: int = 0
    duplicated: int = 0
    reordered: int = 0
    busy_wait: float = 0.0
    "total seconds frames waited for the medium"


class Delivery(NamedTuple):
    """A frame arriving at ``node`` at time ``at`` (immutable; a tuple, cheap to make per frame)."""

    at: float
    node: str
    frame: bytes
    source: str
    corrupted: bool = False


_new_tuple = tuple.__new__  # a Delivery without its Python-level __new__ (once per frame and hearer)


class PlChannel:
    """A shared power-line medium between named nodes (sans-I/O, explicit ``now``)."""

    def __init__(self, config: ChannelConfig | None = None) -> None:
        self.config = config or ChannelConfig()
        self.counters = ChannelCounters()
        self.nodes: dict[str, NodeCounters] = {}
        self._rng = random.Random(self.config.seed)
        # (arrival time, send order, delivery): plain tuples order in C, and ``order`` is
        # unique, so the delivery itself is never compared
        self._heap: list[tuple[float, int, Delivery]] = []
        self._order = 0
        self._busy_until = 0.0
        c = self.config
        # an ideal channel draws nothing from the generator: every node simply gets one clean copy
        self._ideal = not (c.loss or c.loss_alt or c.duplicate or c.corrupt or c.reorder)
        # ... and its arrivals come in sending order (each frame ends after the previous one):
        # a FIFO instead of the heap
        self._fifo: deque[Delivery] = deque()
        # per frame constants (the same float operations as airtime_bits() and the gap below)
        self._bits_per_byte = 8 * c.fec_factor
        self._gap = c.interpacket_bits / c.bit_rate
        self._hearers: dict[str, tuple[str, ...]] = {}  # source -> the other nodes, in order

    def attach(self, node: str) -> None:
        """Add a node; it hears every frame sent after this call."""
        if node in self.nodes:
            raise LocalProtocolError(f"node {node!r} is already attached")
        self.nodes[node] = NodeCounters()
        self._hearers.clear()

    def detach(self, node: str) -> None:
        self.nodes.pop(node, None)
        self._hearers.clear()

    def transmit(self, source: str, frame: bytes, now: float) -> float:
        """Put ``frame`` (LPDU with CRC) on the medium; return when its last bit leaves."""
        n = self.nodes.get(source)
        if n is None:
            raise LocalProtocolError(f"node {source!r} is not attached")
        if type(frame) is not bytes:
            frame = bytes(frame)
        if not frame:
            raise LocalProtocolError("empty frame")
        c = self.config
        size = len(frame)
        bits = c.preamble_bits + size * self._bits_per_byte  # airtime_bits(), inline
        busy = self._busy_until
        if now >= busy:
            start = now
        else:
            start = busy
            self.counters.busy_wait += busy - now
        end = start + bits / c.bit_rate
        self._busy_until = end + self._gap
        alt = frame[0] & 0x40 != 0
        k = self.counters
        k.frames += 1
        k.bytes += size
        k.airtime_bits += bits
        if alt:
            k.alt_path_frames += 1
        n.tx_frames += 1
        n.tx_bytes += size
        n.tx_airtime_bits += bits
        if self._ideal:
            at = end + c.latency
            hearers = self._hearers.get(source)
            if hearers is None:
                hearers = self._hearers[source] = tuple(x for x in self.nodes if x != source)
            push = self._fifo.append
            for node in hearers:
                push(_new_tuple(Delivery, (at, node, frame, source, False)))
            return end
        loss = c.loss_alt if (alt and c.loss_alt is not None) else c.loss
        rng = self._rng
        for node, nc in self.nodes.items():
            if node == source:
                continue
            if rng.random() < loss:
                k.lost += 1
                nc.rx_lost += 1
                continue
            copies = 2 if rng.random() < c.duplicate else 1
            if copies == 2:
                k.duplicated += 1
                nc.rx_duplicated += 1
            for _ in range(copies):
                data = frame
                bad = rng.random() < c.corrupt
                if bad:
                    bit = rng.randrange(len(frame) * 8)
                    buf = bytearray(frame)
                    buf[bit // 8] ^= 0x80 >> (bit % 8)
                    data = bytes(buf)
                    k.corrupted += 1
                    nc.rx_corrupted += 1
                at = end + c.latency
                if rng.random() < c.reorder:
                    at += rng.uniform(0.0, c.reorder_delay)
                    k.reordered += 1
                self._order += 1
                heapq.heappush(self._heap, (at, self._order, Delivery(at, node, data, source, bad)))
        return end

    def next_timer(self) -> float | None:
        """Time of the next pending delivery."""
        if self._ideal:
            return self._fifo[0][0] if self._fifo else None
        return self._heap[0][0] if self._heap else None

    def deliveries(self, now: float) -> list[Delivery]:
        """Pop every delivery due at or before ``now``, in arrival order."""
        out: list[Delivery] = []
        nodes = self.nodes
        if self._ideal:
            fifo = self._fifo
            while fifo and fifo[0][0] <= now:
                d = fifo.popleft()
                nc = nodes.get(d[1])
                if nc is not None:
                    nc.rx_frames += 1
                    nc.rx_bytes += len(d[2])
                    out.append(d)
            if out:
                self.counters.deliveries += len(out)
            return out
        heap = self._heap
        while heap and heap[0][0] <= now:
            d = heapq.heappop(heap)[2]
            nc = nodes.get(d.node)
            if nc is None:
                continue
            nc.rx_frames += 1
            nc.rx_bytes += len(d.frame)
            out.append(d)
        self.counters.deliveries += len(out)
        return out

    @property
    def busy_until(self) -> float:
        """When the medium becomes free (including the inter-packet gap)."""
        return self._busy_until
