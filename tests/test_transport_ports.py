"""Port URLs, CN/IP over UDP, and the async LonTalk node over every link kind."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from dlms14908.errors import TransactionFailed
from dlms14908.lon.cnip import decode_packet, encode_data_packet
from dlms14908.lon.events import MessageReceived, Service
from dlms14908.lon.frame import Apdu
from dlms14908.lon.transaction import LonConfig, NodeDest
from dlms14908.transport.channel import ChannelConfig
from dlms14908.transport.link import BaseLink, FrameLink, LinkClosed, UnknownPortScheme
from dlms14908.transport.node import AsyncLonNode
from dlms14908.transport.ports import open_port
from dlms14908.transport.serial_link import SerialLink
from dlms14908.transport.sim import AsyncPlChannel, SimLink
from dlms14908.transport.udp import CnipLink
from dlms14908.transport.virtual import VirtualTransceiver

E1 = bytes.fromhex("003001820351c108")
E2 = bytes.fromhex("010901810285420500c001c100030100010800ff0200b970")  # reference E2


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_unknown_scheme_is_a_clear_error() -> None:
    async def main() -> None:
        with pytest.raises(UnknownPortScheme) as ei:
            await open_port("bogus://x")
        msg = str(ei.value)
        assert "'bogus'" in msg and "cnip://" in msg and "sim://" in msg
        with pytest.raises(UnknownPortScheme):
            await open_port("")
        with pytest.raises(Exception) as ei2:
            await open_port("sim://a?nonsense=1")
        assert "nonsense" in str(ei2.value)

    run(main())


def test_cnip_udp_loopback_round_trip() -> None:
    async def main() -> None:
        b = await open_port("cnip://?bind=127.0.0.1:0")  # no peer: answers whoever sends first
        assert isinstance(b, CnipLink)
        host, port = b.local_address
        a = await open_port(f"cnip://{host}:{port}?bind=127.0.0.1:0&session=305419896")
        assert isinstance(a, CnipLink) and isinstance(a, FrameLink)
        try:
            await a.send(E2)
            await a.send(E1)
            assert await b.recv() == E2
            assert await b.recv() == E1
            assert b.last_sequence[a.local_address] == 2
            await b.send(E1)  # the peer was learned from the first packet
            assert await a.recv() == E1
            # what went on the wire is a CN/IP data packet: check it with a raw socket
            raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            raw.bind(("127.0.0.1", 0))
            raw.setblocking(False)
            a.peer = raw.getsockname()
            await a.send(E2)
            loop = asyncio.get_running_loop()
            data = await loop.sock_recv(raw, 2048)
            length, ver, ptype = struct.unpack_from(">HBB", data)
            assert (length, ver, ptype) == (20 + len(E2), 1, 1)
            pkt = decode_packet(data)
            assert pkt.payload == E2 and pkt.session == 305419896 and pkt.sequence == 3
            # garbage and non-data packets are counted and dropped, the link stays up
            raw.sendto(b"\x00\x01garbage", b.local_address)
            raw.sendto(encode_data_packet(E1, sequence=9)[:-1], b.local_address)
            raw.sendto(encode_data_packet(E1, sequence=10), b.local_address)
            assert await b.recv() == E1
            assert b.stats.frames_dropped == 2
            raw.close()
        finally:
            await a.close()
            await b.close()
        with pytest.raises(LinkClosed):
            await a.send(E1)

    run(main())


def test_async_node_request_response_over_sim_channel() -> None:
    async def main() -> None:
        sim = AsyncPlChannel(ChannelConfig(loss=0.2, seed=5), time_scale=0.02)
        la = await open_port("sim://client", channel=sim)
        lb = await open_port("sim://meter", channel=sim)
        assert isinstance(la, SimLink)
        a = AsyncLonNode(la, LonConfig(1, 1, domain=b"\x42", tx_timer=0.05, retries=6))
        b = AsyncLonNode(lb, LonConfig(2, 5, domain=b"\x42"))

        async def server() -> None:
            while True:
                m = await b.receive()
                if m.handle is not None:
                    b.respond(m.handle, bytes((0x01,)) + m.apdu.data)

        srv = asyncio.create_task(server())
        try:
            for i in range(8):
                out = await a.send(NodeDest(2, 5), bytes((0x10, i)), service=Service.REQUEST)
                assert [r.apdu for r in out.responses] == [Apdu(0x01, bytes((i,)))]
            ok = await a.send(NodeDest(2, 5), b"\x10\xff")
            assert ok.completed.service is Service.ACKD
            with pytest.raises(TransactionFailed) as ei:
                await a.send(NodeDest(9, 9), b"\x10\x00")  # nobody there
            assert ei.value.hint.transmissions == 7  # type: ignore[union-attr]
        finally:
            srv.cancel()
            await a.close()
            await b.close()

    run(main())


def test_full_stack_serial_pty_to_simulated_power_line() -> None:
    """Host -> pyserial -> pty -> virtual U61 MIP -> simulated PL channel -> meter node."""

    async def main() -> None:
        sim = AsyncPlChannel(ChannelConfig(seed=1), time_scale=0.02)
        async with VirtualTransceiver("u61", channel=sim.link("mip")) as vt:
            link = await open_port(f"serial://{vt.port}?kind=u61&phase=1&timeout=5")
            assert isinstance(link, SerialLink) and link.driver.config.phase_mode
            meter_link: BaseLink = await open_port("sim://meter", channel=sim)
            host = AsyncLonNode(link, LonConfig(1, 1, domain=b"\x42", tx_timer=0.2))
            meter = AsyncLonNode(meter_link, LonConfig(2, 5, domain=b"\x42"))
            try:
                task = asyncio.create_task(host.send(NodeDest(2, 5), b"\x00\xc0\x01", service=Service.REQUEST))
                m = await meter.receive()
                assert isinstance(m, MessageReceived) and m.apdu == Apdu(0x00, b"\xc0\x01")
                meter.respond(m.handle, b"\x00\xc4\x01")  # type: ignore[arg-type]
                out = await task
                assert out.responses[0].apdu == Apdu(0x00, b"\xc4\x01")
                assert sim.counters.frames == 2
            finally:
                await host.close()
                await meter.close()
                await link.close()
                await meter_link.close()

    run(main())


def test_sim_url_creates_private_channel() -> None:
    async def main() -> None:
        link = await open_port("sim://solo?loss=0.5&seed=3&rate=5400")
        assert isinstance(link, SimLink)
        assert link.sim.channel.config.bit_rate == 5400 and link.sim.channel.config.loss == 0.5
        await link.close()
        bare = await open_port("sim")
        assert isinstance(bare, SimLink) and bare.name == "node"
        await bare.close()

    run(main())


def test_node_close_fails_pending_waiters() -> None:
    async def main() -> None:
        sim = AsyncPlChannel(time_scale=0.01)
        a = AsyncLonNode(sim.link("a"), LonConfig(1, 1, tx_timer=5.0))
        t = asyncio.create_task(a.send(NodeDest(2, 2), b"\x10"))
        await asyncio.sleep(0.01)
        await a.close()
        with pytest.raises(LinkClosed):
            await t

    run(main())


def test_random_datagrams_never_break_the_cnip_link() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    link = CnipLink(None)

    @settings(max_examples=200)
    @given(st.binary(max_size=60))
    def feed(data: bytes) -> None:
        link._on_datagram(data, ("127.0.0.1", 9))
        link._on_datagram(struct.pack(">H", len(data) + 2) + data, ("127.0.0.1", 9))

    async def main() -> None:
        feed()

    asyncio.run(main())
    assert link.stats.frames_dropped + link.stats.frames_received > 0


def test_socket_url_reaches_a_mip_over_tcp() -> None:
    """pyserial ``socket://`` (e.g. ser2net in front of a MIP) through the same driver."""
    from dlms14908.transport.smip import DriverConfig, VirtualMip

    async def main() -> None:
        mip = VirtualMip("u50", unique_id=bytes.fromhex("0a0b0c0d0e0f"))
        mip.layer2 = False
        loop = asyncio.get_running_loop()
        heard: asyncio.Queue[bytes] = asyncio.Queue()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(4096):
                mip.receive_bytes(data, loop.time())
                for f in mip.frames_to_channel():
                    heard.put_nowait(f)
                writer.write(mip.bytes_to_send())
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = await open_port(f"socket://127.0.0.1:{port}", config=DriverConfig(reset_wait=0.05))
        try:
            assert isinstance(link, SerialLink) and link.unique_id == bytes.fromhex("0a0b0c0d0e0f")
            await link.send(E1)
            assert await asyncio.wait_for(heard.get(), 5) == E1
        finally:
            await link.close()
            server.close()
            await server.wait_closed()

    run(main())


