"""Profile generic buffers against capture_objects, with null-clock compression."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from conftest import VECTORS, require
from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import axdr
from dlms14908.axdr import DateTime
from dlms14908.cosem import CaptureObjectDefinition, advance_clock, decode_buffer, is_clock_column
from dlms14908.errors import DecodeError
from dlms14908.obis import Obis

P = json.loads((VECTORS / "cosem" / "profile_null_clock.json").read_text())
COLS = [CaptureObjectDefinition(c, Obis.parse(o), a, d) for c, o, a, d in P["capture_objects"]]


def test_vector_null_clock_expansion() -> None:
    assert P["source"]
    buf = decode_buffer(bytes.fromhex(P["hex"]), COLS, capture_period=P["capture_period"])
    assert len(buf) == 7
    assert [str(r[0]) for r in buf] == P["expected_clock"]
    assert [r[0].to_datetime().astimezone(UTC).isoformat() for r in buf] == P[
        "expected_utc"
    ]
    assert [int(r[1]) for r in buf] == P["expected_energy"]
    assert all(
        type(r[1]) is axdr.DoubleLongUnsigned and type(r[2]) is axdr.LongUnsigned for r in buf
    )
    assert buf.column("1-0:1.8.0.255") == P["expected_energy"]
    assert buf.column_index(COLS[2]) == 2


def test_compressed_first_entry_needs_previous_clock() -> None:
    raw = axdr.decode_all(bytes.fromhex(P["hex"]))
    tail = axdr.Array(raw[1:])  # starts with a null clock
    with pytest.raises(DecodeError):
        decode_buffer(tail, COLS, capture_period=900)
    prev = DateTime(2024, 3, 31, None, 1, 30, 0, 0, -60, 0)
    buf = decode_buffer(tail, COLS, capture_period=900, previous_clock=prev)
    assert [str(r[0]) for r in buf] == P["expected_clock"][1:]
    with pytest.raises(DecodeError):  # no capture period: a null clock cannot be expanded
        decode_buffer(raw, COLS, capture_period=0)


def test_lifo_null_clock_goes_backwards() -> None:
    first = DateTime(2024, 1, 1, None, 12, 0, 0, None, 0, 0)
    rows = axdr.Array(
        [
            axdr.Structure(
                [
                    axdr.OctetString(first.to_bytes()),
                    axdr.DoubleLongUnsigned(3),
                    axdr.LongUnsigned(0),
                ]
            ),
            axdr.Structure([None, axdr.DoubleLongUnsigned(2), axdr.LongUnsigned(0)]),
        ]
    )
    buf = decode_buffer(rows, COLS, capture_period=3600, sort_method=2)
    assert (buf.rows[1][0].hour, buf.rows[1][0].hundredths) == (11, None)


def test_shape_errors() -> None:
    with pytest.raises(DecodeError) as ei:
        decode_buffer(
            axdr.Array([axdr.Structure([None, axdr.Unsigned(1)])]), COLS, capture_period=900
        )
    assert ei.value.field == "buffer[0]"
    with pytest.raises(DecodeError):
        decode_buffer(axdr.Structure([]), COLS)
    with pytest.raises(DecodeError):  # clock column with a non-clock value
        decode_buffer(
            axdr.Array([axdr.Structure([axdr.Unsigned(1), axdr.Unsigned(1), axdr.Unsigned(1)])]),
            COLS,
        )
    assert len(decode_buffer(axdr.Array(), COLS)) == 0


def test_compact_array_buffer() -> None:
    td = axdr.TypeDescription.structure(
        axdr.DataType.OCTET_STRING, axdr.DataType.DOUBLE_LONG_UNSIGNED, axdr.DataType.LONG_UNSIGNED
    )
    first = DateTime(2024, 1, 1, 1, 0, 0, 0, 0, -60, 0)
    ca = axdr.CompactArray(
        td,
        [
            axdr.Structure(
                [
                    axdr.OctetString(first.to_bytes()),
                    axdr.DoubleLongUnsigned(i),
                    axdr.LongUnsigned(0),
                ]
            )
            for i in range(3)
        ],
    )
    buf = decode_buffer(axdr.decode_all(axdr.encode(ca)), COLS)
    assert [int(r[1]) for r in buf] == [0, 1, 2] and buf.rows[0][0] == first


def test_is_clock_column() -> None:
    assert is_clock_column(COLS[0])
    assert not is_clock_column(COLS[1])
    assert is_clock_column(
        CaptureObjectDefinition(4, Obis.parse("1-0:1.6.0.255"), 5, 0)
    )  # capture_time
    assert not is_clock_column(CaptureObjectDefinition(999, Obis.parse("1-0:1.6.0.255"), 2, 0))


@given(
    st.integers(2000, 2100),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(-720, 720),
    st.integers(1, 86400 * 40),
    st.booleans(),
)
def test_advance_clock_matches_utc_arithmetic(
    y: int, mo: int, d: int, h: int, mi: int, dev: int, secs: int, weekday: bool
) -> None:
    from datetime import timedelta

    dt = DateTime(y, mo, d, 1 if weekday else None, h, mi, 0, None, dev, 0x80)
    nxt = advance_clock(dt, secs)
    assert nxt.to_datetime() == dt.to_datetime() + timedelta(seconds=secs)
    assert nxt.deviation == dev and nxt.status == 0x80 and nxt.hundredths is None
    assert (nxt.weekday is None) == (not weekday)
    if weekday:
        assert nxt.weekday == nxt.to_datetime().isoweekday()


def test_large_profile_typed() -> None:
    """10,000 entries {clock, dlu, lu} as in the benchmark (dlms-anchors.md §7 (ii-b))."""
    start = DateTime(2024, 1, 1, 1, 0, 0, 0, 0, -60, 0)
    rows = []
    clock = start
    for i in range(10_000):
        rows.append(
            axdr.Structure(
                [
                    axdr.OctetString(clock.to_bytes()) if i % 10 == 0 else None,
                    axdr.DoubleLongUnsigned(i),
                    axdr.LongUnsigned(i % 65536),
                ]
            )
        )
        clock = advance_clock(clock, 900)
    raw = axdr.encode(axdr.Array(rows))
    buf = decode_buffer(raw, COLS, capture_period=900)
    assert len(buf) == 10_000
    assert buf.rows[9999][0] == advance_clock(start, 900 * 9999)
    assert int(buf.rows[9999][1]) == 9999


# Runs inside the oracle venv (gurux-dlms, GPL-2) as a separate process;
# nothing of it is imported here.
_GURUX_PROFILE = r"""
import json, sys
from gurux_dlms import GXDLMSClient, GXByteBuffer
from gurux_dlms.objects import GXDLMSProfileGeneric, GXDLMSClock, GXDLMSRegister, GXDLMSData
P = json.loads(sys.stdin.read())
c = GXDLMSClient(True)
pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
pg.capturePeriod = P["capture_period"]
clk = GXDLMSClock("0.0.1.0.0.255")
reg = GXDLMSRegister("1.0.1.8.0.255")
dat = GXDLMSData("0.0.96.10.1.255")
for o in (clk, reg, dat):
    pg.addCaptureObject(o, 2, 0)
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.internal._GXDataInfo import _GXDataInfo
bb = GXByteBuffer(bytes.fromhex(P["hex"]))
info = _GXDataInfo()
value = _GXCommon.getData(c.settings, bb, info)
c.updateValue(pg, 2, value)
out = []
for row in pg.buffer:
    d = row[0].value
    out.append(d.isoformat())
