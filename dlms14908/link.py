"""The APDU link between the COSEM application (client, meter simulator) and the lower stack.

IEC 62056-8-8 puts xDLMS/ACSE APDUs on an adaptation layer over ISO/IEC 14908; the
application only needs "send this APDU to that meter and give me the answer".  That is
:class:`ApduLink` (client side, one per meter: address plus optional repeater chain) and
:data:`ApduHandler` (server side, sans-I/O: request APDU in, response APDU out).  The lower
stack implements the first and serves the second; :class:`LoopbackLink` joins a client
directly to a handler in the same process (tests, ``--port sim``).

Errors surface as the project's hierarchy: :class:`~dlms14908.errors.DlmsTimeout`,
:class:`~dlms14908.errors.ProxyError`, :class:`~dlms14908.errors.TransactionFailed`,
:class:`~dlms14908.errors.SecurityError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .errors import DlmsTimeout, LocalProtocolError, TransactionFailed

__all__ = ["ApduHandler", "ApduLink", "LoopbackLink"]

#: server side: request APDU in -> response APDU out (None = no response)
ApduHandler = Callable[[bytes], "bytes | None"]


@runtime_checkable
class ApduLink(Protocol):
    """Client side of one meter: confirmed request/response, unconfirmed send, close."""

    async def request(self, apdu: bytes, *, timeout: float) -> bytes:
        """Send one xDLMS/ACSE APDU and await the response APDU (DlmsTimeout after ``timeout`` s)."""
        ...

    async def send(self, apdu: bytes) -> None:
        """Send an unconfirmed (or broadcast) APDU; no response is awaited."""
        ...

    async def close(self) -> None:
        """Release the link's resources; further use raises LocalProtocolError."""
        ...


class LoopbackLink:
    """An :class:`ApduLink` that hands each APDU straight to an in-process :data:`ApduHandler`.

    ``latency`` (seconds, default 0) is awaited per request so that concurrency is
    exercised realistically; ``requests``/``bytes_sent``/``bytes_received`` count traffic."""

    __slots__ = ("_closed", "_handler", "_latency", "bytes_received", "bytes_sent", "requests")

    def __init__(self, handler: ApduHandler, *, latency: float = 0.0) -> None:
        self._handler = handler
        self._latency = latency
        self._closed = False
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    async def request(self, apdu: bytes, *, timeout: float) -> bytes:
        if self._closed:
            raise LocalProtocolError("link is closed")
        self.requests += 1
        self.bytes_sent += len(apdu)
        if self._latency:
            if self._latency >= timeout:
                await asyncio.sleep(timeout)
                raise DlmsTimeout(f"no response within {timeout:g} s")
            await asyncio.sleep(self._latency)
        else:
            await asyncio.sleep(0)  # a scheduling point, as a real link has
        resp = self._handler(apdu)
        if resp is None:
            raise TransactionFailed("the server sent no response to a confirmed request")
        self.bytes_received += len(resp)
        return resp

    async def send(self, apdu: bytes) -> None:
        if self._closed:
            raise LocalProtocolError("link is closed")
        self.bytes_sent += len(apdu)
        self._handler(apdu)

    async def close(self) -> None:
        self._closed = True
