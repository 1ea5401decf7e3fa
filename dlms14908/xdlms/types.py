"""Common xDLMS building blocks: result enums, COSEM descriptors, selective access.

IEC 62056-5-3 / Green Book §9.5 (Cosem-Attribute-Descriptor, Cosem-Method-Descriptor,
Selective-Access-Descriptor, Data-Access-Result, Action-Result) and IEC 62056-6-2
(profile generic range_descriptor / entry_descriptor, access selectors 1 and 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import axdr
from ..errors import DecodeError, EncodeError
from ..obis import Obis
from . import _base as b
from ._base import LenientIntEnum

__all__ = [
    "AccessSelection",
    "AccessSelector",
    "ActionResult",
    "AttributeDescriptor",
    "AttributeDescriptorWithSelection",
    "CaptureObjectDefinition",
    "DataAccessResult",
    "EntryDescriptor",
    "InvokeIdAndPriority",
    "MethodDescriptor",
    "RangeDescriptor",
    "ServiceErrorCode",
    "StateError",
]


class DataAccessResult(LenientIntEnum):
    """Data-Access-Result (Green Book §9.5)."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    LONG_SET_ABORTED = 17
    NO_LONG_SET_IN_PROGRESS = 18
    DATA_BLOCK_NUMBER_INVALID = 19
    OTHER_REASON = 250


