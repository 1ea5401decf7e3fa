"""Opening the APDU link of one meter for the command-line tools: the one place a port URL,
a meter address, a repeater chain, keys and a capture file turn into an
:class:`~dlms14908.link.ApduLink`.

Every port runs the full IEC 62056-8-8 stack (adaptation layer → optional
OSGP-AES-128-PSK → LonTalk transactions → transport):

* ``sim`` or ``sim://?loss=0.1&seed=7&down=2/11&start=2026-01-01T00:00:30Z`` — the built-in
  simulated power-line network (3.6 kbit/s A-band, virtual time; ``loss``: frame loss
  probability, ``seed``: the channel's random seed, ``down``: comma-separated subnet/node
  addresses of nodes that are switched off, to see a meter or repeater fail, ``start``: the
  simulated meters' clock at start, ISO 8601 with a zone or POSIX seconds — default now;
  with ``seed`` it makes a session reproducible):
  a :class:`~dlms14908.simnet.SimNetwork` whose meters are :class:`~dlms14908.sim.MeterSimulator`
  instances created on demand per address (classes 132/133 report their node's real
  LonTalk counters); ``--via`` repeaters are created on demand too and really run the
  Annex E rules.  The network is described on stderr.
* ``cnip://host:port`` — CN/IP data packets over UDP (e.g. ``dlms-meter-sim --cnip``);
* ``/dev/tty...``, ``serial://...``, ``socket://...``, ``rfc2217://...`` — a Serial-MIP/U61
  transceiver through pyserial.

On real ports the head-end is a LonTalk node of its own (default 1/126, ``--source``).
The ``[osgp]`` key-file table (:class:`~dlms14908.aio_link.OsgpKeys`) turns on
OSGP-AES-128-PSK; it needs the meter's Neuron ID (``--meter`` as a Neuron ID, or a single
``[osgp.meters]`` entry) except on ``sim``.  ``--capture`` records every frame the head-end
sends or receives (``sim``: every frame on the channel) as pcap LINKTYPE 252.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import LocalProtocolError
from ..keyfile import KeyFile
from ..link import ApduLink
from ..profile import SAP_MANAGEMENT, SAP_PUBLIC_CLIENT
from .common import PortError

if TYPE_CHECKING:
    from ..aio_link import StackLink
    from ..node import LonNode, Route

__all__ = [
    "SIM_NOTICE",
    "MeterAddress",
    "is_sim",
    "open_link",
    "parse_meter",
    "parse_sim_url",
    "parse_via",
    "sim_network",
]

SIM_NOTICE = "using the built-in simulated meter network (--port sim)"

_SN = re.compile(r"^\s*(\d{1,3})\s*/\s*(\d{1,3})\s*$")
_NID = re.compile(r"^\s*([0-9A-Fa-f]{2}(?:[:\-]?[0-9A-Fa-f]{2}){5})\s*$")


@dataclass(frozen=True, slots=True)
class MeterAddress:
    """A LonTalk destination: ``subnet/node`` (subnet 1-255, node 1-127) or a 6-byte Neuron ID."""

    subnet: int | None = None
    node: int | None = None
    neuron_id: bytes | None = None

    def __str__(self) -> str:
        if self.neuron_id is not None:
            return self.neuron_id.hex().upper()
        return f"{self.subnet}/{self.node}"


def parse_meter(text: str) -> MeterAddress:
    """``1/7`` or ``04A1B2C3D4E5`` (separators ``:``/``-`` allowed); ValueError otherwise."""
    m = _SN.match(text)
    if m:
        subnet, node = int(m.group(1)), int(m.group(2))
        if not 1 <= subnet <= 255 or not 1 <= node <= 127:
            raise ValueError(f"{text!r}: subnet must be 1-255 and node 1-127")
        return MeterAddress(subnet=subnet, node=node)
    m = _NID.match(text)
    if m:
        return MeterAddress(neuron_id=bytes.fromhex(re.sub(r"[:\-]", "", m.group(1))))
    raise ValueError(f"{text!r}: expected subnet/node (e.g. 1/7) or a 12-hex-digit Neuron ID")


def parse_via(text: str) -> tuple[MeterAddress, ...]:
    """A repeater chain ``1/3,1/5`` (first hop first); ValueError on a bad element."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError("empty repeater chain")
    if len(parts) > 7:
        raise ValueError("at most 7 repeaters")
    return tuple(parse_meter(p) for p in parts)


