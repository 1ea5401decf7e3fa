"""ISO/IEC 14908-1 (LonTalk) frames: L2 header, NPDU v0, TPDU/SPDU/AuthPDU, APDU.

Wire layout (reference ``lontalk.md`` §1.1-§1.5; ``osgp-62056-8-8.md`` §1.2)::

    LPDU = L2hdr(1) NPDU CRC(2, big-endian, over L2hdr+NPDU)
    L2hdr = priority(b7) alt_path(b6) delta_backlog(b5..0)
    NPDU  = hdr(1) address(3/4/6/9) domain(0/1/3/6) enclosed-PDU
    hdr   = version(b7..6)=0 pdu_fmt(b5..4) addr_fmt(b3..2) domain_len(b1..0)
    TPDU/SPDU hdr = auth(b7) type(b6..4) trans_no(b3..0)
    AuthPDU hdr   = fmt(b7..6) type(b5..4) trans_no(b3..0), 8 bytes [+ group if fmt 1]

All values are frozen dataclasses.  Constructors validate ranges and raise
:class:`~dlms14908.errors.EncodeError`; :func:`decode_frame` raises
:class:`~dlms14908.errors.DecodeError` (or :class:`~dlms14908.errors.CrcError`)
naming the field and the byte offset.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any

from ..errors import DecodeError, EncodeError
from .codes import ApduClass, apdu_class, code_name
from .crc import append_crc, strip_crc

__all__ = [
    "DOMAIN_LENGTHS",
    "MAX_M_LIST",
    "Address",
    "AddressFormat",
    "AnyApdu",
    "Apdu",
    "AuthPdu",
    "AuthType",
    "BroadcastAddress",
    "EnclosedPdu",
    "Frame",
    "GroupAckAddress",
    "GroupAddress",
    "L2Header",
    "NeuronIdAddress",
    "Npdu",
    "NvApdu",
    "PduFormat",
    "Spdu",
    "SpduType",
    "SubnetNodeAddress",
    "Tpdu",
    "TpduType",
    "decode_apdu",
    "decode_frame",
    "decode_npdu",
    "encode_apdu",
    "encode_frame",
    "encode_npdu",
    "frame_to_jsonable",
]

#: domain_len code -> domain ID length in bytes
DOMAIN_LENGTHS = (0, 1, 3, 6)
_DOMAIN_CODE = {n: i for i, n in enumerate(DOMAIN_LENGTHS)}
#: M_List is a member bitmap for members 0..63: at most 8 bytes (lon-stack-dx sizes
#: a bare REMINDER TSPDU at 10 bytes = hdr + len + 8).  [I]
MAX_M_LIST = 8
NEURON_ID_LENGTH = 6
AUTH_VALUE_LENGTH = 8


class PduFormat(IntEnum):
    TPDU = 0
    SPDU = 1
    AUTHPDU = 2
    APDU = 3


class AddressFormat(IntEnum):
    BROADCAST = 0
    GROUP = 1
    SUBNET_NODE = 2  # 2a and 2b share the code; the source selector bit tells them apart
    UNIQUE_ID = 3


class TpduType(IntEnum):
    ACKD = 0
    UNACKD_RPT = 1
    ACK = 2
    REMINDER = 4
    REM_MSG = 5


class SpduType(IntEnum):
    REQUEST = 0
    RESPONSE = 2
    REMINDER = 4
    REM_MSG = 5


class AuthType(IntEnum):
    CHALLENGE = 0
    CHALLENGE_OMA = 1
    REPLY = 2
    REPLY_OMA = 3


# --------------------------------------------------------------------------- helpers


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if type(value) is int and lo <= value <= hi:  # the common case, in one test
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"must be an int, got {type(value).__name__}", field=name)
    if not lo <= value <= hi:
        raise EncodeError(f"{value} out of range {lo}..{hi}", field=name)


def _check_bytes(name: str, value: object, lengths: tuple[int, ...] | None = None) -> None:
    if type(value) is bytes and (lengths is None or len(value) in lengths):
        return
    if not isinstance(value, bytes):
        raise EncodeError(f"must be bytes, got {type(value).__name__}", field=name)
    if lengths is not None and len(value) not in lengths:
        raise EncodeError(f"length {len(value)} not in {lengths}", field=name)


# --------------------------------------------------------------------------- L2


@dataclass(frozen=True, slots=True)
class L2Header:
    """The link-layer header byte (Wireshark calls it "PPDU")."""

    priority: bool = False
    alt_path: bool = False
    delta_backlog: int = 0

    def __post_init__(self) -> None:
        _check_int("l2.delta_backlog", self.delta_backlog, 0, 63)

    def to_byte(self) -> int:
        return (0x80 if self.priority else 0) | (0x40 if self.alt_path else 0) | self.delta_backlog

    @classmethod
    def from_byte(cls, b: int) -> L2Header:
        return cls(bool(b & 0x80), bool(b & 0x40), b & 0x3F)


# --------------------------------------------------------------------------- addresses


def _check_src(a: object) -> None:
    _check_int("address.src_subnet", a.src_subnet, 0, 255)  # type: ignore[attr-defined]
    _check_int("address.src_node", a.src_node, 0, 127)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class BroadcastAddress:
    """Format 0: broadcast to a subnet (``dst_subnet`` 0 = the whole domain)."""

    src_subnet: int
    src_node: int
    dst_subnet: int = 0
    format = AddressFormat.BROADCAST
    label = "0"

    def __post_init__(self) -> None:
        _check_src(self)
        _check_int("address.dst_subnet", self.dst_subnet, 0, 255)

    def encode(self) -> bytes:
        return bytes((self.src_subnet, 0x80 | self.src_node, self.dst_subnet))


@dataclass(frozen=True, slots=True)
class GroupAddress:
    """Format 1: multicast to a group."""

    src_subnet: int
    src_node: int
    group: int
    format = AddressFormat.GROUP
    label = "1"

    def __post_init__(self) -> None:
        _check_src(self)
        _check_int("address.group", self.group, 0, 255)

    def encode(self) -> bytes:
        return bytes((self.src_subnet, 0x80 | self.src_node, self.group))


@dataclass(frozen=True, slots=True)
class SubnetNodeAddress:
    """Format 2a: unicast to subnet/node."""

    src_subnet: int
    src_node: int
    dst_subnet: int
    dst_node: int
    format = AddressFormat.SUBNET_NODE
    label = "2a"

    def __post_init__(self) -> None:
        _check_src(self)
        _check_int("address.dst_subnet", self.dst_subnet, 0, 255)
        _check_int("address.dst_node", self.dst_node, 0, 127)

    def encode(self) -> bytes:
        return bytes((self.src_subnet, 0x80 | self.src_node, self.dst_subnet, 0x80 | self.dst_node))


@dataclass(frozen=True, slots=True)
class GroupAckAddress:
    """Format 2b: a group member's acknowledgement/response/challenge to the sender."""

    src_subnet: int
    src_node: int
    dst_subnet: int
    dst_node: int
    group: int
    member: int
    format = AddressFormat.SUBNET_NODE
    label = "2b"

    def __post_init__(self) -> None:
        _check_src(self)
        _check_int("address.dst_subnet", self.dst_subnet, 0, 255)
        _check_int("address.dst_node", self.dst_node, 0, 127)
        _check_int("address.group", self.group, 0, 255)
        _check_int("address.member", self.member, 0, 63)

    def encode(self) -> bytes:
        return bytes(
            (
                self.src_subnet,
                self.src_node,  # selector bit 0 marks format 2b
                self.dst_subnet,
                0x80 | self.dst_node,
                self.group,
                self.member,
            )
        )


