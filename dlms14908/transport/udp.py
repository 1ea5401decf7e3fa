"""ISO/IEC 14908-4 (CN/IP) data packets over UDP: an asyncio frame link.

Each LPDU (with CRC) travels in one CN/IP data packet (type 0x01, protocol 0; header codec
:mod:`dlms14908.lon.cnip`, reference ``lontalk.md`` §3.2).  Default ports: 1628 (normal) and
1629 (urgent, used for priority frames when the peer port is the default; a link bound to
1628 also listens on 1629, or on ``urgent_local``).  Only data
packets are handled; the CN/IP configuration-server exchange (device registration, channel
membership) is out of scope - peers are configured explicitly.

A link opened without a peer (a serving meter) behaves like a CN/IP channel towards the nodes
it hears: every frame goes to each UDP address a valid data packet came from within
``peer_ttl`` seconds (at most ``max_peers`` of them, the most recent; the latest sender is kept
even when silent longer), and each receiver keeps what is addressed to it.  Every
``dlms-cli`` run binds a new ephemeral port, so a link bound to its first sender would answer a
dead port once that process has exited.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..errors import DecodeError, LocalProtocolError
from ..lon.cnip import PORT_NORMAL, PORT_URGENT, CnipPacketType, decode_packet, encode_data_packet
from .link import BaseLink, LinkError

__all__ = ["DEFAULT_MAX_PEERS", "DEFAULT_PEER_TTL", "CnipLink"]

#: a serving link answers the senders heard within this many seconds
DEFAULT_PEER_TTL = 600.0
#: ... and at most this many of them (the most recent)
DEFAULT_MAX_PEERS = 16
#: senders whose last sequence number is remembered (diagnostics)
_MAX_SEQUENCE_ENTRIES = 64


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, link: CnipLink) -> None:
        self.link = link

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.link._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.: not fatal
        self.link.icmp_errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.link._fail(LinkError(f"UDP socket lost: {exc}"))


class CnipLink(BaseLink):
    """LonTalk frames in CN/IP data packets over UDP."""

    def __init__(self, peer: tuple[str, int] | None, *, session: int | None = None,
                 urgent_port: int | None = None, peer_ttl: float = DEFAULT_PEER_TTL,
                 max_peers: int = DEFAULT_MAX_PEERS, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        if not peer_ttl > 0:
            raise LocalProtocolError("peer_ttl must be positive")
        if max_peers < 1:
            raise LocalProtocolError("max_peers must be at least 1")
        #: the fixed peer; for a serving link (opened without one) the latest sender heard
        self.peer = peer
        #: True when opened without a peer: frames go to the senders heard recently
        self.serving = peer is None
        self.peer_ttl = float(peer_ttl)
        self.max_peers = max_peers
        self._clock = clock or time.monotonic
        self._heard: OrderedDict[tuple[str, int], float] = OrderedDict()  # most recent last
        self.urgent_port = urgent_port
        self.session = int.from_bytes(os.urandom(4), "big") if session is None else session
        self._seq = 0
        self._t0 = 0.0
        self._transport: asyncio.DatagramTransport | None = None
        self._urgent_transport: asyncio.DatagramTransport | None = None
        self.icmp_errors = 0
        self.last_sequence: dict[tuple[Any, ...], int] = {}

    @classmethod
    async def open(
        cls,
        peer: tuple[str, int] | None = None,
        *,
        local: tuple[str, int] = ("0.0.0.0", PORT_NORMAL),
        session: int | None = None,
        urgent_port: int | None = None,
        urgent_local: tuple[str, int] | None = None,
        peer_ttl: float = DEFAULT_PEER_TTL,
        max_peers: int = DEFAULT_MAX_PEERS,
        clock: Callable[[], float] | None = None,
    ) -> CnipLink:
        """Bind ``local`` (port 0 = any) and talk to ``peer``; without a peer, answer every
        sender heard within ``peer_ttl`` seconds (at most ``max_peers``; see the module).

        Priority frames go to the peer's ``urgent_port`` (1629 when the peer uses 1628).
        Incoming frames are also taken on ``urgent_local``, which defaults to port 1629
        when ``local`` is port 1628.  ``clock`` (seconds, default monotonic) ages the senders."""
        loop = asyncio.get_running_loop()
        if urgent_port is None and peer is not None and peer[1] == PORT_NORMAL:
            urgent_port = PORT_URGENT
        if urgent_local is None and local[1] == PORT_NORMAL:
            urgent_local = (local[0], PORT_URGENT)
        link = cls(peer, session=session, urgent_port=urgent_port, peer_ttl=peer_ttl, max_peers=max_peers,
                   clock=clock)
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(link), local_addr=local)
        except OSError as exc:
            raise LinkError(f"cannot bind UDP {local[0]}:{local[1]}: {exc}") from None
        link._transport = transport
        if urgent_local is not None:
            try:
                link._urgent_transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Proto(link), local_addr=urgent_local
                )
            except OSError as exc:
                transport.close()
                raise LinkError(f"cannot bind UDP {urgent_local[0]}:{urgent_local[1]}: {exc}") from None
        link._t0 = loop.time()
        return link

    @property
    def urgent_local_address(self) -> tuple[str, int] | None:
        """Where urgent (priority) frames are received, when bound separately."""
        if self._urgent_transport is None:
            return None
        host, port = self._urgent_transport.get_extra_info("sockname")[:2]
        return host, port

    @property
    def local_address(self) -> tuple[str, int]:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    @property
    def peers(self) -> list[tuple[str, int]]:
        """Where :meth:`send` goes: the fixed peer, or (serving) the senders heard within
        ``peer_ttl``, most recent last; the latest sender stays even when silent longer."""
        if not self.serving:
            return [self.peer] if self.peer is not None else []
        now = self._clock()
        while len(self._heard) > 1:
            key, heard = next(iter(self._heard.items()))
            if now - heard <= self.peer_ttl:
                break
            del self._heard[key]
        return list(self._heard)

    async def send(self, frame: bytes) -> None:
        """Send one LPDU (with CRC) in a CN/IP data packet to the peer (serving: to every
        recent sender)."""
        self._check_open()
        targets = self.peers
        if not targets:
            raise LinkError("no CN/IP peer known yet (nothing received)")
        assert self._transport is not None
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        ms = int((asyncio.get_running_loop().time() - self._t0) * 1000) & 0xFFFFFFFF
        packet = encode_data_packet(bytes(frame), session=self.session, sequence=self._seq, timestamp=ms)
        urgent = bool(frame and frame[0] & 0x80) and self.urgent_port is not None and not self.serving
        for host, port in targets:
            self._transport.sendto(packet, (host, self.urgent_port if urgent else port))
        self._count_sent(frame)

    async def close(self) -> None:
        if self.closed:
            return
        self._mark_closed()
        for t in (self._transport, self._urgent_transport):
            if t is not None:
                t.close()

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            pkt = decode_packet(data)
        except DecodeError:
            self.stats.frames_dropped += 1
            return
        if pkt.packet_type != CnipPacketType.DATA or pkt.protocol != 0 or not pkt.payload:
            self.stats.frames_dropped += 1
            return
        key = (addr[0], addr[1])
        if self.serving:
            self.peer = key
            self._heard.pop(key, None)
            self._heard[key] = self._clock()
            while len(self._heard) > self.max_peers:
                self._heard.popitem(last=False)
        self.last_sequence.pop(key, None)
        self.last_sequence[key] = pkt.sequence
        if len(self.last_sequence) > _MAX_SEQUENCE_ENTRIES:
            del self.last_sequence[next(iter(self.last_sequence))]
        self._deliver(pkt.payload)