_SIM: CliSimNetwork | None = None


def is_sim(port_url: str) -> bool:
    """True for the built-in simulated network: ``sim``, ``sim://`` or ``sim://?options``."""
    u = port_url.strip().lower()
    return u in ("sim", "sim:", "sim://") or u.startswith(("sim?", "sim://?"))


def parse_sim_url(port_url: str) -> dict[str, Any]:
    """The options of a ``sim`` URL: ``loss`` (0..1), ``seed`` (int), ``down`` (addresses),
    ``start`` (ISO 8601 with a zone, or POSIX seconds).  PortError names a bad option."""
    from urllib.parse import parse_qsl

    _, _, query = port_url.strip().partition("?")
    out: dict[str, Any] = {"loss": 0.0, "seed": 0, "down": ()}
    for key, value in parse_qsl(query, keep_blank_values=True):
        try:
            if key == "loss":
                out["loss"] = float(value)
                if not 0.0 <= out["loss"] < 1.0:
                    raise ValueError("must be within 0..1")
            elif key == "seed":
                out["seed"] = int(value)
            elif key == "down":
                out["down"] = out["down"] + parse_via(value)
            elif key == "start":
                out["start"] = _parse_start(value)
            else:
                raise PortError(
                    f"--port {port_url}: unknown sim option {key!r} (known: loss, seed, down, start)"
                )
        except ValueError as exc:
            raise PortError(f"--port {port_url}: sim option {key}: {exc}") from None
    return out


def _parse_start(value: str) -> float:
    """POSIX seconds, or an ISO 8601 date-time that names its zone."""
    import datetime as dt

    try:
        return float(value)
    except ValueError:
        pass
    stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        raise ValueError("give a zone (e.g. Z or +01:00) or POSIX seconds")
    return stamp.timestamp()