@dataclass(frozen=True, slots=True)
class NeuronIdAddress:
    """Format 3: unique node ID (Neuron ID); ``dst_subnet`` 0 passes all routers."""

    src_subnet: int
    src_node: int
    dst_subnet: int
    neuron_id: bytes
    format = AddressFormat.UNIQUE_ID
    label = "3"

    def __post_init__(self) -> None:
        _check_src(self)
        _check_int("address.dst_subnet", self.dst_subnet, 0, 255)
        _check_bytes("address.neuron_id", self.neuron_id, (NEURON_ID_LENGTH,))

    def encode(self) -> bytes:
        return bytes((self.src_subnet, 0x80 | self.src_node, self.dst_subnet)) + self.neuron_id


Address = BroadcastAddress | GroupAddress | SubnetNodeAddress | GroupAckAddress | NeuronIdAddress
_ADDRESS_TYPES = (BroadcastAddress, GroupAddress, SubnetNodeAddress, GroupAckAddress, NeuronIdAddress)


# --------------------------------------------------------------------------- APDU


class _KeepsEncoding:
    """A slot for a value's own encoding, kept by the decoder (or the first ``encode()``) so
    it is not rebuilt: not a dataclass field, so not compared, hashed, shown or pickled."""

    __slots__ = ("_raw",)
    _raw: bytes


