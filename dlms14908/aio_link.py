"""asyncio :class:`~dlms14908.link.ApduLink` implementations over the IEC 62056-8-8 stack
(adaptation layer → optional OSGP-AES-128-PSK → LonTalk transactions → transport).

* :class:`StackLink` — one meter (address + repeater chain), over anything with a
  ``submit(endpoint, route, apdu, confirmed=, timeout=)`` coroutine: the simulated network
  (:class:`~dlms14908.simnet.SimNetwork`, virtual time) or a :class:`NodeDriver`.
* :class:`NodeDriver` — runs a sans-I/O :class:`~dlms14908.node.LonNode` behind a real
  :class:`~dlms14908.transport.link.FrameLink` (CN/IP UDP, Serial-MIP/U61, pty virtual
  transceiver, simulated channel in loop time), optionally recording every frame into a
  pcap (LINKTYPE 252) capture.  The same class serves a meter (``LonNode(server=...)``).
* :class:`OsgpKeys` — the ``[osgp]`` table of a key file::

      [osgp]
      psk = "00112233445566778899AABBCCDDEEFF"      # default PSK of every meter (optional)
      nnap_id = "4E4E41500001"                      # our NNAP ID (optional, this default)
      [osgp.meters]
      "04A1B2C3D4E5" = "0F0E0D0C0B0A09080706050403020100"   # PSK per Neuron ID

  A meter gets OSGP protection when a PSK is known for its Neuron ID (or a default exists).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .adaptation.endpoint import ClientEndpoint
from .errors import DlmsTimeout, LocalProtocolError
from .node import ExchangeDone, ExchangeFailed, LonNode, Route
from .transport.link import FrameLink, LinkClosed, LinkError

__all__ = ["DEFAULT_NNAP_ID", "NodeDriver", "OsgpKeys", "StackLink"]

from .simnet import DEFAULT_NNAP_ID  # one definition of the default NNAP ID

_HEX_JUNK = re.compile(r"[\s:_-]")


class Submitter(Protocol):
    """What :class:`StackLink` runs its exchanges on (:class:`NodeDriver`,
    :class:`~dlms14908.simnet.SimNetwork`)."""

    async def submit(self, endpoint: ClientEndpoint, route: Route, apdu: bytes, *, confirmed: bool = True,
                     timeout: float = 30.0) -> bytes | None: ...


class StackLink:
    """An :class:`~dlms14908.link.ApduLink` to one meter through the full stack."""

    def __init__(self, submitter: Submitter, endpoint: ClientEndpoint, route: Route, *,
                 on_close: Callable[[], Any] | None = None) -> None:
        self._submitter = submitter
        self.endpoint = endpoint
        self.route = route
        self._lock = asyncio.Lock()
        self._closed = False
        self._on_close = on_close
        self.requests = 0

    def __repr__(self) -> str:
        return f"<StackLink to {self.route}>"

    async def request(self, apdu: bytes, *, timeout: float) -> bytes:
        if self._closed:
            raise LocalProtocolError("link is closed")
        async with self._lock:
            self.requests += 1
            out = await self._submitter.submit(self.endpoint, self.route, bytes(apdu), confirmed=True,
                                               timeout=timeout)
        if out is None:  # pragma: no cover - the endpoint raises for empty responses
            raise DlmsTimeout("no response APDU")
        return out

    async def send(self, apdu: bytes) -> None:
        if self._closed:
            raise LocalProtocolError("link is closed")
        async with self._lock:
            await self._submitter.submit(self.endpoint, self.route, bytes(apdu), confirmed=False, timeout=30.0)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            r = self._on_close()
            if asyncio.iscoroutine(r):
                await r


class NodeDriver:
    """Drive a :class:`LonNode` over a frame link in loop time (style.md §b11: every entry
    point ends in one pump that writes frames and re-arms the single timer)."""

    def __init__(self, node: LonNode, link: FrameLink, *, capture: Any | None = None,
                 wall_clock: Callable[[], float] | None = None) -> None:
        self.node = node
        self.link = link
        self.capture = capture
        self._loop = asyncio.get_running_loop()
        import time

        self._wall = wall_clock or time.time
        self._waiters: dict[int, asyncio.Future[bytes | None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None
        self._reader = asyncio.create_task(self._read_loop())

    @property
    def now(self) -> float:
        return self._loop.time()

    async def submit(self, endpoint: ClientEndpoint, route: Route, apdu: bytes, *, confirmed: bool = True,
                     timeout: float = 30.0) -> bytes | None:
        if self._error is not None:
            raise LinkError(f"transport failed: {self._error}")
        fut: asyncio.Future[bytes | None] = self._loop.create_future()
        xid = self.node.exchange(endpoint, route, apdu, confirmed=confirmed, now=self.now)
        self._waiters[xid] = fut
        self._pump(self.node.poll_events())
        # never give up before the LonTalk layer itself can: its retries (and, through
        # repeaters, the chain's per-hop timers) end in TransactionFailed / a ProxyError
        # naming the hop, which says more than a bare timeout
        wait = max(timeout, self.node.timing.worst_case(route), 0.001)
        try:
            return await asyncio.wait_for(fut, wait)
        except TimeoutError:
            endpoint.abort()
            raise DlmsTimeout(f"no answer from {route} within {wait:g} s") from None
        finally:
            self._waiters.pop(xid, None)

    async def close(self) -> None:
        self._reader.cancel()
        try:
            await self._reader
        except (asyncio.CancelledError, LinkClosed, LinkError):
            pass
        if self._timer is not None:
            self._timer.cancel()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(LinkClosed("stack closed"))
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        await self.link.close()
        if self.capture is not None:
            self.capture.close()

    # -- internals ---------------------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            while True:
                frame = await self.link.recv()
                if self.capture is not None:
                    self.capture.write_frame(frame, self._wall())
                self._pump(self.node.receive_frame(frame, self.now))
        except (LinkClosed, LinkError) as exc:
            self._error = exc
            for fut in self._waiters.values():
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, LinkError) else LinkError(str(exc)))

    def _on_timer(self) -> None:
        now = max(self._timer_at or 0.0, self.now)
        self._timer = self._timer_at = None
        self._pump(self.node.handle_timer(now))

    def _pump(self, events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, (ExchangeDone, ExchangeFailed)):
                fut = self._waiters.get(ev.xid)
                if fut is not None and not fut.done():
                    if isinstance(ev, ExchangeDone):
                        fut.set_result(ev.apdu)
                    else:
                        fut.set_exception(ev.error)
        for frame in self.node.frames_to_send(self.now):
            if self.capture is not None:
                self.capture.write_frame(frame, self._wall())
            t = asyncio.ensure_future(self.link.send(frame))
            self._sends.add(t)
            t.add_done_callback(self._sends.discard)
        deadline = self.node.next_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer) if deadline is not None else None
            self._timer_at = deadline


def _hex(value: object, where: str, length: int) -> bytes:
    from .cli.common import KeyFileError

    if not isinstance(value, str):
        raise KeyFileError(f"{where}: must be a hex string")
    try:
        raw = bytes.fromhex(_HEX_JUNK.sub("", value))
    except ValueError:
        raise KeyFileError(f"{where}: not valid hex") from None
    if len(raw) != length:
        raise KeyFileError(f"{where}: must be {length} bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class OsgpKeys:
    """OSGP-AES-128-PSK keys of the head-end (the ``[osgp]`` key-file table)."""

    default_psk: bytes | None = field(default=None, repr=False)
    per_meter: dict[bytes, bytes] = field(default_factory=dict, repr=False)
    nnap_id: bytes = DEFAULT_NNAP_ID

    @classmethod
    def from_table(cls, table: object) -> OsgpKeys:
        """Parse the raw ``[osgp]`` table; errors name the field, never the value."""
        from .cli.common import KeyFileError

        if table is None:
            return cls()
        if not isinstance(table, dict):
            raise KeyFileError("[osgp]: must be a table")
        # [osgp.sessions] holds captured session keys for dlms-analyze; a live link derives its own
        unknown = set(table) - {"psk", "nnap_id", "meters", "sessions"}
        if unknown:
            raise KeyFileError(f"[osgp]: unknown field(s) {', '.join(sorted(unknown))}")
        psk = _hex(table["psk"], "[osgp] psk", 16) if "psk" in table else None
        nnap = _hex(table["nnap_id"], "[osgp] nnap_id", 6) if "nnap_id" in table else DEFAULT_NNAP_ID
        meters: dict[bytes, bytes] = {}
        raw = table.get("meters", {})
        if not isinstance(raw, dict):
            raise KeyFileError("[osgp.meters]: must be a table of Neuron ID = PSK")
        for nid_text, value in raw.items():
            nid = _hex(nid_text, "[osgp.meters] key", 6)
            meters[nid] = _hex(value, f"[osgp.meters] {nid.hex().upper()}", 16)
        return cls(psk, meters, nnap)

    @classmethod
    def from_keyfile(cls, keyfile: object | None) -> OsgpKeys:
        if keyfile is None:
            return cls()
        tables = getattr(keyfile, "tables", {}) or {}
        return cls.from_table(tables.get("osgp"))

    def psk_for(self, neuron_id: bytes | None) -> bytes | None:
        if neuron_id is not None and bytes(neuron_id) in self.per_meter:
            return self.per_meter[bytes(neuron_id)]
        return self.default_psk

    @property
    def enabled(self) -> bool:
        return self.default_psk is not None or bool(self.per_meter)


class MeterService:
    """A meter (a :class:`LonNode` with a server endpoint) served on a real transport."""

    def __init__(self, driver: NodeDriver) -> None:
        self.driver = driver
        self.node = driver.node

    @property
    def local_address(self) -> tuple[str, int] | None:
        """The bound (host, port) for CN/IP, else None."""
        addr: tuple[str, int] | None = getattr(self.driver.link, "local_address", None)
        return addr

    async def close(self) -> None:
        await self.driver.close()


#: the longest receive timer ISO/IEC 14908-1 can encode (index 15 of its table), seconds
LONTALK_MAX_RECEIVE_TIMER = 24.576


async def serve_meter(
    port_url: str,
    route: Callable[[int, int], Any],
    *,
    subnet: int = 1,
    node: int = 7,
    neuron_id: bytes | None = None,
    psk: bytes | None = None,
    nnap_id: bytes = DEFAULT_NNAP_ID,
    domain: bytes = b"\x42",
    capture: Any | None = None,
    lon_config: Any | None = None,
) -> MeterService:
    """Serve a COSEM handler router ``(server_sap, client_sap) -> ApduHandler | None`` as a
    LonTalk node on ``port_url`` (``cnip://?bind=127.0.0.1:0`` binds an ephemeral port: see
    :attr:`MeterService.local_address`; serial URLs attach to a transceiver).  ``psk``
    enables (and requires) OSGP-AES-128-PSK.  ``lon_config`` (a
    :class:`~dlms14908.lon.transaction.LonConfig`) replaces the node's LonTalk settings; by
    default the receive timer is LonTalk's longest, 24.576 s."""
    from .adaptation.endpoint import ServerEndpoint, address_bytes
    from .lon.transaction import LonConfig
    from .node import Timing
    from .transport.ports import open_port

    nid = neuron_id or bytes((0x04, 0x5E, 0x00, 0x00, subnet, node))
    channel = None
    if psk is not None:
        from osgp.channel import Role, SecureChannel

        channel = SecureChannel(role=Role.LNAP, local_id=nid, peer_id=nnap_id, psk=psk)
    server = ServerEndpoint(route=route, channel=channel, dest=address_bytes(domain, subnet=subnet, node=node))
    config = lon_config or LonConfig(subnet, node, domain=domain, neuron_id=nid,
                                     receive_timer=LONTALK_MAX_RECEIVE_TIMER)
    lnode = LonNode(config, server=server,
                    timing=Timing(frame_time=0.05), name=f"meter-{subnet}/{node}")
    link = await open_port(port_url)
    return MeterService(NodeDriver(lnode, link, capture=capture))
