"""OSGP-AES-128-PSK secure-channel management messages (IEC 62056-8-8 Annex D) — design choice.

The Annex D layouts are not public.  These are the provisional layouts of
reference ``osgp-62056-8-8.md`` §2.5/§2.7/§2.8 (an EAP-GPSK GPSK-1..4 analogue),
documented in ``docs/wire-format.md`` §4.  Every opcode and field size comes
from :mod:`dlms14908.profile` §4.  A message is ``opcode(1) || body``; the
adaptation layer carries it in a TYPE = 1 (management) or TYPE = 2 (error) PDU.

All messages are fixed-size.  :func:`decode_message` raises
:class:`~dlms14908.errors.DecodeError` naming the first field that is missing or
invalid (``offset`` = its byte position); constructors raise
:class:`~dlms14908.errors.EncodeError` for wrong sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dlms14908 import profile as P
from dlms14908.errors import DecodeError, EncodeError

__all__ = [
    "COMMISSION_PD_BLOCK_LEN",
    "AuthenticationFailure",
    "ChallengeRequest",
    "ChallengeResponse",
    "CommissionRequest",
    "CommissionResponse",
    "Message",
    "SequenceError",
    "UpdateDomainKeys",
    "UpdateDomainKeysResponse",
    "decode_message",
    "encode_message",
]

COMMISSION_PD_BLOCK_LEN = P.OSGP_COMMISSION_PD_LEN + P.OSGP_TAG_LEN
"""Size of the encrypted PD block of a CommissionRequest (plaintext + CCM tag)."""

# Field kinds: an int size means a bytes field of that size; ("u8",) / ("u32",) integers.
_U8 = "u8"
_U32 = "u32"


class _Codec:
    """Mixin: a fixed layout ``_LAYOUT = ((name, size-or-kind), ...)`` after the opcode."""

    OPCODE: ClassVar[int]
    _LAYOUT: ClassVar[tuple[tuple[str, int | str], ...]]

    def __post_init__(self) -> None:
        for name, kind in self._LAYOUT:
            value = getattr(self, name)
            if kind == _U8:
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
                    raise EncodeError("must be an int 0..255", field=name)
            elif kind == _U32:
                if (
                    not isinstance(value, int)
                    or isinstance(value, bool)
                    or not 0 <= value <= 0xFFFFFFFF
                ):
                    raise EncodeError("must be an int 0..2**32-1", field=name)
            else:
                if not isinstance(value, (bytes, bytearray)) or len(value) != kind:
                    raise EncodeError(f"must be {kind} bytes", field=name)
                if isinstance(value, bytearray):
                    object.__setattr__(self, name, bytes(value))
        self._validate()

    def _validate(self) -> None:
        """Extra semantic checks; overridden where a field has reserved values."""

    @classmethod
    def wire_length(cls) -> int:
        return 1 + sum(4 if k == _U32 else 1 if k == _U8 else int(k) for _, k in cls._LAYOUT)

    def encode(self) -> bytes:
        out = bytearray([self.OPCODE])
        for name, kind in self._LAYOUT:
            value = getattr(self, name)
            if kind == _U8:
                out.append(value)
            elif kind == _U32:
                out += value.to_bytes(4, "big")
            else:
                out += value
        return bytes(out)

    def mac_input(self) -> bytes:
        """The bytes covered by this message's own MAC: the encoding up to the ``mac`` field."""
        names = [n for n, _ in self._LAYOUT]
        if "mac" not in names:
            raise EncodeError("message has no MAC field", field="mac")
        return self.encode()[: self.wire_length() - P.OSGP_HANDSHAKE_MAC_LEN]

    @classmethod
    def _decode_body(cls, buf: bytes) -> _Codec:
        pos = 1
        values: dict[str, object] = {}
        for name, kind in cls._LAYOUT:
            size = 4 if kind == _U32 else 1 if kind == _U8 else int(kind)
            if len(buf) - pos < size:
                raise DecodeError(
                    f"truncated: need {size} bytes, have {len(buf) - pos}", field=name, offset=pos
                )
            chunk = buf[pos : pos + size]
            values[name] = int.from_bytes(chunk, "big") if kind in (_U8, _U32) else bytes(chunk)
            pos += size
        if pos != len(buf):
            raise DecodeError(f"{len(buf) - pos} trailing bytes", field="trailing", offset=pos)
        cls._check_decoded(values)
        return cls(**values)

    @classmethod
    def _check_decoded(cls, values: dict[str, object]) -> None:
        """Reject reserved values with a DecodeError (overridden)."""