@dataclass(frozen=True, slots=True)
class Apdu(_KeepsEncoding):
    """A one-byte-code APDU: application (0x00-0x3F), foreign frame (0x40-0x4F),
    network diagnostic (0x50-0x5F) or network management (0x60-0x7F)."""

    code: int
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_int("apdu.code", self.code, 0, 0x7F)
        _check_bytes("apdu.data", self.data)

    @property
    def kind(self) -> ApduClass:
        return apdu_class(self.code)

    def encode(self) -> bytes:
        try:
            return self._raw
        except AttributeError:  # built by the constructor (or unpickled): encode once
            raw = bytes((self.code,)) + self.data
            _set_apdu_raw(self, raw)
            return raw


_new = object.__new__
_set_apdu_code = Apdu.__dict__["code"].__set__
_set_apdu_data = Apdu.__dict__["data"].__set__
_set_apdu_raw = _KeepsEncoding.__dict__["_raw"].__set__


def wire_apdu(raw: bytes) -> Apdu:
    """The :class:`Apdu` of ``raw`` (non-empty, first byte < 0x80: the caller checked),
    built without re-validating what the wire format bounds already."""
    apdu = _new(Apdu)
    _set_apdu_code(apdu, raw[0])
    _set_apdu_data(apdu, raw[1:])
    _set_apdu_raw(apdu, raw)
    return apdu


@dataclass(frozen=True, slots=True)
class NvApdu:
    """A network-variable APDU: ``1 d selector(14)`` then the value.

    ``direction`` 0 is an update (outgoing value), 1 a poll (and a poll response
    flips it back)."""

    selector: int
    data: bytes = b""
    direction: int = 0

    def __post_init__(self) -> None:
        _check_int("apdu.nv_selector", self.selector, 0, 0x3FFF)
        _check_int("apdu.nv_direction", self.direction, 0, 1)
        _check_bytes("apdu.data", self.data)

    @property
    def kind(self) -> ApduClass:
        return ApduClass.NETWORK_VARIABLE

    def encode(self) -> bytes:
        head = 0x8000 | (self.direction << 14) | self.selector
        return head.to_bytes(2, "big") + self.data


AnyApdu = Apdu | NvApdu


def encode_apdu(apdu: AnyApdu) -> bytes:
    if not isinstance(apdu, (Apdu, NvApdu)):
        raise EncodeError(f"not an APDU: {type(apdu).__name__}", field="apdu")
    return apdu.encode()


