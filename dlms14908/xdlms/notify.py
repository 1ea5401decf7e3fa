"""Unsolicited and exception APDUs: DataNotification [15], EVENT-NOTIFICATION-Request
[194], EXCEPTION-Response [216] (Green Book §9.5).

Date-time encodings: DataNotification's date-time is an OCTET STRING (length 0 =
absent, 12 = COSEM date-time).  EventNotification's ``time`` is OPTIONAL; on the
wire the present form is accepted both with a length byte (``01 0C`` + 12 bytes,
as gurux-dlms writes it) and without (``01`` + 12 bytes, the fixed-size A-XDR form);
we encode the length-prefixed form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import axdr
from ..errors import DecodeError, EncodeError
from . import _base as b
from ._base import DATA, Apdu, register
from .types import (
    AttributeDescriptor,
    ServiceErrorCode,
    StateError,
    dec_attribute,
)

__all__ = ["DataNotification", "EventNotificationRequest", "ExceptionResponse",
           "LongInvokeIdAndPriority"]


class LongInvokeIdAndPriority:
    """Helpers for Long-Invoke-Id-And-Priority (bits 0-23 id, 28 self-descriptive,
    29 processing-option break-on-error, 30 confirmed, 31 high priority)."""

    @staticmethod
    def make(invoke_id: int, *, self_descriptive: bool = False, break_on_error: bool = False,
             confirmed: bool = False, high_priority: bool = False) -> int:
        if not 0 <= invoke_id <= 0xFFFFFF:
            raise EncodeError("long invoke-id must be 0..2**24-1", field="invoke_id")
        return (invoke_id | (self_descriptive << 28) | (break_on_error << 29)
                | (confirmed << 30) | (high_priority << 31))


def _dt_from(raw: bytes, field: str, offset: int) -> Any:
    try:
        return axdr.DateTime.from_bytes(bytes(raw))
    except DecodeError as exc:
        raise DecodeError(b._strip(str(exc)), field=field, offset=offset) from None
    except (ValueError, IndexError, TypeError) as exc:
        raise DecodeError(f"bad date-time ({type(exc).__name__})", field=field,
                          offset=offset) from None


def _dt_bytes(dt: Any, field: str) -> bytes:
    if not isinstance(dt, axdr.DateTime):
        raise EncodeError("must be an axdr.DateTime or None", field=field)
    raw = dt.to_bytes()
    if len(raw) != 12:
        raise EncodeError("date-time must encode to 12 bytes", field=field)
    return raw


@dataclass(frozen=True, slots=True)
class DataNotification(Apdu):
    """DataNotification [15]."""

    long_invoke_id_and_priority: int
    body: Any = field(metadata=DATA)
    date_time: Any = None
    TAG = 0x0F
    NAME = "data-notification"

    @property
    def invoke_id(self) -> int:
        return self.long_invoke_id_and_priority & 0xFFFFFF

    @property
    def self_descriptive(self) -> bool:
        return bool(self.long_invoke_id_and_priority & (1 << 28))

    @property
    def break_on_error(self) -> bool:
        return bool(self.long_invoke_id_and_priority & (1 << 29))

    @property
    def confirmed(self) -> bool:
        return bool(self.long_invoke_id_and_priority & (1 << 30))

    @property
    def high_priority(self) -> bool:
        return bool(self.long_invoke_id_and_priority & (1 << 31))

    def to_bytes(self) -> bytes:
        out = b"\x0F" + b.pack_u32(b.check_u32(self.long_invoke_id_and_priority,
                                                "long_invoke_id_and_priority"))
        out += b"\x00" if self.date_time is None else (
            b"\x0C" + _dt_bytes(self.date_time, "date_time"))
        return out + b.enc_data(self.body, "body")


@register(0x0F)
def _dec_data_notification(buf: bytes) -> DataNotification:
    liid = b.u32(buf, 1, "long_invoke_id_and_priority")
    raw, pos = b.octets(buf, 5, "date_time")
    dt = None
    if raw:
        if len(raw) != 12:
            raise DecodeError(f"date-time must be 0 or 12 bytes, got {len(raw)}",
                              field="date_time", offset=5)
        dt = _dt_from(raw, "date_time", 6)
    body, pos = b.data(buf, pos, "body")
    b.end(buf, pos, "data_notification")
    return DataNotification(liid, body, dt)


@dataclass(frozen=True, slots=True)
class EventNotificationRequest(Apdu):
    """EVENT-NOTIFICATION-Request [194]."""

    attribute: AttributeDescriptor
    value: Any = field(metadata=DATA)
    time: Any = None
    TAG = 0xC2
    NAME = "event-notification-request"

    def to_bytes(self) -> bytes:
        if not isinstance(self.attribute, AttributeDescriptor):
            raise EncodeError("must be an AttributeDescriptor", field="attribute")
        t = b"\x00" if self.time is None else b"\x01\x0C" + _dt_bytes(self.time, "time")
        return b"\xC2" + t + self.attribute.to_bytes() + b.enc_data(self.value, "value")


@register(0xC2)
def _dec_event_notification(buf: bytes) -> EventNotificationRequest:
    flag = b.u8(buf, 1, "time")
    t = None
    pos = 2
    if flag == 1:
        # length-prefixed (0x0C) form, else fixed 12 bytes; a year's high byte is never 0x0C
        # in a valid date-time followed by a 9-byte descriptor and Data
        if b.u8(buf, 2, "time") == 0x0C:
            pos = 3
        b.need(buf, pos, 12, "time")
        t = _dt_from(buf[pos:pos + 12], "time", pos)
        pos += 12
    elif flag != 0:
        raise DecodeError(f"OPTIONAL flag must be 0 or 1, got 0x{flag:02X}", field="time", offset=1)
    attr, pos = dec_attribute(buf, pos, "attribute")
    value, pos = b.data(buf, pos, "value")
    b.end(buf, pos, "event_notification_request")
    return EventNotificationRequest(attr, value, t)


@dataclass(frozen=True, slots=True)
class ExceptionResponse(Apdu):
    """EXCEPTION-Response [216]; ``invocation_counter`` accompanies
    service-error invocation-counter-error (6)."""

    state_error: StateError
    service_error: ServiceErrorCode
    invocation_counter: int | None = None
    TAG = 0xD8
    NAME = "exception-response"

    def to_bytes(self) -> bytes:
        out = bytes((0xD8, b.check_u8(self.state_error, "state_error"),
                     b.check_u8(self.service_error, "service_error")))
        if self.service_error == ServiceErrorCode.INVOCATION_COUNTER_ERROR:
            if self.invocation_counter is None:
                raise EncodeError("invocation-counter-error needs the counter",
                                  field="invocation_counter")
            return out + b.pack_u32(b.check_u32(self.invocation_counter, "invocation_counter"))
        if self.invocation_counter is not None:
            raise EncodeError("only invocation-counter-error carries a counter",
                              field="invocation_counter")
        return out


@register(0xD8)
def _dec_exception_response(buf: bytes) -> ExceptionResponse:
    b.need(buf, 1, 2, "exception_response")
    state = StateError(buf[1])
    service = ServiceErrorCode(buf[2])
    if buf[2] == ServiceErrorCode.INVOCATION_COUNTER_ERROR:
        ic = b.u32(buf, 3, "invocation_counter")
        b.end(buf, 7, "exception_response")
        return ExceptionResponse(state, service, ic)
    b.end(buf, 3, "exception_response")
    return ExceptionResponse(state, service)