def test_missing_device_path_is_a_link_error() -> None:
    from dlms14908.transport.link import LinkError

    async def main() -> None:
        with pytest.raises(LinkError) as ei:
            await open_port("/dev/ttyUSB_does_not_exist")
        assert "ttyUSB_does_not_exist" in str(ei.value)

    run(main())


def test_cnip_priority_frames_use_the_urgent_port() -> None:
    async def main() -> None:
        normal = await CnipLink.open(None, local=("127.0.0.1", 0))
        urgent = await CnipLink.open(None, local=("127.0.0.1", 0))
        a = await CnipLink.open(normal.local_address, local=("127.0.0.1", 0), urgent_port=urgent.local_address[1])
        try:
            prio = bytes((0x80 | E1[0],)) + E1[1:]
            await a.send(E1)
            await a.send(prio)
            assert await normal.recv() == E1
            assert await urgent.recv() == prio
            assert normal.recv_nowait() is None and urgent.recv_nowait() is None
        finally:
            for link in (a, normal, urgent):
                await link.close()
        # the default peer port 1628 implies the urgent port 1629 (Wireshark: lontalk-urgnt)
        from dlms14908.lon.cnip import PORT_URGENT

        b = await CnipLink.open(("127.0.0.1", 1628), local=("127.0.0.1", 0))
        assert b.urgent_port == PORT_URGENT and b.urgent_local_address is None
        await b.close()
        # the receiving side takes frames on its urgent port as well
        rx = await CnipLink.open(None, local=("127.0.0.1", 0), urgent_local=("127.0.0.1", 0))
        assert rx.urgent_local_address is not None
        tx = await CnipLink.open(rx.local_address, local=("127.0.0.1", 0), urgent_port=rx.urgent_local_address[1])
        try:
            await tx.send(prio)
            await tx.send(E1)
            assert {await rx.recv(), await rx.recv()} == {prio, E1}
            await rx.send(E1)  # the peer was learned from the urgent datagram
            assert await tx.recv() == E1
        finally:
            await tx.close()
            await rx.close()

    run(main())


