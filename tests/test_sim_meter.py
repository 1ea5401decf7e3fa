"""The meter simulator: model consistency, determinism, objects with behaviour."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import pytest

from dlms14908 import axdr
from dlms14908.cosem import CosemAccessError
from dlms14908.obis import Obis
from dlms14908.sim import INTERVAL, EnergyModel, MeterSimulator, SimClock
from dlms14908.sim.model import tariff_of
from dlms14908.xdlms import ActionResult, CaptureObjectDefinition, EntryDescriptor, RangeDescriptor

T0 = 1_750_000_000.0


def test_energy_is_the_exact_integral_of_power():
    m = EnergyModel(seed=3, start=T0)
    t, imp, exp, t1, t2 = m.start, 0, 0, 0, 0
    for k in range(200):
        p_imp, p_exp = m.interval_power(k)
        assert p_imp >= 0 and p_exp >= 0 and not (p_imp and p_exp)
        imp += p_imp * INTERVAL
        exp += p_exp * INTERVAL
        if tariff_of(t) == 1:
            t1 += p_imp * INTERVAL
        else:
            t2 += p_imp * INTERVAL
        t += INTERVAL
        assert m.energies(t) == (imp, exp, t1, t2)
    # inside an interval energy grows linearly with the interval's power
    mid = t + 123
    assert m.energies(mid)[0] - imp == m.interval_power(200)[0] * 123


def test_model_is_deterministic_per_seed():
    a, b, c = EnergyModel(1, T0), EnergyModel(1, T0), EnergyModel(2, T0)
    assert [a.interval_power(k) for k in range(96)] == [b.interval_power(k) for k in range(96)]
    assert [a.interval_power(k) for k in range(96)] != [c.interval_power(k) for k in range(96)]
    assert all(2231 <= a.voltage_dv(T0 + 60 * i) <= 2369 for i in range(500))


def test_daily_shape_has_evening_peak_and_pv_export():
    m = EnergyModel(5, 1_749_945_600)  # 2025-06-15 00:00 UTC
    by_hour = [sum(m.interval_power(h * 4 + q)[0] for q in range(4)) / 4 for h in range(24)]
    export = sum(m.interval_power(k)[1] for k in range(96))
    assert max(by_hour[17:22]) > 2 * min(by_hour[0:5])
    assert export > 0 and all(m.interval_power(k)[1] == 0 for k in range(20))  # no sun at night


def test_registers_profile_and_tariffs_agree():
    clock = SimClock(T0)
    sim = MeterSimulator(seed=11, clock=clock)
    rows = sim.profile_rows()
    assert len(rows) == 960  # 10 days of history, profile_entries = 960
    for r in rows[-200:]:
        t = axdr.DateTime.from_bytes(bytes(r[0])).to_datetime().timestamp()
        imp, exp = sim.import_export_wh(t)
        assert (int(r[1]), int(r[2])) == (imp, exp)
        t1, t2 = sim.tariff_wh(t)
        assert t1 + t2 == imp
    stamps = [axdr.DateTime.from_bytes(bytes(r[0])).to_datetime().timestamp() for r in rows]
    assert all(b - a == INTERVAL for a, b in itertools.pairwise(stamps))
    assert stamps[-1] <= T0 < stamps[-1] + INTERVAL
    # time moves on: one new entry per 15 minutes, the oldest drops out (FIFO)
    clock.advance(3 * INTERVAL)
    rows2 = sim.profile_rows()
    assert len(rows2) == 960 and rows2[-4] == rows[-1] and rows2[0] == rows[3]


def test_selective_access_on_the_profile_object():
    clock = SimClock(T0)
    sim = MeterSimulator(seed=12, clock=clock)
    lp = sim.load_profile
    rows = sim.profile_rows()
    sel = lp.get(2, selection=EntryDescriptor(10, 12, 2, 2), now=T0)
    assert [list(r) for r in sel] == [[rows[i][1]] for i in range(9, 12)]
    start = axdr.DateTime.from_bytes(bytes(rows[100][0]))
    end = axdr.DateTime.from_bytes(bytes(rows[103][0]))
    clock_col = CaptureObjectDefinition(8, Obis.parse("0-0:1.0.0.255"), 2, 0)
    got = lp.get(2, selection=RangeDescriptor(clock_col, axdr.OctetString(start.to_bytes()),
                                              axdr.OctetString(end.to_bytes())), now=T0)
    assert list(got) == rows[100:104]


def test_clock_is_the_injected_clock():
    clock = SimClock(T0)
    sim = MeterSimulator(seed=1, clock=clock)
    c = sim.objects[Obis.parse("0-0:1.0.0.255")]
    read = axdr.DateTime.from_bytes(bytes(c.get(2, now=clock())))
    assert read.to_datetime() == datetime.fromtimestamp(T0, UTC)
    c.action(6, axdr.Long(30), now=clock())  # shift_time
    assert axdr.DateTime.from_bytes(bytes(c.get(2, now=clock()))).to_datetime().timestamp() == T0 + 30


def test_same_seed_same_meter_different_seed_different_meter():
    a = MeterSimulator(seed=1, clock=SimClock(T0))
    b = MeterSimulator(seed=1, clock=SimClock(T0))
    c = MeterSimulator(seed=2, clock=SimClock(T0))
    assert a.system_title == b.system_title != c.system_title
    assert a.import_export_wh(T0) == b.import_export_wh(T0) != c.import_export_wh(T0)
    assert a.profile_rows() == b.profile_rows()


def test_utility_table_bt01():
    sim = MeterSimulator(seed=77, clock=SimClock(T0))
    ut = sim.objects[Obis.parse("0-0:65.0.1.255")]
    assert ut.interface.class_id == 26 and ut.get(2) == 1
    buf = bytes(ut.get(4))
    assert len(buf) == int(ut.get(3)) == 32
    assert buf[:4] == b"SIM " and buf[16:] == b"%016d" % 77


def test_image_transfer_verify_requires_all_blocks():
    sim = MeterSimulator(seed=1, clock=SimClock(T0))
    it = sim.objects[Obis.parse("0-0:44.0.0.255")]
    it.action(1, axdr.Structure([axdr.OctetString(b"img"), axdr.DoubleLongUnsigned(400)]))
    it.action(2, axdr.Structure([axdr.DoubleLongUnsigned(0), axdr.OctetString(bytes(192))]))
    assert it.get(3).bits == "100" and int(it.get(4)) == 1
    with pytest.raises(CosemAccessError) as e:
        it.action(3, axdr.Integer(0))
    assert e.value.result == ActionResult.OTHER_REASON and int(it.get(6)) == 4
    with pytest.raises(CosemAccessError):
        it.action(4, axdr.Integer(0))


def test_security_policy_only_rises():
    sim = MeterSimulator(seed=1, clock=SimClock(T0))
    ss = sim.objects[Obis.parse("0-0:43.0.0.255")]
    ss.action(1, axdr.Enum(1))
    assert int(ss.get(2)) == 1
    with pytest.raises(CosemAccessError):
        ss.action(1, axdr.Enum(0))


def test_building_a_meter_is_cheap():
    t = time.perf_counter()
    for i in range(20):
        MeterSimulator(seed=i, clock=SimClock(T0)).profile_rows()
    assert (time.perf_counter() - t) / 20 < 0.25


def test_loopback_network_meters_by_address():
    import asyncio

    from dlms14908.aio_client import Client
    from dlms14908.sim import LoopbackNetwork

    net = LoopbackNetwork(clock=SimClock(T0), seed=1)
    assert net.meter("1/7") is net.meter("1/7") and net.meter("1/7") is not net.meter("1/8")
    assert net.meter("3/9").objects[Obis.parse("0-0:32.0.0.255")].value("subnet_id") == 3

    async def go():
        async with Client(net.link("1/8", 0x10)) as c:
            return await c.get("1-0:1.8.0.255")
    assert asyncio.run(go()) == net.meter("1/8").import_export_wh(T0)[0]


@pytest.mark.parametrize("path", ["dlms14908/client.py", "dlms14908/server.py", "dlms14908/sim/model.py",
                                  "dlms14908/sim/meter.py"])
def test_cores_do_no_io(path):
    """Sans-I/O (style.md §b1): the client/server cores and the simulator import no I/O module."""
    import ast
    from pathlib import Path
    tree = ast.parse((Path(__file__).resolve().parents[1] / path).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "serial", "socket", "select", "threading", "time", "tty", "pty"}


def test_profile_timestamps_match_the_calendar():
    """The simulator's fast date-time encoder agrees with datetime for many instants."""
    import random as _random

    from dlms14908.sim.meter import _dt
    rnd = _random.Random(5)
    for t in [0, 951_782_400, 1_709_164_800, 4_102_444_799] + [rnd.randrange(0, 4_000_000_000) for _ in range(2000)]:
        want = axdr.DateTime.from_datetime(datetime.fromtimestamp(t, UTC), status=0, hundredths=False)
        assert bytes(_dt(t)) == want.to_bytes()
