"""Drive sans-I/O node stacks over a :class:`~dlms14908.transport.channel.PlChannel` in
virtual time (no sleeping): the deterministic test bench of the transaction layer and the
meter-farm simulator.

Any object with ``frames_to_send(now)``, ``receive_frame(data, now) -> events``,
``handle_timer(now) -> events`` and ``next_timer()`` can be a node (the
:class:`~dlms14908.lon.transaction.LonTransactions` shape, style.md §b2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..errors import LocalProtocolError
from .channel import PlChannel

__all__ = ["SansIoNode", "VirtualTimeNetwork"]


class SansIoNode(Protocol):
    def frames_to_send(self, now: float) -> list[bytes]: ...
    def receive_frame(self, data: bytes, now: float) -> list[Any]: ...
    def handle_timer(self, now: float) -> list[Any]: ...
    def next_timer(self) -> float | None: ...


EventHook = Callable[[str, Any, float], None]


class VirtualTimeNetwork:
    """Nodes on one simulated channel, advanced event by event in virtual time."""

    def __init__(self, channel: PlChannel, *, start: float = 0.0) -> None:
        self.channel = channel
        self.now = start
        self.nodes: dict[str, SansIoNode] = {}
        self.events: dict[str, list[Any]] = {}
        self._hooks: list[EventHook] = []

    def add(self, name: str, node: SansIoNode) -> None:
        """Attach ``node`` to the channel under ``name``."""
        self.channel.attach(name)
        self.nodes[name] = node
        self.events[name] = []

    def on_event(self, hook: EventHook) -> None:
        """Call ``hook(node_name, event, now)`` for every event (e.g. to answer requests)."""
        self._hooks.append(hook)

    def _record(self, name: str, evs: list[Any]) -> None:
        for e in evs:
            self.events[name].append(e)
            for h in self._hooks:
                h(name, e, self.now)

    def _flush(self) -> None:
        for name, node in self.nodes.items():
            for f in node.frames_to_send(self.now):
                self.channel.transmit(name, f, self.now)

    def step(self, until: float | None = None) -> bool:
        """Advance to the next deadline (not beyond ``until``); False when nothing is left."""
        self._flush()
        ts = [t for t in (n.next_timer() for n in self.nodes.values()) if t is not None]
        ct = self.channel.next_timer()
        if ct is not None:
            ts.append(ct)
        if not ts:
            return False
        t = max(min(ts), self.now)
        if until is not None and t > until:
            self.now = until
            return False
        self.now = t
        for d in self.channel.deliveries(t):
            node = self.nodes.get(d.node)
            if node is not None:
                self._record(d.node, node.receive_frame(d.frame, t))
        for name, node in self.nodes.items():
            nt = node.next_timer()
            if nt is not None and nt <= t:
                self._record(name, node.handle_timer(t))
        self._flush()
        return True

    def run(self, until: float | None = None, *, max_steps: int = 1_000_000) -> float:
        """Run until idle (or ``until``); return the virtual time reached."""
        for _ in range(max_steps):
            if not self.step(until):
                return self.now
        raise LocalProtocolError(f"network still busy after {max_steps} steps")
