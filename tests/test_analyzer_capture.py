"""dlms-analyze capture: composed sessions decode completely; findings; outputs; write-back.

Captures come from ``tools/gen_capture.py`` (layers composed from the project's own
codecs and two real OSGP SecureChannel ends) and from a ``dlms-cli --port sim``
session (helper APP/STACK's simulator).  tshark opens the decrypted write-back.
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms14908.analyzer.capture_cmd import analyze_file
from dlms14908.analyzer.cli import main as analyze_main
from dlms14908.analyzer.engine import Analyzer, Finding
from dlms14908.analyzer.keys import keys_from_keyfile
from dlms14908.analyzer.output import Stats, compile_filter
from dlms14908.errors import DecodeError
from dlms14908.keyfile import parse_keyfile
from dlms14908.pcap import LonCaptureWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ is not installed
from tools import gen_capture as G

ROOT = Path(__file__).resolve().parents[1]


def _gen(tmp_path: Path, name: str = "g.pcap", **kw) -> tuple[Path, Path, G.GenResult]:
    path = tmp_path / name
    with open(path, "wb") as f:
        res = G.generate(f, **kw)
    keys = tmp_path / "keys.toml"
    keys.write_text(G.KEYFILE)
    keys.chmod(0o600)
    return path, keys, res


def _keys(text: str = G.KEYFILE):
    return keys_from_keyfile(parse_keyfile(text))


def _records(path: Path, keys=None, **kw):
    recs, late = [], []
    for item in analyze_file(str(path), keys=keys, **kw):
        (late if isinstance(item, Finding) else recs).append(item)
    return recs, late


def _read_values(recs):
    """(meter label, value) of every GET-Response-Normal of the energy register."""
    out = []
    for r in recs:
        for v in r.values or ():
            if v.get("obis") == "1-0:1.8.0.255" and v["data"]["type"] == "double-long-unsigned":
                out.append((r.meter, v["data"]["value"]))
    return out


@pytest.mark.parametrize("route", ["cnip", "upper-pdu"])
@pytest.mark.parametrize("suite0", [False, True])
def test_generated_session_decodes_completely(tmp_path: Path, route: str, suite0: bool) -> None:
    path, _k, res = _gen(tmp_path, frames=120, meters=3, route=route, suite0=suite0)
    recs, late = _records(path, _keys())
    assert len(recs) == res.frames
    assert not late and all(not r.findings for r in recs), [f for r in recs for f in r.findings]
    # every protected frame verified, every read's value equals the generator's
    assert all("ok" in r.osgp_text for r in recs if r.al and r.al["protected"])
    got: dict[str, list[int]] = {}
    for meter, value in _read_values(recs):
        got.setdefault(meter, []).append(value)
    for k in range(3):
        subnet, node = G.meter_addr(k)
        label = f"{subnet}/{node}"
        assert got[label] == [G.expected_value(k, i) for i in range(res.reads[k])]
    # handshake followed passively: the meters' Neuron IDs are learnt
    assert {r.nid for r in recs if r.nid} == {G.meter_nid(k) for k in range(3)}


def test_extras_findings_segments_blocks_proxy(tmp_path: Path) -> None:
    path, _k, res = _gen(tmp_path, frames=60, meters=2, suite0=True, extras=True)
    recs, late = _records(path, _keys())
    by_no = {r.number: r for r in recs}
    kinds = {(f.kind, f.frames[0]) for r in recs for f in r.findings} | {
        (f.kind, f.frames[0]) for f in late
    }
    n = res.notes
    assert ("retry", n["retry"]) in kinds
    assert ("replay", n["replay"]) in kinds
    assert ("crc", n["crc"]) in kinds
    assert ("unanswered", n["unanswered"]) in kinds
    assert ("proxy-failure", n["proxy_failure"]) in kinds
    pf = next(f for f in by_no[n["proxy_failure"]].findings if f.kind == "proxy-failure")
    assert "1/5" in pf.text and "1/10" in pf.text  # the failing hop and where it could not reach
    # segmented response reassembled (through the pulls), block transfer followed
    seg = [r for r in recs if "reassembled" in r.al_text]
    assert len(seg) == 1 and seg[0].values[0]["data"]["type"] == "octet-string"
    assert bytes.fromhex(seg[0].values[0]["data"]["value"]) == bytes(
        (i * 7) & 0xFF for i in range(450)
    )
    blk = [r for r in recs if "complete" in r.xdlms_text]
    assert [x["value"] for x in blk[0].values[0]["data"]["value"]] == [1000 + j for j in range(30)]
    # UpdateDomainKeys followed: the next request under the new unicast key decrypts
    assert any("new unicast key id 1 followed" in r.osgp_text for r in recs)
    assert by_no[n["rekeyed_read"]].osgp_text.startswith("OSGP k1 ") and by_no[
        n["rekeyed_read"]
    ].osgp_text.endswith("ok")
    # nothing else went wrong
    expected = {"retry", "replay", "crc", "unanswered", "proxy-failure"}
    assert {k for k, _ in kinds} == expected


def test_sim_session_values_equal_simulator(tmp_path: Path) -> None:
    cap = tmp_path / "sim.pcap"
    keys = tmp_path / "k.toml"
    keys.write_text(
        '[dlms]\nek = "000102030405060708090A0B0C0D0E0F"\nak = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"\n'
        'system_title = "4D4D4D0000BC614E"\n[osgp]\npsk = "00112233445566778899AABBCCDDEEFF"\n'
    )
    keys.chmod(0o600)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from dlms14908.cli.main import main; sys.exit(main())",
            "--keys",
            str(keys),
            "--capture",
            str(cap),
            "--via",
            "1/3",
            "--client",
            "management",
            "read",
            "1-0:1.8.0.255",
        ],
        check=False, capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    shown = int(re.search(r"= (\d+) Wh", proc.stdout).group(1))
    recs, late = _records(cap, keys_from_keyfile(parse_keyfile(keys.read_text())))
    assert recs and not late and all(not r.findings for r in recs)
    assert all(r.osgp_text.endswith("ok") for r in recs if r.al and r.al["protected"])
    values = [v for meter, v in _read_values(recs)]
    assert values and set(values) == {shown}
    assert any(r.ltep_text.startswith("LTEP") for r in recs)
    # ACSE decoded (through suite 0 and OSGP), COSEM values typed by class with OBIS names
    texts = [r.xdlms_text for r in recs]
    for name in ("aarq", "aare", "rlrq", "rlre"):
        assert name in texts
    su = [v for r in recs for v in r.values or () if v.get("attribute") == 3]
    assert su and su[0]["typed"] == {"scaler": 0, "unit": "WATT_HOUR"}
    assert su[0]["name"] == "Active energy import (+A), total" and su[0]["class_id"] == 3


def test_wrong_keys_give_findings_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, keys, _ = _gen(tmp_path, frames=30, meters=1)
    bad = tmp_path / "bad.toml"
    bad.write_text(G.KEYFILE.replace("00112233", "99112233"))
    bad.chmod(0o600)
    rc = analyze_main(["capture", str(path), "--keys", str(bad), "--json"])
    out = capsys.readouterr().out
    assert rc == 1
    lines = [json.loads(x) for x in out.splitlines()]
    kinds = {f["kind"] for o in lines for f in o.get("findings", [])}
    assert "bad-tag" in kinds and "no-key" in kinds
    assert "xdlms" not in json.dumps(lines[5:])  # nothing decrypted
    # session key instead of PSK: decodes without the handshake frames being needed
    assert analyze_main(["capture", str(path), "--keys", str(keys), "--summary"]) == 0


def test_session_keys_table(tmp_path: Path) -> None:
    from osgp.keys import derive_session_keys

    path, _k, res = _gen(tmp_path, frames=30, meters=1)
    # recompute K_uc from the generator's deterministic RANDs through the capture's handshake
    recs, _ = _records(path, _keys())
    hs = {r.osgp["message"]: r.osgp for r in recs[:4]}
    pk = derive_session_keys(
        G.PSK,
        rand_c=bytes.fromhex(hs["ChallengeResponse"]["rand_c"]),
        id_c=G.meter_nid(0),
        rand_s=bytes.fromhex(hs["ChallengeRequest"]["rand_s"]),
        id_s=G.NNAP_ID,
    ).pk
    text = (
        f'[osgp]\nnnap_id = "{G.NNAP_ID.hex()}"\n[osgp.sessions]\n'
        f'"{G.meter_nid(0).hex()}" = {{ key_id = 0, key = "{pk.hex()}" }}\n'
    )
    # drop the handshake: only the protected reads remain
    cut = tmp_path / "cut.pcap"
    with open(cut, "wb") as f:
        w = LonCaptureWriter(f, "upper-pdu")
        for r in recs[4:]:
            w.write_frame(r.lpdu, r.time)
    recs2, late2 = _records(cut, _keys(text))
    assert all(not r.findings for r in recs2) and not late2
    assert [v for _, v in _read_values(recs2)] == [
        G.expected_value(0, i) for i in range(res.reads[0])
    ]


def test_truncated_garbage_and_random_never_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, keys, _ = _gen(tmp_path, frames=20, meters=1, route="upper-pdu")
    data = path.read_bytes()
    trunc = tmp_path / "t.pcap"
    trunc.write_bytes(data[: len(data) - 7])
    assert analyze_main(["capture", str(trunc), "--keys", str(keys), "--summary"]) == 1
    assert "truncated" in capsys.readouterr().out
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00garbage" * 10)
    assert analyze_main(["capture", str(garbage), "--summary"]) == 3
    assert analyze_main(["capture", str(tmp_path / "missing.pcap"), "--summary"]) != 0
    capsys.readouterr()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=80), min_size=1, max_size=8),
    st.sampled_from(["upper-pdu", "cnip", "user0"]),
)
def test_random_records_only_findings(records: list[bytes], route: str) -> None:
    buf = io.BytesIO()
    w = LonCaptureWriter(buf, route)  # type: ignore[arg-type]
    for i, r in enumerate(records):
        w.write_frame(r, 1.0 + i)
    an = Analyzer(_keys(), detail=True, keep_plain=True)
    from dlms14908.analyzer.sources import iter_capture

    buf.seek(0)
    for rec in iter_capture(buf):
        r = an.process(*rec)
        for f in r.findings:
            assert "analyzer:" not in f.text, f.text  # no internal exception got through
    an.finish()


def test_mutated_frames_only_findings(tmp_path: Path) -> None:
    """Bit flips inside valid frames (with the CRC fixed up) never raise."""
    import binascii
    import random

    path, _k, _ = _gen(tmp_path, frames=40, meters=2, suite0=True, extras=True)
    recs, _ = _records(path, _keys())
    rnd = random.Random(5)
    an = Analyzer(_keys(), detail=True, keep_plain=True)
    for n in range(600):
        lp = bytearray(recs[n % len(recs)].lpdu)
        for _ in range(rnd.randint(1, 3)):
            lp[rnd.randrange(len(lp) - 2)] ^= 1 << rnd.randrange(8)
        body = bytes(lp[:-2])
        lp = body + (binascii.crc_hqx(body, 0xFFFF) ^ 0xFFFF).to_bytes(2, "big")
        r = an.process(n + 1, float(n), "upper-pdu", lp)
        assert all("analyzer:" not in f.text for f in r.findings), r.findings
    an.finish()


def test_filter_stats_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, keys, res = _gen(tmp_path, frames=110, meters=2, extras=True)
    rc = analyze_main(
        [
            "capture",
            str(path),
            "--keys",
            str(keys),
            "--json",
            "--stats",
            "--filter",
            "obis=1-0:1.8.0.255 and node=1/11",
        ]
    )
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rc == 1  # the extras carry findings
    frames = [o for o in out if "number" in o]
    assert frames and all(o["meter"] == "1/11" and "1-0:1.8.0.255" in o["obis"] for o in frames)
    stats = next(o["stats"] for o in out if "stats" in o)
    assert stats["frames"] == len(frames)
    assert set(stats["meters"]) == {"1/11"}
    assert stats["meters"]["1/11"]["airtime_s"] > 0
    analyze_main(["capture", str(path), "--keys", str(keys), "--json", "--filter", "finding=retry"])
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["number"] for o in out if "number" in o] == [res.notes["retry"]]
    for bad in ("obis=", "nid=12", "foo=1", "node=1/1 and", "( node=1/1"):
        with pytest.raises(DecodeError):
            compile_filter(bad)
    f = compile_filter("not finding and (service=get-response or service=challenge)")
    recs, _ = _records(path, _keys())
    assert sum(map(f, recs)) == sum(
        1
        for r in recs
        if not r.findings and ("get-response" in r.xdlms_text or "Challenge" in r.osgp_text)
    )
    # stats in text with a chart; tree output renders
    assert analyze_main(["capture", str(path), "--keys", str(keys), "-q", "--stats"]) == 1
    text = capsys.readouterr().out
    assert "█" in text and "retry" in text
    assert (
        analyze_main(
            ["capture", str(path), "--keys", str(keys), "--tree", "--filter", "finding=crc"]
        )
        == 1
    )
    assert "CRC mismatch" in capsys.readouterr().out


def test_stats_counts(tmp_path: Path) -> None:
    path, _k, res = _gen(tmp_path, frames=40, meters=2)
    recs, _ = _records(path, _keys())
    s = Stats(3600.0)
    for r in recs:
        s.add(r)
    d = s.to_jsonable()
    assert d["frames"] == res.frames == sum(d["types"].values())
    assert d["types"] == {"S:REQUEST": res.frames // 2, "S:RESPONSE": res.frames // 2}
    assert sum(m["bytes"] for m in d["meters"].values()) == sum(len(r.lpdu) for r in recs)


def test_write_decrypted_opens_in_tshark(
    tmp_path: Path, tshark: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path, keys, res = _gen(tmp_path, frames=30, meters=1, suite0=True, route="cnip")
    out = tmp_path / "dec.pcap"
    assert (
        analyze_main(
            ["capture", str(path), "--keys", str(keys), "-q", "--write-decrypted", str(out)]
        )
        == 0
    )
    capsys.readouterr()
    recs, _ = _records(out)  # no keys needed any more
    assert len(recs) == res.frames and all(r.crc_ok for r in recs)
    assert not any(r.al and r.al["protected"] for r in recs)
    assert [v for _, v in _read_values(recs)] == [
        G.expected_value(0, i) for i in range(res.reads[0])
    ]
    p = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            str(out),
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "lon.pdufmt",
            "-e",
            "data.data",
        ],
        check=False, capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    rows = [line.split("\t") for line in p.stdout.splitlines()]
    assert len(rows) == res.frames and all(r[1] == "0x01" for r in rows)  # SPDU, as we wrote
    # tshark's data bytes (after the AL_MSG_CODE byte) hold our plaintext GET response, CRC last
    last = recs[-1]
    assert rows[-1][2] == last.lpdu[last.hdr.apdu + 1 :].hex()
    assert "c401" in rows[-1][2]


def test_pcapng_and_serial_log(tmp_path: Path) -> None:
    path, _k, _res = _gen(tmp_path, frames=12, meters=1, route="upper-pdu")
    recs, _ = _records(path, _keys())

    # pcapng: SHB, IDB (LINKTYPE 252), one EPB per frame
    def block(t: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", t, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    from dlms14908.pcap import exported_pdu_tags

    ng = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    ng += block(1, struct.pack("<HHI", 252, 0, 65535))
    for r in recs:
        d = exported_pdu_tags() + r.lpdu
        us = int(r.time * 1e6)
        ng += block(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(d), len(d)) + d)
    p = tmp_path / "c.pcapng"
    p.write_bytes(ng)
    recs_ng, _ = _records(p, _keys())
    assert [r.lpdu for r in recs_ng] == [r.lpdu for r in recs]
    assert _read_values(recs_ng) == _read_values(recs)
    # serial log (JSON lines) with one broken line
    log = tmp_path / "serial.jsonl"
    lines = [json.dumps({"t": r.time, "dir": "rx", "lpdu": r.lpdu.hex()}) for r in recs]
    log.write_text("\n".join(lines[:3] + ["{not json"] + lines[3:]) + "\n")
    recs_s, _ = _records(log, _keys())
    assert [f.kind for r in recs_s for f in r.findings] == ["not-lon"]
    assert _read_values([r for r in recs_s if r.lpdu]) == _read_values(recs)


def test_per_flow_state_is_bounded(tmp_path: Path) -> None:
    path, _k, _ = _gen(tmp_path, frames=400, meters=40)
    an = Analyzer(_keys(), detail=False, max_flows=8, max_pending=16)
    from dlms14908.analyzer.sources import iter_capture

    peak = 0
    with open(path, "rb") as f:
        for rec in iter_capture(f):
            an.process(*rec)
            peak = max(peak, len(an.flows), len(an.aliases))
            assert len(an.pending) <= 17 and len(an.seen) <= 4096
    assert peak <= 8
    assert len(an.flows) == 8


def test_legacy_omadigest_and_rc4(tmp_path: Path) -> None:
    import binascii

    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
    from cryptography.hazmat.primitives.ciphers import Cipher

    from osgp import legacy

    key = bytes(range(1, 13))
    msg = b"legacy OSGP table read \x01\x02\x03"
    digest = legacy.oma_digest(msg, key)
    rc4_key = bytearray(legacy.derive_encryption_key(key))
    for i in range(8):
        rc4_key[i] ^= digest[i]
    ct = Cipher(ARC4(bytes(rc4_key)), mode=None).encryptor().update(msg) + digest

    def frame(data: bytes) -> bytes:
        return G.lpdu((1, 1), (1, 10), 0, 1, bytes((0x3E,)) + data)

    p = tmp_path / "legacy.pcap"
    with open(p, "wb") as f:
        w = LonCaptureWriter(f, "upper-pdu")
        w.write_frame(frame(ct), 1.0)
        w.write_frame(frame(ct[:-1] + bytes((ct[-1] ^ 1,))), 2.0)
    text = f'[legacy]\noma_key = "{key.hex()}"\ncodes = [0x3E]\n'
    recs, _ = _records(p, _keys(text))
    assert recs[0].legacy == {
        "code": 0x3E,
        "verified": True,
        "encrypted": True,
        "plaintext": msg.hex(),
    }
    assert [f.kind for f in recs[1].findings] == ["bad-tag"]
    # digest-only mode
    p2 = tmp_path / "legacy2.pcap"
    with open(p2, "wb") as f:
        LonCaptureWriter(f, "upper-pdu").write_frame(frame(msg + digest), 1.0)
    recs2, _ = _records(p2, _keys(text + "encrypted = false\n"))
    assert recs2[0].legacy["verified"] and recs2[0].legacy["plaintext"] == msg.hex()
    del binascii


def test_json_line_equals_jsonable(tmp_path: Path) -> None:
    from dlms14908.analyzer.output import to_json_line, to_jsonable

    path, _k, _ = _gen(tmp_path, frames=60, meters=2, suite0=True, extras=True)
    for keys in (None, _keys()):
        recs, _ = _records(path, keys)
        for r in recs:
            assert json.loads(to_json_line(r)) == json.loads(json.dumps(to_jsonable(r)))


def test_peer_errors_and_duplicate_answers(tmp_path: Path) -> None:
    from dlms14908 import profile as Pr
    from dlms14908.adaptation.pdu import AdaptationPdu, encode_pdu
    from osgp.messages import AuthenticationFailure, SequenceError

    def err(msg: bytes) -> bytes:
        return bytes((Pr.AL_MSG_CODE,)) + encode_pdu(AdaptationPdu(Pr.AL_TYPE_ERROR, 1, 1, msg))

    path = tmp_path / "e.pcap"
    with open(path, "wb") as f:
        w = LonCaptureWriter(f, "upper-pdu")
        req = G.lpdu(
            (1, 1),
            (1, 10),
            0,
            3,
            bytes((Pr.AL_MSG_CODE,)) + bytes.fromhex("000101c001c100030100010800ff0200"),
        )
        w.write_frame(req, 1.0)
        answer = G.lpdu(
            (1, 10), (1, 1), 2, 3, err(SequenceError(key_id=0, expected_min_seq=77).encode())
        )
        w.write_frame(answer, 1.1)
        w.write_frame(answer, 1.2)  # answered twice, asked once
        w.write_frame(
            G.lpdu((1, 10), (1, 1), 2, 4, err(AuthenticationFailure(key_id=2, seq=9).encode())), 1.3
        )
    recs, late = _records(path, _keys())
    kinds = [[f.kind for f in r.findings] for r in recs]
    assert kinds == [
        [],
        ["sequence-error"],
        ["duplicate"],
        ["auth-failure"],
    ]  # a copy is not re-judged
    assert "77" in recs[1].findings[0].text and recs[0].xdlms_text.startswith(
        "get-request-normal 3/1-0:1.8.0.255/2"
    )
    # the OSGP error answered the LonTalk transaction, but the GET itself got no xDLMS answer
    assert [(f.kind, f.frames) for f in late] == [("unanswered", (1,))]
    assert "xDLMS get-request-normal" in late[0].text


def test_broadcast_key_followed(tmp_path: Path) -> None:
    """K_bc distributed with UpdateDomainKeys (flags: broadcast) decrypts the domain broadcast;
    without the distribution in the capture the broadcast stays undecrypted (no-key)."""
    path, _k, res = _gen(tmp_path, frames=60, meters=2, extras=True)
    recs, _late = _records(path, _keys())
    by_no = {r.number: r for r in recs}
    n = res.notes
    assert "broadcast key id 0 followed" in by_no[n["broadcast_udk"]].osgp_text
    bc = by_no[n["broadcast"]]
    assert bc.hdr.dst_kind == "bcast" and bc.osgp_text == "OSGP k0 seq 1 ok"
    assert bc.xdlms_text == "data-notification = 777" and not bc.findings
    assert bc.values[0]["data"] == {"type": "double-long-unsigned", "value": 777}
    # the same capture without the UpdateDomainKeys exchange: K_bc unknown
    cut = tmp_path / "cut.pcap"
    with open(cut, "wb") as f:
        w = LonCaptureWriter(f, "upper-pdu")
        for r in recs:
            if r.number not in (n["broadcast_udk"], n["broadcast_udk"] + 1):
                w.write_frame(r.lpdu, r.time)
    recs2, _ = _records(cut, _keys())
    bc2 = next(r for r in recs2 if r.hdr is not None and r.hdr.dst_kind == "bcast")
    assert [f.kind for f in bc2.findings] == ["no-key"] and not bc2.xdlms_text
    # a wrong PSK: the UpdateDomainKeys itself does not verify, the broadcast is not decrypted
    recs3, _ = _records(path, _keys(G.KEYFILE.replace("00112233", "99112233")))
    assert not by_no[n["broadcast"]].findings and not [
        r for r in recs3 if r.number == n["broadcast"] and r.xdlms_text
    ]


def test_oma_key_update_followed(tmp_path: Path) -> None:
    """UpdateDomainKeys (flags: OMA key) replaces the key file's OMA key for that meter's legacy frames."""
    from osgp import legacy

    new_oma = bytes(range(40, 52))
    path = tmp_path / "oma.pcap"
    msg = b"legacy OSGP after an OMA key update"
    with open(path, "wb") as f:
        g = G.Generator(f, meters=1)
        m = g.meters[0]
        g.handshake(m)
        udk = g.oma_key(m, new_oma)
        for k in (new_oma, bytes(12)):  # signed with the new key, then with a wrong one
            digest = legacy.oma_digest(msg, k)
            g.write(G.lpdu(G.HEAD_END, m.addr, 0, g.next_tn(), bytes((0x3E,)) + msg + digest))
        g.w.flush()
    text = (
        G.KEYFILE + f'[legacy]\noma_key = "{bytes(12).hex()}"\ncodes = [0x3E]\nencrypted = false\n'
    )
    recs, _ = _records(path, _keys(text))
    assert "OMA key id 0 followed" in recs[udk - 1].osgp_text
    assert recs[-2].legacy["verified"] is True and recs[-2].legacy["plaintext"] == msg.hex()
    assert [f.kind for f in recs[-1].findings] == ["bad-tag"]
    # no PSK: the update cannot be unwrapped, the key file's OMA key stays in force
    legacy_only = f'[legacy]\noma_key = "{bytes(12).hex()}"\ncodes = [0x3E]\nencrypted = false\n'
    recs_k, _ = _records(path, _keys(legacy_only))
    assert [f.kind for f in recs_k[-2].findings] == ["bad-tag"]
    assert recs_k[-1].legacy["verified"] is True


def test_set_action_block_transfers(tmp_path: Path) -> None:
    """SET datablocks and ACTION parameter blocks (both ways) are reassembled and decoded;
    a missing block is a block-sequence finding."""
    path, _k, res = _gen(tmp_path, frames=90, meters=2, extras=True, suite0=True)
    recs, _ = _records(path, _keys())
    by_no = {r.number: r for r in recs}
    n = res.notes
    s = by_no[n["set_blocks"]]
    assert "set-request-with-datablock block 4 last complete" in s.xdlms_text
    assert s.values[0]["data"] == {"type": "octet-string", "value": bytes(range(50)).hex()}
    assert s.values[0]["obis"] == "0-0:1.0.0.255" and s.values[0]["class_id"] == 8
    assert by_no[n["set_blocks"] + 1].xdlms_text.endswith("set-response-last-datablock = SUCCESS")
    params = [r for r in recs if "action-request-with-pblock block 3 last complete" in r.xdlms_text]
    assert [x["value"] for x in params[0].values[0]["data"]["value"]] == list(range(12))
    a = by_no[n["action_blocks"]]
    assert "action-response-with-pblock block 3 last complete SUCCESS = done done" in a.xdlms_text
    assert a.values[0]["data"] == {"type": "visible-string", "value": "done " * 8}
    assert not [f for r in recs for f in r.findings if f.kind in ("block-sequence", "malformed")]
    # drop the second SET request block: the third is out of sequence
    first_set = next(r for r in recs if "set-request-with-first-datablock" in r.xdlms_text).number
    cut = tmp_path / "cut.pcap"
    with open(cut, "wb") as f:
        w = LonCaptureWriter(f, "upper-pdu")
        for r in recs:
            if r.number != first_set + 2:
                w.write_frame(r.lpdu, r.time)
    recs2, _ = _records(cut, _keys())
    bs = [f for r in recs2 for f in r.findings if f.kind == "block-sequence"]
    assert len(bs) == 1 and "expected block 2, got 3" in bs[0].text
    assert not any(
        "set-request-with-datablock block 4 last complete" in r.xdlms_text for r in recs2
    )


def test_xdlms_unanswered_requests(tmp_path: Path) -> None:
    """Confirmed xDLMS requests without an xDLMS answer are findings (at invoke-id reuse or at
    the end); answered ones, exception responses and unconfirmed requests are not."""
    from dlms14908 import axdr
    from dlms14908 import profile as Pr
    from dlms14908.xdlms import (
        ActionRequestNormal,
        AttributeDescriptor,
        ExceptionResponse,
        GetRequestNormal,
        GetResponseNormal,
        MethodDescriptor,
    )
    from dlms14908.xdlms.types import ServiceErrorCode, StateError

    def al(apdu: bytes) -> bytes:
        return bytes((Pr.AL_MSG_CODE, 0x00, 0x01, 0x01)) + apdu

    def get(iid: int, attribute: int = 2) -> bytes:
        return GetRequestNormal(iid, AttributeDescriptor(3, G.OBIS_ENERGY, attribute)).to_bytes()

    ok = GetResponseNormal(0xC1, axdr.DoubleLongUnsigned(5)).to_bytes()
    exc = ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE)
    frames = [
        ((1, 1), (1, 10), 0, 1, get(0xC1)),
        ((1, 10), (1, 1), 2, 1, ok),  # answered
        ((1, 1), (1, 10), 0, 2, get(0xC2)),
        ((1, 10), (1, 1), 2, 2, exc.to_bytes()),  # answered by an exception
        (
            (1, 1),
            (1, 10),
            0,
            3,
            ActionRequestNormal(0x83, MethodDescriptor(70, G.OBIS_ENERGY, 1)).to_bytes(),
        ),
        ((1, 1), (1, 10), 0, 4, get(0xC4)),  # frame 6: never answered, invoke id reused
        ((1, 1), (1, 10), 0, 5, get(0xC4, 3)),  # another request, same invoke id
        ((1, 10), (1, 1), 2, 5, GetResponseNormal(0xC4, axdr.DoubleLongUnsigned(6)).to_bytes()),
        ((1, 1), (1, 10), 0, 6, get(0xC5)),  # frame 9: never answered, capture ends
    ]
    path = tmp_path / "u.pcap"
    with open(path, "wb") as f:
        w = LonCaptureWriter(f, "upper-pdu")
        for i, (src, dst, typ, tn, apdu) in enumerate(frames):
            w.write_frame(G.lpdu(src, dst, typ, tn, al(apdu)), 1.0 + i)
    recs, late = _records(path, _keys())
    assert not [f for r in recs for f in r.findings]
    x = sorted((f.frames, f.text) for f in late if "xDLMS" in f.text)
    assert [fr for fr, _ in x] == [(6,), (9,)]
    assert "invoke id 4" in x[0][1] and "used again" in x[0][1]
    assert "invoke id 5" in x[1][1] and "capture ended" in x[1][1]
    assert all(f.kind == "unanswered" for f in late)


def test_per_meter_psk_and_nid_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """[osgp.meters] gives one meter its PSK: that meter decrypts, the other is no-key;
    --filter nid= selects the meter learnt from the handshake."""
    path, _k, res = _gen(tmp_path, frames=40, meters=2)
    nid0 = G.meter_nid(0).hex()
    text = f'[osgp]\nnnap_id = "{G.NNAP_ID.hex()}"\n[osgp.meters]\n"{nid0}" = "{G.PSK.hex()}"\n'
    recs, _ = _records(path, _keys(text))
    got = _read_values(recs)
    assert [v for m, v in got if m == "1/10"] == [
        G.expected_value(0, i) for i in range(res.reads[0])
    ]
    assert not [v for m, v in got if m == "1/11"]
    assert {f.kind for r in recs if r.meter == "1/11" for f in r.findings} == {"no-key"}
    keys = tmp_path / "m.toml"
    keys.write_text(text)
    keys.chmod(0o600)
    analyze_main(["capture", str(path), "--keys", str(keys), "--json", "--filter", f"nid={nid0}"])
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    frames = [o for o in out if "number" in o]
    assert frames and all(o["meter"] == "1/10" for o in frames)
    assert len(frames) == sum(1 for r in recs if r.nid == G.meter_nid(0))


def test_malformed_layers_are_findings(tmp_path: Path) -> None:
    """A broken layer is a 'malformed' finding on its frame, naming the layer."""
    from dlms14908 import profile as Pr

    code = bytes((Pr.AL_MSG_CODE,))
    apdus = [
        code + bytes((0x0E, 1, 1)) + b"x",  # adaptation: reserved type 14
        code + bytes((0x80, 1, 1)) + b"\x00\x00\x00",  # OSGP protected PDU too short
        code + bytes((0x00, 1, 1)) + b"\xc0\x01",  # xDLMS GET-Request truncated
        code + bytes((0x01, 1, 1)) + b"\xee",  # OSGP message with an unknown opcode
        bytes((0x4D,)) + b"\xff",  # LTEP request that does not decode
    ]
    path = tmp_path / "mal.pcap"
    with open(path, "wb") as f:
        w = LonCaptureWriter(f, "upper-pdu")
        for i, a in enumerate(apdus):
            w.write_frame(G.lpdu((1, 1), (1, 10), 0, i + 1, a), 1.0 + i)
    recs, _ = _records(path, _keys())
    layers = []
    for r in recs:
        assert [f.kind for f in r.findings] == ["malformed"], r.findings
        assert r.findings[0].frames == (r.number,)
        assert "analyzer:" not in r.findings[0].text
        layers.append(r.findings[0].text.split(":")[0])
    assert layers == [
        "adaptation",
        "OSGP protected PDU of 3 bytes is too short",
        "xDLMS",
        "OSGP message",
        "LTEP",
    ]


def test_stats_retries_and_failures(tmp_path: Path) -> None:
    """--stats counts retries apart and every other finding kind as a failure."""
    path, _k, _res = _gen(tmp_path, frames=90, meters=2, extras=True)
    recs, late = _records(path, _keys())
    s = Stats(3600.0)
    for r in recs:
        s.add(r)
    for f in late:
        s.add_late(f)
    d = s.to_jsonable()
    assert d["retries"] == 1  # the one retried request of the extras
    fails = d["failures"]
    # the failure completion on both legs of the 2-repeater chain
    assert fails["crc"] == 1 and fails["proxy-failure"] == 2 and fails["replay"] >= 1
    assert fails["unanswered"] == sum(1 for f in late if f.kind == "unanswered") >= 2
    assert "retry" not in fails
    text = s.render()
    from rich.console import Console

    con = Console(file=io.StringIO(), width=120)
    con.print(text)
    assert "█" in con.file.getvalue()
