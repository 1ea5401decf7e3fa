"""``dlms-cli`` end to end against the meter simulator over ``--port sim`` (with repeaters),
CN/IP on loopback and a pty virtual transceiver, with and without OSGP-AES-128-PSK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

PSK = "000102030405060708090A0B0C0D0E0F"


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dlms14908.cli.main", *args], check=False, capture_output=True,
                          text=True, timeout=timeout)


def keyfile(tmp: Path, osgp: bool) -> str:
    p = tmp / "keys.toml"
    text = '[dlms]\nek = "000102030405060708090A0B0C0D0E0F"\nak = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"\n'
    if osgp:
        text += f'[osgp]\npsk = "{PSK}"\n[osgp.meters]\n"045E00000207" = "{PSK}"\n'
    p.write_text(text)
    os.chmod(p, 0o600)
    return str(p)


def _value(out: str) -> Any:
    return json.loads(out)


@pytest.mark.parametrize("osgp", [False, True], ids=["plain", "osgp"])
def test_cli_sim_through_two_repeaters(tmp_path: Path, osgp: bool) -> None:
    r = cli("--port", "sim", "--meter", "4/1", "--via", "2/10,3/10", "--keys", keyfile(tmp_path, osgp),
            "--json", "read", "1-0:1.8.0.255")
    assert r.returncode == 0, r.stderr
    assert "simulated" in r.stderr and "repeater at 2/10" in r.stderr and "repeater at 3/10" in r.stderr
    assert "meter at 4/1 (Neuron ID 045E00000401), via 2/10 -> 3/10" in r.stderr
    assert "head-end head-end" not in r.stderr
    assert ("OSGP-AES-128-PSK" in r.stderr) == osgp
    doc = _value(r.stdout)
    assert "1-0:1.8.0.255" in json.dumps(doc)


def test_cli_sim_info_counters_are_the_nodes(tmp_path: Path) -> None:
    r = cli("--port", "sim", "--meter", "2/7", "--json", "info")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    doc = _value(text)
    flat = json.dumps(doc)
    # class 132 reports the LonTalk layer's own counters: the meter has received frames
    assert "layer2_received" in flat and "messages_received" in flat
    found = {}

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("layer2_received", "messages_received") and isinstance(v, (int, dict)):
                    found[k] = v if isinstance(v, int) else v.get("value")
                walk(v)
        elif isinstance(o, list):
            for x in o:
                walk(x)

    walk(doc)
    if found:  # the JSON shape is APP's; when the counters are visible they are non-zero
        assert all(int(v) > 0 for v in found.values() if v is not None)


def test_cli_sim_capture_opens_in_tshark(tmp_path: Path, tshark: str) -> None:
    cap = tmp_path / "s.pcap"
    r = cli("--port", "sim", "--meter", "2/7", "--capture", str(cap), "read", "1-0:1.8.0.255")
    assert r.returncode == 0, r.stderr
    out = subprocess.run([tshark, "-r", str(cap)], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("LON") >= 4


_METER = textwrap.dedent('''
    import asyncio, sys, time
    from dlms14908.aio_link import NodeDriver, serve_meter
    from dlms14908.sim import MeterSimulator
    psk = bytes.fromhex(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
    async def main():
        sim = MeterSimulator(seed=1, clock=time.time, node=(2, 7))
        route = lambda s, c: sim.handler_for(c) if s == 1 else None
        if sys.argv[1] == "cnip":
            svc = await serve_meter("cnip://?bind=127.0.0.1:0", route, subnet=2, node=7, psk=psk)
            print(svc.local_address[1], flush=True)
        else:
            from dlms14908.transport.sim import AsyncPlChannel
            from dlms14908.transport.channel import ChannelConfig
            from dlms14908.transport.virtual import VirtualTransceiver
            ch = AsyncPlChannel(ChannelConfig(seed=1), time_scale=0.01)
            vt = VirtualTransceiver("u61", channel=ch.link("mip"))
            await vt.start()
            from dlms14908.adaptation.endpoint import ServerEndpoint, address_bytes
            from dlms14908.lon.transaction import LonConfig
            from dlms14908.node import LonNode, Timing
            channel = None
            nid = bytes((4, 0x5E, 0, 0, 2, 7))
            if psk:
                from osgp.channel import Role, SecureChannel
                from dlms14908.aio_link import DEFAULT_NNAP_ID
                channel = SecureChannel(role=Role.LNAP, local_id=nid, peer_id=DEFAULT_NNAP_ID, psk=psk)
            node = LonNode(LonConfig(2, 7, domain=b"\\x42", neuron_id=nid),
                           server=ServerEndpoint(route=route, channel=channel,
                                                 dest=address_bytes(b"\\x42", subnet=2, node=7)),
                           timing=Timing(0.05))
            NodeDriver(node, ch.link("meter"))
            print(vt.port, flush=True)
        await asyncio.sleep(60)
    asyncio.run(main())
''')


def _start_meter(kind: str, psk: str = "") -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen([sys.executable, "-c", _METER, kind, psk], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    if not line:
        p.kill()
        raise AssertionError(p.stderr.read() if p.stderr else "meter did not start")
    return p, line


def _start_meter_sim(*args: str) -> tuple[subprocess.Popen[str], str]:
    """The real ``dlms-meter-sim`` tool serving over CN/IP on loopback; returns its URL."""
    p = subprocess.Popen([sys.executable, "-m", "dlms14908.cli.meter_sim", "--cnip", "127.0.0.1:0",
                          "--duration", "60", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    url = p.stdout.readline().strip()
    if not url:
        p.kill()
        raise AssertionError(p.stderr.read() if p.stderr else "dlms-meter-sim did not start")
    return p, url


@pytest.mark.parametrize("osgp", [False, True], ids=["plain", "osgp"])
def test_cli_cnip_loopback(tmp_path: Path, osgp: bool) -> None:
    keys = keyfile(tmp_path, True) if osgp else None
    proc, url = _start_meter_sim("--meter", "2/7", *(["--keys", keys] if keys else []))
    try:
        assert ("OSGP-AES-128-PSK" in proc.stderr.readline()) == osgp  # type: ignore[union-attr]
        args = ["--port", url, "--meter", "2/7", "--json"] + (["--keys", keys] if keys else [])
        # successive head-end processes (each on a new UDP port) are all answered: before the
        # meter answered every CN/IP head-end it heard, the second run exited 6 ("did not answer")
        counts = []
        for _ in range(2):  # class 132 messages_received: the meter's live LonTalk counter
            r = cli(*args, "read", "0-0:32.2.0.255", "-a", "10")
            assert r.returncode == 0, r.stderr
            counts.append(json.loads(r.stdout)["value"]["value"])
        # each run got a fresh answer, not the response stored for the identical request of the
        # previous run (the same LonTalk source restarts its transaction numbers at 0; the meter
        # must not take that for a duplicate): AARQ, GET, RLRQ (+ the OSGP handshake) per run
        assert counts[1] - counts[0] == (5 if osgp else 3), counts
        r = cli("--port", url, "--meter", "2/9", "--timeout", "2", "read", "1-0:1.8.0.255")
        assert r.returncode == 6, r.stderr  # Exit.TIMEOUT: no node 2/9 on this port
        assert len(r.stderr.strip().splitlines()) == 1 and "2/9" in r.stderr and "Traceback" not in r.stderr
    finally:
        proc.kill()
        proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f:
                f.close()


def test_cli_pty_transceiver(tmp_path: Path) -> None:
    proc, port = _start_meter("pty")
    try:
        r = cli("--port", f"serial://{port}?kind=u61&timeout=5", "--meter", "2/7", "--json", "read", "1-0:1.8.0.255")
        assert r.returncode == 0, r.stderr
        assert "1-0:1.8.0.255" in r.stdout
    finally:
        proc.kill()
        proc.wait()


def test_cli_unreachable_port_is_one_line() -> None:
    r = cli("--port", "/dev/ttyDOESNOTEXIST0", "--meter", "2/7", "read", "1-0:1.8.0.255")
    assert r.returncode == 5, r.stderr  # Exit.PORT
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# ----------------------------------------------------------------- in process: --port sim://?options


def _main(capsys: Any, monkeypatch: Any, *argv: str) -> tuple[int, str, str]:
    from dlms14908.cli import main as cli_main
    from dlms14908.cli import ports

    monkeypatch.setattr(ports, "_SIM", None)  # a fresh simulated network per dlms-cli run
    code = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


#: just after a quarter hour: no profile capture falls inside a read (the simulated meters'
#: clock otherwise starts at wall-clock time, and a capture during the read shifts the rows)
QUARTER_START = "2026-01-01T00:00:30Z"


@pytest.mark.parametrize("osgp", [False, True], ids=["no-osgp", "osgp"])
@pytest.mark.parametrize("client", ["public", "management"], ids=["public", "hls-suite0"])
def test_cli_96_entry_profile_through_two_repeaters_with_10_percent_loss_each_security_layer(
        tmp_path: Path, capsys: Any, monkeypatch: Any, osgp: bool, client: str) -> None:
    """Issue 5 item 7: public client, or management client (HLS-5 + suite-0 ciphering), with
    and without OSGP-AES-128-PSK, through 2 repeaters on a channel losing 10 % of the frames;
    every value of the 96-entry profile is checked against the simulator's own state."""
    from dlms14908.cli import ports

    monkeypatch.setenv("DLMS14908_STATE_DIR", str(tmp_path / "state"))
    kf = tmp_path / "k.toml"
    kf.write_text('[dlms]\nek = "000102030405060708090A0B0C0D0E0F"\nak = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"\n'
                  + (f'[osgp]\npsk = "{PSK}"\n' if osgp else ""))
    kf.chmod(0o600)
    # seeded (deterministic); with 5 repeater retries all of seeds 1..40 complete this read
    # (a failure would be a correctly reported proxy error, see
    # test_cli_dead_node_is_one_line_naming_the_hop)
    code, out, err = _main(capsys, monkeypatch, "--port", f"sim://?loss=0.1&seed=3&start={QUARTER_START}",
                           "--meter", "4/1", "--via", "2/10,3/10", "--keys", str(kf), "--client", client, "--json",
                           "profile", "--entries", "1:96")
    assert code == 0, err
    assert "10% frame loss" in err and "via 2/10 -> 3/10" in err
    assert ("OSGP-AES-128-PSK" in err) == osgp
    doc = json.loads(out)
    cli = ports._SIM
    m = cli.net.find_meter("4/1")
    want = m.simulator.profile_rows()[:96]
    assert doc["entries"] == 96 and len(doc["rows"]) == 96
    for got, row in zip(doc["rows"], want, strict=True):
        assert got[1]["value"] == int(row[1]) and got[2]["value"] == int(row[2])
        assert got[0] == axdr_text(row[0])
    # the loss was real: frames were retransmitted, and the meter's OSGP channel verified frames
    retries = sum(n.lon.counters.retransmissions for n in cli.net.nodes.values())
    assert retries > 0
    assert (m.server.channel is not None and m.server.channel.counters.frames_ok > 0) == osgp
    # suite-0 ciphering ran exactly for the management client: its invocation counters were kept
    ics = tmp_path / "state" / "invocation-counters.json"
    assert ics.exists() == (client == "management")
    if client == "management":
        assert json.loads(ics.read_text())["444C430000000001"] > 0


