"""Hypothesis properties of dlms14908.axdr: round trips for every Data type, the
homogeneous-array fast path against the generic path, and hostile input."""

from __future__ import annotations

import struct
from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import axdr
from dlms14908.axdr import (
    DONT_CARE,
    Array,
    Bcd,
    BitString,
    ClockStatus,
    CompactArray,
    DataType,
    Date,
    DateTime,
    DoubleLong,
    DoubleLongUnsigned,
    Enum,
    Float32,
    Float64,
    Integer,
    Long,
    Long64,
    Long64Unsigned,
    LongUnsigned,
    OctetString,
    Structure,
    Time,
    TypeDescription,
    Unsigned,
    Utf8String,
    VisibleString,
    decode,
    decode_all,
    decode_length,
    encode,
    encode_length,
    strict_equal,
    to_jsonable,
)
from dlms14908.errors import DecodeError, EncodeError

INTS = [
    Integer,
    Long,
    Unsigned,
    LongUnsigned,
    DoubleLong,
    DoubleLongUnsigned,
    Long64,
    Long64Unsigned,
    Enum,
    Bcd,
]


def opt(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), s)


dates = st.builds(
    Date,
    opt(st.integers(0, 0xFFFE)),
    opt(st.one_of(st.integers(1, 12), st.sampled_from([0xFD, 0xFE]))),
    opt(st.one_of(st.integers(1, 31), st.sampled_from([0xFD, 0xFE]))),
    opt(st.integers(1, 7)),
)
times = st.builds(
    Time,
    opt(st.integers(0, 23)),
    opt(st.integers(0, 59)),
    opt(st.integers(0, 59)),
    opt(st.integers(0, 99)),
)
date_times = st.builds(
    DateTime,
    opt(st.integers(0, 0xFFFE)),
    opt(st.one_of(st.integers(1, 12), st.sampled_from([0xFD, 0xFE]))),
    opt(st.one_of(st.integers(1, 31), st.sampled_from([0xFD, 0xFE]))),
    opt(st.integers(1, 7)),
    opt(st.integers(0, 23)),
    opt(st.integers(0, 59)),
    opt(st.integers(0, 59)),
    opt(st.integers(0, 99)),
    opt(st.integers(-720, 720)),
    opt(st.integers(0, 0xFE).map(ClockStatus)),
)


def int_values(cls: type) -> st.SearchStrategy:
    return st.integers(cls.MIN, cls.MAX).map(cls)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.just(DONT_CARE),
    *[int_values(c) for c in INTS],
    st.floats(width=32, allow_nan=False).map(Float32),
    st.floats(allow_nan=False).map(Float64),
    st.binary(max_size=300).map(OctetString),
    st.text(st.characters(max_codepoint=0xFF), max_size=40).map(VisibleString),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).map(Utf8String),
    st.text("01", max_size=70).map(BitString),
    dates,
    times,
    date_times,
)

data_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6).map(Array),
        st.lists(children, max_size=6).map(Structure),
    ),
    max_leaves=40,
)

# -- compact arrays: a type description, then values of that type -------------------

_TD_SIMPLE = [
    DataType.BOOLEAN,
    DataType.INTEGER,
    DataType.LONG,
    DataType.UNSIGNED,
    DataType.LONG_UNSIGNED,
    DataType.DOUBLE_LONG,
    DataType.DOUBLE_LONG_UNSIGNED,
    DataType.LONG64,
    DataType.LONG64_UNSIGNED,
    DataType.ENUM,
    DataType.BCD,
    DataType.FLOAT32,
    DataType.FLOAT64,
    DataType.OCTET_STRING,
    DataType.VISIBLE_STRING,
    DataType.UTF8_STRING,
    DataType.BIT_STRING,
    DataType.DATE_TIME,
    DataType.DATE,
    DataType.TIME,
]
type_descs = st.recursive(
    st.sampled_from(_TD_SIMPLE).map(TypeDescription),
    lambda ch: st.one_of(
        st.builds(TypeDescription.array, st.integers(1, 3), ch),
        st.lists(ch, min_size=1, max_size=4).map(lambda es: TypeDescription.structure(*es)),
    ),
    max_leaves=8,
)

