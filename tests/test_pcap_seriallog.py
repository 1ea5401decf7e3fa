"""--capture FILE.jsonl: the serial-link log that dlms-analyze reads back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from dlms14908.analyzer.sources import iter_capture
from dlms14908.pcap import LonCaptureWriter, RecordingLink, SerialLogWriter, open_capture

E1 = bytes.fromhex("003001820351c108")
E2 = bytes.fromhex("010901810285420500c001c100030100010800ff0200b970")


class _Echo:
    """A frame link that answers every frame with E2."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, frame: bytes) -> None:
        self.sent.append(frame)

    async def recv(self) -> bytes:
        return E2

    async def close(self) -> None:
        pass


def test_jsonl_capture_records_both_directions_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    writer = open_capture(str(path))
    assert isinstance(writer, SerialLogWriter)
    ticks = iter([10.0, 10.25])
    link = RecordingLink(_Echo(), writer, clock=lambda: next(ticks))

    async def main() -> None:
        await link.send(E1)
        assert await link.recv() == E2
        await link.close()

    asyncio.run(main())
    writer.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines == [{"t": 10.0, "lpdu": E1.hex(), "dir": "tx"}, {"t": 10.25, "lpdu": E2.hex(), "dir": "rx"}]
    with path.open("rb") as f:
        records = list(iter_capture(f))
    assert [r[3] for r in records] == [E1, E2]
    assert all(r[2] == "serial" and r[4] is None for r in records)


def test_other_names_still_get_a_pcap(tmp_path: Path) -> None:
    w = open_capture(str(tmp_path / "s.pcap"))
    assert isinstance(w, LonCaptureWriter)
    w.close()
    assert (tmp_path / "s.pcap").read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")
