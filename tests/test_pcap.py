"""pcap / pcapng reading and writing for LonTalk captures."""

from __future__ import annotations

import io
import json
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import VECTORS, require
from hypothesis import given, settings
from hypothesis import strategies as st
from test_lon_strategies import frames

from dlms14908.errors import DecodeError, EncodeError
from dlms14908.lon import cnip
from dlms14908.lon.frame import encode_frame
from dlms14908.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_USER0,
    LINKTYPE_WIRESHARK_UPPER_PDU,
    MAX_RECORD,
    LonCaptureWriter,
    PcapRecord,
    PcapWriter,
    exported_pdu_tags,
    extract_lpdu,
    iter_lon_frames,
    iter_records,
    parse_exported_pdu,
    udp_ipv4_ethernet,
)

WIRES = [
    bytes.fromhex(v["hex"].replace(" ", ""))
    for v in json.loads((VECTORS / "lon" / "frames.json").read_text())["vectors"]
]


def _capture(route: str, wires: list[bytes] = WIRES) -> bytes:
    buf = io.BytesIO()
    w = LonCaptureWriter(buf, route)  # type: ignore[arg-type]
    for i, wire in enumerate(wires):
        w.write_frame(wire, 1_600_000_000 + i / 8)
    assert w.count == len(wires)
    return buf.getvalue()


@pytest.mark.parametrize("route", ["upper-pdu", "cnip", "user0"])
def test_round_trip_routes(route: str) -> None:
    data = _capture(route)
    caps = list(iter_lon_frames(io.BytesIO(data)))
    assert [c.lpdu for c in caps] == WIRES
    assert [c.index for c in caps] == list(range(1, len(WIRES) + 1))
    assert all(c.finding is None and c.route == route for c in caps)
    assert caps[3].timestamp == pytest.approx(1_600_000_000 + 3 / 8)
    if route == "cnip":
        assert [c.cnip.sequence for c in caps] == list(range(1, len(WIRES) + 1))  # type: ignore[union-attr]
        assert caps[10].udp_dst_port == cnip.PORT_URGENT  # E11 is a priority frame
        assert caps[0].udp_dst_port == cnip.PORT_NORMAL


def test_pcap_header_bytes() -> None:
    data = _capture("upper-pdu", WIRES[:1])
    magic, vmaj, vmin, _tz, _sig, _snap, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, vmaj, vmin, linktype) == (0xA1B2C3D4, 2, 4, LINKTYPE_WIRESHARK_UPPER_PDU)
    # record: 16-byte header, then tags 14 "cnip.protocol", 32 = 0, 33 "LON", 0
    rec = data[24 + 16 :]
    assert rec.startswith(struct.pack(">HH", 14, 13) + b"cnip.protocol" + struct.pack(">HHI", 32, 4, 0))
    tags, pos = parse_exported_pdu(rec)
    assert tags[14] == b"cnip.protocol" and tags[32] == b"\0\0\0\0" and tags[33] == b"LON"
    assert rec[pos:] == WIRES[0]


def test_ethernet_frame_is_well_formed() -> None:
    frame = udp_ipv4_ethernet(b"xyz", src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=1628, dst_port=1629)
    ip = frame[14:34]
    total = sum(struct.unpack(">10H", ip))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF  # header checksum verifies
    assert struct.unpack_from(">HHH", frame, 34) == (1628, 1629, 11)
    assert frame[-3:] == b"xyz"