class ActionResult(LenientIntEnum):
    """Action-Result (Green Book §9.5)."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_ACTION_ABORTED = 15
    NO_LONG_ACTION_IN_PROGRESS = 16
    OTHER_REASON = 250


class StateError(LenientIntEnum):
    """EXCEPTION-Response state-error."""

    SERVICE_NOT_ALLOWED = 1
    SERVICE_UNKNOWN = 2


class ServiceErrorCode(LenientIntEnum):
    """EXCEPTION-Response service-error (6 carries an invocation counter)."""

    OPERATION_NOT_POSSIBLE = 1
    SERVICE_NOT_SUPPORTED = 2
    OTHER_REASON = 3
    PDU_TOO_LONG = 4
    DECIPHERING_ERROR = 5
    INVOCATION_COUNTER_ERROR = 6


# lookup tables: the decoder hot path avoids Enum.__call__
DAR = tuple(DataAccessResult(i) for i in range(256))
ACR = tuple(ActionResult(i) for i in range(256))


class InvokeIdAndPriority:
    """Helpers for the Invoke-Id-And-Priority byte (bits 0-3 id, 6 confirmed, 7 high priority)."""

    @staticmethod
    def make(invoke_id: int = 1, *, confirmed: bool = True, high_priority: bool = True) -> int:
        if not 0 <= invoke_id <= 15:
            raise EncodeError("invoke-id must be 0..15", field="invoke_id")
        return invoke_id | (0x40 if confirmed else 0) | (0x80 if high_priority else 0)


class _IidMixin:
    """Properties derived from ``invoke_id_and_priority``."""

    __slots__ = ()
    invoke_id_and_priority: int

    @property
    def invoke_id(self) -> int:
        return self.invoke_id_and_priority & 0x0F

    @property
    def confirmed(self) -> bool:
        return bool(self.invoke_id_and_priority & 0x40)

    @property
    def high_priority(self) -> bool:
        return bool(self.invoke_id_and_priority & 0x80)


def _obis(v: Any, field: str) -> bytes:
    if isinstance(v, Obis):
        return bytes(v)
    raise EncodeError(f"must be an Obis, got {type(v).__name__}", field=field)


@dataclass(frozen=True, slots=True)
class AttributeDescriptor:
    """Cosem-Attribute-Descriptor: class-id, instance-id (OBIS), attribute-id."""

    class_id: int
    instance_id: Obis
    attribute_id: int

    def to_bytes(self) -> bytes:
        return (b.pack_u16(b.check_u16(self.class_id, "class_id"))
                + _obis(self.instance_id, "instance_id")
                + bytes((b.check_u8(self.attribute_id, "attribute_id"),)))


@dataclass(frozen=True, slots=True)
class MethodDescriptor:
    """Cosem-Method-Descriptor: class-id, instance-id (OBIS), method-id."""

    class_id: int
    instance_id: Obis
    method_id: int

    def to_bytes(self) -> bytes:
        return (b.pack_u16(b.check_u16(self.class_id, "class_id"))
                + _obis(self.instance_id, "instance_id")
                + bytes((b.check_u8(self.method_id, "method_id"),)))


def dec_descriptor(buf: bytes, pos: int, field: str) -> tuple[int, Obis, int, int]:
    b.need(buf, pos, 9, field)
    try:
        obis = Obis.from_bytes(buf[pos + 2:pos + 8])
    except DecodeError as exc:
        raise DecodeError(b._strip(str(exc)), field=f"{field}.instance_id", offset=pos + 2) from None
    return b.unpack_u16(buf, pos)[0], obis, buf[pos + 8], pos + 9


def dec_attribute(buf: bytes, pos: int, field: str) -> tuple[AttributeDescriptor, int]:
    c, o, a, pos = dec_descriptor(buf, pos, field)
    return AttributeDescriptor(c, o, a), pos


def dec_method(buf: bytes, pos: int, field: str) -> tuple[MethodDescriptor, int]:
    c, o, m, pos = dec_descriptor(buf, pos, field)
    return MethodDescriptor(c, o, m), pos


# --- selective access -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessSelection:
    """Selective-Access-Descriptor with an arbitrary selector and Data parameters."""

    selector: int
    parameters: Any = field(metadata=b.DATA)

    def to_bytes(self) -> bytes:
        return bytes((b.check_u8(self.selector, "access_selector"),)) + b.enc_data(
            self.parameters, "access_parameters")


@dataclass(frozen=True, slots=True)
class CaptureObjectDefinition:
    """capture_object_definition: {class_id, logical_name, attribute_index, data_index}."""

    class_id: int
    logical_name: Obis
    attribute_index: int
    data_index: int = 0

    def to_data(self) -> axdr.Structure:
        return axdr.Structure([
            axdr.LongUnsigned(self.class_id),
            axdr.OctetString(_obis(self.logical_name, "logical_name")),
            axdr.Integer(self.attribute_index),
            axdr.LongUnsigned(self.data_index),
        ])

    @classmethod
    def from_data(cls, v: Any) -> CaptureObjectDefinition | None:
        """The typed definition, or None when ``v`` does not have exactly that shape."""
        if (type(v) is axdr.Structure and len(v) == 4
                and type(v[0]) is axdr.LongUnsigned and type(v[1]) is axdr.OctetString
                and len(v[1]) == 6 and type(v[2]) is axdr.Integer
                and type(v[3]) is axdr.LongUnsigned):
            return cls(int(v[0]), Obis.from_bytes(bytes(v[1])), int(v[2]), int(v[3]))
        return None


@dataclass(frozen=True, slots=True)
class RangeDescriptor:
    """Access selector 1 (profile generic range_descriptor, IEC 62056-6-2)."""

    restricting_object: CaptureObjectDefinition
    from_value: Any = field(metadata=b.DATA)
    to_value: Any = field(metadata=b.DATA)
    selected_values: tuple[CaptureObjectDefinition, ...] = ()
    selector: ClassVar[int] = 1

    @property
    def parameters(self) -> axdr.Structure:
        return axdr.Structure([
            self.restricting_object.to_data(),
            self.from_value,
            self.to_value,
            axdr.Array([c.to_data() for c in self.selected_values]),
        ])

    def to_bytes(self) -> bytes:
        return b"\x01" + b.enc_data(self.parameters, "range_descriptor")

    @classmethod
    def from_data(cls, v: Any) -> RangeDescriptor | None:
        if type(v) is not axdr.Structure or len(v) != 4 or type(v[3]) is not axdr.Array:
            return None
        ro = CaptureObjectDefinition.from_data(v[0])
        if ro is None:
            return None
        sel = []
        for item in v[3]:
            c = CaptureObjectDefinition.from_data(item)
            if c is None:
                return None
            sel.append(c)
        return cls(ro, v[1], v[2], tuple(sel))


@dataclass(frozen=True, slots=True)
class EntryDescriptor:
    """Access selector 2 (profile generic entry_descriptor, IEC 62056-6-2).

    ``to_entry`` / ``to_selected_value`` 0 mean "up to the last"."""

    from_entry: int = 1
    to_entry: int = 0
    from_selected_value: int = 1
    to_selected_value: int = 0
    selector: ClassVar[int] = 2

    @property
    def parameters(self) -> axdr.Structure:
        return axdr.Structure([
            axdr.DoubleLongUnsigned(self.from_entry),
            axdr.DoubleLongUnsigned(self.to_entry),
            axdr.LongUnsigned(self.from_selected_value),
            axdr.LongUnsigned(self.to_selected_value),
        ])

    def to_bytes(self) -> bytes:
        return b"\x02" + b.enc_data(self.parameters, "entry_descriptor")

    @classmethod
    def from_data(cls, v: Any) -> EntryDescriptor | None:
        if (type(v) is axdr.Structure and len(v) == 4
                and type(v[0]) is axdr.DoubleLongUnsigned
                and type(v[1]) is axdr.DoubleLongUnsigned
                and type(v[2]) is axdr.LongUnsigned and type(v[3]) is axdr.LongUnsigned):
            return cls(int(v[0]), int(v[1]), int(v[2]), int(v[3]))
        return None


AccessSelector = AccessSelection | RangeDescriptor | EntryDescriptor


def make_access_selection(selector: int, params: Any) -> AccessSelector:
    """Typed descriptor when the parameters have the standard shape, else generic."""
    typed: AccessSelector | None = None
    try:
        if selector == 1:
            typed = RangeDescriptor.from_data(params)
        elif selector == 2:
            typed = EntryDescriptor.from_data(params)
    except (DecodeError, EncodeError):
        typed = None
    return typed if typed is not None else AccessSelection(selector, params)


def dec_opt_access(buf: bytes, pos: int, field: str) -> tuple[AccessSelector | None, int]:
    flag = b.u8(buf, pos, field)
    if flag == 0:
        return None, pos + 1
    if flag != 1:
        raise DecodeError(f"OPTIONAL flag must be 0 or 1, got 0x{flag:02X}", field=field, offset=pos)
    sel = b.u8(buf, pos + 1, f"{field}.access_selector")
    params, pos = b.data(buf, pos + 2, f"{field}.access_parameters")
    return make_access_selection(sel, params), pos


def enc_opt_access(sel: AccessSelector | None) -> bytes:
    if sel is None:
        return b"\x00"
    if not isinstance(sel, (AccessSelection, RangeDescriptor, EntryDescriptor)):
        raise EncodeError("must be AccessSelection, RangeDescriptor or EntryDescriptor",
                          field="access_selection")
    return b"\x01" + sel.to_bytes()


@dataclass(frozen=True, slots=True)
class AttributeDescriptorWithSelection:
    """Cosem-Attribute-Descriptor-With-Selection (used by the with-list services)."""

    attribute: AttributeDescriptor
    access_selection: AccessSelector | None = None

    def to_bytes(self) -> bytes:
        return self.attribute.to_bytes() + enc_opt_access(self.access_selection)


def dec_attribute_with_selection(buf: bytes, pos: int, field: str
                                 ) -> tuple[AttributeDescriptorWithSelection, int]:
    attr, pos = dec_attribute(buf, pos, field)
    sel, pos = dec_opt_access(buf, pos, f"{field}.access_selection")
    return AttributeDescriptorWithSelection(attr, sel), pos
