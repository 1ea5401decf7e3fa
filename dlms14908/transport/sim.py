"""The simulated power-line channel in real (event-loop) time: one frame link per node.

Wraps the sans-I/O :class:`~dlms14908.transport.channel.PlChannel`; channel time runs at
``1 / time_scale`` of loop time, so ``time_scale=0.01`` plays A-band airtime 100x faster
in tests while the channel's counters keep the true airtime numbers.
"""

from __future__ import annotations

import asyncio

from ..errors import LocalProtocolError
from .channel import ChannelConfig, ChannelCounters, PlChannel
from .link import BaseLink

__all__ = ["AsyncPlChannel", "SimLink"]


class AsyncPlChannel:
    """A shared simulated medium; :meth:`link` attaches a node and returns its frame link."""

    def __init__(self, config: ChannelConfig | None = None, *, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise LocalProtocolError("time_scale must be positive")
        self.channel = PlChannel(config)
        self.time_scale = time_scale
        self._links: dict[str, SimLink] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    @property
    def counters(self) -> ChannelCounters:
        return self.channel.counters

    def _now(self) -> float:
        assert self._loop is not None
        return (self._loop.time() - self._t0) / self.time_scale

    def link(self, name: str) -> SimLink:
        """Attach node ``name`` (must be called inside a running event loop)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._t0 = self._loop.time()
        self.channel.attach(name)
        link = SimLink(self, name)
        self._links[name] = link
        return link

    def _transmit(self, name: str, frame: bytes) -> None:
        self.channel.transmit(name, frame, self._now())
        self._arm()

    def _detach(self, name: str) -> None:
        self._links.pop(name, None)
        self.channel.detach(name)

    def _arm(self) -> None:
        assert self._loop is not None
        t = self.channel.next_timer()
        at = None if t is None else self._t0 + t * self.time_scale
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(at, self._fire) if at is not None else None
        self._timer_at = at

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        for d in self.channel.deliveries(self._now() + 1e-9):
            link = self._links.get(d.node)
            if link is not None and not link.closed:
                link._deliver(d.frame)
        self._arm()


class SimLink(BaseLink):
    """One node's attachment to an :class:`AsyncPlChannel`."""

    def __init__(self, channel: AsyncPlChannel, name: str) -> None:
        super().__init__()
        self.sim = channel
        self.name = name

    async def send(self, frame: bytes) -> None:
        self._check_open()
        self.sim._transmit(self.name, bytes(frame))
        self._count_sent(frame)

    async def close(self) -> None:
        if not self.closed:
            self._mark_closed()
            self.sim._detach(self.name)
