"""CN/IP over UDP: a link opened without a peer answers the head-ends it hears, like a CN/IP
channel (ISO/IEC 14908-4 data packets; every ``dlms-cli`` run binds a new ephemeral port)."""

from __future__ import annotations

import asyncio

import pytest

from dlms14908.errors import LocalProtocolError
from dlms14908.transport.link import LinkError
from dlms14908.transport.ports import open_port
from dlms14908.transport.udp import CnipLink

E1 = bytes.fromhex("003001820351c108")
E2 = bytes.fromhex("010901810285420500c001c100030100010800ff0200b970")
LOCAL = ("127.0.0.1", 0)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 20))


async def _head_end(meter: CnipLink) -> CnipLink:
    return await CnipLink.open(meter.local_address, local=LOCAL)


async def _nothing(link: CnipLink, wait: float = 0.2) -> bool:
    await asyncio.sleep(wait)
    return link.recv_nowait() is None


def test_serving_link_answers_a_later_head_end_after_the_first_exits() -> None:
    async def main() -> None:
        meter = await open_port("cnip://?bind=127.0.0.1:0")
        assert isinstance(meter, CnipLink)
        with pytest.raises(LinkError):
            await meter.send(E1)  # nobody heard yet
        first = await _head_end(meter)
        await first.send(E2)
        assert await meter.recv() == E2
        await meter.send(E1)
        assert await asyncio.wait_for(first.recv(), 5) == E1
        await first.close()  # the first dlms-cli process exits
        second = await _head_end(meter)
        try:
            await second.send(E2)
            assert await meter.recv() == E2
            await meter.send(E1)
            assert await asyncio.wait_for(second.recv(), 5) == E1
            assert meter.peer == second.local_address  # the latest sender
        finally:
            await second.close()
            await meter.close()

    run(main())


def test_every_recent_head_end_hears_the_meter_and_a_fixed_peer_stays_fixed() -> None:
    async def main() -> None:
        meter = await CnipLink.open(None, local=LOCAL)
        a, b = await _head_end(meter), await _head_end(meter)
        other: CnipLink | None = None
        try:
            await a.send(E1)
            await b.send(E1)
            assert [await meter.recv(), await meter.recv()] == [E1, E1]
            # both heard (arrival order of two sockets' datagrams is the kernel's; the TTL test
            # below checks the most-recent-last order with an injected clock)
            assert sorted(meter.peers) == sorted([a.local_address, b.local_address])
            await meter.send(E2)  # like a CN/IP channel: each head-end keeps what is its own
            assert await asyncio.wait_for(a.recv(), 5) == E2 and await asyncio.wait_for(b.recv(), 5) == E2
            assert meter.stats.frames_sent == 1
            # a link opened with a peer does not follow whoever sends to it
            other = await CnipLink.open(a.local_address, local=LOCAL)
            await other.send(E1)  # a stranger writes to ``a``
            assert await asyncio.wait_for(a.recv(), 5) == E1
            await a.send(E2)  # ``a`` still sends to the meter only
            assert await asyncio.wait_for(meter.recv(), 5) == E2
            assert a.peers == [meter.local_address] and a.peer == meter.local_address
            assert await _nothing(other)
        finally:
            for link in (a, b, other, meter):
                if link is not None:
                    await link.close()

    run(main())


def test_heard_peers_expire_after_the_ttl_and_are_bounded() -> None:
    now = [100.0]

    async def main() -> None:
        meter = await CnipLink.open(None, local=LOCAL, peer_ttl=600.0, max_peers=2, clock=lambda: now[0])
        heads = [await _head_end(meter) for _ in range(3)]
        try:
            for i, h in enumerate(heads):
                now[0] = 100.0 + i
                await h.send(E1)
                assert await meter.recv() == E1
            # bounded: the oldest of three falls out at once
            assert meter.peers == [heads[1].local_address, heads[2].local_address]
            await meter.send(E2)
            assert await _nothing(heads[0])
            assert await heads[1].recv() == E2 and await heads[2].recv() == E2
            now[0] = 101.0 + 600.5  # heads[1] heard 600.5 s ago, heads[2] 599.5 s ago
            assert meter.peers == [heads[2].local_address]
            now[0] = 102.0 + 5000.0  # all silent: the latest sender is still answered
            assert meter.peers == [heads[2].local_address]
            await meter.send(E1)
            assert await heads[2].recv() == E1
            assert await _nothing(heads[1])
        finally:
            for link in (*heads, meter):
                await link.close()

    run(main())


def test_peer_options_from_the_url_and_validation() -> None:
    async def main() -> None:
        link = await open_port("cnip://?bind=127.0.0.1:0&peer_ttl=30&max_peers=3")
        assert isinstance(link, CnipLink) and link.peer_ttl == 30.0 and link.max_peers == 3
        await link.close()
        for bad in ("peer_ttl=0", "max_peers=0", "peer_ttl=x"):
            with pytest.raises(LocalProtocolError):
                await open_port(f"cnip://?bind=127.0.0.1:0&{bad}")

    run(main())
