"""Asyncio client against the meter simulator over LoopbackLink: every service path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from dlms14908 import axdr
from dlms14908.aio_client import Client, Measurement
from dlms14908.client import (
    ActionError,
    AssocState,
    AttributeRef,
    AuthenticationRejected,
    ClientSettings,
    DataAccessError,
    ExceptionResponseError,
    MethodRef,
)
from dlms14908.cosem import ScalerUnit, Unit
from dlms14908.errors import AuthenticationFailed, DlmsTimeout, RemoteProtocolError, ServiceError
from dlms14908.link import ApduLink, LoopbackLink
from dlms14908.obis import Obis
from dlms14908.sim import DEFAULT_KEYS, DEFAULT_PASSWORD, INTERVAL, MeterSimulator, SimClock
from dlms14908.xdlms import ActionResult, DataAccessResult, EntryDescriptor
from dlms14908.xdlms.ciphering import SecurityKeys

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
CLIENT_ST = b"TST\x00\x00\x00\x00\x01"
ENERGY = Obis.parse("1-0:1.8.0.255")
LP = Obis.parse("1-0:99.1.0.255")


class Recorder:
    """An ApduLink wrapper that keeps every APDU both ways."""

    def __init__(self, inner: ApduLink) -> None:
        self.inner = inner
        self.sent: list[bytes] = []
        self.received: list[bytes] = []

    async def request(self, apdu: bytes, *, timeout: float) -> bytes:
        self.sent.append(apdu)
        r = await self.inner.request(apdu, timeout=timeout)
        self.received.append(r)
        return r

    async def send(self, apdu: bytes) -> None:
        await self.inner.send(apdu)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def meter(clock: SimClock) -> MeterSimulator:
    return MeterSimulator(seed=7, clock=clock)


def run(coro):
    return asyncio.run(coro)


def public(meter: MeterSimulator) -> Client:
    return Client(LoopbackLink(meter.handler_for(0x10)))


def hls(meter: MeterSimulator, kind: str | None = "glo", **kw) -> tuple[Client, Recorder]:
    rec = Recorder(LoopbackLink(meter.handler_for(0x01)))
    extra = {}
    if kind == "ded":
        extra["dedicated_key"] = bytes(range(0x20, 0x30))
    s = ClientSettings.management_hls(DEFAULT_KEYS, CLIENT_ST, ciphering=kind, **extra, **kw)
    return Client(rec, s), rec


def test_loopback_link_is_an_apdu_link(meter):
    assert isinstance(LoopbackLink(meter.handler_for(0x10)), ApduLink)


def test_public_read_register_typed_and_scaled(meter, clock):
    async def go():
        async with public(meter) as c:
            raw = await c.get(ENERGY)
            su = await c.get(ENERGY, attr=3)
            m = await c.get(ENERGY, scaled=True)
            v = await c.get("1-0:32.7.0.255", scaled=True)
            return raw, su, m, v
    raw, su, m, v = run(go())
    assert isinstance(raw, axdr.DoubleLongUnsigned)
    assert raw == meter.import_export_wh(clock())[0]
    assert su == ScalerUnit(0, Unit.WATT_HOUR)
    assert isinstance(m, Measurement) and m.value == raw and m.unit is Unit.WATT_HOUR
    assert v.scaler_unit == ScalerUnit(-1, Unit.VOLT)
    assert v.value == pytest.approx(meter.model.voltage_dv(clock()) / 10)
    assert 220 <= v.value <= 240 and str(v).endswith(" V")


def test_clock_and_logical_names_are_typed(meter, clock):
    async def go():
        async with public(meter) as c:
            return await c.get("0-0:1.0.0.255"), await c.get(ENERGY, attr=1)
    t, ln = run(go())
    assert isinstance(t, axdr.DateTime)
    assert t.to_datetime() == datetime.fromtimestamp(int(clock()), UTC)
    assert ln == ENERGY


def test_energy_advances_with_simulated_time(meter, clock):
    async def go():
        async with public(meter) as c:
            a = await c.get(ENERGY)
            clock.advance(3600)
            b = await c.get(ENERGY)
            t1 = await c.get("1-0:1.8.1.255")
            t2 = await c.get("1-0:1.8.2.255")
            return a, b, t1, t2
    a, b, t1, t2 = run(go())
    p_first_hour = sum(meter.model.power(T0 + s)[0] for s in range(0, 3600, 60)) * 60 / 3600
    assert b > a
    assert abs((b - a) - p_first_hour) < 0.05 * p_first_hour + 2
    assert t1 + t2 == b


def test_get_with_list_mixes_values_and_errors(meter):
    async def go():
        async with public(meter) as c:
            return await c.get_with_list([AttributeRef(3, ENERGY, 2), AttributeRef(3, ENERGY, 3),
                                          (3, "1-0:99.7.0.255", 2), (64, "0-0:43.0.0.255", 2)])
    v, su, missing, hidden = run(go())
    assert isinstance(v, int) and su == ScalerUnit(0, Unit.WATT_HOUR)
    assert isinstance(missing, DataAccessError) and missing.result == DataAccessResult.OBJECT_UNDEFINED
    # the public client does not see the security setup
    assert isinstance(hidden, DataAccessError) and hidden.result == DataAccessResult.OBJECT_UNDEFINED


def test_96_entry_profile_by_range_matches_simulator_state(meter, clock):
    """Block transfer of one day of 15-minute entries; every value equals the meter's own."""
    start = (int(T0) // 86400 - 1) * 86400  # yesterday 00:00 UTC
    frm = datetime.fromtimestamp(start + INTERVAL, UTC)
    to = datetime.fromtimestamp(start + 96 * INTERVAL, UTC)
    seen: list[tuple[int, int]] = []

    async def go():
        rec = Recorder(LoopbackLink(meter.handler_for(0x10)))
        async with Client(rec) as c:
            buf = await c.read_profile(LP, from_=frm, to=to, progress=lambda a, b: seen.append((a, b)))
        return buf, rec
    buf, rec = run(go())
    assert len(buf) == 96
    blocks = [r for r in rec.received if r[:2] == b"\xc4\x02"]
    assert len(blocks) >= 2  # it really went through GET-with-datablock
    for i, (ts, imp, exp) in enumerate(buf.rows):
        t = start + (i + 1) * INTERVAL
        assert ts.to_datetime().timestamp() == t
        assert (imp, exp) == meter.import_export_wh(t)
    # and the last entry equals what the register said at that instant
    clock.now = float(start + 96 * INTERVAL)
    reg = run(_read(meter, ENERGY))
    assert reg == buf.rows[-1][1]
    assert seen[-1] == (96, 96) and all(b == 96 for _, b in seen)
    assert [a for a, _ in seen] == sorted(a for a, _ in seen)


async def _read(meter, obis):
    async with public(meter) as c:
        return await c.get(obis)


def test_profile_by_entries_and_columns(meter, clock):
    async def go():
        async with public(meter) as c:
            n = await c.get(LP, attr=7)
            first = await c.read_profile(LP, entries=(1, 3))
            last = await c.read_profile(LP, entries=(n - 1, 0))
            return n, first, last
    n, first, last = run(go())
    rows = meter.profile_rows()
    assert n == len(rows) == 960
    assert tuple(first.rows[0])[1:] == tuple(rows[0][1:])
    assert len(first) == 3 and len(last) == 2
    assert last.rows[-1][1] == rows[-1][1]


def test_set_with_datablocks_and_get_back(meter):
    table = bytes(i % 251 for i in range(3000))  # > server PDU size: SET with datablocks

    async def go():
        c, rec = hls(meter, None)
        async with c:
            await c.set("0-0:65.0.1.255", axdr.OctetString(table), attr=4)
            back = await c.get("0-0:65.0.1.255", attr=4)
        return back, rec
    back, rec = run(go())
    assert back == table
    assert any(s[:2] == b"\xc1\x02" for s in rec.sent)  # SET-Request-With-First-Datablock
    assert any(r[:2] == b"\xc4\x02" for r in rec.received)  # GET-Response-With-Datablock


def test_set_with_list_and_typed_set(meter):
    async def go():
        c, _ = hls(meter)
        async with c:
            res = await c.set_with_list([
                (AttributeRef(131, Obis.parse("0-0:32.1.0.255"), 2), axdr.LongUnsigned(77)),
                (AttributeRef(3, ENERGY, 2), axdr.DoubleLongUnsigned(1)),
            ])
            await c.set("0-0:32.1.0.255", 600, attr=2)  # plain int typed via the class table
            return res, await c.get("0-0:32.1.0.255", attr=2)
    res, v = run(go())
    assert res == [DataAccessResult.SUCCESS, DataAccessResult.READ_WRITE_DENIED]
    assert v == 600


def test_image_transfer_in_image_blocks(meter):
    """Image transfer (class 18) in the meter's image_block_size blocks, each block one
    ACTION APDU (ACTION with pblocks: test_big_action_parameter_uses_pblocks)."""
    image = bytes(range(256)) * 10  # 2560 bytes: several image blocks

    async def go():
        c, rec = hls(meter, "glo")
        async with c:
            await c.action("0-0:44.0.0.255", 1, axdr.Structure([axdr.OctetString(b"fw-2"),
                                                                axdr.DoubleLongUnsigned(len(image))]))
            bs = int(await c.get("0-0:44.0.0.255", attr=2))
            for n in range(0, len(image), bs):
                await c.action("0-0:44.0.0.255", 2, axdr.Structure([
                    axdr.DoubleLongUnsigned(n // bs), axdr.OctetString(image[n:n + bs])]))
            await c.action("0-0:44.0.0.255", 3, axdr.Integer(0))
            await c.action("0-0:44.0.0.255", 4, axdr.Integer(0))
            status = await c.get("0-0:44.0.0.255", attr=6)
        return status, bs, rec
    status, bs, rec = run(go())
    assert int(status) == 6  # activation successful
    assert meter.objects[Obis.parse("0-0:44.0.0.255")].active_image == image
    blocks = -(-len(image) // bs)
    assert blocks > 1
    # glo-action-request (0xCB): HLS pass 3, initiate, one per block, verify, activate
    assert sum(1 for s in rec.sent if s[0] == 0xCB) == 1 + 1 + blocks + 2


def test_big_action_parameter_uses_pblocks(meter):
    big = bytes(5000)

    async def go():
        c, rec = hls(meter, "glo")
        async with c:
            await c.action("0-0:44.0.0.255", 1, axdr.Structure([axdr.OctetString(b"x"),
                                                                axdr.DoubleLongUnsigned(5000)]))
            await c.action("0-0:44.0.0.255", 2, axdr.Structure([axdr.DoubleLongUnsigned(0),
                                                                axdr.OctetString(big)]))
        return rec
    rec = run(go())
    it = meter.objects[Obis.parse("0-0:44.0.0.255")]
    assert it.blocks[0] == big
    # every request after the AARQ was ciphered (glo-action-request 0xCB carries the pblocks)
    assert sum(1 for s in rec.sent if s[0] == 0xCB) >= 5


def test_action_return_in_pblocks():
    """A tiny client PDU size forces the server to return HLS pass 4 in ACTION pblocks."""
    clock = SimClock(T0)
    meter = MeterSimulator(seed=1, clock=clock)

    async def go():
        rec = Recorder(LoopbackLink(meter.handler_for(0x01)))
        s = ClientSettings.management_hls(DEFAULT_KEYS, CLIENT_ST, ciphering=None,
                                          max_receive_pdu_size=20)
        c = Client(rec, s)
        await c.connect()
        return c, rec
    c, rec = run(go())
    assert c.conn.state is AssocState.ASSOCIATED
    assert any(r[:2] == b"\xc7\x02" for r in rec.received)  # ACTION-Response-With-Pblock
    assert any(s[:2] == b"\xc3\x02" for s in rec.sent)  # ACTION-Request-Next-Pblock


def test_action_with_list(meter, clock):
    async def go():
        c, _ = hls(meter, "glo")
        async with c:
            return await c.action_with_list([
                (MethodRef(70, Obis.parse("0-0:96.3.10.255"), 1), axdr.Integer(0)),
                (MethodRef(70, Obis.parse("0-0:96.3.10.255"), 9), axdr.Integer(0)),
            ])
    items = run(go())
    assert items[0].result == ActionResult.SUCCESS
    assert items[1].result == ActionResult.OBJECT_UNDEFINED


def test_disconnect_stops_energy_and_power(meter, clock):
    dc = "0-0:96.3.10.255"

    async def go():
        c, _ = hls(meter, "ded")
        async with c:
            await c.action(dc, 1, axdr.Integer(0))
            state = await c.get(dc, attr=3)
            e0 = await c.get(ENERGY)
            clock.advance(2 * 3600)
            p = await c.get("1-0:1.7.0.255")
            e1 = await c.get(ENERGY)
            await c.action(dc, 2, axdr.Integer(0))
            clock.advance(3600)
            e2 = await c.get(ENERGY)
            return state, e0, p, e1, e2
    state, e0, p, e1, e2 = run(go())
    assert state.name == "DISCONNECTED"
    assert p == 0 and e1 == e0 and e2 > e1
    # the profile agrees with the registers across the outage
    for row in meter.profile_rows()[-12:]:
        t = row[0]
        ts = axdr.DateTime.from_bytes(bytes(t)).to_datetime().timestamp()
        assert (row[1], row[2]) == meter.import_export_wh(ts)


def test_public_client_is_read_only(meter):
    async def go():
        async with public(meter) as c:
            with pytest.raises(DataAccessError) as e1:
                await c.set("0-0:1.0.0.255", axdr.Long(60), attr=3)
            with pytest.raises(ActionError) as e2:
                await c.action("0-0:96.3.10.255", 1, axdr.Integer(0))
            with pytest.raises(DataAccessError) as e3:
                await c.get("0-0:43.0.0.255", attr=2)
            return e1.value, e2.value, e3.value
    e1, e2, e3 = run(go())
    assert e1.result == DataAccessResult.READ_WRITE_DENIED
    assert e2.result == ActionResult.READ_WRITE_DENIED
    assert e3.result == DataAccessResult.OBJECT_UNDEFINED
    assert all(isinstance(e, ServiceError) for e in (e1, e2, e3))


def test_wrong_class_is_object_class_inconsistent(meter):
    async def go():
        async with public(meter) as c:
            await c.get(ENERGY, class_id=4)
    with pytest.raises(DataAccessError) as e:
        run(go())
    assert e.value.result == DataAccessResult.OBJECT_CLASS_INCONSISTENT


def test_object_list_matches_access_rights(meter):
    async def go():
        async with public(meter) as c:
            pub = await c.object_list()
        c2, _ = hls(meter)
        async with c2:
            mgmt = await c2.object_list()
        return pub, mgmt
    pub, mgmt = run(go())
    pub_ln = {o.logical_name for o in pub}
    mgmt_ln = {o.logical_name for o in mgmt}
    assert pub_ln < mgmt_ln and mgmt_ln == set(meter.objects)
    assert Obis.parse("0-0:43.0.0.255") not in pub_ln
    for o in pub:
        assert all(int(a.access_mode) in (0, 1) for a in o.access_rights.attribute_access)
        assert all(int(m.access_mode) == 0 for m in o.access_rights.method_access)
    dc = next(o for o in mgmt if o.logical_name == Obis.parse("0-0:96.3.10.255"))
    assert {int(m.method_id): int(m.access_mode) for m in dc.access_rights.method_access} == {1: 1, 2: 1}


def test_lls_association(meter):
    async def go():
        c = Client(LoopbackLink(meter.handler_for(0x01)), ClientSettings.management_lls(DEFAULT_PASSWORD))
        async with c:
            return await c.get("0-0:43.0.0.255", attr=5)
    assert run(go()) == meter.system_title


def test_wrong_password_is_a_typed_error(meter):
    async def go():
        c = Client(LoopbackLink(meter.handler_for(0x01)), ClientSettings.management_lls(b"wrong!!!"))
        await c.connect()
    with pytest.raises(AuthenticationRejected) as e:
        run(go())
    assert isinstance(e.value, AuthenticationFailed) and isinstance(e.value, ServiceError)
    assert e.value.diagnostic.name == "AUTHENTICATION_FAILURE"
    assert "wrong" not in str(e.value)


@pytest.mark.parametrize("kind", [None, "glo"])
def test_hls_with_wrong_key_is_rejected(meter, kind):
    bad = SecurityKeys(ek=bytes(16), ak=DEFAULT_KEYS.ak)

    async def go():
        s = ClientSettings.management_hls(bad, CLIENT_ST, ciphering=kind)
        c = Client(LoopbackLink(meter.handler_for(0x01)), s)
        await c.connect()
    with pytest.raises(AuthenticationRejected):
        run(go())


@pytest.mark.parametrize("kind,tag", [("glo", 0xC8), ("ded", 0xD0)])
def test_ciphered_apdus_on_the_wire(meter, kind, tag):
    async def go():
        c, rec = hls(meter, kind)
        async with c:
            v = await c.get(ENERGY)
        return v, rec
    v, rec = run(go())
    assert v == meter.import_export_wh(T0)[0]
    get_reqs = [s for s in rec.sent if s[0] == tag]
    assert get_reqs, [hex(s[0]) for s in rec.sent]
    # no plain GET ever left the client and the energy value is not visible in clear
    assert not any(s[0] == 0xC0 for s in rec.sent)
    assert all(r[0] in (0x61, 0x63) or r[0] in (0xCC, 0xCF, 0xD4, 0xD7) for r in rec.received)
    assert rec.sent[0][0] == 0x60 and b"\x01\x00\x00\x00\x06" not in rec.sent[0]  # initiate ciphered


def test_replayed_ciphered_request_is_refused(meter):
    async def go():
        c, rec = hls(meter, "glo")
        await c.connect()
        await c.get(ENERGY)
        replay = next(s for s in rec.sent if s[0] == 0xC8)
        answer = meter.handler_for(0x01)(replay)
        return answer
    answer = run(go())
    from dlms14908.xdlms import decode_apdu
    exc = decode_apdu(answer)
    assert exc.NAME == "exception-response" and exc.service_error.name == "INVOCATION_COUNTER_ERROR"


def test_plain_request_in_ciphered_association_is_refused(meter):
    async def go():
        c, _ = hls(meter, "glo")
        await c.connect()
        c.conn._ciphered = False  # misbehave: send a plain GET
        await c.get(ENERGY)
    with pytest.raises(ExceptionResponseError) as e:
        run(go())
    assert e.value.service_error.name == "DECIPHERING_ERROR"


def test_request_without_association_gets_exception_response(meter):
    async def go():
        c = Client(LoopbackLink(meter.handler_for(0x10)), ClientSettings.public(pre_established=True))
        await c.get(ENERGY)
    with pytest.raises(ExceptionResponseError) as e:
        run(go())
    assert e.value.state_error.name == "SERVICE_NOT_ALLOWED"


def test_pre_established_association(clock):
    from dlms14908.server import AssociationConfig
    meter = MeterSimulator(seed=3, clock=clock)
    meter.server.configs[0x20] = AssociationConfig(0x20, pre_established=True)

    async def go():
        rec = Recorder(LoopbackLink(meter.handler_for(0x20)))
        c = Client(rec, ClientSettings(client_sap=0x20, pre_established=True))
        async with c:  # no AARQ; close() sends no RLRQ
            v = await c.get(ENERGY)
        return v, rec
    v, rec = run(go())
    assert v == meter.import_export_wh(T0)[0]
    assert [s[0] for s in rec.sent] == [0xC0]  # the GET only: no AARQ (0x60), no RLRQ (0x62)


def test_release_then_reconnect(meter):
    async def go():
        c, _ = hls(meter, "glo")
        await c.connect()
        await c.release()
        st1 = c.conn.state
        await c.connect()
        v = await c.get(ENERGY)
        await c.close()
        return st1, v
    st1, v = run(go())
    assert st1 is AssocState.IDLE and v > 0


def test_invoke_id_mismatch_is_detected(meter):
    h = meter.handler_for(0x10)

    def evil(apdu: bytes) -> bytes:
        r = h(apdu)
        if r[0] == 0xC4:
            r = r[:2] + bytes(((r[2] & 0xF0) | ((r[2] + 1) & 0x0F),)) + r[3:]
        return r

    async def go():
        async with Client(LoopbackLink(evil)) as c:
            await c.get(ENERGY)
    with pytest.raises(RemoteProtocolError, match="invoke-id"):
        run(go())


def test_timeout_surfaces_as_dlms_timeout(meter):
    async def go():
        c = Client(LoopbackLink(meter.handler_for(0x10), latency=0.05), timeout=0.01)
        await c.connect()
    with pytest.raises(DlmsTimeout):
        run(go())


def test_counters_come_from_the_provider(meter):
    counters = {"transmission_errors": 3, "messages_received": 123456}
    meter.set_counter_providers(lambda: counters, lambda: {"late_ack": 9})

    async def go():
        async with public(meter) as c:
            a = await c.get("0-0:32.2.0.255", attr=2)
            b = await c.get("0-0:32.2.0.255", attr=10)
            counters["messages_received"] += 1
            b2 = await c.get("0-0:32.2.0.255", attr=10)
            d = await c.get("0-0:32.3.0.255", attr=8)
            return a, b, b2, d
    assert run(go()) == (3, 123456, 123457, 9)


def test_fifty_meters_polled_concurrently(clock):
    meters = [MeterSimulator(seed=i, clock=clock) for i in range(50)]
    inflight = [0, 0]  # current, maximum

    class Counting(LoopbackLink):
        async def request(self, apdu: bytes, *, timeout: float) -> bytes:
            inflight[0] += 1
            inflight[1] = max(inflight[1], inflight[0])
            try:
                return await super().request(apdu, timeout=timeout)
            finally:
                inflight[0] -= 1

    async def poll(m: MeterSimulator):
        async with Client(Counting(m.handler_for(0x10), latency=0.002)) as c:
            return await c.get(ENERGY), await c.read_profile(LP, entries=(1, 4))

    async def go():
        return await asyncio.gather(*(poll(m) for m in meters))
    res = run(go())
    assert [r[0] for r in res] == [m.import_export_wh(T0)[0] for m in meters]
    assert [r[1].rows for r in res] == [
        [tuple(x) for x in decode_rows(m.profile_rows()[:4])] for m in meters]
    assert len({r[0] for r in res}) > 40  # different meters, different readings
    assert inflight[1] >= 45  # the requests really were in flight at the same time


def decode_rows(rows):
    from dlms14908.cosem import decode_buffer
    from dlms14908.xdlms import CaptureObjectDefinition
    caps = [CaptureObjectDefinition(8, Obis.parse("0-0:1.0.0.255"), 2, 0),
            CaptureObjectDefinition(3, ENERGY, 2, 0), CaptureObjectDefinition(3, Obis.parse("1-0:2.8.0.255"), 2, 0)]
    return decode_buffer(axdr.Array(rows), caps, capture_period=INTERVAL).rows


def test_reconnect_after_timeout_during_association(meter):
    link = LoopbackLink(meter.handler_for(0x10), latency=0.05)

    async def go():
        c = Client(link, timeout=0.01)
        with pytest.raises(DlmsTimeout):
            await c.connect()
        failed = c.conn.state
        c.timeout = 1.0
        await c.connect()
        return failed, c.associated, await c.get(ENERGY)
    failed, ok, v = run(go())
    assert failed is AssocState.ERROR and ok and v > 0


def test_secrets_never_in_reprs():
    s = ClientSettings.management_hls(DEFAULT_KEYS, CLIENT_ST, ciphering="ded",
                                      dedicated_key=bytes(range(0x40, 0x50)))
    lls = ClientSettings.management_lls(b"sup3rsecret")
    text = repr(s) + repr(lls) + repr(Client(LoopbackLink(lambda a: a), s).conn.cipher)
    from dlms14908.server import AssociationConfig
    text += repr(AssociationConfig(1, secret=b"sup3rsecret", keys=DEFAULT_KEYS))
    for secret in (DEFAULT_KEYS.ek, DEFAULT_KEYS.ak, bytes(range(0x40, 0x50)), b"sup3rsecret"):
        assert secret.hex() not in text.lower() and secret.hex().upper() not in text
        assert repr(secret) not in text
    assert "sup3rsecret" not in text


def test_with_list_services_in_blocks(meter):
    """GET-with-list answered in datablocks and SET-with-list sent in datablocks."""
    big = bytes(i % 97 for i in range(2500))
    ut = Obis.parse("0-0:65.0.1.255")

    async def go():
        c, rec = hls(meter, "glo")
        async with c:
            res = await c.set_with_list([(AttributeRef(26, ut, 4), axdr.OctetString(big)),
                                         (AttributeRef(131, Obis.parse("0-0:32.1.0.255"), 2),
                                          axdr.LongUnsigned(5))])
            got = await c.get_with_list([AttributeRef(26, ut, 4), AttributeRef(3, ENERGY, 2),
                                         AttributeRef(7, LP, 2, EntryDescriptor(1, 40))], typed=False)
        return res, got, rec
    res, got, rec = run(go())
    assert res == [DataAccessResult.SUCCESS, DataAccessResult.SUCCESS]
    assert got[0] == big and got[1] == meter.import_export_wh(T0)[0]
    assert list(got[2]) == meter.profile_rows()[:40]
    session = meter.server.sessions[0x01]
    assert session.cipher is not None and session.cipher.stats.accepted >= 8  # every block was ciphered
    assert sum(1 for s in rec.sent if s[0] == 0xC9) >= 3  # glo-set-request blocks


def test_profile_metadata_is_read_once_per_client(meter):
    async def go():
        rec = Recorder(LoopbackLink(meter.handler_for(0x10)))
        async with Client(rec) as c:
            await c.read_profile(LP, entries=(1, 2))
            n1 = len(rec.sent)
            await c.read_profile(LP, entries=(3, 4))
            return len(rec.sent) - n1
    assert run(go()) == 1  # the second read is one GET, no metadata round trip


def test_pre_established_ciphered_association(clock):
    from dlms14908.server import AssociationConfig
    from dlms14908.xdlms import decode_apdu
    meter = MeterSimulator(seed=3, clock=clock)
    meter.server.configs[0x21] = AssociationConfig(0x21, pre_established=True, keys=DEFAULT_KEYS,
                                                   client_system_title=CLIENT_ST, require_ciphering=True)
    s = ClientSettings(client_sap=0x21, pre_established=True, keys=DEFAULT_KEYS, system_title=CLIENT_ST,
                       server_system_title=meter.system_title, ciphering="glo")

    async def go():
        rec = Recorder(LoopbackLink(meter.handler_for(0x21)))
        async with Client(rec, s) as c:
            v = await c.get(ENERGY)
        return v, rec
    v, rec = run(go())
    assert v == meter.import_export_wh(T0)[0]
    assert [x[0] for x in rec.sent] == [0xC8] and [x[0] for x in rec.received] == [0xCC]
    # a plain request is refused when ciphering is required; a replayed ciphered one too
    h = meter.handler_for(0x21)
    from dlms14908.xdlms import AttributeDescriptor, GetRequestNormal
    refused = decode_apdu(h(GetRequestNormal(0xC1, AttributeDescriptor(3, ENERGY, 2)).to_bytes()))
    assert refused.NAME == "exception-response" and refused.service_error.name == "DECIPHERING_ERROR"
    replay = decode_apdu(h(rec.sent[0]))
    assert replay.service_error.name == "INVOCATION_COUNTER_ERROR"


def test_unconfirmed_services_get_no_answer(meter, clock):
    answers: list = []
    h = meter.handler_for(0x01)

    def spy(apdu: bytes):
        r = h(apdu)
        answers.append(r)
        return r

    async def go():
        c = Client(LoopbackLink(spy), ClientSettings.management_hls(DEFAULT_KEYS, CLIENT_ST))
        async with c:
            await c.set_unconfirmed("0-0:32.1.0.255", axdr.LongUnsigned(99))
            await c.action_unconfirmed("0-0:96.3.10.255", 1, axdr.Integer(0))
            return await c.get("0-0:32.1.0.255"), await c.get("0-0:96.3.10.255", attr=3)
    timeout, state = run(go())
    assert timeout == 99 and state.name == "DISCONNECTED"
    assert answers.count(None) == 2  # the two unconfirmed requests were not answered
