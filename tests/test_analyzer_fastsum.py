"""The fast summary path (:mod:`dlms14908.analyzer.fastsum`) prints exactly what the
general path prints: same lines, same late findings on stderr, same exit status.

Every capture runs twice through ``capture_cmd.run``: once as the CLI does (fast path),
once with the fast path switched off (``_fast`` returning None), and the outputs are
compared byte for byte.  Captures: generated sessions with retries, replays, duplicate
answers, CRC errors, segments, block transfers and proxy failures; LTEP relay legs
(the fast path reuses records of the general path and vice versa); random byte flips;
truncated files; captures with keys (the fast path hands every frame to the engine).
"""

from __future__ import annotations

import argparse
import binascii
import random
import struct
import sys
from pathlib import Path

import pytest

from dlms14908.analyzer import capture_cmd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ is not installed
from tools import gen_capture as G


def _run(
    path: Path, keys: Path | None, fast: bool, monkeypatch: pytest.MonkeyPatch, capsys
) -> tuple[str, str, int]:
    args = argparse.Namespace(
        file=str(path),
        keys=str(keys) if keys else None,
        json=False,
        summary=True,
        tree=False,
        filter=None,
        stats=False,
        quiet=False,
        write_decrypted=None,
        bitrate=3600.0,
    )
    calls: list[bool] = []
    real = capture_cmd._fast

    def spy(*a, **kw):
        calls.append(True)
        return real(*a, **kw) if fast else None

    with monkeypatch.context() as m:
        m.setattr(capture_cmd, "_fast", spy)
        code = capture_cmd.run(args)
    assert calls == [True]
    out, err = capsys.readouterr()
    return out, err, code


def _same(path: Path, monkeypatch, capsys, keys: Path | None = None) -> tuple[str, str, int]:
    fast = _run(path, keys, True, monkeypatch, capsys)
    general = _run(path, keys, False, monkeypatch, capsys)
    assert fast[0].splitlines() == general[0].splitlines()
    assert fast[1] == general[1]
    assert fast[2] == general[2]
    return fast


def _gen(tmp_path: Path, name: str, **kw) -> Path:
    path = tmp_path / name
    with open(path, "wb") as f:
        G.generate(f, **kw)
    return path


@pytest.mark.parametrize("route", ["cnip", "upper-pdu"])
def test_extras_capture_same_output(tmp_path: Path, route: str, monkeypatch, capsys) -> None:
    path = _gen(tmp_path, "x.pcap", frames=300, meters=3, extras=True, route=route)
    out, _err, code = _same(path, monkeypatch, capsys)
    # the findings the fast path must keep: retry, replay, CRC, proxy failure
    for kind in ("retry:", "replay:", "proxy-failure:"):
        assert kind in out
    assert "CRC BAD" in out
    assert code == 1
    assert len(out.splitlines()) > 250


def test_with_keys_same_output(tmp_path: Path, monkeypatch, capsys) -> None:
    path = _gen(tmp_path, "k.pcap", frames=120, meters=2, extras=True, suite0=True)
    keys = tmp_path / "keys.toml"
    keys.write_text(G.KEYFILE)
    keys.chmod(0o600)
    out, _err, _code = _same(path, monkeypatch, capsys, keys)
    assert "get-response-normal = " in out


def _relay_capture(path: Path) -> None:
    """Head-end -> repeater (LTEP) -> meter and back, then retries, a duplicate answer,
    a replay and an unanswered request, all of them as direct legs too."""
    with open(path, "wb") as f:
        _relay_session(G.Generator(f, meters=2))


def _relay_session(g: G.Generator) -> None:
    from dlms14908.repeater import ltep
    from dlms14908.xdlms import AttributeDescriptor, GetRequestNormal

    for m in g.meters:
        g.handshake(m)
    m = g.meters[0]
    rep = (1, 5)
    for i in range(3):
        inner = g.protected(
            m,
            GetRequestNormal(0xC1 + i, AttributeDescriptor(3, G.OBIS_ENERGY, 2)).to_bytes(),
            up=False,
        )
        answer = g.protected(m, bytes.fromhex("c401c1000600000001"), up=True)
        req = ltep.ProxyRequest(
            hops=(),
            sicb=ltep.Sicb(
                ltep.AddressType.SUBNET_NODE, ltep.ServiceType.REQUEST, ltep.TxCtrl(3, 8)
            ),
            target=ltep.SubnetNodeTarget(node=m.addr[1], subnet=m.addr[0]),
            apdu=inner,
            txctrl=None,
        )
        tn = g.next_tn()
        g.write(G.lpdu(G.HEAD_END, rep, 0, tn, ltep.encode_request(req)))  # general path
        g.write(G.lpdu(rep, m.addr, 0, 9, inner))  # fast path: relay of the LTEP leg
        if i != 1:
            g.write(G.lpdu(rep, m.addr, 0, 9, inner))  # retry of the direct leg
        g.write(G.lpdu(m.addr, rep, 2, 9, answer))  # fast path
        if i == 1:
            g.write(G.lpdu(m.addr, rep, 2, 9, answer))  # answered twice: 1 answer too many
        g.write(
            G.lpdu(rep, G.HEAD_END, 2, tn, ltep.encode_completion(ltep.ProxySuccess(answer)))
        )  # general path reusing the fast path's record
    g.read(g.meters[1], answer=False)  # never answered
    g.read(g.meters[1])
    body = g.last_request[:-2]  # the last request again in a new transaction: a replay
    body = body[:7] + bytes(((body[7] & 0xF0) | g.next_tn(),)) + body[8:]
    g.write(body + (binascii.crc_hqx(body, 0xFFFF) ^ 0xFFFF).to_bytes(2, "big"))
    g.w.flush()


