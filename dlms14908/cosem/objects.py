"""Server-side COSEM objects (IEC 62056-6-2 §4): attribute storage and method dispatch.

A :class:`CosemObject` holds the Data of each attribute of one instance of an
interface class from :mod:`dlms14908.cosem.classes`.  A server (the meter
simulator) calls :meth:`CosemObject.get`, :meth:`~CosemObject.set` and
:meth:`~CosemObject.action` with Data values and turns a raised
:class:`CosemAccessError` into the Data-Access-Result / Action-Result it
carries.  Subclasses compute attributes with ``read_<name>(now, selection)``,
intercept writes with ``write_<name>(value, now)`` and implement methods as
``do_<name>(parameter, now)``.  ``now`` is POSIX seconds passed in by the
caller (sans-I/O: no object reads the system clock).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

from dlms14908 import axdr
from dlms14908.axdr import DateTime
from dlms14908.errors import DecodeError, EncodeError, ServiceError
from dlms14908.obis import Obis
from dlms14908.xdlms.types import (
    AccessSelection,
    ActionResult,
    CaptureObjectDefinition,
    DataAccessResult,
    EntryDescriptor,
    RangeDescriptor,
)

from .classes import (
    AttributeAccess,
    ControlState,
    InterfaceClass,
    MethodAccess,
    UnknownClass,
    get_class,
)

__all__ = [
    "OBJECT_CLASSES",
    "Clock",
    "CosemAccessError",
    "CosemObject",
    "Data",
    "DisconnectControl",
    "ExtendedRegister",
    "Iso14908Diagnostic",
    "Iso14908Identification",
    "Iso14908ProtocolSetup",
    "Iso14908ProtocolStatus",
    "ProfileGeneric",
    "Register",
    "make_object",
]


class CosemAccessError(ServiceError):
    """A GET/SET/ACTION on a server object failed; ``result`` is the
    Data-Access-Result (GET/SET) or Action-Result (ACTION) to answer with."""

    def __init__(self, result: int, message: str = "") -> None:
        super().__init__(message or f"result {int(result)}")
        self.result = result


class CosemObject:
    """One COSEM object instance.  Subclasses set ``class_id`` (and ``version``)."""

    class_id: ClassVar[int | None] = None
    version: ClassVar[int | None] = None

    def __init__(
        self,
        logical_name: Any,
        *,
        class_id: int | None = None,
        version: int | None = None,
        **values: Any,
    ) -> None:
        cid = class_id if class_id is not None else type(self).class_id
        if cid is None:
            raise UnknownClass("CosemObject needs a class_id")
        self.interface: InterfaceClass = get_class(
            cid, version if version is not None else type(self).version
        )
        self.logical_name: Obis = Obis.coerce(logical_name)
        self._data: dict[int, Any] = {}
        #: access rights this object grants (the association may restrict further)
        self.attribute_access: dict[int, AttributeAccess] = {
            a.index: a.access for a in self.interface.attributes
        }
        self.method_access: dict[int, MethodAccess] = {
            m.index: m.access for m in self.interface.methods
        }
        for name, v in values.items():
            self.set_value(name, v)

    # -- local (owner-side) access: typed values ------------------------------------
    def set_value(self, key: int | str, value: Any) -> None:
        """Store an attribute from a typed or Data value (EncodeError if it does not fit)."""
        a = self.interface.attribute(key)
        if a.index == 1:
            self.logical_name = Obis.coerce(value)
            return
        self._data[a.index] = a.type.to_data(value, f"{self.interface.name}.{a.name}")

    def value(self, key: int | str) -> Any:
        """The typed value of an attribute (logical_name → Obis, scaler_unit → ScalerUnit, …)."""
        a = self.interface.attribute(key)
        if a.index == 1:
            return self.logical_name
        return a.type.to_typed(self.data(a.index), f"{self.interface.name}.{a.name}")

    def data(self, key: int | str) -> Any:
        """The stored Data of an attribute; KeyError when unset."""
        a = self.interface.attribute(key)
        if a.index == 1:
            return axdr.OctetString(bytes(self.logical_name))
        return self._data[a.index]

    def has_value(self, key: int | str) -> bool:
        a = self.interface.attribute(key)
        return a.index == 1 or a.index in self._data

    # -- protocol-facing: Data in, Data out, CosemAccessError on failure ----------
    def get(self, index: int, *, selection: Any = None, now: float | None = None) -> Any:
        """GET attribute ``index`` (optionally with selective access); returns Data."""
        interface = self.interface
        if type(index) is int and 0 < index <= len(interface.attributes):
            a = interface.attributes[index - 1]
            reader = getattr(self, interface._readers[index - 1], None)
        else:
            if not interface.has_attribute(index):
                raise CosemAccessError(DataAccessResult.OBJECT_UNDEFINED, f"no attribute {index}")
            a = interface.attribute(index)
            reader = getattr(self, f"read_{a.name}", None)
        if reader is not None:
            v = reader(now=now, selection=selection)
            return a.type.to_data(v, a.name) if not isinstance(v, axdr.Array) else v
        if selection is not None:
            raise CosemAccessError(
                DataAccessResult.OTHER_REASON, f"{a.name} has no selective access"
            )
        if index == 1:
            return axdr.OctetString(bytes(self.logical_name))
        try:
            return self._data[index]
        except KeyError:
            raise CosemAccessError(
                DataAccessResult.OBJECT_UNAVAILABLE, f"{a.name} not set"
            ) from None

    def set(
        self, index: int, value: Any, *, selection: Any = None, now: float | None = None
    ) -> None:
        """SET attribute ``index`` to the Data ``value``."""
        if not self.interface.has_attribute(index):
            raise CosemAccessError(DataAccessResult.OBJECT_UNDEFINED, f"no attribute {index}")
        if index == 1:
            raise CosemAccessError(DataAccessResult.READ_WRITE_DENIED, "logical_name is read-only")
        a = self.interface.attribute(index)
        if not a.type.check(value):
            raise CosemAccessError(DataAccessResult.TYPE_UNMATCHED, f"{a.name} must be {a.type}")
        writer = getattr(self, f"write_{a.name}", None)
        if writer is not None:
            writer(value, now=now)
            return
        self._data[index] = value

    def action(self, index: int, parameter: Any = None, *, now: float | None = None) -> Any:
        """Invoke method ``index``; returns the return Data or None."""
        if not self.interface.has_method(index):
            raise CosemAccessError(ActionResult.OBJECT_UNDEFINED, f"no method {index}")
        m = self.interface.method(index)
        if m.parameter is not None and parameter is not None and not m.parameter.check(parameter):
            raise CosemAccessError(ActionResult.TYPE_UNMATCHED, f"{m.name} takes {m.parameter}")
        handler: Callable[..., Any] | None = getattr(self, f"do_{m.name}", None)
        if handler is None:
            raise CosemAccessError(ActionResult.OBJECT_UNAVAILABLE, f"{m.name} not implemented")
        return handler(parameter, now=now)

    def can_read(self, index: int) -> bool:
        return self.attribute_access.get(index, AttributeAccess.NO_ACCESS).readable

    def can_write(self, index: int) -> bool:
        return self.attribute_access.get(index, AttributeAccess.NO_ACCESS).writable

    def can_invoke(self, index: int) -> bool:
        return self.method_access.get(index, MethodAccess.NO_ACCESS) != MethodAccess.NO_ACCESS

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.interface.name} {self.logical_name}>"


# ---------------------------------------------------------------------------
# Common classes with behaviour
# ---------------------------------------------------------------------------


class Data(CosemObject):
    """Data (class 1)."""

    class_id = 1


def _zero_like(v: Any) -> Any:
    """The zero of ``v``'s Data type (reset semantics), or None when it has none."""
    if isinstance(v, axdr._TypedInt):
        return type(v)(0)
    if isinstance(v, (axdr.Float32, axdr.Float64)):
        return type(v)(0.0)
    return None