def _as_bytes(data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodeError(f"expected bytes, got {type(data).__name__}", field="data")
    return bytes(data)


def decode_apdu(data: bytes | bytearray | memoryview, offset: int = 0) -> AnyApdu:
    """Decode an APDU occupying all of ``data`` (``offset`` is only for error reports)."""
    raw = data if type(data) is bytes else _as_bytes(data)
    if not raw:
        raise DecodeError("missing APDU", field="apdu", offset=offset)
    first = raw[0]
    if first & 0x80:
        if len(raw) < 2:
            raise DecodeError("network-variable selector needs 2 bytes", field="apdu.nv_selector", offset=offset)
        head = (first << 8) | raw[1]
        return _mk_nvapdu(head & 0x3FFF, raw[2:], (head >> 14) & 1)  # type: ignore[no-any-return]
    return wire_apdu(raw)


# --------------------------------------------------------------------------- TPDU/SPDU/AuthPDU


def _check_tspdu(prefix: str, kind: int, apdu: object, m_list: object, *, has_apdu: bool, has_list: bool) -> None:
    if has_apdu and apdu is None:
        raise EncodeError("this type carries an APDU", field=f"{prefix}.apdu")
    if not has_apdu and apdu is not None:
        raise EncodeError("this type carries no APDU", field=f"{prefix}.apdu")
    if apdu is not None and not isinstance(apdu, (Apdu, NvApdu)):
        raise EncodeError(f"not an APDU: {type(apdu).__name__}", field=f"{prefix}.apdu")
    if has_list:
        if m_list is None:
            raise EncodeError("REMINDER and REM/MSG carry an M_List", field=f"{prefix}.m_list")
        _check_bytes(f"{prefix}.m_list", m_list)
        assert isinstance(m_list, bytes)
        if len(m_list) > MAX_M_LIST:
            raise EncodeError(f"M_List longer than {MAX_M_LIST} bytes", field=f"{prefix}.m_list")
    elif m_list is not None:
        raise EncodeError("only REMINDER and REM/MSG carry an M_List", field=f"{prefix}.m_list")


_TPDU_WITH_APDU = frozenset((TpduType.ACKD, TpduType.UNACKD_RPT, TpduType.REM_MSG))
_TPDU_WITH_LIST = frozenset((TpduType.REMINDER, TpduType.REM_MSG))
_SPDU_WITH_APDU = frozenset((SpduType.REQUEST, SpduType.RESPONSE, SpduType.REM_MSG))
_SPDU_WITH_LIST = frozenset((SpduType.REMINDER, SpduType.REM_MSG))


class _TransactionPdu:
    """What TPDUs and SPDUs share: ``auth(1) | type(3) | trans_no(4)``, then an
    optional M_List (length byte + list) and an optional APDU."""

    __slots__ = ()
    auth: bool
    type: TpduType | SpduType
    trans_no: int
    m_list: bytes | None
    apdu: AnyApdu | None

    def _validate(
        self,
        prefix: str,
        kind: builtins.type[TpduType] | builtins.type[SpduType],  # noqa: PYI055
        with_apdu: frozenset[int],
        with_list: frozenset[int],
    ) -> None:
        t = self.type
        if type(t) is not kind:
            try:
                t = kind(t)
            except ValueError:
                raise EncodeError(
                    f"unknown {prefix.upper()} type {self.type!r}", field=f"{prefix}.type"
                ) from None
            object.__setattr__(self, "type", t)
        _check_int(f"{prefix}.trans_no", self.trans_no, 0, 15)
        _check_tspdu(
            prefix, t, self.apdu, self.m_list, has_apdu=t in with_apdu, has_list=t in with_list
        )

    @property
    def header(self) -> int:
        return (0x80 if self.auth else 0) | (int(self.type) << 4) | self.trans_no

    def encode(self) -> bytes:
        out = bytearray((self.header,))
        if self.m_list is not None:
            out.append(len(self.m_list))
            out += self.m_list
        if self.apdu is not None:
            out += self.apdu.encode()
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Tpdu(_TransactionPdu):
    """Transport PDU: ACKD / UNACKD_RPT (APDU), ACK (nothing), REMINDER (M_List),
    REM/MSG (M_List + APDU)."""

    type: TpduType
    trans_no: int
    apdu: AnyApdu | None = None
    m_list: bytes | None = None
    auth: bool = False

    def __post_init__(self) -> None:
        self._validate("tpdu", TpduType, _TPDU_WITH_APDU, _TPDU_WITH_LIST)



@dataclass(frozen=True, slots=True)
class Spdu(_TransactionPdu):
    """Session PDU: REQUEST / RESPONSE (APDU), REMINDER (M_List), REM/MSG (M_List + APDU)."""

    type: SpduType
    trans_no: int
    apdu: AnyApdu | None = None
    m_list: bytes | None = None
    auth: bool = False

    def __post_init__(self) -> None:
        self._validate("spdu", SpduType, _SPDU_WITH_APDU, _SPDU_WITH_LIST)



@dataclass(frozen=True, slots=True)
class AuthPdu:
    """Authentication PDU: a challenge (8 random bytes) or reply (8 bytes).

    ``fmt`` is the address format of the message being authenticated; when it is
    1 (group) the group byte follows the 8 bytes.  ``*_OMA`` types use the
    96-bit OMA transform."""

    type: AuthType
    trans_no: int
    fmt: int
    value: bytes
    group: int | None = None

    def __post_init__(self) -> None:
        try:
            t = AuthType(self.type)
        except ValueError:
            raise EncodeError(f"unknown AuthPDU type {self.type!r}", field="authpdu.type") from None
        object.__setattr__(self, "type", t)
        _check_int("authpdu.trans_no", self.trans_no, 0, 15)
        _check_int("authpdu.fmt", self.fmt, 0, 3)
        _check_bytes("authpdu.value", self.value, (AUTH_VALUE_LENGTH,))
        if self.fmt == AddressFormat.GROUP:
            if self.group is None:
                raise EncodeError("fmt 1 (group) carries a group byte", field="authpdu.group")
            _check_int("authpdu.group", self.group, 0, 255)
        elif self.group is not None:
            raise EncodeError("only fmt 1 (group) carries a group byte", field="authpdu.group")

    @property
    def header(self) -> int:
        return (self.fmt << 6) | (int(self.type) << 4) | self.trans_no

    @property
    def is_oma(self) -> bool:
        return self.type in (AuthType.CHALLENGE_OMA, AuthType.REPLY_OMA)

    @property
    def is_challenge(self) -> bool:
        return self.type in (AuthType.CHALLENGE, AuthType.CHALLENGE_OMA)

    def encode(self) -> bytes:
        out = bytes((self.header,)) + self.value
        if self.group is not None:
            out += bytes((self.group,))
        return out


EnclosedPdu = Tpdu | Spdu | AuthPdu | Apdu | NvApdu


def _pdu_format(pdu: object) -> PduFormat:
    f = _PDU_FORMATS.get(type(pdu))
    if f is not None:
        return f
    if isinstance(pdu, Tpdu):
        return PduFormat.TPDU
    if isinstance(pdu, Spdu):
        return PduFormat.SPDU
    if isinstance(pdu, AuthPdu):
        return PduFormat.AUTHPDU
    if isinstance(pdu, (Apdu, NvApdu)):
        return PduFormat.APDU
    raise EncodeError(f"not an enclosed PDU: {type(pdu).__name__}", field="npdu.pdu")


_PDU_FORMATS: dict[type, PduFormat] = {
    Tpdu: PduFormat.TPDU,
    Spdu: PduFormat.SPDU,
    AuthPdu: PduFormat.AUTHPDU,
    Apdu: PduFormat.APDU,
    NvApdu: PduFormat.APDU,
}
_PDU_FORMAT_NAMES = tuple(PduFormat(i).name.lower() for i in range(4))


# --------------------------------------------------------------------------- NPDU / Frame


@dataclass(frozen=True, slots=True)
class Npdu:
    """Network PDU, protocol version 0."""

    address: Address
    pdu: EnclosedPdu
    domain: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.address, _ADDRESS_TYPES):
            raise EncodeError(f"not an address: {type(self.address).__name__}", field="npdu.address")
        _check_bytes("npdu.domain", self.domain, DOMAIN_LENGTHS)
        _pdu_format(self.pdu)

    @property
    def pdu_format(self) -> PduFormat:
        return _pdu_format(self.pdu)

    @property
    def header(self) -> int:
        return (
            (int(self.pdu_format) << 4) | (int(self.address.format) << 2) | _DOMAIN_CODE[len(self.domain)]
        )

    @property
    def apdu(self) -> AnyApdu | None:
        """The APDU inside, whatever the enclosing PDU (None for ACK/REMINDER/AuthPDU)."""
        if isinstance(self.pdu, (Apdu, NvApdu)):
            return self.pdu
        if isinstance(self.pdu, (Tpdu, Spdu)):
            return self.pdu.apdu
        return None

    def encode(self) -> bytes:
        return bytes((self.header,)) + self.address.encode() + self.domain + self.pdu.encode()