_BY_TAG = {c.TAG: int_values(c) for c in INTS}
_BY_TAG.update(
    {
        DataType.BOOLEAN: st.booleans(),
        DataType.FLOAT32: st.floats(width=32, allow_nan=False).map(Float32),
        DataType.FLOAT64: st.floats(allow_nan=False).map(Float64),
        DataType.OCTET_STRING: st.binary(max_size=20).map(OctetString),
        DataType.VISIBLE_STRING: st.text(st.characters(max_codepoint=0xFF), max_size=10).map(
            VisibleString
        ),
        DataType.UTF8_STRING: st.text(st.characters(blacklist_categories=("Cs",)), max_size=10).map(
            Utf8String
        ),
        DataType.BIT_STRING: st.text("01", max_size=20).map(BitString),
        DataType.DATE_TIME: date_times,
        DataType.DATE: dates,
        DataType.TIME: times,
    }
)


def value_of(td: TypeDescription) -> st.SearchStrategy:
    if td.type is DataType.ARRAY:
        return st.tuples(*[value_of(td.element)] * td.count).map(Array)
    if td.type is DataType.STRUCTURE:
        return st.tuples(*[value_of(e) for e in td.elements]).map(Structure)
    return _BY_TAG[td.type]


compact_arrays = type_descs.flatmap(
    lambda td: st.lists(value_of(td), max_size=5).map(lambda vs: CompactArray(td, vs))
)


@given(data_values)
def test_round_trip_every_type(value: object) -> None:
    raw = encode(value)
    back, end = decode(raw)
    assert end == len(raw)
    assert strict_equal(back, value), (value, back)
    assert encode(back) == raw
    to_jsonable(back)  # never raises for a decoded value


@given(compact_arrays)
def test_round_trip_compact_array(value: CompactArray) -> None:
    raw = encode(value)
    assert raw[0] == DataType.COMPACT_ARRAY
    back = decode_all(raw)
    assert strict_equal(back, value)
    # also nested inside a structure
    assert strict_equal(
        decode_all(encode(Structure([value, Unsigned(1)]))), Structure([value, Unsigned(1)])
    )


@given(date_times)
def test_date_time_bytes_and_fields(dt: DateTime) -> None:
    raw = dt.to_bytes()
    assert len(raw) == 12
    assert DateTime.from_bytes(raw) == dt
    assert (raw[0:2] == b"\xff\xff") == (dt.year is None)
    assert (raw[9:11] == b"\x80\x00") == (dt.deviation is None)
    assert (raw[11] == 0xFF) == (dt.status is None)
    assert raw[4] == (0xFF if dt.weekday is None else dt.weekday)


@given(date_times)
def test_to_datetime_is_aware_or_raises(dt: DateTime) -> None:
    try:
        aware = dt.to_datetime()
    except DecodeError:
        if None in (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.deviation):
            return
        assert dt.month is not None and dt.day is not None and dt.year is not None
        if dt.month > 12 or dt.day > 31:  # special values (DST begin/end, last days)
            return
        import datetime as _d

        with pytest.raises((ValueError, OverflowError)):  # a date Python cannot represent
            _d.datetime(
                dt.year, dt.month, dt.day, tzinfo=_d.timezone(_d.timedelta(minutes=-dt.deviation))
            )
        return
    assert aware.tzinfo is not None
    assert aware.utcoffset().total_seconds() == -60 * dt.deviation
    assert DateTime.from_datetime(aware, status=dt.status or 0).to_datetime() == aware


@given(st.integers(0, 2**32 - 1))
def test_length_round_trip(n: int) -> None:
    raw = encode_length(n)
    assert decode_length(raw + b"\x00", 0) == (n, len(raw))
    assert len(raw) == (
        1 if n < 0x80 else 2 if n < 0x100 else 3 if n < 0x10000 else 4 if n < 0x1000000 else 5
    )


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_decode_error(raw: bytes) -> None:
    try:
        decode(raw)
    except DecodeError as e:
        assert e.field
    try:
        decode_all(raw)
    except DecodeError:
        pass


@given(
    st.sampled_from([b"\x01", b"\x02", b"\x13", b"\x13\x02", b"\x13\x01", b"\x04", b"\x19"]),
    st.binary(max_size=48),
)
def test_random_bodies_after_container_tags_raise_only_decode_error(
    tag: bytes, body: bytes
) -> None:
    try:
        decode_all(tag + body)
    except DecodeError as e:
        assert e.field


@given(data_values, st.binary(min_size=1, max_size=8), st.integers(0, 10_000))
def test_mutated_encodings_raise_only_decode_error(value: object, junk: bytes, where: int) -> None:
    raw = bytearray(encode(value))
    i = where % len(raw)
    raw[i : i + len(junk)] = junk
    try:
        decode_all(bytes(raw))
    except DecodeError:
        pass


# -- the fixed-row fast path ----------------------------------------------------------