class Register(CosemObject):
    """Register (class 3); ``reset`` zeroes the value, keeping its Data type."""

    class_id = 3

    def do_reset(self, parameter: Any, now: float | None = None) -> None:
        if 2 in self._data:
            self._data[2] = _zero_like(self._data[2])


class ExtendedRegister(Register):
    """Extended register (class 4); ``reset`` also stamps capture_time when ``now`` is known."""

    class_id = 4

    #: deviation (minutes, UTC − local) used for capture_time stamps
    deviation: int = 0

    def do_reset(self, parameter: Any, now: float | None = None) -> None:
        super().do_reset(parameter, now)
        if now is not None:
            self._data[5] = axdr.OctetString(_clock_at(now, self.deviation, 0).to_bytes())


def _clock_at(now: float, deviation: int, status: int) -> DateTime:
    tz = timezone(timedelta(minutes=-deviation))
    dt = datetime.fromtimestamp(now, tz)
    return DateTime.from_datetime(dt, status=status)


class Clock(CosemObject):
    """Clock (class 8).  ``time`` is computed from ``now`` plus an offset that SET
    of ``time`` and the adjust/shift methods move; ``time_zone`` (attribute 3) is
    the deviation in minutes (UTC − local), ``status`` (attribute 4) the clock status."""

    class_id = 8

    def __init__(self, logical_name: Any = "0-0:1.0.0.255", **values: Any) -> None:
        values.setdefault("time_zone", 0)
        values.setdefault("status", 0)
        values.setdefault("daylight_savings_enabled", False)
        values.setdefault("daylight_savings_deviation", 60)
        values.setdefault("clock_base", 1)
        super().__init__(logical_name, **values)
        #: seconds added to the caller's ``now`` to get meter time
        self.offset: float = 0.0

    def meter_time(self, now: float) -> float:
        return now + self.offset

    def read_time(self, now: float | None = None, selection: Any = None) -> Any:
        if selection is not None:
            raise CosemAccessError(DataAccessResult.OTHER_REASON, "time has no selective access")
        if now is None:
            raise CosemAccessError(DataAccessResult.TEMPORARY_FAILURE, "no time source")
        dev = int(self._data[3])
        st = int(self._data[4])
        return axdr.OctetString(_clock_at(self.meter_time(now), dev, st).to_bytes())

    def write_time(self, value: Any, now: float | None = None) -> None:
        if now is None:
            raise CosemAccessError(DataAccessResult.TEMPORARY_FAILURE, "no time source")
        try:
            dt = DateTime.from_bytes(bytes(value)) if not isinstance(value, DateTime) else value
            aware = dt.to_datetime(tz=timezone(timedelta(minutes=-int(self._data[3]))))
        except DecodeError:
            raise CosemAccessError(
                DataAccessResult.OTHER_REASON, "time must be fully specified"
            ) from None
        self.offset = aware.timestamp() - now

    def _round(self, now: float | None, step: int) -> None:
        if now is None:
            raise CosemAccessError(ActionResult.TEMPORARY_FAILURE, "no time source")
        t = self.meter_time(now)
        self.offset += round(t / step) * step - t

    def do_adjust_to_quarter(self, parameter: Any, now: float | None = None) -> None:
        self._round(now, 900)

    def do_adjust_to_minute(self, parameter: Any, now: float | None = None) -> None:
        self._round(now, 60)

    def do_shift_time(self, parameter: Any, now: float | None = None) -> None:
        if parameter is None or not -900 <= int(parameter) <= 900:
            raise CosemAccessError(ActionResult.OTHER_REASON, "shift_time takes -900..900 s")
        self.offset += int(parameter)


