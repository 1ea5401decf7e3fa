"""COSEM interface classes (IEC 62056-6-2 §4; IEC 62056-8-8 Annex B classes 130–133).

Client side: :func:`decode_attribute` turns the Data of an attribute into a
typed value (logical names → :class:`~dlms14908.obis.Obis`, scaler_unit →
:class:`ScalerUnit`, capture_objects → list of :class:`CaptureObjectDefinition`,
clock octet-strings → :class:`~dlms14908.axdr.DateTime`, named structures →
frozen records); :func:`decode_buffer` types a profile generic buffer against
its capture objects.  Server side: :class:`CosemObject` and its subclasses.
"""

from __future__ import annotations

from typing import Any

from .classes import (
    CLASSES,
    AssociationStatus,
    AttributeAccess,
    AttributeDef,
    ClockBase,
    ControlMode,
    ControlState,
    ImageTransferStatus,
    InterfaceClass,
    MessageType,
    MethodAccess,
    MethodDef,
    ScriptService,
    SecurityPolicy,
    SecuritySuite,
    SingleActionType,
    SortMethod,
    TransportService,
    UnknownClass,
    class_ids,
    get_class,
)
from .objects import (
    OBJECT_CLASSES,
    Clock,
    CosemAccessError,
    CosemObject,
    Data,
    DisconnectControl,
    ExtendedRegister,
    Iso14908Diagnostic,
    Iso14908Identification,
    Iso14908ProtocolSetup,
    Iso14908ProtocolStatus,
    ProfileGeneric,
    Register,
    make_object,
)
from .profile import ProfileBuffer, advance_clock, decode_buffer, is_clock_column
from .types import (
    AnyData,
    ArrayOf,
    CaptureObjectDefinition,
    DateSpec,
    DateTimeSpec,
    Leaf,
    ObisSpec,
    ScalerUnit,
    Spec,
    Struct,
    TimeSpec,
)
from .units import Unit

__all__ = [
    "CLASSES",
    "OBJECT_CLASSES",
    "AnyData",
    "ArrayOf",
    "AssociationStatus",
    "AttributeAccess",
    "AttributeDef",
    "CaptureObjectDefinition",
    "Clock",
    "ClockBase",
    "ControlMode",
    "ControlState",
    "CosemAccessError",
    "CosemObject",
    "Data",
    "DateSpec",
    "DateTimeSpec",
    "DisconnectControl",
    "ExtendedRegister",
    "ImageTransferStatus",
    "InterfaceClass",
    "Iso14908Diagnostic",
    "Iso14908Identification",
    "Iso14908ProtocolSetup",
    "Iso14908ProtocolStatus",
    "Leaf",
    "MessageType",
    "MethodAccess",
    "MethodDef",
    "ObisSpec",
    "ProfileBuffer",
    "ProfileGeneric",
    "Register",
    "ScalerUnit",
    "ScriptService",
    "SecurityPolicy",
    "SecuritySuite",
    "SingleActionType",
    "SortMethod",
    "Spec",
    "Struct",
    "TimeSpec",
    "TransportService",
    "Unit",
    "UnknownClass",
    "advance_clock",
    "class_ids",
    "decode_attribute",
    "decode_buffer",
    "decode_parameter",
    "encode_attribute",
    "encode_parameter",
    "get_class",
    "is_clock_column",
    "make_object",
]


def decode_attribute(
    class_id: int, attribute: int | str, value: Any, *, version: int | None = None
) -> Any:
    """Typed value of attribute ``attribute`` of ``class_id`` from its Data ``value``.

    An unmodelled class or attribute index returns ``value`` unchanged; a
    modelled attribute whose Data has another shape raises DecodeError naming
    ``<class>.<attribute>``."""
    try:
        ic = get_class(class_id, version)
        a = ic.attribute(attribute)
    except UnknownClass:
        if isinstance(attribute, str):
            raise
        return value
    return a.type.to_typed(value, f"{ic.name}.{a.name}")


def encode_attribute(
    class_id: int, attribute: int | str, typed: Any, *, version: int | None = None
) -> Any:
    """The Data for a typed attribute value (inverse of :func:`decode_attribute`)."""
    ic = get_class(class_id, version)
    a = ic.attribute(attribute)
    return a.type.to_data(typed, f"{ic.name}.{a.name}")


def decode_parameter(
    class_id: int, method: int | str, value: Any, *, version: int | None = None
) -> Any:
    """Typed method parameter from Data (unchanged for unmodelled/untyped methods)."""
    try:
        ic = get_class(class_id, version)
        m = ic.method(method)
    except UnknownClass:
        if isinstance(method, str):
            raise
        return value
    if m.parameter is None:
        return value
    return m.parameter.to_typed(value, f"{ic.name}.{m.name}")


def encode_parameter(
    class_id: int, method: int | str, typed: Any, *, version: int | None = None
) -> Any:
    """Data for a typed method parameter."""
    ic = get_class(class_id, version)
    m = ic.method(method)
    if m.parameter is None:
        return typed
    return m.parameter.to_data(typed, f"{ic.name}.{m.name}")
