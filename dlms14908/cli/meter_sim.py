"""``dlms-meter-sim``: the simulated DLMS/COSEM meter (IEC 62056-8-8 object set).

Without ``--port`` it builds the meter and prints its objects with their current values.  With
``--port`` it serves the meter as a LonTalk node through the full stack (adaptation layer,
optional OSGP-AES-128-PSK from the key file's ``[osgp]`` table, LonTalk transactions):
``cnip://?bind=HOST:PORT`` or ``--cnip HOST:PORT`` (CN/IP over UDP; port 0 = any free port),
a serial URL (a real transceiver), or ``pty`` (a virtual U61 transceiver on a
pseudo-terminal).  The URL to give ``dlms-cli --port`` is printed on stdout (with the port
actually bound); classes 132/133 report the node's real LonTalk counters.

Over CN/IP the meter sends to every head-end it has heard in the last 10 minutes, like a
CN/IP channel: every ``dlms-cli`` run binds a new ephemeral UDP port, and a meter that kept
answering the first head-end it heard would leave every later run without an answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from ..cosem import decode_attribute
from ..errors import ProtocolError
from ..keyfile import KeyFileWarning, load_keyfile
from .common import run_guarded
from .main import render

if TYPE_CHECKING:
    from ..adaptation.endpoint import ApduHandler, Router
    from ..node import LonNode

    Closer = Callable[[], Awaitable[None]]

__all__ = ["build_parser", "main"]

PROG = "dlms-meter-sim"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "A simulated DLMS/COSEM electricity meter: clock, energy registers advancing with\n"
            "time, instantaneous values, 15-minute load profile, association LN, security setup,\n"
            "disconnect control, image transfer, ISO/IEC 14908 classes 130-133, utility table.\n\n"
            "Without --port/--cnip it prints the meter's objects and exits. With them it serves\n"
            "the meter through the full IEC 62056-8-8 stack over CN/IP (UDP), a serial\n"
            "transceiver URL, or a virtual U61 transceiver on a pseudo-terminal ('pty'), and\n"
            "prints the --port URL for dlms-cli on stdout.\n"
            "'dlms-cli --port sim' needs no server: it simulates its own network."),
        epilog=(
            "example:\n"
            "  $ dlms-meter-sim --cnip 127.0.0.1:0 --meter 1/7\n"
            "  cnip://127.0.0.1:40123            (stdout: the URL with the port bound)\n"
            "  $ dlms-cli --port cnip://127.0.0.1:40123 --meter 1/7 read 1-0:1.8.0.255\n"
            "Any number of dlms-cli runs may follow one another against the same meter. Head-ends\n"
            "running at the same time need their own LonTalk addresses (dlms-cli --source) and\n"
            "client SAPs, as on a real meter. --keys FILE provisions [dlms] (lls_password,\n"
            "ek/ak) and [osgp] (psk) exactly as dlms-cli reads them."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", metavar="URL",
                       help="serve on cnip://?bind=HOST:PORT, a serial URL, or 'pty'")
    where.add_argument("--cnip", metavar="HOST:PORT",
                       help="serve over CN/IP (UDP) bound to HOST:PORT (port 0 = any free port); "
                            "the same as --port cnip://?bind=HOST:PORT")
    p.add_argument("--meter", default="1/7", metavar="SUBNET/NODE",
                   help="the meter's LonTalk address when serving (default 1/7)")
    p.add_argument("--duration", type=float, metavar="S",
                   help="stop serving after S seconds (default: until interrupted)")
    p.add_argument("--seed", type=int, default=0, help="model seed (default 0)")
    p.add_argument("--keys", metavar="FILE", help="TOML key file provisioning the management client")
    p.add_argument("--time", type=float, metavar="POSIX", help="simulated start time (default: now)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cnip:
        args.port = f"cnip://?bind={args.cnip.strip()}"

    def go() -> int:
        from ..sim import DEFAULT_KEYS, DEFAULT_PASSWORD, MeterSimulator, SimClock
        kf = None
        if args.keys:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", KeyFileWarning)
                kf = load_keyfile(args.keys)
            for w in caught:
                print(f"{PROG}: warning: {w.message}", file=sys.stderr)
        dl = kf.dlms if kf is not None else None
        if args.port:
            return asyncio.run(_serve(args, kf))
        clock = SimClock(args.time if args.time is not None else time.time())
        meter = MeterSimulator(
            seed=args.seed, clock=clock,
            password=dl.lls_password if dl is not None and dl.lls_password else DEFAULT_PASSWORD,
            keys=dl.keys if dl is not None else DEFAULT_KEYS)
        err = Console(stderr=True, highlight=False)
        err.print(f"{PROG}: not serving (no --port); the meter's objects:", markup=False)
        now = clock()
        rows = []
        for obj in meter.objects.values():
            value = None
            if obj.interface.has_attribute(2) and obj.interface.class_id not in (7, 15):
                try:
                    value = decode_attribute(obj.interface.class_id, 2, obj.get(2, now=now))
                except ProtocolError:  # an object that refuses or cannot type its value: listed without one
                    value = None
            rows.append((obj, value))
        if args.json:
            out = [{"obis": str(o.logical_name), "name": o.logical_name.name,
                    "class_id": o.interface.class_id, "class": o.interface.name,
                    "value": None if v is None else render(v)} for o, v in rows]
            sys.stdout.write(json.dumps({"system_title": meter.system_title.hex().upper(),
                                         "objects": out}, indent=2) + "\n")
            return 0
        con = Console(highlight=False)
        t = Table(title=f"simulated meter {meter.system_title.hex().upper()} (seed {args.seed})")
        t.add_column("OBIS", no_wrap=True)
        t.add_column("class", justify="right")
        t.add_column("object")
        t.add_column("attribute 2", overflow="fold")
        for o, v in rows:
            text = "" if v is None else render(v)
            t.add_row(str(o.logical_name), str(o.interface.class_id), o.logical_name.name or o.interface.name,
                      text)
        con.print(t)
        return 0

    return run_guarded(PROG, go)


async def _serve(args: argparse.Namespace, kf: object | None) -> int:
    """Serve one simulated meter on ``args.port`` until ``args.duration`` or interruption."""
    from ..aio_link import OsgpKeys, serve_meter
    from ..errors import LocalProtocolError
    from ..profile import SAP_MANAGEMENT
    from ..sim import DEFAULT_KEYS, DEFAULT_PASSWORD, MeterSimulator
    from ..transport.link import LinkError
    from .common import PortError
    from .ports import parse_meter

    try:
        addr = parse_meter(args.meter)
    except ValueError as exc:
        raise PortError(f"--meter: {exc}") from None
    if addr.subnet is None or addr.node is None:
        raise PortError("--meter: give the served meter's address as subnet/node")
    dl = getattr(kf, "dlms", None)
    nid = bytes((0x04, 0x5E, 0x00, 0x00, addr.subnet, addr.node))
    sim = MeterSimulator(
        seed=args.seed, clock=time.time if args.time is None else _offset_clock(args.time),
        password=dl.lls_password if dl is not None and dl.lls_password else DEFAULT_PASSWORD,
        keys=dl.keys if dl is not None else DEFAULT_KEYS,
        system_title=dl.sender_system_title(from_client=False) if dl is not None else None,
        node=(addr.subnet, addr.node), neuron_id=nid, random=os.urandom)  # fresh HLS challenges

    def route(server_sap: int, client_sap: int) -> ApduHandler | None:
        return sim.handler_for(client_sap) if server_sap == SAP_MANAGEMENT else None

    psk = OsgpKeys.from_keyfile(kf).psk_for(nid)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    closers: list[Closer] = []
    node: LonNode
    if args.port.strip().lower() == "pty":
        url, node, closers = await _serve_pty(route, addr.subnet, addr.node, nid, psk)
    else:
        try:
            svc = await serve_meter(_with_peer_ttl(args.port.strip()), route, subnet=addr.subnet,
                                    node=addr.node, neuron_id=nid, psk=psk)
        except (OSError, OverflowError, LinkError, LocalProtocolError) as exc:
            raise PortError(f"cannot serve on {args.port}: {exc}") from None
        node = svc.node
        closers.append(svc.close)
        local = svc.local_address
        url = args.port
        if local is not None:
            host = local[0]
            if host in ("0.0.0.0", "::", ""):
                err.print(f"{PROG}: listening on all interfaces, UDP port {local[1]}", markup=False)
                host = "127.0.0.1"
            url = f"cnip://{host}:{local[1]}"
    sim.set_counter_providers(lambda: node.link_counters()["class132"],
                              lambda: node.link_counters()["class133"])
    sim.bind_protocol_setup(node.server)  # class 131: the endpoint's real inactivity timeout
    err.print(f"{PROG}: serving meter {addr} (Neuron ID {nid.hex().upper()}, system title "
              f"{sim.system_title.hex().upper()}{', OSGP-AES-128-PSK' if psk else ''}) on {url}",
              markup=False)
    sys.stdout.write(url + "\n")
    sys.stdout.flush()
    try:
        if args.duration is not None:
            await asyncio.sleep(args.duration)
        else:
            await asyncio.Event().wait()
    finally:
        for close in closers:
            await close()
    return 0


#: CN/IP peers (head-ends) heard within this many seconds receive the meter's frames
PEER_TTL = 600.0


def _with_peer_ttl(url: str) -> str:
    """A serving CN/IP URL (no peer given) makes a link that answers every UDP sender heard
    within ``peer_ttl`` seconds (:class:`~dlms14908.transport.udp.CnipLink`); name the meter's
    :data:`PEER_TTL` in it unless the URL sets its own.  Other URLs are returned unchanged."""
    if url.lower() == "cnip":
        url = "cnip://"
    if not url.lower().startswith("cnip://") or "peer_ttl=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}peer_ttl={PEER_TTL:g}"


def _offset_clock(start: float) -> Callable[[], float]:
    base = time.time()
    return lambda: start + (time.time() - base)


async def _serve_pty(route: Router, subnet: int, node_id: int, nid: bytes,
                     psk: bytes | None) -> tuple[str, LonNode, list[Closer]]:
    """A virtual U61 transceiver on a pseudo-terminal, joined to the meter's node by an
    in-process power-line channel."""
    from ..adaptation.endpoint import ServerEndpoint, address_bytes
    from ..aio_link import DEFAULT_NNAP_ID, NodeDriver
    from ..lon.transaction import LonConfig
    from ..node import LonNode, Timing
    from ..transport.channel import ChannelConfig
    from ..transport.sim import AsyncPlChannel
    from ..transport.virtual import VirtualTransceiver

    ch = AsyncPlChannel(ChannelConfig(seed=1), time_scale=0.01)
    vt = VirtualTransceiver("u61", channel=ch.link("mip"))
    await vt.start()
    channel = None
    if psk is not None:
        from osgp.channel import Role, SecureChannel
        channel = SecureChannel(role=Role.LNAP, local_id=nid, peer_id=DEFAULT_NNAP_ID, psk=psk)
    lnode = LonNode(LonConfig(subnet, node_id, domain=b"\x42", neuron_id=nid),
                    server=ServerEndpoint(route=route, channel=channel,
                                          dest=address_bytes(b"\x42", subnet=subnet, node=node_id)),
                    timing=Timing(0.05), name=f"meter-{subnet}/{node_id}")
    drv = NodeDriver(lnode, ch.link("meter"))
    closers: list[Closer] = [drv.close, vt.close]
    return f"serial://{vt.port}?kind=u61&timeout=5", lnode, closers


if __name__ == "__main__":
    sys.exit(main())