@dataclass(frozen=True, slots=True)
class Frame:
    """One LonTalk LPDU without its CRC (the CRC is added/checked by the codec)."""

    npdu: Npdu
    l2: L2Header = field(default_factory=L2Header)

    def __post_init__(self) -> None:
        if not isinstance(self.npdu, Npdu):
            raise EncodeError("not an Npdu", field="frame.npdu")
        if not isinstance(self.l2, L2Header):
            raise EncodeError("not an L2Header", field="frame.l2")

    @classmethod
    def make(
        cls,
        address: Address,
        pdu: EnclosedPdu,
        domain: bytes = b"",
        *,
        priority: bool = False,
        alt_path: bool = False,
        delta_backlog: int = 0,
    ) -> Frame:
        """Shorthand: ``Frame(Npdu(address, pdu, domain), L2Header(priority, alt_path, delta_backlog))``."""
        return cls(Npdu(address, pdu, domain), L2Header(priority, alt_path, delta_backlog))

    # conveniences
    @property
    def address(self) -> Address:
        return self.npdu.address

    @property
    def domain(self) -> bytes:
        return self.npdu.domain

    @property
    def pdu(self) -> EnclosedPdu:
        return self.npdu.pdu

    @property
    def apdu(self) -> AnyApdu | None:
        return self.npdu.apdu

    @property
    def priority(self) -> bool:
        return self.l2.priority

    def encode(self, crc: bool = True) -> bytes:
        return encode_frame(self, crc=crc)


