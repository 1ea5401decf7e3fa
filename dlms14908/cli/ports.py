"""Opening the APDU link of one meter for the command-line tools: the one place a port URL,
a meter address, a repeater chain, keys and a capture file turn into an
:class:`~dlms14908.link.ApduLink`.

For now only ``sim`` (the built-in simulated meter network, in-process, no LonTalk layers)
is supported; every other port raises :class:`~dlms14908.cli.common.PortError`.  The lower
stack (adaptation layer, OSGP channel, LonTalk transactions, transports, repeaters) replaces
the body of :func:`open_link`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..keyfile import KeyFile
from ..link import ApduLink
from ..profile import SAP_PUBLIC_CLIENT
from .common import PortError

__all__ = ["MeterAddress", "parse_meter", "parse_via", "open_link", "sim_network", "SIM_NOTICE"]

SIM_NOTICE = "using the built-in simulated meter network (--port sim)"

_SN = re.compile(r"^\s*(\d{1,3})\s*/\s*(\d{1,3})\s*$")
_NID = re.compile(r"^\s*([0-9A-Fa-f]{2}(?:[:\-]?[0-9A-Fa-f]{2}){5})\s*$")


@dataclass(frozen=True, slots=True)
class MeterAddress:
    """A LonTalk destination: ``subnet/node`` (subnet 1-255, node 1-127) or a 6-byte Neuron ID."""

    subnet: int | None = None
    node: int | None = None
    neuron_id: bytes | None = None

    def __str__(self) -> str:
        if self.neuron_id is not None:
            return self.neuron_id.hex().upper()
        return f"{self.subnet}/{self.node}"


def parse_meter(text: str) -> MeterAddress:
    """``1/7`` or ``04A1B2C3D4E5`` (separators ``:``/``-`` allowed); ValueError otherwise."""
    m = _SN.match(text)
    if m:
        subnet, node = int(m.group(1)), int(m.group(2))
        if not 1 <= subnet <= 255 or not 1 <= node <= 127:
            raise ValueError(f"{text!r}: subnet must be 1-255 and node 1-127")
        return MeterAddress(subnet=subnet, node=node)
    m = _NID.match(text)
    if m:
        return MeterAddress(neuron_id=bytes.fromhex(re.sub(r"[:\-]", "", m.group(1))))
    raise ValueError(f"{text!r}: expected subnet/node (e.g. 1/7) or a 12-hex-digit Neuron ID")


def parse_via(text: str) -> tuple[MeterAddress, ...]:
    """A repeater chain ``1/3,1/5`` (first hop first); ValueError on a bad element."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError("empty repeater chain")
    if len(parts) > 7:
        raise ValueError("at most 7 repeaters")
    return tuple(parse_meter(p) for p in parts)


_SIM = None


def sim_network(keys: KeyFile | None = None) -> object:
    """The process-wide simulated network (provisioned from the key file's [dlms] table)."""
    global _SIM
    if _SIM is None:
        from ..sim import DEFAULT_KEYS, DEFAULT_PASSWORD, SimNetwork
        dl = keys.dlms if keys is not None else None
        _SIM = SimNetwork(
            password=(dl.lls_password if dl is not None and dl.lls_password else DEFAULT_PASSWORD),
            keys=dl.keys if dl is not None else DEFAULT_KEYS,
            system_title=(dl.sender_system_title(from_client=False) if dl is not None else None),
        )
    return _SIM


def open_link(port_url: str, meter: MeterAddress, via: tuple[MeterAddress, ...] | None,
              keys: KeyFile | None, capture: str | None, *,
              client_sap: int = SAP_PUBLIC_CLIENT) -> ApduLink:
    """The ApduLink to ``meter`` (optionally through repeaters ``via``) on ``port_url`` for
    ``client_sap``; records to ``capture`` (pcap) when given.  PortError when not possible."""
    if port_url.strip().lower() != "sim":
        raise PortError(f"port {port_url!r}: not supported yet (only 'sim' until the LonTalk "
                        "stack is wired to dlms-cli)")
    if via:
        raise PortError("--via: repeater chains are not supported yet on --port sim")
    if capture:
        raise PortError("--capture: not supported yet on --port sim (no LonTalk frames to record)")
    net = sim_network(keys)
    return net.link(str(meter), client_sap)  # type: ignore[attr-defined,no-any-return]
