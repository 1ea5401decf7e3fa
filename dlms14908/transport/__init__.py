"""Transports: the only I/O of dlms14908 (asyncio), plus their sans-I/O cores.

* :func:`open_port` (``ports``) - URL -> :class:`FrameLink` (serial L2 MIP, CN/IP UDP, sim);
* ``link`` - the common async frame-link interface (LPDUs with CRC);
* ``niframe`` / ``smip`` - Serial-MIP LLP and U61 framing, host driver, virtual MIP (sans-I/O);
* ``serial_link`` / ``virtual`` - pyserial adapter and the pty virtual transceiver;
* ``udp`` - ISO/IEC 14908-4 CN/IP data packets over UDP;
* ``channel`` / ``sim`` / ``simnet`` - simulated power-line channel (sans-I/O, async, virtual time);
* ``node`` - :class:`AsyncLonNode`, the asyncio adapter of the transaction layer.
"""

from __future__ import annotations

from .channel import ChannelConfig, PlChannel, airtime, airtime_bits
from .link import BaseLink, FrameLink, LinkClosed, LinkError, LinkStats, UnknownPortScheme
from .node import AsyncLonNode, Outcome
from .ports import PORT_SCHEMES, open_port
from .serial_link import SerialLink
from .sim import AsyncPlChannel, SimLink
from .simnet import VirtualTimeNetwork
from .udp import CnipLink
from .virtual import VirtualTransceiver

__all__ = [
    "PORT_SCHEMES",
    "AsyncLonNode",
    "AsyncPlChannel",
    "BaseLink",
    "ChannelConfig",
    "CnipLink",
    "FrameLink",
    "LinkClosed",
    "LinkError",
    "LinkStats",
    "Outcome",
    "PlChannel",
    "SerialLink",
    "SimLink",
    "UnknownPortScheme",
    "VirtualTimeNetwork",
    "VirtualTransceiver",
    "airtime",
    "airtime_bits",
    "open_port",
]
