"""serve_meter's LonTalk settings: LonTalk's longest receive timer by default, or the caller's."""

from __future__ import annotations

import asyncio

from dlms14908.aio_link import LONTALK_MAX_RECEIVE_TIMER, serve_meter
from dlms14908.lon.transaction import LonConfig


def _serve(**kw: object) -> LonConfig:
    async def main() -> LonConfig:
        svc = await serve_meter("cnip://?bind=127.0.0.1:0", lambda server_sap, client_sap: None, **kw)
        try:
            return svc.node.config
        finally:
            await svc.close()

    return asyncio.run(asyncio.wait_for(main(), 20))


def test_default_receive_timer_is_lontalks_longest() -> None:
    cfg = _serve(subnet=3, node=9)
    assert cfg.receive_timer == LONTALK_MAX_RECEIVE_TIMER == 24.576
    assert (cfg.subnet, cfg.node) == (3, 9)


def test_caller_supplies_the_lontalk_config() -> None:
    mine = LonConfig(2, 5, domain=b"\x42", neuron_id=bytes.fromhex("045e00000205"), receive_timer=4.0,
                     records_per_source=1)
    assert _serve(subnet=2, node=5, lon_config=mine) == mine
