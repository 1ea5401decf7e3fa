"""A-XDR encoding of COSEM ``Data`` (IEC 62056-6-2 §4.1.5/§4.1.6, IEC 62056-5-3 §8 "Data").

Every ``Data`` CHOICE alternative is encoded as a one-byte tag followed by the
A-XDR content (IEC 61334-6): fixed-size integers big-endian, strings with an
A-XDR length, arrays/structures with an element count, ``compact-array`` with a
type description followed by the untagged contents in an octet string.

Decoded values are typed: each ``Data`` type has its own Python class (int,
float, bytes, str and list subclasses), so the type survives a round trip.  The
COSEM date/time types keep deviation, clock status and every "not specified"
field; they never turn into a naive :class:`datetime.datetime` silently.

Hot path: the decoder works on ``bytes``/``bytearray``/``memoryview`` with
``struct.unpack_from`` and a 256-entry dispatch table.  An ``array`` whose
elements all share one fixed-size shape (typically the rows of a profile
buffer) is decoded with one compiled :class:`struct.Struct` for all rows after
the tag and length bytes of every row have been verified in bulk.
"""

from __future__ import annotations

import enum as _enum
import math
import operator
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date as _date
from datetime import datetime as _datetime
from datetime import time as _time
from datetime import timedelta, timezone, tzinfo
from typing import Any, ClassVar, final

from dlms14908.errors import DecodeError, EncodeError

__all__ = [
    "DAYLIGHT_SAVINGS_BEGIN",
    "DAYLIGHT_SAVINGS_END",
    "DONT_CARE",
    "LAST_DAY",
    "MAX_DEPTH",
    "NOT_SPECIFIED",
    "SECOND_LAST_DAY",
    "TYPE_NAMES",
    "Array",
    "Bcd",
    "BitString",
    "ClockStatus",
    "CompactArray",
    "DataType",
    "Date",
    "DateTime",
    "DontCare",
    "DoubleLong",
    "DoubleLongUnsigned",
    "Enum",
    "Float32",
    "Float64",
    "Integer",
    "Long",
    "Long64",
    "Long64Unsigned",
    "LongUnsigned",
    "OctetString",
    "Structure",
    "Time",
    "TypeDescription",
    "Unsigned",
    "Utf8String",
    "VisibleString",
    "data_type_of",
    "decode",
    "decode_all",
    "decode_length",
    "encode",
    "encode_length",
    "strict_equal",
    "to_jsonable",
]

#: Deepest nesting of arrays/structures accepted (guards the recursion on hostile input).
MAX_DEPTH = 64


class DataType(_enum.IntEnum):
    """The ``Data`` CHOICE tags (IEC 62056-6-2 §4.1.5)."""

    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27
    DONT_CARE = 255


#: The ASN.1 names of the types, as used in the Blue Book and in JSON output.
TYPE_NAMES: dict[DataType, str] = {
    DataType.NULL_DATA: "null-data",
    DataType.ARRAY: "array",
    DataType.STRUCTURE: "structure",
    DataType.BOOLEAN: "boolean",
    DataType.BIT_STRING: "bit-string",
    DataType.DOUBLE_LONG: "double-long",
    DataType.DOUBLE_LONG_UNSIGNED: "double-long-unsigned",
    DataType.OCTET_STRING: "octet-string",
    DataType.VISIBLE_STRING: "visible-string",
    DataType.UTF8_STRING: "utf8-string",
    DataType.BCD: "bcd",
    DataType.INTEGER: "integer",
    DataType.LONG: "long",
    DataType.UNSIGNED: "unsigned",
    DataType.LONG_UNSIGNED: "long-unsigned",
    DataType.COMPACT_ARRAY: "compact-array",
    DataType.LONG64: "long64",
    DataType.LONG64_UNSIGNED: "long64-unsigned",
    DataType.ENUM: "enum",
    DataType.FLOAT32: "float32",
    DataType.FLOAT64: "float64",
    DataType.DATE_TIME: "date-time",
    DataType.DATE: "date",
    DataType.TIME: "time",
    DataType.DONT_CARE: "dont-care",
}

_N = TYPE_NAMES  # short alias for error fields

# ---------------------------------------------------------------------------
# Typed scalar values
# ---------------------------------------------------------------------------


class _TypedInt(int):
    """Base of the fixed-width integer types; range-checked at construction."""

    __slots__ = ()
    TAG: ClassVar[DataType]
    MIN: ClassVar[int]
    MAX: ClassVar[int]
    FORMAT: ClassVar[str]

    def __new__(cls, value: Any = 0) -> Any:
        if isinstance(value, bool):
            raise EncodeError("a bool is not an integer value", field=_N[cls.TAG])
        try:
            v = operator.index(value)
        except TypeError:
            raise EncodeError(
                f"not an integer: {type(value).__name__}", field=_N[cls.TAG]
            ) from None
        if not cls.MIN <= v <= cls.MAX:
            raise EncodeError(f"{v} outside {cls.MIN}..{cls.MAX}", field=_N[cls.TAG])
        return int.__new__(cls, v)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"

    __str__ = int.__repr__

    def __reduce__(self) -> Any:
        return (type(self), (int(self),))


class Integer(_TypedInt):
    """integer [15]: signed 8 bit."""

    __slots__ = ()
    TAG = DataType.INTEGER
    MIN, MAX, FORMAT = -0x80, 0x7F, "b"


class Long(_TypedInt):
    """long [16]: signed 16 bit."""

    __slots__ = ()
    TAG = DataType.LONG
    MIN, MAX, FORMAT = -0x8000, 0x7FFF, "h"


class Unsigned(_TypedInt):
    """unsigned [17]: unsigned 8 bit."""

    __slots__ = ()
    TAG = DataType.UNSIGNED
    MIN, MAX, FORMAT = 0, 0xFF, "B"


class LongUnsigned(_TypedInt):
    """long-unsigned [18]: unsigned 16 bit."""

    __slots__ = ()
    TAG = DataType.LONG_UNSIGNED
    MIN, MAX, FORMAT = 0, 0xFFFF, "H"


class DoubleLong(_TypedInt):
    """double-long [5]: signed 32 bit."""

    __slots__ = ()
    TAG = DataType.DOUBLE_LONG
    MIN, MAX, FORMAT = -0x80000000, 0x7FFFFFFF, "i"


class DoubleLongUnsigned(_TypedInt):
    """double-long-unsigned [6]: unsigned 32 bit."""

    __slots__ = ()
    TAG = DataType.DOUBLE_LONG_UNSIGNED
    MIN, MAX, FORMAT = 0, 0xFFFFFFFF, "I"


class Long64(_TypedInt):
    """long64 [20]: signed 64 bit."""

    __slots__ = ()
    TAG = DataType.LONG64
    MIN, MAX, FORMAT = -0x8000000000000000, 0x7FFFFFFFFFFFFFFF, "q"


class Long64Unsigned(_TypedInt):
    """long64-unsigned [21]: unsigned 64 bit."""

    __slots__ = ()
    TAG = DataType.LONG64_UNSIGNED
    MIN, MAX, FORMAT = 0, 0xFFFFFFFFFFFFFFFF, "Q"


class Enum(_TypedInt):
    """enum [22]: one unsigned octet."""

    __slots__ = ()
    TAG = DataType.ENUM
    MIN, MAX, FORMAT = 0, 0xFF, "B"


class Bcd(_TypedInt):
    """bcd [13]: one octet, kept as its raw value 0..255 (two BCD digits, high nibble first)."""

    __slots__ = ()
    TAG = DataType.BCD
    MIN, MAX, FORMAT = 0, 0xFF, "B"

    @property
    def digits(self) -> str:
        """The two nibbles as hex digits (``"42"`` for 0x42)."""
        return f"{int(self):02X}"


_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