class CliSimNetwork:
    """The process-wide ``--port sim`` network: a virtual-time power line with meters and
    repeaters created on demand (one :class:`~dlms14908.sim.MeterSimulator` per address)."""

    def __init__(self, keys: KeyFile | None = None, *, seed: int = 0, loss: float = 0.0,
                 down: tuple[MeterAddress, ...] = (), start: float | None = None) -> None:
        from ..aio_link import OsgpKeys
        from ..simnet import SimNetwork
        from ..transport.channel import ChannelConfig

        self.osgp = OsgpKeys.from_keyfile(keys)
        self.net = SimNetwork(ChannelConfig(seed=seed, loss=loss), nnap_id=self.osgp.nnap_id, seed=seed)
        self.down = {(a.subnet, a.node) for a in down if a.neuron_id is None}
        self._t0 = time.time() if start is None else start
        dl = keys.dlms if keys is not None else None
        self._password = dl.lls_password if dl is not None and dl.lls_password else None
        self._keys = dl.keys if dl is not None else None
        self._system_title = dl.sender_system_title(from_client=False) if dl is not None else None
        self._announced: set[str] = set()
        self._next_node = 100

    def clock(self) -> float:
        """Simulated POSIX time: start time + virtual seconds elapsed on the channel."""
        return self._t0 + self.net.now

    def _repeater(self, addr: MeterAddress) -> str:
        for name, n in self.net.repeaters.items():
            if (n.config.subnet, n.config.node) == (addr.subnet, addr.node):
                return name
        if addr.subnet is None or addr.node is None:
            raise PortError("--via: repeaters are given as subnet/node")
        name = f"repeater-{addr.subnet}/{addr.node}"
        self.net.add_repeater(name, addr.subnet, addr.node)
        self._switch_off(name, (addr.subnet, addr.node))
        return name

    def _switch_off(self, name: str, address: tuple[int | None, int | None]) -> None:
        """A node listed in ``down`` stays on the channel but never receives or answers."""
        if address in self.down:
            self.net.nodes.pop(name, None)

    def meter(self, addr: MeterAddress, via: tuple[MeterAddress, ...] | None = None) -> Any:
        """The :class:`~dlms14908.simnet.SimMeter` at ``addr`` (created on first use)."""
        import hashlib

        from ..sim import DEFAULT_KEYS, DEFAULT_PASSWORD, MeterSimulator

        chain = tuple(self._repeater(h) for h in (via or ()))
        for m in self.net.meters.values():
            if (addr.neuron_id is not None and m.neuron_id == addr.neuron_id) or (
                    addr.neuron_id is None and m.address == (addr.subnet, addr.node)):
                return m
        if addr.neuron_id is not None:
            subnet, node = 1, self._next_node
            self._next_node += 1
            nid = addr.neuron_id
        else:
            assert addr.subnet is not None and addr.node is not None
            subnet, node = addr.subnet, addr.node
            nid = bytes((0x04, 0x5E, 0x00, 0x00, subnet, node))
        seed = int.from_bytes(hashlib.blake2b(f"sim:{nid.hex()}".encode(), digest_size=8).digest(), "big") >> 1
        holder: dict[str, LonNode] = {}

        def c132() -> dict[str, int]:
            return holder["node"].link_counters()["class132"]

        def c133() -> dict[str, int]:
            return holder["node"].link_counters()["class133"]

        sim = MeterSimulator(seed=seed, clock=self.clock, password=self._password or DEFAULT_PASSWORD,
                             keys=self._keys or DEFAULT_KEYS, system_title=self._system_title,
                             node=(subnet, node), neuron_id=nid, counters=(c132, c133), domain=self.net.domain)

        def route(server_sap: int, client_sap: int) -> Any:
            return sim.handler_for(client_sap) if server_sap == SAP_MANAGEMENT else None

        m = self.net.add_meter(f"meter-{subnet}/{node}", subnet, node, route=route, neuron_id=nid,
                               psk=self.osgp.psk_for(nid), via=chain)
        holder["node"] = m.node
        m.simulator = sim
        sim.bind_protocol_setup(m.server)  # class 131 is the endpoint's real inactivity timeout
        self._switch_off(m.name, (subnet, node))
        return m

    def describe(self) -> list[str]:
        """One line for the channel and head-end, one per repeater and meter."""
        net = self.net
        cfg = net.channel.config
        hc = net.head.config
        lines = [(f"simulated power-line channel: {cfg.bit_rate:.0f} bit/s, {cfg.loss:.0%} frame loss, "
                  f"virtual time; head-end at {hc.subnet}/{hc.node}")]
        for r in net.repeaters.values():
            off = ", switched off" if (r.config.subnet, r.config.node) in self.down else ""
            lines.append(f"repeater at {r.config.subnet}/{r.config.node} (Annex E proxy){off}")
        for m in net.meters.values():
            hops = [f"{net.repeaters[h].config.subnet}/{net.repeaters[h].config.node}" if h in net.repeaters
                    else h for h in m.via]
            extra = [f"via {' -> '.join(hops)}"] if hops else []
            if m.psk:
                extra.append("OSGP-AES-128-PSK")
            if m.address in self.down:
                extra.append("switched off")
            tail = f", {', '.join(extra)}" if extra else ""
            lines.append(f"meter at {m.address[0]}/{m.address[1]} (Neuron ID {m.neuron_id.hex().upper()}){tail}")
        return lines

    def announce(self, emit: Callable[[str], None] | None = None) -> None:
        """Pass the lines of :meth:`describe` not announced yet to ``emit`` (default: the
        ``dlms14908.sim`` logger at INFO; ``dlms-cli`` prints them on stderr)."""
        new = [ln for ln in self.describe() if ln not in self._announced]
        out = emit or _log.info
        for ln in new:
            out(ln)
        self._announced.update(new)


