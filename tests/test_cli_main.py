"""dlms-cli and dlms-meter-sim: commands over --port sim, JSON output, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

from dlms14908 import axdr
from dlms14908.cli import main as cli
from dlms14908.cli import meter_sim, ports
from dlms14908.cli.common import Exit, PortError
from dlms14908.errors import ProxyError
from dlms14908.link import LoopbackLink
from dlms14908.sim import DEFAULT_PASSWORD, MeterSimulator, SimClock

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_750_000_000.0
EK = "000102030405060708090A0B0C0D0E0F"
AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
NOTICE = "using the built-in simulated meter network (--port sim)"


@pytest.fixture(autouse=True)
def state_dir(monkeypatch, tmp_path):
    """Invocation counters kept by dlms-cli go to a per-test directory."""
    d = tmp_path / "state"
    monkeypatch.setenv("DLMS14908_STATE_DIR", str(d))
    return d


@pytest.fixture
def net(monkeypatch):
    """dlms-cli's link replaced by an in-process LoopbackLink to one deterministic simulator
    per address (the CLI logic under test; the real --port sim stack is exercised below)."""
    meters: dict[str, MeterSimulator] = {}
    clock = SimClock(T0)

    class Net:
        password = DEFAULT_PASSWORD
        latency = 0.0

        def meter(self, addr: str) -> MeterSimulator:
            if addr not in meters:
                meters[addr] = MeterSimulator(seed=len(meters) + 11, clock=clock, password=self.password)
            return meters[addr]

    n = Net()

    def fake_open_link(port, meter, via, keys, capture, *, client_sap, announce=None):
        if port != "sim":
            return real_open_link(port, meter, via, keys, capture, client_sap=client_sap)
        return LoopbackLink(n.meter(str(meter)).handler_for(client_sap), latency=n.latency)

    real_open_link = cli.open_link
    monkeypatch.setattr(cli, "open_link", fake_open_link)
    return n


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def keyfile(tmp_path: Path, body: str) -> str:
    p = tmp_path / "keys.toml"
    p.write_text(body)
    p.chmod(0o600)
    return str(p)


def test_read_register_human(net, capsys):
    code, out, err = run(capsys, "--port", "sim", "read", "1-0:1.8.0.255")
    assert code == 0
    wh = net.meter("1/7").import_export_wh(T0)[0]
    assert out.strip() == f"1-0:1.8.0.255 (Active energy import (+A), total) = {wh} Wh"
    assert NOTICE in err


def test_read_json_round_trip(net, capsys):
    code, out, _ = run(capsys, "read", "1-0:32.7.0.255", "--json", "--meter", "2/9")
    assert code == 0
    d = json.loads(out)
    m = net.meter("2/9")
    assert d["obis"] == "1-0:32.7.0.255" and d["class_id"] == 3
    assert d["value"] == {"type": "long-unsigned", "value": m.model.voltage_dv(T0)}
    assert d["scaled"]["unit"] == "V" and d["scaled"]["value"] == pytest.approx(m.model.voltage_dv(T0) / 10)


def test_read_other_attributes_json(net, capsys):
    code, out, _ = run(capsys, "--json", "read", "0-0:1.0.0.255")
    assert code == 0
    assert json.loads(out)["value"] == "2025-06-15 15:06:40+00:00"
    code, out, _ = run(capsys, "--json", "read", "1-0:1.8.0.255", "-a", "3")
    assert json.loads(out)["value"] == {"scaler": 0, "unit": {"name": "watt_hour", "value": 30}}


def test_profile_entries_json_matches_meter(net, capsys):
    code, out, err = run(capsys, "--json", "profile", "--entries", "1:96")
    assert code == 0
    d = json.loads(out)
    rows = net.meter("1/7").profile_rows()[:96]
    assert d["entries"] == 96
    assert [r[1]["value"] for r in d["rows"]] == [int(r[1]) for r in rows]
    assert [r[2]["value"] for r in d["rows"]] == [int(r[2]) for r in rows]
    assert "Traceback" not in err


def test_profile_time_range(net, capsys):
    code, out, _ = run(capsys, "profile", "1-0:99.1.0.255", "--from", "2025-06-15T10:00",
                       "--to", "2025-06-15T11:00", "--json")
    d = json.loads(out)
    assert code == 0 and d["entries"] == 5
    assert d["rows"][0][0] == "2025-06-15 10:00:00+00:00"


def test_objects_and_info(net, capsys):
    code, out, _ = run(capsys, "objects", "--json")
    assert code == 0
    objs = {o["obis"]: o for o in json.loads(out)["objects"]}
    assert objs["1-0:99.1.0.255"]["class"] == "Profile generic"
    assert "0-0:43.0.0.255" not in objs  # public view
    code, out, _ = run(capsys, "objects")
    assert "object list" in out and "0-0:96.3.10.255" in out
    code, out, _ = run(capsys, "info", "--json")
    info = {o["class_id"]: o for o in json.loads(out)["objects"]}
    assert set(info) == {130, 131, 132, 133}
    assert info[130]["attributes"]["subnet_id"] == {"type": "unsigned", "value": 1}
    assert info[130]["attributes"]["node_id"] == {"type": "unsigned", "value": 7}
    assert info[131]["attributes"]["inactivity_timeout"]["value"] == 300


def test_management_set_and_action_with_key_file(net, capsys, tmp_path, state_dir):
    kf = keyfile(tmp_path, f'[dlms]\nek = "{EK}"\nak = "{AK}"\n')
    base = ["--client", "management", "--keys", kf]
    code, out, err = run(capsys, *base, "set", "0-0:32.1.0.255", "-a", "2", "u16:42")
    assert code == 0 and "success" in out
    code, out, err = run(capsys, *base, "--json", "set", "0-0:32.1.0.255", "-a", "2", "u16:42")
    assert code == 0 and json.loads(out) == {"obis": "0-0:32.1.0.255", "class_id": 131, "attribute": 2,
                                             "value": {"type": "long-unsigned", "value": 42}, "result": "success"}
    assert net.meter("1/7").objects[axdr_obis("0-0:32.1.0.255")].data(2) == 42
    code, out, err = run(capsys, *base, "--json", "action", "0-0:96.3.10.255", "-m", "1")
    assert code == 0 and json.loads(out)["result"] == "success"
    code, out, _ = run(capsys, *base, "--json", "read", "0-0:96.3.10.255", "-a", "3")
    assert json.loads(out)["value"] == {"name": "disconnected", "value": 0}
    assert EK not in out + err and AK not in out + err
    # each run continued the invocation counter of the previous one (else the meter refuses a replay)
    stored = json.loads((state_dir / "invocation-counters.json").read_text())
    assert list(stored) == ["444C430000000001"] and stored["444C430000000001"] >= 9
    assert EK not in json.dumps(stored)


def test_invocation_counter_survives_a_change_of_port(net, capsys, tmp_path, state_dir):
    """The same meter reached on another port (e.g. /dev/ttyUSB0 re-enumerated as ttyUSB1) or
    by Neuron ID continues the invocation counter; entries of the older per-port format count."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "invocation-counters.json").write_text(json.dumps({"444C430000000001@/dev/ttyUSB0/1/7": 500}))
    assert cli.load_invocation_counter("444C430000000001") == 500
    kf = keyfile(tmp_path, f'[dlms]\nek = "{EK}"\nak = "{AK}"\n')
    code, _, err = run(capsys, "--client", "management", "--keys", kf, "read", "1-0:1.8.0.255")
    assert code == 0, err
    stored = json.loads((state_dir / "invocation-counters.json").read_text())
    assert stored["444C430000000001"] > 500


