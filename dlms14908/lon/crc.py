"""ISO/IEC 14908-1 link-layer CRC-16.

Polynomial 0x1021, initial value 0xFFFF, no reflection, final ones' complement
(the catalogued CRC-16/GENIBUS; check value for ``b"123456789"`` is 0xD64E).
The CRC covers the L2 header and the NPDU and is sent high byte first
(reference ``lontalk.md`` §1.6).
"""

from __future__ import annotations

import binascii

from ..errors import CrcError, DecodeError

__all__ = ["crc16", "append_crc", "check_crc", "strip_crc", "CRC_LENGTH"]

CRC_LENGTH = 2


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Return the LonTalk CRC-16 of ``data`` (already complemented, ready to send).

    ``binascii.crc_hqx`` is the CCITT polynomial 0x1021 without reflection, in
    C; with initial value 0xFFFF and the final complement it is CRC-16/GENIBUS.
    (tshark's Lua route in the tests checks it independently.)
    """
    return binascii.crc_hqx(data, 0xFFFF) ^ 0xFFFF


def append_crc(data: bytes | bytearray | memoryview) -> bytes:
    """``data`` followed by its CRC, high byte first."""
    raw = bytes(data)
    return raw + crc16(raw).to_bytes(2, "big")


def check_crc(lpdu: bytes | bytearray | memoryview) -> bool:
    """True when the last two bytes of ``lpdu`` are the CRC of the rest."""
    raw = bytes(lpdu)
    if len(raw) < CRC_LENGTH:
        return False
    return crc16(raw[:-2]) == int.from_bytes(raw[-2:], "big")


def strip_crc(lpdu: bytes | bytearray | memoryview) -> bytes:
    """Check and remove the trailing CRC; raise :class:`CrcError` if it is wrong."""
    raw = bytes(lpdu)
    if len(raw) < CRC_LENGTH:
        raise DecodeError("frame shorter than its CRC", field="crc", offset=0)
    want = crc16(raw[:-2])
    got = int.from_bytes(raw[-2:], "big")
    if want != got:
        raise CrcError(
            f"CRC mismatch: frame carries {got:04X}, computed {want:04X}",
            field="crc",
            offset=len(raw) - 2,
        )
    return raw[:-2]
