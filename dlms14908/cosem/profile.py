"""Profile generic (class 7) buffers decoded against capture_objects (IEC 62056-6-2 §4.3.6).

Each buffer entry is a structure with one member per capture object.  Clock
columns (class 8 attribute 2, and any other attribute typed as a date-time
octet-string) become :class:`DateTime`.  A null-data clock is the compressed
form: it equals the previous entry's clock plus ``capture_period`` seconds
(minus, when sort_method is LIFO and the entries run newest first).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from datetime import datetime as _datetime
from typing import Any

from dlms14908 import axdr
from dlms14908.axdr import DateTime
from dlms14908.errors import DecodeError, LocalProtocolError
from dlms14908.obis import Obis
from dlms14908.xdlms.types import CaptureObjectDefinition

from .classes import UnknownClass, get_class
from .types import DateTimeSpec

__all__ = [
    "ColumnNotFound",
    "ProfileBuffer",
    "advance_clock",
    "decode_buffer",
    "is_clock_column",
]

CLOCK_CLASS_ID = 8


def is_clock_column(cap: CaptureObjectDefinition) -> bool:
    """True when the captured attribute is a date-time octet-string (e.g. Clock.time)."""
    if cap.data_index:
        return False
    try:
        ic = get_class(cap.class_id)
    except UnknownClass:
        return False
    if not ic.has_attribute(cap.attribute_index):
        return False
    return isinstance(ic.attribute(cap.attribute_index).type, DateTimeSpec)


def advance_clock(dt: DateTime, seconds: int) -> DateTime:
    """``dt`` moved on by ``seconds``, keeping deviation, status and the not-specified
    hundredths/weekday convention.  DecodeError when ``dt`` lacks a specified date/time."""
    y, mo, d, h, mi, sec = dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
    if (
        y is None
        or mo is None
        or d is None
        or h is None
        or mi is None
        or sec is None
        or mo > 12
        or d > 31
    ):
        raise DecodeError("cannot advance a clock with unspecified fields", field="buffer.clock")
    try:
        # UTC only as a DST-free calendar: the deviation is carried over unchanged below
        start = _datetime(y, mo, d, h, mi, sec, (dt.hundredths or 0) * 10000, tzinfo=UTC)
        nxt = start + timedelta(seconds=seconds)
    except (ValueError, OverflowError) as e:
        raise DecodeError(str(e), field="buffer.clock") from None
    return DateTime(
        nxt.year,
        nxt.month,
        nxt.day,
        None if dt.weekday is None else nxt.isoweekday(),
        nxt.hour,
        nxt.minute,
        nxt.second,
        None if dt.hundredths is None else nxt.microsecond // 10000,
        dt.deviation,
        dt.status,
    )


class ColumnNotFound(LocalProtocolError, KeyError):
    """No column of the buffer captures the logical name asked for."""


@dataclass(frozen=True)
class ProfileBuffer:
    """A decoded buffer: ``columns`` (the capture objects) and ``rows`` (tuples of typed values)."""

    columns: tuple[CaptureObjectDefinition, ...]
    rows: list[tuple[Any, ...]]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def column_index(self, key: int | str | Obis | CaptureObjectDefinition) -> int:
        """Index of a column by position, capture object, or logical name (first match);
        :class:`ColumnNotFound` when none matches."""
        if isinstance(key, int):
            if not -len(self.columns) <= key < len(self.columns):
                raise ColumnNotFound(f"column {key} outside 0..{len(self.columns) - 1}")
            return key % len(self.columns)
        if isinstance(key, CaptureObjectDefinition):
            if key not in self.columns:
                raise ColumnNotFound(f"no column captures {key}")
            return self.columns.index(key)
        ln = Obis.coerce(key)
        for i, c in enumerate(self.columns):
            if c.logical_name == ln:
                return i
        raise ColumnNotFound(f"no column captures {ln}")

    def column(self, key: int | str | Obis | CaptureObjectDefinition) -> list[Any]:
        i = self.column_index(key)
        return [r[i] for r in self.rows]


def decode_buffer(
    buffer: Any,
    capture_objects: Sequence[CaptureObjectDefinition],
    *,
    capture_period: int = 0,
    previous_clock: DateTime | None = None,
    sort_method: int = 1,
) -> ProfileBuffer:
    """Type a profile generic buffer.

    ``buffer`` is the decoded attribute 2 (an :class:`axdr.Array`, a
    :class:`axdr.CompactArray` of structures, or its A-XDR bytes).  ``previous_clock``
    seeds null-clock expansion when the first entry is compressed (e.g. a
    block read continuing an earlier one).  Raises DecodeError when an entry
    does not match capture_objects or a null clock cannot be expanded."""
    if isinstance(buffer, (bytes, bytearray, memoryview)):
        buffer = axdr.decode_all(buffer)
    if isinstance(buffer, axdr.CompactArray):
        buffer = buffer.values
    elif type(buffer) is not axdr.Array:
        raise DecodeError(f"buffer is {type(buffer).__name__}, not an array", field="buffer")
    cols = tuple(capture_objects)
    n = len(cols)
    S = axdr.Structure
    for i, r in enumerate(buffer):
        if type(r) is not S or len(r) != n:
            raise DecodeError(f"entry {i} is not a structure of {n} members", field=f"buffer[{i}]")
    if not buffer:
        return ProfileBuffer(cols, [])
    columns: list[Any] = list(zip(*buffer)) if n else []
    for ci, cap in enumerate(cols):
        if is_clock_column(cap):
            step = -capture_period if sort_method == 2 else capture_period  # 2 = LIFO
            columns[ci] = _clock_column(columns[ci], step, previous_clock, ci)
    rows = list(zip(*columns)) if n else [() for _ in buffer]
    return ProfileBuffer(cols, rows)


def _clock_column(values: Sequence[Any], period: int, prev: DateTime | None, ci: int) -> list[Any]:
    out: list[Any] = []
    append = out.append
    from_bytes = DateTime.from_bytes
    OS = axdr.OctetString
    for i, v in enumerate(values):
        if type(v) is OS and len(v) == 12:
            try:
                prev = from_bytes(v)
            except DecodeError as e:
                raise DecodeError(
                    str(e).split(": ", 1)[-1], field=f"buffer[{i}][{ci}].{e.field}"
                ) from None
        elif v is None:
            if prev is None or period == 0:
                raise DecodeError(
                    "null clock without a previous clock and capture_period",
                    field=f"buffer[{i}][{ci}]",
                )
            prev = advance_clock(prev, period)
        elif type(v) is DateTime:
            prev = v
        else:
            raise DecodeError(f"clock column holds {type(v).__name__}", field=f"buffer[{i}][{ci}]")
        append(prev)
    return out