def axdr_text(stamp: Any) -> str:
    from dlms14908 import axdr

    return axdr.DateTime.from_bytes(bytes(stamp)).to_datetime().isoformat(sep=" ", timespec="seconds")


@pytest.mark.parametrize("down, via, code, needle", [
    ("2/10", "2/10,3/10", 7, "first repeater 2/10 returned no completion"),
    ("3/10", "2/10,3/10", 7, "hop 0: repeater 2/10 could not reach repeater 3/10"),
    ("4/1", "2/10,3/10", 7, "hop 1: repeater 3/10 could not reach the target"),
    ("4/1", None, 6, "meter 4/1 did not answer"),
])
def test_cli_dead_node_is_one_line_naming_the_hop(capsys: Any, monkeypatch: Any, down: str, via: str | None,
                                                 code: int, needle: str) -> None:
    argv = ["--port", f"sim://?down={down}", "--meter", "4/1", *(["--via", via] if via else []),
            "read", "1-0:1.8.0.255"]
    rc, out, err = _main(capsys, monkeypatch, *argv)
    assert rc == code, err
    last = err.strip().splitlines()[-1]
    assert last == f"dlms-cli: error: {needle}" or (last.startswith("dlms-cli: error: ") and needle in last), err
    assert "switched off" in err and "Traceback" not in err and out == ""


