"""``dlms-analyze capture FILE [--json]``: list the LonTalk frames of a pcap/pcapng file.

One line per record: number, time, route (``upper-pdu`` = LINKTYPE 252,
``cnip`` = CN/IP over UDP, ``user0``), CRC verdict and a one-line summary of the
frame, or the finding that explains why the record holds no decodable frame.
The file is read one record at a time (:mod:`dlms14908.pcap`).  With ``--json``
the output is a JSON array written incrementally.  Exit status 1 when any
record has a finding (bad CRC, undecodable frame, not LonTalk).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from typing import Any

from ..cli.common import Exit
from ..errors import DecodeError
from ..lon.crc import check_crc
from ..lon.frame import (
    Apdu,
    AuthPdu,
    BroadcastAddress,
    Frame,
    GroupAckAddress,
    GroupAddress,
    NeuronIdAddress,
    NvApdu,
    Spdu,
    SubnetNodeAddress,
    Tpdu,
    decode_frame,
    frame_to_jsonable,
)
from ..lon.codes import code_name
from ..pcap import CapturedFrame, iter_lon_frames

__all__ = ["register", "run", "summarize", "record_report"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "capture",
        help="list the LonTalk frames of a pcap/pcapng capture",
        description="List the ISO/IEC 14908-1 frames in a pcap or pcapng file, one line per record.",
    )
    p.add_argument("file", metavar="FILE", help="pcap or pcapng file")
    p.add_argument("--json", action="store_true", help="print a JSON array instead of text lines")
    p.set_defaults(func=run)


def _addr(frame: Frame) -> str:
    a = frame.address
    src = f"{a.src_subnet}/{a.src_node}"
    if isinstance(a, BroadcastAddress):
        dst = f"bcast subnet {a.dst_subnet}" if a.dst_subnet else "bcast domain"
    elif isinstance(a, GroupAddress):
        dst = f"group {a.group}"
    elif isinstance(a, SubnetNodeAddress):
        dst = f"{a.dst_subnet}/{a.dst_node}"
    elif isinstance(a, GroupAckAddress):
        dst = f"{a.dst_subnet}/{a.dst_node} (group {a.group} member {a.member})"
    else:
        assert isinstance(a, NeuronIdAddress)
        dst = f"NID {a.neuron_id.hex()} via subnet {a.dst_subnet}"
    dom = frame.domain.hex() or "-"
    return f"{src} -> {dst} dom {dom}"


def _apdu(apdu: Apdu | NvApdu | None) -> str:
    if apdu is None:
        return ""
    if isinstance(apdu, NvApdu):
        kind = "poll" if apdu.direction else "update"
        return f" NV {kind} sel 0x{apdu.selector:04X} [{len(apdu.data)}B]"
    return f" {code_name(apdu.code)} (0x{apdu.code:02X}) [{len(apdu.data)}B]"


def summarize(frame: Frame) -> str:
    """A one-line description of a decoded frame."""
    pdu = frame.pdu
    flags = ("P" if frame.l2.priority else "") + ("A" if frame.l2.alt_path else "")
    head = f"{_addr(frame)}"
    if flags:
        head += f" [{flags}]"
    if isinstance(pdu, (Tpdu, Spdu)):
        layer = "T" if isinstance(pdu, Tpdu) else "S"
        text = f"{head} {layer}:{pdu.type.name} tn{pdu.trans_no}"
        if pdu.auth:
            text += " auth"
        if pdu.m_list is not None:
            text += f" mlist {pdu.m_list.hex() or '-'}"
        return text + _apdu(pdu.apdu)
    if isinstance(pdu, AuthPdu):
        return f"{head} AUTH:{pdu.type.name} tn{pdu.trans_no} fmt{pdu.fmt}"
    return f"{head} UNACKD" + _apdu(pdu)


_REDACTED = "<redacted: carries key material>"


def _carries_key(frame: Frame) -> bool:
    apdu = frame.apdu
    if not isinstance(apdu, Apdu) or apdu.code not in (0x60, 0x63, 0x65):
        return False
    from ..lon.netmgmt import decode_request

    try:
        decode_request(apdu)
    except DecodeError:
        return False
    return True


def record_report(cap: CapturedFrame) -> dict[str, Any]:
    """JSON-able description of one record, with ``finding`` set when something is wrong."""
    out: dict[str, Any] = {"number": cap.index, "time": cap.timestamp, "route": cap.route}
    if cap.cnip is not None:
        out["cnip"] = {"sequence": cap.cnip.sequence, "session": cap.cnip.session, "port": cap.udp_dst_port}
    if cap.lpdu is None:
        out["finding"] = cap.finding
        return out
    lpdu = cap.lpdu
    out["hex"] = lpdu.hex()
    crc_ok = check_crc(lpdu)
    out["crc_ok"] = crc_ok
    try:
        frame = decode_frame(lpdu[:-2] if len(lpdu) >= 2 else lpdu, crc=False)
    except DecodeError as exc:
        out["finding"] = f"does not decode: {exc}"
        return out
    out["summary"] = summarize(frame)
    out["frame"] = frame_to_jsonable(frame)
    if _carries_key(frame):
        out["hex"] = _REDACTED
        out["frame"]["apdu"]["data"] = _REDACTED
    if not crc_ok:
        out["finding"] = "CRC mismatch"
    return out


def _time(ts: float) -> str:
    try:
        return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    except (OverflowError, OSError, ValueError):
        return f"{ts:.3f}"


def run(args: argparse.Namespace) -> int:
    findings = 0
    out = sys.stdout
    with open(args.file, "rb") as f:
        first = True
        if args.json:
            out.write("[")
        try:
            for cap in iter_lon_frames(f):
                rep = record_report(cap)
                if "finding" in rep:
                    findings += 1
                if args.json:
                    out.write(("\n" if first else ",\n") + json.dumps(rep))
                else:
                    crc = "" if "crc_ok" not in rep else ("crc ok " if rep["crc_ok"] else "CRC BAD ")
                    text = rep.get("summary") or ""
                    if "finding" in rep:
                        text = (text + "  " if text else "") + f"! {rep['finding']}"
                    out.write(f"{rep['number']:>6} {_time(rep['time'])} {rep['route']:<9} {crc}{text}\n")
                first = False
        finally:
            if args.json:
                out.write("\n]\n")
    if findings:
        print(f"dlms-analyze: {findings} record(s) with findings", file=sys.stderr)
        return int(Exit.FINDINGS)
    return int(Exit.OK)
