"""Benchmark: ``dlms-analyze capture`` vs tshark on the same CN/IP capture (issue 6 item 6).

The capture (``tools/gen_capture.py``, cached under ``.cache/analyzer-bench/``) holds
``--frames`` CN/IP frames: OSGP-AES-128-PSK handshakes of ``--meters`` meters, then
xDLMS GET-Request / GET-Response-Normal exchanges, every adaptation PDU protected.
Each tool runs as its own process on the same file, output to /dev/null; wall time,
CPU time (user + sys of the child, ``os.wait4``) and peak RSS are measured.

* ours ``--summary`` (no keys: LonTalk, adaptation header, OSGP KeyID/SeqNo, findings)
  vs ``tshark -r FILE`` (which dissects only CN/IP and LonTalk) — goal: at least as fast;
* ours ``--json`` vs ``tshark -r FILE -T json`` — goal: ≥ 5× faster;
* the same two modes with ``--keys`` (every frame decrypted, xDLMS and COSEM decoded),
  which tshark cannot do at all;
* peak RSS of ``--json --keys`` at ``--frames`` and at ``--frames / 5``: flat memory.

The two summary runs alternate ``--rounds`` times (ours, tshark, ours, tshark, ...): the
ratios use the median of each, and the load average is printed before and after (the
machine may be shared; CPU time is the fairer measure then).

Usage: ``python3 benchmarks/analyzer.py [--frames 1000000] [--meters 200] [--rounds 1] [--json] [--skip-tshark-json]``.
Our runs must exit 0 (no findings) or the benchmark aborts with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import gen_capture as G

ROOT = Path(__file__).resolve().parents[1]

CACHE = ROOT / ".cache" / "analyzer-bench"


def capture(frames: int, meters: int) -> tuple[Path, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"cnip-{frames}-{meters}.pcap"
    keys = CACHE / "keys.toml"
    if not keys.exists():
        keys.write_text(G.KEYFILE)
        keys.chmod(0o600)
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            G.generate(f, frames=frames, route="cnip", meters=meters)
        tmp.rename(path)
        print(f"generated {path.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path, keys


def run(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd`` with stdout to /dev/null; wall, CPU and peak RSS of the child."""
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(cmd, stdout=null, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _pid, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    return {
        "wall": wall,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_mb": ru.ru_maxrss / 1024,
        "exit": code,
        "stderr": err.decode(errors="replace")[-300:],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--meters", type=int, default=200)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--rounds", type=int, default=1, help="alternating summary runs (median)")
    ap.add_argument(
        "--skip-tshark-json", action="store_true", help="tshark -T json takes long: skip it"
    )
    a = ap.parse_args(argv)
    tshark = shutil.which("tshark")
    big, keys = capture(a.frames, a.meters)
    small, _ = capture(max(1000, a.frames // 5), a.meters)
    ours = [
        sys.executable,
        "-c",
        "import sys; from dlms14908.analyzer.cli import main; sys.exit(main())",
        "capture",
    ]
    runs: dict[str, dict[str, float]] = {}
    plan = [
        ("ours summary", ours + [str(big), "--summary"]),
        ("ours summary --keys", ours + [str(big), "--summary", "--keys", str(keys)]),
        ("ours json", ours + [str(big), "--json"]),
        ("ours json --keys", ours + [str(big), "--json", "--keys", str(keys)]),
        ("ours json --keys (1/5 size)", ours + [str(small), "--json", "--keys", str(keys)]),
    ]
    if tshark:
        plan.insert(1, ("tshark summary", [tshark, "-n", "-r", str(big)]))
        if not a.skip_tshark_json:
            plan.append(("tshark -T json", [tshark, "-n", "-r", str(big), "-T", "json"]))
    load_before = os.getloadavg()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}", file=sys.stderr)
    rounds: dict[str, list[dict[str, float]]] = {}
    for _ in range(max(1, a.rounds) - 1):  # extra alternating rounds of the two summaries
        for name, cmd in plan[:2]:
            rounds.setdefault(name, []).append(run(cmd))
    for name, cmd in plan:
        r = run(cmd)
        if name in rounds:
            rs = [*rounds[name], r]
            for key in ("wall", "cpu"):
                r[f"{key}_all"] = [x[key] for x in rs]  # type: ignore[assignment]
                r[key] = statistics.median(x[key] for x in rs)
        n = a.frames if "1/5" not in name else max(1000, a.frames // 5)
        r["frames_per_s_wall"] = n / r["wall"]
        r["frames_per_s_cpu"] = n / r["cpu"] if r["cpu"] else 0.0
        runs[name] = r
        print(
            f"{name:30s} wall {r['wall']:7.2f} s  cpu {r['cpu']:7.2f} s  "
            f"{r['frames_per_s_cpu']:9.0f} frames/s (cpu)  peak RSS {r['rss_mb']:6.1f} MB  exit {r['exit']}",
            file=sys.stderr,
        )
        if name.startswith("ours") and r["exit"] != 0:
            print(f"our analyzer reported findings or failed:\n{r['stderr']}", file=sys.stderr)
            return 2

    def ratio(a_: str, b_: str, key: str) -> float | None:
        if a_ in runs and b_ in runs and runs[a_][key]:
            return runs[b_][key] / runs[a_][key]
        return None

    ratios = {
        "summary vs tshark summary (wall)": ratio("ours summary", "tshark summary", "wall"),
        "summary vs tshark summary (cpu)": ratio("ours summary", "tshark summary", "cpu"),
        "json vs tshark -T json (wall)": ratio("ours json", "tshark -T json", "wall"),
        "json vs tshark -T json (cpu)": ratio("ours json", "tshark -T json", "cpu"),
        "json --keys vs tshark -T json (cpu)": ratio("ours json --keys", "tshark -T json", "cpu"),
        "peak RSS growth, 5x frames": ratio(
            "ours json --keys (1/5 size)", "ours json --keys", "rss_mb"
        ),
    }
    for k, v in ratios.items():
        if v is not None:
            print(f"{k:40s} {v:6.2f}x", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}", file=sys.stderr)
    if a.json:
        print(
            json.dumps(
                {
                    "frames": a.frames,
                    "meters": a.meters,
                    "runs": runs,
                    "ratios": ratios,
                    "load_before": load_before,
                    "load_after": load_after,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
