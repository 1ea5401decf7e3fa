"""``dlms-analyze capture FILE``: decode a capture through every layer.

Reads pcap/pcapng (CN/IP over UDP, LINKTYPE 252 exported PDUs, LINKTYPE_USER0) and
the analyzer's serial-link logs (JSON lines, :mod:`.sources`), streaming with bounded
memory, and decodes LonTalk (CRC checked), the Annex E proxy, the adaptation layer
(reassembled), OSGP-AES-128-PSK (decrypted with ``--keys``: PSKs or session keys per
Neuron ID, following the Challenge/Commission exchanges), xDLMS/ACSE (suite 0
decrypted, block transfers followed) and COSEM values typed by class with OBIS names
(:mod:`.engine`).  Output: one line per frame (default, ``--summary``), ``--tree`` a rich
tree per frame, ``--json`` JSON lines; ``--filter``, ``--stats``, ``--write-decrypted``
(LINKTYPE 252 pcap).  Exit status 1 when a finding other than a warning (retry,
unanswered, duplicate, no-key) was reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..cli.common import Exit
from ..lon.codes import code_name
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
)

__all__ = ["analyze_file", "register", "run", "summarize"]

_EPILOG = """key file tables: [dlms] (suite 0: ek, ak, system_title ...), [osgp] psk / nnap_id /
[osgp.meters] "NID" = "PSK" / [osgp.sessions] "NID" = { key_id = 1, key = "..." },
[legacy] oma_key / codes / encrypted.
filter terms: node=1/7 nid=HEX obis=1-0:1.8.0.255 service=TEXT finding[=KIND] meter=1/7
crc=bad, combined with and / or / not / ( ).
finding kinds: crc malformed not-lon truncated bad-tag replay sequence-error auth-failure
proxy-failure unanswered retry duplicate reassembly block-sequence no-key handshake."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "capture",
        help="decode a pcap/pcapng capture or serial log through every layer",
        description="Decode LonTalk / LTEP / adaptation / OSGP-AES-128-PSK / xDLMS / COSEM from a capture.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="pcap, pcapng or serial log (JSON lines)")
    p.add_argument("--keys", metavar="FILE", help="TOML key file ([dlms], [osgp], [legacy])")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="JSON lines, one object per frame")
    mode.add_argument("--summary", action="store_true", help="one line per frame (the default)")
    mode.add_argument("--tree", action="store_true", help="a tree of every layer per frame")
    p.add_argument(
        "--filter", metavar="EXPR", action="append", help="show only matching frames (repeat = and)"
    )
    p.add_argument(
        "--stats", action="store_true", help="print statistics at the end (only stats with --quiet)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no per-frame output")
    p.add_argument(
        "--write-decrypted", metavar="OUT", help="write the frames, decrypted, as LINKTYPE 252 pcap"
    )
    p.add_argument(
        "--bitrate", type=float, default=3600.0, help="channel bit rate for airtime (default 3600)"
    )
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


def analyze_file(
    path: str,
    *,
    keys: Any = None,
    detail: bool = True,
    keep_plain: bool = False,
    bitrate: float = 3600.0,
) -> Any:
    """Yield :class:`~.engine.FrameRecord` objects, then the late findings as
    :class:`~.engine.Finding` objects (for library use and tests)."""
    from .engine import Analyzer
    from .sources import iter_capture

    an = Analyzer(keys, detail=detail, keep_plain=keep_plain, bitrate=bitrate)
    with open(path, "rb") as f:
        for number, ts, route, lpdu, finding in iter_capture(f):
            yield an.process(number, ts, route, lpdu, finding)
            if an.late:
                yield from an.late
                an.late.clear()
    yield from an.finish()


