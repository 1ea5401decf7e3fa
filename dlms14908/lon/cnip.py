"""ISO/IEC 14908-4 (CN/IP, EIA-852) packet header codec — codec only, no I/O.

Common header, 20 bytes, big-endian (reference ``lontalk.md`` §3.2; Wireshark
``packet-cnip.c``)::

    length(2, whole packet incl. header) version(1)=1 type(1) ext_hdr(1, 32-bit words)
    flags(1: b5 security, b4..0 protocol; 0 = ISO/IEC 14908-1) vendor(2) session(4)
    sequence(4) timestamp(4, ms)

then ``4 * ext_hdr`` bytes of extension header, then the payload (for a data
packet, type 0x01: one LonTalk LPDU including its CRC).  With the security flag
set a 16-byte MD5 digest follows the payload; we treat it as the last 16 bytes
of the packet, inside ``length`` [I].  Data packets go to UDP 1628 (normal) or
1629 (urgent/priority).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from ..errors import DecodeError, EncodeError

__all__ = [
    "DIGEST_LENGTH",
    "HEADER_LENGTH",
    "PORT_NORMAL",
    "PORT_URGENT",
    "PROTOCOL_ISO14908_1",
    "CnipPacket",
    "CnipPacketType",
    "decode_packet",
    "encode_data_packet",
    "encode_packet",
]

HEADER_LENGTH = 20
DIGEST_LENGTH = 16
PORT_NORMAL = 1628
PORT_URGENT = 1629
PROTOCOL_ISO14908_1 = 0
_HDR = struct.Struct(">HBBBBHIII")
_FLAG_SECURITY = 0x20


class CnipPacketType(IntEnum):
    DATA = 0x01
    DEVICE_REGISTRATION = 0x03
    CHANNEL_MEMBERSHIP = 0x04
    SEND_LIST = 0x06
    ACKNOWLEDGE = 0x07
    CHANNEL_ROUTING = 0x08
    STATISTICS_REQUEST = 0x60
    DEVICE_CONFIGURATION_REQUEST = 0x63
    CHANNEL_MEMBERSHIP_REQUEST = 0x64
    SEND_LIST_REQUEST = 0x66
    CHANNEL_ROUTING_REQUEST = 0x68
    STATISTICS_RESPONSE = 0x70
    DEVICE_CONFIGURATION = 0x71
    SEGMENT = 0x7F


@dataclass(frozen=True, slots=True)
class CnipPacket:
    """One CN/IP packet.  ``payload`` excludes header, extension header and digest."""

    payload: bytes
    packet_type: int = CnipPacketType.DATA
    session: int = 0
    sequence: int = 0
    timestamp: int = 0
    vendor: int = 0
    protocol: int = PROTOCOL_ISO14908_1
    version: int = 1
    ext_header: bytes = b""
    digest: bytes | None = None
    reserved_flags: int = 0
    "flag bits 7..6, kept so that a decoded packet re-encodes byte for byte"

    def __post_init__(self) -> None:
        for name, hi in (
            ("packet_type", 0xFF),
            ("session", 0xFFFFFFFF),
            ("sequence", 0xFFFFFFFF),
            ("timestamp", 0xFFFFFFFF),
            ("vendor", 0xFFFF),
            ("protocol", 0x1F),
            ("version", 0xFF),
            ("reserved_flags", 3),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
                raise EncodeError(f"{value!r} out of range 0..{hi}", field=f"cnip.{name}")
        if not isinstance(self.payload, bytes):
            raise EncodeError("must be bytes", field="cnip.payload")
        if not isinstance(self.ext_header, bytes) or len(self.ext_header) % 4 or len(self.ext_header) > 255 * 4:
            raise EncodeError("extension header must be bytes, a multiple of 4, <= 1020", field="cnip.ext_header")
        if self.digest is not None and (not isinstance(self.digest, bytes) or len(self.digest) != DIGEST_LENGTH):
            raise EncodeError(f"digest must be {DIGEST_LENGTH} bytes", field="cnip.digest")
        if self.length > 0xFFFF:
            raise EncodeError(f"packet length {self.length} > 65535", field="cnip.length")

    @property
    def security(self) -> bool:
        return self.digest is not None

    @property
    def length(self) -> int:
        return HEADER_LENGTH + len(self.ext_header) + len(self.payload) + (DIGEST_LENGTH if self.digest else 0)

    @property
    def flags(self) -> int:
        return (self.reserved_flags << 6) | (_FLAG_SECURITY if self.digest is not None else 0) | self.protocol


def encode_packet(packet: CnipPacket) -> bytes:
    """Serialise a :class:`CnipPacket`."""
    if not isinstance(packet, CnipPacket):
        raise EncodeError("not a CnipPacket", field="cnip")
    head = _HDR.pack(
        packet.length,
        packet.version,
        packet.packet_type,
        len(packet.ext_header) // 4,
        packet.flags,
        packet.vendor,
        packet.session,
        packet.sequence,
        packet.timestamp,
    )
    return head + packet.ext_header + packet.payload + (packet.digest or b"")


def encode_data_packet(
    lpdu: bytes, *, session: int = 0, sequence: int = 0, timestamp: int = 0, vendor: int = 0
) -> bytes:
    """A CN/IP data packet (type 0x01, protocol 0) carrying one LPDU (with CRC)."""
    return encode_packet(
        CnipPacket(bytes(lpdu), session=session, sequence=sequence, timestamp=timestamp, vendor=vendor)
    )


def decode_packet(data: bytes | bytearray | memoryview) -> CnipPacket:
    """Parse one CN/IP packet occupying all of ``data``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodeError(f"expected bytes, got {type(data).__name__}", field="data")
    raw = bytes(data)
    if len(raw) < HEADER_LENGTH:
        raise DecodeError(f"{len(raw)} bytes, header needs {HEADER_LENGTH}", field="cnip.header", offset=0)
    length, version, ptype, ext_words, flags, vendor, session, seq, ts = _HDR.unpack_from(raw, 0)
    if length != len(raw):
        raise DecodeError(
            f"length field says {length}, packet has {len(raw)} bytes", field="cnip.length", offset=0
        )
    pos = HEADER_LENGTH
    end_ext = pos + 4 * ext_words
    if end_ext > len(raw):
        raise DecodeError("extension header runs past the packet", field="cnip.ext_header", offset=4)
    ext = raw[pos:end_ext]
    end = len(raw)
    digest: bytes | None = None
    if flags & _FLAG_SECURITY:
        if end - end_ext < DIGEST_LENGTH:
            raise DecodeError("security flag set but no room for the digest", field="cnip.digest", offset=end_ext)
        digest = raw[end - DIGEST_LENGTH :]
        end -= DIGEST_LENGTH
    return CnipPacket(
        raw[end_ext:end],
        packet_type=ptype,
        session=session,
        sequence=seq,
        timestamp=ts,
        vendor=vendor,
        protocol=flags & 0x1F,
        version=version,
        ext_header=ext,
        digest=digest,
        reserved_flags=flags >> 6,
    )
