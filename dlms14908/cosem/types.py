"""Attribute and method-parameter types of the COSEM interface classes (IEC 62056-6-2 §4).

A small type language describes each attribute's A-XDR shape (:class:`Leaf`,
:class:`ObisSpec`, :class:`DateTimeSpec`, :class:`ArrayOf`, :class:`Struct`,
:class:`AnyData`).  Each spec checks a decoded ``Data`` value, turns it into a
typed Python value (``to_typed``: logical names become :class:`Obis`, clock
octet-strings :class:`DateTime`, named structures frozen records such as
:class:`ScalerUnit`) and back (``to_data``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, make_dataclass
from datetime import datetime
from typing import Any, ClassVar

from dlms14908 import axdr
from dlms14908.axdr import DataType
from dlms14908.errors import DecodeError, EncodeError
from dlms14908.obis import Obis
from dlms14908.xdlms.types import CaptureObjectDefinition

from .units import Unit

__all__ = [
    "CAPTURE_OBJECT",
    "SCALER_UNIT",
    "AnyData",
    "ArrayOf",
    "CaptureObjectDefinition",
    "DateSpec",
    "DateTimeSpec",
    "Leaf",
    "ObisSpec",
    "ScalerUnit",
    "Spec",
    "Struct",
    "TimeSpec",
]

_INT_CLS: dict[DataType, type] = {
    DataType.INTEGER: axdr.Integer,
    DataType.LONG: axdr.Long,
    DataType.UNSIGNED: axdr.Unsigned,
    DataType.LONG_UNSIGNED: axdr.LongUnsigned,
    DataType.DOUBLE_LONG: axdr.DoubleLong,
    DataType.DOUBLE_LONG_UNSIGNED: axdr.DoubleLongUnsigned,
    DataType.LONG64: axdr.Long64,
    DataType.LONG64_UNSIGNED: axdr.Long64Unsigned,
    DataType.ENUM: axdr.Enum,
    DataType.BCD: axdr.Bcd,
}


def _dt(v: Any) -> DataType | None:
    try:
        return axdr.data_type_of(v)
    except EncodeError:
        return None


#: the axdr classes whose values are Data of their own type (data_type_of reads their TAG)
_TAGGED = frozenset(c for c in vars(axdr).values()
                    if isinstance(c, type) and isinstance(getattr(c, "TAG", None), DataType))


class Spec:
    """Base of the type specs.  ``field`` arguments name the attribute in errors."""

    def check(self, v: Any) -> bool:
        """True when the Data value ``v`` has this shape."""
        raise NotImplementedError

    def to_typed(self, v: Any, field: str = "value") -> Any:
        """Typed Python value for the Data ``v``; DecodeError when ``v`` has another shape."""
        if not self.check(v):
            raise DecodeError(f"expected {self}, got {_describe(v)}", field=field)
        return v

    def to_data(self, x: Any, field: str = "value") -> Any:
        """The Data value for a typed (or already Data) value; EncodeError when impossible."""
        if self.check(x):
            return x
        raise EncodeError(f"expected {self}, got {_describe(x)}", field=field)

    def default(self) -> Any:
        """A neutral Data value of this type (zero, empty)."""
        return None


def _describe(v: Any) -> str:
    t = _dt(v)
    return axdr.TYPE_NAMES[t] if t is not None else type(v).__name__


@dataclass(frozen=True)
class Leaf(Spec):
    """One simple Data type; ``size`` fixes an octet-string length, ``enum`` names enum values."""

    tag: DataType
    size: int | None = None
    enum: type[enum.IntEnum] | None = None

    def check(self, v: Any) -> bool:
        if _dt(v) is not self.tag:
            return False
        return self.size is None or len(v) == self.size

    def to_typed(self, v: Any, field: str = "value") -> Any:
        v = Spec.to_typed(self, v, field)
        if self.enum is not None:
            try:
                return self.enum(int(v))
            except ValueError:
                return v
        return v

    def to_data(self, x: Any, field: str = "value") -> Any:
        t = self.tag
        if self.check(x) and not isinstance(x, enum.Enum):
            return x
        try:
            if t in _INT_CLS and isinstance(x, int) and not isinstance(x, bool):
                return _INT_CLS[t](int(x))
            if t is DataType.BOOLEAN and isinstance(x, bool):
                return x
            if t is DataType.OCTET_STRING and isinstance(x, (bytes, bytearray, memoryview)):
                v = axdr.OctetString(bytes(x))
            elif t is DataType.VISIBLE_STRING and isinstance(x, str):
                v = axdr.VisibleString(x)
            elif t is DataType.UTF8_STRING and isinstance(x, str):
                v = axdr.Utf8String(x)
            elif t is DataType.FLOAT32 and isinstance(x, (int, float)):
                v = axdr.Float32(x)
            elif t is DataType.FLOAT64 and isinstance(x, (int, float)):
                v = axdr.Float64(x)
            elif t is DataType.BIT_STRING and isinstance(x, str):
                v = axdr.BitString(x)
            else:
                v = None
        except EncodeError as e:
            raise EncodeError(str(e), field=field) from None
        if v is not None and self.check(v):
            return v
        return Spec.to_data(self, x, field)

    def default(self) -> Any:
        t = self.tag
        if t in _INT_CLS:
            return _INT_CLS[t](0)
        if t is DataType.BOOLEAN:
            return False
        if t is DataType.OCTET_STRING:
            return axdr.OctetString(bytes(self.size or 0))
        if t is DataType.VISIBLE_STRING:
            return axdr.VisibleString("")
        if t is DataType.UTF8_STRING:
            return axdr.Utf8String("")
        if t is DataType.BIT_STRING:
            return axdr.BitString("")
        if t is DataType.FLOAT32:
            return axdr.Float32(0)
        if t is DataType.FLOAT64:
            return axdr.Float64(0)
        return None

    def __str__(self) -> str:
        s = axdr.TYPE_NAMES[self.tag]
        return f"{s}({self.size})" if self.size is not None else s


@dataclass(frozen=True)
class AnyData(Spec):
    """CHOICE of any Data (e.g. a register value)."""

    def check(self, v: Any) -> bool:
        return _dt(v) is not None

    def to_data(self, x: Any, field: str = "value") -> Any:
        if type(x) in _TAGGED:  # a typed Data value: nothing to convert (register reads)
            return x
        return Spec.to_data(self, x, field)

    def __str__(self) -> str:
        return "CHOICE"


@dataclass(frozen=True)
class ObisSpec(Spec):
    """A logical name: octet-string(6), typed as :class:`Obis`."""

    def check(self, v: Any) -> bool:
        return _dt(v) is DataType.OCTET_STRING and len(v) == 6

    def to_typed(self, v: Any, field: str = "value") -> Obis:
        Spec.to_typed(self, v, field)
        return Obis.from_bytes(bytes(v))

    def to_data(self, x: Any, field: str = "value") -> Any:
        if self.check(x):
            return axdr.OctetString(bytes(x))
        try:
            return axdr.OctetString(bytes(Obis.coerce(x)))
        except (DecodeError, EncodeError):
            raise EncodeError(f"not a logical name: {x!r}", field=field) from None

    def default(self) -> Any:
        return axdr.OctetString(bytes(6))

    def __str__(self) -> str:
        return "octet-string(6) logical_name"


@dataclass(frozen=True)
class _DateLike(Spec):
    size: ClassVar[int]
    cls: ClassVar[Any]
    label: ClassVar[str]

    def check(self, v: Any) -> bool:
        t = _dt(v)
        return (t is DataType.OCTET_STRING and len(v) == self.size) or t is self.cls.TAG

    def to_typed(self, v: Any, field: str = "value") -> Any:
        Spec.to_typed(self, v, field)
        if isinstance(v, self.cls):
            return v
        try:
            return self.cls.from_bytes(bytes(v))
        except DecodeError as e:
            raise DecodeError(str(e).split(": ", 1)[-1], field=f"{field}.{e.field}") from None

    def to_data(self, x: Any, field: str = "value") -> Any:
        if isinstance(x, self.cls):
            return axdr.OctetString(x.to_bytes())
        if self.check(x):
            return x
        return self._convert(x, field)

    def _convert(self, x: Any, field: str) -> Any:
        return Spec.to_data(self, x, field)

    def default(self) -> Any:
        return axdr.OctetString(b"\xff" * self.size)

    def __str__(self) -> str:
        return f"octet-string({self.size}) {self.label}"


@dataclass(frozen=True)
class DateTimeSpec(_DateLike):
    """octet-string(12) holding a COSEM date-time, typed as :class:`axdr.DateTime`."""

    size: ClassVar[int] = 12
    cls: ClassVar[Any] = axdr.DateTime
    label: ClassVar[str] = "date-time"

    def _convert(self, x: Any, field: str) -> Any:
        if isinstance(x, datetime):
            try:
                return axdr.OctetString(axdr.DateTime.from_datetime(x).to_bytes())
            except EncodeError as e:
                raise EncodeError(str(e), field=field) from None
        return Spec.to_data(self, x, field)

    def default(self) -> Any:
        return axdr.OctetString(axdr.DateTime().to_bytes())


@dataclass(frozen=True)
class DateSpec(_DateLike):
    """octet-string(5) holding a COSEM date."""

    size: ClassVar[int] = 5
    cls: ClassVar[Any] = axdr.Date
    label: ClassVar[str] = "date"


@dataclass(frozen=True)
class TimeSpec(_DateLike):
    """octet-string(4) holding a COSEM time."""

    size: ClassVar[int] = 4
    cls: ClassVar[Any] = axdr.Time
    label: ClassVar[str] = "time"


@dataclass(frozen=True)
class ArrayOf(Spec):
    """array of one element spec; typed as a list."""

    element: Spec

    def check(self, v: Any) -> bool:
        return type(v) is axdr.Array and all(self.element.check(x) for x in v)

    def to_typed(self, v: Any, field: str = "value") -> list[Any]:
        if type(v) is not axdr.Array:
            raise DecodeError(f"expected array, got {_describe(v)}", field=field)
        conv = self.element.to_typed
        return [conv(x, f"{field}[{i}]") for i, x in enumerate(v)]

    def to_data(self, x: Any, field: str = "value") -> Any:
        if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
            raise EncodeError(f"expected a sequence for {self}", field=field)
        conv = self.element.to_data
        return axdr.Array(conv(e, f"{field}[{i}]") for i, e in enumerate(x))

    def default(self) -> Any:
        return axdr.Array()

    def __str__(self) -> str:
        return f"array of {self.element}"


class Struct(Spec):
    """A structure with named members, typed as a frozen record class.

    ``cls`` may be given (it must accept the typed members positionally and
    expose them as attributes of the same names); otherwise a frozen
    dataclass named ``name`` is generated."""

    def __init__(
        self, name: str, members: Sequence[tuple[str, Spec]], cls: type | None = None
    ) -> None:
        self.name = name
        self.members = tuple(members)
        if cls is None:
            cls = make_dataclass(name, [(n, Any) for n, _ in members], frozen=True, slots=True)
            cls.__module__ = "dlms14908.cosem"
        self.cls = cls

    def check(self, v: Any) -> bool:
        return (
            type(v) is axdr.Structure
            and len(v) == len(self.members)
            and all(s.check(x) for (_, s), x in zip(self.members, v))
        )

    def to_typed(self, v: Any, field: str = "value") -> Any:
        if type(v) is not axdr.Structure or len(v) != len(self.members):
            raise DecodeError(f"expected {self}, got {_describe(v)}", field=field)
        return self.cls(*[s.to_typed(x, f"{field}.{n}") for (n, s), x in zip(self.members, v)])

    def to_data(self, x: Any, field: str = "value") -> Any:
        if isinstance(x, self.cls):
            vals = [getattr(x, n) for n, _ in self.members]
        elif isinstance(x, dict):
            try:
                vals = [x[n] for n, _ in self.members]
            except KeyError as e:
                raise EncodeError(f"missing member {e}", field=field) from None
        elif isinstance(x, (list, tuple)) and len(x) == len(self.members):
            vals = list(x)
        else:
            raise EncodeError(f"expected {self.name}, got {type(x).__name__}", field=field)
        return axdr.Structure(
            s.to_data(val, f"{field}.{n}") for (n, s), val in zip(self.members, vals)
        )

    def default(self) -> Any:
        return axdr.Structure(s.default() for _, s in self.members)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Struct) and (self.name, self.members) == (
            other.name,
            other.members,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.members))

    def __str__(self) -> str:
        return f"{self.name}{{" + ", ".join(f"{n}: {s}" for n, s in self.members) + "}"

    def __repr__(self) -> str:
        return f"Struct({self.name!r})"


# ---------------------------------------------------------------------------
# Typed records with behaviour
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScalerUnit:
    """scal_unit_type: value × 10**scaler in ``unit``."""

    scaler: int
    unit: Unit | int

    def apply(self, raw: float) -> float:
        """The physical value of a raw register value."""
        v: float = raw * 10**self.scaler if self.scaler >= 0 else raw / 10 ** (-self.scaler)
        return v

    def __str__(self) -> str:
        u = self.unit.symbol if isinstance(self.unit, Unit) else f"unit {self.unit}"
        return f"10^{self.scaler} {u}".rstrip()


class _ScalerUnitSpec(Struct):
    def __init__(self) -> None:
        super().__init__(
            "ScalerUnit",
            [("scaler", Leaf(DataType.INTEGER)), ("unit", Leaf(DataType.ENUM))],
            ScalerUnit,
        )

    def to_typed(self, v: Any, field: str = "value") -> ScalerUnit:
        if not self.check(v):
            raise DecodeError(f"expected scal_unit_type, got {_describe(v)}", field=field)
        return ScalerUnit(int(v[0]), Unit.lenient(int(v[1])))

    def to_data(self, x: Any, field: str = "value") -> Any:
        if isinstance(x, ScalerUnit):
            try:
                return axdr.Structure([axdr.Integer(x.scaler), axdr.Enum(int(x.unit))])
            except EncodeError as e:
                raise EncodeError(str(e), field=field) from None
        return super().to_data(x, field)


class _CaptureObjectSpec(Struct):
    def __init__(self) -> None:
        super().__init__(
            "CaptureObjectDefinition",
            [
                ("class_id", Leaf(DataType.LONG_UNSIGNED)),
                ("logical_name", ObisSpec()),
                ("attribute_index", Leaf(DataType.INTEGER)),
                ("data_index", Leaf(DataType.LONG_UNSIGNED)),
            ],
            CaptureObjectDefinition,
        )

    def to_typed(self, v: Any, field: str = "value") -> CaptureObjectDefinition:
        c = CaptureObjectDefinition.from_data(v)
        if c is None:
            raise DecodeError(
                f"expected capture_object_definition, got {_describe(v)}", field=field
            )
        return c

    def to_data(self, x: Any, field: str = "value") -> Any:
        if isinstance(x, CaptureObjectDefinition):
            try:
                return x.to_data()
            except (EncodeError, DecodeError) as e:
                raise EncodeError(str(e), field=field) from None
        return super().to_data(x, field)


SCALER_UNIT: Struct = _ScalerUnitSpec()
CAPTURE_OBJECT: Struct = _CaptureObjectSpec()


def record_fields(rec: Any) -> dict[str, Any]:
    """The members of a typed record as a dict."""
    return {f.name: getattr(rec, f.name) for f in fields(rec)}


Converter = Callable[[Any], Any]