def test_cli_bad_sim_option_is_a_port_error(capsys: Any, monkeypatch: Any) -> None:
    rc, _, err = _main(capsys, monkeypatch, "--port", "sim://?bogus=1", "read", "1-0:1.8.0.255")
    assert rc == 5 and "unknown sim option 'bogus'" in err


def test_cli_sim_info_and_class_131_are_the_nodes_own_settings(capsys: Any, monkeypatch: Any,
                                                                tmp_path: Path) -> None:
    """Class 130 reports the node's real address, Neuron ID and domain; class 131's inactivity
    timeout is the serving adaptation endpoint's, and writing it changes the endpoint."""
    from dlms14908.cli import ports

    monkeypatch.setenv("DLMS14908_STATE_DIR", str(tmp_path / "state"))
    code, out, err = _main(capsys, monkeypatch, "--port", "sim", "--meter", "3/44", "--json", "info")
    assert code == 0, err
    objs = {o["class_id"]: o["attributes"] for o in json.loads(out)["objects"]}
    m = ports._SIM.net.find_meter("3/44")
    assert bytes.fromhex(objs[130]["domain_id"]["value"]) == ports._SIM.net.domain == m.node.config.domain
    assert (objs[130]["subnet_id"]["value"], objs[130]["node_id"]["value"]) == (3, 44)
    assert bytes.fromhex(objs[130]["unique_node_id"]["value"]) == m.neuron_id
    assert objs[131]["inactivity_timeout"]["value"] == m.server.inactivity_timeout == 300
    # read as the 4th request (AARQ, 130, 131, 132); 133 and the RLRQ came after
    assert objs[132]["messages_received"]["value"] == 4 == m.node.lon.counters.class132()["messages_received"] - 2

    # management client writes class 131: the endpoint of the same process-wide meter follows
    cli_sim = ports._SIM
    from dlms14908.cli import main as cli_main

    rc = cli_main.main(["--port", "sim", "--meter", "3/44", "--client", "management", "set",
                        "0-0:32.1.0.255", "-a", "2", "u16:15"])
    capsys.readouterr()
    assert rc == 0 and ports._SIM is cli_sim
    assert m.server.inactivity_timeout == 15


