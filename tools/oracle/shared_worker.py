"""Pieces shared by the oracle workers and the harness (no third-party imports).

This module is imported by the worker scripts running *inside the oracle venv*
(``gurux_worker.py``, ``dlmscosem_worker.py``) and by ``harness.py`` in the
project's own interpreter.  It must therefore import neither the oracles nor
our packages.

Normalized JSON ("norm") is the one representation every side is compared in:

Data (IEC 62056-6-2 §4.1.5 type names)::

    {"type": "<green-book-name>", "value": ...}
    null-data, dont-care           value None
    boolean                        bool
    integer .. long64-unsigned,
    enum, bcd                      int (bcd: the raw octet, 0..255)
    bit-string                     "0101..." (one char per bit)
    octet-string                   upper-case hex
    visible-string, utf8-string    str
    float32, float64               upper-case hex of the IEEE 754 big-endian octets
    date-time, date, time          upper-case hex of the 12 / 5 / 4 raw octets
    array, structure               list of norms

APDUs: ``{"apdu": "<name>", ...}`` with the fields documented in ``harness.py``.

Wire protocol of a worker: one JSON object per line on stdin
(``{"id": n, "op": "...", ...}``), one JSON object per line on stdout
(``{"id": n, "ok": true, "result": ...}`` or ``{"id": n, "ok": false,
"kind": "error" | "unsupported", "error": "..."}``).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

TAG_NAMES: dict[int, str] = {
    0: "null-data",
    1: "array",
    2: "structure",
    3: "boolean",
    4: "bit-string",
    5: "double-long",
    6: "double-long-unsigned",
    9: "octet-string",
    10: "visible-string",
    12: "utf8-string",
    13: "bcd",
    15: "integer",
    16: "long",
    17: "unsigned",
    18: "long-unsigned",
    19: "compact-array",
    20: "long64",
    21: "long64-unsigned",
    22: "enum",
    23: "float32",
    24: "float64",
    25: "date-time",
    26: "date",
    27: "time",
    255: "dont-care",
}
NAME_TAGS: dict[str, int] = {v: k for k, v in TAG_NAMES.items()}

# (octets, signed) of the fixed-size integer types
INT_TYPES: dict[str, tuple[int, bool]] = {
    "integer": (1, True),
    "long": (2, True),
    "double-long": (4, True),
    "long64": (8, True),
    "unsigned": (1, False),
    "long-unsigned": (2, False),
    "double-long-unsigned": (4, False),
    "long64-unsigned": (8, False),
    "enum": (1, False),
    "bcd": (1, False),
}

# Conformance block (IEC 62056-5-3 §8, xDLMS-Initiate): bit n of the ASN.1 BIT STRING is
# 1 << (23 - n) in the 24-bit integer read big-endian from the wire.
CONFORMANCE_BITS: dict[str, int] = {
    "reserved-zero": 0,
    "general-protection": 1,
    "general-block-transfer": 2,
    "read": 3,
    "write": 4,
    "unconfirmed-write": 5,
    "delta-value-encoding": 6,
    "reserved-seven": 7,
    "attribute0-supported-with-set": 8,
    "priority-mgmt-supported": 9,
    "attribute0-supported-with-get": 10,
    "block-transfer-with-get-or-read": 11,
    "block-transfer-with-set-or-write": 12,
    "block-transfer-with-action": 13,
    "multiple-references": 14,
    "information-report": 15,
    "data-notification": 16,
    "access": 17,
    "parameterized-access": 18,
    "get": 19,
    "set": 20,
    "selective-access": 21,
    "event-notification": 22,
    "action": 23,
}
# the 17 bits dlms-cosem's Conformance models (dlms-anchors §5 #3): everything but the SN
# services and the two reserved bits 0 and 7
COSEM_CONFORMANCE_MASK = 0xFFFFFF & ~sum(
    1 << (23 - CONFORMANCE_BITS[n])
    for n in (
        "read",
        "write",
        "unconfirmed-write",
        "information-report",
        "parameterized-access",
        "reserved-zero",
        "reserved-seven",
    )
)
SN_ONLY_CONFORMANCE = sum(
    1 << (23 - CONFORMANCE_BITS[n])
    for n in ("read", "write", "unconfirmed-write", "information-report", "parameterized-access")
)


def reverse24(value: int) -> int:
    """Mirror the 24 low bits (bit 0 <-> bit 23)."""
    out = 0
    for i in range(24):
        if value >> i & 1:
            out |= 1 << (23 - i)
    return out


def norm(type_name: str, value: Any = None) -> dict[str, Any]:
    return {"type": type_name, "value": value}


class Unsupported(Exception):
    """The oracle has no representation for this input (reported as kind=unsupported)."""


def serve(handlers: dict[str, Callable[[dict[str, Any]], Any]]) -> None:
    """Answer JSON-line requests on stdin until EOF or {"op": "quit"}."""
    out = sys.stdout
    # Oracles sometimes print; keep our stdout channel clean.
    sys.stdout = sys.stderr
    for raw in sys.stdin:
        line = raw.strip()
        if not line:
            continue
        req: dict[str, Any] = {}
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "quit":
                break
            if op == "ping":
                reply = {"id": req.get("id"), "ok": True, "result": "pong"}
            elif op == "modules":  # lets the harness check no project code leaked in
                reply = {"id": req.get("id"), "ok": True, "result": sorted(sys.modules)}
            else:
                handler = handlers.get(str(op))
                if handler is None:
                    raise Unsupported(f"unknown op {op!r}")
                reply = {"id": req.get("id"), "ok": True, "result": handler(req)}
        except Unsupported as exc:
            reply = {"id": req.get("id"), "ok": False, "kind": "unsupported", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the oracle's own failure, reported, never fatal
            tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
            reply = {
                "id": req.get("id"),
                "ok": False,
                "kind": "error",
                "error": f"{type(exc).__name__}: {exc}"[:500],
                "where": tb[:300],
            }
        out.write(json.dumps(reply) + "\n")
        out.flush()
