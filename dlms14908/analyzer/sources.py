"""Streaming capture sources for the analyzer: pcap, pcapng and serial-link logs.

Yields ``(number, time, route, lpdu, finding)`` tuples, one per record, reading the
file in bounded chunks (never the whole file).  Classic pcap records of the two
routes the project writes (:mod:`dlms14908.pcap`: LINKTYPE 252 exported PDUs routed
to ``cnip.protocol`` 0, and Ethernet/IPv4/UDP/CN/IP) take a fast path with fixed
offsets; every other record goes through :func:`dlms14908.pcap.extract_lpdu`, and
pcapng through :func:`dlms14908.pcap.iter_records`.

Serial-link logs: the transport layer defines no log format, so the analyzer
defines one (design choice) — JSON lines, one frame per line::

    {"t": 12.345, "dir": "tx", "lpdu": "0119..."}   # LPDU with CRC, hex; "dir" optional

A broken file structure (truncated record, bad header) ends the stream with one
final record whose ``finding`` says so (``route = "file"``).
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from .. import pcap
from ..errors import DecodeError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["CHUNK", "Record", "iter_capture"]

Record = tuple[int, float, str, "bytes | None", "str | None"]
CHUNK = 1 << 20

_UPPER_PREFIX = pcap.exported_pdu_tags()
_UPPER_LEN = len(_UPPER_PREFIX)
_UPPER_PREFIX_NOCOL = pcap.exported_pdu_tags(column=None)
_CNIP_PORTS = (1628, 1629)
_HDR = struct.Struct("<IIII")
_HDR_BE = struct.Struct(">IIII")


def _fallback(index: int, ts: float, linktype: int, data: bytes) -> Record:
    cap = pcap.extract_lpdu(pcap.PcapRecord(index, ts, linktype, data, len(data)))
    return (index, ts, cap.route, cap.lpdu, cap.finding)


def _iter_classic(f: BinaryIO, head: bytes) -> Iterator[Record]:
    magic_le = int.from_bytes(head[:4], "little")
    le = magic_le in (0xA1B2C3D4, 0xA1B23C4D)
    hdr = _HDR if le else _HDR_BE
    magic = magic_le if le else int.from_bytes(head[:4], "big")
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    linktype = struct.unpack("<I" if le else ">I", head[20:24])[0] & 0x0FFFFFFF
    buf = head[24:]
    pos = 0
    index = 0
    offset = 24
    unpack = hdr.unpack_from
    eth = linktype == pcap.LINKTYPE_ETHERNET
    upper = linktype == pcap.LINKTYPE_WIRESHARK_UPPER_PDU
    user0 = linktype == pcap.LINKTYPE_USER0
    read = f.read
    while True:
        if len(buf) - pos < 16:
            more = read(CHUNK)
            buf = buf[pos:] + more
            pos = 0
            if len(buf) < 16:
                if buf:
                    yield (
                        index + 1,
                        0.0,
                        "file",
                        None,
                        f"truncated record header at byte {offset}",
                    )
                return
        sec, frac, caplen, _orig = unpack(buf, pos)
        if caplen > pcap.MAX_RECORD:
            yield (
                index + 1,
                0.0,
                "file",
                None,
                f"record length {caplen} at byte {offset} exceeds {pcap.MAX_RECORD}",
            )
            return
        end = pos + 16 + caplen
        if end > len(buf):
            buf = buf[pos:] + read(max(CHUNK, caplen + 16))
            pos = 0
            end = 16 + caplen
            if end > len(buf):
                yield (
                    index + 1,
                    0.0,
                    "file",
                    None,
                    f"truncated record at byte {offset}: needs {caplen} bytes, file has {len(buf) - 16}",
                )
                return
        index += 1
        ts = sec + frac * scale
        data = buf[pos + 16 : end]
        pos = end
        offset += 16 + caplen
        if eth:
            # Ethernet II / IPv4 (no options) / UDP 1628|1629 / CN/IP data packet without extension
            if (
                caplen >= 62
                and data[12] == 8
                and data[13] == 0
                and data[14] == 0x45
                and data[23] == 17
                and not (data[20] & 0x3F or data[21])
            ):
                dport = (data[36] << 8) | data[37]
                sport = (data[34] << 8) | data[35]
                size = (data[42] << 8) | data[43]
                if (
                    (dport in _CNIP_PORTS or sport in _CNIP_PORTS)
                    and data[44] == 1
                    and data[45] == 1
                    and data[46] == 0
                    and data[47] == 0
                    and 20 <= size <= caplen - 42
                    and ((data[38] << 8) | data[39]) == size + 8
                ):
                    yield (index, ts, "cnip", data[62 : 42 + size], None)
                    continue
            yield _fallback(index, ts, linktype, data)
        elif upper:
            if data[:_UPPER_LEN] == _UPPER_PREFIX:
                yield (index, ts, "upper-pdu", data[_UPPER_LEN:], None)
            else:
                yield _fallback(index, ts, linktype, data)
        elif user0:
            yield (index, ts, "user0", data, None)
        else:
            yield _fallback(index, ts, linktype, data)


def _iter_pcapng(f: BinaryIO, head: bytes) -> Iterator[Record]:
    stream = io.BufferedReader(_Prefixed(head, f))
    last = 0
    try:
        for rec in pcap.iter_records(stream):
            last = rec.index
            yield _fallback(rec.index, rec.timestamp, rec.linktype, rec.data)
    except DecodeError as exc:
        yield (last + 1, 0.0, "file", None, f"{exc}")


class _Prefixed(io.RawIOBase):
    """A raw stream that first returns ``head`` then the rest of ``f``."""

    def __init__(self, head: bytes, f: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        b = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._f.read(len(b))
        n = len(data)
        b[:n] = data
        return n


def _iter_serial_log(f: BinaryIO, head: bytes) -> Iterator[Record]:
    stream = io.TextIOWrapper(
        io.BufferedReader(_Prefixed(head, f)), encoding="utf-8", errors="replace"
    )
    index = 0
    for raw in stream:
        line = raw.strip()
        if not line:
            continue
        index += 1
        if len(line) > 2 * pcap.MAX_RECORD:
            yield (index, 0.0, "serial", None, "log line too long")
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            t = obj.get("t", 0.0)
            lpdu = bytes.fromhex(obj["lpdu"])
            yield (index, float(t), "serial", lpdu, None)
        except (ValueError, KeyError, TypeError) as exc:
            yield (index, 0.0, "serial", None, f"bad serial log line: {type(exc).__name__}")


def iter_capture(f: BinaryIO) -> Iterator[Record]:
    """Records of a pcap, pcapng or serial-log (JSON lines) stream."""
    head = f.read(24)
    if len(head) >= 4:
        le = int.from_bytes(head[:4], "little")
        be = int.from_bytes(head[:4], "big")
        if le in (0xA1B2C3D4, 0xA1B23C4D) or be in (0xA1B2C3D4, 0xA1B23C4D):
            if len(head) < 24:
                yield (1, 0.0, "file", None, "truncated pcap file header")
                return
            yield from _iter_classic(f, head)
            return
        if le == 0x0A0D0D0A:
            yield from _iter_pcapng(f, head)
            return
    if head.lstrip()[:1] == b"{":
        yield from _iter_serial_log(f, head)
        return
    if not head:
        yield (1, 0.0, "file", None, "empty file")
        return
    yield (1, 0.0, "file", None, f"not a pcap/pcapng file or serial log (magic {head[:4].hex()})")
