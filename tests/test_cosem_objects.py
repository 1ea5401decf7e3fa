"""Server-side COSEM objects: storage, GET/SET/ACTION dispatch, access errors, behaviour classes."""

from __future__ import annotations

import pytest

from dlms14908 import axdr
from dlms14908.axdr import DateTime
from dlms14908.cosem import (
    CaptureObjectDefinition,
    Clock,
    ControlState,
    CosemAccessError,
    CosemObject,
    DisconnectControl,
    Iso14908Diagnostic,
    Iso14908Identification,
    Iso14908ProtocolStatus,
    ProfileGeneric,
    Register,
    ScalerUnit,
    Unit,
    class_ids,
    decode_buffer,
    make_object,
)
from dlms14908.errors import EncodeError, ServiceError
from dlms14908.obis import Obis
from dlms14908.xdlms.types import ActionResult, DataAccessResult, EntryDescriptor, RangeDescriptor

NOW = 1_711_843_200.0  # 2024-03-31T00:00:00Z


def test_every_class_can_be_instantiated() -> None:
    for cid in class_ids():
        o = make_object(cid, Obis.parse("0-0:96.1.0.255"))
        assert o.get(1) == bytes(o.logical_name) == bytes.fromhex("00006001 00FF".replace(" ", ""))
        assert o.interface.class_id == cid


def test_register_get_set_reset() -> None:
    r = Register(
        "1-0:1.8.0.255",
        value=axdr.DoubleLongUnsigned(1234),
        scaler_unit=ScalerUnit(0, Unit.WATT_HOUR),
    )
    assert r.get(2) == 1234 and type(r.get(2)) is axdr.DoubleLongUnsigned
    assert r.value("scaler_unit") == ScalerUnit(0, Unit.WATT_HOUR)
    assert axdr.encode(r.get(3)) == bytes.fromhex("0202 0F00 161E".replace(" ", ""))
    r.set(2, axdr.DoubleLongUnsigned(5))
    assert r.get(2) == 5
    assert r.action(1, axdr.Integer(0)) is None
    assert r.get(2) == 0 and type(r.get(2)) is axdr.DoubleLongUnsigned


@pytest.mark.parametrize(
    "call,result",
    [
        (lambda r: r.get(9), DataAccessResult.OBJECT_UNDEFINED),
        (lambda r: r.set(1, axdr.OctetString(bytes(6))), DataAccessResult.READ_WRITE_DENIED),
        (lambda r: r.set(3, axdr.Unsigned(1)), DataAccessResult.TYPE_UNMATCHED),
        (lambda r: r.action(2), ActionResult.OBJECT_UNDEFINED),
        (lambda r: r.action(1, axdr.OctetString(b"x")), ActionResult.TYPE_UNMATCHED),
        (lambda r: Register("1-0:2.8.0.255").get(2), DataAccessResult.OBJECT_UNAVAILABLE),
        (lambda r: r.get(2, selection=EntryDescriptor()), DataAccessResult.OTHER_REASON),
    ],
)
def test_access_errors_carry_result_codes(call, result) -> None:  # type: ignore[no-untyped-def]
    r = Register(
        "1-0:1.8.0.255", value=axdr.DoubleLongUnsigned(1), scaler_unit=ScalerUnit(0, Unit.WATT_HOUR)
    )
    with pytest.raises(CosemAccessError) as ei:
        call(r)
    assert ei.value.result == result
    assert isinstance(ei.value, ServiceError)


def test_unimplemented_method_is_object_unavailable() -> None:
    o = CosemObject("0-0:44.0.0.255", class_id=18)
    with pytest.raises(CosemAccessError) as ei:
        o.action(3, axdr.Integer(0))
    assert ei.value.result == ActionResult.OBJECT_UNAVAILABLE


def test_local_set_value_type_checks() -> None:
    with pytest.raises(EncodeError):
        Register("1-0:1.8.0.255", scaler_unit="nonsense")
    with pytest.raises(EncodeError):
        CosemObject("0-0:32.2.0.255", class_id=132, transmission_errors=70000)


def test_clock_time_from_now_and_adjustments() -> None:
    c = Clock(time_zone=-60)
    t = DateTime.from_bytes(bytes(c.get(2, now=NOW)))
    assert (t.year, t.month, t.day, t.hour, t.minute, t.deviation, t.weekday) == (
        2024,
        3,
        31,
        1,
        0,
        -60,
        7,
    )
    c.set(2, axdr.OctetString(DateTime(2024, 3, 31, None, 1, 10, 0, 0, -60, 0).to_bytes()), now=NOW)
    assert c.offset == 600
    c.action(6, axdr.Long(-30), now=NOW)
    assert c.offset == 570
    c.action(3, axdr.Integer(0), now=NOW)  # adjust to minute
    assert c.offset == 600
    with pytest.raises(CosemAccessError):
        c.action(6, axdr.Long(1000), now=NOW)
    with pytest.raises(CosemAccessError) as ei:
        c.get(2)  # no time source
    assert ei.value.result == DataAccessResult.TEMPORARY_FAILURE