print(json.dumps(out))
"""


@pytest.mark.oracle
def test_gurux_expands_null_clocks_the_same_way() -> None:
    """gurux-dlms GXDLMSProfileGeneric (updateValue of attribute 2) on the same vector
    yields the same instants as ours (and as the vector's expectation)."""
    import subprocess
    from datetime import datetime

    try:
        from tools.oracle import venv as oracle_venv
    except ImportError:  # pragma: no cover
        oracle_venv = None
    require(oracle_venv is not None and oracle_venv.is_ready(), "oracle venv")
    out = subprocess.run(
        [str(oracle_venv.venv_python()), "-c", _GURUX_PROFILE],
        input=json.dumps(P),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    theirs = [
        datetime.fromisoformat(t).astimezone(UTC).isoformat() for t in json.loads(out)
    ]
    ours = decode_buffer(bytes.fromhex(P["hex"]), COLS, capture_period=P["capture_period"])
    assert theirs == P["expected_utc"]
    assert [r[0].to_datetime().astimezone(UTC).isoformat() for r in ours] == theirs


def test_unknown_column_is_a_local_error_and_a_key_error() -> None:
    from dlms14908.cosem.profile import ColumnNotFound
    from dlms14908.errors import LocalProtocolError

    buf = decode_buffer(axdr.Array(), COLS)
    assert buf.column_index(-1) == len(COLS) - 1
    for key in (len(COLS), -len(COLS) - 1, "0-0:99.99.99.255",
                CaptureObjectDefinition(3, Obis.parse("1-0:2.8.0.255"), 2, 0)):
        with pytest.raises(ColumnNotFound) as ei:
            buf.column_index(key)
        assert isinstance(ei.value, LocalProtocolError) and isinstance(ei.value, KeyError)