Resolver = Callable[[CaptureObjectDefinition, "float | None"], Any]


class ProfileGeneric(CosemObject):
    """Profile generic (class 7, version 1): FIFO buffer of captured rows with
    selective access by range (selector 1) and by entry (selector 2).

    ``resolver(capture_object, now)`` returns the Data to capture for one
    column; a server wires it to its object registry."""

    class_id = 7

    def __init__(
        self, logical_name: Any, *, resolver: Resolver | None = None, **values: Any
    ) -> None:
        values.setdefault("capture_objects", [])
        values.setdefault("capture_period", 0)
        values.setdefault("sort_method", 1)
        values.setdefault("sort_object", CaptureObjectDefinition(0, Obis(0, 0, 0, 0, 0, 0), 0, 0))
        values.setdefault("profile_entries", 1000)
        super().__init__(logical_name, **values)
        self.resolver = resolver
        self.rows: list[axdr.Structure] = []

    # attributes computed from the row store
    def read_buffer(self, now: float | None = None, selection: Any = None) -> axdr.Array:
        rows = self.rows
        cols = list(range(len(self.capture_objects)))
        if selection is None:
            return axdr.Array(rows)
        if isinstance(selection, EntryDescriptor):
            first = max(selection.from_entry, 1) - 1
            last = selection.to_entry or len(rows)
            rows = rows[first:last]
            c0 = max(selection.from_selected_value, 1) - 1
            c1 = selection.to_selected_value or len(cols)
            cols = cols[c0:c1]
        elif isinstance(selection, RangeDescriptor):
            rows = self._range(selection)
            if selection.selected_values:
                try:
                    cols = [self.capture_objects.index(c) for c in selection.selected_values]
                except ValueError:
                    raise CosemAccessError(
                        DataAccessResult.OTHER_REASON, "selected value not captured"
                    ) from None
        elif isinstance(selection, AccessSelection):
            raise CosemAccessError(
                DataAccessResult.OTHER_REASON, f"access selector {selection.selector}"
            )
        else:
            raise CosemAccessError(DataAccessResult.OTHER_REASON, "unknown selection")
        if len(cols) == len(self.capture_objects):
            return axdr.Array(rows)
        return axdr.Array(axdr.Structure(r[i] for i in cols) for r in rows)

    def _range(self, sel: RangeDescriptor) -> list[axdr.Structure]:
        try:
            col = self.capture_objects.index(sel.restricting_object)
        except ValueError:
            raise CosemAccessError(
                DataAccessResult.OTHER_REASON, "restricting object not captured"
            ) from None
        lo, hi = _sort_key(sel.from_value), _sort_key(sel.to_value)
        if lo is None or hi is None:
            raise CosemAccessError(DataAccessResult.OTHER_REASON, "range bounds not comparable")
        out = []
        for r in self.rows:
            k = _sort_key(r[col])
            if k is not None and lo <= k <= hi:
                out.append(r)
        return out

    def read_entries_in_use(self, now: float | None = None, selection: Any = None) -> Any:
        return axdr.DoubleLongUnsigned(len(self.rows))

    @property
    def capture_objects(self) -> list[CaptureObjectDefinition]:
        v: list[CaptureObjectDefinition] = self.value("capture_objects")
        return v

    def write_capture_objects(self, value: Any, now: float | None = None) -> None:
        self._data[3] = value
        self.rows.clear()  # changing the capture objects empties the buffer

    def append_row(self, row: axdr.Structure) -> None:
        """Store one entry, dropping the oldest beyond profile_entries (FIFO)."""
        if len(row) != len(self.capture_objects):
            raise EncodeError("row does not match capture_objects", field="buffer")
        self.rows.append(row)
        limit = int(self._data[8])
        if limit and len(self.rows) > limit:
            del self.rows[: len(self.rows) - limit]

    def capture(self, now: float | None = None) -> axdr.Structure:
        """Capture one entry through the resolver."""
        if self.resolver is None:
            raise CosemAccessError(ActionResult.OBJECT_UNAVAILABLE, "no resolver to capture from")
        row = axdr.Structure(self.resolver(c, now) for c in self.capture_objects)
        self.append_row(row)
        return row

    def do_capture(self, parameter: Any, now: float | None = None) -> None:
        self.capture(now)

    def do_reset(self, parameter: Any, now: float | None = None) -> None:
        self.rows.clear()


