"""Views of analyzed frames: one-line summary, JSON lines, rich tree; ``--filter`` and ``--stats``."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..errors import DecodeError
from .engine import Finding, FrameRecord, airtime

__all__ = ["Stats", "compile_filter", "render_tree", "summary_line", "to_json_line", "to_jsonable"]


_CODE_NAMES: list[str | None] = [None] * 256


def _code_name(code: int) -> str:
    name = _CODE_NAMES[code]
    if name is None:
        from ..lon.codes import code_name

        name = _CODE_NAMES[code] = f"{code_name(code)} (0x{code:02X})"
    return name


_HEADS: dict[bytes, str] = {}


def _head(h: Any) -> str:
    k = h.dst_kind
    if k == "sn":
        dst = f"{h.dst_subnet}/{h.dst_node}"
    elif k == "nid":
        dst = f"NID {h.neuron_id.hex()} via subnet {h.dst_subnet}"
    elif k == "group":
        dst = f"group {h.group}"
    elif k == "gack":
        dst = f"{h.dst_subnet}/{h.dst_node} (group {h.group} member {h.member})"
    else:
        dst = f"bcast subnet {h.dst_subnet}" if h.dst_subnet else "bcast domain"
    text = f"{h.src_subnet}/{h.src_node} -> {dst} dom {h.domain.hex() or '-'}"
    if h.priority or h.alt_path:
        text += f" [{'P' if h.priority else ''}{'A' if h.alt_path else ''}]"
    return text


def _lon_text(rec: FrameRecord) -> str:
    """The LonTalk part, in the format of :func:`.capture_cmd.summarize`."""
    h = rec.hdr
    if h is not None:
        key = h.npdu
        text = _HEADS.get(key)
        if text is None:
            text = _head(h)
            if len(_HEADS) > 4096:
                _HEADS.clear()
            _HEADS[key] = text
        if h.layer == "A":
            text += " UNACKD"
        else:
            text += f" {h.svc} tn{h.tn}"
            if h.auth:
                text += " auth"
            if h.m_list is not None:
                text += f" mlist {h.m_list.hex() or '-'}"
        if h.apdu >= 0 and rec.lpdu is not None:
            a = h.apdu
            lp = rec.lpdu
            code = lp[a]
            if code & 0x80:
                if len(lp) - 2 - a >= 2:
                    kind = "poll" if code & 0x40 else "update"
                    text += f" NV {kind} sel 0x{((code & 0x3F) << 8) | lp[a + 1]:04X} [{len(lp) - 4 - a}B]"
            else:
                text += f" {_code_name(code)} [{len(lp) - 3 - a}B]"
        return text
    if rec.frame is not None:
        from .capture_cmd import summarize

        return summarize(rec.frame)
    return ""


def summary_line(rec: FrameRecord, t0: float) -> str:
    """``number time route crc lon | ltep | adaptation | osgp | xdlms  ! findings``"""
    text = _lon_text(rec)
    if rec.ltep_text:
        text += " | " + rec.ltep_text
    if rec.al_text:
        text += " | " + rec.al_text
    if rec.osgp_text:
        text += " | " + rec.osgp_text
    if rec.xdlms_text:
        text += " | " + rec.xdlms_text
    crc = rec.crc_ok
    line = f"{rec.number:>7} {rec.time - t0:10.3f} {rec.route:<9} {_CRC[crc]}{text}"
    if rec.findings:
        line += "  ! " + "; ".join(f"{f.kind}: {f.text}" for f in rec.findings)
    return line


_CRC = {None: "", True: "crc ok ", False: "CRC BAD "}


_KEYISH = re.compile(r"(^|_)(dedicated_key|key|ek|ak|bk|dk|kek)$")


def _redact(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {
            k: (
                "<redacted>"
                if isinstance(k, str) and _KEYISH.search(k) and v not in (None, "", b"")
                else _redact(v)
            )
            for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [_redact(v) for v in tree]
    return tree


def to_jsonable(rec: FrameRecord) -> dict[str, Any]:
    """The JSON object of one frame (``--json`` prints one per line)."""
    out: dict[str, Any] = {"number": rec.number, "time": rec.time, "route": rec.route}
    if rec.lpdu is not None:
        out["length"] = len(rec.lpdu)
        out["crc_ok"] = rec.crc_ok
    if rec.hdr is not None:
        out["lon"] = rec.hdr.to_jsonable()
    elif rec.frame is not None:
        from ..lon.frame import frame_to_jsonable

        lon = frame_to_jsonable(rec.frame)
        apdu = lon.get("apdu") if isinstance(lon, dict) else None
        if isinstance(apdu, dict) and apdu.get("code") in (0x60, 0x63, 0x65) and "data" in apdu:
            apdu["data"] = "<redacted: may carry key material>"  # NM update domain / key
        out["lon"] = lon
    if rec.meter is not None:
        out["meter"] = rec.meter
    if rec.nid is not None:
        out["neuron_id"] = rec.nid.hex()
    if rec.direction is not None:
        out["direction"] = rec.direction
    if rec.nm:
        out["message"] = rec.nm
    if rec.ltep is not None:
        out["ltep"] = rec.ltep
    if rec.al is not None:
        out["adaptation"] = rec.al
    if rec.osgp is not None:
        out["osgp"] = rec.osgp
    _add_upper_layers(rec, out)
    return out


def _add_upper_layers(rec: Any, out: dict[str, Any]) -> None:
    """Legacy OSGP, xDLMS, COSEM values, OBIS codes and findings: the fields both JSON
    views (the dict and the cached-fragment line) end with."""
    if rec.legacy is not None:
        out["legacy_osgp"] = rec.legacy
    if rec.xdlms is not None:
        from ..xdlms import apdu_to_jsonable

        try:
            out["xdlms"] = _redact(apdu_to_jsonable(rec.xdlms))
        except (TypeError, ValueError, AttributeError, KeyError):
            out["xdlms"] = {"apdu": getattr(rec.xdlms, "NAME", type(rec.xdlms).__name__)}
        out["xdlms_summary"] = rec.xdlms_text
    if rec.values:
        out["values"] = rec.values
    if rec.obis:
        out["obis"] = rec.obis
    if rec.findings:
        out["findings"] = [f.to_jsonable() for f in rec.findings]


_LON_JSON: dict[bytes, str] = {}
_AL_JSON: dict[bytes, str] = {}
_dumps = json.JSONEncoder(check_circular=False, separators=(", ", ": ")).encode
_B = ("false", "true")


def to_json_line(rec: FrameRecord) -> str:
    """``json.dumps(to_jsonable(rec))`` built faster: the LonTalk and adaptation parts
    come from fragments cached per header (the same object, key for key)."""
    h = rec.hdr
    if h is None or rec.frame is not None or rec.lpdu is None:
        return _dumps(to_jsonable(rec))
    lon = _LON_JSON.get(h.npdu)
    if lon is None:
        d = h.to_jsonable()
        for k in ("service", "trans_no", "auth", "m_list"):
            d.pop(k, None)
        lon = _dumps(d)[1:-1]
        if len(_LON_JSON) > 4096:
            _LON_JSON.clear()
        _LON_JSON[h.npdu] = lon
    if h.layer != "A":
        lon += f', "service": "{h.svc}", "trans_no": {h.tn}, "auth": {_B[h.auth]}'
        if h.m_list is not None:
            lon += f', "m_list": "{h.m_list.hex()}"'
    parts = [
        (
            f'{{"number": {rec.number}, "time": {rec.time!r}, "route": {_dumps(rec.route)}, '
            f'"length": {len(rec.lpdu)}, "crc_ok": {_B[bool(rec.crc_ok)]}, "lon": {{{lon}}}'
        )
    ]
    if rec.meter is not None:
        parts.append(f', "meter": {_dumps(rec.meter)}')
    if rec.nid is not None:
        parts.append(f', "neuron_id": "{rec.nid.hex()}"')
    if rec.direction is not None:
        parts.append(f', "direction": "{rec.direction}"')
    if rec.nm:
        parts.append(f', "message": {_dumps(rec.nm)}')
    if rec.ltep is not None:
        parts.append(f', "ltep": {_dumps(rec.ltep)}')
    al = rec.al
    if al is not None:
        parts.append(f', "adaptation": {_dumps(al)}')
    if rec.osgp is not None:
        o = rec.osgp
        if len(o) == 3 and "seq" in o:
            v = o["verified"]
            parts.append(
                f', "osgp": {{"key_id": {o["key_id"]}, "seq": {o["seq"]}, '
                f'"verified": {"null" if v is None else _B[v]}}}'
            )
        else:
            parts.append(f', "osgp": {_dumps(o)}')
    rest: dict[str, Any] = {}
    _add_upper_layers(rec, rest)
    if rest:
        parts.append(", " + _dumps(rest)[1:-1])
    parts.append("}")
    return "".join(parts)


def render_tree(rec: FrameRecord, t0: float) -> Any:
    """A :class:`rich.tree.Tree` of one frame."""
    from rich.markup import escape
    from rich.tree import Tree

    data = to_jsonable(rec)
    title = (
        f"[bold]#{rec.number}[/] {rec.time - t0:.3f}s {escape(rec.route)} {escape(_lon_text(rec))}"
    )
    tree = Tree(title)

    def add(node: Any, key: str, value: Any) -> None:
        if isinstance(value, dict):
            b = node.add(f"[bold]{escape(key)}[/]")
            for k, v in value.items():
                if v is not None:
                    add(b, str(k), v)
        elif isinstance(value, list):
            if value and all(not isinstance(v, (dict, list)) for v in value):
                node.add(f"{escape(key)}: {escape(', '.join(str(v) for v in value))}")
            else:
                b = node.add(f"[bold]{escape(key)}[/] ({len(value)})")
                for i, v in enumerate(value):
                    add(b, f"[{i}]", v)
        else:
            node.add(f"{escape(key)}: {escape(str(value))}")

    for key in ("lon", "ltep", "adaptation", "osgp", "legacy_osgp", "xdlms", "values"):
        if key in data:
            add(tree, key, data[key])
    for k in ("meter", "neuron_id", "direction", "crc_ok"):
        if k in data:
            tree.add(f"{k}: {escape(str(data[k]))}")
    for f in rec.findings:
        tree.add(f"[red]finding {escape(f.kind)}: {escape(f.text)}[/red]")
    return tree


# ---------------------------------------------------------------------------------- filter

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def _either(a: Callable[[FrameRecord], bool], b: Callable[[FrameRecord], bool]) -> Callable[[FrameRecord], bool]:
    return lambda r: a(r) or b(r)


def _both(a: Callable[[FrameRecord], bool], b: Callable[[FrameRecord], bool]) -> Callable[[FrameRecord], bool]:
    return lambda r: a(r) and b(r)


def compile_filter(expr: str) -> Callable[[FrameRecord], bool]:
    """Compile a filter expression.

    Terms: ``node=1/7`` (source, destination or meter), ``nid=045E00000107``,
    ``obis=1-0:1.8.0.255``, ``service=get`` (substring of the LonTalk service, message,
    OSGP or xDLMS text), ``finding`` or ``finding=KIND``, ``meter=1/7``, ``crc=bad``;
    combined with ``and``, ``or``, ``not`` and parentheses.  Raises DecodeError."""
    tokens: list[str] = _TOKEN.findall(expr)
    if not tokens:
        raise DecodeError("empty filter", field="--filter")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise DecodeError("filter ends early", field="--filter", offset=pos)
        pos += 1
        return tokens[pos - 1]

    def p_or() -> Callable[[FrameRecord], bool]:
        left = p_and()
        while peek() == "or":
            take()
            right = p_and()
            left = _either(left, right)
        return left

    def p_and() -> Callable[[FrameRecord], bool]:
        left = p_not()
        while peek() == "and":
            take()
            right = p_not()
            left = _both(left, right)
        return left

    def p_not() -> Callable[[FrameRecord], bool]:
        if peek() == "not":
            take()
            inner = p_not()
            return lambda r: not inner(r)
        if peek() == "(":
            take()
            inner = p_or()
            if take() != ")":
                raise DecodeError("missing ')'", field="--filter", offset=pos)
            return inner
        return _term(take())

    fn = p_or()
    if pos != len(tokens):
        raise DecodeError(f"unexpected {tokens[pos]!r}", field="--filter", offset=pos)
    return fn


def _norm_addr(text: str) -> str:
    return text.strip().lower()


def _term(tok: str) -> Callable[[FrameRecord], bool]:
    name, _, value = tok.partition("=")
    name = name.lower()
    if name == "finding":
        if not value:
            return lambda r: bool(r.findings)
        v = value.lower()
        return lambda r: any(f.kind == v for f in r.findings)
    if not value:
        raise DecodeError(f"term {tok!r} needs a value (name=value)", field="--filter")
    if name in ("node", "meter"):
        v = _norm_addr(value)

        def node(r: FrameRecord) -> bool:
            if r.meter is not None and r.meter.lower() == v:
                return True
            if name == "node":
                h = r.hdr
                if h is not None and (h.src == v or h.dst.lower() == v):
                    return True
                if h is not None and r.ltep is not None and v in (r.ltep.get("chain") or ()):
                    return True
            return False

        return node
    if name == "nid":
        v = value.lower().replace(":", "").replace("-", "")
        if not re.fullmatch(r"[0-9a-f]{12}", v):
            raise DecodeError("a Neuron ID is 12 hex digits", field="--filter nid")
        nid = bytes.fromhex(v)

        def nid_match(r: FrameRecord) -> bool:
            h = r.hdr
            return r.nid == nid or (
                h is not None and h.neuron_id is not None and bytes(h.neuron_id) == nid
            )

        return nid_match
    if name == "obis":
        from ..obis import Obis

        target = str(Obis.parse(value))
        return lambda r: target in r.obis
    if name == "service":
        v = value.lower()

        def svc(r: FrameRecord) -> bool:
            return any(
                v in (t or "").lower()
                for t in (r.kind, r.xdlms_text, r.nm, r.osgp_text, r.ltep_text)
            )

        return svc
    if name == "crc":
        want_bad = value.lower() in ("bad", "fail", "0", "false")
        return lambda r: r.crc_ok is not None and (r.crc_ok is not want_bad)
    raise DecodeError(f"unknown filter term {name!r}", field="--filter")


# ---------------------------------------------------------------------------------- stats


class Stats:
    """Counters over the displayed frames (bounded: one entry per meter / type)."""

    def __init__(self, bitrate: float) -> None:
        self.bitrate = bitrate
        self.frames = 0
        self.types: Counter[str] = Counter()
        self.services: Counter[str] = Counter()
        self.findings: Counter[str] = Counter()
        self.meters: dict[str, list[float]] = {}
        self.t_first: float | None = None
        self.t_last = 0.0
        self.bytes = 0

    def add(self, rec: FrameRecord) -> None:
        self.frames += 1
        self.types[rec.kind] += 1
        if rec.xdlms_text:
            self.services[rec.xdlms_text.split(" ")[0]] += 1
        for f in rec.findings:
            self.findings[f.kind] += 1
        if rec.lpdu is not None:
            n = len(rec.lpdu)
            self.bytes += n
            who = rec.meter or (rec.hdr.src if rec.hdr is not None else "?")
            m = self.meters.get(who)
            if m is None:
                if len(self.meters) >= 100_000:
                    who = "(other)"
                    m = self.meters.setdefault(who, [0, 0, 0.0])
                else:
                    m = self.meters[who] = [0, 0, 0.0]
            m[0] += 1
            m[1] += n
            m[2] += airtime(n, self.bitrate)
        if self.t_first is None:
            self.t_first = rec.time
        self.t_last = rec.time

    def add_late(self, f: Finding) -> None:
        self.findings[f.kind] += 1

    def to_jsonable(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "bytes": self.bytes,
            "duration": (self.t_last - self.t_first) if self.t_first is not None else 0.0,
            "types": dict(self.types.most_common()),
            "xdlms_services": dict(self.services.most_common()),
            "retries": self.findings.get("retry", 0),
            "failures": {k: v for k, v in self.findings.items() if k != "retry"},
            "meters": {
                k: {"frames": v[0], "bytes": v[1], "airtime_s": round(v[2], 3)}
                for k, v in sorted(self.meters.items(), key=lambda kv: -kv[1][2])
            },
            "bitrate": self.bitrate,
        }

    def render(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        d = self.to_jsonable()
        t1 = Table(
            title=f"{d['frames']} frames, {d['bytes']} bytes, {d['duration']:.1f} s",
            show_edge=False,
        )
        t1.add_column("frame type")
        t1.add_column("count", justify="right")
        for k, v in d["types"].items():
            t1.add_row(k, str(v))
        for k, v in d["xdlms_services"].items():
            t1.add_row(f"xDLMS {k}", str(v))
        t2 = Table(title="findings (retries and failures)", show_edge=False)
        t2.add_column("kind")
        t2.add_column("count", justify="right")
        t2.add_row("retry", str(d["retries"]))
        for k, v in d["failures"].items():
            t2.add_row(k, str(v))
        t3 = Table(title=f"per meter (airtime at {self.bitrate:.0f} bit/s)", show_edge=False)
        for c in ("meter", "frames", "bytes", "airtime s", ""):
            t3.add_column(c, justify="left" if c in ("meter", "") else "right")
        meters = list(d["meters"].items())
        top = max((v["airtime_s"] for _, v in meters), default=0.0) or 1.0
        for k, v in meters[:20]:
            bar = "█" * max(1, round(30 * v["airtime_s"] / top)) if v["airtime_s"] else ""
            t3.add_row(
                k, str(v["frames"]), str(v["bytes"]), f"{v['airtime_s']:.2f}", f"[cyan]{bar}[/]"
            )
        if len(meters) > 20:
            t3.add_row(f"... {len(meters) - 20} more", "", "", "", "")
        return Group(t1, t2, t3)
