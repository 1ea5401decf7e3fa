"""The simulated network's Annex E behaviour: chains chosen by the head-end, repeaters that
really run ``rules.process`` with their own retries, per-hop timeout growth, and proxy
failures that reach the caller naming the hop (``osgp-62056-8-8.md`` §3.4)."""

from __future__ import annotations

import itertools

import pytest

from dlms14908.errors import ProxyError, TransactionFailed
from dlms14908.lon.frame import decode_frame
from dlms14908.repeater.ltep import LTEP_CODE, LTEP_FAILURE_CODE, TxCtrl, decode_request
from dlms14908.repeater.rules import hop_adjust_ms
from dlms14908.simnet import SimNetwork
from dlms14908.transport.channel import ChannelConfig


def echo(apdu: bytes) -> bytes:
    return b"\xAA" + apdu[::-1]


def net3(loss: float = 0.0, seed: int = 1) -> SimNetwork:
    net = SimNetwork(ChannelConfig(loss=loss, seed=seed), seed=seed)
    for i, (sn, nd) in enumerate(((2, 10), (3, 10), (4, 10)), 1):
        net.add_repeater(f"r{i}", sn, nd)
    net.add_meter("m", 5, 1, echo, via=("r1", "r2", "r3"))
    net.add_meter("d", 2, 1, echo)
    return net


def exchange(net: SimNetwork, meter: str, apdu: bytes, via: tuple[str, ...] | None = None) -> bytes | None:
    m = net.meters[meter]
    ep = net.client_endpoint(m, client_sap=0x10, server_sap=0x01)
    return net.run_exchange(ep, net.route_to(m, via), apdu)


def test_chain_from_topology_and_override() -> None:
    net = net3()
    assert exchange(net, "m", b"\x01\x02\x03") == b"\xAA\x03\x02\x01"
    assert [net.repeaters[f"r{i}"].counters.proxy_forwarded for i in (1, 2, 3)] == [1, 1, 0]
    assert net.repeaters["r3"].counters.proxy_agent_sends == 1
    # --via override: the direct meter reached through r1 as agent
    assert exchange(net, "d", b"\x05", via=("r1",)) == b"\xAA\x05"
    assert net.repeaters["r1"].counters.proxy_agent_sends == 1


def _detach(net: SimNetwork, name: str) -> None:
    net.channel.detach(name)
    del net.nodes[name]


@pytest.mark.parametrize("gone,hop", [("m", 2), ("r3", 1), ("r2", 0)])
def test_proxy_failure_names_the_hop(gone: str, hop: int) -> None:
    net = net3()
    _detach(net, gone)
    with pytest.raises(ProxyError) as ei:
        exchange(net, "m", b"\x01")
    assert ei.value.hop == hop
    want = "the target" if gone == "m" else f"repeater {net.hop(gone)}"
    assert want in str(ei.value)


def test_first_repeater_missing_is_a_proxy_error_without_hop() -> None:
    net = net3()
    _detach(net, "r1")
    with pytest.raises(ProxyError) as ei:
        exchange(net, "m", b"\x01")
    assert ei.value.hop is None and "2/10" in str(ei.value)


def test_direct_meter_missing_is_transaction_failed() -> None:
    net = net3()
    _detach(net, "d")
    with pytest.raises(TransactionFailed):
        exchange(net, "d", b"\x01")


def test_per_hop_timeout_growth_on_the_last_retry() -> None:
    """r1 forwards to a missing r2: tries at T intervals, and its last try waits T plus
    hop_adjust_ms(hops still ahead) before the 0x4C goes back."""
    net = net3()
    _detach(net, "r2")
    sent: list[tuple[float, bytes]] = []
    net.frame_taps.append(lambda name, frame, t: sent.append((t, frame)) if name == "r1" else None)
    with pytest.raises(ProxyError):
        exchange(net, "m", b"\x01")
    fwd = [(t, f) for t, f in sent if decode_frame(f).apdu is not None and decode_frame(f).apdu.code == LTEP_CODE]
    fail = [(t, f) for t, f in sent if decode_frame(f).apdu is not None
            and decode_frame(f).apdu.code == LTEP_FAILURE_CODE]
    retries = net.timing.repeater_retries
    assert len(fwd) == 1 + retries and len(fail) == 1  # every try, then the failure completion
    req = decode_request(decode_frame(fwd[0][1]).apdu.encode())  # type: ignore[union-attr]
    assert req.count == 1 and req.txctrl is not None  # r3 is still ahead
    t_ms = req.txctrl.timer_ms(req.long_timer)
    gaps = [round((b - a) * 1000) for (a, _), (b, _) in itertools.pairwise(fwd)]
    assert gaps == [t_ms] * retries
    adjust = hop_adjust_ms(1, req.txctrl, req.long_timer)
    assert adjust > 0
    assert round((fail[0][0] - fwd[-1][0]) * 1000) == t_ms + adjust
    # the frame r1 sent on is the head-end's with the first hop popped
    assert decode_frame(fail[0][1]).apdu.encode() == bytes((LTEP_FAILURE_CODE, 2))


def test_hop_adjust_table() -> None:
    assert hop_adjust_ms(2, TxCtrl(3, 10), False) == 1024
    assert hop_adjust_ms(2, TxCtrl(3, 9), False) == 512
    assert hop_adjust_ms(2, TxCtrl(3, 3), False) == 256