def encode_npdu(npdu: Npdu) -> bytes:
    if not isinstance(npdu, Npdu):
        raise EncodeError("not an Npdu", field="npdu")
    return npdu.encode()


def encode_frame(frame: Frame, crc: bool = True) -> bytes:
    """L2 header + NPDU (+ CRC-16, high byte first, when ``crc``)."""
    if not isinstance(frame, Frame):
        raise EncodeError("not a Frame", field="frame")
    raw = bytes((frame.l2.to_byte(),)) + frame.npdu.encode()
    return append_crc(raw) if crc else raw


# --------------------------------------------------------------------------- decoding
#
# The decoder's values are in range by construction of the bit fields they come from (and it
# checks everything else itself, raising DecodeError), so it builds the frozen dataclasses
# through their slot descriptors instead of the validating constructors.


def _builder(cls: type) -> Callable[..., Any]:
    """A constructor of ``cls`` (all its fields, positional, in order) that writes the slots
    through their descriptors and skips ``__post_init__``.  Generated like the dataclass
    ``__init__`` itself, from the field names only."""
    names = [f.name for f in fields(cls)]
    ns: dict[str, Any] = {"new": _new, "cls": cls}
    ns.update((f"s{i}", cls.__dict__[n].__set__) for i, n in enumerate(names))
    args = ", ".join(f"a{i}" for i in range(len(names)))
    body = "".join(f"    s{i}(o, a{i})\n" for i in range(len(names)))
    exec(f"def build_{cls.__name__}({args}):\n    o = new(cls)\n{body}    return o\n", ns)
    return ns[f"build_{cls.__name__}"]  # type: ignore[no-any-return]


_mk_frame = _builder(Frame)
_mk_npdu = _builder(Npdu)
_mk_tpdu = _builder(Tpdu)
_mk_spdu = _builder(Spdu)
_mk_authpdu = _builder(AuthPdu)
_mk_nvapdu = _builder(NvApdu)
_mk_broadcast = _builder(BroadcastAddress)
_mk_group = _builder(GroupAddress)
_mk_subnet_node = _builder(SubnetNodeAddress)
_mk_group_ack = _builder(GroupAckAddress)
_mk_neuron_id = _builder(NeuronIdAddress)
#: every L2 header byte, decoded (immutable values)
_L2_HEADERS = tuple(L2Header(bool(b & 0x80), bool(b & 0x40), b & 0x3F) for b in range(256))
_TPDU_TYPES = tuple(TpduType(k) if k in TpduType._value2member_map_ else None for k in range(8))
_SPDU_TYPES = tuple(SpduType(k) if k in SpduType._value2member_map_ else None for k in range(8))
_AUTH_TYPES = tuple(AuthType(k) for k in range(4))
_TPDU_APDU_KINDS = frozenset((0, 1, 5))  # ACKD, UNACKD_RPT, REM/MSG
_SPDU_APDU_KINDS = frozenset((0, 2, 5))  # REQUEST, RESPONSE, REM/MSG


def _short(raw: bytes, pos: int, n: int, fieldname: str, base: int) -> DecodeError:
    return DecodeError(f"needs {n} byte(s), {max(len(raw) - pos, 0)} left", field=fieldname, offset=base + pos)


def _need(raw: bytes, pos: int, n: int, fieldname: str, base: int) -> None:
    if pos + n > len(raw):
        raise _short(raw, pos, n, fieldname, base)


def _decode_address(raw: bytes, pos: int, fmt: int, base: int) -> tuple[Address, int]:
    if pos + 3 > len(raw):
        raise _short(raw, pos, 3, "address", base)
    src_subnet, node_byte, third = raw[pos], raw[pos + 1], raw[pos + 2]
    selector = node_byte & 0x80
    src_node = node_byte & 0x7F
    if fmt == 2:  # subnet/node: 2a or 2b
        if pos + 4 > len(raw):
            raise _short(raw, pos, 4, "address.dst_node", base)
        dst_byte = raw[pos + 3]
        if not dst_byte & 0x80:
            raise DecodeError(
                "destination node byte must have bit 7 set", field="address.dst_node", offset=base + pos + 3
            )
        if selector:
            return _mk_subnet_node(src_subnet, src_node, third, dst_byte & 0x7F), pos + 4
        _need(raw, pos, 6, "address.group", base)
        member = raw[pos + 5]
        if member & 0xC0:
            raise DecodeError(
                f"group member 0x{member:02X} has bits 7..6 set", field="address.member", offset=base + pos + 5
            )
        return _mk_group_ack(src_subnet, src_node, third, dst_byte & 0x7F, raw[pos + 4], member), pos + 6
    if not selector:
        raise DecodeError(
            f"source node selector bit must be 1 in address format {fmt}",
            field="address.src_node",
            offset=base + pos + 1,
        )
    if fmt == 0:
        return _mk_broadcast(src_subnet, src_node, third), pos + 3
    if fmt == 1:
        return _mk_group(src_subnet, src_node, third), pos + 3
    _need(raw, pos, 3 + NEURON_ID_LENGTH, "address.neuron_id", base)
    return _mk_neuron_id(src_subnet, src_node, third, raw[pos + 3 : pos + 9]), pos + 9