def _pcapng(records: list[tuple[int, bytes]], *, big_endian: bool = False, tsresol: int | None = None) -> bytes:
    """A small independent pcapng builder (SHB, IDB per link type, EPB; one SPB)."""
    e = ">" if big_endian else "<"

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)

    out = block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(0x00000BAD, b"custom")  # an unknown block is skipped
    linktypes = sorted({lt for lt, _ in records})
    for lt in linktypes:
        opts = b""
        if tsresol is not None:
            opts = struct.pack(e + "HH", 9, 1) + bytes((tsresol,)) + b"\0\0\0" + struct.pack(e + "HH", 0, 0)
        out += block(1, struct.pack(e + "HHI", lt, 0, 65535) + opts)
    for i, (lt, data) in enumerate(records):
        ts = (1_600_000_000 + i) * (10**tsresol if tsresol is not None else 10**6)
        epb = struct.pack(e + "IIIII", linktypes.index(lt), ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        out += block(6, epb + data)
    return out


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("tsresol", [None, 9])
def test_pcapng_reader(big_endian: bool, tsresol: int | None) -> None:
    tags = exported_pdu_tags()
    recs = [(LINKTYPE_WIRESHARK_UPPER_PDU, tags + WIRES[0]), (LINKTYPE_USER0, WIRES[1])]
    recs.append((LINKTYPE_ETHERNET, udp_ipv4_ethernet(cnip.encode_data_packet(WIRES[2], sequence=9))))
    data = _pcapng(recs, big_endian=big_endian, tsresol=tsresol)
    caps = list(iter_lon_frames(io.BytesIO(data)))
    assert [c.lpdu for c in caps] == WIRES[:3]
    assert [c.route for c in caps] == ["upper-pdu", "user0", "cnip"]
    assert caps[1].timestamp == pytest.approx(1_600_000_001)
    assert caps[2].cnip is not None and caps[2].cnip.sequence == 9


def test_pcapng_from_editcap(tmp_path: Path) -> None:
    """editcap (Wireshark) converts our pcap into pcapng; we read its output."""
    editcap = shutil.which("editcap")
    require(editcap is not None, "editcap")
    src = tmp_path / "in.pcap"
    dst = tmp_path / "out.pcapng"
    src.write_bytes(_capture("cnip"))
    subprocess.run([editcap, "-F", "pcapng", str(src), str(dst)], check=True, capture_output=True, timeout=60)
    assert dst.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    with open(dst, "rb") as f:
        caps = list(iter_lon_frames(f))
    assert [c.lpdu for c in caps] == WIRES
    assert caps[5].timestamp == pytest.approx(1_600_000_000 + 5 / 8, abs=1e-6)


def test_big_endian_and_nanosecond_pcap() -> None:
    body = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, LINKTYPE_USER0)
    body += struct.pack(">IIII", 10, 500_000_000, len(WIRES[0]), len(WIRES[0])) + WIRES[0]
    recs = list(iter_records(io.BytesIO(body)))
    assert recs == [PcapRecord(1, 10.5, LINKTYPE_USER0, WIRES[0], len(WIRES[0]))]


def test_foreign_records_are_findings() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf, LINKTYPE_ETHERNET)
    w.write(udp_ipv4_ethernet(b"hello", dst_port=53, src_port=5353), 1.0)
    w.write(b"\x00" * 12 + b"\x86\xdd" + b"\x00" * 40, 2.0)  # IPv6
    w.write(udp_ipv4_ethernet(cnip.encode_packet(cnip.CnipPacket(b"", packet_type=0x07))), 3.0)
    w.write(udp_ipv4_ethernet(b"\x00\x05\x01"), 4.0)  # truncated CN/IP header
    w.write(b"\x01\x02", 5.0)
    caps = list(iter_lon_frames(io.BytesIO(buf.getvalue())))
    assert all(c.lpdu is None and c.finding for c in caps)
    assert "not CN/IP" in caps[0].finding  # type: ignore[operator]
    assert "not IPv4" in caps[1].finding  # type: ignore[operator]
    assert "0x07" in caps[2].finding  # type: ignore[operator]
    assert "cnip.header" in caps[3].finding  # type: ignore[operator]


def test_upper_pdu_other_protocol_is_finding() -> None:
    raw = struct.pack(">HH", 12, 3) + b"sip" + b"\0\0\0\0" + b"x"
    rec = PcapRecord(1, 0.0, LINKTYPE_WIRESHARK_UPPER_PDU, raw, len(raw))
    cap = extract_lpdu(rec)
    assert cap.lpdu is None and "not routed" in (cap.finding or "")
    cap = extract_lpdu(PcapRecord(1, 0.0, LINKTYPE_WIRESHARK_UPPER_PDU, b"\x00\x0e\x00\x20abc", 7))
    assert cap.lpdu is None and "exported_pdu.tag" in (cap.finding or "")


@pytest.mark.parametrize("cut", [0, 3, 10, 24 + 8, 24 + 16 + 3])
def test_truncated_file_raises_decode_error(cut: int) -> None:
    data = _capture("user0", WIRES[:2])
    with pytest.raises(DecodeError) as info:
        list(iter_lon_frames(io.BytesIO(data[:cut])))
    assert info.value.field and info.value.field.startswith("pcap")


def test_oversized_record_refused() -> None:
    data = bytearray(_capture("user0", WIRES[:1]))
    struct.pack_into("<I", data, 24 + 8, MAX_RECORD + 1)
    with pytest.raises(DecodeError) as info:
        list(iter_records(io.BytesIO(bytes(data))))
    assert info.value.field == "pcap.record"