def sim_network(keys: KeyFile | None = None, port_url: str = "sim") -> CliSimNetwork:
    """The process-wide simulated network (provisioned from the key file, configured by the
    ``sim`` URL's options on first use)."""
    global _SIM
    if _SIM is None:
        _SIM = CliSimNetwork(keys, **parse_sim_url(port_url))
    return _SIM


def _open_failed(what: str, exc: BaseException) -> str:
    """``cannot open URL: reason`` without the layers below repeating "cannot open URL"."""
    text = str(exc)
    for pat in (r"^cannot open '[^']*': ", r"^(\[Errno \d+\] )?[Cc]ould not open port \S+?: "):
        text = re.sub(pat, "", text)
    return f"cannot open {what}: {text}"


class _LazyLink:
    """An ApduLink whose transport is opened on first use (open_link is synchronous)."""

    def __init__(self, opener: Callable[[], Awaitable[StackLink]], what: str) -> None:
        self._opener = opener
        self._what = what
        self._link: StackLink | None = None
        self._closed = False
        #: set by the opener: the LonTalk worst case of one exchange step on this route (all
        #: retries of every hop); a shorter --timeout would cut a repeater chain short and turn
        #: a proxy failure naming the hop into an anonymous timeout
        self.min_timeout = 0.0

    async def _get(self) -> StackLink:
        if self._closed:
            raise LocalProtocolError("link is closed")
        if self._link is None:
            try:
                self._link = await self._opener()
            except (OSError, LocalProtocolError) as exc:
                raise PortError(_open_failed(self._what, exc)) from None
            except Exception as exc:
                from ..transport.link import LinkError

                if isinstance(exc, LinkError):
                    raise PortError(_open_failed(self._what, exc)) from None
                raise
        return self._link

    async def request(self, apdu: bytes, *, timeout: float) -> bytes:
        link = await self._get()
        return await link.request(apdu, timeout=max(timeout, self.min_timeout))

    async def send(self, apdu: bytes) -> None:
        link = await self._get()
        await link.send(apdu)

    async def close(self) -> None:
        self._closed = True
        if self._link is not None:
            await self._link.close()


def _route(meter: MeterAddress, via: tuple[MeterAddress, ...] | None) -> Route:
    from ..lon.transaction import NeuronIdDest, NodeDest
    from ..node import Route
    from ..repeater.rules import NodeAddress

    chain = []
    for h in via or ():
        if h.subnet is None or h.node is None:
            raise PortError("--via: repeaters are given as subnet/node")
        chain.append(NodeAddress(h.subnet, h.node))
    dest: NodeDest | NeuronIdDest
    if meter.neuron_id is not None:
        dest = NeuronIdDest(meter.neuron_id, 0)
    elif meter.subnet is not None and meter.node is not None:
        dest = NodeDest(meter.subnet, meter.node)
    else:
        raise PortError(f"meter address {meter}: give subnet/node or a Neuron ID")
    return Route(dest, tuple(chain))


