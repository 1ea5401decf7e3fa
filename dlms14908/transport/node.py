"""asyncio adapter of the transaction layer (style.md §b11): a LonTalk node on a frame link.

:class:`AsyncLonNode` owns a :class:`~dlms14908.lon.transaction.LonTransactions` and a
:class:`~dlms14908.transport.link.FrameLink`.  Every entry point (a call, a frame, the timer)
ends in the same ``_pump``: dispatch events, write frames, re-arm the one timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..errors import TransactionFailed
from ..lon.events import (
    LonEvent,
    MessageCompleted,
    MessageFailed,
    MessageReceived,
    ReceiveHandle,
    ResponseReceived,
    Service,
)
from ..lon.frame import AnyApdu
from ..lon.transaction import Destination, LonConfig, LonTransactions
from .link import FrameLink, LinkClosed, LinkError

__all__ = ["AsyncLonNode", "Outcome"]


class Outcome:
    """What :meth:`AsyncLonNode.send` resolves to."""

    __slots__ = ("completed", "responses")

    def __init__(self, completed: MessageCompleted, responses: list[ResponseReceived]) -> None:
        self.completed = completed
        self.responses = responses

    def __repr__(self) -> str:
        return f"Outcome(tid={self.completed.tid}, responses={len(self.responses)})"


class AsyncLonNode:
    """A LonTalk node: send messages and await their completion, receive messages."""

    def __init__(
        self,
        link: FrameLink,
        config: LonConfig,
        *,
        on_event: Callable[[LonEvent], None] | None = None,
        lon: LonTransactions | None = None,
    ) -> None:
        self.link = link
        self.lon = lon or LonTransactions(config)
        self.incoming: asyncio.Queue[MessageReceived] = asyncio.Queue()
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._waiters: dict[int, tuple[asyncio.Future[Outcome], list[ResponseReceived]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._reader = asyncio.create_task(self._read_loop())
        self._sends: set[asyncio.Task[None]] = set()

    async def send(
        self,
        dest: Destination,
        apdu: AnyApdu | bytes,
        *,
        service: Service = Service.ACKD,
        priority: bool = False,
        auth: bool = False,
        retries: int | None = None,
        tx_timer: float | None = None,
    ) -> Outcome:
        """Send a message and wait for its completion; raise
        :class:`~dlms14908.errors.TransactionFailed` when it fails."""
        now = self._loop.time()
        tid = self.lon.request(dest, apdu, service=service, now=now, priority=priority, auth=auth,
                               retries=retries, tx_timer=tx_timer)
        fut: asyncio.Future[Outcome] = self._loop.create_future()
        self._waiters[tid] = (fut, [])
        self._pump([])
        return await fut

    def respond(self, handle: ReceiveHandle, apdu: AnyApdu | bytes) -> None:
        """Answer a received REQUEST."""
        self.lon.respond(handle, apdu, now=self._loop.time())
        self._pump([])

    async def receive(self) -> MessageReceived:
        """The next message addressed to this node."""
        return await self.incoming.get()

    async def close(self) -> None:
        self._reader.cancel()
        try:
            await self._reader
        except (asyncio.CancelledError, LinkClosed, LinkError):
            pass
        if self._timer is not None:
            self._timer.cancel()
        for fut, _ in self._waiters.values():
            if not fut.done():
                fut.set_exception(LinkClosed("node closed"))
        self._waiters.clear()
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)

    # -- internals ----------------------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            while True:
                frame = await self.link.recv()
                self._pump(self.lon.receive_frame(frame, self._loop.time()))
        except (LinkClosed, LinkError) as exc:
            for fut, _ in self._waiters.values():
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, LinkError) else LinkClosed(str(exc)))

    def _on_timer(self) -> None:
        now = max(self._timer_at or 0.0, self._loop.time())
        self._timer = self._timer_at = None
        self._pump(self.lon.handle_timer(now))

    def _dispatch(self, ev: LonEvent) -> None:
        if self._on_event is not None:
            self._on_event(ev)
        if isinstance(ev, MessageReceived):
            self.incoming.put_nowait(ev)
        elif isinstance(ev, ResponseReceived):
            w = self._waiters.get(ev.tid)
            if w is not None:
                w[1].append(ev)
        elif isinstance(ev, MessageCompleted):
            w = self._waiters.pop(ev.tid, None)
            if w is not None and not w[0].done():
                w[0].set_result(Outcome(ev, w[1]))
        elif isinstance(ev, MessageFailed):
            w = self._waiters.pop(ev.tid, None)
            if w is not None and not w[0].done():
                w[0].set_exception(
                    TransactionFailed(f"transaction {ev.tid} failed: {ev.reason} after {ev.transmissions} tries",
                                      hint=ev)
                )

    def _pump(self, events: list[LonEvent]) -> None:
        for ev in events:
            self._dispatch(ev)
        for frame in self.lon.frames_to_send(self._loop.time()):
            t = asyncio.ensure_future(self.link.send(frame))
            self._sends.add(t)
            t.add_done_callback(self._sends.discard)
        deadline = self.lon.next_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer) if deadline is not None else None
            self._timer_at = deadline