@dataclass(frozen=True, slots=True)
class ChallengeRequest(_Codec):
    """GPSK-1 analogue, NNAP → LNAP: ``ID_S || RAND_S || CSuite_Sel``."""

    id_s: bytes
    rand_s: bytes
    csuite: bytes = P.OSGP_CSUITE_SEL
    OPCODE: ClassVar[int] = P.OSGP_OP_CHALLENGE_REQUEST
    _LAYOUT: ClassVar[tuple[tuple[str, int | str], ...]] = (
        ("id_s", P.OSGP_ID_LEN),
        ("rand_s", P.OSGP_RAND_LEN),
        ("csuite", len(P.OSGP_CSUITE_SEL)),
    )


@dataclass(frozen=True, slots=True)
class ChallengeResponse(_Codec):
    """GPSK-2 analogue, LNAP → NNAP: ``ID_C || ID_S || RAND_C || RAND_S || CSuite_Sel || MAC``."""

    id_c: bytes
    id_s: bytes
    rand_c: bytes
    rand_s: bytes
    csuite: bytes
    mac: bytes
    OPCODE: ClassVar[int] = P.OSGP_OP_CHALLENGE_RESPONSE
    _LAYOUT: ClassVar[tuple[tuple[str, int | str], ...]] = (
        ("id_c", P.OSGP_ID_LEN),
        ("id_s", P.OSGP_ID_LEN),
        ("rand_c", P.OSGP_RAND_LEN),
        ("rand_s", P.OSGP_RAND_LEN),
        ("csuite", len(P.OSGP_CSUITE_SEL)),
        ("mac", P.OSGP_HANDSHAKE_MAC_LEN),
    )


@dataclass(frozen=True, slots=True)
class CommissionRequest(_Codec):
    """GPSK-3 analogue, NNAP → LNAP: ``RAND_C || RAND_S || ID_S || CSuite_Sel || PD || MAC_SK``.

    ``pd`` is ``OSGP_AE_PK(initial SeqNo(4) || KeyID(1))`` (ciphertext + tag)."""

    rand_c: bytes
    rand_s: bytes
    id_s: bytes
    csuite: bytes
    pd: bytes
    mac: bytes
    OPCODE: ClassVar[int] = P.OSGP_OP_COMMISSION_REQUEST
    _LAYOUT: ClassVar[tuple[tuple[str, int | str], ...]] = (
        ("rand_c", P.OSGP_RAND_LEN),
        ("rand_s", P.OSGP_RAND_LEN),
        ("id_s", P.OSGP_ID_LEN),
        ("csuite", len(P.OSGP_CSUITE_SEL)),
        ("pd", COMMISSION_PD_BLOCK_LEN),
        ("mac", P.OSGP_HANDSHAKE_MAC_LEN),
    )


@dataclass(frozen=True, slots=True)
class CommissionResponse(_Codec):
    """GPSK-4 analogue, LNAP → NNAP: ``status || MAC_SK``.

    The MAC also covers ``RAND_C || RAND_S || ID_C || ID_S`` (not on the wire), see
    :func:`osgp.keys.commission_response_mac_input`."""

    status: int
    mac: bytes
    OPCODE: ClassVar[int] = P.OSGP_OP_COMMISSION_RESPONSE
    _LAYOUT: ClassVar[tuple[tuple[str, int | str], ...]] = (
        ("status", _U8),
        ("mac", P.OSGP_HANDSHAKE_MAC_LEN),
    )