async def _resolve_cnip(url: str) -> None:
    """Resolve the host of a ``cnip://host:port`` URL up front: an unknown host is a PortError
    (UDP sends to it would otherwise fail silently, looking like a meter that never answers)."""
    import asyncio
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise PortError(f"{url}: {exc}") from None
    if not host:
        return
    try:
        await asyncio.get_running_loop().getaddrinfo(host, port or 1628, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise PortError(f"{url}: cannot resolve {host!r} ({exc.strerror or exc})") from None


_log = logging.getLogger("dlms14908.sim")

#: the head-end's own LonTalk address on real ports unless --source says otherwise
DEFAULT_SOURCE = MeterAddress(1, 126)


def open_link(port_url: str, meter: MeterAddress, via: tuple[MeterAddress, ...] | None,
              keys: KeyFile | None, capture: str | None, *,
              client_sap: int = SAP_PUBLIC_CLIENT, source: MeterAddress | None = None,
              announce: Callable[[str], None] | None = None) -> ApduLink:
    """The ApduLink to ``meter`` (optionally through repeaters ``via``) on ``port_url`` for
    ``client_sap``; records to ``capture`` (pcap) when given; ``source`` is the head-end's own
    subnet/node on a real port (default :data:`DEFAULT_SOURCE`; the simulated network has its
    own head-end).  On ``sim`` the network's new nodes are described line by line to
    ``announce`` (default: the ``dlms14908.sim`` logger at INFO, so a library stays quiet).
    PortError when not possible."""
    from ..adaptation.endpoint import ClientEndpoint, address_bytes
    from ..aio_link import NodeDriver, OsgpKeys, StackLink

    writer = None
    if capture:
        from ..pcap import open_capture

        try:
            writer = open_capture(capture)
        except OSError as exc:
            raise PortError(f"--capture {capture}: {exc}") from None
    if is_sim(port_url):
        cli = sim_network(keys, port_url)
        m = cli.meter(meter, via)
        cli.announce(announce)
        net = cli.net
        if writer is not None:
            t0 = cli._t0
            net.frame_taps.append(lambda _n, frame, t: writer.write_frame(frame, t0 + t))
        psk = cli.osgp.psk_for(m.neuron_id)
        ep = net.client_endpoint(m, client_sap=client_sap, server_sap=SAP_MANAGEMENT, psk=psk,
                                 by_neuron_id=meter.neuron_id is not None)
        route = net.route_to(m, [f"{h.subnet}/{h.node}" for h in via] if via else None,
                             by_neuron_id=meter.neuron_id is not None)

        async def close_capture() -> None:
            if writer is not None:
                writer.close()

        return StackLink(net, ep, route, on_close=close_capture)

    osgp = OsgpKeys.from_keyfile(keys)
    route = _route(meter, via)
    src = source or DEFAULT_SOURCE
    src_subnet, src_node = src.subnet, src.node
    if src_subnet is None or src_node is None:
        raise PortError(f"source {src}: give the head-end's address as subnet/node")
    domain = b"\x42"
    channel = None
    if osgp.enabled:
        nid = meter.neuron_id
        if nid is None and len(osgp.per_meter) == 1:
            nid = next(iter(osgp.per_meter))
        psk = osgp.psk_for(nid)
        if nid is None or psk is None:
            raise PortError("OSGP-AES-128-PSK needs the meter's Neuron ID: give --meter as a Neuron ID "
                            "or exactly one [osgp.meters] entry")
        from osgp.channel import Role, SecureChannel

        channel = SecureChannel(role=Role.NNAP, local_id=osgp.nnap_id, peer_id=nid, psk=psk)
    dest = (address_bytes(domain, neuron_id=meter.neuron_id) if meter.neuron_id is not None
            else address_bytes(domain, subnet=meter.subnet, node=meter.node))
    ep = ClientEndpoint(client_sap=client_sap, server_sap=SAP_MANAGEMENT, channel=channel, dest=dest)

    async def opener() -> StackLink:
        from ..lon.transaction import LonConfig
        from ..node import LonNode, Timing
        from ..transport.ports import open_port

        url = port_url.strip()
        opts: dict[str, Any] = {}
        if url.lower().startswith("cnip:"):
            opts["local"] = ("0.0.0.0", 0)
            await _resolve_cnip(url)
        link = await open_port(url, **opts)
        timing = Timing(frame_time=0.05) if url.lower().startswith("cnip:") else Timing()
        head = LonNode(LonConfig(src_subnet, src_node, domain=domain, receive_timer=120.0), timing=timing,
                       name="head-end")
        drv = NodeDriver(head, link, capture=writer)
        if route.chain:
            lazy.min_timeout = timing.worst_case(route)
        return StackLink(drv, ep, route, on_close=drv.close)

    lazy = _LazyLink(opener, port_url)
    return lazy
