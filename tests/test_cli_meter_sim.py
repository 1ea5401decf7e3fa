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
                            "--timeout", "5", "--json", "info"], capture_output=True, text=True, env=env,
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


def test_meter_sim_cnip_prints_a_connectable_url_and_serves_successive_head_ends(tmp_path):
    """``cnip://?bind=127.0.0.1:0`` prints ``cnip://127.0.0.1:PORT``; a second dlms-cli
    process, on a new ephemeral UDP port, is answered too (the meter answers the sender of the
    latest packet, not the first head-end it ever heard).  ``--cnip``: tests/test_e2e_cli.py."""
    p, url = _start_meter_sim("--port", "cnip://?bind=127.0.0.1:0", "--meter", "2/7")
    try:
        assert url.startswith("cnip://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0, url
        env = _env()
        env["DLMS14908_STATE_DIR"] = str(tmp_path)
        values = []
        for _ in range(2):
            r = subprocess.run([sys.executable, "-m", "dlms14908.cli.main", "--port", url, "--meter", "2/7",
                                "--timeout", "5", "--json", "read", "1-0:1.8.0.255"],
                               capture_output=True, text=True, env=env, timeout=60)
            assert r.returncode == 0, r.stderr
            values.append(json.loads(r.stdout)["scaled"]["value"])
        assert values == sorted(values)  # the same meter, energy never decreases
    finally:
        _stop(p)


def test_meter_sim_help_tells_how_to_connect():
    r = subprocess.run([sys.executable, "-m", "dlms14908.cli.meter_sim", "--help"], capture_output=True,
                       text=True, env=_env(), timeout=60)
    assert r.returncode == 0
    assert "--cnip" in r.stdout and "dlms-cli --port cnip://127.0.0.1:" in r.stdout
