"""ISO/IEC 14908-1 APDU message codes ("destin & type" byte) and their names.

Ranges (reference ``lontalk.md`` §1.5): ``00xx xxxx`` application message,
``0100 xxxx`` foreign frame, ``0101 xxxx`` network diagnostic, ``011x xxxx``
network management, ``1dxx xxxx xxxx xxxx`` network variable (two bytes).
Response codes: NM success ``0x20 | (c & 0x1F)``, NM failure ``c & 0x1F``;
ND success ``0x30 | (c & 0x0F)``, ND failure ``0x10 | (c & 0x0F)``.
"""

from __future__ import annotations

from enum import Enum, IntEnum

__all__ = [
    "ApduClass",
    "AppCode",
    "ForeignCode",
    "NdCode",
    "NmCode",
    "NmeSubcode",
    "apdu_class",
    "code_name",
    "nd_failure",
    "nd_success",
    "nm_failure",
    "nm_success",
]


class ApduClass(Enum):
    APPLICATION = "application"
    FOREIGN = "foreign-frame"
    DIAGNOSTIC = "network-diagnostic"
    MANAGEMENT = "network-management"
    NETWORK_VARIABLE = "network-variable"


class NmCode(IntEnum):
    """Network-management request codes (0x60-0x7F)."""

    EXPANDED = 0x60
    QUERY_ID = 0x61
    RESPOND_TO_QUERY = 0x62
    UPDATE_DOMAIN = 0x63
    LEAVE_DOMAIN = 0x64
    UPDATE_KEY = 0x65
    UPDATE_ADDRESS = 0x66
    QUERY_ADDRESS = 0x67
    QUERY_NV_CONFIG = 0x68
    UPDATE_GROUP_ADDRESS = 0x69
    QUERY_DOMAIN = 0x6A
    UPDATE_NV_CONFIG = 0x6B
    SET_NODE_MODE = 0x6C
    READ_MEMORY = 0x6D
    WRITE_MEMORY = 0x6E
    CHECKSUM_RECALC = 0x6F
    WINK = 0x70
    MEMORY_REFRESH = 0x71
    QUERY_SNVT = 0x72
    NV_FETCH = 0x73
    DEVICE_ESCAPE = 0x7D
    ROUTER_ESCAPE = 0x7E
    SERVICE_PIN = 0x7F


class NmeSubcode(IntEnum):
    """Sub-commands of the expanded network-management code 0x60 (those we use)."""

    UPDATE_KEY = 0x0A


class NdCode(IntEnum):
    """Network-diagnostic request codes (0x50-0x5F)."""

    QUERY_STATUS = 0x51
    PROXY = 0x52
    CLEAR_STATUS = 0x53
    QUERY_XCVR = 0x54
    QUERY_STATUS_FLEX = 0x56
    SIGNAL_STRENGTH = 0x57
    PHASE = 0x58


class AppCode(IntEnum):
    """Application message codes with a fixed meaning."""

    ISI = 0x3D
    FTP = 0x3E
    APPLICATION_OFFLINE = 0x3F


class ForeignCode(IntEnum):
    """Foreign-frame codes with a fixed meaning."""

    LTEP_FAILURE = 0x4C
    LTEP = 0x4D
    AES_GCM = 0x4E
    FOREIGN_OFFLINE = 0x4F


def apdu_class(first_byte: int) -> ApduClass:
    """Classify the first APDU byte."""
    if first_byte & 0x80:
        return ApduClass.NETWORK_VARIABLE
    if first_byte & 0xC0 == 0x00:
        return ApduClass.APPLICATION
    if first_byte & 0xF0 == 0x40:
        return ApduClass.FOREIGN
    if first_byte & 0xF0 == 0x50:
        return ApduClass.DIAGNOSTIC
    return ApduClass.MANAGEMENT


def nm_success(request_code: int) -> int:
    return 0x20 | (request_code & 0x1F)


def nm_failure(request_code: int) -> int:
    return request_code & 0x1F


def nd_success(request_code: int) -> int:
    return 0x30 | (request_code & 0x0F)


def nd_failure(request_code: int) -> int:
    return 0x10 | (request_code & 0x0F)


def _enum_name(enum: type[IntEnum], value: int) -> str | None:
    try:
        return enum(value).name
    except ValueError:
        return None


def code_name(code: int) -> str:
    """A human label for a one-byte APDU code as a request (responses share 0x00-0x3F)."""
    cls = apdu_class(code)
    if cls is ApduClass.MANAGEMENT:
        name = _enum_name(NmCode, code)
        return f"NM {name}" if name else f"NM 0x{code:02X}"
    if cls is ApduClass.DIAGNOSTIC:
        name = _enum_name(NdCode, code)
        return f"ND {name}" if name else f"ND 0x{code:02X}"
    if cls is ApduClass.FOREIGN:
        name = _enum_name(ForeignCode, code)
        return f"foreign {name}" if name else f"foreign 0x{code:02X}"
    if cls is ApduClass.APPLICATION:
        name = _enum_name(AppCode, code)
        return f"application {name}" if name else f"application 0x{code:02X}"
    return "network variable"