def test_streaming_reader_is_lazy() -> None:
    """The reader yields the first record before the rest of the stream exists."""

    class Feed(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.pos, self.max_pos = data, 0, 0

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            n = min(len(b), len(self.data) - self.pos)
            b[:n] = self.data[self.pos : self.pos + n]
            self.pos += n
            self.max_pos = max(self.max_pos, self.pos)
            return n

    data = _capture("user0", WIRES * 50)
    feed = Feed(data)
    it = iter_lon_frames(feed)  # type: ignore[arg-type]
    first = next(it)
    assert first.lpdu == WIRES[0]
    assert feed.max_pos < 200  # only the header and the first record were read
    assert sum(1 for _ in it) == len(WIRES) * 50 - 1


def test_writer_misuse() -> None:
    w = PcapWriter(io.BytesIO(), LINKTYPE_USER0, snaplen=10)
    with pytest.raises(EncodeError):
        w.write(b"x" * 11, 0.0)
    with pytest.raises(EncodeError):
        w.write(b"x", -1.0)
    with pytest.raises(EncodeError):
        LonCaptureWriter(io.BytesIO(), "serial")  # type: ignore[arg-type]


@settings(max_examples=50)
@given(st.lists(frames, min_size=1, max_size=10), st.sampled_from(["upper-pdu", "cnip", "user0"]))
def test_generated_frames_survive_capture(batch: list, route: str) -> None:  # type: ignore[type-arg]
    wires = [encode_frame(f) for f in batch]
    caps = list(iter_lon_frames(io.BytesIO(_capture(route, wires))))
    assert [c.lpdu for c in caps] == wires


@given(st.binary(max_size=200))
def test_random_files_only_decode_error(data: bytes) -> None:
    for prefix in (b"", struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1), _pcapng([])):
        try:
            for cap in iter_lon_frames(io.BytesIO(prefix + data)):
                assert cap.lpdu is not None or cap.finding
        except DecodeError:
            pass


def test_random_records_only_findings() -> None:
    rng = random.Random(1628)
    for linktype in (0, 1, 101, 113, 147, 228, 252, 999):
        for _ in range(400):
            raw = rng.randbytes(rng.randrange(0, 80))
            rec = PcapRecord(1, 0.0, linktype, raw, len(raw))
            cap = extract_lpdu(rec)
            assert cap.lpdu is not None or cap.finding


def test_recording_link_records_both_directions(tmp_path: Path) -> None:
    import asyncio

    from dlms14908.pcap import RecordingLink, open_capture

    class Loop:
        def __init__(self) -> None:
            self.q: asyncio.Queue[bytes] = asyncio.Queue()
            self.stats = "stats"
            self.closed = False

        async def send(self, frame: bytes) -> None:
            await self.q.put(frame[::-1])  # the "peer" answers with something else

        async def recv(self) -> bytes:
            return await self.q.get()

        async def close(self) -> None:
            self.closed = True

    path = tmp_path / "session.pcap"
    ticks = iter([10.0, 10.5, 11.0, 11.5])

    async def session() -> Loop:
        inner = Loop()
        link = RecordingLink(inner, open_capture(str(path), "cnip"), clock=lambda: next(ticks))
        for wire in WIRES[:2]:
            await link.send(wire)
            assert await link.recv() == wire[::-1]
        assert link.stats == "stats" and link.closed is False  # attributes pass through
        await link.close()
        link.writer.close()
        return inner

    inner = asyncio.run(session())
    assert inner.closed
    with open(path, "rb") as f:
        caps = list(iter_lon_frames(f))
    assert [c.lpdu for c in caps] == [WIRES[0], WIRES[0][::-1], WIRES[1], WIRES[1][::-1]]
    assert [c.timestamp for c in caps] == [10.0, 10.5, 11.0, 11.5]


def _hexdump(packets: list[bytes]) -> str:
    lines = []
    for pkt in packets:
        for off in range(0, len(pkt), 16):
            chunk = pkt[off : off + 16]
            lines.append(f"{off:06x} " + " ".join(f"{b:02x}" for b in chunk))
        lines.append("")
    return "\n".join(lines) + "\n"


def test_reads_text2pcap_pcapng(tmp_path: Path) -> None:
    """text2pcap (Wireshark) builds Ethernet/IPv4/UDP around our CN/IP packets and
    writes pcapng by default: an independent writer for our reader."""
    text2pcap = shutil.which("text2pcap")
    require(text2pcap is not None, "text2pcap")
    packets = [cnip.encode_data_packet(w, sequence=i + 1) for i, w in enumerate(WIRES)]
    dump = tmp_path / "dump.txt"
    dump.write_text(_hexdump(packets))
    out = tmp_path / "t.pcapng"
    subprocess.run(
        [text2pcap, "-q", "-4", "10.1.1.1,10.1.1.2", "-u", "1629,1629", str(dump), str(out)],
        check=True, capture_output=True, timeout=60,
    )
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    with open(out, "rb") as f:
        caps = list(iter_lon_frames(f))
    assert [c.lpdu for c in caps] == WIRES
    assert {c.udp_dst_port for c in caps} == {1629}
    assert [c.cnip.sequence for c in caps] == list(range(1, len(WIRES) + 1))  # type: ignore[union-attr]

    raw = tmp_path / "raw.pcap"
    subprocess.run([text2pcap, "-q", "-F", "pcap", "-l", "147", str(_write(tmp_path, WIRES)), str(raw)],
                   check=True, capture_output=True, timeout=60)
    with open(raw, "rb") as f:
        assert [c.lpdu for c in iter_lon_frames(f)] == WIRES


def _write(tmp_path: Path, packets: list[bytes]) -> Path:
    p = tmp_path / "raw.txt"
    p.write_text(_hexdump(packets))
    return p
