"""ISO/IEC 14908-1 link-layer CRC-16.

Polynomial 0x1021, initial value 0xFFFF, no reflection, final ones' complement
(the catalogued CRC-16/GENIBUS; check value for ``b"123456789"`` is 0xD64E).
The CRC covers the L2 header and the NPDU and is sent high byte first
(reference ``lontalk.md`` §1.6).
"""

from __future__ import annotations

import struct
from binascii import crc_hqx

from ..errors import CrcError, DecodeError

__all__ = ["CRC_LENGTH", "CRC_RESIDUE", "append_crc", "check_crc", "crc16", "strip_crc"]

CRC_LENGTH = 2
#: ``crc_hqx(lpdu, 0xFFFF)`` of an LPDU *with* its correct CRC (the CRC-16/GENIBUS residue):
#: one pass over the whole frame checks it, no slicing.  Exact: appending two bytes to a
#: fixed CRC register is a bijection, so only the right CRC gives the residue.
CRC_RESIDUE = 0x1D0F
_pack = struct.Struct(">H").pack


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Return the LonTalk CRC-16 of ``data`` (already complemented, ready to send).

    ``binascii.crc_hqx`` is the CCITT polynomial 0x1021 without reflection, in
    C; with initial value 0xFFFF and the final complement it is CRC-16/GENIBUS.
    (tshark's Lua route in the tests checks it independently.)
    """
    return crc_hqx(data, 0xFFFF) ^ 0xFFFF


def append_crc(data: bytes | bytearray | memoryview) -> bytes:
    """``data`` followed by its CRC, high byte first."""
    raw = data if type(data) is bytes else bytes(data)
    return raw + _pack(crc_hqx(raw, 0xFFFF) ^ 0xFFFF)


def check_crc(lpdu: bytes | bytearray | memoryview) -> bool:
    """True when the last two bytes of ``lpdu`` are the CRC of the rest."""
    return len(lpdu) >= CRC_LENGTH and crc_hqx(lpdu, 0xFFFF) == CRC_RESIDUE


def strip_crc(lpdu: bytes | bytearray | memoryview) -> bytes:
    """Check and remove the trailing CRC; raise :class:`CrcError` if it is wrong."""
    raw = lpdu if type(lpdu) is bytes else bytes(lpdu)
    if len(raw) < CRC_LENGTH:
        raise DecodeError("frame shorter than its CRC", field="crc", offset=0)
    if crc_hqx(raw, 0xFFFF) != CRC_RESIDUE:
        want = crc16(raw[:-2])
        got = int.from_bytes(raw[-2:], "big")
        raise CrcError(
            f"CRC mismatch: frame carries {got:04X}, computed {want:04X}",
            field="crc",
            offset=len(raw) - 2,
        )
    return raw[:-2]
