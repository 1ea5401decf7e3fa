"""Shared machinery of the xDLMS APDU codec (IEC 62056-5-3 / DLMS UA 1000-2 §9.5).

Every APDU is a frozen, slotted dataclass deriving from :class:`Apdu`.  Decoders
are plain functions ``(buf: bytes) -> Apdu`` registered per first byte (the
APDU tag); ``decode_apdu`` dispatches through one dict lookup.  Encoders are the
``to_bytes`` methods.  A-XDR Data goes through :mod:`dlms14908.axdr`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import Any, ClassVar, final

from .. import axdr
from ..errors import DecodeError, EncodeError

__all__ = [
    "ABSENT",
    "DATA",
    "Absent",
    "Apdu",
    "LenientIntEnum",
]

U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
unpack_u16 = U16.unpack_from
unpack_u32 = U32.unpack_from
pack_u16 = U16.pack
pack_u32 = U32.pack

#: dataclass field metadata marking a field that holds A-XDR Data (or a tuple of Data)
DATA: dict[str, Any] = {"data": True}


@final
class Absent:
    """Sentinel for an OPTIONAL Data field that is not present (``None`` is null-data)."""

    _instance: Absent | None = None
    __slots__ = ()

    def __new__(cls) -> Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT = Absent()


class LenientIntEnum(enum.IntEnum):
    """IntEnum that keeps unknown wire values as pseudo-members named ``unknown-N``.

    Peers send codes newer than this table; the value survives a round trip."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF:
            member = int.__new__(cls, value)
            member._name_ = f"unknown-{value}"
            member._value_ = value
            return member
        return None


class Apdu:
    """Base class of every xDLMS and ACSE APDU."""

    __slots__ = ()
    #: first byte on the wire
    TAG: ClassVar[int] = -1
    #: name used in JSON output and error messages
    NAME: ClassVar[str] = "apdu"

    def to_bytes(self) -> bytes:
        """Encode this APDU (tag included)."""
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        return self.to_bytes()


Decoder = Callable[[bytes], Apdu]

#: tag -> decoder of the whole APDU (input already known to start with that tag)
DECODERS: dict[int, Decoder] = {}


def register(tag: int) -> Callable[[Decoder], Decoder]:
    def deco(fn: Decoder) -> Decoder:
        DECODERS[tag] = fn
        return fn

    return deco


# --- field readers (each names its field on failure) --------------------------------------


def need(buf: bytes, pos: int, n: int, field: str) -> None:
    if pos + n > len(buf):
        raise DecodeError(f"truncated: need {n} byte(s), have {max(len(buf) - pos, 0)}",
                          field=field, offset=pos)


def u8(buf: bytes, pos: int, field: str) -> int:
    if pos >= len(buf):
        raise DecodeError("truncated", field=field, offset=pos)
    return buf[pos]


def u16(buf: bytes, pos: int, field: str) -> int:
    if pos + 2 > len(buf):
        raise DecodeError("truncated", field=field, offset=pos)
    v: int = unpack_u16(buf, pos)[0]
    return v


def u32(buf: bytes, pos: int, field: str) -> int:
    if pos + 4 > len(buf):
        raise DecodeError("truncated", field=field, offset=pos)
    v: int = unpack_u32(buf, pos)[0]
    return v


def boolean(buf: bytes, pos: int, field: str) -> bool:
    v = u8(buf, pos, field)
    # A-XDR BOOLEAN: 0x00 FALSE, anything else TRUE; only 0x00/0x01 round-trip, so be strict
    if v > 1:
        raise DecodeError(f"boolean must be 0x00 or 0x01, got 0x{v:02X}", field=field, offset=pos)
    return v == 1


def length(buf: bytes, pos: int, field: str) -> tuple[int, int]:
    """A-XDR length / SEQUENCE OF count."""
    try:
        n, p = axdr.decode_length(buf, pos)
    except DecodeError as exc:
        raise DecodeError(str(exc), field=field, offset=pos) from None
    except (IndexError, ValueError, struct.error):
        raise DecodeError("bad length", field=field, offset=pos) from None
    return n, p


def octets(buf: bytes, pos: int, field: str) -> tuple[bytes, int]:
    """A-XDR OCTET STRING (length-prefixed)."""
    n, p = length(buf, pos, field)
    if p + n > len(buf):
        raise DecodeError(f"truncated: length {n} but {len(buf) - p} byte(s) left",
                          field=field, offset=p)
    return buf[p:p + n], p + n


def data(buf: bytes, pos: int, field: str) -> tuple[Any, int]:
    """One A-XDR Data value; errors are re-labelled with our field name."""
    try:
        return axdr.decode(buf, pos)
    except DecodeError as exc:
        inner = exc.field or "data"
        raise DecodeError(_strip(str(exc)), field=f"{field}.{inner}",
                          offset=exc.offset) from None
    except (IndexError, ValueError, KeyError, struct.error, UnicodeDecodeError,
            OverflowError, TypeError, RecursionError) as exc:
        raise DecodeError(f"malformed Data ({type(exc).__name__})", field=field, offset=pos) from None


def _strip(msg: str) -> str:
    # DecodeError messages read "field (at byte n): text"; keep the text
    _, sep, tail = msg.partition(": ")
    return tail if sep else msg


def end(buf: bytes, pos: int, name: str) -> None:
    if pos != len(buf):
        raise DecodeError(f"{len(buf) - pos} trailing byte(s)", field=name, offset=pos)


# --- writers -------------------------------------------------------------------------------


def enc_length(n: int) -> bytes:
    return axdr.encode_length(n)


def enc_octets(b: bytes) -> bytes:
    return axdr.encode_length(len(b)) + bytes(b)


def enc_data(value: Any, field: str) -> bytes:
    try:
        return axdr.encode(value)
    except EncodeError as exc:
        raise EncodeError(_strip(str(exc)), field=f"{field}.{exc.field}" if exc.field else field) \
            from None


def check_u8(v: int, field: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFF:
        raise EncodeError(f"must be an int 0..255, got {v!r}", field=field)
    return v


def check_u16(v: int, field: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFF:
        raise EncodeError(f"must be an int 0..65535, got {v!r}", field=field)
    return v


def check_u32(v: int, field: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFFFFFF:
        raise EncodeError(f"must be an int 0..2**32-1, got {v!r}", field=field)
    return v


def check_bytes(v: object, field: str) -> bytes:
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise EncodeError(f"must be bytes, got {type(v).__name__}", field=field)
    return bytes(v)
