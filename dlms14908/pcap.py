"""pcap / pcapng for LonTalk traffic: streaming reader, incremental writer.

No LINKTYPE exists for raw LonTalk frames (reference ``lontalk.md`` §3.3), so
frames are written one of two ways:

* ``upper-pdu`` — LINKTYPE_WIRESHARK_UPPER_PDU (252).  Each record starts with
  exported-PDU TLVs (2-byte big-endian tag, 2-byte big-endian length, value):
  tag 14 dissector-table name ``cnip.protocol``, tag 32 numeric value 0 (4 bytes,
  big-endian), tag 33 protocol-column text, tag 0 end.  The raw LPDU (with CRC)
  follows; Wireshark's ``lon`` dissector decodes it directly.
* ``cnip`` — Ethernet / IPv4 / UDP to port 1628 (1629 for priority frames) /
  CN/IP data packet (ISO/IEC 14908-4) / LPDU.

``user0`` (LINKTYPE_USER0 = 147, the bare LPDU) is also written and read; the
test suite pairs it with a Lua dissector that checks the CRC.

Reading accepts classic pcap (either byte order, µs or ns) and pcapng (SHB,
IDB, EPB, SPB, OPB; other blocks skipped), one record at a time with a bounded
record size.  Broken file structure raises :class:`~dlms14908.errors.DecodeError`;
records that are not LonTalk are reported per frame (``CapturedFrame.finding``).
"""

from __future__ import annotations

import ipaddress
import json
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal, Protocol

from .errors import DecodeError, EncodeError
from .lon import cnip

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "LINKTYPE_USER0",
    "LINKTYPE_WIRESHARK_UPPER_PDU",
    "MAX_RECORD",
    "CapturedFrame",
    "LonCaptureWriter",
    "PcapRecord",
    "PcapWriter",
    "RecordingLink",
    "Route",
    "exported_pdu_tags",
    "extract_lpdu",
    "iter_lon_frames",
    "iter_records",
    "open_capture",
    "parse_exported_pdu",
    "udp_ipv4_ethernet",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_USER0 = 147
LINKTYPE_IPV4 = 228
LINKTYPE_WIRESHARK_UPPER_PDU = 252

#: records larger than this are refused (bounded memory on garbage input)
MAX_RECORD = 1 << 18

EXP_PDU_TAG_END_OF_OPT = 0
EXP_PDU_TAG_DISSECTOR_NAME = 12
EXP_PDU_TAG_DISSECTOR_TABLE_NAME = 14
EXP_PDU_TAG_DISSECTOR_TABLE_NAME_NUM_VAL = 32
EXP_PDU_TAG_COL_PROT_TEXT = 33

_PCAP_MAGIC_US = 0xA1B2C3D4
_PCAP_MAGIC_NS = 0xA1B23C4D
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D

Route = Literal["upper-pdu", "cnip", "user0"]
_ROUTE_LINKTYPE = {"upper-pdu": LINKTYPE_WIRESHARK_UPPER_PDU, "cnip": LINKTYPE_ETHERNET, "user0": LINKTYPE_USER0}


@dataclass(frozen=True, slots=True)
class PcapRecord:
    """One captured packet as stored in the file."""

    index: int
    "1-based record number (tshark's frame.number)"
    timestamp: float
    linktype: int
    data: bytes
    original_length: int


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """A LonTalk LPDU found in a capture record, or a finding explaining why not."""

    index: int
    timestamp: float
    route: str
    lpdu: bytes | None
    finding: str | None = None
    cnip: cnip.CnipPacket | None = None
    udp_dst_port: int | None = None


# --------------------------------------------------------------------------- writing