row_kinds = st.lists(
    st.sampled_from(
        [(int_values(c), c) for c in INTS]
        + [
            (st.booleans(), bool),
            (st.floats(width=32, allow_nan=False).map(Float32), Float32),
            (st.binary(min_size=12, max_size=12).map(OctetString), OctetString),
            (date_times, DateTime),
            (st.text("abc", min_size=3, max_size=3).map(VisibleString), VisibleString),
        ]
    ),
    min_size=1,
    max_size=5,
)


@given(
    row_kinds.flatmap(
        lambda kinds: st.tuples(
            st.lists(st.tuples(*[k[0] for k in kinds]).map(Structure), min_size=0, max_size=40),
            st.booleans(),
        )
    )
)
def test_homogeneous_arrays_match_generic_path(args: tuple) -> None:
    rows, wrap = args
    value = Array(rows)
    raw = encode(value)
    fast = decode_all(raw)
    slow = _generic(raw)
    assert strict_equal(fast, value) and strict_equal(slow, value)
    if wrap:  # the same rows as an array of leaves (first column)
        leaves = Array([r[0] for r in rows])
        assert strict_equal(decode_all(encode(leaves)), leaves)


def _generic(raw: bytes) -> object:
    saved = axdr._FAST_MIN_ROWS
    axdr._FAST_MIN_ROWS = 1 << 40
    try:
        return decode_all(raw)
    finally:
        axdr._FAST_MIN_ROWS = saved


def _profile(n: int) -> Array:
    return Array(
        Structure(
            [
                OctetString(
                    struct.pack(">HBBBBBBBhB", 2024, 1, 1, 1, i // 60 % 24, i % 60, 0, 0, -60, 0)
                ),
                DoubleLongUnsigned(i * 7),
                LongUnsigned(i % 65536),
            ]
        )
        for i in range(n)
    )


def test_profile_buffer_shape() -> None:
    value = _profile(10_000)
    raw = encode(value)
    assert len(raw) == 240_004  # dlms-anchors.md §7 (ii-a): 10,000 entries, 240,004 bytes
    back = decode_all(raw)
    assert type(back) is Array and len(back) == 10_000
    assert type(back[9999]) is Structure and type(back[9999][1]) is DoubleLongUnsigned
    assert back == value and strict_equal(back[1234], value[1234])


@pytest.mark.parametrize("row", [0, 1, 5, 99])
def test_fast_path_falls_back_when_one_row_differs(row: int) -> None:
    value = _profile(100)
    value[row] = Structure(
        [OctetString(b"x" * 12), DoubleLongUnsigned(1), Long(-5)]
    )  # different tag
    assert strict_equal(decode_all(encode(value)), value)
    value[row] = Structure(
        [OctetString(b"short"), DoubleLongUnsigned(1), LongUnsigned(5)]
    )  # other length
    assert strict_equal(decode_all(encode(value)), value)
    value[row] = Structure([OctetString(b"x" * 12), DoubleLongUnsigned(1)])  # fewer members
    assert strict_equal(decode_all(encode(value)), value)


def test_fast_path_bad_row_raises_decode_error() -> None:
    raw = bytearray(encode(_profile(50)))
    raw[2 + 24 * 30 + 16] = 0x07  # row 30: the double-long-unsigned tag becomes an unknown tag
    with pytest.raises(DecodeError) as ei:
        decode_all(bytes(raw))
    assert ei.value.offset == 2 + 24 * 30 + 16


def test_utf8_invalid_in_fast_path_is_decode_error() -> None:
    value = Array([Structure([Utf8String("ab"), Unsigned(i)]) for i in range(10)])
    raw = bytearray(encode(value))
    raw[2 + 6 * 5 + 2] = 0xFF  # invalid UTF-8 in row 5
    with pytest.raises(DecodeError):
        decode_all(bytes(raw))


# -- local misuse ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [5, 1.5, [1], (1,), object()])
def test_ambiguous_plain_values_are_encode_errors(bad: object) -> None:
    with pytest.raises(EncodeError):
        encode(bad)


@pytest.mark.parametrize("cls", INTS)
def test_int_ranges(cls: type) -> None:
    assert cls(cls.MIN) == cls.MIN and cls(cls.MAX) == cls.MAX
    for bad in (cls.MIN - 1, cls.MAX + 1):
        with pytest.raises(EncodeError):
            cls(bad)
    with pytest.raises(EncodeError):
        cls(True)
    with pytest.raises(EncodeError):
        cls("1")


def test_plain_python_values_accepted() -> None:
    assert encode(None) == b"\x00"
    assert encode(True) == b"\x03\x01"
    assert encode(b"ab") == b"\x09\x02ab"
    assert encode("ab") == b"\x0a\x02ab"
    assert encode("\u20ac") == b"\x0c\x03\xe2\x82\xac"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(month=13),
        dict(day=0),
        dict(weekday=8),
        dict(hour=24),
        dict(minute=60),
        dict(second=60),
        dict(hundredths=100),
        dict(deviation=721),
        dict(status=0xFF),
        dict(year=0xFFFF),
    ],
)
def test_date_time_field_ranges(kwargs: dict) -> None:
    with pytest.raises(EncodeError):
        DateTime(**kwargs)


