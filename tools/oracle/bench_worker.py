"""Timing worker for ``benchmarks/xdlms_decode.py``: runs ONLY inside the oracle venv.

Reads the benchmark inputs (the very octets our decoder gets) from a file,
times gurux-dlms and dlms-cosem on them *inside this process* (so no IPC is
measured), checks every decoder produced the expected values, and prints one
JSON object: ``{"gurux": {"get": [s, ...], "profile": [s, ...]}, "dlmscosem": {...},
"check": {...}}``.

Input file layout: u32 count, then count x (u16 length + GET-Response APDU), then
the profile buffer (A-XDR array) up to EOF.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Callable
from typing import Any


def read_inputs(path: str) -> tuple[list[bytes], bytes]:
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from(">I", blob, 0)
    pos = 4
    apdus = []
    for _ in range(n):
        (ln,) = struct.unpack_from(">H", blob, pos)
        apdus.append(blob[pos + 2 : pos + 2 + ln])
        pos += 2 + ln
    return apdus, blob[pos:]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def gurux_bench(apdus: list[bytes], profile: bytes, repeat: int) -> dict[str, Any]:
    from gurux_dlms import GXByteBuffer, GXDLMSClient, GXDLMSSettings, GXReplyData
    from gurux_dlms.enums import InterfaceType
    from gurux_dlms.internal._GXCommon import _GXCommon
    from gurux_dlms.internal._GXDataInfo import _GXDataInfo

    client = GXDLMSClient(True, interfaceType=InterfaceType.PDU)

    def get() -> int:
        total = 0
        for a in apdus:
            reply = GXReplyData()
            client.getData(GXByteBuffer(a), reply)
            total += int(reply.value)
        return total

    settings = GXDLMSSettings(False, None)

    def prof() -> tuple[int, int]:
        rows = _GXCommon.getData(settings, GXByteBuffer(profile), _GXDataInfo())
        return len(rows), sum(int(r[1]) for r in rows)

    from gurux_dlms.objects import (
        GXDLMSCaptureObject,
        GXDLMSClock,
        GXDLMSData,
        GXDLMSProfileGeneric,
        GXDLMSRegister,
    )

    def typed() -> tuple[int, int]:
        pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
        pg.captureObjects.append((GXDLMSClock("0.0.1.0.0.255"), GXDLMSCaptureObject(2, 0)))
        pg.captureObjects.append((GXDLMSRegister("1.0.1.8.0.255"), GXDLMSCaptureObject(2, 0)))
        pg.captureObjects.append((GXDLMSData("0.0.96.10.1.255"), GXDLMSCaptureObject(2, 0)))
        rows = _GXCommon.getData(settings, GXByteBuffer(profile), _GXDataInfo())
        client.updateValue(pg, 2, rows)
        assert type(pg.buffer[0][0]).__name__ == "GXDateTime"
        return len(pg.buffer), sum(int(r[1]) for r in pg.buffer)

    tg, sg = timed(get, repeat)
    tp, sp = timed(prof, repeat)
    tt, st = timed(typed, repeat)
    return {
        "get": tg,
        "profile": tp,
        "typed": tt,
        "check": {"get_sum": sg, "profile": list(sp), "typed": list(st)},
    }


def dlmscosem_bench(apdus: list[bytes], profile: bytes, repeat: int) -> dict[str, Any]:
    from dlms_cosem.connection import XDlmsApduFactory
    from dlms_cosem.dlms_data import DlmsDataParser

    factory = XDlmsApduFactory.apdu_from_bytes

    def get() -> int:
        total = 0
        for a in apdus:
            apdu = factory(a)
            total += DlmsDataParser().parse(apdu.data)[0].value
        return total

    def prof() -> tuple[int, int]:
        rows = DlmsDataParser().parse(profile)[0].value
        return len(rows), sum(r.value[1].value for r in rows)

    from dlms_cosem import cosem, enumerations
    from dlms_cosem.cosem import Obis
    from dlms_cosem.parsers import ProfileGenericBufferParser

    columns = [
        cosem.CosemAttribute(
            interface=enumerations.CosemInterface.CLOCK,
            instance=Obis(0, 0, 1, 0, 0, 255),
            attribute=2,
        ),
        cosem.CosemAttribute(
            interface=enumerations.CosemInterface.REGISTER,
            instance=Obis(1, 0, 1, 8, 0, 255),
            attribute=2,
        ),
        cosem.CosemAttribute(
            interface=enumerations.CosemInterface.DATA,
            instance=Obis(0, 0, 96, 10, 1, 255),
            attribute=2,
        ),
    ]

    def typed() -> tuple[int, int]:
        rows = ProfileGenericBufferParser(capture_objects=columns, capture_period=15).parse_bytes(
            profile
        )
        assert type(rows[0][0].value).__name__ == "datetime"
        return len(rows), sum(r[1].value for r in rows)

    tg, sg = timed(get, repeat)
    tp, sp = timed(prof, repeat)
    tt, st = timed(typed, repeat)
    return {
        "get": tg,
        "profile": tp,
        "typed": tt,
        "check": {"get_sum": sg, "profile": list(sp), "typed": list(st)},
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", choices=("gurux", "dlmscosem"))
    args = ap.parse_args()
    apdus, profile = read_inputs(args.inputs)
    out: dict[str, Any] = {}
    if args.only in (None, "gurux"):
        out["gurux"] = gurux_bench(apdus, profile, args.repeat)
    if args.only in (None, "dlmscosem"):
        out["dlmscosem"] = dlmscosem_bench(apdus, profile, args.repeat)
    out["python"] = sys.version.split()[0]
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
