"""Issue 5 item 4: one asyncio process polls many meters on many channels concurrently,
through the full IEC 62056-8-8 stack (typed ``Client`` → ``StackLink`` → adaptation layer →
OSGP-AES-128-PSK → LonTalk transactions → simulated power line / CN/IP on loopback), not
only over the in-process ``LoopbackLink``.

Two simulated channels carry 9 meters each (some behind an Annex E repeater, some with
OSGP-AES-128-PSK, public and management HLS clients), and two meters are served over CN/IP
UDP on loopback; all 20 sessions run in one ``asyncio.gather`` and every value is checked
against the simulator's own state."""

from __future__ import annotations

import asyncio
import time

from dlms14908.aio_client import Client
from dlms14908.aio_link import StackLink, serve_meter
from dlms14908.cli.ports import open_link, parse_meter
from dlms14908.client import ClientSettings
from dlms14908.obis import Obis
from dlms14908.profile import SAP_MANAGEMENT, SAP_MANAGEMENT_CLIENT, SAP_PUBLIC_CLIENT
from dlms14908.sim import DEFAULT_KEYS, MeterSimulator
from dlms14908.simnet import SimNetwork
from dlms14908.transport.channel import ChannelConfig

ENERGY = Obis.parse("1-0:1.8.0.255")
LP = Obis.parse("1-0:99.1.0.255")
PSK = bytes(range(16))
T0 = 1_700_000_000.0 - (1_700_000_000 % 900)
CLIENT_ST = b"MMM\x00\x00\x00\x00\x02"


def _route(sim: MeterSimulator):  # type: ignore[no-untyped-def]
    return lambda server_sap, client_sap: sim.handler_for(client_sap) if server_sap == SAP_MANAGEMENT else None


def _settings(i: int) -> ClientSettings:
    if i % 3 == 2:  # every third session: management client, HLS-5 + suite-0 ciphering
        return ClientSettings.management_hls(DEFAULT_KEYS, CLIENT_ST)
    return ClientSettings.public()


def test_twenty_meters_on_three_channels_polled_concurrently_through_the_full_stack() -> None:
    def clock() -> float:
        return T0

    inflight = [0, 0]

    async def poll(i: int, link: object, sim: MeterSimulator) -> tuple[int, list, int]:
        async def counted(coro):  # type: ignore[no-untyped-def]
            inflight[0] += 1
            inflight[1] = max(inflight[1], inflight[0])
            try:
                return await coro
            finally:
                inflight[0] -= 1

        async with Client(link, _settings(i), timeout=60.0) as c:  # type: ignore[arg-type]
            energy = await counted(c.get(ENERGY))
            profile = await counted(c.read_profile(LP, entries=(1, 3)))
            assoc = c.conn.state.name
        return int(energy), [list(r) for r in profile.rows], assoc

    async def go() -> tuple[list, list[MeterSimulator], list[SimNetwork]]:
        jobs = []
        sims: list[MeterSimulator] = []
        nets = []
        services = []
        for ch in range(2):
            net = SimNetwork(ChannelConfig(seed=ch), seed=ch)
            net.add_repeater("r", 2, 50)
            nets.append(net)
            for k in range(9):
                i = len(sims)
                sim = MeterSimulator(seed=100 + i, clock=clock, node=(3, 10 + k))
                sims.append(sim)
                m = net.add_meter(f"m{k}", 3, 10 + k, route=_route(sim), psk=PSK if k % 2 else None,
                                  via=("r",) if k % 4 == 3 else ())
                sap = SAP_MANAGEMENT_CLIENT if i % 3 == 2 else SAP_PUBLIC_CLIENT
                ep = net.client_endpoint(m, client_sap=sap, server_sap=SAP_MANAGEMENT, psk=m.psk)
                jobs.append((i, StackLink(net, ep, net.route_to(m))))
        for k in range(2):  # a third and fourth channel: CN/IP on loopback, real sockets
            i = len(sims)
            sim = MeterSimulator(seed=100 + i, clock=clock, node=(4, 1 + k), random=None)
            sims.append(sim)
            svc = await serve_meter("cnip://?bind=127.0.0.1:0", _route(sim), subnet=4, node=1 + k)
            services.append(svc)
            host, port = svc.local_address
            sap = SAP_MANAGEMENT_CLIENT if i % 3 == 2 else SAP_PUBLIC_CLIENT
            jobs.append((i, open_link(f"cnip://{host}:{port}", parse_meter(f"4/{1 + k}"), None, None, None,
                                      client_sap=sap)))
        try:
            res = await asyncio.gather(*(poll(i, link, sims[i]) for i, link in jobs))
        finally:
            for svc in services:
                await svc.close()
        return res, sims, nets

    t = time.perf_counter()
    res, sims, nets = asyncio.run(go())
    elapsed = time.perf_counter() - t
    assert len(res) == 20
    for (energy, rows, _), sim in zip(res, sims, strict=True):
        assert energy == sim.import_export_wh(T0)[0]
        want = sim.profile_rows()[:3]
        assert len(rows) == 3
        assert [r[1] for r in rows] == [int(w[1]) for w in want]  # +A column, value by value
        assert [r[2] for r in rows] == [int(w[2]) for w in want]  # -A column
    assert len({r[0] for r in res}) == 20  # 20 different meters answered
    assert inflight[1] >= 15, inflight  # the sessions really overlapped in one event loop
    # the simulated channels really carried the protected and repeated traffic
    for net in nets:
        assert net.repeaters["r"].counters.proxy_forwarded + net.repeaters["r"].counters.proxy_agent_sends > 0
        for m in net.meters.values():  # every OSGP meter verified protected frames
            ch = m.server.channel
            assert (ch is not None and ch.counters.frames_ok > 0) == (m.psk is not None)
    assert elapsed < 30, elapsed