def test_relay_legs_same_output(tmp_path: Path, monkeypatch, capsys) -> None:
    path = tmp_path / "relay.pcap"
    _relay_capture(path)
    out, err, _code = _same(path, monkeypatch, capsys)
    assert "(relay of #" in out
    assert "retry:" in out
    assert "duplicate:" in out
    assert "replay:" in out
    assert "unanswered" in err


def _records(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each record of a classic little-endian pcap."""
    out, pos = [], 24
    while pos + 16 <= len(data):
        n = struct.unpack_from("<I", data, pos + 8)[0]
        out.append((pos + 16, n))
        pos += 16 + n
    return out


def test_random_flips_and_truncation_same_output(tmp_path: Path, monkeypatch, capsys) -> None:
    base = _gen(tmp_path, "b.pcap", frames=150, meters=2, extras=True).read_bytes()
    recs = _records(base)
    rnd = random.Random(7)
    for trial in range(12):
        data = bytearray(base)
        for _ in range(20):
            off, n = recs[rnd.randrange(len(recs))]
            i = off + rnd.randrange(n)
            data[i] ^= 1 << rnd.randrange(8)
            if trial % 2:  # keep the CRC valid so the flips reach the upper layers
                lo = off + 62
                body = bytes(data[lo : off + n - 2])
                data[off + n - 2 : off + n] = (binascii.crc_hqx(body, 0xFFFF) ^ 0xFFFF).to_bytes(
                    2, "big"
                )
        if trial == 11:
            data = data[: len(data) - 37]  # truncated last record
        path = tmp_path / f"m{trial}.pcap"
        path.write_bytes(bytes(data))
        _same(path, monkeypatch, capsys)


def test_not_a_pcap_falls_back(tmp_path: Path, monkeypatch, capsys) -> None:
    """pcapng and serial logs are not for the fast path: it reports None, the general path runs."""
    path = tmp_path / "s.log"
    path.write_text(
        '{{"t": 1.0, "lpdu": "{}"}}\n'.format(
            G.lpdu(G.HEAD_END, (1, 10), 0, 1, b"\x3d\x00\x01\x01").hex()
        )
    )
    out, _err, _ = _same(path, monkeypatch, capsys)
    assert "serial" in out


def test_replay_on_a_relayed_leg(tmp_path: Path, monkeypatch, capsys) -> None:
    """A protected PDU seen on the LTEP leg and relayed on the direct leg, then sent again
    on the direct leg in a new transaction, is a replay (not another relay copy)."""
    from dlms14908.repeater import ltep
    from dlms14908.xdlms import AttributeDescriptor, GetRequestNormal

    path = tmp_path / "rr.pcap"
    with open(path, "wb") as f:
        g = G.Generator(f, meters=1)
        m = g.meters[0]
        g.handshake(m)
        rep = (1, 5)
        inner = g.protected(
            m, GetRequestNormal(0xC1, AttributeDescriptor(3, G.OBIS_ENERGY, 2)).to_bytes(), up=False
        )
        req = ltep.ProxyRequest(
            hops=(),
            sicb=ltep.Sicb(
                ltep.AddressType.SUBNET_NODE, ltep.ServiceType.REQUEST, ltep.TxCtrl(3, 8)
            ),
            target=ltep.SubnetNodeTarget(node=m.addr[1], subnet=m.addr[0]),
            apdu=inner,
            txctrl=None,
        )
        g.write(G.lpdu(G.HEAD_END, rep, 0, 7, ltep.encode_request(req)))
        relay = g.write(G.lpdu(rep, m.addr, 0, 9, inner))
        retry = g.write(G.lpdu(rep, m.addr, 0, 9, inner))
        replay = g.write(G.lpdu(rep, m.addr, 0, 10, inner))
        g.w.flush()
    out, _err, _code = _same(path, monkeypatch, capsys)
    lines = {int(x.split()[0]): x for x in out.splitlines()}
    assert "(relay of #" in lines[relay] and "!" not in lines[relay]
    assert "retry:" in lines[retry] and "replay" not in lines[retry]
    assert "replay: protected PDU of frame" in lines[replay]