def _decode_tspdu(raw: bytes, pos: int, layer: str, base: int) -> Tpdu | Spdu:
    hdr = raw[pos]
    kind = (hdr >> 4) & 0x07
    tpdu = layer == "tpdu"
    t = (_TPDU_TYPES if tpdu else _SPDU_TYPES)[kind]
    if t is None:
        raise DecodeError(f"unknown {layer.upper()} type {kind}", field=f"{layer}.type", offset=base + pos)
    pos += 1
    m_list: bytes | None = None
    if kind >= 4:  # REMINDER, REM/MSG
        _need(raw, pos, 1, f"{layer}.m_list_length", base)
        n = raw[pos]
        if n > MAX_M_LIST:
            raise DecodeError(f"M_List length {n} > {MAX_M_LIST}", field=f"{layer}.m_list_length", offset=base + pos)
        pos += 1
        _need(raw, pos, n, f"{layer}.m_list", base)
        m_list = raw[pos : pos + n]
        pos += n
    apdu: AnyApdu | None = None
    if kind in (_TPDU_APDU_KINDS if tpdu else _SPDU_APDU_KINDS):
        apdu = decode_apdu(raw[pos:], base + pos)
    elif pos != len(raw):
        raise DecodeError(
            f"{len(raw) - pos} trailing byte(s) after {t.name}", field=f"{layer}.trailing", offset=base + pos
        )
    return (_mk_tpdu if tpdu else _mk_spdu)(t, hdr & 0x0F, apdu, m_list, bool(hdr & 0x80))  # type: ignore[no-any-return]


def _decode_authpdu(raw: bytes, pos: int, base: int) -> AuthPdu:
    hdr = raw[pos]
    fmt = hdr >> 6
    kind = _AUTH_TYPES[(hdr >> 4) & 0x03]
    trans_no = hdr & 0x0F
    pos += 1
    _need(raw, pos, AUTH_VALUE_LENGTH, "authpdu.value", base)
    value = raw[pos : pos + AUTH_VALUE_LENGTH]
    pos += AUTH_VALUE_LENGTH
    group: int | None = None
    if fmt == AddressFormat.GROUP:
        _need(raw, pos, 1, "authpdu.group", base)
        group = raw[pos]
        pos += 1
    if pos != len(raw):
        raise DecodeError(f"{len(raw) - pos} trailing byte(s) after AuthPDU", field="authpdu.trailing",
                          offset=base + pos)
    return _mk_authpdu(kind, trans_no, fmt, value, group)  # type: ignore[no-any-return]


def decode_npdu(data: bytes | bytearray | memoryview, *, offset: int = 0) -> Npdu:
    """Decode a whole NPDU (no L2 header, no CRC).  ``offset`` shifts reported positions."""
    raw = data if type(data) is bytes else _as_bytes(data)
    base = offset
    if not raw:
        raise DecodeError("missing NPDU header", field="npdu", offset=base)
    hdr = raw[0]
    version = hdr >> 6
    if version != 0:
        raise DecodeError(f"protocol version {version} not supported (only 0)", field="npdu.version", offset=base)
    pdu_fmt = (hdr >> 4) & 0x03
    dom_len = DOMAIN_LENGTHS[hdr & 0x03]
    address, pos = _decode_address(raw, 1, (hdr >> 2) & 0x03, base)
    end = pos + dom_len
    if end >= len(raw):  # the domain and at least the enclosed PDU's first byte
        _need(raw, pos, dom_len, "npdu.domain", base)
        raise _short(raw, end, 1, _PDU_FORMAT_NAMES[pdu_fmt], base)
    domain = raw[pos:end]
    pdu: EnclosedPdu
    try:
        if pdu_fmt == 0:
            pdu = _decode_tspdu(raw, end, "tpdu", base)
        elif pdu_fmt == 1:
            pdu = _decode_tspdu(raw, end, "spdu", base)
        elif pdu_fmt == 2:
            pdu = _decode_authpdu(raw, end, base)
        else:
            pdu = decode_apdu(raw[end:], base + end)
    except EncodeError as exc:  # a constraint the wire checks above missed: still remote garbage
        raise DecodeError(str(exc), field=exc.field or "npdu", offset=base) from None
    return _mk_npdu(address, pdu, domain)  # type: ignore[no-any-return]


