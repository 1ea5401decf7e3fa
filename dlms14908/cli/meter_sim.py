"""``dlms-meter-sim``: the simulated DLMS/COSEM meter (IEC 62056-8-8 object set).

Until the LonTalk stack (adaptation layer, OSGP channel, transports) is wired in, the meter runs
in-process only: this command builds it and prints its object list with current values.  Use
``dlms-cli --port sim`` to talk to the same simulator through the client.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from rich.console import Console
from rich.table import Table

from ..cosem import decode_attribute
from ..keyfile import load_keyfile
from .common import run_guarded
from .main import render

__all__ = ["main", "build_parser"]

PROG = "dlms-meter-sim"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Simulated electricity meter (clock, energy registers advancing with time, "
            "instantaneous values, 15-minute load profile, association LN, security setup, "
            "disconnect control, image transfer, ISO/IEC 14908 classes 130-133, utility table). "
            "NOTE: no transport is available yet (CN/IP, serial and the simulated power-line "
            "network come with the LonTalk stack), so this command only builds the meter "
            "in-process and prints its objects; talk to it with 'dlms-cli --port sim'."))
    p.add_argument("--seed", type=int, default=0, help="model seed (default 0)")
    p.add_argument("--keys", metavar="FILE", help="TOML key file provisioning the management client")
    p.add_argument("--time", type=float, metavar="POSIX", help="simulated start time (default: now)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def go() -> int:
        from ..sim import DEFAULT_KEYS, DEFAULT_PASSWORD, MeterSimulator, SimClock
        kf = load_keyfile(args.keys) if args.keys else None
        dl = kf.dlms if kf is not None else None
        clock = SimClock(args.time if args.time is not None else time.time())
        meter = MeterSimulator(
            seed=args.seed, clock=clock,
            password=dl.lls_password if dl is not None and dl.lls_password else DEFAULT_PASSWORD,
            keys=dl.keys if dl is not None else DEFAULT_KEYS)
        err = Console(stderr=True, highlight=False)
        err.print(f"{PROG}: no transport yet; the meter runs in-process only "
                  "(use 'dlms-cli --port sim')", markup=False)
        now = clock()
        rows = []
        for obj in meter.objects.values():
            value = None
            if obj.interface.has_attribute(2) and obj.interface.class_id not in (7, 15):
                try:
                    value = decode_attribute(obj.interface.class_id, 2, obj.get(2, now=now))
                except Exception:  # noqa: BLE001 - a display of what is readable
                    value = None
            rows.append((obj, value))
        if args.json:
            out = [{"obis": str(o.logical_name), "name": o.logical_name.name,
                    "class_id": o.interface.class_id, "class": o.interface.name,
                    "value": None if v is None else render(v)} for o, v in rows]
            sys.stdout.write(json.dumps({"system_title": meter.system_title.hex().upper(),
                                         "objects": out}, indent=2) + "\n")
            return 0
        con = Console(highlight=False)
        t = Table(title=f"simulated meter {meter.system_title.hex().upper()} (seed {args.seed})")
        t.add_column("OBIS", no_wrap=True)
        t.add_column("class", justify="right")
        t.add_column("object")
        t.add_column("attribute 2", overflow="fold")
        for o, v in rows:
            text = "" if v is None else render(v)
            t.add_row(str(o.logical_name), str(o.interface.class_id), o.logical_name.name or o.interface.name,
                      text)
        con.print(t)
        return 0

    return run_guarded(PROG, go)


if __name__ == "__main__":
    sys.exit(main())
