"""Simulated meters by address joined to clients by in-process LoopbackLinks (no LonTalk layers).

Each address (``subnet/node`` or a Neuron ID) gets its own :class:`MeterSimulator` whose seed
is derived from the address, so the same address always shows the same meter.  Handy for tests
and benchmarks of the application layer alone.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from ..link import LoopbackLink
from ..xdlms.ciphering import SecurityKeys
from .meter import DEFAULT_KEYS, DEFAULT_PASSWORD, MeterSimulator

__all__ = ["LoopbackNetwork"]


class LoopbackNetwork:
    """Simulated meters by address, sharing one clock and one set of secrets."""

    def __init__(self, *, clock: Callable[[], float] = time.time, seed: int = 0,
                 password: bytes | None = DEFAULT_PASSWORD,
                 keys: SecurityKeys | None = DEFAULT_KEYS, require_ciphering: bool = False,
                 latency: float = 0.0, system_title: bytes | None = None) -> None:
        self.clock = clock
        self.seed = seed
        self.password = password
        self.keys = keys
        self.require_ciphering = require_ciphering
        self.latency = latency
        self.system_title = system_title
        self.meters: dict[str, MeterSimulator] = {}

    def meter(self, address: str) -> MeterSimulator:
        """The meter at ``address`` (created on first use)."""
        m = self.meters.get(address)
        if m is None:
            h = hashlib.blake2b(f"{self.seed}:{address}".encode(), digest_size=8).digest()
            node = (1, 7)
            if "/" in address:
                a, _, b = address.partition("/")
                if a.isdigit() and b.isdigit():
                    node = (int(a), int(b))
            m = MeterSimulator(seed=int.from_bytes(h, "big") >> 1, clock=self.clock,
                               password=self.password, keys=self.keys,
                               require_ciphering=self.require_ciphering, node=node,
                               system_title=self.system_title)
            self.meters[address] = m
        return m

    def link(self, address: str, client_sap: int) -> LoopbackLink:
        """An ApduLink from a client SAP to the meter at ``address``."""
        return LoopbackLink(self.meter(address).handler_for(client_sap), latency=self.latency)
