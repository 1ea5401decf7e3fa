"""Differential test: gurux-dlms's own client (GPL-2, run as a separate process in the oracle
venv, never imported) associates with our COSEM server and reads registers, the clock, the
object list and a load profile with GET block transfer; what it decodes must equal the
simulator's state."""

from __future__ import annotations

import json
import subprocess
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import require

from dlms14908 import axdr
from dlms14908.sim import MeterSimulator, SimClock

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / ".cache" / "oracle-venv" / "bin" / "python"
T0 = 1_750_000_000.0

WORKER = textwrap.dedent('''
    import json, struct, sys
    from gurux_dlms import GXDLMSClient, GXReplyData, GXByteBuffer
    from gurux_dlms.enums import InterfaceType, Authentication
    from gurux_dlms.objects import GXDLMSRegister, GXDLMSProfileGeneric, GXDLMSClock

    mode = sys.argv[1]
    if mode == "lls":
        c = GXDLMSClient(True, 1, 1, Authentication.LOW, "12345678", InterfaceType.WRAPPER)
    else:
        c = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    c.setMaxReceivePDUSize(512)   # forces GET-with-datablock for the profile

    def xfer(frame):
        frame = bytes(frame)
        print(json.dumps({"send": frame[8:].hex()}), flush=True)
        resp = bytes.fromhex(json.loads(sys.stdin.readline())["recv"])
        return struct.pack(">HHHH", 1, 1, c.clientAddress, len(resp)) + resp

    def packet(data, reply):
        notify = GXReplyData()
        buf = GXByteBuffer(xfer(data))
        if not c.getData(buf, reply, notify):
            raise RuntimeError("incomplete reply")

    def block(data, reply):
        if isinstance(data, list):
            for it in data:
                reply.clear()
                block(it, reply)
            return
        packet(data, reply)
        while reply.isMoreData():
            packet(c.receiverReady(reply), reply)

    out = {}
    r = GXReplyData(); block(c.aarqRequest(), r); c.parseAareResponse(r.data)
    out["conformance"] = int(c.negotiatedConformance)
    reg = GXDLMSRegister("1.0.1.8.0.255")
    r = GXReplyData(); block(c.read(reg, 3), r); c.updateValue(reg, 3, r.value)
    out["scaler"] = reg.scaler; out["unit"] = int(reg.unit)
    r = GXReplyData(); block(c.read(reg, 2), r); out["energy"] = r.value
    clk = GXDLMSClock("0.0.1.0.0.255")
    r = GXReplyData(); block(c.read(clk, 2), r); c.updateValue(clk, 2, r.value)
    out["clock"] = clk.time.value.isoformat()
    r = GXReplyData(); block(c.getObjectsRequest(), r)
    objs = c.parseObjects(r.data, True)
    out["objects"] = sorted([int(o.objectType), o.logicalName] for o in objs)
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    r = GXReplyData(); block(c.read(pg, 3), r); c.updateValue(pg, 3, r.value)
    r = GXReplyData(); block(c.readRowsByEntry(pg, 1, 96), r); c.updateValue(pg, 2, r.value)
    out["profile"] = [[row[0].value.isoformat(), row[1], row[2]] for row in pg.buffer]
    r = GXReplyData()
    try:
        block(c.releaseRequest(), r)
    except Exception as exc:
        out["release_error"] = repr(exc)
    print(json.dumps({"result": out}), flush=True)
''')


def _run_gurux(tmp_path: Path, meter: MeterSimulator, mode: str) -> tuple[dict, list[bytes]]:
    script = tmp_path / "gurux_client.py"
    script.write_text(WORKER)
    sap = 0x01 if mode == "lls" else 0x10
    handler = meter.handler_for(sap)
    sent: list[bytes] = []
    p = subprocess.Popen([str(VENV_PY), str(script), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdin is not None and p.stdout is not None
    try:
        for line in p.stdout:
            if not line.startswith("{"):
                continue  # gurux prints notes such as "Unknown object : 130 ..."
            msg = json.loads(line)
            if "result" in msg:
                return msg["result"], sent
            req = bytes.fromhex(msg["send"])
            sent.append(req)
            resp = handler(req)
            assert resp is not None
            p.stdin.write(json.dumps({"recv": resp.hex()}) + "\n")
            p.stdin.flush()
    finally:
        p.stdin.close()
        err = p.stderr.read() if p.stderr else ""
        p.wait(timeout=30)
    raise AssertionError(f"gurux client ended without a result: {err[-2000:]}")


@pytest.mark.oracle
@pytest.mark.parametrize("mode", ["public", "lls"])
def test_gurux_client_reads_our_meter(tmp_path, mode):
    require(VENV_PY.exists(), "oracle venv (python3 tools/oracle/venv.py)")
    meter = MeterSimulator(seed=21, clock=SimClock(T0))
    res, sent = _run_gurux(tmp_path, meter, mode)
    assert res["energy"] == meter.import_export_wh(T0)[0]
    assert (res["scaler"], res["unit"]) == (1, 30)  # gurux reports 10**scaler: 10**0 = 1, Wh
    assert datetime.fromisoformat(res["clock"]).astimezone(UTC) == datetime.fromtimestamp(T0, UTC)
    # gurux drops the classes it does not model (130-133, IEC 62056-8-8) from its object list
    expected = sorted([o.interface.class_id, str(o.logical_name).replace("-", ".").replace(":", ".")]
                      for o in meter.objects.values()
                      if meter.server.configs[0x01 if mode == "lls" else 0x10].access(o) is not None
                      and o.interface.class_id < 130)
    assert res["objects"] == expected
    rows = meter.profile_rows()[:96]
    assert len(res["profile"]) == 96
    for got, row in zip(res["profile"], rows):
        t = axdr.DateTime.from_bytes(bytes(row[0])).to_datetime()
        assert datetime.fromisoformat(got[0]).astimezone(UTC) == t
        assert got[1:] == [int(row[1]), int(row[2])]
    assert any(s[:2] == bytes((0xC0, 0x02)) for s in sent)  # gurux had to ask for the next block
    assert "release_error" not in res, res.get("release_error")