def axdr_obis(text: str):
    from dlms14908.obis import Obis
    return Obis.parse(text)


def test_public_client_cannot_write(net, capsys):
    code, _out, err = run(capsys, "set", "0-0:1.0.0.255", "-a", "3", "i16:60")
    assert code == Exit.PROTOCOL
    assert err.strip().splitlines()[-1] == "dlms-cli: error: 0-0:1.0.0.255 attribute 3: read-write-denied"


@pytest.mark.parametrize("argv,code,needle", [
    (["read", "1-0:1.8.0.256"], Exit.USAGE, "not an OBIS code"),
    (["read", "bogus"], Exit.USAGE, "not an OBIS code"),
    (["set", "1-0:1.8.0.255", "-a", "2", "u16:99999"], Exit.USAGE, "value 'u16:99999'"),
    (["set", "1-0:1.8.0.255", "-a", "2", "5"], Exit.USAGE, "expected TYPE:VALUE"),
    (["--meter", "1/200", "read", "1-0:1.8.0.255"], Exit.USAGE, "node 1-127"),
    (["profile", "--entries", "5:2"], Exit.USAGE, "FIRST:LAST"),
    (["--port", "/dev/nonexistent-tty", "read", "1-0:1.8.0.255"], Exit.PORT, "nonexistent-tty"),
    (["--keys", "/nonexistent/keys.toml", "read", "1-0:1.8.0.255"], Exit.KEYFILE, "no such key file"),
    (["read", "1-0:1.8.0.255", "-c", "4"], Exit.PROTOCOL, "object-class-inconsistent"),
    (["read", "0-0:200.0.0.255"], Exit.USAGE, "give its interface class with -c CLASS"),
    (["profile", "--from", "2026-01-02", "--to", "2026-01-01"], Exit.USAGE, "is after --to"),
    (["--via", "045E00000107", "read", "1-0:1.8.0.255"], Exit.USAGE, "repeaters are given as subnet/node"),
    (["--via", "1/3,1/3", "read", "1-0:1.8.0.255"], Exit.USAGE, "appears twice"),
    (["--meter", "1/7", "--via", "1/3,1/7", "read", "1-0:1.8.0.255"], Exit.USAGE, "its own repeater"),
    (["--port", "sim", "--source", "1/5", "read", "1-0:1.8.0.255"], Exit.USAGE, "--source is for real ports"),
    (["--port", "cnip://127.0.0.1:9", "--capture", "/nonexistent/dir/x.pcap", "read", "1-0:1.8.0.255"],
     Exit.PORT, "--capture /nonexistent/dir/x.pcap"),
    (["--port", "cnip://nonexistent.invalid:1628", "read", "1-0:1.8.0.255"], Exit.PORT, "cannot resolve"),
    (["--port", "cnip://127.0.0.1:99999", "read", "1-0:1.8.0.255"], Exit.PORT, "out of range"),
    (["--port", "socket://127.0.0.1:9", "read", "1-0:1.8.0.255"], Exit.PORT, "Connection refused"),
    (["--port", "bogus://x", "read", "1-0:1.8.0.255"], Exit.PORT, "unknown port scheme"),
])
def test_errors_are_one_line_with_distinct_codes(net, capsys, argv, code, needle):
    with pytest.raises(SystemExit) if code == Exit.USAGE else _nullctx() as ex:
        got, _out, err = run(capsys, *argv)
    if code == Exit.USAGE:
        got = ex.value.code
        err = capsys.readouterr().err
    assert got == code
    assert needle in err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if NOTICE not in ln]
    assert len(lines) == 1 and lines[0].startswith("dlms-cli: error: "), err


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_wrong_password_exit_code(net, capsys, tmp_path):
    net.password = b"other pw"
    kf = keyfile(tmp_path, f'[dlms]\nek = "{EK}"\nak = "{AK}"\nlls_password = "12345678"\n')
    code, _, err = run(capsys, "--client", "management", "--auth", "lls", "--keys", kf, "read", "1-0:1.8.0.255")
    assert code == Exit.SECURITY
    assert "authentication-failure" in err and "12345678" not in err