def test_serial_url_options_are_validated() -> None:
    from dlms14908.errors import LocalProtocolError

    async def main() -> None:
        with pytest.raises(LocalProtocolError) as ei:
            await open_port("serial:///dev/ttyS99?kind=u99")
        assert "u99" in str(ei.value)
        with pytest.raises(LocalProtocolError):
            await open_port("cnip://127.0.0.1:notaport")

    run(main())


def test_async_broadcast_query_id_collects_every_meter() -> None:
    """One broadcast Query ID over the simulated channel returns the answers of all meters
    (BroadcastDest.max_responses), each once, in one Outcome."""
    from dlms14908.lon.transaction import BroadcastDest

    async def main() -> None:
        sim = AsyncPlChannel(ChannelConfig(seed=3), time_scale=0.02)
        head = AsyncLonNode(await open_port("sim://head", channel=sim), LonConfig(1, 1, domain=b"\x42", tx_timer=0.3))
        meters = [AsyncLonNode(await open_port(f"sim://m{i}", channel=sim), LonConfig(2, 10 + i, domain=b"\x42"))
                  for i in range(4)]

        async def serve(n: AsyncLonNode) -> None:
            while True:
                m = await n.receive()
                if m.handle is not None:
                    n.respond(m.handle, bytes((0x21, n.lon.config.node)))

        tasks = [asyncio.create_task(serve(n)) for n in meters]
        try:
            out = await head.send(BroadcastDest(max_responses=10), b"\x61\x00", service=Service.REQUEST)
            assert sorted(r.apdu.data[0] for r in out.responses) == [10, 11, 12, 13]  # type: ignore[union-attr]
            assert out.completed.transmissions == 1
        finally:
            for t in tasks:
                t.cancel()
            for n in (head, *meters):
                await n.close()

    run(main())



