"""An in-process simulated IEC 62056-8-8 power-line network: head-end, Annex E repeaters
and meters on one :class:`~dlms14908.transport.channel.PlChannel`, in virtual time.

Every node is a sans-I/O :class:`~dlms14908.node.LonNode`; this module only moves frames
and time (the :class:`~dlms14908.transport.simnet.VirtualTimeNetwork` loop, without its
event log so that long runs stay flat in memory).  Airtime, losses and counters are the
channel model's, so a 96-entry profile read costs what it would cost on a 3.6 kbit/s
A-band line while taking milliseconds of wall time.

The head-end picks the repeater chain of each meter from the topology
(:meth:`SimNetwork.add_meter` ``via=``) unless the caller passes one (``--via``).
:meth:`SimNetwork.submit` is the asyncio entry (``await``-able, drives virtual time while
anybody waits); :meth:`SimNetwork.run_exchange` the synchronous one for benchmarks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .adaptation.endpoint import (
    ApduHandler,
    ClientEndpoint,
    ServerEndpoint,
    address_bytes,
    lnap_address_bytes,
)
from .errors import DlmsTimeout, LocalProtocolError
from .lon.transaction import LonConfig, NeuronIdDest, NodeDest
from .node import ExchangeDone, ExchangeFailed, LonNode, Route, Timing
from .repeater.rules import NodeAddress
from .transport.channel import ChannelConfig, PlChannel

if TYPE_CHECKING:
    from osgp.channel import ChannelConfig as OsgpChannelConfig

__all__ = ["DEFAULT_DOMAIN", "DEFAULT_NNAP_ID", "SimMeter", "SimNetwork", "default_network"]

DEFAULT_DOMAIN = b"\x42"
DEFAULT_NNAP_ID = bytes.fromhex("4e4e41500001")  # "NNAP" 00 01
_HEAD = "head-end"
_OSGP_CONFIG: OsgpChannelConfig | None = None


@dataclass(slots=True)
class SimMeter:
    """A meter of the simulated network."""

    name: str
    node: LonNode
    neuron_id: bytes
    via: tuple[str, ...] = ()
    psk: bytes | None = field(default=None, repr=False)
    simulator: object | None = None
    "the application object behind the handler (e.g. a MeterSimulator), for callers"

    @property
    def address(self) -> tuple[int, int]:
        return self.node.config.subnet, self.node.config.node

    @property
    def server(self) -> ServerEndpoint:
        assert self.node.server is not None
        return self.node.server


class SimNetwork:
    """Head-end + repeaters + meters on one simulated channel, in virtual time."""

    def __init__(
        self,
        channel: ChannelConfig | None = None,
        *,
        domain: bytes = DEFAULT_DOMAIN,
        head_address: tuple[int, int] = (1, 1),
        timing: Timing | None = None,
        nnap_id: bytes = DEFAULT_NNAP_ID,
        seed: int = 0,
    ) -> None:
        self.channel = PlChannel(channel)
        self.domain = domain
        self.nnap_id = nnap_id
        self.timing = timing or Timing.for_bit_rate(self.channel.config.bit_rate)
        self.now = 0.0
        self.nodes: dict[str, LonNode] = {}
        self._timers: dict[str, float | None] = {}  # each node's deadline, kept by _sync/_advance
        self.meters: dict[str, SimMeter] = {}
        self.repeaters: dict[str, LonNode] = {}
        self._seed = seed
        self._rng_n = 0
        self._head_random: Callable[[int], bytes] | None = None
        self.head = self._add(_HEAD, LonNode(self._config(*head_address), timing=self.timing, rng=self._rng(),
                                             name=_HEAD))
        self._waiters: dict[int, asyncio.Future[bytes | None]] = {}
        self._deadlines: dict[int, tuple[float, ClientEndpoint, str]] = {}
        self._results: dict[int, ExchangeDone | ExchangeFailed] = {}
        self._driver: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._worst: tuple[Route, Timing, float] | None = None
        self.frame_taps: list[Callable[[str, bytes, float], None]] = []
        "called with (sender name, LPDU, virtual time) for every frame put on the channel"

    # ------------------------------------------------------------------ topology
    def _rng(self) -> Callable[[int], bytes]:
        import random

        self._rng_n += 1
        r = random.Random(f"{self._seed}/{self._rng_n}")
        return r.randbytes

    @staticmethod
    def _osgp_config() -> OsgpChannelConfig:
        global _OSGP_CONFIG
        if _OSGP_CONFIG is None:
            from osgp.channel import ChannelConfig as OsgpConfig

            # in-memory channels: nothing is durable, so replay windows are not snapshotted per
            # frame; one frozen config shared by every channel of every simulated network
            _OSGP_CONFIG = OsgpConfig(rx_save_interval=0)
        return _OSGP_CONFIG

    def _config(self, subnet: int, node: int, neuron_id: bytes | None = None) -> LonConfig:
        # receive records must outlive a whole chain exchange so that retries stay duplicates
        return LonConfig(subnet, node, domain=self.domain, neuron_id=neuron_id, receive_timer=120.0)

    def _add(self, name: str, node: LonNode) -> LonNode:
        if name in self.nodes:
            raise LocalProtocolError(f"node {name!r} exists")
        self.channel.attach(name)
        self.nodes[name] = node
        self._timers[name] = node.next_timer()
        return node

    def add_repeater(self, name: str, subnet: int, node: int) -> LonNode:
        """Add an Annex E repeater (also an agent)."""
        n = self._add(name, LonNode(self._config(subnet, node), repeater=True, timing=self.timing,
                                    rng=self._rng(), name=name))
        self.repeaters[name] = n
        return n

    def add_meter(
        self,
        name: str,
        subnet: int,
        node: int,
        handler: ApduHandler | None = None,
        *,
        route: Callable[[int, int], ApduHandler | None] | None = None,
        neuron_id: bytes | None = None,
        psk: bytes | None = None,
        via: Sequence[str] = (),
        repeater: bool = False,
        inactivity_timeout: int = 0,
    ) -> SimMeter:
        """Add a meter serving ``handler`` (or ``route``); ``psk`` enables OSGP-AES-128-PSK
        (protection then required); ``via`` names the repeaters the head-end goes through."""
        nid = neuron_id or bytes((0x04, 0x00, 0x00, 0x00, subnet, node))
        channel = None
        if psk is not None:
            from osgp.channel import Role, SecureChannel

            channel = SecureChannel(role=Role.LNAP, local_id=nid, peer_id=self.nnap_id, psk=psk,
                                    random=self._rng(), config=self._osgp_config())
        server = ServerEndpoint(handler, route=route, channel=channel,
                                dest=lnap_address_bytes(self.domain, subnet, node),
                                inactivity_timeout=inactivity_timeout)
        for r in via:
            if r not in self.repeaters:
                raise LocalProtocolError(f"unknown repeater {r!r}")
        n = self._add(name, LonNode(self._config(subnet, node, nid), server=server, repeater=repeater,
                                    timing=self.timing, rng=self._rng(), name=name))
        m = SimMeter(name, n, nid, tuple(via), psk)
        self.meters[name] = m
        return m

    def find_meter(self, spec: str) -> SimMeter:
        """A meter by name, ``subnet/node`` or Neuron ID (hex)."""
        if spec in self.meters:
            return self.meters[spec]
        for m in self.meters.values():
            if spec == f"{m.address[0]}/{m.address[1]}" or spec.lower().replace(":", "") == m.neuron_id.hex():
                return m
        raise LocalProtocolError(f"no meter {spec!r} on the simulated network (have: {', '.join(self.meters)})")

    def hop(self, spec: str) -> NodeAddress:
        """A repeater by name or ``subnet/node``."""
        if spec in self.repeaters:
            c = self.repeaters[spec].config
            return NodeAddress(c.subnet, c.node)
        return parse_hop(spec)

    def route_to(self, meter: SimMeter, via: Sequence[str] | None = None, *, by_neuron_id: bool = False) -> Route:
        """The head-end's route: ``via`` (repeater names or subnet/node) or the topology's chain."""
        chain = tuple(self.hop(h) for h in (meter.via if via is None else via))
        sn, nd = meter.address
        dest = NeuronIdDest(meter.neuron_id, sn) if by_neuron_id else NodeDest(sn, nd)
        return Route(dest, chain)

    def client_endpoint(self, meter: SimMeter, *, client_sap: int, server_sap: int,
                        psk: bytes | None = None, by_neuron_id: bool = False) -> ClientEndpoint:
        channel = None
        if psk is not None:
            from osgp.channel import Role, SecureChannel

            if self._head_random is None:  # one CSPRNG for all the head-end's channels, as deployed
                self._head_random = self._rng()
            channel = SecureChannel(role=Role.NNAP, local_id=self.nnap_id, peer_id=meter.neuron_id, psk=psk,
                                    random=self._head_random, config=self._osgp_config())
        sn, nd = meter.address
        dest = (address_bytes(self.domain, neuron_id=meter.neuron_id) if by_neuron_id
                else lnap_address_bytes(self.domain, sn, nd))
        return ClientEndpoint(client_sap=client_sap, server_sap=server_sap, channel=channel, dest=dest)

    # ------------------------------------------------------------------ virtual time
    def _collect(self, events: Sequence[object]) -> None:
        for ev in events:
            if type(ev) is ExchangeDone or isinstance(ev, (ExchangeDone, ExchangeFailed)):
                self._results[ev.xid] = ev
                fut = self._waiters.pop(ev.xid, None)
                if fut is not None and not fut.done():
                    if isinstance(ev, ExchangeDone):
                        fut.set_result(ev.apdu)
                    else:
                        fut.set_exception(ev.error)

    def step(self, until: float | None = None) -> bool:
        """Advance to the next deadline (not beyond ``until``); False when idle."""
        self._sync()  # callers may have driven a node directly since the last step
        return self._advance(until)

    def _sync(self) -> None:
        """Put every node's output on the channel and note every node's deadline."""
        now = self.now
        taps = self.frame_taps
        transmit = self.channel.transmit
        timers = self._timers
        for name, node in self.nodes.items():
            frames = node.frames_to_send(now)
            if frames:
                for f in frames:
                    transmit(name, f, now)
                    for tap in taps:
                        tap(name, f, now)
            timers[name] = node.next_timer()

    def _advance(self, until: float | None) -> bool:
        """One step from a synced state (:meth:`_sync`), which it leaves synced: only the
        nodes it calls (receivers of this instant's frames, nodes whose timer is due) can
        have new output or a new deadline.  Loops that run no foreign code between steps
        (run, run_exchange, a stretch of the asyncio driver) sync once and then advance."""
        timers = self._timers
        ch = self.channel
        if ch._ideal:  # its next arrival is the head of its FIFO (PlChannel.next_timer, inline)
            fifo = ch._fifo
            t = fifo[0][0] if fifo else None
        else:
            t = ch.next_timer()
        for nt in timers.values():
            if nt is not None and (t is None or nt < t):
                t = nt
        if t is None:
            return False
        now = self.now
        if t < now:
            t = now
        if until is not None and t > until:
            if until > now:
                self.now = until
            return False
        self.now = t
        nodes = self.nodes
        collect = self._collect
        touched: list[str] = []
        for d in self.channel.deliveries(t):
            name = d[1]
            receiver = nodes.get(name)
            if receiver is not None:
                touched.append(name)
                events = receiver.receive_frame(d[2], t)
                if events:
                    collect(events)
        # due timers fire in node order; each node's output (replies to what it received,
        # retries) then goes on the channel in the same order
        taps = self.frame_taps
        transmit = self.channel.transmit
        for name, node in nodes.items():
            nt = timers[name]
            if (nt is None or nt > t) and name not in touched:
                continue
            nt = node.next_timer()
            if nt is not None and nt <= t:
                events = node.handle_timer(t)
                if events:
                    collect(events)
                nt = node.next_timer()
            timers[name] = nt
            frames = node.frames_to_send(t)
            if frames:
                for f in frames:
                    transmit(name, f, t)
                    for tap in taps:
                        tap(name, f, t)
        return True

    def run(self, until: float | None = None, *, max_steps: int = 10_000_000) -> float:
        self._sync()
        advance = self._advance
        for _ in range(max_steps):
            if not advance(until):
                return self.now
        raise LocalProtocolError(f"network still busy after {max_steps} steps")

    def _worst_case(self, route: Route) -> float:
        """``timing.worst_case(route)``, remembered for the last route object asked about
        (an exchange loop asks once per step with the same Route; hashing a Route would
        cost more than the computation)."""
        last = self._worst
        if last is not None and last[0] is route and last[1] is self.timing:
            return last[2]
        w = self.timing.worst_case(route)
        self._worst = (route, self.timing, w)
        return w

    def start(self, endpoint: ClientEndpoint, route: Route, apdu: bytes, *, confirmed: bool = True) -> int:
        xid = self.head.exchange(endpoint, route, apdu, confirmed=confirmed, now=self.now)
        self._collect(self.head.poll_events())
        return xid

    def run_exchange(self, endpoint: ClientEndpoint, route: Route, apdu: bytes, *, confirmed: bool = True,
                     timeout: float | None = None) -> bytes | None:
        """Run one exchange to its end in virtual time (synchronous); raise its error."""
        xid = self.start(endpoint, route, apdu, confirmed=confirmed)
        deadline = self.now + max(timeout or 0.0, self._worst_case(route) * 4)
        results = self._results
        if xid not in results:
            self._sync()
            advance = self._advance
            while xid not in results:
                if not advance(deadline):
                    break
        res = results.pop(xid, None)
        if res is None:
            endpoint.abort()
            raise DlmsTimeout(f"no answer from {route} within {deadline:.1f} s of simulated time")
        if isinstance(res, ExchangeFailed):
            raise res.error
        return res.apdu

    async def submit(self, endpoint: ClientEndpoint, route: Route, apdu: bytes, *, confirmed: bool = True,
                     timeout: float = 30.0) -> bytes | None:
        """asyncio entry: start the exchange and let the shared driver advance virtual time.

        ``timeout`` is simulated seconds, never less than the route's worst case."""
        loop = asyncio.get_running_loop()
        xid = self.start(endpoint, route, apdu, confirmed=confirmed)
        res = self._results.pop(xid, None)
        if res is not None:
            if isinstance(res, ExchangeFailed):
                raise res.error
            return res.apdu
        fut: asyncio.Future[bytes | None] = loop.create_future()
        deadline = self.now + max(timeout, self._worst_case(route) * 4)
        self._waiters[xid] = fut
        self._deadlines[xid] = (deadline, endpoint, str(route))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        try:
            return await fut
        finally:
            self._waiters.pop(xid, None)
            self._deadlines.pop(xid, None)
            self._results.pop(xid, None)

    def _expire(self, force: bool) -> None:
        for xid, (deadline, endpoint, where) in list(self._deadlines.items()):
            fut = self._waiters.get(xid)
            if fut is None or fut.done():
                self._deadlines.pop(xid, None)
                continue
            if force or self.now >= deadline:
                endpoint.abort()
                msg = "the simulated network went idle" if force and self.now < deadline else "no answer"
                fut.set_exception(DlmsTimeout(f"{msg} from {where} (simulated time {self.now:.1f} s)"))
                self._deadlines.pop(xid, None)
                self._waiters.pop(xid, None)

    async def _drive(self) -> None:
        n = 0
        synced = False
        while self._waiters:
            until = min(d for d, _, _ in self._deadlines.values()) if self._deadlines else None
            if not synced:  # other coroutines may have started exchanges while we yielded
                self._sync()
                synced = True
            if not self._advance(until):
                self._expire(force=until is None or self.now < until)  # aborts endpoints only
            n += 1
            if n % 32 == 0:
                await asyncio.sleep(0)
                synced = False

    # ------------------------------------------------------------------ reporting
    def describe(self) -> str:
        """One line per node, for the stderr announcement of ``--port sim``."""
        lines = [(f"simulated power-line network ({self.channel.config.bit_rate:.0f} bit/s, "
                  f"loss {self.channel.config.loss:.0%}), head-end {self.head.name} "
                  f"{self.head.config.subnet}/{self.head.config.node}")]
        for r in self.repeaters.values():
            lines.append(f"  repeater {r.name} at {r.config.subnet}/{r.config.node}")
        for m in self.meters.values():
            via = f" via {', '.join(m.via)}" if m.via else ""
            sec = " OSGP-AES-128-PSK" if m.psk else ""
            lines.append(f"  meter {m.name} at {m.address[0]}/{m.address[1]} nid {m.neuron_id.hex()}{via}{sec}")
        return "\n".join(lines)


def parse_hop(spec: str) -> NodeAddress:
    """``subnet/node`` (or ``subnet.node``) -> :class:`NodeAddress`."""
    text = spec.strip().replace(".", "/")
    try:
        sn, nd = (int(x, 0) for x in text.split("/"))
        return NodeAddress(sn, nd)
    except (ValueError, TypeError):
        raise LocalProtocolError(f"bad repeater address {spec!r} (want subnet/node)") from None


def default_network(
    handler_for: Callable[[str, LonNode], ApduHandler],
    *,
    channel: ChannelConfig | None = None,
    psk_for: Callable[[bytes], bytes | None] = lambda nid: None,
    seed: int = 0,
) -> SimNetwork:
    """The ``--port sim`` network: 2 repeaters and 4 meters, two of them behind repeaters.

    ``handler_for(name, node)`` returns each meter's COSEM handler (it may keep ``node``
    to read its link counters); ``psk_for(neuron_id)`` its OSGP PSK or None."""
    net = SimNetwork(channel, seed=seed)
    net.add_repeater("rep1", 2, 10)
    net.add_repeater("rep2", 3, 10)
    plan = [("meter1", 2, 1, ()), ("meter2", 2, 2, ()), ("meter3", 3, 1, ("rep1",)),
            ("meter4", 4, 1, ("rep1", "rep2"))]
    for name, sn, nd, via in plan:
        nid = bytes((0x04, 0x00, 0x00, 0x00, sn, nd))
        holder: dict[str, ApduHandler] = {}

        def lazy(apdu: bytes, _h: dict[str, ApduHandler] = holder) -> bytes | None:
            return _h["h"](apdu)

        m = net.add_meter(name, sn, nd, lazy, neuron_id=nid, psk=psk_for(nid), via=via)
        holder["h"] = handler_for(name, m.node)
    return net

