"""LN-referencing services: GET, SET, ACTION request/response (Green Book §9.5,
GET-Request [192] ... ACTION-Response [199]) including block transfer in both
directions and the with-list variants.

Block fields (DataBlock-G / DataBlock-SA) are flattened into the APDU as
``last_block``, ``block_number`` and ``raw_data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import axdr
from ..errors import DecodeError, EncodeError
from . import _base as b
from ._base import ABSENT, DATA, Absent, Apdu, register
from .types import (
    ACR,
    DAR,
    AccessSelector,
    ActionResult,
    AttributeDescriptor,
    AttributeDescriptorWithSelection,
    DataAccessResult,
    MethodDescriptor,
    _IidMixin,
    dec_attribute,
    dec_attribute_with_selection,
    dec_method,
    dec_opt_access,
    enc_opt_access,
)

__all__ = [
    "ActionRequestNextPblock",
    "ActionRequestNormal",
    "ActionRequestWithFirstPblock",
    "ActionRequestWithList",
    "ActionRequestWithListAndFirstPblock",
    "ActionRequestWithPblock",
    "ActionResponseItem",
    "ActionResponseNextPblock",
    "ActionResponseNormal",
    "ActionResponseWithList",
    "ActionResponseWithPblock",
    "GetDataResult",
    "GetRequestNext",
    "GetRequestNormal",
    "GetRequestWithList",
    "GetResponseNormal",
    "GetResponseWithDatablock",
    "GetResponseWithList",
    "SetRequestNormal",
    "SetRequestWithDatablock",
    "SetRequestWithFirstDatablock",
    "SetRequestWithList",
    "SetRequestWithListAndFirstDatablock",
    "SetResponseDatablock",
    "SetResponseLastDatablock",
    "SetResponseLastDatablockWithList",
    "SetResponseNormal",
    "SetResponseWithList",
]

#: Get-Data-Result: a Data value or a DataAccessResult
GetDataResult = Any | DataAccessResult

GET_REQUEST, SET_REQUEST, ACTION_REQUEST = 0xC0, 0xC1, 0xC3
GET_RESPONSE, SET_RESPONSE, ACTION_RESPONSE = 0xC4, 0xC5, 0xC7


def _hdr(tag: int, choice: int, iid: int) -> bytearray:
    return bytearray((tag, choice, b.check_u8(iid, "invoke_id_and_priority")))


def _block(last: bool, number: int, raw: bytes) -> bytes:
    if not isinstance(last, bool):
        raise EncodeError("must be a bool", field="last_block")
    return (b"\x01" if last else b"\x00") + b.pack_u32(b.check_u32(number, "block_number")) + \
        b.enc_octets(b.check_bytes(raw, "raw_data"))


def _dec_block(buf: bytes, pos: int) -> tuple[bool, int, bytes, int]:
    last = b.boolean(buf, pos, "last_block")
    num = b.u32(buf, pos + 1, "block_number")
    raw, pos = b.octets(buf, pos + 5, "raw_data")
    return last, num, bytes(raw), pos


def _enc_gdr(r: Any, field: str) -> bytes:
    if isinstance(r, DataAccessResult):
        return bytes((1, int(r)))
    return b"\x00" + b.enc_data(r, field)


def _dec_gdr(buf: bytes, pos: int, field: str) -> tuple[Any, int]:
    c = b.u8(buf, pos, field)
    if c == 0:
        return b.data(buf, pos + 1, f"{field}.data")
    if c == 1:
        return DAR[b.u8(buf, pos + 1, f"{field}.data_access_result")], pos + 2
    raise DecodeError(f"Get-Data-Result choice must be 0 or 1, got {c}", field=field, offset=pos)


def _enc_seq(items: Any, enc: Any, field: str) -> bytes:
    if not isinstance(items, (tuple, list)):
        raise EncodeError("must be a tuple", field=field)
    return b.enc_length(len(items)) + b"".join(enc(x) for x in items)


def _dec_seq(buf: bytes, pos: int, dec: Any, field: str) -> tuple[tuple[Any, ...], int]:
    n, pos = b.length(buf, pos, field)
    if n > len(buf) - pos:
        raise DecodeError(f"count {n} exceeds remaining bytes", field=field, offset=pos)
    out = []
    for i in range(n):
        item, pos = dec(buf, pos, f"{field}[{i}]")
        out.append(item)
    return tuple(out), pos


def _dec_dar_item(buf: bytes, pos: int, field: str) -> tuple[DataAccessResult, int]:
    return DAR[b.u8(buf, pos, field)], pos + 1


def _enc_dar(r: Any) -> bytes:
    if not isinstance(r, DataAccessResult):
        raise EncodeError("must be a DataAccessResult", field="result")
    return bytes((int(r),))


def _check_attr(a: Any) -> bytes:
    if not isinstance(a, AttributeDescriptor):
        raise EncodeError("must be an AttributeDescriptor", field="attribute")
    return a.to_bytes()


def _check_method(m: Any) -> bytes:
    if not isinstance(m, MethodDescriptor):
        raise EncodeError("must be a MethodDescriptor", field="method")
    return m.to_bytes()


def _check_aws(a: Any) -> bytes:
    if not isinstance(a, AttributeDescriptorWithSelection):
        raise EncodeError("must be an AttributeDescriptorWithSelection", field="attributes")
    return a.to_bytes()


# =========================================================================== GET


@dataclass(frozen=True, slots=True)
class GetRequestNormal(_IidMixin, Apdu):
    """Get-Request-Normal: one attribute, optional selective access."""

    invoke_id_and_priority: int
    attribute: AttributeDescriptor
    access_selection: AccessSelector | None = None
    TAG = GET_REQUEST
    NAME = "get-request-normal"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(GET_REQUEST, 1, self.invoke_id_and_priority)
                     + _check_attr(self.attribute) + enc_opt_access(self.access_selection))


@dataclass(frozen=True, slots=True)
class GetRequestNext(_IidMixin, Apdu):
    """Get-Request-Next: ask for the block after ``block_number``."""

    invoke_id_and_priority: int
    block_number: int
    TAG = GET_REQUEST
    NAME = "get-request-next"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(GET_REQUEST, 2, self.invoke_id_and_priority)
                     + b.pack_u32(b.check_u32(self.block_number, "block_number")))


@dataclass(frozen=True, slots=True)
class GetRequestWithList(_IidMixin, Apdu):
    """Get-Request-With-List."""

    invoke_id_and_priority: int
    attributes: tuple[AttributeDescriptorWithSelection, ...]
    TAG = GET_REQUEST
    NAME = "get-request-with-list"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(GET_REQUEST, 3, self.invoke_id_and_priority)
                     + _enc_seq(self.attributes, _check_aws, "attributes"))


@register(GET_REQUEST)
def _dec_get_request(buf: bytes) -> Apdu:
    choice = b.u8(buf, 1, "get_request.choice")
    iid = b.u8(buf, 2, "invoke_id_and_priority")
    if choice == 1:
        attr, pos = dec_attribute(buf, 3, "attribute")
        sel, pos = dec_opt_access(buf, pos, "access_selection")
        b.end(buf, pos, "get_request_normal")
        return GetRequestNormal(iid, attr, sel)
    if choice == 2:
        num = b.u32(buf, 3, "block_number")
        b.end(buf, 7, "get_request_next")
        return GetRequestNext(iid, num)
    if choice == 3:
        items, pos = _dec_seq(buf, 3, dec_attribute_with_selection, "attributes")
        b.end(buf, pos, "get_request_with_list")
        return GetRequestWithList(iid, items)
    raise DecodeError(f"unknown GET-Request choice {choice}", field="get_request.choice", offset=1)


@dataclass(frozen=True, slots=True)
class GetResponseNormal(_IidMixin, Apdu):
    """Get-Response-Normal: ``result`` is the Data value or a DataAccessResult."""

    invoke_id_and_priority: int
    result: GetDataResult = field(metadata=DATA)
    TAG = GET_RESPONSE
    NAME = "get-response-normal"

    @property
    def ok(self) -> bool:
        return not isinstance(self.result, DataAccessResult)

    def to_bytes(self) -> bytes:
        return bytes(_hdr(GET_RESPONSE, 1, self.invoke_id_and_priority)
                     + _enc_gdr(self.result, "result"))


@dataclass(frozen=True, slots=True)
class GetResponseWithDatablock(_IidMixin, Apdu):
    """Get-Response-With-Datablock (DataBlock-G).  ``error`` set means the
    data-access-result choice (then ``raw_data`` is empty)."""

    invoke_id_and_priority: int
    last_block: bool
    block_number: int
    raw_data: bytes = b""
    error: DataAccessResult | None = None
    TAG = GET_RESPONSE
    NAME = "get-response-with-datablock"

    def to_bytes(self) -> bytes:
        out = _hdr(GET_RESPONSE, 2, self.invoke_id_and_priority)
        if not isinstance(self.last_block, bool):
            raise EncodeError("must be a bool", field="last_block")
        out.append(1 if self.last_block else 0)
        out += b.pack_u32(b.check_u32(self.block_number, "block_number"))
        if self.error is not None:
            if self.raw_data:
                raise EncodeError("raw_data must be empty when error is set", field="raw_data")
            out += bytes((1, int(self.error)))
        else:
            out += b"\x00" + b.enc_octets(b.check_bytes(self.raw_data, "raw_data"))
        return bytes(out)


@dataclass(frozen=True, slots=True)
class GetResponseWithList(_IidMixin, Apdu):
    """Get-Response-With-List: one Get-Data-Result per requested attribute."""

    invoke_id_and_priority: int
    results: tuple[GetDataResult, ...] = field(metadata=DATA)
    TAG = GET_RESPONSE
    NAME = "get-response-with-list"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(GET_RESPONSE, 3, self.invoke_id_and_priority)
                     + _enc_seq(self.results, lambda r: _enc_gdr(r, "results"), "results"))


_new = object.__new__
_set_iid = GetResponseNormal.__dict__["invoke_id_and_priority"].__set__  # slot descriptors
_set_result = GetResponseNormal.__dict__["result"].__set__
_axdr_decode = axdr.decode


def _dec_get_response(buf: bytes) -> Apdu:
    # Hot path of bulk reads: GET-Response-Normal carrying Data.  Slot setters instead
    # of the frozen dataclass __init__ (same object, ~25% less time per APDU).
    if len(buf) > 4 and buf[1] == 1 and buf[3] == 0:
        try:
            value, pos = _axdr_decode(buf, 4)
        except DecodeError:
            value, pos = b.data(buf, 4, "result.data")  # re-raises with our field name
        if pos != len(buf):
            b.end(buf, pos, "get_response_normal")
        obj = _new(GetResponseNormal)
        _set_iid(obj, buf[2])
        _set_result(obj, value)
        return obj
    return _dec_get_response_slow(buf)


def _dec_get_response_slow(buf: bytes) -> Apdu:
    choice = b.u8(buf, 1, "get_response.choice")
    iid = b.u8(buf, 2, "invoke_id_and_priority")
    if choice == 1:
        r, pos = _dec_gdr(buf, 3, "result")
        b.end(buf, pos, "get_response_normal")
        return GetResponseNormal(iid, r)
    if choice == 2:
        last = b.boolean(buf, 3, "last_block")
        num = b.u32(buf, 4, "block_number")
        c = b.u8(buf, 8, "result")
        if c == 0:
            raw, pos = b.octets(buf, 9, "raw_data")
            b.end(buf, pos, "get_response_with_datablock")
            return GetResponseWithDatablock(iid, last, num, bytes(raw))
        if c == 1:
            err = DAR[b.u8(buf, 9, "data_access_result")]
            b.end(buf, 10, "get_response_with_datablock")
            return GetResponseWithDatablock(iid, last, num, b"", err)
        raise DecodeError(f"DataBlock-G result choice must be 0 or 1, got {c}", field="result",
                          offset=8)
    if choice == 3:
        items, pos = _dec_seq(buf, 3, _dec_gdr, "results")
        b.end(buf, pos, "get_response_with_list")
        return GetResponseWithList(iid, items)
    raise DecodeError(f"unknown GET-Response choice {choice}", field="get_response.choice", offset=1)


register(GET_RESPONSE)(_dec_get_response)


# =========================================================================== SET


@dataclass(frozen=True, slots=True)
class SetRequestNormal(_IidMixin, Apdu):
    """Set-Request-Normal."""

    invoke_id_and_priority: int
    attribute: AttributeDescriptor
    value: Any = field(metadata=DATA)
    access_selection: AccessSelector | None = None
    TAG = SET_REQUEST
    NAME = "set-request-normal"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_REQUEST, 1, self.invoke_id_and_priority)
                     + _check_attr(self.attribute) + enc_opt_access(self.access_selection)
                     + b.enc_data(self.value, "value"))


@dataclass(frozen=True, slots=True)
class SetRequestWithFirstDatablock(_IidMixin, Apdu):
    """Set-Request-With-First-Datablock (DataBlock-SA)."""

    invoke_id_and_priority: int
    attribute: AttributeDescriptor
    last_block: bool
    block_number: int
    raw_data: bytes
    access_selection: AccessSelector | None = None
    TAG = SET_REQUEST
    NAME = "set-request-with-first-datablock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_REQUEST, 2, self.invoke_id_and_priority)
                     + _check_attr(self.attribute) + enc_opt_access(self.access_selection)
                     + _block(self.last_block, self.block_number, self.raw_data))


@dataclass(frozen=True, slots=True)
class SetRequestWithDatablock(_IidMixin, Apdu):
    """Set-Request-With-Datablock: a following block."""

    invoke_id_and_priority: int
    last_block: bool
    block_number: int
    raw_data: bytes
    TAG = SET_REQUEST
    NAME = "set-request-with-datablock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_REQUEST, 3, self.invoke_id_and_priority)
                     + _block(self.last_block, self.block_number, self.raw_data))


@dataclass(frozen=True, slots=True)
class SetRequestWithList(_IidMixin, Apdu):
    """Set-Request-With-List."""

    invoke_id_and_priority: int
    attributes: tuple[AttributeDescriptorWithSelection, ...]
    values: tuple[Any, ...] = field(metadata=DATA)
    TAG = SET_REQUEST
    NAME = "set-request-with-list"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_REQUEST, 4, self.invoke_id_and_priority)
                     + _enc_seq(self.attributes, _check_aws, "attributes")
                     + _enc_seq(self.values, lambda v: b.enc_data(v, "values"), "values"))


@dataclass(frozen=True, slots=True)
class SetRequestWithListAndFirstDatablock(_IidMixin, Apdu):
    """Set-Request-With-List-And-First-Datablock."""

    invoke_id_and_priority: int
    attributes: tuple[AttributeDescriptorWithSelection, ...]
    last_block: bool
    block_number: int
    raw_data: bytes
    TAG = SET_REQUEST
    NAME = "set-request-with-list-and-first-datablock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_REQUEST, 5, self.invoke_id_and_priority)
                     + _enc_seq(self.attributes, _check_aws, "attributes")
                     + _block(self.last_block, self.block_number, self.raw_data))


@register(SET_REQUEST)
def _dec_set_request(buf: bytes) -> Apdu:
    choice = b.u8(buf, 1, "set_request.choice")
    iid = b.u8(buf, 2, "invoke_id_and_priority")
    if choice == 1:
        attr, pos = dec_attribute(buf, 3, "attribute")
        sel, pos = dec_opt_access(buf, pos, "access_selection")
        value, pos = b.data(buf, pos, "value")
        b.end(buf, pos, "set_request_normal")
        return SetRequestNormal(iid, attr, value, sel)
    if choice == 2:
        attr, pos = dec_attribute(buf, 3, "attribute")
        sel, pos = dec_opt_access(buf, pos, "access_selection")
        last, num, raw, pos = _dec_block(buf, pos)
        b.end(buf, pos, "set_request_with_first_datablock")
        return SetRequestWithFirstDatablock(iid, attr, last, num, raw, sel)
    if choice == 3:
        last, num, raw, pos = _dec_block(buf, 3)
        b.end(buf, pos, "set_request_with_datablock")
        return SetRequestWithDatablock(iid, last, num, raw)
    if choice == 4:
        attrs, pos = _dec_seq(buf, 3, dec_attribute_with_selection, "attributes")
        values, pos = _dec_seq(buf, pos, b.data, "values")
        b.end(buf, pos, "set_request_with_list")
        return SetRequestWithList(iid, attrs, values)
    if choice == 5:
        attrs, pos = _dec_seq(buf, 3, dec_attribute_with_selection, "attributes")
        last, num, raw, pos = _dec_block(buf, pos)
        b.end(buf, pos, "set_request_with_list_and_first_datablock")
        return SetRequestWithListAndFirstDatablock(iid, attrs, last, num, raw)
    raise DecodeError(f"unknown SET-Request choice {choice}", field="set_request.choice", offset=1)


@dataclass(frozen=True, slots=True)
class SetResponseNormal(_IidMixin, Apdu):
    """Set-Response-Normal."""

    invoke_id_and_priority: int
    result: DataAccessResult
    TAG = SET_RESPONSE
    NAME = "set-response-normal"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_RESPONSE, 1, self.invoke_id_and_priority) + _enc_dar(self.result))


@dataclass(frozen=True, slots=True)
class SetResponseDatablock(_IidMixin, Apdu):
    """Set-Response-Datablock: block ``block_number`` received, send the next."""

    invoke_id_and_priority: int
    block_number: int
    TAG = SET_RESPONSE
    NAME = "set-response-datablock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_RESPONSE, 2, self.invoke_id_and_priority)
                     + b.pack_u32(b.check_u32(self.block_number, "block_number")))


@dataclass(frozen=True, slots=True)
class SetResponseLastDatablock(_IidMixin, Apdu):
    """Set-Response-Last-Datablock."""

    invoke_id_and_priority: int
    result: DataAccessResult
    block_number: int
    TAG = SET_RESPONSE
    NAME = "set-response-last-datablock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_RESPONSE, 3, self.invoke_id_and_priority) + _enc_dar(self.result)
                     + b.pack_u32(b.check_u32(self.block_number, "block_number")))


@dataclass(frozen=True, slots=True)
class SetResponseLastDatablockWithList(_IidMixin, Apdu):
    """Set-Response-Last-Datablock-With-List."""

    invoke_id_and_priority: int
    results: tuple[DataAccessResult, ...]
    block_number: int
    TAG = SET_RESPONSE
    NAME = "set-response-last-datablock-with-list"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_RESPONSE, 4, self.invoke_id_and_priority)
                     + _enc_seq(self.results, _enc_dar, "results")
                     + b.pack_u32(b.check_u32(self.block_number, "block_number")))


@dataclass(frozen=True, slots=True)
class SetResponseWithList(_IidMixin, Apdu):
    """Set-Response-With-List."""

    invoke_id_and_priority: int
    results: tuple[DataAccessResult, ...]
    TAG = SET_RESPONSE
    NAME = "set-response-with-list"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(SET_RESPONSE, 5, self.invoke_id_and_priority)
                     + _enc_seq(self.results, _enc_dar, "results"))


@register(SET_RESPONSE)
def _dec_set_response(buf: bytes) -> Apdu:
    choice = b.u8(buf, 1, "set_response.choice")
    iid = b.u8(buf, 2, "invoke_id_and_priority")
    if choice == 1:
        r = DAR[b.u8(buf, 3, "result")]
        b.end(buf, 4, "set_response_normal")
        return SetResponseNormal(iid, r)
    if choice == 2:
        num = b.u32(buf, 3, "block_number")
        b.end(buf, 7, "set_response_datablock")
        return SetResponseDatablock(iid, num)
    if choice == 3:
        r = DAR[b.u8(buf, 3, "result")]
        num = b.u32(buf, 4, "block_number")
        b.end(buf, 8, "set_response_last_datablock")
        return SetResponseLastDatablock(iid, r, num)
    if choice == 4:
        rs, pos = _dec_seq(buf, 3, _dec_dar_item, "results")
        num = b.u32(buf, pos, "block_number")
        b.end(buf, pos + 4, "set_response_last_datablock_with_list")
        return SetResponseLastDatablockWithList(iid, rs, num)
    if choice == 5:
        rs, pos = _dec_seq(buf, 3, _dec_dar_item, "results")
        b.end(buf, pos, "set_response_with_list")
        return SetResponseWithList(iid, rs)
    raise DecodeError(f"unknown SET-Response choice {choice}", field="set_response.choice",
                      offset=1)


# =========================================================================== ACTION


def _enc_opt_data(v: Any, field: str) -> bytes:
    if isinstance(v, Absent):
        return b"\x00"
    return b"\x01" + b.enc_data(v, field)


def _dec_opt_data(buf: bytes, pos: int, field: str) -> tuple[Any, int]:
    flag = b.u8(buf, pos, field)
    if flag == 0:
        return ABSENT, pos + 1
    if flag != 1:
        raise DecodeError(f"OPTIONAL flag must be 0 or 1, got 0x{flag:02X}", field=field, offset=pos)
    return b.data(buf, pos + 1, field)


@dataclass(frozen=True, slots=True)
class ActionRequestNormal(_IidMixin, Apdu):
    """Action-Request-Normal; ``parameters`` is ABSENT when not sent (None = null-data)."""

    invoke_id_and_priority: int
    method: MethodDescriptor
    parameters: Any = field(default=ABSENT, metadata=DATA)
    TAG = ACTION_REQUEST
    NAME = "action-request-normal"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(ACTION_REQUEST, 1, self.invoke_id_and_priority)
                     + _check_method(self.method) + _enc_opt_data(self.parameters, "parameters"))


@dataclass(frozen=True, slots=True)
class ActionRequestNextPblock(_IidMixin, Apdu):
    """Action-Request-Next-Pblock: ask the server for the next response block."""

    invoke_id_and_priority: int
    block_number: int
    TAG = ACTION_REQUEST
    NAME = "action-request-next-pblock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(ACTION_REQUEST, 2, self.invoke_id_and_priority)
                     + b.pack_u32(b.check_u32(self.block_number, "block_number")))


@dataclass(frozen=True, slots=True)
class ActionRequestWithList(_IidMixin, Apdu):
    """Action-Request-With-List (one parameter per method; null-data when none)."""

    invoke_id_and_priority: int
    methods: tuple[MethodDescriptor, ...]
    parameters: tuple[Any, ...] = field(metadata=DATA)
    TAG = ACTION_REQUEST
    NAME = "action-request-with-list"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(ACTION_REQUEST, 3, self.invoke_id_and_priority)
                     + _enc_seq(self.methods, _check_method, "methods")
                     + _enc_seq(self.parameters, lambda v: b.enc_data(v, "parameters"),
                                "parameters"))


@dataclass(frozen=True, slots=True)
class ActionRequestWithFirstPblock(_IidMixin, Apdu):
    """Action-Request-With-First-Pblock."""

    invoke_id_and_priority: int
    method: MethodDescriptor
    last_block: bool
    block_number: int
    raw_data: bytes
    TAG = ACTION_REQUEST
    NAME = "action-request-with-first-pblock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(ACTION_REQUEST, 4, self.invoke_id_and_priority)
                     + _check_method(self.method)
                     + _block(self.last_block, self.block_number, self.raw_data))


@dataclass(frozen=True, slots=True)
class ActionRequestWithListAndFirstPblock(_IidMixin, Apdu):
    """Action-Request-With-List-And-First-Pblock."""

    invoke_id_and_priority: int
    methods: tuple[MethodDescriptor, ...]
    last_block: bool
    block_number: int
    raw_data: bytes
    TAG = ACTION_REQUEST
    NAME = "action-request-with-list-and-first-pblock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(ACTION_REQUEST, 5, self.invoke_id_and_priority)
                     + _enc_seq(self.methods, _check_method, "methods")
                     + _block(self.last_block, self.block_number, self.raw_data))


@dataclass(frozen=True, slots=True)
class ActionRequestWithPblock(_IidMixin, Apdu):
    """Action-Request-With-Pblock: a following parameter block."""

    invoke_id_and_priority: int
    last_block: bool
    block_number: int
    raw_data: bytes
    TAG = ACTION_REQUEST
    NAME = "action-request-with-pblock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(ACTION_REQUEST, 6, self.invoke_id_and_priority)
                     + _block(self.last_block, self.block_number, self.raw_data))


@register(ACTION_REQUEST)
def _dec_action_request(buf: bytes) -> Apdu:
    choice = b.u8(buf, 1, "action_request.choice")
    iid = b.u8(buf, 2, "invoke_id_and_priority")
    if choice == 1:
        m, pos = dec_method(buf, 3, "method")
        params, pos = _dec_opt_data(buf, pos, "parameters")
        b.end(buf, pos, "action_request_normal")
        return ActionRequestNormal(iid, m, params)
    if choice == 2:
        num = b.u32(buf, 3, "block_number")
        b.end(buf, 7, "action_request_next_pblock")
        return ActionRequestNextPblock(iid, num)
    if choice == 3:
        ms, pos = _dec_seq(buf, 3, dec_method, "methods")
        ps, pos = _dec_seq(buf, pos, b.data, "parameters")
        b.end(buf, pos, "action_request_with_list")
        return ActionRequestWithList(iid, ms, ps)
    if choice == 4:
        m, pos = dec_method(buf, 3, "method")
        last, num, raw, pos = _dec_block(buf, pos)
        b.end(buf, pos, "action_request_with_first_pblock")
        return ActionRequestWithFirstPblock(iid, m, last, num, raw)
    if choice == 5:
        ms, pos = _dec_seq(buf, 3, dec_method, "methods")
        last, num, raw, pos = _dec_block(buf, pos)
        b.end(buf, pos, "action_request_with_list_and_first_pblock")
        return ActionRequestWithListAndFirstPblock(iid, ms, last, num, raw)
    if choice == 6:
        last, num, raw, pos = _dec_block(buf, 3)
        b.end(buf, pos, "action_request_with_pblock")
        return ActionRequestWithPblock(iid, last, num, raw)
    raise DecodeError(f"unknown ACTION-Request choice {choice}", field="action_request.choice",
                      offset=1)


@dataclass(frozen=True, slots=True)
class ActionResponseItem:
    """Action-Response-With-Optional-Data."""

    result: ActionResult
    return_parameters: GetDataResult = field(default=ABSENT, metadata=DATA)

    def to_bytes(self) -> bytes:
        if not isinstance(self.result, ActionResult):
            raise EncodeError("must be an ActionResult", field="result")
        out = bytes((int(self.result),))
        if isinstance(self.return_parameters, Absent):
            return out + b"\x00"
        return out + b"\x01" + _enc_gdr(self.return_parameters, "return_parameters")


def _dec_action_item(buf: bytes, pos: int, field: str) -> tuple[ActionResponseItem, int]:
    r = ACR[b.u8(buf, pos, f"{field}.result")]
    flag = b.u8(buf, pos + 1, f"{field}.return_parameters")
    if flag == 0:
        return ActionResponseItem(r), pos + 2
    if flag != 1:
        raise DecodeError(f"OPTIONAL flag must be 0 or 1, got 0x{flag:02X}",
                          field=f"{field}.return_parameters", offset=pos + 1)
    rp, pos = _dec_gdr(buf, pos + 2, f"{field}.return_parameters")
    return ActionResponseItem(r, rp), pos


@dataclass(frozen=True, slots=True)
class ActionResponseNormal(_IidMixin, Apdu):
    """Action-Response-Normal: result plus optional return parameters
    (a Data value or a DataAccessResult; ABSENT when not sent)."""

    invoke_id_and_priority: int
    result: ActionResult
    return_parameters: GetDataResult = field(default=ABSENT, metadata=DATA)
    TAG = ACTION_RESPONSE
    NAME = "action-response-normal"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(ACTION_RESPONSE, 1, self.invoke_id_and_priority)
                     + ActionResponseItem(self.result, self.return_parameters).to_bytes())


@dataclass(frozen=True, slots=True)
class ActionResponseWithPblock(_IidMixin, Apdu):
    """Action-Response-With-Pblock: one block of the return parameters."""

    invoke_id_and_priority: int
    last_block: bool
    block_number: int
    raw_data: bytes
    TAG = ACTION_RESPONSE
    NAME = "action-response-with-pblock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(ACTION_RESPONSE, 2, self.invoke_id_and_priority)
                     + _block(self.last_block, self.block_number, self.raw_data))


@dataclass(frozen=True, slots=True)
class ActionResponseWithList(_IidMixin, Apdu):
    """Action-Response-With-List."""

    invoke_id_and_priority: int
    results: tuple[ActionResponseItem, ...]
    TAG = ACTION_RESPONSE
    NAME = "action-response-with-list"

    def to_bytes(self) -> bytes:
        def enc(x: Any) -> bytes:
            if not isinstance(x, ActionResponseItem):
                raise EncodeError("must be an ActionResponseItem", field="results")
            return x.to_bytes()
        return bytes(_hdr(ACTION_RESPONSE, 3, self.invoke_id_and_priority)
                     + _enc_seq(self.results, enc, "results"))


@dataclass(frozen=True, slots=True)
class ActionResponseNextPblock(_IidMixin, Apdu):
    """Action-Response-Next-Pblock: parameter block ``block_number`` received."""

    invoke_id_and_priority: int
    block_number: int
    TAG = ACTION_RESPONSE
    NAME = "action-response-next-pblock"

    def to_bytes(self) -> bytes:
        return bytes(_hdr(ACTION_RESPONSE, 4, self.invoke_id_and_priority)
                     + b.pack_u32(b.check_u32(self.block_number, "block_number")))


@register(ACTION_RESPONSE)
def _dec_action_response(buf: bytes) -> Apdu:
    choice = b.u8(buf, 1, "action_response.choice")
    iid = b.u8(buf, 2, "invoke_id_and_priority")
    if choice == 1:
        item, pos = _dec_action_item(buf, 3, "single_response")
        b.end(buf, pos, "action_response_normal")
        return ActionResponseNormal(iid, item.result, item.return_parameters)
    if choice == 2:
        last, num, raw, pos = _dec_block(buf, 3)
        b.end(buf, pos, "action_response_with_pblock")
        return ActionResponseWithPblock(iid, last, num, raw)
    if choice == 3:
        items, pos = _dec_seq(buf, 3, _dec_action_item, "results")
        b.end(buf, pos, "action_response_with_list")
        return ActionResponseWithList(iid, items)
    if choice == 4:
        num = b.u32(buf, 3, "block_number")
        b.end(buf, 7, "action_response_next_pblock")
        return ActionResponseNextPblock(iid, num)
    raise DecodeError(f"unknown ACTION-Response choice {choice}", field="action_response.choice",
                      offset=1)