def test_cli_profile_default_pdu_size_lets_the_adaptation_layer_segment(
        tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    """By default the client accepts 65535-byte APDUs: a 96-entry profile comes in one
    GET-Response segmented by the adaptation layer, in fewer frames than with DLMS block
    transfer at --max-pdu 256 (same values either way)."""
    from dlms14908.cli import ports

    monkeypatch.setenv("DLMS14908_STATE_DIR", str(tmp_path / "state"))
    frames, rows = [], []
    for extra in ((), ("--max-pdu", "256")):
        monkeypatch.setattr(ports, "_SIM", None)  # a fresh simulated network per read
        code, out, err = _main(capsys, monkeypatch, "--port", f"sim://?start={QUARTER_START}", "--meter", "2/1",
                               *extra, "--json", "profile", "--entries", "1:96")
        assert code == 0, err
        rows.append(json.loads(out)["rows"])
        frames.append(ports._SIM.net.channel.counters.frames)
    assert rows[0] == rows[1] and len(rows[0]) == 96
    assert frames[0] < frames[1]
    with pytest.raises(SystemExit) as ex:
        _main(capsys, monkeypatch, "--port", "sim", "--max-pdu", "5", "read", "1-0:1.8.0.255")
    assert ex.value.code == 2 and "12..65535" in capsys.readouterr().err
