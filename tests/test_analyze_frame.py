"""``dlms-analyze frame`` and ``dlms-analyze capture``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, VECTORS

from dlms14908.analyzer.cli import main
from dlms14908.cli.common import Exit
from dlms14908.lon.frame import Frame, Spdu, SpduType, SubnetNodeAddress, encode_frame
from dlms14908.lon.netmgmt import UpdateKeyRequest
from dlms14908.pcap import LINKTYPE_ETHERNET, LonCaptureWriter, PcapWriter, udp_ipv4_ethernet

VECS = json.loads((VECTORS / "lon" / "frames.json").read_text())["vectors"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("v", VECS, ids=[v["name"] for v in VECS])
def test_frame_json_matches_vector(v: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["frame", "--json", v["hex"]], capsys)
    assert code == Exit.OK
    rep = json.loads(out)
    exp = v["expect"]
    assert rep["crc"] == {"value": f"{exp['crc']:04X}", "computed": f"{exp['crc']:04X}", "ok": True}
    assert rep["l2"] == exp["l2"]
    assert rep["npdu"]["address"] == exp["address"]
    assert rep["findings"] == []


def test_frame_tree_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["frame", "00 1c 01 81 00 01 02 03 04 05 06 07 6d 01 00 00 06 89 45"], capsys)
    assert code == Exit.OK
    assert "SPDU" in out and "REQUEST" in out and "NM READ_MEMORY" in out and "ReadMemoryRequest" in out
    assert "010203040506" in out


def test_frame_ltep_decoded(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["frame", "--json", VECS[11]["hex"]], capsys)
    assert code == Exit.OK
    ltep = json.loads(out)["apdu"]["ltep"]
    assert ltep["hops"] == [{"node": 32, "subnet": 1, "alt_path": False}]
    assert ltep["sicb"]["service"] == "REQUEST"


def test_bad_crc_reported_and_exit_findings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["frame", "--json", "003001820351c109"], capsys)
    assert code == Exit.FINDINGS == 1
    rep = json.loads(out)
    assert rep["crc"]["ok"] is False and rep["crc"]["computed"] == "C108"
    assert rep["apdu"]["code"] == 0x51  # the tree is still shown
    assert "CRC mismatch" in err
    code, out, err = _run(["frame", "003001820351c109"], capsys)
    assert code == Exit.FINDINGS and "CRC mismatch" in out


def test_no_crc_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["frame", "--no-crc", "--json", "003001820351"], capsys)
    assert code == Exit.OK
    assert json.loads(out)["crc"] is None


def test_undecodable_frame(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["frame", "--no-crc", "0070018203"], capsys)
    assert code == Exit.DECODE
    assert "npdu.version" in err
    code, _, err = _run(["frame", "0x0g"], capsys)
    assert code == Exit.DECODE
    code, _, err = _run(["frame", "00700182039999"], capsys)  # bad CRC and undecodable
    assert code == Exit.FINDINGS and "CRC" in err


def test_key_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    key = bytes.fromhex("c0ffee123456")
    spdu = Spdu(SpduType.REQUEST, 1, UpdateKeyRequest(0, key).to_apdu())
    frame = Frame.make(SubnetNodeAddress(1, 1, 2, 5), spdu, b"\x42")
    wire = encode_frame(frame).hex()
    for extra in ([], ["--json"]):
        code, out, _ = _run(["frame", *extra, wire], capsys)
        assert code == Exit.OK
        assert "UpdateKeyRequest" in out
        assert "c0ffee" not in out.lower()
        assert "redacted" in out


def _pcap(tmp_path: Path) -> Path:
    path = tmp_path / "cap.pcap"
    with open(path, "wb") as f:
        w = LonCaptureWriter(f, "cnip")
        for i, v in enumerate(VECS):
            w.write_frame(bytes.fromhex(v["hex"].replace(" ", "")), 1_000 + i)
    return path


def test_capture_lists_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["capture", str(_pcap(tmp_path))], capsys)
    assert code == Exit.OK
    lines = out.splitlines()
    assert len(lines) == len(VECS)
    assert "1/2 -> bcast subnet 3" in lines[0] and "ND QUERY_STATUS" in lines[0]
    assert "T:REM_MSG tn3 mlist 05" in lines[7]
    assert "AUTH:REPLY tn5" in lines[13]
    assert all("crc ok" in line for line in lines)


def test_capture_json_and_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.pcap"
    with open(path, "wb") as f:
        w = PcapWriter(f, LINKTYPE_ETHERNET)
        w.write(udp_ipv4_ethernet(b"dns", src_port=5353, dst_port=53), 1.0)
    buf = io.BytesIO()
    lw = LonCaptureWriter(buf, "cnip")
    lw.write_frame(bytes.fromhex("003001820351c109"), 2.0)  # bad CRC
    lw.write_frame(bytes.fromhex("003001820351c108"), 3.0)
    path.write_bytes(path.read_bytes() + buf.getvalue()[24:])
    code, out, err = _run(["capture", "--json", str(path)], capsys)
    assert code == Exit.FINDINGS
    recs = [json.loads(line) for line in out.splitlines()]  # one JSON object per record
    assert [r["number"] for r in recs] == [1, 2, 3]
    assert "not CN/IP" in recs[0]["findings"][0]["text"]
    assert recs[1]["crc_ok"] is False and "CRC mismatch" in recs[1]["findings"][0]["text"]
    assert recs[2]["crc_ok"] is True and not recs[2].get("findings")
    assert recs[2]["lon"]["src_subnet"] == 1 and recs[2]["lon"]["dst_subnet"] == 3
    assert "0x51" in recs[2]["message"]
    assert "2 record(s)" in err


def test_capture_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "junk.pcap"
    path.write_bytes(b"not a capture at all")
    code, _, err = _run(["capture", str(path)], capsys)
    assert code == Exit.DECODE and "pcap.magic" in err
    code, _, err = _run(["capture", str(tmp_path / "missing.pcap")], capsys)
    assert code == Exit.PORT  # OSError maps to PORT in cli.common


def test_console_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dlms14908.analyzer.cli", "frame", "003001820351c108"],
        check=False, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 0 and "ND QUERY_STATUS" in proc.stdout


def test_capture_redacts_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = bytes.fromhex("c0ffee123456")
    spdu = Spdu(SpduType.REQUEST, 1, UpdateKeyRequest(0, key).to_apdu())
    frame = Frame.make(SubnetNodeAddress(1, 1, 2, 5), spdu, b"\x42")
    path = tmp_path / "k.pcap"
    with open(path, "wb") as f:
        LonCaptureWriter(f, "upper-pdu").write_frame(encode_frame(frame), 1.0)
    for extra in ([], ["--json"]):
        code, out, _ = _run(["capture", *extra, str(path)], capsys)
        assert code == Exit.OK
        assert "c0ffee" not in out.lower() and "NM UPDATE_KEY" in out
