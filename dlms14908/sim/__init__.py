"""Meter simulator (issue 5 item 5): an in-process COSEM server with a realistic object set.

``MeterSimulator(seed=..., clock=SimClock(t0))`` builds one meter; ``meter.handler_for(sap)``
is its :data:`~dlms14908.link.ApduHandler`; :class:`LoopbackNetwork` holds meters by address
behind in-process LoopbackLinks (the full-stack ``--port sim`` network is :mod:`dlms14908.simnet`).
"""

from __future__ import annotations

from .meter import (
    DEFAULT_KEYS,
    DEFAULT_PASSWORD,
    LOAD_PROFILE,
    PUBLIC_OBJECTS,
    CounterProvider,
    MeterSimulator,
    SimClock,
)
from .model import INTERVAL, EnergyModel
from .network import LoopbackNetwork

__all__ = [
    "DEFAULT_KEYS",
    "DEFAULT_PASSWORD",
    "INTERVAL",
    "LOAD_PROFILE",
    "PUBLIC_OBJECTS",
    "CounterProvider",
    "EnergyModel",
    "LoopbackNetwork",
    "MeterSimulator",
    "SimClock",
]