def decode_frame(data: bytes | bytearray | memoryview, crc: bool = True) -> Frame:
    """Decode an LPDU.  With ``crc`` the last two bytes must be its CRC
    (:class:`~dlms14908.errors.CrcError` otherwise)."""
    raw = data if type(data) is bytes else _as_bytes(data)
    if crc:
        raw = strip_crc(raw)
    if len(raw) < 2:
        raise DecodeError("frame shorter than L2 header + NPDU header", field="l2", offset=0)
    return _mk_frame(decode_npdu(raw[1:], offset=1), _L2_HEADERS[raw[0]])  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- JSON view


def _address_jsonable(a: Address) -> dict[str, object]:
    out: dict[str, object] = {"format": a.label, "src_subnet": a.src_subnet, "src_node": a.src_node}
    if isinstance(a, BroadcastAddress):
        out["dst_subnet"] = a.dst_subnet
    elif isinstance(a, GroupAddress):
        out["group"] = a.group
    elif isinstance(a, SubnetNodeAddress):
        out.update(dst_subnet=a.dst_subnet, dst_node=a.dst_node)
    elif isinstance(a, GroupAckAddress):
        out.update(dst_subnet=a.dst_subnet, dst_node=a.dst_node, group=a.group, member=a.member)
    else:
        out.update(dst_subnet=a.dst_subnet, neuron_id=a.neuron_id.hex())
    return out


def apdu_to_jsonable(apdu: AnyApdu) -> dict[str, object]:
    if isinstance(apdu, NvApdu):
        return {
            "class": ApduClass.NETWORK_VARIABLE.value,
            "direction": apdu.direction,
            "selector": apdu.selector,
            "data": apdu.data.hex(),
        }
    return {
        "class": apdu.kind.value,
        "code": apdu.code,
        "name": code_name(apdu.code),
        "data": apdu.data.hex(),
    }


def _m_list_members(m_list: bytes) -> list[int]:
    return [i for i in range(len(m_list) * 8) if m_list[i // 8] >> (i % 8) & 1]


def frame_to_jsonable(frame: Frame | Npdu) -> dict[str, object]:
    """A JSON-ready tree of a frame (or a bare NPDU) for ``--json`` output."""
    out: dict[str, object] = {}
    npdu = frame
    if isinstance(frame, Frame):
        out["l2"] = {
            "priority": frame.l2.priority,
            "alt_path": frame.l2.alt_path,
            "delta_backlog": frame.l2.delta_backlog,
        }
        npdu = frame.npdu
    assert isinstance(npdu, Npdu)
    out["npdu"] = {
        "version": 0,
        "pdu_format": npdu.pdu_format.name,
        "address": _address_jsonable(npdu.address),
        "domain": npdu.domain.hex(),
        "domain_length": len(npdu.domain),
    }
    pdu = npdu.pdu
    if isinstance(pdu, (Tpdu, Spdu)):
        layer = "tpdu" if isinstance(pdu, Tpdu) else "spdu"
        sub: dict[str, object] = {"type": pdu.type.name, "trans_no": pdu.trans_no, "auth": pdu.auth}
        if pdu.m_list is not None:
            sub["m_list"] = pdu.m_list.hex()
            sub["m_list_members"] = _m_list_members(pdu.m_list)
        out[layer] = sub
    elif isinstance(pdu, AuthPdu):
        auth: dict[str, object] = {
            "type": pdu.type.name,
            "trans_no": pdu.trans_no,
            "fmt": pdu.fmt,
            "value": pdu.value.hex(),
        }
        if pdu.group is not None:
            auth["group"] = pdu.group
        out["authpdu"] = auth
    apdu = npdu.apdu
    if apdu is not None:
        out["apdu"] = apdu_to_jsonable(apdu)
    return out
