"""``dlms-analyze frame HEX [--json] [--no-crc]``: decode one ISO/IEC 14908-1 frame.

The frame is an LPDU (L2 header, NPDU, and — unless ``--no-crc`` — the CRC-16).
The CRC is checked and reported; a wrong CRC still shows the decoded tree but
exits with ``Exit.FINDINGS``.  NM/ND requests, LTEP (0x4D) proxy requests and
network variables are decoded further.  Key material is never printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import re
import sys
from typing import Any

from ..cli.common import Exit
from ..errors import CrcError, DecodeError
from ..lon.codes import ApduClass
from ..lon.crc import crc16
from ..lon.frame import Apdu, decode_frame, frame_to_jsonable

__all__ = ["analyze_frame", "parse_hex", "register", "render_tree", "run"]

_REDACT = re.compile(r"(^|_)(key|keys|key_delta|delta)$")


def _key_carriers() -> tuple[type, ...]:
    from ..lon.netmgmt import ExpandedUpdateKeyRequest, UpdateDomainRequest, UpdateKeyRequest

    return (UpdateKeyRequest, ExpandedUpdateKeyRequest, UpdateDomainRequest)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "frame",
        help="decode one ISO/IEC 14908-1 (LonTalk) frame given in hex",
        description=(
            "Decode one LonTalk LPDU (L2 header + NPDU + CRC-16).  A wrong CRC is reported "
            "and makes the exit status 1."
        ),
    )
    p.add_argument("hex", nargs="+", metavar="HEX", help="the frame in hex; spaces allowed")
    p.add_argument("--no-crc", action="store_true", help="the frame has no trailing CRC")
    p.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    p.set_defaults(func=run)


def parse_hex(text: str | list[str]) -> bytes:
    """Hex digits, optionally separated by spaces, ``:``, ``-`` or ``_``, optional ``0x``."""
    joined = " ".join(text) if isinstance(text, list) else text
    cleaned = re.sub(r"0[xX](?=[0-9a-fA-F])", "", joined)
    cleaned = re.sub(r"[\s:_\-]", "", cleaned)
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", cleaned):
        raise DecodeError("not an even number of hex digits", field="hex")
    return bytes.fromhex(cleaned)


def _plain(obj: Any, name: str = "") -> Any:
    if name and obj is not None and _REDACT.search(name):
        return "<redacted>"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name), f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.name
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).hex()
    if isinstance(obj, (list, tuple)):
        return [_plain(x) for x in obj]
    return obj


def _apdu_details(apdu: Apdu) -> dict[str, Any] | None:
    """Typed view of a one-byte-code APDU where we have one (never raises)."""
    kind = apdu.kind
    if kind in (ApduClass.MANAGEMENT, ApduClass.DIAGNOSTIC):
        from ..lon.netmgmt import decode_request, message_to_jsonable

        try:
            msg = decode_request(apdu)
        except DecodeError as exc:
            return {"request_error": str(exc)}
        out: dict[str, Any] = {"request": message_to_jsonable(msg)}
        if isinstance(msg, _key_carriers()):
            out["data"] = "<redacted: carries key material>"
        return out
    if kind is ApduClass.FOREIGN and apdu.code == 0x4D:
        try:
            from ..repeater.ltep import decode_request as ltep_decode
        except ImportError:  # pragma: no cover - repeater package is part of the tree
            return None
        try:
            return {"ltep": _plain(ltep_decode(apdu.encode()))}
        except DecodeError as exc:
            return {"ltep_error": str(exc)}
    if kind is ApduClass.APPLICATION and apdu.code <= 0x3F:
        # 0x00-0x3F is also the response range of NM (0x00-0x3F) and ND (0x10-0x1F, 0x30-0x3F)
        return {"note": "0x00-0x3F: application message, or an NM/ND response (context decides)"}
    return None


def analyze_frame(data: bytes, *, crc: bool = True) -> dict[str, Any]:
    """The JSON-able report for one frame.  Raises DecodeError/CrcError as
    :func:`run` does, but a wrong CRC with a decodable body is a finding in the report."""
    findings: list[str] = []
    report: dict[str, Any] = {"length": len(data)}
    body = data
    if crc:
        if len(data) < 2:
            raise DecodeError("frame shorter than its CRC", field="crc", offset=0)
        body = data[:-2]
        want, got = crc16(body), int.from_bytes(data[-2:], "big")
        report["crc"] = {"value": f"{got:04X}", "computed": f"{want:04X}", "ok": want == got}
        if want != got:
            findings.append(f"CRC mismatch: frame carries {got:04X}, computed {want:04X}")
    else:
        report["crc"] = None
    try:
        frame = decode_frame(body, crc=False)
    except DecodeError as exc:
        if findings:
            raise CrcError(f"{findings[0]}; and the frame does not decode: {exc}", field="crc") from None
        raise
    report.update(frame_to_jsonable(frame))
    apdu = frame.apdu
    if isinstance(apdu, Apdu):
        details = _apdu_details(apdu)
        if details:
            report["apdu"].update(details)
    report["findings"] = findings
    return report


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "-"
    if isinstance(v, int):
        return f"{v} (0x{v:02X})"
    return str(v)


def _add(tree: Any, key: str, value: Any) -> None:
    from rich.markup import escape

    if isinstance(value, dict):
        branch = tree.add(f"[bold]{escape(key)}[/bold]")
        for k, v in value.items():
            _add(branch, k, v)
    elif isinstance(value, list) and value and isinstance(value[0], (dict, list)):
        branch = tree.add(f"[bold]{escape(key)}[/bold]")
        for i, v in enumerate(value):
            _add(branch, f"[{i}]", v)
    elif isinstance(value, list):
        tree.add(f"{escape(key)}: {escape(', '.join(str(x) for x in value)) or '-'}")
    else:
        tree.add(f"{escape(key)}: {escape(_scalar(value))}")


def render_tree(report: dict[str, Any]) -> Any:
    """A :class:`rich.tree.Tree` of the report."""
    from rich.tree import Tree

    npdu = report.get("npdu", {})
    title = f"LonTalk frame, {report['length']} bytes, {npdu.get('pdu_format', '?')}"
    tree = Tree(f"[bold]{title}[/bold]")
    for key, value in report.items():
        if key in ("length",):
            continue
        if key == "findings":
            for f in value:
                tree.add(f"[red]finding: {f}[/red]")
            continue
        _add(tree, key, value)
    return tree


def run(args: argparse.Namespace) -> int:
    data = parse_hex(args.hex)
    report = analyze_frame(data, crc=not args.no_crc)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        Console(file=sys.stdout, soft_wrap=True, highlight=False).print(render_tree(report))
    if report["findings"]:
        for f in report["findings"]:
            print(f"dlms-analyze: finding: {f}", file=sys.stderr)
        return int(Exit.FINDINGS)
    return int(Exit.OK)
