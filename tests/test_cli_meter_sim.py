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
