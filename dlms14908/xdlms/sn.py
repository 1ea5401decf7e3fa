"""SN-referencing services: ReadRequest [5], ReadResponse [12], WriteRequest [6],
WriteResponse [13], UnconfirmedWriteRequest [22], InformationReportRequest [24]
(Green Book §9.5, Variable-Access-Specification with parameterized access).

InformationReportRequest's current-time (GeneralizedTime OPTIONAL) is carried as a
length-prefixed octet string: ``00`` when absent, ``0C`` + 12-byte COSEM date-time
when present (the form gurux-dlms reads and writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import DecodeError, EncodeError
from . import _base as b
from ._base import DATA, Apdu, register
from .notify import _dt_bytes, _dt_from
from .types import DAR, DataAccessResult

__all__ = [
    "BlockNumber",
    "BlockNumberAccess",
    "DataBlockResult",
    "InformationReportRequest",
    "ParameterizedAccess",
    "ReadDataBlockAccess",
    "ReadRequest",
    "ReadResponse",
    "UnconfirmedWriteRequest",
    "VariableAccess",
    "VariableName",
    "WriteDataBlockAccess",
    "WriteRequest",
    "WriteResponse",
]


@dataclass(frozen=True, slots=True)
class VariableName:
    """variable-name [2]: the short name (ObjectName, 16 bits)."""

    name: int

    def to_bytes(self) -> bytes:
        return b"\x02" + b.pack_u16(b.check_u16(self.name, "variable_name"))


@dataclass(frozen=True, slots=True)
class ParameterizedAccess:
    """parameterized-access [4]: variable-name, selector, parameter Data."""

    name: int
    selector: int
    parameter: Any = field(metadata=DATA)

    def to_bytes(self) -> bytes:
        return (b"\x04" + b.pack_u16(b.check_u16(self.name, "variable_name"))
                + bytes((b.check_u8(self.selector, "selector"),))
                + b.enc_data(self.parameter, "parameter"))


@dataclass(frozen=True, slots=True)
class BlockNumberAccess:
    """block-number-access [5]."""

    block_number: int

    def to_bytes(self) -> bytes:
        return b"\x05" + b.pack_u16(b.check_u16(self.block_number, "block_number"))


@dataclass(frozen=True, slots=True)
class ReadDataBlockAccess:
    """read-data-block-access [6]."""

    last_block: bool
    block_number: int
    raw_data: bytes

    def to_bytes(self) -> bytes:
        return (b"\x06" + _bool(self.last_block)
                + b.pack_u16(b.check_u16(self.block_number, "block_number"))
                + b.enc_octets(b.check_bytes(self.raw_data, "raw_data")))


@dataclass(frozen=True, slots=True)
class WriteDataBlockAccess:
    """write-data-block-access [7]."""

    last_block: bool
    block_number: int

    def to_bytes(self) -> bytes:
        return (b"\x07" + _bool(self.last_block)
                + b.pack_u16(b.check_u16(self.block_number, "block_number")))


VariableAccess = (VariableName | ParameterizedAccess | BlockNumberAccess | ReadDataBlockAccess
                  | WriteDataBlockAccess)
_VA_TYPES = (VariableName, ParameterizedAccess, BlockNumberAccess, ReadDataBlockAccess,
             WriteDataBlockAccess)


def _bool(v: Any) -> bytes:
    if not isinstance(v, bool):
        raise EncodeError("must be a bool", field="last_block")
    return b"\x01" if v else b"\x00"


def _dec_va(buf: bytes, pos: int, field: str) -> tuple[VariableAccess, int]:
    c = b.u8(buf, pos, field)
    if c == 2:
        return VariableName(b.u16(buf, pos + 1, f"{field}.variable_name")), pos + 3
    if c == 4:
        name = b.u16(buf, pos + 1, f"{field}.variable_name")
        sel = b.u8(buf, pos + 3, f"{field}.selector")
        param, pos = b.data(buf, pos + 4, f"{field}.parameter")
        return ParameterizedAccess(name, sel, param), pos
    if c == 5:
        return BlockNumberAccess(b.u16(buf, pos + 1, f"{field}.block_number")), pos + 3
    if c == 6:
        last = b.boolean(buf, pos + 1, f"{field}.last_block")
        num = b.u16(buf, pos + 2, f"{field}.block_number")
        raw, pos = b.octets(buf, pos + 4, f"{field}.raw_data")
        return ReadDataBlockAccess(last, num, bytes(raw)), pos
    if c == 7:
        last = b.boolean(buf, pos + 1, f"{field}.last_block")
        return WriteDataBlockAccess(last, b.u16(buf, pos + 2, f"{field}.block_number")), pos + 4
    raise DecodeError(f"unknown Variable-Access-Specification choice {c}", field=field, offset=pos)


def _enc_va(v: Any) -> bytes:
    if not isinstance(v, _VA_TYPES):
        raise EncodeError("must be a Variable-Access-Specification", field="variables")
    return v.to_bytes()


def _seq(items: Any, enc: Any, field: str) -> bytes:
    if not isinstance(items, (tuple, list)):
        raise EncodeError("must be a tuple", field=field)
    return b.enc_length(len(items)) + b"".join(enc(x) for x in items)


def _dseq(buf: bytes, pos: int, dec: Any, field: str) -> tuple[tuple[Any, ...], int]:
    n, pos = b.length(buf, pos, field)
    if n > len(buf) - pos:
        raise DecodeError(f"count {n} exceeds remaining bytes", field=field, offset=pos)
    out = []
    for i in range(n):
        item, pos = dec(buf, pos, f"{field}[{i}]")
        out.append(item)
    return tuple(out), pos


def _enc_value(v: Any) -> bytes:
    return b.enc_data(v, "values")


@dataclass(frozen=True, slots=True)
class DataBlockResult:
    """ReadResponse data-block-result [2]."""

    last_block: bool
    block_number: int
    raw_data: bytes


@dataclass(frozen=True, slots=True)
class BlockNumber:
    """ReadResponse block-number [3] / WriteResponse block-number [2]."""

    block_number: int


@dataclass(frozen=True, slots=True)
class ReadRequest(Apdu):
    """ReadRequest [5]."""

    variables: tuple[VariableAccess, ...]
    TAG = 0x05
    NAME = "read-request"

    def to_bytes(self) -> bytes:
        return b"\x05" + _seq(self.variables, _enc_va, "variables")


@register(0x05)
def _dec_read_request(buf: bytes) -> ReadRequest:
    vs, pos = _dseq(buf, 1, _dec_va, "variables")
    b.end(buf, pos, "read_request")
    return ReadRequest(vs)


def _enc_read_result(r: Any) -> bytes:
    if isinstance(r, DataAccessResult):
        return bytes((1, int(r)))
    if isinstance(r, DataBlockResult):
        return (b"\x02" + _bool(r.last_block) + b.pack_u16(b.check_u16(r.block_number,
                                                                       "block_number"))
                + b.enc_octets(b.check_bytes(r.raw_data, "raw_data")))
    if isinstance(r, BlockNumber):
        return b"\x03" + b.pack_u16(b.check_u16(r.block_number, "block_number"))
    return b"\x00" + b.enc_data(r, "results")


def _dec_read_result(buf: bytes, pos: int, field: str) -> tuple[Any, int]:
    c = b.u8(buf, pos, field)
    if c == 0:
        return b.data(buf, pos + 1, f"{field}.data")
    if c == 1:
        return DAR[b.u8(buf, pos + 1, f"{field}.data_access_error")], pos + 2
    if c == 2:
        last = b.boolean(buf, pos + 1, f"{field}.last_block")
        num = b.u16(buf, pos + 2, f"{field}.block_number")
        raw, pos = b.octets(buf, pos + 4, f"{field}.raw_data")
        return DataBlockResult(last, num, bytes(raw)), pos
    if c == 3:
        return BlockNumber(b.u16(buf, pos + 1, f"{field}.block_number")), pos + 3
    raise DecodeError(f"unknown ReadResponse choice {c}", field=field, offset=pos)


@dataclass(frozen=True, slots=True)
class ReadResponse(Apdu):
    """ReadResponse [12]: each result is Data, a DataAccessResult, a DataBlockResult
    or a BlockNumber."""

    results: tuple[Any, ...] = field(metadata=DATA)
    TAG = 0x0C
    NAME = "read-response"

    def to_bytes(self) -> bytes:
        return b"\x0C" + _seq(self.results, _enc_read_result, "results")


@register(0x0C)
def _dec_read_response(buf: bytes) -> ReadResponse:
    rs, pos = _dseq(buf, 1, _dec_read_result, "results")
    b.end(buf, pos, "read_response")
    return ReadResponse(rs)


@dataclass(frozen=True, slots=True)
class WriteRequest(Apdu):
    """WriteRequest [6]."""

    variables: tuple[VariableAccess, ...]
    values: tuple[Any, ...] = field(metadata=DATA)
    TAG = 0x06
    NAME = "write-request"

    def to_bytes(self) -> bytes:
        return (bytes((self.TAG,)) + _seq(self.variables, _enc_va, "variables")
                + _seq(self.values, _enc_value, "values"))


@dataclass(frozen=True, slots=True)
class UnconfirmedWriteRequest(Apdu):
    """UnconfirmedWriteRequest [22]."""

    variables: tuple[VariableAccess, ...]
    values: tuple[Any, ...] = field(metadata=DATA)
    TAG = 0x16
    NAME = "unconfirmed-write-request"

    def to_bytes(self) -> bytes:
        return (bytes((self.TAG,)) + _seq(self.variables, _enc_va, "variables")
                + _seq(self.values, _enc_value, "values"))


def _dec_write_like(buf: bytes, pos: int, name: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    vs, pos = _dseq(buf, pos, _dec_va, "variables")
    ds, pos = _dseq(buf, pos, b.data, "values")
    b.end(buf, pos, name)
    return vs, ds


@register(0x06)
def _dec_write_request(buf: bytes) -> WriteRequest:
    return WriteRequest(*_dec_write_like(buf, 1, "write_request"))


@register(0x16)
def _dec_unconfirmed_write(buf: bytes) -> UnconfirmedWriteRequest:
    return UnconfirmedWriteRequest(*_dec_write_like(buf, 1, "unconfirmed_write_request"))


def _enc_write_result(r: Any) -> bytes:
    if isinstance(r, DataAccessResult):
        return b"\x00" if r == DataAccessResult.SUCCESS else bytes((1, int(r)))
    if isinstance(r, BlockNumber):
        return b"\x02" + b.pack_u16(b.check_u16(r.block_number, "block_number"))
    raise EncodeError("must be a DataAccessResult or BlockNumber", field="results")


def _dec_write_result(buf: bytes, pos: int, field: str) -> tuple[Any, int]:
    c = b.u8(buf, pos, field)
    if c == 0:
        return DataAccessResult.SUCCESS, pos + 1
    if c == 1:
        return DAR[b.u8(buf, pos + 1, f"{field}.data_access_error")], pos + 2
    if c == 2:
        return BlockNumber(b.u16(buf, pos + 1, f"{field}.block_number")), pos + 3
    raise DecodeError(f"unknown WriteResponse choice {c}", field=field, offset=pos)


@dataclass(frozen=True, slots=True)
class WriteResponse(Apdu):
    """WriteResponse [13]: DataAccessResult.SUCCESS encodes the success [0] choice."""

    results: tuple[Any, ...]
    TAG = 0x0D
    NAME = "write-response"

    def to_bytes(self) -> bytes:
        return b"\x0D" + _seq(self.results, _enc_write_result, "results")


@register(0x0D)
def _dec_write_response(buf: bytes) -> WriteResponse:
    rs, pos = _dseq(buf, 1, _dec_write_result, "results")
    b.end(buf, pos, "write_response")
    return WriteResponse(rs)


@dataclass(frozen=True, slots=True)
class InformationReportRequest(Apdu):
    """InformationReportRequest [24]."""

    variables: tuple[VariableAccess, ...]
    values: tuple[Any, ...] = field(metadata=DATA)
    current_time: Any = None
    TAG = 0x18
    NAME = "information-report-request"

    def to_bytes(self) -> bytes:
        t = b"\x00" if self.current_time is None else b"\x0C" + _dt_bytes(self.current_time,
                                                                          "current_time")
        return (b"\x18" + t + _seq(self.variables, _enc_va, "variables")
                + _seq(self.values, _enc_value, "values"))


@register(0x18)
def _dec_information_report(buf: bytes) -> InformationReportRequest:
    raw, pos = b.octets(buf, 1, "current_time")
    t = None
    if raw:
        if len(raw) != 12:
            raise DecodeError(f"current-time must be 0 or 12 bytes, got {len(raw)}",
                              field="current_time", offset=1)
        t = _dt_from(raw, "current_time", 2)
    vs, ds = _dec_write_like(buf, pos, "information_report_request")
    return InformationReportRequest(vs, ds, t)