class Float32(float):
    """float32 [23]: IEEE 754 single; the value is rounded to single precision at construction."""

    __slots__ = ()
    TAG: ClassVar[DataType] = DataType.FLOAT32

    def __new__(cls, value: Any = 0.0) -> Any:
        if isinstance(value, (str, bytes, bool)) or not isinstance(value, (int, float)):
            raise EncodeError(f"not a number: {type(value).__name__}", field="float32")
        try:
            v = _F32.unpack(_F32.pack(value))[0]
        except (OverflowError, struct.error):
            raise EncodeError(f"{value!r} does not fit a float32", field="float32") from None
        return float.__new__(cls, v)

    def __repr__(self) -> str:
        return f"Float32({float(self)!r})"

    def __reduce__(self) -> Any:
        return (type(self), (float(self),))


class Float64(float):
    """float64 [24]: IEEE 754 double."""

    __slots__ = ()
    TAG: ClassVar[DataType] = DataType.FLOAT64

    def __new__(cls, value: Any = 0.0) -> Any:
        if isinstance(value, (str, bytes, bool)) or not isinstance(value, (int, float)):
            raise EncodeError(f"not a number: {type(value).__name__}", field="float64")
        try:
            return float.__new__(cls, value)
        except OverflowError:
            raise EncodeError(f"{value!r} does not fit a float64", field="float64") from None

    def __repr__(self) -> str:
        return f"Float64({float(self)!r})"

    def __reduce__(self) -> Any:
        return (type(self), (float(self),))


class OctetString(bytes):
    """octet-string [9]."""

    __slots__ = ()
    TAG: ClassVar[DataType] = DataType.OCTET_STRING

    def __new__(cls, value: Any = b"") -> Any:
        if isinstance(value, (int, str)):
            raise EncodeError(
                f"octet-string from {type(value).__name__}; give bytes", field="octet-string"
            )
        return bytes.__new__(cls, value)

    @classmethod
    def fromhex(cls, string: str) -> OctetString:
        return bytes.__new__(cls, bytes.fromhex(string))

    def __repr__(self) -> str:
        return f"OctetString({bytes(self)!r})"

    def __reduce__(self) -> Any:
        return (type(self), (bytes(self),))


class VisibleString(str):
    """visible-string [10]: one byte per character (decoded as Latin-1 so any byte survives)."""

    __slots__ = ()
    TAG: ClassVar[DataType] = DataType.VISIBLE_STRING

    def __repr__(self) -> str:
        return f"VisibleString({str(self)!r})"

    def __reduce__(self) -> Any:
        return (type(self), (str(self),))


class Utf8String(str):
    """utf8-string [12]."""

    __slots__ = ()
    TAG: ClassVar[DataType] = DataType.UTF8_STRING

    def __repr__(self) -> str:
        return f"Utf8String({str(self)!r})"

    def __reduce__(self) -> Any:
        return (type(self), (str(self),))


class BitString:
    """bit-string [4]: immutable sequence of bits, first bit = MSB of the first octet."""

    __slots__ = ("_bits",)
    TAG: ClassVar[DataType] = DataType.BIT_STRING
    _bits: str

    def __init__(self, bits: str = "") -> None:
        if not isinstance(bits, str) or bits.strip("01"):
            raise EncodeError("a bit-string is a str of '0'/'1'", field="bit-string")
        object.__setattr__(self, "_bits", bits)

    @classmethod
    def from_bytes(cls, data: bytes, nbits: int | None = None) -> BitString:
        """The first ``nbits`` bits of ``data`` (all of them when omitted)."""
        data = bytes(data)
        if nbits is None:
            nbits = 8 * len(data)
        if nbits < 0 or nbits > 8 * len(data):
            raise EncodeError(f"{nbits} bits from {len(data)} bytes", field="bit-string")
        if not data:
            return cls("")
        s = format(int.from_bytes(data, "big"), f"0{8 * len(data)}b")[:nbits]
        new = object.__new__(cls)
        object.__setattr__(new, "_bits", s)
        return new

    @property
    def bits(self) -> str:
        return self._bits

    def to_bytes(self) -> bytes:
        """The bits packed MSB first, padded with zero bits to whole octets."""
        n = len(self._bits)
        if n == 0:
            return b""
        nbytes = (n + 7) // 8
        return int(self._bits.ljust(8 * nbytes, "0"), 2).to_bytes(nbytes, "big")

    def __len__(self) -> int:
        return len(self._bits)

    def __getitem__(self, i: int) -> bool:
        return self._bits[i] == "1"

    def __iter__(self) -> Any:
        return (c == "1" for c in self._bits)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BitString):
            return self._bits == other._bits
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("bit-string", self._bits))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("BitString is immutable")

    def __repr__(self) -> str:
        return f"BitString({self._bits!r})"

    def __reduce__(self) -> Any:
        return (type(self), (self._bits,))


class Array(list):  # type: ignore[type-arg]
    """array [1]: elements of one type (not enforced; the encoder writes what it is given)."""

    __slots__ = ()
    TAG: ClassVar[DataType] = DataType.ARRAY

    def __repr__(self) -> str:
        return f"Array({list.__repr__(self)})"


class Structure(list):  # type: ignore[type-arg]
    """structure [2]: an ordered sequence of Data."""

    __slots__ = ()
    TAG: ClassVar[DataType] = DataType.STRUCTURE

    def __repr__(self) -> str:
        return f"Structure({list.__repr__(self)})"


@final
class DontCare:
    """dont-care [255]: a singleton, :data:`DONT_CARE`."""

    __slots__ = ()
    TAG: ClassVar[DataType] = DataType.DONT_CARE
    _instance: ClassVar[DontCare | None] = None

    def __new__(cls) -> DontCare:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DONT_CARE"

    def __reduce__(self) -> Any:
        return (DontCare, ())


DONT_CARE = DontCare()

# ---------------------------------------------------------------------------
# Date / time (IEC 62056-6-2 §4.1.6.1)
# ---------------------------------------------------------------------------

#: Wire value of every "not specified" one-byte field.
NOT_SPECIFIED = 0xFF
#: month special values
DAYLIGHT_SAVINGS_END = 0xFD
DAYLIGHT_SAVINGS_BEGIN = 0xFE
#: day-of-month special values
SECOND_LAST_DAY = 0xFD
LAST_DAY = 0xFE


class ClockStatus(_enum.IntFlag):
    """clock_status bits (IEC 62056-6-2 §4.1.6.1); bits 4..6 are reserved and kept if present."""

    INVALID_VALUE = 0x01
    DOUBTFUL_VALUE = 0x02
    DIFFERENT_CLOCK_BASE = 0x04
    INVALID_CLOCK_STATUS = 0x08
    DAYLIGHT_SAVING_ACTIVE = 0x80


_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_DATE_S = struct.Struct(">HBBB")
_TIME_S = struct.Struct(">BBBB")
_DT_S = struct.Struct(">HBBBBBBBhB")


def _check_date(
    year: int | None, month: int | None, day: int | None, weekday: int | None
) -> str | None:
    if year is not None and not (isinstance(year, int) and 0 <= year <= 0xFFFE):
        return "year"
    if month is not None and not (
        isinstance(month, int) and (1 <= month <= 12 or month in (0xFD, 0xFE))
    ):
        return "month"
    if day is not None and not (isinstance(day, int) and (1 <= day <= 31 or day in (0xFD, 0xFE))):
        return "day"
    if weekday is not None and not (isinstance(weekday, int) and 1 <= weekday <= 7):
        return "weekday"
    return None


def _check_time(
    hour: int | None, minute: int | None, second: int | None, hundredths: int | None
) -> str | None:
    if hour is not None and not (isinstance(hour, int) and 0 <= hour <= 23):
        return "hour"
    if minute is not None and not (isinstance(minute, int) and 0 <= minute <= 59):
        return "minute"
    if second is not None and not (isinstance(second, int) and 0 <= second <= 59):
        return "second"
    if hundredths is not None and not (isinstance(hundredths, int) and 0 <= hundredths <= 99):
        return "hundredths"
    return None


