"""The common async frame-link interface every transport returns.

A link moves whole LonTalk LPDUs **including their CRC** (the form of CN/IP payloads and of
the L2 MIP uplink; the serial driver strips the CRC for the downlink itself).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

from ..errors import LocalProtocolError, RemoteProtocolError

__all__ = ["BaseLink", "FrameLink", "LinkClosed", "LinkError", "LinkStats", "UnknownPortScheme"]


class LinkClosed(LocalProtocolError):
    """The link was closed (locally or because its transport went away)."""


class LinkError(RemoteProtocolError):
    """The transport or interface failed (no answer to the start-up sequence, I/O error)."""


class UnknownPortScheme(LocalProtocolError, ValueError):
    """``open_port`` got a URL scheme it does not know."""


@dataclass(slots=True)
class LinkStats:
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    frames_dropped: int = 0
    "received units that were not a valid frame carrier (bad CN/IP header, L2 errors, ...)"


@runtime_checkable
class FrameLink(Protocol):
    """Send and receive LPDUs (with CRC)."""

    stats: LinkStats

    async def send(self, frame: bytes) -> None: ...
    async def recv(self) -> bytes: ...
    async def close(self) -> None: ...


_CLOSED = object()


class BaseLink:
    """Receive queue, closing and async iteration shared by the concrete links."""

    def __init__(self) -> None:
        self.stats = LinkStats()
        self._rx: asyncio.Queue[object] = asyncio.Queue()
        self._closed = False
        self._error: BaseException | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def _deliver(self, frame: bytes) -> None:
        self.stats.frames_received += 1
        self.stats.bytes_received += len(frame)
        self._rx.put_nowait(bytes(frame))

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._rx.put_nowait(_CLOSED)

    def _count_sent(self, frame: bytes) -> None:
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(frame)

    def _check_open(self) -> None:
        if self._closed:
            raise LinkClosed("link is closed")
        if self._error is not None:
            raise LinkError(f"link failed: {self._error}")

    async def recv(self) -> bytes:
        """The next received LPDU (with CRC); raises :class:`LinkClosed` / :class:`LinkError`."""
        if self._rx.empty():
            self._check_open()
        item = await self._rx.get()
        if item is _CLOSED:
            self._rx.put_nowait(_CLOSED)  # wake other readers too
            self._check_open()
            raise LinkClosed("link is closed")
        assert isinstance(item, bytes)
        return item

    def recv_nowait(self) -> bytes | None:
        """A received LPDU if one is queued, else None."""
        try:
            item = self._rx.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if item is _CLOSED:
            self._rx.put_nowait(_CLOSED)
            return None
        assert isinstance(item, bytes)
        return item

    def _mark_closed(self) -> None:
        if not self._closed:
            self._closed = True
            self._rx.put_nowait(_CLOSED)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except LinkClosed:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send(self, frame: bytes) -> None:  # pragma: no cover - overridden
        """Send one LPDU (with CRC); every concrete link implements it."""
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - overridden
        self._mark_closed()