def test_lossy_chain_is_deterministic_and_really_retries() -> None:
    outs = []
    for _ in range(2):
        net = net3(loss=0.10, seed=11)
        for k in range(5):
            assert exchange(net, "m", bytes([k]) * 300) == b"\xAA" + (bytes([k]) * 300)[::-1]
        c = net.channel.counters
        outs.append((c.frames, c.lost, round(net.now, 6)))
        assert c.lost > 0
        assert sum(n.lon.counters.retransmissions for n in net.repeaters.values()) > 0
    assert outs[0] == outs[1]


def test_announcement_lists_nodes() -> None:
    net = net3()
    text = net.describe()
    assert "repeater r1 at 2/10" in text and "meter m at 5/1" in text and "via r1, r2, r3" in text


def test_identical_unprotected_requests_never_get_a_stale_response() -> None:
    """LonTalk transaction numbers wrap after 16: an identical PDU 16 transactions later
    (same request, same segment pull) must still reach the application, not a stored reply."""
    n = [0]

    def counting(apdu: bytes) -> bytes:
        n[0] += 1
        return n[0].to_bytes(2, "big") * 150  # 300 bytes: segmented, so pulls repeat too

    net = SimNetwork(ChannelConfig(bit_rate=1e15, preamble_bits=0.0, interpacket_bits=0.0))
    m = net.add_meter("m", 2, 1, counting)
    ep = net.client_endpoint(m, client_sap=0x10, server_sap=0x01)
    for k in range(1, 41):
        assert net.run_exchange(ep, net.route_to(m), b"\x01\x02") == k.to_bytes(2, "big") * 150


@pytest.mark.parametrize("meter,via", [("d", None), ("m", None), ("m", ("r1",))])
def test_every_frame_fits_the_lontalk_apdu_limit(meter: str, via: tuple[str, ...] | None) -> None:
    """Protected maximum-size segments both ways, direct and through a 3-repeater chain: no
    frame carries an APDU above lon-stack-dx MAX_DATA_SIZE (profile.AL_LON_MAX_APDU = 255),
    and the largest response frame uses it fully (the 236-byte response segment)."""
    from dlms14908.profile import AL_LON_MAX_APDU, AL_MAX_RESPONSE_SEGMENT_DEFAULT

    psk = bytes(range(16))
    net = SimNetwork(ChannelConfig(), seed=3)
    for i, (sn, nd) in enumerate(((2, 10), (3, 10), (4, 10)), 1):
        net.add_repeater(f"r{i}", sn, nd)
    net.add_meter("m", 5, 1, echo, via=("r1", "r2", "r3"), psk=psk)
    net.add_meter("d", 2, 1, echo, psk=psk)
    sizes: list[tuple[str, int]] = []
    net.frame_taps.append(lambda name, frame, t: sizes.append((name, len(decode_frame(frame).apdu.encode())))
                          if decode_frame(frame).apdu is not None else None)
    m = net.meters[meter]
    ep = net.client_endpoint(m, client_sap=0x10, server_sap=0x01, psk=psk)
    apdu = bytes(range(256)) * 4
    assert net.run_exchange(ep, net.route_to(m, via), apdu) == b"\xAA" + apdu[::-1]
    assert max(n for _, n in sizes) <= AL_LON_MAX_APDU
    # the meter's full response segments: code + header(4) + KeyID/SeqNo/tag(13) + 236 bytes,
    # one byte more (0x4D) once relayed by the agent
    full = 1 + 4 + 13 + AL_MAX_RESPONSE_SEGMENT_DEFAULT
    assert any(name == meter and n == full for name, n in sizes)
    if m.via and via is None:
        assert any(name == "r1" and n == full + 1 == AL_LON_MAX_APDU for name, n in sizes)


def test_last_retry_extra_lengthens_only_the_wait_after_the_last_try() -> None:
    """LonTransactions.request(last_retry_extra=...): the tries stay tx_timer apart, only the
    wait after the last one grows (what a repeater needs for per-hop timeout growth)."""
    from dlms14908.errors import LocalProtocolError
    from dlms14908.lon.events import MessageFailed, Service
    from dlms14908.lon.transaction import LonConfig, LonTransactions, NodeDest

    for extra, retries in ((0.0, 2), (0.5, 2), (0.25, 0)):
        lon = LonTransactions(LonConfig(1, 1, domain=b"\x42"))
        lon.request(NodeDest(2, 5), b"\x3d\x01", service=Service.ACKD, now=0.0, retries=retries, tx_timer=1.0,
                    last_retry_extra=extra)
        sent, now, failed = [], 0.0, None
        while failed is None:
            sent += [now] * len(lon.frames_to_send(now))
            t = lon.next_timer()
            assert t is not None
            now = t
            failed = next((e for e in lon.handle_timer(now) if isinstance(e, MessageFailed)), None)
        assert sent == [float(i) for i in range(retries + 1)]
        assert now == retries + 1.0 + extra
    with pytest.raises(LocalProtocolError):
        LonTransactions(LonConfig(1, 1)).request(NodeDest(2, 5), b"\x3d", now=0.0, last_retry_extra=-1.0)
