"""dlms-meter-sim serving over CN/IP on loopback, read by dlms-cli through the full stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_meter_sim_serves_cnip_and_reports_real_link_counters(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "dlms14908.cli.meter_sim", "--port", "cnip://?bind=127.0.0.1:0",
                          "--meter", "2/7", "--seed", "4", "--duration", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert p.stdout is not None
        url = p.stdout.readline().strip()
        assert url.startswith("cnip://127.0.0.1:"), p.stderr.read() if p.stderr else ""
        env = _env()
        env["DLMS14908_STATE_DIR"] = str(tmp_path)
        r = subprocess.run([sys.executable, "-m", "dlms14908.cli.main", "--port", url, "--meter", "2/7",
                            "--timeout", "5", "--json", "info"], check=False, capture_output=True, text=True, env=env,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        objs = {o["class_id"]: o["attributes"] for o in json.loads(r.stdout)["objects"]}
        assert (objs[130]["subnet_id"]["value"], objs[130]["node_id"]["value"]) == (2, 7)
        assert objs[130]["unique_node_id"]["value"] == "045e00000207"
        # class 132 is fed by the node's LonTalk counters: this very session is counted
        assert objs[132]["messages_received"]["value"] > 0
        assert objs[132]["layer2_received"]["value"] > 0
    finally:
        p.kill()
        p.wait(timeout=10)
        if p.stderr:
            p.stderr.close()
        if p.stdout:
            p.stdout.close()


def _start_meter_sim(*args: str) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen([sys.executable, "-m", "dlms14908.cli.meter_sim", *args, "--duration", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert p.stdout is not None
    url = p.stdout.readline().strip()
    if not url:
        p.kill()
        raise AssertionError(p.stderr.read() if p.stderr else "dlms-meter-sim did not start")
    return p, url


def _stop(p: subprocess.Popen[str]) -> str:
    p.kill()
    p.wait(timeout=10)
    err = p.stderr.read() if p.stderr else ""
    for f in (p.stdout, p.stderr):
        if f:
            f.close()
    return err


def test_meter_sim_help_tells_how_to_connect():
    r = subprocess.run([sys.executable, "-m", "dlms14908.cli.meter_sim", "--help"], check=False, capture_output=True,
                       text=True, env=_env(), timeout=60)
    assert r.returncode == 0
    assert "--cnip" in r.stdout and "dlms-cli --port cnip://127.0.0.1:" in r.stdout


def test_head_end_source_address_and_two_head_ends_on_one_meter_port(tmp_path):
    """``--source`` sets the head-end's own subnet/node (seen in the capture), and the meter
    answers each head-end it has heard (a CN/IP channel), not only the latest."""
    from dlms14908.lon.frame import decode_frame
    from dlms14908.pcap import iter_lon_frames

    p, url = _start_meter_sim("--cnip", "127.0.0.1:0", "--meter", "2/7")
    try:
        env = _env()
        env["DLMS14908_STATE_DIR"] = str(tmp_path)
        cap = tmp_path / "s.pcap"
        r = subprocess.run([sys.executable, "-m", "dlms14908.cli.main", "--port", url, "--meter", "2/7",
                            "--source", "3/99", "--capture", str(cap), "--timeout", "5", "read", "1-0:1.8.0.255"],
                           check=False, capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        with open(cap, "rb") as f:
            addrs = [decode_frame(fr.lpdu, crc=True).address for fr in iter_lon_frames(f)]
        assert len(addrs) >= 4
        ours = [(a.src_subnet, a.src_node) for a in addrs if (a.src_subnet, a.src_node) != (2, 7)]
        theirs = [(a.dst_subnet, a.dst_node) for a in addrs if (a.src_subnet, a.src_node) == (2, 7)]
        assert ours and set(ours) == {(3, 99)} and set(theirs) == {(3, 99)}

        # two head-ends at once (own addresses, own client SAPs): both are answered
        kf = tmp_path / "lab.toml"
        kf.write_text('[dlms]\nek = "000102030405060708090A0B0C0D0E0F"\nak = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"\n')
        kf.chmod(0o600)
        base = [sys.executable, "-m", "dlms14908.cli.main", "--port", url, "--meter", "2/7", "--timeout", "5",
                "--json"]
        a = subprocess.Popen([*base, "--source", "1/121", "profile", "--entries", "1:200"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        b = subprocess.Popen([*base, "--source", "1/122", "--keys", str(kf), "--client", "management",
                              "profile", "--entries", "1:200"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        outs = [x.communicate(timeout=60) for x in (a, b)]
        assert [x.returncode for x in (a, b)] == [0, 0], [o[1] for o in outs]
        ra, rb = (json.loads(o[0])["rows"] for o in outs)
        assert len(ra) == len(rb) == 200
        # the same meter's same entries; the served meter runs on wall-clock time, so a
        # quarter-hour capture between the two reads shifts one of them by exactly one row
        assert ra == rb or ra[1:] == rb[:-1] or rb[1:] == ra[:-1]
    finally:
        _stop(p)