@dataclass(frozen=True, slots=True)
class UpdateDomainKeys(_Codec):
    """NNAP → LNAP, always inside a protected PDU: ``KeyID_new || flags || AESKW_Kkek(key)``."""

    key_id: int
    flags: int
    wrapped_key: bytes
    OPCODE: ClassVar[int] = P.OSGP_OP_UPDATE_DOMAIN_KEYS
    _LAYOUT: ClassVar[tuple[tuple[str, int | str], ...]] = (
        ("key_id", _U8),
        ("flags", _U8),
        ("wrapped_key", P.OSGP_WRAPPED_KEY_LEN),
    )

    def _validate(self) -> None:
        if self.flags & ~P.OSGP_UDK_FLAGS_KNOWN:
            raise EncodeError("reserved flag bits set", field="flags")

    @classmethod
    def _check_decoded(cls, values: dict[str, object]) -> None:
        flags = int(values["flags"])  # type: ignore[call-overload]
        if flags & ~P.OSGP_UDK_FLAGS_KNOWN:
            raise DecodeError(f"reserved flag bits set: 0x{flags:02x}", field="flags", offset=2)


@dataclass(frozen=True, slots=True)
class UpdateDomainKeysResponse(_Codec):
    """LNAP → NNAP, inside a protected PDU: ``KeyID_new || status``."""

    key_id: int
    status: int
    OPCODE: ClassVar[int] = P.OSGP_OP_UPDATE_DOMAIN_KEYS_RESPONSE
    _LAYOUT: ClassVar[tuple[tuple[str, int | str], ...]] = (("key_id", _U8), ("status", _U8))


@dataclass(frozen=True, slots=True)
class AuthenticationFailure(_Codec):
    """Unprotected error: ``KeyID || SeqNo`` of the rejected frame (never any plaintext)."""

    key_id: int
    seq: int
    OPCODE: ClassVar[int] = P.OSGP_OP_AUTHENTICATION_FAILURE
    _LAYOUT: ClassVar[tuple[tuple[str, int | str], ...]] = (("key_id", _U8), ("seq", _U32))


@dataclass(frozen=True, slots=True)
class SequenceError(_Codec):
    """Unprotected error: ``KeyID || expected_min_seq``."""

    key_id: int
    expected_min_seq: int
    OPCODE: ClassVar[int] = P.OSGP_OP_SEQUENCE_ERROR
    _LAYOUT: ClassVar[tuple[tuple[str, int | str], ...]] = (
        ("key_id", _U8),
        ("expected_min_seq", _U32),
    )


Message = (
    ChallengeRequest
    | ChallengeResponse
    | CommissionRequest
    | CommissionResponse
    | UpdateDomainKeys
    | UpdateDomainKeysResponse
    | AuthenticationFailure
    | SequenceError
)

_BY_OPCODE: dict[int, type[_Codec]] = {
    cls.OPCODE: cls
    for cls in (
        ChallengeRequest,
        ChallengeResponse,
        CommissionRequest,
        CommissionResponse,
        UpdateDomainKeys,
        UpdateDomainKeysResponse,
        AuthenticationFailure,
        SequenceError,
    )
}
assert len(_BY_OPCODE) == 8, "opcodes in dlms14908.profile §4 must be distinct"


def decode_message(data: bytes | bytearray | memoryview) -> Message:
    """Decode one management/error message (``opcode || body``)."""
    buf = bytes(data)
    if not buf:
        raise DecodeError("empty message", field="opcode", offset=0)
    cls = _BY_OPCODE.get(buf[0])
    if cls is None:
        raise DecodeError(f"unknown opcode 0x{buf[0]:02x}", field="opcode", offset=0)
    return cls._decode_body(buf)  # type: ignore[return-value]


def encode_message(message: Message) -> bytes:
    """Encode one message (same as ``message.encode()``)."""
    if not isinstance(message, _Codec):
        raise EncodeError(f"not an OSGP message: {type(message).__name__}", field="message")
    return message.encode()