def _pg() -> tuple[ProfileGeneric, Clock, Register]:
    clock = Clock(time_zone=-60)
    reg = Register(
        "1-0:1.8.0.255", value=axdr.DoubleLongUnsigned(0), scaler_unit=ScalerUnit(0, Unit.WATT_HOUR)
    )
    objs = {clock.logical_name: clock, reg.logical_name: reg}

    def resolve(c: CaptureObjectDefinition, now: float | None) -> object:
        return objs[c.logical_name].get(c.attribute_index, now=now)

    cols = [
        CaptureObjectDefinition(8, clock.logical_name, 2, 0),
        CaptureObjectDefinition(3, reg.logical_name, 2, 0),
    ]
    pg = ProfileGeneric(
        "1-0:99.1.0.255",
        resolver=resolve,
        capture_objects=cols,
        capture_period=900,
        profile_entries=5,
    )
    for i in range(8):
        reg.set(2, axdr.DoubleLongUnsigned(i * 10))
        pg.action(2, axdr.Integer(0), now=NOW + 900 * i)
    return pg, clock, reg


def test_profile_generic_capture_fifo_and_entries() -> None:
    pg, _, _ = _pg()
    assert pg.get(7) == 5  # entries_in_use, limited by profile_entries (FIFO drops the oldest)
    buf = decode_buffer(pg.get(2), pg.capture_objects, capture_period=900)
    assert [int(r[1]) for r in buf] == [30, 40, 50, 60, 70]
    assert buf.rows[0][0].minute == 45


def test_profile_generic_selective_access() -> None:
    pg, _, _ = _pg()
    by_entry = pg.get(2, selection=EntryDescriptor(2, 3, 2, 2))
    assert by_entry == axdr.Array(
        [
            axdr.Structure([axdr.DoubleLongUnsigned(40)]),
            axdr.Structure([axdr.DoubleLongUnsigned(50)]),
        ]
    )
    lo = axdr.OctetString(DateTime(2024, 3, 31, None, 1, 59, 0, 0, -60, 0).to_bytes())
    hi = axdr.OctetString(DateTime(2024, 3, 31, None, 2, 31, 0, 0, -60, 0).to_bytes())
    rng = RangeDescriptor(pg.capture_objects[0], lo, hi, ())
    rows = decode_buffer(pg.get(2, selection=rng), pg.capture_objects)
    # kept entries are at 01:45, 02:00, 02:15, 02:30, 02:45 local (UTC+1) with 30..70
    assert [int(r[1]) for r in rows] == [40, 50, 60]
    assert [(r[0].hour, r[0].minute) for r in rows] == [(2, 0), (2, 15), (2, 30)]
    sel_cols = RangeDescriptor(pg.capture_objects[0], lo, hi, (pg.capture_objects[1],))
    only_energy = pg.get(2, selection=sel_cols)
    assert all(len(r) == 1 and type(r[0]) is axdr.DoubleLongUnsigned for r in only_energy)
    pg.action(1, axdr.Integer(0))
    assert pg.get(7) == 0 and pg.get(2) == axdr.Array()


def test_disconnect_control_state_machine() -> None:
    dc = DisconnectControl(control_mode=2)
    assert dc.state is ControlState.CONNECTED and dc.get(2) is True
    dc.action(1, axdr.Integer(0))
    assert dc.state is ControlState.DISCONNECTED and dc.get(2) is False
    dc.action(2, axdr.Integer(0))
    assert dc.state is ControlState.READY_FOR_RECONNECTION and dc.get(2) is False
    dc.manual_reconnect()
    assert dc.state is ControlState.CONNECTED and dc.get(2) is True
    dc1 = DisconnectControl(control_mode=1)
    dc1.action(1)
    dc1.action(2)
    assert dc1.state is ControlState.CONNECTED
    dc0 = DisconnectControl(control_mode=0)
    dc0.action(1)
    assert dc0.state is ControlState.CONNECTED
    # remote reconnection: transition a (to ready_for_reconnection) in modes 2 and 4,
    # transition d (straight to connected) in modes 1, 3, 5 and 6
    for mode, after in ((1, ControlState.CONNECTED), (2, ControlState.READY_FOR_RECONNECTION),
                        (3, ControlState.CONNECTED), (4, ControlState.READY_FOR_RECONNECTION),
                        (5, ControlState.CONNECTED), (6, ControlState.CONNECTED)):
        dcm = DisconnectControl(control_mode=mode)
        dcm.action(1)
        assert dcm.state is ControlState.DISCONNECTED, mode
        dcm.action(2)
        assert dcm.state is after, mode
        assert dcm.get(2) is (after is ControlState.CONNECTED)


def test_iso14908_objects() -> None:
    ident = Iso14908Identification(
        node_id=5,
        subnet_id=1,
        domain_id=b"\x12",
        program_id=bytes(8),
        unique_node_id=bytes.fromhex("0102030405A6"),
    )
    assert str(ident.logical_name) == "0-0:32.0.0.255"
    assert ident.get(6) == bytes.fromhex("0102030405A6") and type(ident.get(2)) is axdr.Unsigned
    st = Iso14908ProtocolStatus()
    assert st.get(10) == 0 and type(st.get(10)) is axdr.DoubleLongUnsigned
    st.increment("messages_received", 3)
    st.increment(2, 0x10000)  # long-unsigned wraps
    assert st.get(10) == 3 and st.get(2) == 0
    assert str(st.logical_name) == "0-0:32.2.0.255"
    with pytest.raises(CosemAccessError):
        st.action(1)  # version 0 has no reset
    diag = Iso14908Diagnostic()
    assert type(diag.get(2)) is axdr.Enum and str(diag.logical_name) == "0-0:32.3.0.255"