@pytest.mark.parametrize(
    "raw,field",
    [
        ("07E50D01FF0E303950FFC400", "date-time.month"),
        ("07E50100FF0E303950FFC400", "date-time.day"),
        ("07E50101FF18303950FFC400", "date-time.hour"),
        ("07E50101FF0E303950030000", "date-time.deviation"),
    ],
)
def test_date_time_bad_fields_name_the_field(raw: str, field: str) -> None:
    with pytest.raises(DecodeError) as ei:
        decode_all(bytes.fromhex("19" + raw))
    assert ei.value.field == field


def test_datetime_needs_deviation_or_tz() -> None:
    dt = DateTime(2024, 3, 31, None, 2, 30, 0, None, None, ClockStatus(0))
    with pytest.raises(DecodeError):
        dt.to_datetime()

    assert dt.to_datetime(tz=UTC).isoformat() == "2024-03-31T02:30:00+00:00"
    with pytest.raises(EncodeError):
        from datetime import datetime as _dt

        DateTime.from_datetime(_dt(2024, 1, 1))  # noqa: DTZ001 - the naive input is what is tested


def test_depth_limit_both_ways() -> None:
    v: object = None
    for _ in range(axdr.MAX_DEPTH + 1):
        v = Structure([v])
    with pytest.raises(EncodeError):
        encode(v)
    with pytest.raises(DecodeError):
        decode(b"\x02\x01" * 5000 + b"\x00")


def test_compact_array_zero_size_guard() -> None:
    # array[65535] of null-data as element type: would loop forever without the guard
    with pytest.raises(DecodeError):
        decode_all(bytes.fromhex("1301FFFF00" + "01" + "00"))
    with pytest.raises(DecodeError):
        decode_all(bytes.fromhex("1300" + "02" + "0000"))
    assert decode_all(bytes.fromhex("130000")) == CompactArray(
        TypeDescription(DataType.NULL_DATA), []
    )


def test_compact_array_type_mismatch_is_encode_error() -> None:
    td = TypeDescription.structure(DataType.LONG_UNSIGNED, DataType.OCTET_STRING)
    with pytest.raises(EncodeError):
        encode(CompactArray(td, [Structure([Unsigned(1), OctetString(b"")])]))
    with pytest.raises(EncodeError):
        encode(CompactArray(td, [Structure([LongUnsigned(1)])]))
    assert (
        CompactArray.from_values([Structure([LongUnsigned(1), OctetString(b"")])]).type_description
        == td
    )


def test_bit_string_api() -> None:
    b = BitString.from_bytes(b"\xa5\xf0", 12)
    assert b.bits == "101001011111" and len(b) == 12 and b.to_bytes() == b"\xa5\xf0"
    assert list(BitString("10")) == [True, False]
    with pytest.raises(EncodeError):
        BitString("102")
    with pytest.raises(AttributeError):
        b._bits = "1"  # type: ignore[misc]


def test_float32_is_rounded_at_construction() -> None:
    assert Float32(0.1) == struct.unpack(">f", struct.pack(">f", 0.1))[0]
    with pytest.raises(EncodeError):
        Float32(1e40)


def test_nan_round_trips_by_bytes() -> None:
    raw = encode(Float64(float("nan")))
    assert encode(decode_all(raw)) == raw


@pytest.mark.parametrize("cls", [Long, LongUnsigned, Integer, Unsigned, Enum, Bcd])
def test_large_arrays_use_prebuilt_small_ints(cls: type) -> None:
    values = Array(cls(cls.MIN + (i * 7919) % (cls.MAX - cls.MIN + 1)) for i in range(3000))
    rows = Array(Structure([v, Long(-1)]) for v in values)
    for value in (values, rows):
        back = decode_all(encode(value))
        assert strict_equal(back, value)
    assert back[1][0] == values[1] and type(back[2999][1]) is Long