def _sort_key(v: Any) -> Any:
    """A comparable key for range access: date-times by UTC instant, numbers by value."""
    if isinstance(v, (bytes, DateTime)) and (isinstance(v, DateTime) or len(v) == 12):
        try:
            dt = v if isinstance(v, DateTime) else DateTime.from_bytes(bytes(v))
            return dt.to_datetime(tz=UTC).timestamp()
        except DecodeError:
            return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        f = float(v)
        return None if math.isnan(f) else f
    return None


class DisconnectControl(CosemObject):
    """Disconnect control (class 70).

    State transitions (control_mode table of IEC 62056-6-2 §4.5.8, as reproduced
    in public code, e.g. Gurux ``ControlMode``): remote_disconnect → disconnected
    from any state (transitions b, c; modes 1–6); remote_reconnect →
    ready_for_reconnection in modes 2 and 4 (transition a; a local
    :meth:`manual_reconnect`, transition e, then connects), directly connected
    in modes 1, 3, 5 and 6 (transition d).  Mode 0: always connected, methods
    are accepted and do nothing.  [I] remote_reconnect from
    ready_for_reconnection in modes 1, 3, 5, 6 also connects."""

    class_id = 70

    def __init__(self, logical_name: Any = "0-0:96.3.10.255", **values: Any) -> None:
        values.setdefault("output_state", True)
        values.setdefault("control_state", ControlState.CONNECTED)
        values.setdefault("control_mode", 1)
        super().__init__(logical_name, **values)

    @property
    def state(self) -> ControlState:
        return ControlState(int(self._data[3]))

    def _set_state(self, s: ControlState) -> None:
        self._data[3] = axdr.Enum(s)
        self._data[2] = s is ControlState.CONNECTED

    def do_remote_disconnect(self, parameter: Any, now: float | None = None) -> None:
        if int(self._data[4]) == 0:
            return
        self._set_state(ControlState.DISCONNECTED)

    def do_remote_reconnect(self, parameter: Any, now: float | None = None) -> None:
        mode = int(self._data[4])
        if mode == 0 or self.state is ControlState.CONNECTED:
            return
        if mode in (2, 4) and self.state is ControlState.DISCONNECTED:
            self._set_state(ControlState.READY_FOR_RECONNECTION)
        else:
            self._set_state(ControlState.CONNECTED)

    def manual_reconnect(self) -> None:
        """The customer presses the button (local, not an xDLMS method)."""
        if self.state is ControlState.READY_FOR_RECONNECTION:
            self._set_state(ControlState.CONNECTED)


