"""End to end: COSEM client ⇄ ApduLink ⇄ adaptation ⇄ OSGP ⇄ LonTalk ⇄ transport ⇄ meter.

The meter is the project's :class:`~dlms14908.server.CosemServer` behind a
:class:`~dlms14908.adaptation.endpoint.ServerEndpoint`; the client is
:class:`~dlms14908.client.ClientConnection` driven over :class:`~dlms14908.aio_link.StackLink`.
Transports: the virtual-time simulated power line (direct and through 2 repeaters with
10 % seeded loss), CN/IP UDP on loopback, and pyserial → pty → virtual U61 MIP →
simulated channel.  Security: none, OSGP-AES-128-PSK, DLMS suite 0 (HLS-5 + glo
ciphering), and both.
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import pytest

from dlms14908 import axdr
from dlms14908.acse import MechanismName
from dlms14908.adaptation.endpoint import ClientEndpoint, ServerEndpoint, lnap_address_bytes
from dlms14908.aio_link import NodeDriver, StackLink
from dlms14908.client import ClientConnection, ClientSettings
from dlms14908.cosem.objects import (
    CaptureObjectDefinition,
    Iso14908Diagnostic,
    Iso14908ProtocolStatus,
    ProfileGeneric,
    Register,
)
from dlms14908.lon.transaction import LonConfig, NodeDest
from dlms14908.node import LonNode, Route, Timing
from dlms14908.obis import Obis
from dlms14908.server import AssociationConfig, CosemServer
from dlms14908.simnet import DEFAULT_NNAP_ID, SimNetwork
from dlms14908.transport.channel import ChannelConfig
from dlms14908.xdlms.ciphering import SecurityKeys

PSK = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
KEYS = SecurityKeys(ek=bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
                    ak=bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"))
CLIENT_ST = bytes.fromhex("4D4D4D0000000001")
SERVER_ST = bytes.fromhex("4D4D4D0000BC614E")
LP = Obis.parse("1-0:99.1.0.255")
T0 = 1_700_000_000.0 - (1_700_000_000 % 900)


class Meter:
    """A CosemServer with a 96-entry load profile and live class 132/133 counters."""

    def __init__(self) -> None:
        self.node: LonNode | None = None
        self.pg = ProfileGeneric(
            LP,
            capture_objects=[CaptureObjectDefinition(8, Obis.parse("0-0:1.0.0.255"), 2, 0),
                             CaptureObjectDefinition(3, Obis.parse("1-0:1.8.0.255"), 2, 0)],
            capture_period=900,
        )
        for i in range(96):
            stamp = axdr.OctetString(axdr.DateTime.from_datetime(_dt(T0 + 900 * i)).to_bytes())
            self.pg.rows.append(axdr.Structure([stamp, axdr.DoubleLongUnsigned(1000 + 37 * i * i)]))
        self.energy = Register("1-0:1.8.0.255", value=axdr.DoubleLongUnsigned(123456), scaler_unit=(0, 30))
        self.status = Iso14908ProtocolStatus()
        self.diag = Iso14908Diagnostic()
        self.server = CosemServer(
            [self.pg, self.energy, self.status, self.diag],
            [AssociationConfig(client_sap=0x10),
             AssociationConfig(client_sap=0x01, mechanisms=(MechanismName.HIGH_GMAC,), keys=KEYS,
                               require_ciphering=True)],
            system_title=SERVER_ST, clock=lambda: T0 + 96 * 900,
        )

    def route(self, server_sap: int, client_sap: int) -> Any:
        if server_sap != 0x01:
            return None
        inner = self.server.handler_for(client_sap)

        def handler(apdu: bytes) -> bytes | None:
            if self.node is not None:  # classes 132/133 report the node's real counters
                c = self.node.link_counters()
                for k, v in c["class132"].items():
                    cls = axdr.DoubleLongUnsigned if k.startswith("messages_") else axdr.LongUnsigned
                    self.status.set_value(k, cls(v & (0xFFFFFFFF if cls is axdr.DoubleLongUnsigned else 0xFFFF)))
                self.diag.set_value("late_ack", axdr.LongUnsigned(c["class133"]["late_ack"] & 0xFFFF))
            return inner(apdu)

        return handler


def _dt(t: float) -> Any:
    import datetime as _d

    return _d.datetime.fromtimestamp(t, _d.UTC)


def settings(suite0: bool) -> ClientSettings:
    if suite0:
        return ClientSettings.management_hls(KEYS, CLIENT_ST, max_receive_pdu_size=1024)
    return ClientSettings.public(max_receive_pdu_size=1024)


async def run(link: StackLink, ex: Any) -> Any:
    req = ex.request
    while req is not None:
        resp = await link.request(req, timeout=30.0)
        req = ex.receive(resp)
    return ex.result


async def session(link: StackLink, meter: Meter, suite0: bool) -> None:
    conn = ClientConnection(settings(suite0))
    await run(link, conn.connect())
    energy = await run(link, conn.get(3, Obis.parse("1-0:1.8.0.255"), 2))
    assert int(energy) == 123456
    buf = await run(link, conn.get(7, LP, 2))
    assert len(buf) == 96
    for got, want in zip(buf, meter.pg.rows, strict=True):  # value by value against the meter's state
        assert list(got) == list(want)
    status = await run(link, conn.get(132, Obis.parse("0-0:32.2.0.255"), 10))  # messages_received
    node = meter.node
    assert node is not None
    # the meter delivered every request of this session so far (this GET included)
    assert int(status) == node.lon.counters.delivered - 0 and int(status) >= 4
    await run(link, conn.release())


def build_sim(loss: float, osgp: bool, via: bool, seed: int = 7) -> tuple[SimNetwork, Meter, Any]:
    net = SimNetwork(ChannelConfig(loss=loss, seed=seed), seed=seed)
    net.add_repeater("r1", 2, 10)
    net.add_repeater("r2", 3, 10)
    meter = Meter()
    m = net.add_meter("m", 4, 1, route=meter.route, psk=PSK if osgp else None, via=("r1", "r2") if via else ())
    meter.node = m.node
    return net, meter, m


@pytest.mark.parametrize("osgp", [False, True], ids=["no-osgp", "osgp"])
@pytest.mark.parametrize("suite0", [False, True], ids=["no-suite0", "suite0"])
@pytest.mark.parametrize("path", ["direct", "2rep-10loss"])
def test_sim_session(path: str, osgp: bool, suite0: bool) -> None:
    via = path != "direct"
    net, meter, m = build_sim(0.10 if via else 0.0, osgp, via)

    async def main() -> None:
        ep = net.client_endpoint(m, client_sap=0x01 if suite0 else 0x10, server_sap=0x01,
                                 psk=PSK if osgp else None)
        link = StackLink(net, ep, net.route_to(m))
        await session(link, meter, suite0)
        await link.close()

    asyncio.run(main())
    if via:
        assert net.channel.counters.lost > 0  # the loss really happened
        assert net.repeaters["r1"].counters.proxy_forwarded > 0
        assert net.repeaters["r2"].counters.proxy_agent_sends > 0
    if osgp:
        ch = m.server.channel
        assert ch is not None and ch.counters.frames_ok > 0
    else:
        assert m.server.channel is None


def test_sim_wrong_psk_is_security_error() -> None:
    from dlms14908.errors import SecurityError

    net, _meter, m = build_sim(0.0, True, False)

    async def main() -> None:
        ep = net.client_endpoint(m, client_sap=0x10, server_sap=0x01, psk=b"\x55" * 16)
        link = StackLink(net, ep, net.route_to(m))
        with pytest.raises(SecurityError):
            await run(link, ClientConnection(settings(False)).connect())

    asyncio.run(main())


def test_sim_unprotected_client_refused_by_protected_meter() -> None:
    from dlms14908.errors import SecurityError

    net, _meter, m = build_sim(0.0, True, False)

    async def main() -> None:
        ep = net.client_endpoint(m, client_sap=0x10, server_sap=0x01, psk=None)
        link = StackLink(net, ep, net.route_to(m))
        with pytest.raises(SecurityError, match="requires OSGP-AES-128-PSK"):
            await run(link, ClientConnection(settings(False)).connect())

    asyncio.run(main())
    assert m.server.counters.unprotected_refused >= 1


def _meter_node(meter: Meter, osgp: bool, subnet: int = 2, node: int = 5) -> LonNode:
    nid = bytes((4, 0, 0, 0, subnet, node))
    channel = None
    if osgp:
        from osgp.channel import Role, SecureChannel

        channel = SecureChannel(role=Role.LNAP, local_id=nid, peer_id=DEFAULT_NNAP_ID, psk=PSK)
    server = ServerEndpoint(route=meter.route, channel=channel, dest=lnap_address_bytes(b"\x42", subnet, node))
    n = LonNode(LonConfig(subnet, node, domain=b"\x42", neuron_id=nid), server=server, timing=Timing(0.05))
    meter.node = n
    return n


def _client(osgp: bool, suite0: bool, subnet: int = 2, node: int = 5) -> tuple[LonNode, ClientEndpoint, Route]:
    head = LonNode(LonConfig(1, 1, domain=b"\x42"), timing=Timing(0.05))
    channel = None
    if osgp:
        from osgp.channel import Role, SecureChannel

        channel = SecureChannel(role=Role.NNAP, local_id=DEFAULT_NNAP_ID, peer_id=bytes((4, 0, 0, 0, subnet, node)),
                                psk=PSK)
    ep = ClientEndpoint(client_sap=0x01 if suite0 else 0x10, server_sap=0x01, channel=channel,
                        dest=lnap_address_bytes(b"\x42", subnet, node))
    return head, ep, Route(NodeDest(subnet, node))


@pytest.mark.parametrize("osgp,suite0", [(False, False), (True, True)], ids=["plain", "osgp+suite0"])
def test_cnip_loopback_session(osgp: bool, suite0: bool) -> None:
    from dlms14908.transport.udp import CnipLink

    async def main() -> None:
        meter = Meter()
        mlink = await CnipLink.open(None, local=("127.0.0.1", 0))
        mdrv = NodeDriver(_meter_node(meter, osgp), mlink)
        port = mlink.local_address[1]
        clink = await CnipLink.open(("127.0.0.1", port), local=("127.0.0.1", 0))
        head, ep, route = _client(osgp, suite0)
        cdrv = NodeDriver(head, clink)
        try:
            await session(StackLink(cdrv, ep, route), meter, suite0)
            assert clink.stats.frames_sent > 4 and mlink.stats.frames_received == clink.stats.frames_sent
        finally:
            await cdrv.close()
            await mdrv.close()

    asyncio.run(main())


@pytest.mark.parametrize("osgp", [False, True], ids=["plain", "osgp"])
def test_pty_transceiver_session(osgp: bool) -> None:
    from dlms14908.transport.ports import open_port
    from dlms14908.transport.sim import AsyncPlChannel
    from dlms14908.transport.virtual import VirtualTransceiver

    async def main() -> None:
        sim = AsyncPlChannel(ChannelConfig(seed=1), time_scale=0.01)
        async with VirtualTransceiver("u61", channel=sim.link("mip")) as vt:
            host_link = await open_port(f"serial://{vt.port}?kind=u61&timeout=5")
            meter = Meter()
            mdrv = NodeDriver(_meter_node(meter, osgp), sim.link("meter"))
            head, ep, route = _client(osgp, False)
            cdrv = NodeDriver(head, host_link)
            try:
                await session(StackLink(cdrv, ep, route), meter, False)
                assert sim.counters.frames >= 8
            finally:
                await cdrv.close()
                await mdrv.close()

    asyncio.run(main())


def test_capture_opens_in_tshark(tmp_path: Any, tshark: str) -> None:
    from dlms14908.pcap import open_capture

    path = tmp_path / "session.pcap"
    net, _meter, m = build_sim(0.0, True, True)
    cap = open_capture(str(path))
    net.frame_taps.append(lambda name, frame, t: cap.write_frame(frame, 1_700_000_000.0 + t))

    async def main() -> None:
        ep = net.client_endpoint(m, client_sap=0x10, server_sap=0x01, psk=PSK)
        link = StackLink(net, ep, net.route_to(m))
        conn = ClientConnection(settings(False))
        await run(link, conn.connect())
        await run(link, conn.get(3, Obis.parse("1-0:1.8.0.255"), 2))

    asyncio.run(main())
    cap.close()
    out = subprocess.run([tshark, "-r", str(path)], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert len(lines) == net.channel.counters.frames
    assert "LON" in out.stdout or "CN/IP" in out.stdout


def test_driver_waits_for_the_lonnode_verdict_not_a_short_timeout() -> None:
    """A caller's timeout shorter than the route's worst case must not pre-empt the LonTalk
    layer: a silent meter ends in TransactionFailed (retries exhausted), not DlmsTimeout."""
    import socket

    from dlms14908.errors import DlmsTimeout, TransactionFailed
    from dlms14908.transport.udp import CnipLink

    async def main() -> None:
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        link = await CnipLink.open(silent.getsockname(), local=("127.0.0.1", 0))
        head, ep, route = _client(False, False)
        drv = NodeDriver(head, link)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            with pytest.raises(TransactionFailed) as e:
                await drv.submit(ep, route, b"\xc0\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x00", timeout=0.05)
            assert not isinstance(e.value, DlmsTimeout)
            assert "did not answer" in str(e.value)
            # the four tries took their transmit timers: far longer than the 0.05 s asked for
            assert loop.time() - t0 >= head.timing.direct_timer * (head.timing.retries + 1) * 0.9
        finally:
            await drv.close()
            silent.close()

    asyncio.run(main())