class PcapWriter:
    """Classic pcap writer (little-endian, microsecond timestamps); writes as it goes."""

    def __init__(self, fileobj: BinaryIO, linktype: int, *, snaplen: int = 65535) -> None:
        self._f = fileobj
        self.linktype = linktype
        self.snaplen = snaplen
        self.count = 0
        fileobj.write(struct.pack("<IHHiIII", _PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, linktype))

    def write(self, data: bytes, timestamp: float) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EncodeError("record data must be bytes", field="pcap.data")
        if len(data) > self.snaplen:
            raise EncodeError(f"record of {len(data)} bytes exceeds snaplen {self.snaplen}", field="pcap.data")
        if timestamp < 0:
            raise EncodeError("timestamp must be >= 0", field="pcap.timestamp")
        usec_total = round(timestamp * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        self._f.write(struct.pack("<IIII", sec, usec, len(data), len(data)))
        self._f.write(bytes(data))
        self.count += 1

    def flush(self) -> None:
        self._f.flush()


def exported_pdu_tags(table: str = "cnip.protocol", value: int = 0, column: str | None = "LON") -> bytes:
    """The exported-PDU TLV header that routes the PDU through a numeric dissector table."""
    name = table.encode("ascii")
    out = bytearray()
    out += struct.pack(">HH", EXP_PDU_TAG_DISSECTOR_TABLE_NAME, len(name)) + name
    out += struct.pack(">HHI", EXP_PDU_TAG_DISSECTOR_TABLE_NAME_NUM_VAL, 4, value)
    if column:
        text = column.encode("utf-8")
        out += struct.pack(">HH", EXP_PDU_TAG_COL_PROT_TEXT, len(text)) + text
    out += struct.pack(">HH", EXP_PDU_TAG_END_OF_OPT, 0)
    return bytes(out)


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_ipv4_ethernet(
    payload: bytes,
    *,
    src_ip: str = "192.0.2.1",
    dst_ip: str = "192.0.2.2",
    src_port: int = cnip.PORT_NORMAL,
    dst_port: int = cnip.PORT_NORMAL,
    ip_id: int = 0,
    src_mac: bytes = b"\x02\x00\x00\x00\x00\x01",
    dst_mac: bytes = b"\x02\x00\x00\x00\x00\x02",
) -> bytes:
    """An Ethernet II / IPv4 / UDP frame around ``payload`` (UDP checksum 0 = none)."""
    udp_len = 8 + len(payload)
    if 20 + udp_len > 0xFFFF:
        raise EncodeError("payload too large for one IPv4 datagram", field="udp.payload")
    udp = struct.pack(">HHHH", src_port, dst_port, udp_len, 0)
    src = ipaddress.IPv4Address(src_ip).packed
    dst = ipaddress.IPv4Address(dst_ip).packed
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ip_id & 0xFFFF, 0x4000, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack(">H", _ip_checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + udp + bytes(payload)


class LonCaptureWriter:
    """Record LonTalk LPDUs (with CRC) into a pcap file along one route.

    For ``cnip`` the CN/IP sequence number counts up from 1 and the timestamp
    field carries milliseconds; priority frames (L2 bit 7) go to UDP 1629."""

    def __init__(
        self,
        fileobj: BinaryIO,
        route: Route = "upper-pdu",
        *,
        src_ip: str = "192.0.2.1",
        dst_ip: str = "192.0.2.2",
        session: int = 0,
    ) -> None:
        if route not in _ROUTE_LINKTYPE:
            raise EncodeError(f"unknown route {route!r}", field="route")
        self.route = route
        self._pcap = PcapWriter(fileobj, _ROUTE_LINKTYPE[route])
        self._tags = exported_pdu_tags()
        self._src_ip = src_ip
        self._dst_ip = dst_ip
        self._session = session
        self._seq = 0
        self._owned: BinaryIO | None = None

    @property
    def count(self) -> int:
        return self._pcap.count

    def write_frame(self, lpdu: bytes, timestamp: float, *, urgent: bool | None = None) -> None:
        lpdu = bytes(lpdu)
        if self.route == "upper-pdu":
            self._pcap.write(self._tags + lpdu, timestamp)
        elif self.route == "user0":
            self._pcap.write(lpdu, timestamp)
        else:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            if urgent is None:
                urgent = bool(lpdu and lpdu[0] & 0x80)
            port = cnip.PORT_URGENT if urgent else cnip.PORT_NORMAL
            packet = cnip.encode_data_packet(
                lpdu,
                session=self._session,
                sequence=self._seq,
                timestamp=int(timestamp * 1000) & 0xFFFFFFFF,
            )
            frame = udp_ipv4_ethernet(
                packet,
                src_ip=self._src_ip,
                dst_ip=self._dst_ip,
                src_port=port,
                dst_port=port,
                ip_id=self._seq,
            )
            self._pcap.write(frame, timestamp)

    def flush(self) -> None:
        self._pcap.flush()

    def close(self) -> None:
        """Flush; close the file too when :func:`open_capture` opened it."""
        if self._owned is not None:
            self._owned.close()
            self._owned = None
        else:
            self._pcap.flush()


class SerialLogWriter:
    """Record LonTalk LPDUs (with CRC) as the project's serial-link log: JSON lines
    ``{"t": seconds, "dir": "tx" | "rx", "lpdu": hex}``, read back by ``dlms-analyze capture``
    (:mod:`dlms14908.analyzer.sources`).  Same interface as :class:`LonCaptureWriter`."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._owned: BinaryIO | None = None

    def write_frame(self, lpdu: bytes, timestamp: float, *, direction: str | None = None,
                    urgent: bool | None = None) -> None:
        line = {"t": round(timestamp, 6), "lpdu": bytes(lpdu).hex()}
        if direction is not None:
            line["dir"] = direction
        self._f.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None
        else:
            self._f.flush()


def open_capture(
    path: str,
    route: Route = "upper-pdu",
    *,
    src_ip: str = "192.0.2.1",
    dst_ip: str = "192.0.2.2",
    session: int = 0,
) -> LonCaptureWriter | SerialLogWriter:
    """Create ``path`` and return a writer that owns it (``writer.close()`` closes the file).

    A path ending in ``.jsonl`` gets the serial-link log (JSON lines); anything else a
    pcap along ``route``."""
    if path.endswith(".jsonl"):
        log = SerialLogWriter(open(path, "wb"))  # noqa: SIM115 - closed by close()
        log._owned = log._f
        return log
    f = open(path, "wb")  # noqa: SIM115 - handed to the writer, closed by close()
    try:
        writer = LonCaptureWriter(f, route, src_ip=src_ip, dst_ip=dst_ip, session=session)
    except BaseException:
        f.close()
        raise
    writer._owned = f
    return writer


class _FrameLinkLike(Protocol):
    # what RecordingLink wraps (dlms14908.transport.link.FrameLink, without its stats)
    async def send(self, frame: bytes) -> None: ...
    async def recv(self) -> bytes: ...
    async def close(self) -> None: ...


class RecordingLink:
    """Wrap any frame link (``send``/``recv``/``close`` of LPDUs with CRC, see
    ``dlms14908.transport.link.FrameLink``) and record every frame sent and
    received into a :class:`LonCaptureWriter`; ``clock`` gives the timestamps."""

    def __init__(self, link: _FrameLinkLike, writer: LonCaptureWriter | SerialLogWriter, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._link = link
        self.writer = writer
        self._clock = clock

    def _record(self, frame: bytes, direction: str) -> None:
        if isinstance(self.writer, SerialLogWriter):
            self.writer.write_frame(frame, self._clock(), direction=direction)
        else:
            self.writer.write_frame(frame, self._clock())

    @property
    def stats(self) -> object:
        return getattr(self._link, "stats", None)

    async def send(self, frame: bytes) -> None:
        self._record(frame, "tx")
        await self._link.send(frame)

    async def recv(self) -> bytes:
        frame = await self._link.recv()
        self._record(frame, "rx")
        return frame

    async def close(self) -> None:
        try:
            await self._link.close()
        finally:
            self.writer.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._link, name)


# --------------------------------------------------------------------------- reading


def _read_exact(f: BinaryIO, n: int, what: str, offset: int) -> bytes:
    data = f.read(n)
    if data is None or len(data) != n:
        got = 0 if not data else len(data)
        raise DecodeError(f"truncated: needs {n} bytes, file has {got}", field=what, offset=offset)
    return data


def _iter_pcap(f: BinaryIO, magic_bytes: bytes) -> Iterator[PcapRecord]:
    if int.from_bytes(magic_bytes, "little") in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
        e = "<"
    else:
        e = ">"
    magic = struct.unpack(e + "I", magic_bytes)[0]
    scale = 1e-9 if magic == _PCAP_MAGIC_NS else 1e-6
    rest = _read_exact(f, 20, "pcap.header", 4)
    _vmaj, _vmin, _tz, _sig, _snap, linktype = struct.unpack(e + "HHiIII", rest)
    linktype &= 0x0FFFFFFF  # upper bits: FCS info
    offset = 24
    index = 0
    while True:
        head = f.read(16)
        if not head:
            return
        if len(head) < 16:
            raise DecodeError("truncated record header", field="pcap.record", offset=offset)
        sec, frac, caplen, origlen = struct.unpack(e + "IIII", head)
        if caplen > MAX_RECORD:
            raise DecodeError(f"record length {caplen} exceeds {MAX_RECORD}", field="pcap.record", offset=offset)
        data = _read_exact(f, caplen, "pcap.record", offset + 16)
        index += 1
        offset += 16 + caplen
        yield PcapRecord(index, sec + frac * scale, linktype, data, origlen)


def _tsresol(options: bytes, e: str) -> float:
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(e + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1 and pos + 5 <= len(options):
            v = options[pos + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        pos += 4 + ((length + 3) & ~3)
    return 1e-6


def _iter_pcapng(f: BinaryIO, first: bytes) -> Iterator[PcapRecord]:
    offset = 0
    e = "<"
    interfaces: list[tuple[int, float]] = []
    index = 0
    btype_raw: bytes | None = first
    while True:
        if btype_raw is None:
            btype_raw = f.read(4)
            if not btype_raw:
                return
            if len(btype_raw) < 4:
                raise DecodeError("truncated block header", field="pcapng.block", offset=offset)
        length_raw = _read_exact(f, 4, "pcapng.block", offset + 4)
        if btype_raw == struct.pack("<I", _PCAPNG_SHB):
            bom_raw = _read_exact(f, 4, "pcapng.shb", offset + 8)
            if bom_raw == struct.pack("<I", _PCAPNG_BOM):
                e = "<"
            elif bom_raw == struct.pack(">I", _PCAPNG_BOM):
                e = ">"
            else:
                raise DecodeError("bad byte-order magic", field="pcapng.shb", offset=offset + 8)
            blen = struct.unpack(e + "I", length_raw)[0]
            if blen < 28 or blen % 4 or blen > MAX_RECORD:
                raise DecodeError(f"bad section header length {blen}", field="pcapng.shb", offset=offset + 4)
            _read_exact(f, blen - 12, "pcapng.shb", offset + 12)
            interfaces = []
            offset += blen
            btype_raw = None
            continue
        btype = struct.unpack(e + "I", btype_raw)[0]
        blen = struct.unpack(e + "I", length_raw)[0]
        if blen < 12 or blen % 4 or blen > MAX_RECORD:
            raise DecodeError(f"bad block length {blen}", field="pcapng.block", offset=offset + 4)
        body = _read_exact(f, blen - 12, "pcapng.block", offset + 8)
        trailer = _read_exact(f, 4, "pcapng.block", offset + blen - 4)
        if struct.unpack(e + "I", trailer)[0] != blen:
            raise DecodeError(
                "block trailer length differs from header", field="pcapng.block", offset=offset + blen - 4
            )
        if btype == 1:  # IDB
            if len(body) < 8:
                raise DecodeError("short interface description", field="pcapng.idb", offset=offset)
            linktype = struct.unpack_from(e + "H", body, 0)[0]
            interfaces.append((linktype, _tsresol(body[8:], e)))
        elif btype in (6, 2):  # EPB, OPB
            if len(body) < 20:
                raise DecodeError("short packet block", field="pcapng.epb", offset=offset)
            if btype == 6:
                iface, ts_hi, ts_lo, caplen, origlen = struct.unpack_from(e + "IIIII", body, 0)
            else:
                iface, _drops, ts_hi, ts_lo, caplen, origlen = struct.unpack_from(e + "HHIIII", body, 0)
            if iface >= len(interfaces):
                raise DecodeError(f"unknown interface {iface}", field="pcapng.epb", offset=offset + 8)
            if 20 + caplen > len(body):
                raise DecodeError("captured length runs past the block", field="pcapng.epb", offset=offset + 20)
            linktype, res = interfaces[iface]
            index += 1
            yield PcapRecord(index, ((ts_hi << 32) | ts_lo) * res, linktype, body[20 : 20 + caplen], origlen)
        elif btype == 3:  # SPB
            if not interfaces:
                raise DecodeError("simple packet block before any interface", field="pcapng.spb", offset=offset)
            if len(body) < 4:
                raise DecodeError("short simple packet block", field="pcapng.spb", offset=offset)
            origlen = struct.unpack_from(e + "I", body, 0)[0]
            data = body[4 : 4 + min(origlen, len(body) - 4)]
            index += 1
            yield PcapRecord(index, 0.0, interfaces[0][0], data, origlen)
        offset += blen
        btype_raw = None


def iter_records(fileobj: BinaryIO) -> Iterator[PcapRecord]:
    """Yield the records of a pcap or pcapng stream, one at a time."""
    magic = fileobj.read(4)
    if magic is None or len(magic) < 4:
        raise DecodeError("file too short for a capture header", field="pcap.magic", offset=0)
    as_le = int.from_bytes(magic, "little")
    as_be = int.from_bytes(magic, "big")
    if as_le in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS) or as_be in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
        yield from _iter_pcap(fileobj, magic)
    elif as_le == _PCAPNG_SHB:
        yield from _iter_pcapng(fileobj, magic)
    else:
        raise DecodeError(f"not a pcap/pcapng file (magic {magic.hex()})", field="pcap.magic", offset=0)


def parse_exported_pdu(data: bytes) -> tuple[dict[int, bytes], int]:
    """Split an exported-PDU record into its tags and the offset of the PDU."""
    tags: dict[int, bytes] = {}
    pos = 0
    while True:
        if pos + 4 > len(data):
            raise DecodeError("exported-PDU tags run past the record", field="exported_pdu.tag", offset=pos)
        tag, length = struct.unpack_from(">HH", data, pos)
        pos += 4
        if tag == EXP_PDU_TAG_END_OF_OPT:
            return tags, pos
        if pos + length > len(data):
            raise DecodeError(f"tag {tag} value runs past the record", field="exported_pdu.tag", offset=pos - 4)
        tags.setdefault(tag, data[pos : pos + length])
        pos += length


def _udp_payload_from_ipv4(data: bytes, pos: int) -> tuple[bytes, int, int] | str:
    if len(data) < pos + 20:
        return "truncated IPv4 header"
    vihl = data[pos]
    if vihl >> 4 != 4:
        return "not IPv4"
    ihl = (vihl & 0x0F) * 4
    total = struct.unpack_from(">H", data, pos + 2)[0]
    frag = struct.unpack_from(">H", data, pos + 6)[0]
    if data[pos + 9] != 17:
        return "not UDP"
    if frag & 0x3FFF:
        return "IPv4 fragment (not reassembled)"
    if ihl < 20 or total < ihl + 8 or len(data) < pos + total:
        return "truncated IPv4/UDP datagram"
    u = pos + ihl
    sport, dport, ulen = struct.unpack_from(">HHH", data, u)
    if ulen < 8 or ulen > total - ihl:
        return "bad UDP length"
    return data[u + 8 : u + ulen], sport, dport


def _ip_start(linktype: int, data: bytes) -> int | str:
    if linktype == LINKTYPE_ETHERNET:
        pos, ethertype = 12, None
        while True:
            if len(data) < pos + 2:
                return "truncated Ethernet header"
            ethertype = struct.unpack_from(">H", data, pos)[0]
            if ethertype in (0x8100, 0x88A8):
                pos += 4
                continue
            break
        return pos + 2 if ethertype == 0x0800 else f"ethertype 0x{ethertype:04X} is not IPv4"
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        return 0
    if linktype == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return "truncated SLL header"
        proto = struct.unpack_from(">H", data, 14)[0]
        return 16 if proto == 0x0800 else f"SLL protocol 0x{proto:04X} is not IPv4"
    if linktype == LINKTYPE_NULL:
        if len(data) < 4:
            return "truncated loopback header"
        fam_le, fam_be = struct.unpack_from("<I", data)[0], struct.unpack_from(">I", data)[0]
        return 4 if 2 in (fam_le, fam_be) else "loopback family is not IPv4"
    return f"link type {linktype} not supported"


def extract_lpdu(record: PcapRecord) -> CapturedFrame:
    """Find the LonTalk LPDU in one record; never raises for foreign traffic."""
    data = record.data
    idx, ts = record.index, record.timestamp
    try:
        if record.linktype == LINKTYPE_USER0:
            return CapturedFrame(idx, ts, "user0", data)
        if record.linktype == LINKTYPE_WIRESHARK_UPPER_PDU:
            tags, pos = parse_exported_pdu(data)
            table = tags.get(EXP_PDU_TAG_DISSECTOR_TABLE_NAME, b"").rstrip(b"\0")
            name = tags.get(EXP_PDU_TAG_DISSECTOR_NAME, b"").rstrip(b"\0")
            val = tags.get(EXP_PDU_TAG_DISSECTOR_TABLE_NAME_NUM_VAL)
            if table == b"cnip.protocol" and val is not None and int.from_bytes(val, "big") == 0:
                return CapturedFrame(idx, ts, "upper-pdu", data[pos:])
            if name == b"cnip":
                packet = cnip.decode_packet(data[pos:])
                if packet.packet_type != cnip.CnipPacketType.DATA or packet.protocol != 0:
                    return CapturedFrame(
                        idx, ts, "upper-pdu", None, "CN/IP packet is not a 14908-1 data packet", packet
                    )
                return CapturedFrame(idx, ts, "upper-pdu", packet.payload, None, packet)
            return CapturedFrame(idx, ts, "upper-pdu", None, "exported PDU is not routed to the LON dissector")
        start = _ip_start(record.linktype, data)
        if isinstance(start, str):
            return CapturedFrame(idx, ts, "cnip", None, start)
        udp = _udp_payload_from_ipv4(data, start)
        if isinstance(udp, str):
            return CapturedFrame(idx, ts, "cnip", None, udp)
        payload, sport, dport = udp
        ports = (cnip.PORT_NORMAL, cnip.PORT_URGENT)
        if dport not in ports and sport not in ports:
            return CapturedFrame(idx, ts, "cnip", None, f"UDP {sport}->{dport} is not CN/IP", None, dport)
        packet = cnip.decode_packet(payload)
        if packet.packet_type != cnip.CnipPacketType.DATA or packet.protocol != 0:
            return CapturedFrame(
                idx, ts, "cnip", None, f"CN/IP packet type 0x{packet.packet_type:02X} carries no LPDU", packet, dport
            )
        return CapturedFrame(idx, ts, "cnip", packet.payload, None, packet, dport)
    except DecodeError as exc:
        return CapturedFrame(idx, ts, "?", None, str(exc))


def iter_lon_frames(fileobj: BinaryIO) -> Iterator[CapturedFrame]:
    """Yield one :class:`CapturedFrame` per record of a pcap/pcapng stream."""
    for record in iter_records(fileobj):
        yield extract_lpdu(record)