def _opt(v: int, ns: int = 0xFF) -> int | None:
    return None if v == ns else v


def _fmt(v: int | None, width: int) -> str:
    return "*" * width if v is None else f"{v:0{width}d}"


def _date_text(year: int | None, month: int | None, day: int | None) -> str:
    m = {0xFD: "DE", 0xFE: "DB"}.get(month, _fmt(month, 2)) if month is not None else "**"
    d = {0xFD: "L2", 0xFE: "LL"}.get(day, _fmt(day, 2)) if day is not None else "**"
    return f"{_fmt(year, 4)}-{m}-{d}"


def _time_text(
    hour: int | None, minute: int | None, second: int | None, hundredths: int | None
) -> str:
    return f"{_fmt(hour, 2)}:{_fmt(minute, 2)}:{_fmt(second, 2)}.{_fmt(hundredths, 2)}"


def _setattrs(obj: Any, names: tuple[str, ...], values: Iterable[Any]) -> None:
    for n, v in zip(names, values):
        object.__setattr__(obj, n, v)


@dataclass(frozen=True, slots=True)
class Date:
    """COSEM date (5 octets).  ``None`` = not specified; month may be
    :data:`DAYLIGHT_SAVINGS_END`/:data:`DAYLIGHT_SAVINGS_BEGIN`, day may be
    :data:`SECOND_LAST_DAY`/:data:`LAST_DAY`; weekday 1 = Monday … 7 = Sunday."""

    TAG: ClassVar[DataType] = DataType.DATE
    year: int | None = None
    month: int | None = None
    day: int | None = None
    weekday: int | None = None

    def __post_init__(self) -> None:
        bad = _check_date(self.year, self.month, self.day, self.weekday)
        if bad:
            raise EncodeError(f"bad {bad}", field=f"date.{bad}")

    def to_bytes(self) -> bytes:
        return _DATE_S.pack(
            0xFFFF if self.year is None else self.year,
            0xFF if self.month is None else self.month,
            0xFF if self.day is None else self.day,
            0xFF if self.weekday is None else self.weekday,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Date:
        """Parse 5 octets (e.g. an OctetString(5)); DecodeError on bad fields."""
        if len(data) != 5:
            raise DecodeError(f"{len(data)} octets, need 5", field="date")
        y, m, d, w = _DATE_S.unpack(data)
        vals = (_opt(y, 0xFFFF), _opt(m), _opt(d), _opt(w))
        bad = _check_date(*vals)
        if bad:
            raise DecodeError(f"bad {bad}", field=f"date.{bad}")
        new = object.__new__(cls)
        _setattrs(new, ("year", "month", "day", "weekday"), vals)
        return new

    @classmethod
    def from_date(cls, d: _date) -> Date:
        return cls(d.year, d.month, d.day, d.isoweekday())

    def to_date(self) -> _date:
        """A :class:`datetime.date`; DecodeError when a field is unspecified or special."""
        if (
            self.year is None
            or self.month is None
            or self.day is None
            or self.month > 12
            or self.day > 31
        ):
            raise DecodeError("date has unspecified or special fields", field="date")
        try:
            return _date(self.year, self.month, self.day)
        except ValueError as e:
            raise DecodeError(str(e), field="date") from None

    def __str__(self) -> str:
        return _date_text(self.year, self.month, self.day)


@dataclass(frozen=True, slots=True)
class Time:
    """COSEM time (4 octets); ``None`` = not specified."""

    TAG: ClassVar[DataType] = DataType.TIME
    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    hundredths: int | None = None

    def __post_init__(self) -> None:
        bad = _check_time(self.hour, self.minute, self.second, self.hundredths)
        if bad:
            raise EncodeError(f"bad {bad}", field=f"time.{bad}")

    def to_bytes(self) -> bytes:
        return _TIME_S.pack(
            0xFF if self.hour is None else self.hour,
            0xFF if self.minute is None else self.minute,
            0xFF if self.second is None else self.second,
            0xFF if self.hundredths is None else self.hundredths,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Time:
        """Parse 4 octets; DecodeError on bad fields."""
        if len(data) != 4:
            raise DecodeError(f"{len(data)} octets, need 4", field="time")
        vals = tuple(None if b == 0xFF else b for b in bytes(data))
        bad = _check_time(*vals)
        if bad:
            raise DecodeError(f"bad {bad}", field=f"time.{bad}")
        new = object.__new__(cls)
        _setattrs(new, ("hour", "minute", "second", "hundredths"), vals)
        return new

    @classmethod
    def from_time(cls, t: _time) -> Time:
        return cls(t.hour, t.minute, t.second, t.microsecond // 10000)

    def to_time(self) -> _time:
        """A naive :class:`datetime.time` (a COSEM time has no zone); hundredths unspecified → 0."""
        if self.hour is None or self.minute is None or self.second is None:
            raise DecodeError("time has unspecified fields", field="time")
        return _time(self.hour, self.minute, self.second, (self.hundredths or 0) * 10000)

    def __str__(self) -> str:
        return _time_text(self.hour, self.minute, self.second, self.hundredths)


_DT_FIELDS = (
    "year",
    "month",
    "day",
    "weekday",
    "hour",
    "minute",
    "second",
    "hundredths",
    "deviation",
    "status",
)


@dataclass(frozen=True, slots=True)
class DateTime:
    """COSEM date-time (12 octets, IEC 62056-6-2 §4.1.6.1).

    ``deviation`` is minutes *UTC minus local time* (Blue Book convention: CET
    is −60), ``None`` = not specified (0x8000).  ``status`` is a
    :class:`ClockStatus` or ``None`` (0xFF, not specified).  Every other field
    is ``None`` when not specified (0xFF / 0xFFFF)."""

    TAG: ClassVar[DataType] = DataType.DATE_TIME
    year: int | None = None
    month: int | None = None
    day: int | None = None
    weekday: int | None = None
    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    hundredths: int | None = None
    deviation: int | None = None
    status: ClockStatus | None = None

    def __post_init__(self) -> None:
        bad = _check_date(self.year, self.month, self.day, self.weekday) or _check_time(
            self.hour, self.minute, self.second, self.hundredths
        )
        if bad:
            raise EncodeError(f"bad {bad}", field=f"date-time.{bad}")
        if self.deviation is not None and not (
            isinstance(self.deviation, int) and -720 <= self.deviation <= 720
        ):
            raise EncodeError("deviation outside -720..720", field="date-time.deviation")
        if self.status is not None:
            if not isinstance(self.status, int) or not 0 <= self.status <= 0xFE:
                raise EncodeError("status outside 0..0xFE", field="date-time.status")
            if type(self.status) is not ClockStatus:
                object.__setattr__(self, "status", ClockStatus(self.status))

    def to_bytes(self) -> bytes:
        return _DT_S.pack(
            0xFFFF if self.year is None else self.year,
            0xFF if self.month is None else self.month,
            0xFF if self.day is None else self.day,
            0xFF if self.weekday is None else self.weekday,
            0xFF if self.hour is None else self.hour,
            0xFF if self.minute is None else self.minute,
            0xFF if self.second is None else self.second,
            0xFF if self.hundredths is None else self.hundredths,
            -0x8000 if self.deviation is None else self.deviation,
            0xFF if self.status is None else self.status,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> DateTime:
        """Parse 12 octets (e.g. the OctetString(12) of a clock); DecodeError on bad fields."""
        try:
            y, mo, d, w, h, mi, s, hs, dev, st = _DT_S.unpack(data)
        except (struct.error, TypeError):
            raise DecodeError(f"{len(data)} octets, need 12", field="date-time") from None
        new = object.__new__(cls)
        # fast path: a fully specified, plausible date-time
        if (
            y != 0xFFFF
            and 1 <= mo <= 12
            and 1 <= d <= 31
            and (1 <= w <= 7 or w == 0xFF)
            and h <= 23
            and mi <= 59
            and s <= 59
            and (hs <= 99 or hs == 0xFF)
            and -720 <= dev <= 720
            and st != 0xFF
        ):
            _dt_fill(
                new,
                y,
                mo,
                d,
                None if w == 0xFF else w,
                h,
                mi,
                s,
                None if hs == 0xFF else hs,
                dev,
                _status(st),
            )
            return new
        vals = (_opt(y, 0xFFFF), _opt(mo), _opt(d), _opt(w), _opt(h), _opt(mi), _opt(s), _opt(hs))
        bad = _check_date(*vals[:4]) or _check_time(*vals[4:])
        if bad:
            raise DecodeError(f"bad {bad}", field=f"date-time.{bad}")
        if dev == -0x8000:
            deviation = None
        elif -720 <= dev <= 720:
            deviation = dev
        else:
            raise DecodeError(f"deviation {dev} outside -720..720", field="date-time.deviation")
        _setattrs(new, _DT_FIELDS, (*vals, deviation, None if st == 0xFF else _status(st)))
        return new

    @classmethod
    def from_datetime(
        cls, dt: _datetime, *, status: int | None = None, hundredths: bool = True
    ) -> DateTime:
        """From an *aware* datetime.  ``status`` defaults to DAYLIGHT_SAVING_ACTIVE when
        ``dt.dst()`` is non-zero, else 0."""
        off = dt.utcoffset()
        if off is None:
            raise EncodeError("naive datetime; give a timezone", field="date-time")
        minutes, rem = divmod(off, timedelta(minutes=1))
        if rem:
            raise EncodeError("UTC offset is not whole minutes", field="date-time.deviation")
        if status is None:
            dst = dt.dst()
            status = ClockStatus.DAYLIGHT_SAVING_ACTIVE if dst else ClockStatus(0)
        return cls(
            dt.year,
            dt.month,
            dt.day,
            dt.isoweekday(),
            dt.hour,
            dt.minute,
            dt.second,
            dt.microsecond // 10000 if hundredths else None,
            -minutes,
            ClockStatus(status),
        )

    def to_datetime(self, *, tz: tzinfo | None = None) -> _datetime:
        """An aware :class:`datetime.datetime`.

        Raises DecodeError when year/month/day/hour/minute/second are not
        specified or special.  An unspecified hundredths counts as 0.  An
        unspecified deviation raises unless ``tz`` is given (then the fields
        are taken as local time in ``tz``)."""
        if None in (self.year, self.month, self.day, self.hour, self.minute, self.second):
            raise DecodeError("date-time has unspecified fields", field="date-time")
        assert self.month is not None and self.day is not None
        if self.month > 12 or self.day > 31:
            raise DecodeError("date-time has special (DST/last-day) fields", field="date-time")
        if self.deviation is None:
            if tz is None:
                raise DecodeError("deviation not specified; pass tz=", field="date-time.deviation")
            zone: tzinfo = tz
        else:
            zone = _zone(self.deviation)
        try:
            return _datetime(
                self.year,  # type: ignore[arg-type]
                self.month,
                self.day,
                self.hour,  # type: ignore[arg-type]
                self.minute,  # type: ignore[arg-type]
                self.second,  # type: ignore[arg-type]
                (self.hundredths or 0) * 10000,
                tzinfo=zone,
            )
        except ValueError as e:
            raise DecodeError(str(e), field="date-time") from None

    @property
    def date(self) -> Date:
        return Date(self.year, self.month, self.day, self.weekday)

    @property
    def time(self) -> Time:
        return Time(self.hour, self.minute, self.second, self.hundredths)

    def __str__(self) -> str:
        dev = "dev=*" if self.deviation is None else f"dev={self.deviation:+d}"
        st = "status=*" if self.status is None else f"status=0x{int(self.status):02X}"
        return (
            f"{_date_text(self.year, self.month, self.day)} "
            f"{_time_text(self.hour, self.minute, self.second, self.hundredths)} {dev} {st}"
        )


_STATUS_CACHE: dict[int, ClockStatus] = {}

_DT_SET = tuple(DateTime.__dict__[f].__set__ for f in _DT_FIELDS)


def _dt_fill(
    obj: DateTime,
    y: Any,
    mo: Any,
    d: Any,
    w: Any,
    h: Any,
    mi: Any,
    s: Any,
    hs: Any,
    dev: Any,
    st: Any,
) -> None:
    """Set all ten slots of a fresh DateTime (bypasses the frozen __setattr__)."""
    a, b, c, e, f, g, i, j, k, m = _DT_SET
    a(obj, y)
    b(obj, mo)
    c(obj, d)
    e(obj, w)
    f(obj, h)
    g(obj, mi)
    i(obj, s)
    j(obj, hs)
    k(obj, dev)
    m(obj, st)


def _status(v: int) -> ClockStatus:
    s = _STATUS_CACHE.get(v)
    if s is None:
        s = _STATUS_CACHE[v] = ClockStatus(v)
    return s


_ZONES: dict[int, timezone] = {}


def _zone(deviation: int) -> timezone:
    z = _ZONES.get(deviation)
    if z is None:
        z = _ZONES[deviation] = timezone(timedelta(minutes=-deviation))
    return z


# ---------------------------------------------------------------------------
# compact-array (IEC 62056-6-2 §4.1.5, TypeDescription)
# ---------------------------------------------------------------------------

_SIMPLE_TYPES = frozenset(DataType) - {DataType.ARRAY, DataType.STRUCTURE, DataType.COMPACT_ARRAY}


@dataclass(frozen=True, slots=True)
class TypeDescription:
    """A compact-array contents description.  For ARRAY, ``count`` elements of
    ``elements[0]``; for STRUCTURE, one member per entry of ``elements``."""

    type: DataType
    elements: tuple[TypeDescription, ...] = ()
    count: int = 0

    def __post_init__(self) -> None:
        try:
            t = DataType(self.type)
        except ValueError:
            raise EncodeError(f"unknown type {self.type!r}", field="type-description") from None
        object.__setattr__(self, "type", t)
        if t is DataType.COMPACT_ARRAY:
            raise EncodeError("compact-array cannot nest", field="type-description")
        if t is DataType.ARRAY:
            if len(self.elements) != 1 or not 0 <= self.count <= 0xFFFF:
                raise EncodeError(
                    "array needs one element type and count 0..65535", field="type-description"
                )
        elif t is DataType.STRUCTURE:
            pass
        elif self.elements or self.count:
            raise EncodeError(f"{_N[t]} takes no elements", field="type-description")
        if not all(isinstance(e, TypeDescription) for e in self.elements):
            raise EncodeError("elements must be TypeDescription", field="type-description")

    @classmethod
    def array(cls, count: int, element: TypeDescription | DataType) -> TypeDescription:
        return cls(DataType.ARRAY, (_td(element),), count)

    @classmethod
    def structure(cls, *elements: TypeDescription | DataType) -> TypeDescription:
        return cls(DataType.STRUCTURE, tuple(_td(e) for e in elements))

    @property
    def element(self) -> TypeDescription:
        """The element type of an ARRAY description."""
        return self.elements[0]

    @classmethod
    def of(cls, value: Any) -> TypeDescription:
        """The description of a typed value (arrays: from their first element)."""
        t = data_type_of(value)
        if t is DataType.STRUCTURE:
            return cls(t, tuple(cls.of(v) for v in value))
        if t is DataType.ARRAY:
            if not value:
                raise EncodeError("cannot describe an empty array", field="type-description")
            return cls(t, (cls.of(value[0]),), len(value))
        if t is DataType.COMPACT_ARRAY:
            raise EncodeError("compact-array cannot nest", field="type-description")
        return cls(t)

    def encode(self) -> bytes:
        out = bytearray()
        _enc_td(self, out, 0)
        return bytes(out)

    def min_size(self) -> int:
        """Fewest content octets one value of this type takes."""
        return _td_min_size(self)

    def __str__(self) -> str:
        if self.type is DataType.ARRAY:
            return f"array[{self.count}] of {self.elements[0]}"
        if self.type is DataType.STRUCTURE:
            return "structure{" + ", ".join(str(e) for e in self.elements) + "}"
        return _N[self.type]


def _td(x: TypeDescription | DataType) -> TypeDescription:
    return x if isinstance(x, TypeDescription) else TypeDescription(DataType(x))


_FIXED_SIZE = {
    DataType.NULL_DATA: 0,
    DataType.DONT_CARE: 0,
    DataType.BOOLEAN: 1,
    DataType.INTEGER: 1,
    DataType.UNSIGNED: 1,
    DataType.ENUM: 1,
    DataType.BCD: 1,
    DataType.LONG: 2,
    DataType.LONG_UNSIGNED: 2,
    DataType.DOUBLE_LONG: 4,
    DataType.DOUBLE_LONG_UNSIGNED: 4,
    DataType.FLOAT32: 4,
    DataType.LONG64: 8,
    DataType.LONG64_UNSIGNED: 8,
    DataType.FLOAT64: 8,
    DataType.DATE_TIME: 12,
    DataType.DATE: 5,
    DataType.TIME: 4,
}


def _td_min_size(td: TypeDescription) -> int:
    if td.type is DataType.ARRAY:
        return td.count * _td_min_size(td.elements[0])
    if td.type is DataType.STRUCTURE:
        return sum(_td_min_size(e) for e in td.elements)
    return _FIXED_SIZE.get(td.type, 1)  # strings: at least their length octet


class CompactArray:
    """compact-array [19]: ``type_description`` plus ``values`` (a list of values of that type)."""

    __slots__ = ("type_description", "values")
    TAG: ClassVar[DataType] = DataType.COMPACT_ARRAY

    def __init__(self, type_description: TypeDescription, values: Iterable[Any] = ()) -> None:
        if not isinstance(type_description, TypeDescription):
            raise EncodeError("type_description must be a TypeDescription", field="compact-array")
        self.type_description = type_description
        self.values = list(values)

    @classmethod
    def from_values(cls, values: Iterable[Any]) -> CompactArray:
        """Derive the type description from the first value."""
        vals = list(values)
        if not vals:
            raise EncodeError(
                "cannot derive a type description from no values", field="compact-array"
            )
        return cls(TypeDescription.of(vals[0]), vals)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CompactArray):
            return self.type_description == other.type_description and self.values == other.values
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Any:
        return iter(self.values)

    def __repr__(self) -> str:
        return f"CompactArray({self.type_description!r}, {self.values!r})"


# ---------------------------------------------------------------------------
# Lengths
# ---------------------------------------------------------------------------


def encode_length(n: int) -> bytes:
    """A-XDR/BER length: one octet below 128, else 0x8k followed by k octets."""
    if n < 0x80:
        if n < 0:
            raise EncodeError("negative length", field="length")
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    if n <= 0xFFFF:
        return bytes((0x82, n >> 8, n & 0xFF))
    if n <= 0xFFFFFF:
        return bytes((0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x84" + n.to_bytes(4, "big")
    raise EncodeError("length above 2**32-1", field="length")


def decode_length(buf: Any, pos: int = 0) -> tuple[int, int]:
    """Decode an A-XDR length at ``pos``; returns (length, next position)."""
    try:
        b = buf[pos]
    except IndexError:
        raise DecodeError("missing length", field="length", offset=pos) from None
    if b < 0x80:
        return b, pos + 1
    k = b & 0x7F
    if k == 0 or k > 4:
        raise DecodeError(f"bad length octet 0x{b:02X}", field="length", offset=pos)
    end = pos + 1 + k
    if end > len(buf):
        raise DecodeError("truncated length", field="length", offset=pos)
    return int.from_bytes(buf[pos + 1 : end], "big"), end


# ---------------------------------------------------------------------------
# Decoder
# ---------------------------------------------------------------------------

_Buf = bytes | bytearray | memoryview
_Dec = Callable[[Any, int, int], "tuple[Any, int]"]


def _short(field: str, pos: int) -> DecodeError:
    return DecodeError("truncated", field=field, offset=pos)


def _mk_int_dec(cls: type[_TypedInt]) -> _Dec:
    s = struct.Struct(">" + cls.FORMAT)
    unpack_from = s.unpack_from
    size = s.size
    new = int.__new__
    name = _N[cls.TAG]

    def dec(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
        try:
            (v,) = unpack_from(buf, pos)
        except struct.error:
            raise _short(name, pos) from None
        return new(cls, v), pos + size

    return dec


def _d_null(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    return None, pos


def _d_dont_care(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    return DONT_CARE, pos


def _d_bool(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    try:
        return buf[pos] != 0, pos + 1
    except IndexError:
        raise _short("boolean", pos) from None


def _d_f32(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    try:
        (v,) = _F32.unpack_from(buf, pos)
    except struct.error:
        raise _short("float32", pos) from None
    return float.__new__(Float32, v), pos + 4


def _d_f64(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    try:
        (v,) = _F64.unpack_from(buf, pos)
    except struct.error:
        raise _short("float64", pos) from None
    return float.__new__(Float64, v), pos + 8


def _len(buf: Any, pos: int, field: str) -> tuple[int, int]:
    try:
        b = buf[pos]
    except IndexError:
        raise DecodeError("missing length", field=field, offset=pos) from None
    if b < 0x80:
        return b, pos + 1
    try:
        return decode_length(buf, pos)
    except DecodeError as e:
        raise DecodeError(str(e).split(": ", 1)[-1], field=field, offset=pos) from None


def _d_octets(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    n, pos = _len(buf, pos, "octet-string")
    end = pos + n
    if end > len(buf):
        raise _short("octet-string", pos)
    return bytes.__new__(OctetString, buf[pos:end]), end


def _d_visible(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    n, pos = _len(buf, pos, "visible-string")
    end = pos + n
    if end > len(buf):
        raise _short("visible-string", pos)
    return str.__new__(VisibleString, bytes(buf[pos:end]).decode("latin-1")), end


def _d_utf8(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    n, pos = _len(buf, pos, "utf8-string")
    end = pos + n
    if end > len(buf):
        raise _short("utf8-string", pos)
    try:
        s = bytes(buf[pos:end]).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(
            f"invalid UTF-8 ({e.reason})", field="utf8-string", offset=pos + e.start
        ) from None
    return str.__new__(Utf8String, s), end


def _d_bits(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    nbits, pos = _len(buf, pos, "bit-string")
    end = pos + (nbits + 7) // 8
    if end > len(buf):
        raise _short("bit-string", pos)
    return BitString.from_bytes(bytes(buf[pos:end]), nbits), end


def _d_datetime(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    end = pos + 12
    if end > len(buf):
        raise _short("date-time", pos)
    try:
        return DateTime.from_bytes(bytes(buf[pos:end])), end
    except DecodeError as e:
        raise DecodeError(str(e).split(": ", 1)[-1], field=e.field, offset=pos) from None


def _d_date(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    end = pos + 5
    if end > len(buf):
        raise _short("date", pos)
    try:
        return Date.from_bytes(bytes(buf[pos:end])), end
    except DecodeError as e:
        raise DecodeError(str(e).split(": ", 1)[-1], field=e.field, offset=pos) from None


def _d_time(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    end = pos + 4
    if end > len(buf):
        raise _short("time", pos)
    try:
        return Time.from_bytes(bytes(buf[pos:end])), end
    except DecodeError as e:
        raise DecodeError(str(e).split(": ", 1)[-1], field=e.field, offset=pos) from None


def _d_any(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    """Decode one tagged Data at pos."""
    try:
        tag = buf[pos]
    except IndexError:
        raise DecodeError("missing data tag", field="data", offset=pos) from None
    fn = _DEC[tag]
    if fn is None:
        raise DecodeError(f"unknown data tag {tag}", field="data", offset=pos)
    out: tuple[Any, int] = fn(buf, pos + 1, depth)
    return out


def _d_structure(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    if depth >= MAX_DEPTH:
        raise DecodeError("nesting too deep", field="structure", offset=pos)
    n, pos = _len(buf, pos, "structure")
    if pos + n > len(buf):  # every element takes at least its tag
        raise _short("structure", pos)
    items: list[Any] = []
    append = items.append
    depth += 1
    dec = _DEC
    for _ in range(n):
        try:
            tag = buf[pos]
        except IndexError:
            raise DecodeError("missing data tag", field="structure", offset=pos) from None
        fn = dec[tag]
        if fn is None:
            raise DecodeError(f"unknown data tag {tag}", field="data", offset=pos)
        v, pos = fn(buf, pos + 1, depth)
        append(v)
    return Structure(items), pos


def _d_array(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    if depth >= MAX_DEPTH:
        raise DecodeError("nesting too deep", field="array", offset=pos)
    n, pos = _len(buf, pos, "array")
    if pos + n > len(buf):  # every element takes at least its tag
        raise _short("array", pos)
    if n == 0:
        return Array(), pos
    depth += 1
    first, p1 = _d_any(buf, pos, depth)
    if n >= _FAST_MIN_ROWS:
        fast = _fast_rows(buf, pos, p1, n)
        if fast is not None:
            return fast
    items = [first]
    append = items.append
    p = p1
    dec = _DEC
    for _ in range(n - 1):
        try:
            tag = buf[p]
        except IndexError:
            raise DecodeError("missing data tag", field="array", offset=p) from None
        fn = dec[tag]
        if fn is None:
            raise DecodeError(f"unknown data tag {tag}", field="data", offset=p)
        v, p = fn(buf, p + 1, depth)
        append(v)
    return Array(items), p


# -- compact array -----------------------------------------------------------


def _d_td(buf: Any, pos: int, depth: int) -> tuple[TypeDescription, int]:
    if depth >= MAX_DEPTH:
        raise DecodeError("nesting too deep", field="type-description", offset=pos)
    try:
        tag = buf[pos]
    except IndexError:
        raise _short("type-description", pos) from None
    pos += 1
    if tag == DataType.ARRAY:
        try:
            (count,) = _U16.unpack_from(buf, pos)
        except struct.error:
            raise _short("type-description", pos) from None
        elem, pos = _d_td(buf, pos + 2, depth + 1)
        if count and _td_min_size(elem) == 0:
            raise DecodeError("array of zero-size elements", field="type-description", offset=pos)
        return TypeDescription(DataType.ARRAY, (elem,), count), pos
    if tag == DataType.STRUCTURE:
        n, pos = _len(buf, pos, "type-description")
        if pos + n > len(buf):
            raise _short("type-description", pos)
        elems = []
        for _ in range(n):
            e, pos = _d_td(buf, pos, depth + 1)
            elems.append(e)
        return TypeDescription(DataType.STRUCTURE, tuple(elems)), pos
    if tag in _TD_SIMPLE:
        return _TD_SIMPLE[tag], pos
    raise DecodeError(f"bad type tag {tag}", field="type-description", offset=pos - 1)


def _d_untagged(td: TypeDescription, buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    t = td.type
    if t is DataType.ARRAY:
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting too deep", field="compact-array", offset=pos)
        et = td.elements[0]
        items = []
        for _ in range(td.count):
            v, pos = _d_untagged(et, buf, pos, depth + 1)
            items.append(v)
        return Array(items), pos
    if t is DataType.STRUCTURE:
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting too deep", field="compact-array", offset=pos)
        items = []
        for e in td.elements:
            v, pos = _d_untagged(e, buf, pos, depth + 1)
            items.append(v)
        return Structure(items), pos
    fn = _DEC[t]
    assert fn is not None
    return fn(buf, pos, depth)


def _d_compact(buf: Any, pos: int, depth: int) -> tuple[Any, int]:
    td, pos = _d_td(buf, pos, depth)
    n, pos = _len(buf, pos, "compact-array")
    end = pos + n
    if end > len(buf):
        raise _short("compact-array", pos)
    if n:
        least = _td_min_size(td)
        if least == 0:
            raise DecodeError("contents for a zero-size type", field="compact-array", offset=pos)
        if least > n:
            raise DecodeError(
                f"one element takes at least {least} octets", field="compact-array", offset=pos
            )
    values = []
    p = pos
    while p < end:
        v, p = _d_untagged(td, buf, p, depth + 1)
        if p > end:
            raise DecodeError("element overruns the contents", field="compact-array", offset=pos)
        values.append(v)
    return CompactArray(td, values), end


_DEC: list[_Dec | None] = [None] * 256
_DEC[DataType.NULL_DATA] = _d_null
_DEC[DataType.ARRAY] = _d_array
_DEC[DataType.STRUCTURE] = _d_structure
_DEC[DataType.BOOLEAN] = _d_bool
_DEC[DataType.BIT_STRING] = _d_bits
_DEC[DataType.OCTET_STRING] = _d_octets
_DEC[DataType.VISIBLE_STRING] = _d_visible
_DEC[DataType.UTF8_STRING] = _d_utf8
_DEC[DataType.COMPACT_ARRAY] = _d_compact
_DEC[DataType.FLOAT32] = _d_f32
_DEC[DataType.FLOAT64] = _d_f64
_DEC[DataType.DATE_TIME] = _d_datetime
_DEC[DataType.DATE] = _d_date
_DEC[DataType.TIME] = _d_time
_DEC[DataType.DONT_CARE] = _d_dont_care
_INT_CLASSES: tuple[type[_TypedInt], ...] = (
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
)
for _c in _INT_CLASSES:
    _DEC[_c.TAG] = _mk_int_dec(_c)

_TD_SIMPLE = {int(t): TypeDescription(t) for t in _SIMPLE_TYPES}


# -- homogeneous array fast path ------------------------------------------------

_FAST_MIN_ROWS = 4

# struct code and how to build the typed value for fixed-size leaves:
#   ("id", None)            the unpacked value as is (boolean: '?' yields bool)
#   ("int", cls)            int.__new__(cls, v), or a prebuilt-instance table for 8/16-bit types
#   ("float", cls)          float.__new__(cls, v)
#   ("bytes", cls)          bytes.__new__(cls, v)
#   ("call", fn)            fn(v)  (strings, date/time: may raise DecodeError)
_LEAF_CODES: dict[int, tuple[str, str, Any]] = {
    DataType.BOOLEAN: ("?", "id", None),
    DataType.FLOAT32: ("f", "float", Float32),
    DataType.FLOAT64: ("d", "float", Float64),
}
for _c in _INT_CLASSES:
    _LEAF_CODES[_c.TAG] = (_c.FORMAT, "int", _c)


def _conv_visible(b: bytes) -> VisibleString:
    return str.__new__(VisibleString, b.decode("latin-1"))


def _conv_utf8(b: bytes) -> Utf8String:
    try:
        return str.__new__(Utf8String, b.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DecodeError(f"invalid UTF-8 ({e.reason})", field="utf8-string") from None


_STRINGS: dict[int, tuple[str, Any]] = {
    DataType.OCTET_STRING: ("bytes", OctetString),
    DataType.VISIBLE_STRING: ("call", _conv_visible),
    DataType.UTF8_STRING: ("call", _conv_utf8),
}
_DT_CONV: dict[int, tuple[int, Callable[[Any], Any]]] = {
    DataType.DATE_TIME: (12, DateTime.from_bytes),
    DataType.DATE: (5, Date.from_bytes),
    DataType.TIME: (4, Time.from_bytes),
}

# prebuilt instances of the 8- and 16-bit integer types, made on first use by a big array
_LUT_MIN_ROWS = 2048
_LUTS: dict[type, tuple[Any, ...]] = {}


def _lut(cls: type[_TypedInt]) -> tuple[Any, ...]:
    t = _LUTS.get(cls)
    if t is None:
        new = int.__new__
        t = _LUTS[cls] = tuple(new(cls, v) for v in range(cls.MIN, cls.MAX + 1))
    return t


def _leaf_schema(
    buf: Any,
    p: int,
    base: int,
    fmt: list[str],
    consts: list[tuple[int, int]],
    kinds: list[tuple[str, Any]],
) -> int | None:
    """Append the schema of the leaf at ``p`` (its tag); returns the position after it or None."""
    tag = buf[p]
    consts.append((p - base, tag))
    fmt.append("x")
    p += 1
    code = _LEAF_CODES.get(tag)
    if code is not None:
        fmt.append(code[0])
        kinds.append((code[1], code[2]))
        return p + struct.calcsize(">" + code[0])
    sk = _STRINGS.get(tag)
    if sk is not None:
        n, q = _len(buf, p, "string")
        for i in range(p, q):
            consts.append((i - base, buf[i]))
            fmt.append("x")
        fmt.append(f"{n}s")
        kinds.append(sk)
        return q + n
    dt = _DT_CONV.get(tag)
    if dt is not None:
        fmt.append(f"{dt[0]}s")
        kinds.append(("call", dt[1]))
        return p + dt[0]
    return None


_BUILDERS: dict[tuple[Any, ...], Callable[..., list[Any]]] = {}


def _builder(kinds: tuple[str, ...], flat: bool) -> Callable[..., list[Any]]:
    """Compile ``rows(it, ST, o0, o1, ...)`` building typed rows from unpacked tuples."""
    key = (kinds, flat)
    fn = _BUILDERS.get(key)
    if fn is not None:
        return fn
    exprs = []
    for i, k in enumerate(kinds):
        exprs.append(
            {
                "id": "a{i}",
                "lut": "o{i}[a{i} - m{i}]",
                "int": "_in(o{i}, a{i})",
                "float": "_fn(o{i}, a{i})",
                "bytes": "_bn(o{i}, a{i})",
                "call": "o{i}(a{i})",
            }[k].format(i=i)
        )
    names = ", ".join(f"a{i}" for i in range(len(kinds)))
    args = ", ".join(f"o{i}, m{i}" for i in range(len(kinds)))
    body = exprs[0] if flat else f"ST(({', '.join(exprs)},))"
    src = f"def rows(it, ST, {args}):\n    return [{body} for ({names},) in it]\n"
    ns: dict[str, Any] = {"_in": int.__new__, "_fn": float.__new__, "_bn": bytes.__new__}
    exec(src, ns)  # generated from the fixed templates above
    rows: Callable[..., list[Any]] = ns["rows"]
    _BUILDERS[key] = rows
    return rows


def _fast_rows(buf: Any, pos: int, p1: int, n: int) -> tuple[Array, int] | None:
    """Decode ``n`` array elements starting at ``pos`` with one compiled struct,
    if the first element (ending at ``p1``) is a fixed-size leaf or a structure
    of fixed-size leaves and every row repeats its tag/length octets."""
    size = p1 - pos
    end = pos + n * size
    if end > len(buf):
        return None
    fmt: list[str] = [">"]
    consts: list[tuple[int, int]] = []
    kinds: list[tuple[str, Any]] = []
    tag = buf[pos]
    if tag == DataType.STRUCTURE:
        k, q = _len(buf, pos + 1, "structure")
        for i in range(pos, q):
            consts.append((i - pos, buf[i]))
            fmt.append("x")
        if k == 0:
            return None
        for _ in range(k):
            q2 = _leaf_schema(buf, q, pos, fmt, consts, kinds)
            if q2 is None:
                return None
            q = q2
        flat = False
    else:
        q3 = _leaf_schema(buf, pos, pos, fmt, consts, kinds)
        if q3 is None:
            return None
        q = q3
        flat = True
    if q != p1:
        return None
    rs = struct.Struct("".join(fmt))
    if rs.size != size:
        return None
    data = buf[pos:end]
    if not isinstance(data, bytes):
        data = bytes(data)
    for off, c in consts:
        if data[off::size] != bytes((c,)) * n:
            return None  # some row differs: generic path
    args: list[Any] = []
    names: list[str] = []
    for kind, obj in kinds:
        if (
            kind == "int"
            and obj.MAX - obj.MIN <= 0xFFFF
            and (n >= _LUT_MIN_ROWS or obj.MAX <= 0xFF)
        ):
            names.append("lut")
            args += [_lut(obj), obj.MIN]
        else:
            names.append(kind)
            args += [obj, 0]
    rows = _builder(tuple(names), flat)(rs.iter_unpack(data), Structure, *args)
    return Array(rows), end


# -- public decode API ----------------------------------------------------------


def decode(buf: _Buf, pos: int = 0) -> tuple[Any, int]:
    """Decode one tagged Data at ``pos``; returns (value, next position).

    Raises :class:`DecodeError` (with ``field`` and ``offset``) on bad input."""
    try:
        tag = buf[pos]
    except IndexError:
        raise DecodeError("missing data tag", field="data", offset=pos) from None
    except TypeError:
        raise DecodeError(f"cannot decode {type(buf).__name__}", field="data") from None
    fn = _DEC[tag]
    if fn is None:
        raise DecodeError(f"unknown data tag {tag}", field="data", offset=pos)
    try:
        return fn(buf, pos + 1, 0)
    except DecodeError:
        raise
    except (
        IndexError,
        struct.error,
        ValueError,
        TypeError,
        OverflowError,
        RecursionError,
        MemoryError,
    ) as e:
        # defensive: an internal slip must still surface as our error type
        raise DecodeError(
            f"malformed data ({type(e).__name__})", field="data", offset=pos
        ) from None


def decode_all(buf: _Buf) -> Any:
    """Decode one Data occupying all of ``buf``; DecodeError on trailing bytes."""
    value, end = decode(buf, 0)
    if end != len(buf):
        raise DecodeError(f"{len(buf) - end} trailing bytes", field="data", offset=end)
    return value


# ---------------------------------------------------------------------------
# Encoder
# ---------------------------------------------------------------------------

_Enc = Callable[[Any, bytearray, int], None]


def _mk_int_enc(cls: type[_TypedInt]) -> _Enc:
    pack = struct.Struct(">B" + cls.FORMAT).pack
    tag = int(cls.TAG)

    def enc(v: Any, out: bytearray, depth: int) -> None:
        out += pack(tag, v)

    return enc


def _e_none(v: Any, out: bytearray, depth: int) -> None:
    out.append(0)


def _e_bool(v: Any, out: bytearray, depth: int) -> None:
    out += b"\x03\x01" if v else b"\x03\x00"


def _e_dont_care(v: Any, out: bytearray, depth: int) -> None:
    out.append(0xFF)


def _e_f32(v: Any, out: bytearray, depth: int) -> None:
    out.append(DataType.FLOAT32)
    out += _F32.pack(v)


def _e_f64(v: Any, out: bytearray, depth: int) -> None:
    out.append(DataType.FLOAT64)
    out += _F64.pack(v)


def _e_octets(v: Any, out: bytearray, depth: int) -> None:
    out.append(DataType.OCTET_STRING)
    out += encode_length(len(v))
    out += v


def _e_visible(v: Any, out: bytearray, depth: int) -> None:
    try:
        b = v.encode("latin-1")
    except UnicodeEncodeError:
        raise EncodeError(
            "visible-string characters must be below U+0100", field="visible-string"
        ) from None
    out.append(DataType.VISIBLE_STRING)
    out += encode_length(len(b))
    out += b


def _e_utf8(v: Any, out: bytearray, depth: int) -> None:
    try:
        b = v.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError("not encodable as UTF-8 (lone surrogate)", field="utf8-string") from None
    out.append(DataType.UTF8_STRING)
    out += encode_length(len(b))
    out += b


def _e_str(v: str, out: bytearray, depth: int) -> None:
    """Plain str: visible-string when ASCII, else utf8-string."""
    if v.isascii():
        _e_visible(v, out, depth)
    else:
        _e_utf8(v, out, depth)


def _e_bits(v: BitString, out: bytearray, depth: int) -> None:
    out.append(DataType.BIT_STRING)
    out += encode_length(len(v))
    out += v.to_bytes()


def _e_seq(v: Any, out: bytearray, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise EncodeError("nesting too deep", field=_N[v.TAG])
    out.append(v.TAG)
    out += encode_length(len(v))
    depth += 1
    for item in v:
        _enc(item, out, depth)


def _e_dt(v: Any, out: bytearray, depth: int) -> None:
    out.append(v.TAG)
    out += v.to_bytes()


def _e_compact(v: CompactArray, out: bytearray, depth: int) -> None:
    out.append(DataType.COMPACT_ARRAY)
    _enc_td(v.type_description, out, depth)
    body = bytearray()
    for item in v.values:
        _enc_untagged(v.type_description, item, body, depth + 1)
    out += encode_length(len(body))
    out += body


def _enc_td(td: TypeDescription, out: bytearray, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise EncodeError("nesting too deep", field="type-description")
    out.append(td.type)
    if td.type is DataType.ARRAY:
        out += _U16.pack(td.count)
        _enc_td(td.elements[0], out, depth + 1)
    elif td.type is DataType.STRUCTURE:
        out += encode_length(len(td.elements))
        for e in td.elements:
            _enc_td(e, out, depth + 1)


def _enc_untagged(td: TypeDescription, v: Any, out: bytearray, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise EncodeError("nesting too deep", field="compact-array")
    t = td.type
    if t is DataType.ARRAY or t is DataType.STRUCTURE:
        want = Array if t is DataType.ARRAY else Structure
        if not isinstance(v, want):
            raise EncodeError(f"{v!r} is not a {_N[t]}", field="compact-array")
        n = td.count if t is DataType.ARRAY else len(td.elements)
        if len(v) != n:
            raise EncodeError(
                f"{_N[t]} of {len(v)} elements, type description says {n}", field="compact-array"
            )
        elems = td.elements * n if t is DataType.ARRAY else td.elements
        for e, item in zip(elems, v):
            _enc_untagged(e, item, out, depth + 1)
        return
    if data_type_of(v) is not t:
        raise EncodeError(f"{v!r} is not a {_N[t]}", field="compact-array")
    start = len(out)
    _enc(v, out, depth)
    del out[start]  # drop the tag


_ENC: dict[type, _Enc] = {
    type(None): _e_none,
    bool: _e_bool,
    DontCare: _e_dont_care,
    Float32: _e_f32,
    Float64: _e_f64,
    OctetString: _e_octets,
    bytes: _e_octets,
    bytearray: _e_octets,
    memoryview: lambda v, out, d: _e_octets(bytes(v), out, d),
    VisibleString: _e_visible,
    Utf8String: _e_utf8,
    str: _e_str,
    BitString: _e_bits,
    Array: _e_seq,
    Structure: _e_seq,
    DateTime: _e_dt,
    Date: _e_dt,
    Time: _e_dt,
    CompactArray: _e_compact,
}
for _c in _INT_CLASSES:
    _ENC[_c] = _mk_int_enc(_c)

_BASES: tuple[type, ...] = (
    _TypedInt,
    Float32,
    Float64,
    OctetString,
    VisibleString,
    Utf8String,
    BitString,
    Array,
    Structure,
    DateTime,
    Date,
    Time,
    CompactArray,
)


def _enc(v: Any, out: bytearray, depth: int) -> None:
    fn = _ENC.get(type(v))
    if fn is None:
        fn = _resolve_enc(v)
    fn(v, out, depth)


def _resolve_enc(v: Any) -> _Enc:
    t = type(v)
    for cls in _INT_CLASSES + _BASES[1:]:
        if isinstance(v, cls):
            return _ENC[cls]
    if isinstance(v, int):
        raise EncodeError(
            f"plain {t.__name__} {v!r} is ambiguous; wrap it (e.g. LongUnsigned({v!r}))",
            field="data",
        )
    if isinstance(v, float):
        raise EncodeError(
            f"plain float {v!r} is ambiguous; wrap it in Float32 or Float64", field="data"
        )
    if isinstance(v, (list, tuple)):
        raise EncodeError(f"plain {t.__name__} is ambiguous; use Array or Structure", field="data")
    if isinstance(v, _datetime):
        raise EncodeError(
            "a datetime must be wrapped (DateTime.from_datetime or OctetString)", field="data"
        )
    raise EncodeError(f"cannot encode {t.__name__} as Data", field="data")


#: typed integers: (tag + value packer, tag), the one-call path of encode()
_ONE: dict[type, tuple[Callable[[int, int], bytes], int]] = {
    c: (struct.Struct(">B" + c.FORMAT).pack, int(c.TAG)) for c in _INT_CLASSES
}


def encode(value: Any) -> bytes:
    """Tag + content of one Data value.  Plain ``None``/``bool``/``bytes``/``str``
    are accepted; plain ``int``/``float``/``list`` are ambiguous (EncodeError)."""
    one = _ONE.get(type(value))
    if one is not None:
        try:
            return one[0](one[1], value)
        except struct.error as e:  # a typed value built with object.__new__ tricks, out of range
            raise EncodeError(str(e), field="data") from None
    out = bytearray()
    try:
        _enc(value, out, 0)
    except struct.error as e:  # a typed value built with object.__new__ tricks, out of range
        raise EncodeError(str(e), field="data") from None
    return bytes(out)


def data_type_of(value: Any) -> DataType:
    """The DataType a value encodes as (EncodeError for ambiguous plain values)."""
    if value is None:
        return DataType.NULL_DATA
    if isinstance(value, bool):
        return DataType.BOOLEAN
    tag = getattr(type(value), "TAG", None)
    if isinstance(tag, DataType):
        return tag
    if isinstance(value, (bytes, bytearray, memoryview)):
        return DataType.OCTET_STRING
    if isinstance(value, str):
        return DataType.VISIBLE_STRING if value.isascii() else DataType.UTF8_STRING
    _resolve_enc(value)  # raises the precise EncodeError
    raise EncodeError(
        f"cannot encode {type(value).__name__} as Data", field="data"
    )  # pragma: no cover


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """``{"type": <ASN.1 name>, "value": ...}`` recursively (octet-strings as hex)."""
    t = data_type_of(value)
    name = _N[t]
    if t in (DataType.ARRAY, DataType.STRUCTURE):
        return {"type": name, "value": [to_jsonable(v) for v in value]}
    if t is DataType.COMPACT_ARRAY:
        return {
            "type": name,
            "type_description": str(value.type_description),
            "value": [to_jsonable(v) for v in value.values],
        }
    if t is DataType.OCTET_STRING:
        return {"type": name, "value": bytes(value).hex()}
    if t is DataType.BIT_STRING:
        return {"type": name, "value": value.bits}
    if t in (DataType.VISIBLE_STRING, DataType.UTF8_STRING):
        return {"type": name, "value": str(value)}
    if t in (DataType.FLOAT32, DataType.FLOAT64):
        f = float(value)
        return {"type": name, "value": f if math.isfinite(f) else repr(f)}
    if t in (DataType.DATE_TIME, DataType.DATE, DataType.TIME):
        fields = {k: getattr(value, k) for k in value.__dataclass_fields__ if k != "TAG"}
        if "status" in fields and fields["status"] is not None:
            fields["status"] = int(fields["status"])
        return {"type": name, "value": fields, "text": str(value)}
    if t is DataType.BOOLEAN:
        return {"type": name, "value": bool(value)}
    if t in (DataType.NULL_DATA, DataType.DONT_CARE):
        return {"type": name, "value": None}
    return {"type": name, "value": int(value)}


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also compares the Data type at every level (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, CompactArray):
        return a.type_description == b.type_description and strict_equal(a.values, b.values)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)