def test_bad_key_file_exit_code(net, capsys, tmp_path):
    kf = keyfile(tmp_path, '[dlms]\nek = "0011"\nak = "zz"\n')
    code, _, err = run(capsys, "--client", "management", "--keys", kf, "read", "1-0:1.8.0.255")
    assert code == Exit.KEYFILE and "[dlms] ek" in err and "0011" not in err


def test_timeout_exit_code(net, capsys):
    net.latency = 0.05
    code, _, err = run(capsys, "--timeout", "0.01", "read", "1-0:1.8.0.255")
    assert code == Exit.TIMEOUT and "no response within" in err


def test_proxy_failure_exit_code(monkeypatch, capsys):
    class Broken:
        async def request(self, apdu: bytes, *, timeout: float) -> bytes:
            raise ProxyError("repeater did not answer", hop=1)

        async def send(self, apdu: bytes) -> None:
            raise AssertionError

        async def close(self) -> None:
            pass

    monkeypatch.setattr(cli, "open_link", lambda *a, **k: Broken())
    code, _, err = run(capsys, "read", "1-0:1.8.0.255")
    assert code == Exit.PROXY
    assert err.strip().splitlines()[-1] == "dlms-cli: error: hop 1: repeater did not answer"


def test_parse_value_syntax():
    assert cli.parse_value("u16:5") == axdr.LongUnsigned(5) and type(cli.parse_value("u16:5")) is axdr.LongUnsigned
    assert cli.parse_value("i8:-3") == -3 and type(cli.parse_value("i8:-3")) is axdr.Integer
    assert cli.parse_value("octets:0102") == axdr.OctetString(b"\x01\x02")
    assert cli.parse_value("obis:1-0:1.8.0.255") == bytes.fromhex("0100010800FF")
    assert cli.parse_value("bool:true") is True and cli.parse_value("null") is None
    assert cli.parse_value("bits:0101").bits == "0101"
    dt = axdr.DateTime.from_bytes(bytes(cli.parse_value("datetime:2025-01-02T03:04:05+01:00")))
    assert (dt.year, dt.hour, dt.deviation) == (2025, 3, -60)
    for bad in ("u8:256", "x:1", "octets:zz", "5", "bool:maybe"):
        with pytest.raises(ValueError):
            cli.parse_value(bad)


