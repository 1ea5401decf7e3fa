"""ISO/IEC 14908-1 link-layer CRC-16.

Polynomial 0x1021, initial value 0xFFFF, no reflection, final ones' complement
(the catalogued CRC-16/GENIBUS; check value for ``b"123456789"`` is 0xD64E).
The CRC covers the L2 header and the NPDU and is sent high byte first
(reference ``lontalk.md`` §1.6).
"""

from __future__ import annotations

from ..errors import CrcError, DecodeError

__all__ = ["crc16", "append_crc", "check_crc", "strip_crc", "CRC_LENGTH"]

CRC_LENGTH = 2
_POLY = 0x1021


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        reg = byte << 8
        for _ in range(8):
            reg = ((reg << 1) ^ _POLY) if reg & 0x8000 else (reg << 1)
        table.append(reg & 0xFFFF)
    return tuple(table)


_TABLE = _make_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Return the LonTalk CRC-16 of ``data`` (already complemented, ready to send)."""
    reg = 0xFFFF
    table = _TABLE
    for b in bytes(data):
        reg = ((reg << 8) & 0xFFFF) ^ table[(reg >> 8) ^ b]
    return reg ^ 0xFFFF


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
