"""ISO/IEC 14908-4 (CN/IP) data packets over UDP: an asyncio frame link.

Each LPDU (with CRC) travels in one CN/IP data packet (type 0x01, protocol 0; header codec
:mod:`dlms14908.lon.cnip`, reference ``lontalk.md`` §3.2).  Default ports: 1628 (normal) and
1629 (urgent, used for priority frames when the peer port is the default; a link bound to
1628 also listens on 1629, or on ``urgent_local``).  Only data
packets are handled; the CN/IP configuration-server exchange (device registration, channel
membership) is out of scope - peers are configured explicitly.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ..errors import DecodeError
from ..lon.cnip import PORT_NORMAL, PORT_URGENT, CnipPacketType, decode_packet, encode_data_packet
from .link import BaseLink, LinkError

__all__ = ["CnipLink"]


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
                 urgent_port: int | None = None) -> None:
        super().__init__()
        self.peer = peer
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
    ) -> CnipLink:
        """Bind ``local`` (port 0 = any) and talk to ``peer`` (None: answer whoever sends first).

        Priority frames go to the peer's ``urgent_port`` (1629 when the peer uses 1628).
        Incoming frames are also taken on ``urgent_local``, which defaults to port 1629
        when ``local`` is port 1628."""
        loop = asyncio.get_running_loop()
        if urgent_port is None and peer is not None and peer[1] == PORT_NORMAL:
            urgent_port = PORT_URGENT
        if urgent_local is None and local[1] == PORT_NORMAL:
            urgent_local = (local[0], PORT_URGENT)
        link = cls(peer, session=session, urgent_port=urgent_port)
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
        return self._urgent_transport.get_extra_info("sockname")[:2]

    @property
    def local_address(self) -> tuple[str, int]:
        assert self._transport is not None
        return self._transport.get_extra_info("sockname")[:2]

    async def send(self, frame: bytes) -> None:
        """Send one LPDU (with CRC) to the peer in a CN/IP data packet."""
        self._check_open()
        if self.peer is None:
            raise LinkError("no CN/IP peer known yet (nothing received)")
        assert self._transport is not None
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        ms = int((asyncio.get_running_loop().time() - self._t0) * 1000) & 0xFFFFFFFF
        packet = encode_data_packet(bytes(frame), session=self.session, sequence=self._seq, timestamp=ms)
        host, port = self.peer
        if frame and frame[0] & 0x80 and self.urgent_port is not None:
            port = self.urgent_port
        self._transport.sendto(packet, (host, port))
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
        if self.peer is None:
            self.peer = (addr[0], addr[1])
        self.last_sequence[addr[:2]] = pkt.sequence
        self._deliver(pkt.payload)