def test_parse_meter_and_via():
    assert str(ports.parse_meter("1/7")) == "1/7"
    assert ports.parse_meter("04:a1:b2:c3:d4:e5").neuron_id == bytes.fromhex("04A1B2C3D4E5")
    assert [str(a) for a in ports.parse_via("1/3,1/5")] == ["1/3", "1/5"]
    for bad in ("0/7", "1/0", "1/128", "04A1B2", "x"):
        with pytest.raises(ValueError):
            ports.parse_meter(bad)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("COLUMNS", None)
    return env


def test_console_script_quick_start():
    """README quick start: ``dlms-cli --port sim read 1-0:1.8.0.255`` (installed console script)."""
    exe = shutil.which("dlms-cli")
    require(exe is not None, "the dlms-cli console script (pip install .)")
    assert exe is not None
    p = subprocess.run([exe, "--port", "sim", "read", "1-0:1.8.0.255"], check=False, capture_output=True, text=True,
                       env=_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("1-0:1.8.0.255 (Active energy import (+A), total) = ")
    assert p.stdout.strip().endswith(" Wh")
    assert NOTICE in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([exe, "--port", "sim", "read", "1-0:1.8.0.255", "--json"], check=False, capture_output=True,
                       text=True, env=_env(), timeout=60)
    d = json.loads(p.stdout)
    assert d["value"]["type"] == "double-long-unsigned" and d["value"]["value"] > 1_000_000
    assert d["scaled"] == {"value": d["value"]["value"], "unit": "Wh", "scaler": 0}


def test_module_entry_point_errors_without_traceback():
    p = subprocess.run([sys.executable, "-m", "dlms14908.cli.main", "--port", "/dev/nonexistent", "read",
                        "1-0:1.8.0.255"], check=False, capture_output=True, text=True, env=_env(), timeout=60)
    assert p.returncode == Exit.PORT
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlms-cli: error: ") and "/dev/nonexistent" in lines[0]


def test_real_sim_port_in_process(capsys, monkeypatch):
    """--port sim through the real stack (adaptation layer, LonTalk, simulated channel)."""
    monkeypatch.setattr(ports, "_SIM", None)
    # a start just after a quarter hour: no profile capture falls inside the read
    code, out, err = run(capsys, "--port", "sim://?start=2026-01-01T00:00:30Z", "--json", "profile",
                         "--entries", "1:8")
    assert code == 0, err
    d = json.loads(out)
    sim = ports.sim_network().meter(ports.parse_meter("1/7")).simulator
    rows = sim.profile_rows()[:8]
    assert [r[1]["value"] for r in d["rows"]] == [int(r[1]) for r in rows]
    code, out, err = run(capsys, "--port", "sim", "--json", "read", "1-0:1.8.0.255")
    v = json.loads(out)["value"]["value"]
    assert abs(v - sim.import_export_wh(sim.clock())[0]) <= 5  # virtual time moves on a little
    assert NOTICE in err


def test_meter_sim_lists_objects(capsys):
    assert meter_sim.main(["--seed", "3", "--time", str(T0), "--json"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    obis = {o["obis"] for o in d["objects"]}
    assert {"0-0:32.0.0.255", "0-0:32.3.0.255", "1-0:99.1.0.255", "0-0:65.0.1.255", "0-0:44.0.0.255"} <= obis
    assert "not serving" in err
    assert meter_sim.main(["--seed", "3", "--time", str(T0)]) == 0
    assert "simulated meter" in capsys.readouterr().out


def test_readable_key_file_warns_in_one_line(net, capsys, tmp_path):
    p = tmp_path / "keys.toml"
    p.write_text(f'[dlms]\nek = "{EK}"\nak = "{AK}"\n')
    p.chmod(0o644)
    code, out, err = run(capsys, "--client", "management", "--keys", str(p), "read", "1-0:1.8.0.255")
    assert code == 0, err
    warn = [ln for ln in err.splitlines() if "warning" in ln]
    assert warn == [f"dlms-cli: warning: key file {p} is accessible by group or others (mode 0644); chmod 600 it"]
    assert EK not in err and AK not in err and EK not in out and AK not in out


def test_help_names_every_exit_code_and_port_form(capsys):
    with pytest.raises(SystemExit) as ex:
        cli.main(["--help"])
    assert ex.value.code == 0
    out = capsys.readouterr().out
    codes = out[out.index("exit codes:"):]
    for code in Exit:
        if code not in (Exit.OK, Exit.FINDINGS):  # dlms-cli never reports findings
            assert f"{int(code)} " in codes, code
    for form in ("cnip://HOST:PORT", "/dev/ttyUSB0", "socket://", "rfc2217://", "sim://?loss=", "[osgp]", "tshark"):
        assert form in " ".join(out.split()), form


def test_via_extends_the_timeout_to_the_chain_worst_case():
    """A --timeout shorter than the repeater chain's own retries would turn a proxy failure
    naming the hop into an anonymous timeout: the link waits at least the chain's worst case."""
    import asyncio

    from dlms14908.lon.transaction import NodeDest
    from dlms14908.node import Route, Timing
    from dlms14908.repeater.rules import NodeAddress

    async def go():
        direct = ports.open_link("cnip://127.0.0.1:9", ports.parse_meter("1/7"), None, None, None)
        chained = ports.open_link("cnip://127.0.0.1:9", ports.parse_meter("1/7"), ports.parse_via("1/3"),
                                  None, None)
        try:
            await direct._get()
            await chained._get()
            return direct.min_timeout, chained.min_timeout
        finally:
            await direct.close()
            await chained.close()

    d, c = asyncio.run(go())
    assert d == 0.0
    want = Timing(frame_time=0.05).worst_case(Route(NodeDest(1, 7), (NodeAddress(1, 3),)))
    assert c == want and c > 10.0  # longer than the default --timeout


def test_open_link_rejects_incomplete_addresses_up_front():
    """A library caller's MeterAddress without subnet/node or Neuron ID, or a Neuron-ID head-end
    source: PortError from open_link itself (it used to build NodeDest(1, None), or fail an
    assert at the first request)."""
    nid = ports.parse_meter("04A1B2C3D4E5")
    with pytest.raises(PortError, match="subnet/node or a Neuron ID"):
        ports.open_link("cnip://127.0.0.1:9", ports.MeterAddress(subnet=1), None, None, None)
    with pytest.raises(PortError, match="subnet/node or a Neuron ID"):
        ports.open_link("cnip://127.0.0.1:9", ports.MeterAddress(), None, None, None)
    with pytest.raises(PortError, match="head-end's address"):
        ports.open_link("cnip://127.0.0.1:9", ports.parse_meter("1/7"), None, None, None, source=nid)
    ports.open_link("cnip://127.0.0.1:9", nid, None, None, None, source=ports.parse_meter("1/100"))


def test_render_booleans_and_bytes():
    assert cli.render(True) == "true" and cli.render(False) == "false"
    assert cli.render(axdr.OctetString(b"AB")) == "4142 ('AB')" and cli.render(b"\x00\x01") == "0001"


def test_render_and_jsonable_enums_without_a_member_name():
    """Flag values no member names (clock_status 0, reserved bits) have ``name`` None on
    Python 3.11: render/jsonable show the number (they raised AttributeError); non-int enums
    keep their value (int() raised ValueError)."""
    from dlms14908.cosem.units import Unit
    from dlms14908.xdlms.ciphering import CipheringKind

    assert cli.render(axdr.ClockStatus(0)) == "0"
    assert cli.jsonable(axdr.ClockStatus(0x10)) == {"name": "16", "value": 16}
    both = axdr.ClockStatus.INVALID_VALUE | axdr.ClockStatus.DAYLIGHT_SAVING_ACTIVE
    assert cli.jsonable(both) == {"name": "invalid_value|daylight_saving_active", "value": 0x81}
    assert cli.render(Unit.WATT_HOUR) == "watt_hour"
    assert cli.jsonable(Unit.WATT_HOUR) == {"name": "watt_hour", "value": 30}
    assert cli.jsonable(CipheringKind.GLOBAL) == {"name": "global", "value": "glo"}
    assert json.dumps(cli.jsonable([axdr.ClockStatus(0), Unit.VOLT]))


def test_invocation_counters_are_reserved_before_the_run(net, capsys, tmp_path, state_dir, monkeypatch):
    """A run killed before it can store its last counter: the next run still starts beyond
    every counter the killed run could have used."""
    kf = keyfile(tmp_path, f'[dlms]\nek = "{EK}"\nak = "{AK}"\n')
    seen = []
    real = cli.save_invocation_counter
    monkeypatch.setattr(cli, "save_invocation_counter", lambda k, v: (seen.append(v), real(k, v)))

    def killed(*a, **k):
        raise KeyboardInterrupt  # the session dies before it ends normally

    real_session = cli._session
    monkeypatch.setattr(cli, "_session", lambda args, body: (cli._settings(args, cli._load_keys(args.keys)),
                                                            killed()))
    assert cli.main(["--client", "management", "--keys", kf, "read", "1-0:1.8.0.255"]) == 130
    assert seen == [cli.IC_RESERVE]
    monkeypatch.setattr(cli, "_session", real_session)
    code, _, err = run(capsys, "--client", "management", "--keys", kf, "read", "1-0:1.8.0.255")
    assert code == 0, err
    assert seen[1] == 2 * cli.IC_RESERVE  # the second run started at IC_RESERVE
    assert 2 * cli.IC_RESERVE > seen[-1] > cli.IC_RESERVE  # the counters this run really used
    stored = json.loads((state_dir / "invocation-counters.json").read_text())
    assert stored == {"444C430000000001": 2 * cli.IC_RESERVE}  # never lowered


def test_sim_start_option_makes_the_meter_clock_reproducible(capsys, monkeypatch):
    assert ports.parse_sim_url("sim://?start=2026-01-01T00:00:30Z")["start"] == 1767225630.0
    assert ports.parse_sim_url("sim://?start=2026-01-01T01:00:30%2B01:00")["start"] == 1767225630.0
    assert ports.parse_sim_url("sim://?start=1767225630")["start"] == 1767225630.0
    with pytest.raises(PortError, match="sim option start: give a zone"):
        ports.parse_sim_url("sim://?start=2026-01-01T00:00:30")
    monkeypatch.setattr(ports, "_SIM", None)
    code, out, err = run(capsys, "--port", "sim://?start=2026-01-01T00:00:30Z", "--json", "read",
                         "0-0:1.0.0.255")
    assert code == 0, err
    assert json.loads(out)["text"].startswith("2026-01-01 00:00:3")
