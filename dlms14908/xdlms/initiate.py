"""xDLMS-Initiate.request/.response, the conformance block and ConfirmedServiceError.

Green Book §9.5 (InitiateRequest [1], InitiateResponse [8], ConfirmedServiceError [14],
Conformance ::= [APPLICATION 31] BIT STRING (SIZE(24))).  These travel inside the
ACSE user-information (see :mod:`dlms14908.acse`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..errors import DecodeError, EncodeError
from . import _base as b
from ._base import Apdu, LenientIntEnum, register

__all__ = [
    "VAA_NAME_LN",
    "VAA_NAME_SN",
    "ConfirmedServiceError",
    "ConfirmedServiceErrorChoice",
    "Conformance",
    "InitiateRequest",
    "InitiateResponse",
    "ServiceErrorType",
]

#: vaa-name of the LN association (dummy value) and the usual SN association base name
VAA_NAME_LN = 0x0007
VAA_NAME_SN = 0xFA00


class Conformance(enum.IntFlag):
    """The 24 conformance bits; the value is the big-endian 24-bit wire integer
    (bit 0 of the BIT STRING is the most significant bit)."""

    RESERVED_ZERO = 1 << 23
    GENERAL_PROTECTION = 1 << 22
    GENERAL_BLOCK_TRANSFER = 1 << 21
    READ = 1 << 20
    WRITE = 1 << 19
    UNCONFIRMED_WRITE = 1 << 18
    DELTA_VALUE_ENCODING = 1 << 17
    RESERVED_SEVEN = 1 << 16
    ATTRIBUTE0_SUPPORTED_WITH_SET = 1 << 15
    PRIORITY_MGMT_SUPPORTED = 1 << 14
    ATTRIBUTE0_SUPPORTED_WITH_GET = 1 << 13
    BLOCK_TRANSFER_WITH_GET_OR_READ = 1 << 12
    BLOCK_TRANSFER_WITH_SET_OR_WRITE = 1 << 11
    BLOCK_TRANSFER_WITH_ACTION = 1 << 10
    MULTIPLE_REFERENCES = 1 << 9
    INFORMATION_REPORT = 1 << 8
    DATA_NOTIFICATION = 1 << 7
    ACCESS = 1 << 6
    PARAMETERIZED_ACCESS = 1 << 5
    GET = 1 << 4
    SET = 1 << 3
    SELECTIVE_ACCESS = 1 << 2
    EVENT_NOTIFICATION = 1 << 1
    ACTION = 1 << 0

    @classmethod
    def from_bit(cls, n: int) -> Conformance:
        """The flag of BIT STRING bit ``n`` (0..23) as numbered in the Green Book."""
        if not 0 <= n <= 23:
            raise EncodeError(f"bit {n!r} outside 0..23", field="conformance")
        return cls(1 << (23 - n))

    def bit_numbers(self) -> list[int]:
        """Green Book bit numbers that are set."""
        return [n for n in range(24) if int(self) & (1 << (23 - n))]


def enc_conformance(c: int) -> bytes:
    c = int(c)
    if not 0 <= c <= 0xFFFFFF:
        raise EncodeError("conformance must fit 24 bits", field="conformance")
    return b"\x5F\x1F\x04\x00" + c.to_bytes(3, "big")


def dec_conformance(buf: bytes, pos: int, field: str) -> tuple[Conformance, int]:
    b.need(buf, pos, 7, field)
    if buf[pos] != 0x5F or buf[pos + 1] != 0x1F:
        raise DecodeError("expected [APPLICATION 31] tag 5F 1F", field=field, offset=pos)
    if buf[pos + 2] != 0x04:
        raise DecodeError(f"length must be 4, got {buf[pos + 2]}", field=field, offset=pos + 2)
    if buf[pos + 3] != 0:
        raise DecodeError("unused-bits count of the 24-bit string must be 0", field=field,
                          offset=pos + 3)
    return Conformance(int.from_bytes(buf[pos + 4:pos + 7], "big")), pos + 7


def _opt_i8(buf: bytes, pos: int, field: str) -> tuple[int | None, int]:
    flag = b.u8(buf, pos, field)
    if flag == 0:
        return None, pos + 1
    if flag != 1:
        raise DecodeError(f"OPTIONAL flag must be 0 or 1, got 0x{flag:02X}", field=field, offset=pos)
    v = b.u8(buf, pos + 1, field)
    return (v - 256 if v > 127 else v), pos + 2


def _enc_opt_i8(v: int | None, field: str) -> bytes:
    if v is None:
        return b"\x00"
    if not isinstance(v, int) or not -128 <= v <= 127:
        raise EncodeError("must be an Integer8 (-128..127) or None", field=field)
    return bytes((1, v & 0xFF))


@dataclass(frozen=True, slots=True)
class InitiateRequest(Apdu):
    """xDLMS-Initiate.request [1].

    ``response_allowed`` defaults to TRUE and is then encoded as the DEFAULT marker
    (0x00); an explicit ``01 01`` on the wire decodes to True as well."""

    proposed_conformance: Conformance
    client_max_receive_pdu_size: int
    proposed_dlms_version_number: int = 6
    dedicated_key: bytes | None = field(default=None, repr=False)
    response_allowed: bool = True
    proposed_quality_of_service: int | None = None
    TAG = 0x01
    NAME = "initiate-request"

    def to_bytes(self) -> bytes:
        out = bytearray(b"\x01")
        if self.dedicated_key is None:
            out.append(0)
        else:
            out.append(1)
            out += b.enc_octets(b.check_bytes(self.dedicated_key, "dedicated_key"))
        out += b"\x00" if self.response_allowed else b"\x01\x00"
        out += _enc_opt_i8(self.proposed_quality_of_service, "proposed_quality_of_service")
        out.append(b.check_u8(self.proposed_dlms_version_number, "proposed_dlms_version_number"))
        out += enc_conformance(self.proposed_conformance)
        out += b.pack_u16(b.check_u16(self.client_max_receive_pdu_size,
                                      "client_max_receive_pdu_size"))
        return bytes(out)


@register(0x01)
def _dec_initiate_request(buf: bytes) -> InitiateRequest:
    pos = 1
    flag = b.u8(buf, pos, "dedicated_key")
    key: bytes | None = None
    if flag == 1:
        key, pos = b.octets(buf, pos + 1, "dedicated_key")
    elif flag == 0:
        pos += 1
    else:
        raise DecodeError("OPTIONAL flag must be 0 or 1", field="dedicated_key", offset=pos)
    flag = b.u8(buf, pos, "response_allowed")
    if flag == 0:
        allowed = True
        pos += 1
    elif flag == 1:
        allowed = b.boolean(buf, pos + 1, "response_allowed")
        pos += 2
    else:
        raise DecodeError("DEFAULT flag must be 0 or 1", field="response_allowed", offset=pos)
    qos, pos = _opt_i8(buf, pos, "proposed_quality_of_service")
    version = b.u8(buf, pos, "proposed_dlms_version_number")
    conf, pos = dec_conformance(buf, pos + 1, "proposed_conformance")
    size = b.u16(buf, pos, "client_max_receive_pdu_size")
    b.end(buf, pos + 2, "initiate_request")
    return InitiateRequest(conf, size, version, key, allowed, qos)


@dataclass(frozen=True, slots=True)
class InitiateResponse(Apdu):
    """xDLMS-Initiate.response [8]."""

    negotiated_conformance: Conformance
    server_max_receive_pdu_size: int
    negotiated_dlms_version_number: int = 6
    vaa_name: int = VAA_NAME_LN
    negotiated_quality_of_service: int | None = None
    TAG = 0x08
    NAME = "initiate-response"

    def to_bytes(self) -> bytes:
        return (b"\x08"
                + _enc_opt_i8(self.negotiated_quality_of_service, "negotiated_quality_of_service")
                + bytes((b.check_u8(self.negotiated_dlms_version_number,
                                    "negotiated_dlms_version_number"),))
                + enc_conformance(self.negotiated_conformance)
                + b.pack_u16(b.check_u16(self.server_max_receive_pdu_size,
                                         "server_max_receive_pdu_size"))
                + b.pack_u16(b.check_u16(self.vaa_name, "vaa_name")))


@register(0x08)
def _dec_initiate_response(buf: bytes) -> InitiateResponse:
    qos, pos = _opt_i8(buf, 1, "negotiated_quality_of_service")
    version = b.u8(buf, pos, "negotiated_dlms_version_number")
    conf, pos = dec_conformance(buf, pos + 1, "negotiated_conformance")
    size = b.u16(buf, pos, "server_max_receive_pdu_size")
    vaa = b.u16(buf, pos + 2, "vaa_name")
    b.end(buf, pos + 4, "initiate_response")
    return InitiateResponse(conf, size, version, vaa, qos)


class ConfirmedServiceErrorChoice(LenientIntEnum):
    """Which service failed (ConfirmedServiceError CHOICE tag)."""

    INITIATE_ERROR = 1
    GET_STATUS = 2
    GET_NAME_LIST = 3
    GET_VARIABLE_ATTRIBUTE = 4
    READ = 5
    WRITE = 6
    GET_DATA_SET_ATTRIBUTE = 7
    GET_TI_ATTRIBUTE = 8
    CHANGE_SCOPE = 9
    START = 10
    STOP = 11
    RESUME = 12
    MAKE_USABLE = 13
    INITIATE_LOAD = 14
    LOAD_SEGMENT = 15
    TERMINATE_LOAD = 16
    INITIATE_UP_LOAD = 17
    UP_LOAD_SEGMENT = 18
    TERMINATE_UP_LOAD = 19


class ServiceErrorType(LenientIntEnum):
    """ServiceError CHOICE tag (the error class)."""

    APPLICATION_REFERENCE = 0
    HARDWARE_RESOURCE = 1
    VDE_STATE_ERROR = 2
    SERVICE = 3
    DEFINITION = 4
    ACCESS = 5
    INITIATE = 6
    LOAD_DATA_SET = 7
    CHANGE_SCOPE = 8
    TASK = 9
    OTHER = 10


#: names of the ENUMERATED values per ServiceError class (Green Book §9.5)
SERVICE_ERROR_NAMES: dict[int, tuple[str, ...]] = {
    0: ("other", "time-elapsed", "application-unreachable", "application-reference-invalid",
        "application-context-unsupported", "provider-communication-error", "deciphering-error"),
    1: ("other", "memory-unavailable", "processor-resource-unavailable",
        "mass-storage-unavailable", "other-resource-unavailable"),
    2: ("other", "no-dlms-context", "loading-data-set", "status-nochange", "status-inoperable"),
    3: ("other", "pdu-size", "service-unsupported"),
    4: ("other", "object-undefined", "object-class-inconsistent", "object-attribute-inconsistent"),
    5: ("other", "scope-of-access-violated", "object-access-invalid", "hardware-fault",
        "object-unavailable"),
    6: ("other", "dlms-version-too-low", "incompatible-conformance", "pdu-size-too-short",
        "refused-by-the-VDE-Handler"),
    7: ("other", "primitive-out-of-sequence", "not-loadable", "dataset-size-too-large",
        "not-awaited-segment", "interpretation-failure", "storage-failure", "data-set-not-ready"),
    9: ("other", "no-remote-control", "ti-stopped", "ti-running", "ti-unusable"),
}


@dataclass(frozen=True, slots=True)
class ConfirmedServiceError(Apdu):
    """ConfirmedServiceError [14]: service, error class and the class's ENUMERATED value."""

    service: ConfirmedServiceErrorChoice
    error_type: ServiceErrorType
    value: int
    TAG = 0x0E
    NAME = "confirmed-service-error"

    @property
    def value_name(self) -> str:
        names = SERVICE_ERROR_NAMES.get(int(self.error_type), ())
        return names[self.value] if self.value < len(names) else f"unknown-{self.value}"

    def to_bytes(self) -> bytes:
        return bytes((0x0E, b.check_u8(self.service, "service"),
                      b.check_u8(self.error_type, "error_type"), b.check_u8(self.value, "value")))


@register(0x0E)
def _dec_confirmed_service_error(buf: bytes) -> ConfirmedServiceError:
    b.need(buf, 1, 3, "confirmed_service_error")
    b.end(buf, 4, "confirmed_service_error")
    return ConfirmedServiceError(ConfirmedServiceErrorChoice(buf[1]), ServiceErrorType(buf[2]),
                                 buf[3])