@pytest.mark.parametrize("url, target", [
    ("loop://", "loop://"),
    ("LOOP://?kind=u50&timeout=0.2", "loop://"),
    ("loop://?logging=debug", "loop://?logging=debug"),
    ("socket://127.0.0.1:7000?kind=u61", "socket://127.0.0.1:7000"),
])
def test_pyserial_urls_reach_pyserial_intact(url: str, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``loop://`` keeps its ``//`` (``loop:`` is no pyserial URL); our query options are
    taken out, pyserial's stay; the URL pyserial gets opens and echoes (loopback round trip)."""
    import serial

    seen: list[str] = []

    async def fake_open(cls, target_url: str, **kw: object) -> BaseLink:  # type: ignore[no-untyped-def]
        seen.append(target_url)
        raise LinkError("stop here")

    from dlms14908.transport.link import LinkError

    monkeypatch.setattr(SerialLink, "open", classmethod(fake_open))

    async def main() -> None:
        with pytest.raises(LinkError):
            await open_port(url)

    run(main())
    assert seen == [target]
    if target.startswith("loop://"):
        ser = serial.serial_for_url(target, timeout=0.5)
        try:
            ser.write(b"\x7e\x01\x02")
            assert ser.read(3) == b"\x7e\x01\x02"
        finally:
            ser.close()


def test_url_query_and_keyword_options_may_both_be_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """``kind``/``baud`` in the URL and ``kind=``/``baudrate=`` as keywords: the URL wins and the
    keyword is not passed on a second time (it used to raise TypeError: multiple values)."""
    from dlms14908.errors import LocalProtocolError
    from dlms14908.transport.link import LinkError

    seen: list[dict[str, object]] = []

    async def fake_open(cls, target_url: str, **kw: object) -> BaseLink:  # type: ignore[no-untyped-def]
        seen.append(kw)
        raise LinkError("stop here")

    monkeypatch.setattr(SerialLink, "open", classmethod(fake_open))

    async def main() -> None:
        with pytest.raises(LinkError):
            await open_port("loop://?kind=u61&baud=9600", kind="u50", baudrate=115200, write_timeout=1)
        with pytest.raises(LinkError):
            await open_port("loop://", kind="u61", baudrate=19200)
        with pytest.raises(LocalProtocolError):
            await open_port("loop://", kind="u99")

    run(main())
    assert [(kw["kind"], kw["baudrate"], kw["config"].kind) for kw in seen] == [  # type: ignore[attr-defined]
        ("u61", 9600, "u61"), ("u61", 19200, "u61")]
    assert seen[0]["write_timeout"] == 1 and "startup_timeout" in seen[0]


def test_loop_url_opens_the_pyserial_loopback() -> None:
    """Through the real opener: the loopback opens; a MIP start-up cannot finish on an echo, so
    the error names the ``loop://`` URL and the start-up (not a missing file ``loop:``)."""
    from dlms14908.transport.link import LinkError
    from dlms14908.transport.smip import DriverConfig

    async def main() -> None:
        with pytest.raises(LinkError) as ei:
            await open_port("loop://", config=DriverConfig(reset_wait=0.02), startup_timeout=0.3)
        assert "'loop://'" in str(ei.value) and "start-up" in str(ei.value), str(ei.value)

    run(main())


def test_open_link_on_sim_is_quiet_as_a_library(capsys: pytest.CaptureFixture[str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A library caller of open_link("sim") gets the network description on the
    ``dlms14908.sim`` logger (or its own callback), nothing on stderr."""
    import logging

    from dlms14908.cli.ports import open_link, parse_meter

    with caplog.at_level(logging.INFO, logger="dlms14908.sim"):
        open_link("sim", parse_meter("7/91"), None, None, None)
    assert capsys.readouterr().err == ""
    assert any("meter at 7/91" in r.getMessage() for r in caplog.records)
    lines: list[str] = []
    open_link("sim", parse_meter("7/92"), None, None, None, announce=lines.append)
    assert any("meter at 7/92" in ln for ln in lines) and capsys.readouterr().err == ""
