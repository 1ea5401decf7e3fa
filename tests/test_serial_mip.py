"""Serial-MIP LLP and MIP/U61 framing: golden bytes, decoders, link state machines, pty."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import DecodeError, LocalProtocolError
from dlms14908.lon.crc import append_crc
from dlms14908.transport.link import LinkError
from dlms14908.transport.niframe import (
    CodePacket,
    CpType,
    FramingFault,
    LlpDecoder,
    NiFrameError,
    NiMessage,
    U61Decoder,
    decode_code_packet,
    decode_data_message,
    decode_u61,
    encode_code_packet,
    encode_data_message,
    encode_u61,
)
from dlms14908.transport.serial_link import SerialLink
from dlms14908.transport.smip import (
    DriverConfig,
    DriverState,
    LlpConfig,
    LlpEndpoint,
    MipDriver,
    NiReceived,
    NiShortReceived,
    Role,
    TransferFailed,
    VirtualMip,
)
from dlms14908.transport.virtual import VirtualTransceiver

E1 = bytes.fromhex("003001820351c108")  # reference E1


@pytest.fixture(scope="module")
def vec(vectors_dir):  # type: ignore[no-untyped-def]
    return json.loads((vectors_dir / "transport" / "serial_mip.json").read_text())


# --------------------------------------------------------------------------- golden bytes


def test_code_packet_vectors(vec) -> None:  # type: ignore[no-untyped-def]
    for v in vec["code_packets"]:
        cp = CodePacket(v["type"], v["seq"], v["ack"], v["param"])
        assert encode_code_packet(cp).hex() == v["hex"], v["name"]
        assert decode_code_packet(bytes.fromhex(v["hex"])) == cp


def test_data_message_vectors(vec) -> None:  # type: ignore[no-untyped-def]
    for v in vec["data_messages"]:
        m = NiMessage(v["cmd"], bytes.fromhex(v["payload"]))
        assert encode_data_message(m).hex() == v["hex"], v["name"]
        assert decode_data_message(bytes.fromhex(v["hex"])) == m


def test_escaping_doubles_length_and_checksum_bytes() -> None:
    # a payload of 0x7D + 0x7E bytes: len = 0x7E itself; both must be doubled
    m = NiMessage(0x12, bytes(0x7D))
    wire = encode_data_message(m)
    assert wire[:3] == b"\x7e\x7e\x12"
    assert decode_data_message(wire) == m
    m2 = NiMessage(0x12, bytes((0x6A,)))  # 02 12 6A -> sum 0x7E -> chk 0x82
    assert encode_data_message(m2) == bytes.fromhex("02126a82")
    # find a payload whose checksum is 0x7E: chk = -(len+cmd+p) -> p = -(2+0x12+0x7E)
    p = (-(2 + 0x12 + 0x7E)) & 0xFF
    wire = encode_data_message(NiMessage(0x12, bytes((p,))))
    assert wire.endswith(b"\x7e\x7e") and decode_data_message(wire).payload == bytes((p,))


def test_extended_length() -> None:
    m = NiMessage(0x12, bytes(range(256)) * 2)
    wire = encode_data_message(m)
    assert wire[:3] == b"\xff\x02\x01"  # 0xFF then a 2-byte big-endian length (cmd + 512)
    assert decode_data_message(wire) == m
    # a real 254-byte message keeps the one-byte length
    assert encode_data_message(NiMessage(0x12, bytes(253)))[0] == 0xFE


def test_u61_frame() -> None:
    m = NiMessage(0x12, bytes.fromhex("003001820351"))
    assert encode_u61(m) == bytes.fromhex("7e00" "0712003001820351e0")
    assert decode_u61(encode_u61(m)) == m
    with pytest.raises(NiFrameError) as ei:
        decode_u61(bytes.fromhex("7e01") + encode_data_message(m))
    assert ei.value.field == "u61.sync"


@given(st.integers(0, 255), st.binary(max_size=600))
def test_message_round_trip_and_byte_by_byte(cmd: int, payload: bytes) -> None:
    m = NiMessage(cmd, payload)
    assert decode_data_message(encode_data_message(m)) == m
    assert decode_u61(encode_u61(m)) == m
    wire = encode_code_packet(CodePacket(CpType.MSG, 3, True, 1)) + encode_data_message(m)
    d = LlpDecoder()
    out = [item for b in wire for item in d.feed(bytes((b,)))]
    assert out == [CodePacket(CpType.MSG, 3, True, 1), m]
    u = U61Decoder()
    assert [item for b in encode_u61(m) for item in u.feed(bytes((b,)))] == [m]


@given(st.binary(max_size=80))
def test_random_bytes_only_raise_decode_errors(data: bytes) -> None:
    for fn in (decode_code_packet, decode_data_message, decode_u61):
        try:
            fn(data)
        except NiFrameError as exc:
            assert isinstance(exc, DecodeError) and exc.field
    for dec in (LlpDecoder(), U61Decoder()):
        for item in dec.feed(data):
            assert isinstance(item, (CodePacket, NiMessage, FramingFault))


def test_decoder_resyncs_after_noise_and_aborted_message() -> None:
    d = LlpDecoder()
    good = encode_code_packet(CodePacket(CpType.MSG, 1, False, 1)) + encode_data_message(NiMessage(0x1A, E1))
    broken = encode_code_packet(CodePacket(CpType.MSG, 2, False, 1)) + encode_data_message(NiMessage(0x1A, E1))[:5]
    bad_cp = bytes.fromhex("7e070099")  # wrong sum
    items = d.feed(b"\x01\x02" + bad_cp + broken + good)
    kinds = [type(i).__name__ if not isinstance(i, FramingFault) else i.reason for i in items]
    assert kinds == ["noise", "code packet checksum mismatch", "noise", "CodePacket",
                     "message aborted by 0x7E", "CodePacket", "NiMessage"]
    assert items[-1] == NiMessage(0x1A, E1)
    u = U61Decoder()
    items = u.feed(b"\x55" + encode_u61(NiMessage(0x1A, E1))[:6] + encode_u61(NiMessage(0x50)))
    assert [i.reason if isinstance(i, FramingFault) else i for i in items] == [
        "noise", "message aborted by 0x7E", NiMessage(0x50)]


def test_encode_rejects_bad_values() -> None:
    from dlms14908.errors import EncodeError

    with pytest.raises(EncodeError):
        encode_code_packet(CodePacket(16))
    with pytest.raises(EncodeError):
        encode_code_packet(CodePacket(0, seq=8))
    with pytest.raises(EncodeError):
        encode_data_message(NiMessage(0x12, bytes(5000)))


# --------------------------------------------------------------------------- LLP state machine


def _shuttle(host: LlpEndpoint, mip: LlpEndpoint, now: float, drop=None) -> tuple[list, list]:
    """Move bytes both ways until quiet; ``drop(direction, data) -> data`` may tamper."""
    he, me = [], []
    for _ in range(40):
        a, b = host.bytes_to_send(now), mip.bytes_to_send(now)
        if drop is not None:
            a, b = drop("down", a), drop("up", b)
        if not a and not b:
            break
        if a:
            me += mip.receive_bytes(a, now)
        if b:
            he += host.receive_bytes(b, now)
    return he, me


def test_llp_message_with_buffer_handshake_and_piggyback_ack() -> None:
    host, mip = LlpEndpoint(Role.HOST), LlpEndpoint(Role.MIP)
    host.send_message(NiMessage(0x12, b"\x00\x30"), now=0.0)
    first = host.bytes_to_send(0.0)
    assert first == encode_code_packet(CodePacket(CpType.MSG_REQ, 0, False, 0))
    mip.receive_bytes(first, 0.0)
    assert mip.bytes_to_send(0.0) == encode_code_packet(CodePacket(CpType.MSG_ACK))
    host.receive_bytes(encode_code_packet(CodePacket(CpType.MSG_ACK)), 0.0)
    wire = host.bytes_to_send(0.0)
    msg = NiMessage(0x12, b"\x00\x30")
    assert wire == encode_code_packet(CodePacket(CpType.MSG, 1, False, 1)) + encode_data_message(msg)
    assert mip.receive_bytes(wire, 0.0) == [NiReceived(NiMessage(0x12, b"\x00\x30"))]
    assert mip.bytes_to_send(0.0) == encode_code_packet(CodePacket(CpType.NULL, 0, True, 0))  # the ack
    host.receive_bytes(encode_code_packet(CodePacket(CpType.NULL, 0, True, 0)), 0.0)
    assert not host.busy


def test_llp_reject_then_retry() -> None:
    host, mip = LlpEndpoint(Role.HOST, LlpConfig(reject_retry=0.05)), LlpEndpoint(Role.MIP)
    mip.reject_buffers = 2
    host.send_message(NiMessage(0x12, b"\x01"), now=0.0)
    now, got = 0.0, []
    for _ in range(10):
        got += _shuttle(host, mip, now)[1]
        t = host.next_timer()
        if t is None:
            break
        now = t
        host.handle_timer(now)
    assert got == [NiReceived(NiMessage(0x12, b"\x01"))]
    assert host.counters.rejects_received == 2 and mip.counters.rejects_sent == 2
    assert now == pytest.approx(0.1)  # two reject-retry delays


def test_llp_reject_timeout_fails_transfer() -> None:
    host = LlpEndpoint(Role.HOST, LlpConfig(reject_retry=0.1, reject_timeout=0.35))
    mip = LlpEndpoint(Role.MIP)
    mip.reject_buffers = 100
    host.send_message(NiMessage(0x12, b"\x01"), now=0.0)
    now, ev = 0.0, []
    while True:
        _shuttle(host, mip, now)
        t = host.next_timer()
        if t is None:
            break
        now = t
        ev += host.handle_timer(now)
    assert ev == [TransferFailed(NiMessage(0x12, b"\x01"), "buffer rejected until timeout")]


def test_llp_corrupted_message_gets_cpfail_and_resend() -> None:
    host, mip = LlpEndpoint(Role.HOST), LlpEndpoint(Role.MIP)
    mip.send_message(NiMessage(0x1A, E1), now=0.0)
    state = {"n": 0}

    def corrupt_once(direction: str, data: bytes) -> bytes:
        if direction == "up" and len(data) > 4 and state["n"] == 0:
            state["n"] = 1
            return data[:-1] + bytes((data[-1] ^ 0xFF,))  # break the data message checksum
        return data

    he, _ = _shuttle(host, mip, 0.0, corrupt_once)
    assert [e for e in he if isinstance(e, NiReceived)] == [NiReceived(NiMessage(0x1A, E1))]
    assert host.counters.fails_sent == 1 and mip.counters.fails_received == 1
    assert mip.counters.retransmits == 1 and not mip.busy


def test_llp_lost_ack_duplicate_dropped_and_reacked() -> None:
    host, mip = LlpEndpoint(Role.HOST, LlpConfig(ack_timeout=0.5)), LlpEndpoint(Role.MIP)
    mip.send_short(0x50, now=0.0)
    mip.receive_bytes(b"", 0.0)
    wire = mip.bytes_to_send(0.0)
    assert host.receive_bytes(wire, 0.0) == [NiShortReceived(0x50)]
    host.bytes_to_send(0.0)  # the ack is lost
    assert mip.handle_timer(0.5) == []
    again = mip.bytes_to_send(0.5)
    assert again == wire  # same sequence number
    assert host.receive_bytes(again, 0.5) == []  # duplicate not delivered again
    assert host.counters.duplicates == 1
    mip.receive_bytes(host.bytes_to_send(0.5), 0.5)  # the re-ack completes the transfer
    assert not mip.busy


def test_llp_no_ack_gives_up_after_max_attempts() -> None:
    host = LlpEndpoint(Role.HOST, LlpConfig(ack_timeout=0.1, max_attempts=3))
    host.send_short(0xE0, now=0.0)
    ev = []
    for k in range(1, 4):
        ev += host.handle_timer(0.1 * k)
    assert ev == [TransferFailed(0xE0, "no acknowledgement")]
    assert host.counters.retransmits == 2


def test_llp_resync_resets_sequence_numbers() -> None:
    host, mip = LlpEndpoint(Role.HOST), LlpEndpoint(Role.MIP)
    for i in range(3):
        host.send_short(0xE0 + i, now=0.0)
        _shuttle(host, mip, 0.0)
    assert host._tx_seq == 4
    host.resync(1.0)
    assert host.bytes_to_send(1.0) == bytes.fromhex("7e07007b")
    mip.receive_bytes(bytes.fromhex("7e07007b"), 1.0)
    ev = host.receive_bytes(mip.bytes_to_send(1.0), 1.0)
    assert [type(e).__name__ for e in ev] == ["LinkResynced"]
    host.send_short(0xE0, now=1.0)
    assert host.bytes_to_send(1.0)[1] >> 5 == 1  # sequence restarts at 1
    with pytest.raises(LocalProtocolError):
        host.send_short(300)


# --------------------------------------------------------------------------- driver (sans-I/O)


@pytest.mark.parametrize("kind", ["u50", "u61"])
def test_driver_startup_sequence_order(kind: str) -> None:
    drv = MipDriver(DriverConfig(kind=kind, reset_wait=0.2))  # type: ignore[arg-type]
    vm = VirtualMip(kind)  # type: ignore[arg-type]
    drv.start(0.0)
    vm.power_up()
    seen: list[int] = []
    down = LlpDecoder() if kind == "u50" else U61Decoder()
    for _ in range(100):
        a, b = drv.bytes_to_send(0.0), vm.bytes_to_send(0.0)
        if not a and not b:
            break
        for item in down.feed(a):
            if isinstance(item, NiMessage):
                seen.append(item.cmd)
            elif isinstance(item, CodePacket) and item.type in (CpType.NI_CMD_SHORT, CpType.RESYNC):
                seen.append(item.param if item.type == CpType.NI_CMD_SHORT else -1)
        vm.receive_bytes(a, 0.0)
        drv.receive_bytes(b, 0.0)
    assert drv.state is DriverState.READY and drv.unique_id == vm.unique_id
    # reference §2.3: resync -> layer 5 -> read UID (local NM 0x22) -> layer 2 -> status
    if kind == "u50":
        assert seen == [-1, 0xD0, 0x22, 0xD1, 0xE0]
    else:
        assert seen == [0xE5, 0x22, 0xE5, 0xE0]


def test_driver_fails_without_interface() -> None:
    drv = MipDriver(DriverConfig(reset_wait=0.1, step_timeout=0.1, step_retries=1))
    drv.start(0.0)
    ev = []
    t = 0.0
    for _ in range(50):
        nt = drv.next_timer()
        if nt is None:
            break
        t = nt
        ev += drv.handle_timer(t)
    assert [type(e).__name__ for e in ev][-1] == "DriverFailed" and drv.state is DriverState.FAILED


# --------------------------------------------------------------------------- over a pty


def _cfg(kind: str, **kw: object) -> DriverConfig:
    return DriverConfig(kind=kind, reset_wait=0.05, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["u50", "u61"])
def test_pty_startup_and_frames_both_ways(kind: str) -> None:
    async def main() -> None:
        async with VirtualTransceiver(kind, unique_id=bytes.fromhex("0102030405aa")) as vt:  # type: ignore[arg-type]
            link = await SerialLink.open(vt.port, config=_cfg(kind, phase_mode=kind == "u61"))
            try:
                assert link.unique_id == bytes.fromhex("0102030405aa")
                # an LPDU full of 0x7E bytes exercises the escaping through the real tty
                lpdu = append_crc(bytes.fromhex("00300182037e7e7e51"))
                await link.send(lpdu)
                assert await asyncio.wait_for(vt.sent.get(), 2) == lpdu
                vt.inject_frame(lpdu)
                assert await asyncio.wait_for(link.recv(), 2) == lpdu
                bad = bytearray(lpdu)
                bad[2] ^= 1
                vt.inject_frame(bytes(bad))  # the MIP reports a CRC error (niERROR|CRC) instead
                vt.inject_frame(E1)
                assert await asyncio.wait_for(link.recv(), 2) == E1
                assert link.l2_errors == 1
            finally:
                await link.close()

    asyncio.run(main())


def test_pty_noise_rejects_cpfail_and_spontaneous_reset() -> None:
    async def main() -> None:
        async with VirtualTransceiver("u50") as vt:
            link = await SerialLink.open(vt.port, config=_cfg("u50"))
            try:
                counters = link.driver.link.counters
                # line noise and a truncated code packet: the host hunts for the next 0x7E
                vt.inject_raw(b"\x00\x13\x37\x7e\x82")
                await asyncio.sleep(0.06)  # > 40 ms inter-byte timeout drops the partial packet
                vt.inject_frame(E1)
                assert await asyncio.wait_for(link.recv(), 2) == E1
                assert counters.framing_errors >= 1
                # the MIP refuses two buffer requests; the host retries and gets through
                vt.mip.link.reject_buffers = 2
                await link.send(E1)
                assert await asyncio.wait_for(vt.sent.get(), 2) == E1
                assert counters.rejects_received == 2
                # a corrupted uplink message: host answers CpFail, the MIP resends
                vt.mip.corrupt_uplink = 1
                vt.inject_frame(E1)
                assert await asyncio.wait_for(link.recv(), 2) == E1
                assert counters.fails_sent == 1 and vt.mip.link.counters.fails_received == 1
                assert link.recv_nowait() is None  # delivered exactly once
                # the interface resets on its own: the driver re-applies layer 2
                r0 = link.driver.resets  # the start-up reset report
                assert r0 == 1
                vt.power_up()
                for _ in range(100):
                    await asyncio.sleep(0.01)
                    if link.driver.resets == r0 + 1 and link.driver.ready:
                        break
                assert link.driver.resets == r0 + 1 and link.driver.ready and vt.mip.layer2
                await link.send(E1)
                assert await asyncio.wait_for(vt.sent.get(), 2) == E1
            finally:
                await link.close()

    asyncio.run(main())


def test_pty_startup_bytes_resync_and_layer_switch_cross_the_tty() -> None:
    """The start-up of reference §2.3 as bytes on the real tty: CpResync 7E 07 00 7B,
    then set-L5 (CpNiCmdShort 0xD0), read the UID (local NM 0x22 data message), set-L2 0xD1,
    status 0xE0; after a spontaneous interface reset the host resyncs again."""

    def downlink(raw: bytes) -> list[int]:
        seen = []
        for item in LlpDecoder().feed(raw):
            if isinstance(item, NiMessage):
                seen.append(item.cmd)
            elif isinstance(item, CodePacket) and item.type in (CpType.NI_CMD_SHORT, CpType.RESYNC):
                seen.append(item.param if item.type == CpType.NI_CMD_SHORT else -1)
        return seen

    async def main() -> None:
        async with VirtualTransceiver("u50") as vt:
            link = await SerialLink.open(vt.port, config=_cfg("u50"))
            try:
                raw = bytes(vt.raw_in)
                # no reset report heard within reset_wait: the host resets the MIP (niRESET)
                assert raw.startswith(bytes.fromhex("7e06502c" "7e07007b"))
                assert downlink(raw) == [0x50, -1, 0xD0, 0x22, 0xD1, 0xE0]
                vt.raw_in.clear()
                vt.power_up()
                for _ in range(100):
                    await asyncio.sleep(0.01)
                    if link.driver.resets == 2 and link.driver.ready:
                        break
                assert link.driver.ready and downlink(bytes(vt.raw_in))[:1] == [-1]
            finally:
                await link.close()

    asyncio.run(main())


def test_pty_host_wire_bytes_match_reference_layout() -> None:
    async def main() -> None:
        async with VirtualTransceiver("u50") as vt:
            link = await SerialLink.open(vt.port, config=_cfg("u50"))
            try:
                vt.raw_in.clear()
                await link.send(E1)
                await asyncio.wait_for(vt.sent.get(), 2)
                await asyncio.sleep(0.02)
                items = LlpDecoder().feed(bytes(vt.raw_in))
                msgs = [i for i in items if isinstance(i, NiMessage)]
                # L2 downlink: cmd 0x12, LPDU without its CRC (reference §2.1/§2.2 E1 example)
                assert msgs == [NiMessage(0x12, E1[:-2])]
                assert encode_data_message(msgs[0]).hex() == "0712003001820351e0"
            finally:
                await link.close()

    asyncio.run(main())


def test_open_fails_cleanly_on_silent_port() -> None:
    async def main() -> None:
        with pytest.raises(LinkError):
            await SerialLink.open("loop://", config=DriverConfig(reset_wait=0.05, step_timeout=0.05, step_retries=1),
                                  startup_timeout=2.0)
        with pytest.raises(LinkError):
            await SerialLink.open("/nonexistent/tty", config=_cfg("u50"))

    asyncio.run(main())


@given(st.lists(st.binary(max_size=40), max_size=6), st.sampled_from(["u50", "u61"]))
def test_random_bytes_into_link_state_machines_never_raise(chunks: list[bytes], kind: str) -> None:
    drv = MipDriver(DriverConfig(kind=kind))  # type: ignore[arg-type]
    drv.start(0.0)
    vm = VirtualMip(kind)  # type: ignore[arg-type]
    vm.layer2 = True
    host, mip = LlpEndpoint(Role.HOST), LlpEndpoint(Role.MIP)
    t = 0.0
    for c in chunks:
        t += 0.01
        # valid framing around random content reaches the command handlers too
        msg_cp = encode_code_packet(CodePacket(CpType.MSG, 1, False, 1))
        for data in (c, encode_u61(NiMessage(c[0], c[1:])) if c else b"",
                     msg_cp + encode_data_message(NiMessage(c[0], c[1:])) if c else b""):
            drv.receive_bytes(data, t)
            vm.receive_bytes(data, t)
            host.receive_bytes(data, t)
            mip.receive_bytes(data, t)
        for o in (drv, vm, host, mip):
            o.handle_timer(t + 1.0)
            o.bytes_to_send(t)


def test_virtual_transceiver_keeps_and_reaps_its_channel_sends() -> None:
    """Frames the host transmits go to the channel link in tasks the transceiver keeps (the
    loop holds tasks weakly) and reaps: a refused send (closed channel link) is counted, never
    left as an unretrieved task exception; close() waits for sends in flight."""
    import gc

    from dlms14908.transport.link import LinkClosed, LinkStats

    class ClosedChannel:
        stats = LinkStats()

        def __init__(self) -> None:
            self.tried: list[bytes] = []

        async def send(self, frame: bytes) -> None:
            await asyncio.sleep(0)
            self.tried.append(frame)
            raise LinkClosed("channel gone")

        async def recv(self) -> bytes:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def close(self) -> None:
            pass

    reported: list[dict[str, object]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reported.append(ctx))
        chan = ClosedChannel()
        vt = VirtualTransceiver("u50", channel=chan)
        await vt.start()
        link = await SerialLink.open(vt.port, config=_cfg("u50"))
        try:
            await link.send(E1)
            await link.send(E1)
            for _ in range(200):
                if vt.channel_send_failures == 2:
                    break
                await asyncio.sleep(0.01)
        finally:
            await link.close()
            await vt.close()
        assert chan.tried == [E1, E1]
        assert vt.channel_send_failures == 2 and not vt._sends
        gc.collect()

    asyncio.run(main())
    gc.collect()
    assert not [c for c in reported if "never retrieved" in str(c.get("message"))], reported