class Iso14908Identification(CosemObject):
    """ISO/IEC 14908 identification (class 130, IEC 62056-8-8 Annex B), OBIS 0-b:32.0.0.255."""

    class_id = 130

    def __init__(self, logical_name: Any = "0-0:32.0.0.255", **values: Any) -> None:
        super().__init__(logical_name, **values)


class Iso14908ProtocolSetup(CosemObject):
    """ISO/IEC 14908 protocol setup (class 131), OBIS 0-b:32.1.0.255."""

    class_id = 131

    def __init__(self, logical_name: Any = "0-0:32.1.0.255", **values: Any) -> None:
        super().__init__(logical_name, **values)


class _Counters(CosemObject):
    """Objects whose dynamic attributes are all counters, starting at zero."""

    def __init__(self, logical_name: Any, **values: Any) -> None:
        super().__init__(logical_name, **values)
        for a in self.interface.attributes[1:]:
            if a.index not in self._data:
                self._data[a.index] = a.type.default()

    def increment(self, key: int | str, by: int = 1) -> None:
        """Add to a counter, wrapping at its width (counters are modular)."""
        a = self.interface.attribute(key)
        v = self._data[a.index]
        cls = type(v)
        self._data[a.index] = cls((int(v) + by) % (cls.MAX + 1))


class Iso14908ProtocolStatus(_Counters):
    """ISO/IEC 14908 protocol status (class 132), OBIS 0-b:32.2.0.255; version 0 has no reset."""

    class_id = 132

    def __init__(self, logical_name: Any = "0-0:32.2.0.255", **values: Any) -> None:
        super().__init__(logical_name, **values)


class Iso14908Diagnostic(_Counters):
    """ISO/IEC 14908 diagnostic (class 133), OBIS 0-b:32.3.0.255; version 0 has no reset."""

    class_id = 133

    def __init__(self, logical_name: Any = "0-0:32.3.0.255", **values: Any) -> None:
        super().__init__(logical_name, **values)


#: class_id -> the object class with behaviour (others use CosemObject)
OBJECT_CLASSES: dict[int, type[CosemObject]] = {
    c.class_id: c
    for c in (
        Data,
        Register,
        ExtendedRegister,
        Clock,
        ProfileGeneric,
        DisconnectControl,
        Iso14908Identification,
        Iso14908ProtocolSetup,
        Iso14908ProtocolStatus,
        Iso14908Diagnostic,
    )
}


def make_object(class_id: int, logical_name: Any, **values: Any) -> CosemObject:
    """An object of ``class_id``: its behaviour class if any, else a plain CosemObject."""
    cls = OBJECT_CLASSES.get(class_id)
    if cls is not None:
        return cls(logical_name, **values)
    return CosemObject(logical_name, class_id=class_id, **values)