def run(args: argparse.Namespace) -> int:
    from .engine import WARNING_KINDS, Finding
    from .keys import load_analyzer_keys
    from .output import Stats, compile_filter, render_tree, summary_line, to_json_line

    keys = load_analyzer_keys(args.keys)
    filters = [compile_filter(e) for e in (args.filter or [])]
    out = sys.stdout
    mode = "quiet" if args.quiet else "json" if args.json else "tree" if args.tree else "summary"
    detail = mode in ("json", "tree")
    stats = Stats(args.bitrate) if args.stats else None
    writer = None
    wfile = None
    if args.write_decrypted:
        from ..pcap import LonCaptureWriter

        wfile = open(args.write_decrypted, "wb")  # noqa: SIM115 - closed in finally
        writer = LonCaptureWriter(wfile, "upper-pdu")
    console = None
    if mode == "tree":
        from rich.console import Console

        console = Console(file=out, highlight=False, width=None if out.isatty() else 200)
    findings = 0
    fatal: str | None = None
    t0: float | None = None
    buf: list[str] = []
    late: list[str] = []
    if mode == "summary" and not filters and stats is None and writer is None:
        res = _fast(args.file, keys, args.bitrate, out)
        if res is not None:
            findings, late_f, t0, fatal = res
            late = [
                f"dlms-analyze: {x.kind}: {x.text} (frame {', '.join(map(str, x.frames))})"
                for x in late_f
            ]
            return _finish(findings, late, fatal, t0)
    try:
        for item in analyze_file(
            args.file, keys=keys, detail=detail, keep_plain=writer is not None, bitrate=args.bitrate
        ):
            if isinstance(item, Finding):
                findings += item.kind not in WARNING_KINDS
                if stats is not None:
                    stats.add_late(item)
                if mode == "json":
                    buf.append(json.dumps({"finding": item.to_jsonable()}))
                else:  # not tied to the frame being printed: report on stderr
                    late.append(
                        f"dlms-analyze: {item.kind}: {item.text} (frame {', '.join(map(str, item.frames))})"
                    )
                continue
            rec = item
            if rec.findings:
                findings += any(f.kind not in WARNING_KINDS for f in rec.findings)
                if rec.route == "file" and rec.number == 1:
                    fatal = rec.findings[0].text
            if writer is not None and rec.lpdu is not None:
                writer.write_frame(rec.plain_lpdu or rec.lpdu, max(rec.time, 0.0))
            if t0 is None and rec.route != "file":
                t0 = rec.time
            if filters and not all(f(rec) for f in filters):
                continue
            if stats is not None:
                stats.add(rec)
            if mode == "summary":
                buf.append(summary_line(rec, t0 or 0.0))
            elif mode == "json":
                buf.append(to_json_line(rec))
            elif mode == "tree":
                assert console is not None
                if buf:
                    out.write("\n".join(buf) + "\n")
                    buf.clear()
                console.print(render_tree(rec, t0 or 0.0))
            if len(buf) >= 2048:
                buf.append("")
                out.write("\n".join(buf))
                buf.clear()
        if buf:
            buf.append("")
            out.write("\n".join(buf))
            buf.clear()
    finally:
        if writer is not None:
            writer.flush()
        if wfile is not None:
            wfile.close()
    if stats is not None:
        if mode == "json":
            out.write(json.dumps({"stats": stats.to_jsonable()}) + "\n")
        else:
            from rich.console import Console

            Console(file=out, highlight=False).print(stats.render())
    return _finish(findings, late, fatal, t0)


def _fast(path: str, keys: Any, bitrate: float, out: Any) -> Any:
    """The summary through :func:`.fastsum.fast_summary` (None: not a classic pcap)."""
    from .engine import Analyzer
    from .fastsum import fast_summary

    an = Analyzer(keys, detail=False, bitrate=bitrate)
    with open(path, "rb") as f:
        return fast_summary(f, an, out.write)


def _finish(findings: int, late: list[str], fatal: str | None, t0: float | None) -> int:
    for line in late[:1000]:
        print(line, file=sys.stderr)
    if len(late) > 1000:
        print(f"dlms-analyze: ... {len(late) - 1000} more", file=sys.stderr)
    if fatal is not None and t0 is None:
        from ..errors import DecodeError

        raise DecodeError(fatal, field="pcap.magic", offset=0)
    if findings:
        print(f"dlms-analyze: {findings} record(s) with findings", file=sys.stderr)
        return int(Exit.FINDINGS)
    return int(Exit.OK)
