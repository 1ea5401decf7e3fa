"""ISO/IEC 14908-1 network management (0x60-0x7F) and diagnostics (0x50-0x5F) messages.

Typed codecs for the requests and responses used by the profile and by
commissioning.  Layouts are the public ones of the LON stacks (reference
``lontalk.md`` §1.5; ``osgp-62056-8-8.md`` §1.2; lon-stack-dx ``lcs_netmgmt.c``,
lon-stack-ex ``ni_mgmt.h``).  All multi-byte integers are big-endian.

Response codes: NM success ``0x20 | (c & 0x1F)``, failure ``c & 0x1F``;
ND success ``0x30 | (c & 0x0F)``, failure ``0x10 | (c & 0x0F)``.  Responses
share the code space 0x00-0x3F with application messages, so a response is
decoded against the request code it answers (:func:`decode_response`).

Key material is never shown in ``repr`` nor in :func:`message_to_jsonable`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, ClassVar

from ..errors import DecodeError, EncodeError
from .codes import NdCode, NmCode, NmeSubcode, nd_failure, nd_success, nm_failure, nm_success
from .frame import Apdu

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "AddressEntry",
    "ClearStatusRequest",
    "DomainEntry",
    "ExpandedUpdateKeyRequest",
    "LeaveDomainRequest",
    "NmRequest",
    "ProxyRequest",
    "QueryAddressRequest",
    "QueryAddressResponse",
    "QueryDomainRequest",
    "QueryDomainResponse",
    "QueryIdRequest",
    "QueryIdResponse",
    "QueryStatusRequest",
    "QueryStatusResponse",
    "ReadMemoryRequest",
    "ReadMemoryResponse",
    "RespondToQueryRequest",
    "Response",
    "ServicePin",
    "SetNodeModeRequest",
    "UpdateAddressRequest",
    "UpdateDomainRequest",
    "UpdateGroupAddressRequest",
    "UpdateKeyRequest",
    "WinkRequest",
    "WriteMemoryRequest",
    "decode_request",
    "decode_response",
    "is_response_to",
    "message_to_jsonable",
]

NEURON_ID_LENGTH = 6
PROGRAM_ID_LENGTH = 8
KEY_LENGTH = 6
OMA_KEY_LENGTH = 12
DOMAIN_ENTRY_LENGTH = 15
ADDRESS_ENTRY_LENGTH = 5


def _int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise EncodeError(f"{value!r} not an int in {lo}..{hi}", field=name)


def _bytes(name: str, value: object, length: int | None = None, max_len: int | None = None) -> None:
    if not isinstance(value, bytes):
        raise EncodeError("must be bytes", field=name)
    if length is not None and len(value) != length:
        raise EncodeError(f"must be {length} bytes", field=name)
    if max_len is not None and len(value) > max_len:
        raise EncodeError(f"at most {max_len} bytes", field=name)


def _need(data: bytes, n: int, name: str, exact: bool = True) -> None:
    if len(data) < n or (exact and len(data) != n):
        want = f"{n}" if exact else f">= {n}"
        # +1: offsets count the code byte in front of the body
        raise DecodeError(f"body has {len(data)} bytes, expected {want}", field=name, offset=1 + min(len(data), n))


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True, slots=True)
class DomainEntry:
    """A 15-byte domain-table entry: ``id(6) subnet(1) nonclone|node(1)
    invalid|ls_mode|dhcp|auth_type(2)|id_length(3) (1) key(6)``."""

    domain_id: bytes
    "all six ID bytes as stored; only the first ``length`` are significant"
    subnet: int
    node: int
    length: int
    key: bytes = field(default=bytes(KEY_LENGTH), repr=False)
    non_clone: bool = True
    invalid: bool = False
    auth_type: int = 0
    "0 = standard 48-bit, 1 = OMA"
    ls_mode: bool = False
    dhcp: bool = False

    def __post_init__(self) -> None:
        _bytes("domain.id", self.domain_id, NEURON_ID_LENGTH)
        _int("domain.subnet", self.subnet, 0, 255)
        _int("domain.node", self.node, 0, 127)
        _int("domain.length", self.length, 0, 7)
        _int("domain.auth_type", self.auth_type, 0, 3)
        _bytes("domain.key", self.key, KEY_LENGTH)

    @classmethod
    def make(
        cls, domain: bytes, subnet: int, node: int, key: bytes, *, non_clone: bool = True, invalid: bool = False,
        auth_type: int = 0, ls_mode: bool = False, dhcp: bool = False,
    ) -> DomainEntry:
        """Build an entry from a 0/1/3/6-byte domain ID (zero-padded to 6)."""
        if len(domain) not in (0, 1, 3, 6):
            raise EncodeError("domain ID must be 0, 1, 3 or 6 bytes", field="domain.id")
        return cls(domain.ljust(6, b"\0"), subnet, node, len(domain), key, non_clone=non_clone, invalid=invalid,
                   auth_type=auth_type, ls_mode=ls_mode, dhcp=dhcp)

    @property
    def id(self) -> bytes:
        return self.domain_id[: min(self.length, 6)]

    def encode(self) -> bytes:
        b7 = (0x80 if self.non_clone else 0) | self.node
        b8 = (
            (0x80 if self.invalid else 0)
            | (0x40 if self.ls_mode else 0)
            | (0x20 if self.dhcp else 0)
            | (self.auth_type << 3)
            | self.length
        )
        return self.domain_id + bytes((self.subnet, b7, b8)) + self.key

    @classmethod
    def decode(cls, data: bytes, name: str = "domain") -> DomainEntry:
        _need(data, DOMAIN_ENTRY_LENGTH, name)
        b7, b8 = data[7], data[8]
        return cls(
            data[:6],
            data[6],
            b7 & 0x7F,
            b8 & 0x07,
            data[9:15],
            bool(b7 & 0x80),
            bool(b8 & 0x80),
            (b8 >> 3) & 0x03,
            bool(b8 & 0x40),
            bool(b8 & 0x20),
        )


@dataclass(frozen=True, slots=True)
class AddressEntry:
    """A 5-byte address-table entry, kept as bytes with decoded views.

    Byte 0 bit 7 = 1: group entry ``size(7) | domain(1)member(7) | rpt_timer(4)retry(4) |
    rcv_timer(4)tx_timer(4) | group``; otherwise byte 0 is the type (0 unassigned/turnaround,
    1 subnet/node, 2 unique ID, 3 broadcast) then ``domain|node-or-backlog, rpt|retry,
    tx_timer, subnet``."""

    raw: bytes

    def __post_init__(self) -> None:
        _bytes("address_entry", self.raw, ADDRESS_ENTRY_LENGTH)

    @property
    def is_group(self) -> bool:
        return bool(self.raw[0] & 0x80)

    @property
    def kind(self) -> str:
        if self.is_group:
            return "group"
        return {0: "unassigned", 1: "subnet-node", 2: "unique-id", 3: "broadcast"}.get(self.raw[0], "unknown")

    @property
    def domain_index(self) -> int:
        return self.raw[1] >> 7

    @property
    def retry(self) -> int:
        return self.raw[2] & 0x0F

    @property
    def repeat_timer(self) -> int:
        return self.raw[2] >> 4

    @property
    def transmit_timer(self) -> int:
        return self.raw[3] & 0x0F

    def to_jsonable(self) -> dict[str, object]:
        out: dict[str, object] = {
            "raw": self.raw.hex(),
            "kind": self.kind,
            "domain_index": self.domain_index,
            "retry": self.retry,
            "repeat_timer": self.repeat_timer,
            "transmit_timer": self.transmit_timer,
        }
        if self.is_group:
            out.update(group=self.raw[4], group_size=self.raw[0] & 0x7F, member=self.raw[1] & 0x7F,
                       receive_timer=self.raw[3] >> 4)
        else:
            out.update(subnet=self.raw[4], node_or_backlog=self.raw[1] & 0x7F)
        return out


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class NmRequest:
    """Base of the typed request/unsolicited messages (all frozen dataclasses); ``CODE`` is
    the APDU code."""

    CODE: ClassVar[int]
    SUBCODE: ClassVar[int | None] = None

    def body(self) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_apdu(self) -> Apdu:
        return Apdu(self.CODE, self.body())

    def encode(self) -> bytes:
        return self.to_apdu().encode()

    @classmethod
    def from_body(cls, data: bytes) -> NmRequest:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class QueryIdRequest(NmRequest):
    """Query ID: ``selector [mode offset(2) count data]`` (selector 0 unconfigured,
    1 selected, 2 selected and unconfigured; the optional part matches memory)."""

    CODE: ClassVar[int] = NmCode.QUERY_ID
    selector: int = 0
    mode: int | None = None
    offset: int = 0
    data: bytes = b""

    def __post_init__(self) -> None:
        _int("query_id.selector", self.selector, 0, 255)
        if self.mode is not None:
            _int("query_id.mode", self.mode, 0, 255)
            _int("query_id.offset", self.offset, 0, 0xFFFF)
            _bytes("query_id.data", self.data, max_len=255)
        elif self.data or self.offset:
            raise EncodeError("offset/data need a mode", field="query_id.mode")

    def body(self) -> bytes:
        if self.mode is None:
            return bytes((self.selector,))
        return struct.pack(">BBHB", self.selector, self.mode, self.offset, len(self.data)) + self.data

    @classmethod
    def from_body(cls, data: bytes) -> QueryIdRequest:
        if len(data) == 1:
            return cls(data[0])
        _need(data, 5, "query_id", exact=False)
        sel, mode, off, count = struct.unpack_from(">BBHB", data)
        _need(data, 5 + count, "query_id.data")
        return cls(sel, mode, off, data[5:])


@dataclass(frozen=True, slots=True)
class ServicePin(NmRequest):
    """Service pin message (unsolicited broadcast): Neuron ID(6) + program ID(8)."""

    CODE: ClassVar[int] = NmCode.SERVICE_PIN
    neuron_id: bytes
    program_id: bytes

    def __post_init__(self) -> None:
        _bytes("service_pin.neuron_id", self.neuron_id, NEURON_ID_LENGTH)
        _bytes("service_pin.program_id", self.program_id, PROGRAM_ID_LENGTH)

    def body(self) -> bytes:
        return self.neuron_id + self.program_id

    @classmethod
    def from_body(cls, data: bytes) -> ServicePin:
        _need(data, 14, "service_pin")
        return cls(data[:6], data[6:])


@dataclass(frozen=True, slots=True)
class QueryIdResponse:
    """Query ID success payload: Neuron ID(6) + program ID(8)."""

    neuron_id: bytes
    program_id: bytes

    def __post_init__(self) -> None:
        _bytes("query_id.neuron_id", self.neuron_id, NEURON_ID_LENGTH)
        _bytes("query_id.program_id", self.program_id, PROGRAM_ID_LENGTH)

    def body(self) -> bytes:
        return self.neuron_id + self.program_id

    @classmethod
    def from_body(cls, data: bytes) -> QueryIdResponse:
        _need(data, 14, "query_id_response")
        return cls(data[:6], data[6:])


@dataclass(frozen=True, slots=True)
class RespondToQueryRequest(NmRequest):
    """Respond to Query: 1 = on, 0 = off."""

    CODE: ClassVar[int] = NmCode.RESPOND_TO_QUERY
    on: bool

    def body(self) -> bytes:
        return bytes((1 if self.on else 0,))

    @classmethod
    def from_body(cls, data: bytes) -> RespondToQueryRequest:
        _need(data, 1, "respond_to_query")
        if data[0] > 1:
            raise DecodeError(f"flag {data[0]} is not 0 or 1", field="respond_to_query.on", offset=1)
        return cls(bool(data[0]))


@dataclass(frozen=True, slots=True)
class UpdateDomainRequest(NmRequest):
    """Update Domain: ``index(1) domain entry(15)``."""

    CODE: ClassVar[int] = NmCode.UPDATE_DOMAIN
    index: int
    domain: DomainEntry

    def __post_init__(self) -> None:
        _int("update_domain.index", self.index, 0, 255)

    def body(self) -> bytes:
        return bytes((self.index,)) + self.domain.encode()

    @classmethod
    def from_body(cls, data: bytes) -> UpdateDomainRequest:
        _need(data, 1 + DOMAIN_ENTRY_LENGTH, "update_domain")
        return cls(data[0], DomainEntry.decode(data[1:]))


@dataclass(frozen=True, slots=True)
class LeaveDomainRequest(NmRequest):
    CODE: ClassVar[int] = NmCode.LEAVE_DOMAIN
    index: int

    def __post_init__(self) -> None:
        _int("leave_domain.index", self.index, 0, 255)

    def body(self) -> bytes:
        return bytes((self.index,))

    @classmethod
    def from_body(cls, data: bytes) -> LeaveDomainRequest:
        _need(data, 1, "leave_domain")
        return cls(data[0])


@dataclass(frozen=True, slots=True)
class UpdateKeyRequest(NmRequest):
    """Update Key: ``index(1) delta(6)``; each byte is added mod 256 to the stored key."""

    CODE: ClassVar[int] = NmCode.UPDATE_KEY
    index: int
    key_delta: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _int("update_key.index", self.index, 0, 255)
        _bytes("update_key.key_delta", self.key_delta, KEY_LENGTH)

    def body(self) -> bytes:
        return bytes((self.index,)) + self.key_delta

    @classmethod
    def from_body(cls, data: bytes) -> UpdateKeyRequest:
        _need(data, 1 + KEY_LENGTH, "update_key")
        return cls(data[0], data[1:])


@dataclass(frozen=True, slots=True)
class ExpandedUpdateKeyRequest(NmRequest):
    """Expanded Update Key (0x60, sub-command 0x0A): ``increment(1) key(12)``.

    The 12 bytes are domain-0 key ‖ domain-1 key (the OMA key).  With
    ``increment`` each byte is added mod 256 to the stored key, else it replaces it."""

    CODE: ClassVar[int] = NmCode.EXPANDED
    SUBCODE: ClassVar[int | None] = NmeSubcode.UPDATE_KEY
    increment: bool
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _bytes("expanded_update_key.key", self.key, OMA_KEY_LENGTH)

    def body(self) -> bytes:
        return bytes((NmeSubcode.UPDATE_KEY, 1 if self.increment else 0)) + self.key

    @classmethod
    def from_body(cls, data: bytes) -> ExpandedUpdateKeyRequest:
        _need(data, 2 + OMA_KEY_LENGTH, "expanded_update_key")
        if data[1] > 1:
            raise DecodeError(
                f"increment flag {data[1]} is not 0 or 1", field="expanded_update_key.increment", offset=2
            )
        return cls(bool(data[1]), data[2:])


def apply_key_delta(stored: bytes, delta: bytes) -> bytes:
    """The key after an incremental update: byte-wise addition mod 256."""
    if len(stored) != len(delta):
        raise EncodeError("key and delta lengths differ", field="key")
    return bytes((a + b) & 0xFF for a, b in zip(stored, delta))


@dataclass(frozen=True, slots=True)
class UpdateAddressRequest(NmRequest):
    """Update Address: ``index(1) address entry(5)``."""

    CODE: ClassVar[int] = NmCode.UPDATE_ADDRESS
    index: int
    entry: AddressEntry

    def __post_init__(self) -> None:
        _int("update_address.index", self.index, 0, 255)

    def body(self) -> bytes:
        return bytes((self.index,)) + self.entry.raw

    @classmethod
    def from_body(cls, data: bytes) -> UpdateAddressRequest:
        _need(data, 1 + ADDRESS_ENTRY_LENGTH, "update_address")
        return cls(data[0], AddressEntry(data[1:]))


@dataclass(frozen=True, slots=True)
class QueryAddressRequest(NmRequest):
    CODE: ClassVar[int] = NmCode.QUERY_ADDRESS
    index: int

    def __post_init__(self) -> None:
        _int("query_address.index", self.index, 0, 255)

    def body(self) -> bytes:
        return bytes((self.index,))

    @classmethod
    def from_body(cls, data: bytes) -> QueryAddressRequest:
        _need(data, 1, "query_address")
        return cls(data[0])


@dataclass(frozen=True, slots=True)
class QueryAddressResponse:
    entry: AddressEntry

    def body(self) -> bytes:
        return self.entry.raw

    @classmethod
    def from_body(cls, data: bytes) -> QueryAddressResponse:
        _need(data, ADDRESS_ENTRY_LENGTH, "query_address_response")
        return cls(AddressEntry(data))


@dataclass(frozen=True, slots=True)
class UpdateGroupAddressRequest(NmRequest):
    """Update Group Address: one group-type address entry (5 bytes) [I]."""

    CODE: ClassVar[int] = NmCode.UPDATE_GROUP_ADDRESS
    entry: AddressEntry

    def __post_init__(self) -> None:
        if not self.entry.is_group:
            raise EncodeError("entry is not a group entry", field="update_group_address.entry")

    def body(self) -> bytes:
        return self.entry.raw

    @classmethod
    def from_body(cls, data: bytes) -> UpdateGroupAddressRequest:
        _need(data, ADDRESS_ENTRY_LENGTH, "update_group_address")
        if not data[0] & 0x80:
            raise DecodeError("not a group entry (byte 0 bit 7 clear)", field="update_group_address.entry", offset=1)
        return cls(AddressEntry(data))


@dataclass(frozen=True, slots=True)
class QueryDomainRequest(NmRequest):
    CODE: ClassVar[int] = NmCode.QUERY_DOMAIN
    index: int

    def __post_init__(self) -> None:
        _int("query_domain.index", self.index, 0, 255)

    def body(self) -> bytes:
        return bytes((self.index,))

    @classmethod
    def from_body(cls, data: bytes) -> QueryDomainRequest:
        _need(data, 1, "query_domain")
        return cls(data[0])


@dataclass(frozen=True, slots=True)
class QueryDomainResponse:
    domain: DomainEntry

    def body(self) -> bytes:
        return self.domain.encode()

    @classmethod
    def from_body(cls, data: bytes) -> QueryDomainResponse:
        return cls(DomainEntry.decode(data, "query_domain_response"))


@dataclass(frozen=True, slots=True)
class SetNodeModeRequest(NmRequest):
    """Set Node Mode: ``mode [state]``; modes 0 offline, 1 online, 2 reset,
    3 change state (then ``state`` follows), 4 physical reset."""

    CODE: ClassVar[int] = NmCode.SET_NODE_MODE
    OFFLINE: ClassVar[int] = 0
    ONLINE: ClassVar[int] = 1
    RESET: ClassVar[int] = 2
    CHANGE_STATE: ClassVar[int] = 3
    mode: int
    state: int | None = None

    def __post_init__(self) -> None:
        _int("set_node_mode.mode", self.mode, 0, 255)
        if self.mode == 3:
            if self.state is None:
                raise EncodeError("mode 3 (change state) needs a state", field="set_node_mode.state")
            _int("set_node_mode.state", self.state, 0, 255)
        elif self.state is not None:
            raise EncodeError("only mode 3 carries a state", field="set_node_mode.state")

    def body(self) -> bytes:
        return bytes((self.mode,)) if self.state is None else bytes((self.mode, self.state))

    @classmethod
    def from_body(cls, data: bytes) -> SetNodeModeRequest:
        _need(data, 1, "set_node_mode", exact=False)
        if data[0] == 3:
            _need(data, 2, "set_node_mode.state")
            return cls(3, data[1])
        _need(data, 1, "set_node_mode")
        return cls(data[0])


@dataclass(frozen=True, slots=True)
class ReadMemoryRequest(NmRequest):
    """Read Memory: ``mode offset(2) count``; modes 0 absolute, 1 read-only
    relative, 2 config relative, 3 statistics relative."""

    CODE: ClassVar[int] = NmCode.READ_MEMORY
    mode: int
    offset: int
    count: int

    def __post_init__(self) -> None:
        _int("read_memory.mode", self.mode, 0, 255)
        _int("read_memory.offset", self.offset, 0, 0xFFFF)
        _int("read_memory.count", self.count, 0, 255)

    def body(self) -> bytes:
        return struct.pack(">BHB", self.mode, self.offset, self.count)

    @classmethod
    def from_body(cls, data: bytes) -> ReadMemoryRequest:
        _need(data, 4, "read_memory")
        return cls(*struct.unpack(">BHB", data))


@dataclass(frozen=True, slots=True)
class ReadMemoryResponse:
    data: bytes

    def body(self) -> bytes:
        return self.data

    @classmethod
    def from_body(cls, data: bytes) -> ReadMemoryResponse:
        return cls(data)


@dataclass(frozen=True, slots=True)
class WriteMemoryRequest(NmRequest):
    """Write Memory: ``mode offset(2) count form data(count)``; form 0 no action,
    1 recompute both checksums, 4 config checksum, 8 reset, 9/12 checksum + reset."""

    CODE: ClassVar[int] = NmCode.WRITE_MEMORY
    mode: int
    offset: int
    data: bytes
    form: int = 0

    def __post_init__(self) -> None:
        _int("write_memory.mode", self.mode, 0, 255)
        _int("write_memory.offset", self.offset, 0, 0xFFFF)
        _int("write_memory.form", self.form, 0, 255)
        _bytes("write_memory.data", self.data, max_len=255)

    def body(self) -> bytes:
        return struct.pack(">BHBB", self.mode, self.offset, len(self.data), self.form) + self.data

    @classmethod
    def from_body(cls, data: bytes) -> WriteMemoryRequest:
        _need(data, 5, "write_memory", exact=False)
        mode, off, count, form = struct.unpack_from(">BHBB", data)
        _need(data, 5 + count, "write_memory.data")
        return cls(mode, off, data[5:], form)


@dataclass(frozen=True, slots=True)
class WinkRequest(NmRequest):
    """Wink (0x70): no body is a plain wink; a sub-command and its arguments may follow."""

    CODE: ClassVar[int] = NmCode.WINK
    subcommand: int | None = None
    args: bytes = b""

    def __post_init__(self) -> None:
        if self.subcommand is None:
            if self.args:
                raise EncodeError("arguments need a sub-command", field="wink.subcommand")
        else:
            _int("wink.subcommand", self.subcommand, 0, 255)
            _bytes("wink.args", self.args, max_len=3)

    def body(self) -> bytes:
        return b"" if self.subcommand is None else bytes((self.subcommand,)) + self.args

    @classmethod
    def from_body(cls, data: bytes) -> WinkRequest:
        if not data:
            return cls()
        if len(data) > 4:
            raise DecodeError(f"body of {len(data)} bytes, at most 4", field="wink", offset=5)
        return cls(data[0], data[1:])


@dataclass(frozen=True, slots=True)
class QueryStatusRequest(NmRequest):
    CODE: ClassVar[int] = NdCode.QUERY_STATUS

    def body(self) -> bytes:
        return b""

    @classmethod
    def from_body(cls, data: bytes) -> QueryStatusRequest:
        _need(data, 0, "query_status")
        return cls()


@dataclass(frozen=True, slots=True)
class ClearStatusRequest(NmRequest):
    CODE: ClassVar[int] = NdCode.CLEAR_STATUS

    def body(self) -> bytes:
        return b""

    @classmethod
    def from_body(cls, data: bytes) -> ClearStatusRequest:
        _need(data, 0, "clear_status")
        return cls()


@dataclass(frozen=True, slots=True)
class QueryStatusResponse:
    """Query Status success payload (15 bytes): five 16-bit counters, then
    reset cause, node state, version, error log, model number."""

    transmit_errors: int = 0
    transaction_timeouts: int = 0
    receive_transaction_full: int = 0
    lost_messages: int = 0
    missed_messages: int = 0
    reset_cause: int = 0
    node_state: int = 0
    version: int = 0
    error_log: int = 0
    model_number: int = 0
    _FMT: ClassVar[struct.Struct] = struct.Struct(">5H5B")

    def __post_init__(self) -> None:
        for i, name in enumerate(
            ("transmit_errors", "transaction_timeouts", "receive_transaction_full", "lost_messages",
             "missed_messages", "reset_cause", "node_state", "version", "error_log", "model_number")
        ):
            _int(f"query_status.{name}", getattr(self, name), 0, 0xFFFF if i < 5 else 0xFF)

    def body(self) -> bytes:
        return self._FMT.pack(
            self.transmit_errors, self.transaction_timeouts, self.receive_transaction_full,
            self.lost_messages, self.missed_messages, self.reset_cause, self.node_state,
            self.version, self.error_log, self.model_number,
        )

    @classmethod
    def from_body(cls, data: bytes) -> QueryStatusResponse:
        _need(data, cls._FMT.size, "query_status_response")
        return cls(*cls._FMT.unpack(data))


@dataclass(frozen=True, slots=True)
class ProxyRequest(NmRequest):
    """ND Proxy (0x52): ``sub_command [target send-address]``.

    Sub-commands: 0 query unconfigured (ID), 1 query status, 2 transceiver status.
    Without a target the receiver is the proxy target and answers itself; with
    one (5 bytes: type, domain|node, retry, tx timer, subnet; 11 with a Neuron ID
    when type = 2) it forwards ``0x52 sub_command`` there as a request."""

    CODE: ClassVar[int] = NdCode.PROXY
    sub_command: int
    target: bytes | None = None

    def __post_init__(self) -> None:
        _int("proxy.sub_command", self.sub_command, 0, 255)
        if self.target is not None:
            _bytes("proxy.target", self.target)
            want = 11 if self.target[:1] == b"\x02" else 5
            if len(self.target) != want:
                raise EncodeError(f"target address must be {want} bytes", field="proxy.target")

    def body(self) -> bytes:
        return bytes((self.sub_command,)) + (self.target or b"")

    @classmethod
    def from_body(cls, data: bytes) -> ProxyRequest:
        _need(data, 1, "proxy", exact=False)
        if len(data) == 1:
            return cls(data[0])
        want = 12 if data[1] == 2 else 6
        _need(data, want, "proxy.target")
        return cls(data[0], data[1:])


_REQUESTS: dict[int, type[NmRequest]] = {
    cls.CODE: cls
    for cls in (
        QueryIdRequest, RespondToQueryRequest, UpdateDomainRequest, LeaveDomainRequest, UpdateKeyRequest,
        UpdateAddressRequest, QueryAddressRequest, UpdateGroupAddressRequest, QueryDomainRequest,
        SetNodeModeRequest, ReadMemoryRequest, WriteMemoryRequest, WinkRequest, ServicePin,
        QueryStatusRequest, ClearStatusRequest, ProxyRequest,
    )
}
_EXPANDED: dict[int, type[NmRequest]] = {NmeSubcode.UPDATE_KEY: ExpandedUpdateKeyRequest}

Payload = (
    QueryIdResponse | QueryAddressResponse | QueryDomainResponse | ReadMemoryResponse | QueryStatusResponse | bytes
)
_RESPONSE_PAYLOADS: dict[int, Callable[[bytes], Payload]] = {
    NmCode.QUERY_ID: QueryIdResponse.from_body,
    NmCode.QUERY_ADDRESS: QueryAddressResponse.from_body,
    NmCode.QUERY_DOMAIN: QueryDomainResponse.from_body,
    NmCode.READ_MEMORY: ReadMemoryResponse.from_body,
    NdCode.QUERY_STATUS: QueryStatusResponse.from_body,
}


def decode_request(apdu: Apdu | bytes) -> NmRequest:
    """Decode an NM/ND request APDU into its typed message."""
    if isinstance(apdu, (bytes, bytearray, memoryview)):
        raw = bytes(apdu)
        if not raw:
            raise DecodeError("empty APDU", field="nm.code", offset=0)
        if raw[0] & 0x80:
            raise DecodeError("network variable, not NM/ND", field="nm.code", offset=0)
        apdu = Apdu(raw[0], raw[1:])
    code, data = apdu.code, apdu.data
    if code == NmCode.EXPANDED:
        if not data:
            raise DecodeError("expanded command without sub-command", field="nm.subcode", offset=1)
        sub = _EXPANDED.get(data[0])
        if sub is None:
            raise DecodeError(f"no codec for expanded sub-command 0x{data[0]:02X}", field="nm.subcode", offset=1)
        return sub.from_body(data)
    cls = _REQUESTS.get(code)
    if cls is None:
        raise DecodeError(f"no typed codec for code 0x{code:02X}", field="nm.code", offset=0)
    try:
        return cls.from_body(data)
    except EncodeError as exc:
        raise DecodeError(str(exc), field=exc.field or "nm", offset=1) from None


@dataclass(frozen=True, slots=True)
class Response:
    """An NM/ND response: which request it answers, success or failure, payload."""

    request_code: int
    success: bool
    payload: Payload = b""
    subcode: int | None = None
    "for expanded (0x60) responses, the echoed sub-command when present"

    @property
    def code(self) -> int:
        c = self.request_code
        if 0x50 <= c <= 0x5F:
            return nd_success(c) if self.success else nd_failure(c)
        return nm_success(c) if self.success else nm_failure(c)

    def to_apdu(self) -> Apdu:
        payload = self.payload if isinstance(self.payload, bytes) else self.payload.body()
        head = bytes((self.subcode,)) if self.subcode is not None else b""
        return Apdu(self.code, head + payload)

    def encode(self) -> bytes:
        return self.to_apdu().encode()


def is_response_to(request_code: int, response_code: int) -> bool | None:
    """True for the success code, False for the failure code, None if unrelated."""
    if 0x50 <= request_code <= 0x5F:
        ok, bad = nd_success(request_code), nd_failure(request_code)
    elif 0x60 <= request_code <= 0x7F:
        ok, bad = nm_success(request_code), nm_failure(request_code)
    else:
        raise EncodeError(f"0x{request_code:02X} is not an NM/ND code", field="request_code")
    if response_code == ok:
        return True
    if response_code == bad:
        return False
    return None


def decode_response(request_code: int, apdu: Apdu | bytes) -> Response:
    """Decode the response to an NM/ND request with code ``request_code``."""
    if isinstance(apdu, (bytes, bytearray, memoryview)):
        raw = bytes(apdu)
        if not raw:
            raise DecodeError("empty APDU", field="nm.response_code", offset=0)
        if raw[0] & 0x80:
            raise DecodeError("network variable, not a response", field="nm.response_code", offset=0)
        apdu = Apdu(raw[0], raw[1:])
    verdict = is_response_to(request_code, apdu.code)
    if verdict is None:
        raise DecodeError(
            f"code 0x{apdu.code:02X} does not answer request 0x{request_code:02X}", field="nm.response_code", offset=0
        )
    data = apdu.data
    sub: int | None = None
    if request_code == NmCode.EXPANDED and data:
        sub, data = data[0], data[1:]
    if not verdict:
        return Response(request_code, False, data, sub)
    parse = _RESPONSE_PAYLOADS.get(request_code)
    payload = parse(data) if parse is not None else data
    return Response(request_code, True, payload, sub)


# --------------------------------------------------------------------------- JSON


def _value(v: object) -> object:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, DomainEntry):
        return {
            "id": v.id.hex(), "subnet": v.subnet, "node": v.node, "length": v.length,
            "non_clone": v.non_clone, "invalid": v.invalid, "auth_type": v.auth_type,
            "key": "<redacted>",
        }
    if isinstance(v, AddressEntry):
        return v.to_jsonable()
    return v


def message_to_jsonable(msg: DataclassInstance) -> dict[str, object]:
    """A JSON view of a message (a request, a :class:`Response` or a response payload);
    key fields are replaced by ``"<redacted>"``."""
    out: dict[str, object] = {"message": type(msg).__name__}
    for f in fields(msg):
        name = f.name
        value = getattr(msg, name)
        if name in ("key", "key_delta"):
            out[name] = "<redacted>"
        elif is_dataclass(value) and not isinstance(value, (type, DomainEntry, AddressEntry)):
            out[name] = message_to_jsonable(value)
        else:
            out[name] = _value(value)
    return out
