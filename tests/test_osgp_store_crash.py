"""Crash test: a writer process is SIGKILLed mid-traffic again and again; no sequence number
(= no CCM nonce) is ever transmitted twice.

The writer (this file run as a script) restores its NNAP channel and broadcast sender from an
osgp.store database, then protects frames as fast as it can, appending every transmitted
(kind, SeqNo) to a separate log that is fsync'd after each record — the log is the "air".
"""

from __future__ import annotations

import itertools
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NNAP_ID = bytes.fromhex("4e4e41500001")
LNAP_ID = bytes.fromhex("000102030405")
PSK = bytes.fromhex("00112233445566778899aabbccddeeff")
HDR = bytes((0x80, 0x01, 0x10))
DEST = bytes.fromhex("0101")
BLOCK = 16
_LINE = re.compile(rb"^([ub]) ([0-9a-f]{8}) (\d+)$")


def _writer(db: str, log_path: str, mode: str = "durable") -> None:  # runs in the child process
    sys.path.insert(0, str(ROOT))
    from osgp.channel import BroadcastSender, ChannelConfig, Role, SecureChannel
    from osgp.store import ChannelStore

    cfg = ChannelConfig(seq_block=BLOCK)
    store = ChannelStore(db)
    if mode == "no-reserve":
        # negative control: reservations are not made durable (only the snapshot taken at
        # commissioning is), as in an implementation that keeps its counter in memory
        store.reserve = lambda slot, ceiling: None  # type: ignore[method-assign]
    snap = store.load_channel("nnap")
    if snap is None:
        nn = SecureChannel(
            role=Role.NNAP,
            local_id=NNAP_ID,
            peer_id=LNAP_ID,
            psk=PSK,
            persistence=store,
            config=cfg,
            name="nnap",
        )
        ln = SecureChannel(role=Role.LNAP, local_id=LNAP_ID, peer_id=NNAP_ID, psk=PSK, config=cfg)
        msg = nn.start_handshake(0.0)
        for who in (ln, nn, ln, nn):
            events = who.receive_message(msg, 0.0)
            msg = getattr(events[0], "data", b"")
        bs = BroadcastSender(NNAP_ID, persistence=store, name="bc", seq_block=BLOCK)
        bs.new_key()
        bs.activate()
    else:
        nn = SecureChannel.from_snapshot(snap, persistence=store, config=cfg)
        bsnap = store.load_broadcast("bc")
        assert bsnap is not None
        bs = BroadcastSender.from_snapshot(bsnap, persistence=store, seq_block=BLOCK)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    pid = os.getpid()
    n = 0
    while True:
        n += 1
        if n % 3:
            body, kind = nn.protect(b"reading", header=HDR, dest=DEST, now=float(n)), b"u"
        else:
            body, kind = bs.protect(b"tariff", header=HDR, dest=b"", now=float(n)), b"b"
        os.write(fd, b"%s %s %d\n" % (kind, body[1:5].hex().encode(), pid))
        os.fsync(fd)


def _parse(log: Path) -> dict[bytes, list[tuple[int, int]]]:
    lines = log.read_bytes().split(b"\n")
    out: dict[bytes, list[tuple[int, int]]] = {b"u": [], b"b": []}
    for i, line in enumerate(lines):
        m = _LINE.match(line)
        if m is None:
            # Only the very last record can be torn by a kill.
            assert i == len(lines) - 1, f"corrupt log line {i}: {line!r}"
            continue
        out[m.group(1)].append((int(m.group(2), 16), int(m.group(3))))
    return out


def _check_never_reused(seqs: list[int]) -> None:
    assert len(seqs) == len(set(seqs)), "a sequence number was transmitted twice"
    assert all(a < b for a, b in itertools.pairwise(seqs)), "sequence numbers went backwards"


def test_checker_detects_reuse():
    # The check can fail: a naive restart from a stale in-memory counter repeats numbers.
    with pytest.raises(AssertionError):
        _check_never_reused([1, 2, 3, 4, 3, 4, 5])


def _kill_repeatedly(db: Path, log: Path, kills: int, seed: int, mode: str = "durable") -> list[int]:
    """Start the writer, let it transmit for a random while, SIGKILL it; ``kills`` times."""
    rng = random.Random(seed)
    pids = []
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, __file__, str(db), str(log), mode],
            stdout=subprocess.PIPE,
            cwd=str(ROOT),
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        size = log.stat().st_size if log.exists() else 0
        deadline = time.monotonic() + 10
        while (log.stat().st_size if log.exists() else 0) == size and time.monotonic() < deadline:
            time.sleep(0.005)  # wait until this writer is mid-traffic
        time.sleep(rng.uniform(0.02, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        proc.stdout.close()
        pids.append(proc.pid)
    return pids


def test_sigkill_without_durable_reservations_is_caught(tmp_path):
    """The end-to-end check can fail: the same kill/log/check run over a writer whose
    reservations are not durable finds transmitted sequence numbers repeated."""
    db, log = tmp_path / "state.db", tmp_path / "air.log"
    _kill_repeatedly(db, log, 3, 0x5EED, mode="no-reserve")
    seqs = [s for s, _ in _parse(log)[b"u"]]
    assert len(seqs) >= 3  # every writer transmitted before it was killed
    with pytest.raises(AssertionError, match="transmitted twice"):
        _check_never_reused(seqs)


def test_sigkill_writer_repeatedly_never_reuses_a_nonce(tmp_path):
    db, log = tmp_path / "state.db", tmp_path / "air.log"
    kills = 8
    pids = _kill_repeatedly(db, log, kills, 0x62056)
    records = _parse(log)
    print({k.decode(): len(v) for k, v in records.items()})
    for kind in (b"u", b"b"):
        seqs = [s for s, _ in records[kind]]
        assert len(seqs) > kills * 3, f"too little traffic for {kind!r}: {len(seqs)}"
        _check_never_reused(seqs)
    # Every writer transmitted, and every restart resumed above what its predecessor used.
    by_pid = [[s for s, p in records[b"u"] if p == pid] for pid in pids]
    assert all(by_pid), "a writer was killed before it transmitted anything"
    for before, after in itertools.pairwise(by_pid):
        assert after[0] > before[-1]
        assert (after[0] - 1) % BLOCK == 0  # resumed at a reservation ceiling


if __name__ == "__main__":
    _writer(sys.argv[1], sys.argv[2], *sys.argv[3:4])
