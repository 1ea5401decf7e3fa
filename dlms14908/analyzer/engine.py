"""The capture analyzer core (sans-I/O): one LonTalk record in, one decoded :class:`FrameRecord` out.

Layers, each from its own package: ISO/IEC 14908-1 frame (:mod:`.lonhdr` fast path,
:func:`dlms14908.lon.frame.decode_frame` reference), CRC-16 (``lontalk.md`` §1.6),
Annex E LTEP proxy (:mod:`dlms14908.repeater.ltep`), adaptation layer with reassembly
(:mod:`dlms14908.adaptation.pdu`, ``docs/wire-format.md`` §3), OSGP-AES-128-PSK
(:mod:`osgp.keys`, :mod:`osgp.messages`, ``docs/wire-format.md`` §4) followed
*passively* through Challenge/Commission exchanges, xDLMS/ACSE
(:func:`dlms14908.xdlms.decode_apdu`, suite 0 via :mod:`dlms14908.xdlms.ciphering`,
block transfer via :class:`~dlms14908.xdlms.DataBlockCollector`), COSEM values typed
by class (:func:`dlms14908.cosem.decode_attribute`) with OBIS names, legacy OSGP
(:mod:`osgp.legacy`).

Every problem becomes a :class:`Finding` on the frame (or, for unanswered
requests, at eviction / :meth:`Analyzer.finish`); nothing raises out of
:meth:`Analyzer.process` for any input.  All per-flow state is bounded (LRU
dictionaries with fixed capacities, time-based eviction of transactions).
"""

# ruff: noqa: TC004  (the deeper layers are imported by _need(), on first use)
from __future__ import annotations

import binascii
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osgp import InvalidTag
from osgp import messages as M

from .. import profile as P
from ..errors import DecodeError
from ..errors import ProtocolError as DlmsError
from .keys import AnalyzerKeys
from .lonhdr import LonHdr, peek

if TYPE_CHECKING:  # names bound at run time by _need()
    from osgp import keys as K
    from osgp import legacy
    from osgp.ccm import AesCcm
    from osgp.channel import ReplayWindow

    from .. import axdr
    from ..adaptation.pdu import AdaptationPdu, Reassembler
    from ..cosem import decode_attribute
    from ..lon.codes import code_name
    from ..lon.frame import decode_frame
    from ..repeater import ltep
    from ..xdlms import DataAccessResult, DataBlockCollector, decode_apdu
    from ..xdlms import ciphering as sec
    from ..xdlms.ciphering import is_ciphered_tag

_LOADED = False


def _need() -> None:
    """Import the modules of the deeper layers on first use (the summary of a capture
    without keys never needs most of them, and starts in a fraction of the time)."""
    global _LOADED, K, legacy, AesCcm, ReplayWindow, axdr, AdaptationPdu, Reassembler
    global decode_attribute, code_name, decode_frame, ltep, DataAccessResult
    global DataBlockCollector, decode_apdu, sec, is_ciphered_tag, _PLAIN_SCALARS
    if _LOADED:
        return
    from osgp import keys as K
    from osgp import legacy
    from osgp.ccm import AesCcm
    from osgp.channel import ReplayWindow

    from .. import axdr
    from ..adaptation.pdu import AdaptationPdu, Reassembler
    from ..cosem import decode_attribute
    from ..lon.codes import code_name
    from ..lon.frame import decode_frame
    from ..repeater import ltep
    from ..xdlms import DataAccessResult, DataBlockCollector, decode_apdu
    from ..xdlms import ciphering as sec
    from ..xdlms.ciphering import is_ciphered_tag

    _PLAIN_SCALARS = frozenset(
        {
            axdr.DoubleLongUnsigned,
            axdr.DoubleLong,
            axdr.LongUnsigned,
            axdr.Long,
            axdr.Unsigned,
            axdr.Integer,
            axdr.Long64,
            axdr.Long64Unsigned,
            axdr.Float32,
            axdr.Float64,
            bool,
            type(None),
        }
    )
    _LOADED = True


__all__ = ["FINDING_KINDS", "WARNING_KINDS", "Analyzer", "Finding", "FrameRecord", "airtime"]

FINDING_KINDS = (
    "crc",
    "malformed",
    "not-lon",
    "truncated",
    "bad-tag",
    "replay",
    "sequence-error",
    "auth-failure",
    "proxy-failure",
    "unanswered",
    "retry",
    "duplicate",
    "reassembly",
    "block-sequence",
    "no-key",
    "handshake",
)

#: kinds that are normal on a lossy channel or only say what could not be decoded: reported,
#: but they do not make the exit status non-zero on their own
WARNING_KINDS = frozenset({"retry", "unanswered", "duplicate", "no-key"})

#: A-band power line (reference lontalk.md §4): 3.6 kbit/s, ~33.5 preamble bits
BITRATE = 3600.0
PREAMBLE_BITS = 33.5

_AL_CODE = P.AL_MSG_CODE
_LTEP = 0x4D
_LTEP_FAIL = 0x4C
_TX_TIMEOUT = 64.0  # seconds an unanswered LonTalk request stays pending
_MAX_PENDING = 4096
_MAX_FLOWS = 4096
_MAX_SEEN = 4096
_RELAY_WINDOW = 30.0
_MAX_PER_FLOW = 64
_MAX_BLOCK_BYTES = 1 << 20


_AL_TYPES = frozenset(t for t in P.AL_TYPES_KNOWN if t < 4)
_AL_TEXT: dict[bytes, str] = {}


def airtime(nbytes: int, bitrate: float = BITRATE) -> float:
    """Seconds on the channel for an LPDU of ``nbytes`` (CRC included)."""
    return (PREAMBLE_BITS + 8 * nbytes) / bitrate


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    text: str
    frames: tuple[int, ...]

    def to_jsonable(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "frames": list(self.frames)}


class FrameRecord:
    """Everything decoded from one capture record (filled as far as the layers go).

    Unset layers keep the class defaults, so building a record costs four stores."""

    crc_ok: bool | None = None
    hdr: LonHdr | None = None
    frame: Any = None  # reference-decoded Frame when the fast path did not apply
    findings: list[Finding] = []  # noqa: RUF012 - never mutated: add() replaces it with a per-record list
    meter: str | None = None
    nid: bytes | None = None
    ltep: dict[str, Any] | None = None
    ltep_text = ""
    al: dict[str, Any] | None = None
    al_text = ""
    osgp: dict[str, Any] | None = None
    osgp_text = ""
    xdlms: Any = None
    xdlms_text = ""
    apdu_raw: bytes | None = None
    values: list[dict[str, Any]] | None = None
    obis: list[str] = []  # noqa: RUF012 - never mutated: add_obis() replaces it with a per-record list
    plain_lpdu: bytes | None = None
    kind = "?"
    direction: str | None = None
    legacy: dict[str, Any] | None = None
    nm: str | None = None

    def __init__(self, number: int, time: float, route: str, lpdu: bytes | None) -> None:
        self.number = number
        self.time = time
        self.route = route
        self.lpdu = lpdu

    def add(self, kind: str, text: str, *others: int) -> None:
        if not self.findings:
            self.findings = []
        self.findings.append(Finding(kind, text, (self.number, *others)))

    def add_obis(self, ln: str) -> None:
        if not self.obis:
            self.obis = []
        if ln not in self.obis:
            self.obis.append(ln)


class _Pending:
    __slots__ = ("answers", "chain", "dest", "hdr", "meter", "number", "sig", "time", "tries")

    def __init__(
        self,
        number: int,
        time: float,
        meter: Any,
        dest: bytes | None,
        chain: list[str] | None,
        sig: int,
        hdr: LonHdr,
    ) -> None:
        self.number = number
        self.time = time
        self.meter = meter
        self.dest = dest
        self.chain = chain
        self.sig = sig
        self.tries = 1
        self.answers = 0
        self.hdr = hdr

    @property
    def leg(self) -> str:
        return f"{self.hdr.src}->{self.hdr.dst}"


class _Flow:
    """Per-meter state: OSGP keys, replay windows, handshake, reassembly, xDLMS tracking."""

    __slots__ = (
        "airtime",
        "blocks",
        "bytes",
        "client_st",
        "dest",
        "frames",
        "hs",
        "keys",
        "label",
        "nid",
        "oma",
        "reasm",
        "requests",
        "server_st",
        "windows",
    )

    def __init__(self, label: str) -> None:
        self.label = label
        self.nid: bytes | None = None
        self.oma: bytes | None = None  # LonTalk OMA key learnt from UpdateDomainKeys (flags bit 1)
        self.keys: dict[int, Any] = {}  # key_id -> AesCcm
        self.windows: dict[tuple[str, int], Any] = {}
        self.hs: dict[str, Any] = {}
        self.dest: bytes | None = None
        self.reasm: Any = None
        # invoke id -> (frame, descriptor(s), confirmed, service name)
        self.requests: OrderedDict[int, tuple[Any, ...]] = OrderedDict()
        self.blocks: OrderedDict[Any, Any] = OrderedDict()  # GET: invoke id; others: (kind, id)
        self.client_st: bytes | None = None
        self.server_st: bytes | None = None
        self.frames = 0
        self.bytes = 0
        self.airtime = 0.0


def _lru_put(d: OrderedDict[Any, Any], key: Any, value: Any, cap: int) -> None:
    d[key] = value
    d.move_to_end(key)
    while len(d) > cap:
        d.popitem(last=False)


def al_target(h: LonHdr) -> tuple[Any, str | None, bytes]:
    """Flow key, label and OSGP destination address of an adaptation PDU sent to ``h``'s destination."""
    dom = h.domain
    kind = h.dst_kind
    if kind == "sn":
        sub, node = h.dst_subnet, h.dst_node
        assert sub is not None and node is not None  # peek() sets both for subnet/node
        return (dom, sub, node), None, dom + bytes((sub, node))
    if kind == "nid":
        nid = h.neuron_id
        assert nid is not None  # peek() sets it for Neuron ID addressing
        return (dom, "nid", bytes(nid)), h.dst, dom + bytes(nid)
    if kind == "group":
        group = h.group
        assert group is not None  # peek() sets it for group addressing
        return (dom, "group", group), h.dst, dom + bytes((group,))
    return (dom, "bcast", h.dst_subnet), h.dst, dom


def _crc_ok(lpdu: bytes) -> bool:
    return (binascii.crc_hqx(lpdu[:-2], 0xFFFF) ^ 0xFFFF) == ((lpdu[-2] << 8) | lpdu[-1])


class Analyzer:
    """Feed records in capture order with :meth:`process`; call :meth:`finish` at the end.

    ``detail``: build JSON-able layer views (for --json / tree output); the summary
    mode leaves them out.  ``keep_plain``: build the decrypted LPDU for write-back."""

    def __init__(
        self,
        keys: AnalyzerKeys | None = None,
        *,
        detail: bool = True,
        keep_plain: bool = False,
        bitrate: float = BITRATE,
        max_flows: int = _MAX_FLOWS,
        max_pending: int = _MAX_PENDING,
    ) -> None:
        self.keys = keys or AnalyzerKeys()
        self.detail = detail
        self.keep_plain = keep_plain
        self.bitrate = bitrate
        self.max_flows = max_flows
        self.max_pending = max_pending
        self.flows: OrderedDict[Any, _Flow] = OrderedDict()
        self.aliases: OrderedDict[Any, Any] = OrderedDict()  # NID flow key <-> address flow key
        self.pending: OrderedDict[Any, _Pending] = OrderedDict()
        # sig -> (first frame, leg, tn, time, decoded record, plain PDU, {other leg: tn})
        self.seen: OrderedDict[Any, tuple[Any, ...]] = OrderedDict()
        self._count = 0
        self.late: list[Finding] = []  # findings raised outside a frame (evictions)
        self._session_aead: dict[tuple[bytes, int], Any] = {}
        self._bc_keys: OrderedDict[tuple[bytes, int], Any] = (
            OrderedDict()
        )  # (domain, KeyID) -> K_bc
        self._nnap = self.keys.nnap_id
        self._last_t = 0.0

    # ------------------------------------------------------------------ flows
    def _flow(self, key: Any, label: str | None) -> _Flow:
        key = self.aliases.get(key, key)
        f = self.flows.get(key)
        if f is None:
            if label is None:
                label = f"nid:{key[2].hex()}" if key[1] == "nid" else f"{key[1]}/{key[2]}"
            f = _Flow(label)
            _lru_put(self.flows, key, f, self.max_flows)
        return f

    def _bind_nid(self, key: Any, flow: _Flow, nid: bytes) -> None:
        flow.nid = nid
        nkey = (key[0], "nid", nid)
        if nkey != key:
            _lru_put(self.aliases, nkey, self.aliases.get(key, key), self.max_flows)

    # ------------------------------------------------------------------ entry point
    def process(
        self, number: int, time: float, route: str, lpdu: bytes | None, finding: str | None = None
    ) -> FrameRecord:
        rec = FrameRecord(number, time, route, lpdu)
        if route != "file":
            self._last_t = time
        self._count += 1
        try:
            if not self._count & 63 or len(self.pending) > self.max_pending:
                self._expire(time)
            if lpdu is None:
                if route == "file":
                    rec.add("truncated", finding or "broken file")
                else:
                    rec.add("not-lon", finding or "no LonTalk frame in this record")
                rec.kind = "non-LonTalk"
                return rec
            self._lon(rec, lpdu)
        except (
            DecodeError,
            DlmsError,
            ValueError,
            KeyError,
            IndexError,
            TypeError,
            OverflowError,
        ) as exc:
            rec.add("malformed", f"analyzer: {type(exc).__name__}: {exc}")
        return rec

    def finish(self) -> list[Finding]:
        """Findings left at the end: requests never answered."""
        out = list(self.late)
        self.late.clear()
        for p in self.pending.values():
            if p.answers == 0 and p.tries:
                out.append(
                    Finding(
                        "unanswered",
                        f"request on {p.leg} never answered (capture ended)",
                        (p.number,),
                    )
                )
        self.pending.clear()
        for flow in self.flows.values():
            for key, (number, _what, confirmed, name) in flow.requests.items():
                if confirmed:
                    out.append(
                        Finding(
                            "unanswered",
                            f"xDLMS {name} on {flow.label} (invoke id {key}) never answered "
                            "(capture ended)",
                            (number,),
                        )
                    )
            flow.requests.clear()
        return out

    def _expire(self, now: float) -> None:
        pend = self.pending
        while pend:
            p = next(iter(pend.values()))
            if now - p.time <= _TX_TIMEOUT and len(pend) <= self.max_pending:
                break
            pend.popitem(last=False)
            if p.answers == 0:
                self.late.append(
                    Finding(
                        "unanswered",
                        f"request on {p.leg} not answered within {_TX_TIMEOUT:.0f} s",
                        (p.number,),
                    )
                )

    # ------------------------------------------------------------------ LonTalk
    def _lon(self, rec: FrameRecord, lpdu: bytes) -> None:
        if len(lpdu) < 4:
            rec.add("malformed", f"LonTalk frame of {len(lpdu)} bytes is too short")
            rec.kind = "malformed"
            return
        rec.crc_ok = ok = _crc_ok(lpdu)
        if not ok:
            rec.add("crc", f"CRC mismatch (frame carries {lpdu[-2]:02X}{lpdu[-1]:02X})")
        body = lpdu[:-2]
        h = peek(body)
        if h is None:
            _need()
            try:
                rec.frame = decode_frame(body, crc=False)
            except DecodeError as exc:
                rec.add("malformed", f"LonTalk: {exc}")
                rec.kind = "malformed"
                return
            rec.kind = type(rec.frame.pdu).__name__
            return
        rec.hdr = h
        rec.kind = h.svc
        if not ok:
            return  # a receiver drops it: show the header, keep it out of the flow state
        apdu = body[h.apdu :] if h.apdu >= 0 else b""
        self._transport(rec, h, apdu)

    def _transport(self, rec: FrameRecord, h: LonHdr, apdu: bytes) -> None:
        dom = h.domain
        code = apdu[0] if apdu else None
        layer = h.layer
        role = h.role
        is_req = role == 1
        is_resp = role == 2
        pend: _Pending | None = None
        key: tuple[Any, ...]
        if is_req:
            key = (dom, h.src_subnet, h.src_node, h.tn, layer)
            sig = hash(apdu)
            old = self.pending.get(key)
            if old is not None and old.sig == sig and rec.time - old.time <= _TX_TIMEOUT:
                old.tries += 1
                rec.add(
                    "retry",
                    f"retry #{old.tries - 1} of the request in frame {old.number}",
                    old.number,
                )
                pend = old
            else:
                if old is not None and old.answers == 0:
                    self.late.append(
                        Finding(
                            "unanswered",
                            f"request on {old.leg} not answered before tn reuse",
                            (old.number,),
                        )
                    )
                pend = _Pending(rec.number, rec.time, None, None, None, sig, h)
                self.pending.pop(key, None)
                self.pending[key] = pend
        elif is_resp:
            if h.dst_kind == "sn":
                key = (dom, h.dst_subnet, h.dst_node, h.tn, layer)
                pend = self.pending.get(key)
                if pend is not None:
                    pend.answers += 1
                    if pend.answers > pend.tries:
                        rec.add(
                            "duplicate",
                            f"more answers than requests for frame {pend.number}",
                            pend.number,
                        )
        if code is None:
            return
        if code == _AL_CODE:
            self._adaptation_frame(rec, h, apdu, pend, is_resp)
        elif code in (_LTEP, _LTEP_FAIL):
            self._ltep(rec, h, apdu, pend, is_resp)
        elif self.keys.legacy is not None and code in self.keys.legacy.codes:
            if is_resp and pend is not None and pend.meter is not None:
                fkey = pend.meter[0]
            else:
                fkey = (dom, h.src_subnet, h.src_node) if is_resp else al_target(h)[0]
            flow = self.flows.get(self.aliases.get(fkey, fkey))
            self._legacy(rec, apdu, flow.oma if flow is not None else None)
        else:
            _need()
            rec.nm = f"{code_name(code)} (0x{code:02X})"
            rec.kind = f"{h.service} {code_name(code)}"

    # ------------------------------------------------------------------ LTEP
    def _ltep(
        self, rec: FrameRecord, h: LonHdr, apdu: bytes, pend: _Pending | None, is_resp: bool
    ) -> None:
        _need()

        if not is_resp:
            try:
                req = ltep.decode_request(apdu)
            except DecodeError as exc:
                rec.add("malformed", f"LTEP: {exc}")
                return
            tgt = req.target
            chain = [h.dst] + [
                f"{hp.subnet if hp.subnet is not None else h.dst_subnet}/{hp.node}"
                for hp in req.hops
            ]
            if isinstance(tgt, ltep.NeuronIdTarget):
                tkey: Any = (h.domain, "nid", bytes(tgt.neuron_id))
                tlabel = f"nid:{tgt.neuron_id.hex()}"
                dest = h.domain + bytes(tgt.neuron_id)
            elif isinstance(tgt, ltep.SubnetNodeTarget):
                sn = tgt.subnet if tgt.subnet is not None else (h.dst_subnet or 0)
                tkey = (h.domain, sn, tgt.node)
                tlabel = f"{sn}/{tgt.node}"
                dest = h.domain + bytes((sn, tgt.node))
            else:
                tkey, tlabel, dest = None, type(tgt).__name__, None
            rec.ltep_text = f"LTEP {len(req.hops)} hop(s) -> {tlabel}"
            if self.detail:
                rec.ltep = {
                    "kind": "request",
                    "count": len(req.hops),
                    "chain": chain,
                    "target": tlabel,
                    "service": req.sicb.service.name,
                }
            if pend is not None:
                pend.chain = chain
                pend.meter = (tkey, tlabel)
                pend.dest = dest
            inner = req.apdu
            if inner and inner[0] == _AL_CODE and tkey is not None:
                self._adaptation(rec, h, inner, tkey, tlabel, "down", lambda: [dest], pend)
            return
        try:
            comp = ltep.decode_completion(apdu)
        except DecodeError as exc:
            rec.add("malformed", f"LTEP completion: {exc}")
            return
        if isinstance(comp, ltep.ProxyFailure):
            sent = pend.chain if pend is not None and pend.chain else None
            where = ""
            if sent:
                i = len(sent) - 1 - comp.count
                if 0 <= i < len(sent):
                    nxt = (
                        sent[i + 1]
                        if i + 1 < len(sent)
                        else (pend.meter[1] if pend and pend.meter else "target")
                    )
                    where = f": hop {sent[i]} could not reach {nxt}"
            rec.ltep_text = f"LTEP failure count {comp.count}{where}"
            if self.detail:
                rec.ltep = {
                    "kind": "failure",
                    "count": comp.count,
                    "failing_hop": where[2:] or None,
                }
            rec.add(
                "proxy-failure",
                f"proxy chain failed (count {comp.count}){where}",
                *((pend.number,) if pend else ()),
            )
            if pend is not None and pend.meter:
                rec.meter = pend.meter[1]
            return
        rec.ltep_text = "LTEP success"
        if self.detail:
            rec.ltep = {"kind": "success", "length": len(comp.data)}
        data = comp.data
        if (
            data
            and data[0] == _AL_CODE
            and pend is not None
            and pend.meter
            and pend.meter[0] is not None
        ):
            pdest = pend.dest
            self._adaptation(
                rec, h, data, pend.meter[0], pend.meter[1], "up", lambda: [pdest], pend
            )

    # ------------------------------------------------------------------ adaptation
    def _adaptation_frame(
        self, rec: FrameRecord, h: LonHdr, apdu: bytes, pend: _Pending | None, is_resp: bool
    ) -> None:
        dom = h.domain
        if is_resp:
            if pend is not None and pend.meter is not None and pend.meter[0] is not None:
                key, label = pend.meter
            else:
                key, label = (dom, h.src_subnet, h.src_node), None
            def dests() -> list[bytes | None]:
                return [pend.dest if pend else None, dom + bytes((h.src_subnet, h.src_node))]

            self._adaptation(rec, h, apdu, key, label, "up", dests, pend)
            return
        key, label, dest = al_target(h)
        if pend is not None:
            pend.meter = (key, label)
            pend.dest = dest
        direction = "down" if h.layer in ("S", "T") else "?"
        self._adaptation(
            rec,
            h,
            apdu,
            key,
            label,
            direction,
            lambda: [dest, dom + bytes((h.src_subnet, h.src_node))],
            pend,
        )

    def _adaptation(
        self,
        rec: FrameRecord,
        h: LonHdr,
        msg: bytes,
        key: Any,
        label: str | None,
        direction: str,
        dests: Callable[[], list[bytes | None]],
        pend: _Pending | None,
    ) -> None:
        flow = self._flow(key, label)
        rec.meter = label = flow.label
        rec.nid = flow.nid
        rec.direction = direction
        pdu = msg[1:]
        if len(pdu) < 3:
            rec.add("malformed", f"adaptation PDU of {len(pdu)} byte(s), the header needs 3")
            return
        ctrl = pdu[0]
        typ = ctrl & 0x0F
        protected = ctrl & 0x80
        seg = ctrl & 0x40
        first, last = bool(ctrl & 0x20), bool(ctrl & 0x10)
        if typ not in _AL_TYPES:
            rec.add("malformed", f"adaptation: reserved type {typ}")
            return
        if not seg and (first or last):
            rec.add("malformed", "adaptation: F or L set without S")
            return
        hlen = 4 if seg else 3
        if len(pdu) < hlen:
            rec.add("malformed", "adaptation: segment counter missing")
            return
        counter = pdu[3] if seg else None
        header = pdu[:hlen]
        payload = pdu[hlen:]
        hkey = pdu[:3]
        text = _AL_TEXT.get(hkey)
        if text is None:
            tname = ("xDLMS", "security", "error", "ATM")[typ]
            text = f"AL {tname}{' P' if protected else ''} {pdu[1]:02X}<-{pdu[2]:02X}"
            if len(_AL_TEXT) > 4096:
                _AL_TEXT.clear()
            _AL_TEXT[hkey] = text
        if seg:
            text += f" seg {counter}{'F' if first else ''}{'L' if last else ''}"
        rec.al_text = text
        if self.detail:
            rec.al = {
                "type": ("xDLMS", "security", "error", "ATM")[typ],
                "protected": bool(protected),
                "dst_sap": pdu[1],
                "src_sap": pdu[2],
                "segmented": bool(seg),
                "first": first,
                "last": last,
                "counter": counter,
                "payload_length": len(payload),
            }
        # relay copies (LTEP legs) and LonTalk retries carry the same PDU again: decode once
        sig = (key, direction, hash(pdu))
        seen = self.seen.get(sig)
        leg = h.addr
        tn = h.tn
        if seen is not None and rec.time - seen[3] <= _RELAY_WINDOW:
            first_no, sleg, stn, _t, cached, cached_pdu, legs = seen
            # the transaction number this PDU had on this leg before (None: a new leg)
            prev = stn if leg == sleg else (legs.get(leg) if legs else None)
            if prev is None or prev == tn:  # a relay copy on a new leg, or a retry
                if prev is None:
                    if legs is None:
                        legs = {}
                        self.seen[sig] = (first_no, sleg, stn, _t, cached, cached_pdu, legs)
                    legs[leg] = tn
                self._reuse(rec, cached, cached_pdu, first_no, relay=sleg != leg, msg=msg)
                return
            if protected:
                rec.add(
                    "replay",
                    f"protected PDU of frame {first_no} sent again in a new transaction",
                    first_no,
                )
            elif payload:
                rec.add(
                    "duplicate",
                    f"same adaptation PDU as frame {first_no} in a new transaction",
                    first_no,
                )
        plain: bytes | None = payload
        if protected:
            if flow.keys or self.keys.osgp_enabled or self.detail or len(payload) < 13:
                plain = self._osgp(rec, flow, header, payload, direction, dests, typ == 1)
            else:  # nothing to verify with: show KeyID and SeqNo only
                rec.osgp_text = f"OSGP k{payload[0]} seq {int.from_bytes(payload[1:5], 'big')}"
                plain = None
        elif typ in (1, 2):
            self._osgp_message(rec, flow, key, payload, direction)
            plain = None
        if plain is not None and typ == 0:
            if seg and rec.direction == "down" and not plain and not first and not last:
                rec.al_text += " (pull)"
            else:
                self._xdlms_segment(rec, flow, header, plain, direction, seg, first, last, counter)
        new_pdu = None
        clear = plain
        if typ == 0 and not seg and plain is not None and rec.apdu_raw is not None:
            clear = rec.apdu_raw  # suite-0 deciphered APDU (or the same bytes)
        if clear is not None and (protected or clear != payload):
            new_pdu = bytes((ctrl & 0x7F,)) + header[1:] + clear
            if self.keep_plain and rec.lpdu is not None:
                rec.plain_lpdu = self._rebuild(rec.lpdu, msg, new_pdu)
        seen_d = self.seen
        seen_d[sig] = (rec.number, leg, tn, rec.time, rec, new_pdu, None)
        if len(seen_d) > _MAX_SEEN:
            seen_d.popitem(last=False)

    def _reuse(
        self,
        rec: FrameRecord,
        first: FrameRecord | tuple[int, int],
        new_pdu: bytes | None,
        first_no: int,
        *,
        relay: bool,
        msg: bytes | None = None,
    ) -> None:
        """A relay copy or retry of the PDU of frame ``first``: show what it decoded to.

        ``first`` is the first frame's record, or only its OSGP ``(KeyID, SeqNo)`` when
        the fast summary path (:mod:`.fastsum`) decoded it."""
        if type(first) is tuple:
            rec.osgp_text = f"OSGP k{first[0]} seq {first[1]}"
        for name in (
            ()
            if type(first) is tuple
            else (
                "osgp_text",
                "osgp",
                "xdlms",
                "xdlms_text",
                "values",
                "apdu_raw",
                "nid",
                "direction",
            )
        ):
            v = first.__dict__.get(name)
            if v is not None:
                setattr(rec, name, v)
        if isinstance(first, FrameRecord) and first.obis:
            rec.obis = list(first.obis)
        if new_pdu is not None and rec.lpdu is not None and self.keep_plain and msg is not None:
            rec.plain_lpdu = self._rebuild(rec.lpdu, msg, new_pdu)
        rec.al_text += f" (relay of #{first_no})" if relay else f" (same PDU as #{first_no})"

    @staticmethod
    def _rebuild(lpdu: bytes, old_msg: bytes, new_pdu: bytes) -> bytes | None:
        body = lpdu[:-2]
        i = body.rfind(old_msg)
        if i < 0:
            return None
        new = body[:i] + bytes((_AL_CODE,)) + new_pdu + body[i + len(old_msg) :]
        crc = binascii.crc_hqx(new, 0xFFFF) ^ 0xFFFF
        return new + crc.to_bytes(2, "big")

    # ------------------------------------------------------------------ OSGP
    def _aead(self, key: bytes) -> Any:
        _need()

        return AesCcm(key, P.OSGP_TAG_LEN)

    def _osgp(
        self,
        rec: FrameRecord,
        flow: _Flow,
        header: bytes,
        body: bytes,
        direction: str,
        dests: Callable[[], list[bytes | None]],
        management: bool,
    ) -> bytes | None:
        if len(body) < 5 + P.OSGP_TAG_LEN:
            rec.add("malformed", f"OSGP protected PDU of {len(body)} bytes is too short")
            return None
        key_id = body[0]
        seq = int.from_bytes(body[1:5], "big")
        rec.osgp_text = f"OSGP k{key_id} seq {seq}"
        view: dict[str, Any] | None = None  # the JSON view (detail mode)
        if self.detail:
            view = rec.osgp = {"key_id": key_id, "seq": seq, "verified": None}
        aead = flow.keys.get(key_id)
        if aead is None:
            aead = self._session_key(flow, key_id)
        if aead is None and self._bc_keys:
            h = rec.hdr
            if h is not None and h.dst_kind in ("bcast", "group"):
                aead = self._bc_keys.get((h.domain, key_id))
        if aead is None:
            if self.keys.osgp_enabled:
                rec.add(
                    "no-key",
                    f"no OSGP key for {rec.meter} key id {key_id} (handshake not captured?)",
                )
            return None
        _need()
        dirs = (direction,) if direction in ("down", "up") else ("down", "up")
        for d in dirs:
            wk = (d, key_id)
            win = flow.windows.get(wk)
            if win is not None and not win.check(seq):
                rec.add("replay", f"OSGP seq {seq} is a replay or too old (highest {win.highest})")
                return None
        aad_head = header + body[:5]
        tail = body[1:5] + bytes((key_id, header[0], P.OSGP_NONCE_DOMAIN_DATA))
        ct = body[5:]
        for d in dirs:
            src = self._nnap if d == "down" else flow.nid
            if src is None:
                continue
            nonce = src + tail
            plain = None
            dest = flow.dest
            if dest is not None:
                try:
                    plain = aead.decrypt(nonce, ct, aad_head + dest)
                except InvalidTag:
                    plain = None
            if plain is None:
                for c in dests():
                    if c is None or c == flow.dest:
                        continue
                    try:
                        plain = aead.decrypt(nonce, ct, aad_head + c)
                    except InvalidTag:
                        continue
                    dest = c
                    break
            if plain is None:
                continue
            flow.dest = dest
            win_key = (d, key_id)
            win = flow.windows.get(win_key)
            if win is None:
                win = flow.windows[win_key] = ReplayWindow(P.OSGP_REPLAY_WINDOW_UNICAST, 0)
                win.bitmap = 0
            win.update(seq)
            rec.direction = d
            rec.osgp_text += " ok"
            if view is not None:
                view["verified"] = True
            if management:
                self._udk(rec, flow, plain)
                return None
            return bytes(plain)
        if view is not None:
            view["verified"] = False
        rec.osgp_text += " BAD TAG"
        rec.add(
            "bad-tag",
            f"OSGP tag does not verify (key id {key_id}, seq {seq}): wrong key or altered frame",
        )
        return None

    def _session_key(self, flow: _Flow, key_id: int) -> Any:
        for s in self.keys.sessions:
            if s.key_id != key_id or (flow.nid is not None and s.neuron_id != flow.nid):
                continue
            if flow.nid is None:
                flow.nid = s.neuron_id  # tentative: kept only if a tag verifies
            aead = self._aead(s.key)
            flow.keys[key_id] = aead
            return aead
        return None

    def _osgp_message(
        self, rec: FrameRecord, flow: _Flow, key: Any, data: bytes, direction: str
    ) -> None:

        try:
            msg = M.decode_message(data)
        except DecodeError as exc:
            rec.add("malformed", f"OSGP message: {exc}")
            return
        name = type(msg).__name__
        rec.osgp_text = f"OSGP {name}"
        if self.detail:
            rec.osgp = {"message": name}
        hs = flow.hs
        sk: K.SessionKeys | None  # derived from a ChallengeResponse, kept in hs["keys"]
        if isinstance(msg, M.ChallengeRequest):
            hs.clear()
            hs.update(id_s=msg.id_s, rand_s=msg.rand_s, number=rec.number)
        elif isinstance(msg, M.ChallengeResponse):
            self._bind_nid(key, flow, msg.id_c)
            rec.nid = msg.id_c
            hs.update(id_c=msg.id_c, rand_c=msg.rand_c, id_s=msg.id_s, rand_s=msg.rand_s)
            psk = self.keys.psk_for(msg.id_c)
            if psk is None:
                hs["nokey"] = True  # the rest of this handshake cannot be verified either
                if self.keys.osgp_enabled:
                    rec.add("no-key", f"no PSK for Neuron ID {msg.id_c.hex()}")
                return
            _need()
            sk = K.derive_session_keys(
                psk,
                rand_c=msg.rand_c,
                id_c=msg.id_c,
                rand_s=msg.rand_s,
                id_s=msg.id_s,
                csuite=msg.csuite,
            )
            if not K.handshake_mac_verify(sk.sk, msg.mac_input(), msg.mac):
                rec.add("bad-tag", "ChallengeResponse MAC does not verify (wrong PSK?)")
                hs["failed"] = True
                return
            hs["keys"] = sk
            rec.osgp_text += " MAC ok"
        elif isinstance(msg, M.CommissionRequest):
            _need()
            sk = hs.get("keys")
            if sk is None:
                if self.keys.osgp_enabled and not hs.get("failed") and not hs.get("nokey"):
                    rec.add("handshake", "CommissionRequest without a verified ChallengeResponse")
                return
            if not K.handshake_mac_verify(sk.sk, msg.mac_input(), msg.mac):
                rec.add("bad-tag", "CommissionRequest MAC does not verify")
                return
            try:
                pd = self._aead(sk.pk).decrypt(
                    K.commission_pd_nonce(msg.id_s),
                    msg.pd,
                    K.commission_pd_aad(msg.rand_c, msg.rand_s, msg.id_s, msg.csuite),
                )
            except InvalidTag:
                rec.add("bad-tag", "CommissionRequest PD block does not verify")
                return
            initial = int.from_bytes(pd[:4], "big")
            key_id = pd[4]
            hs["pending"] = (key_id, initial)
            rec.osgp_text += f" MAC ok, key id {key_id}, initial seq {initial}"
            self._install(flow, key_id, sk.pk, initial)
        elif isinstance(msg, M.CommissionResponse):
            _need()
            sk = hs.get("keys")
            if sk is not None and "id_c" in hs:
                mac_in = K.commission_response_mac_input(
                    data[:2],
                    rand_c=hs["rand_c"],
                    rand_s=hs["rand_s"],
                    id_c=hs["id_c"],
                    id_s=hs["id_s"],
                )
                if not K.handshake_mac_verify(sk.sk, mac_in, msg.mac):
                    rec.add("bad-tag", "CommissionResponse MAC does not verify")
                    return
                rec.osgp_text += " MAC ok"
            if msg.status != P.OSGP_STATUS_SUCCESS:
                rec.add("handshake", f"meter refused commissioning (status {msg.status})")
            else:
                rec.osgp_text += " channel established"
        elif isinstance(msg, M.AuthenticationFailure):
            rec.add(
                "auth-failure",
                f"peer reports AuthenticationFailure for key id {msg.key_id} seq {msg.seq}",
            )
        elif isinstance(msg, M.SequenceError):
            rec.add(
                "sequence-error",
                f"peer reports SequenceError for key id {msg.key_id}, expected seq >= {msg.expected_min_seq}",
            )
        if self.detail:
            rec.osgp = {
                "message": name,
                **{
                    k: (v.hex() if isinstance(v, bytes) else v)
                    for k, v in _fields(msg).items()
                    if k not in ("pd",)
                },
            }

    def _install(self, flow: _Flow, key_id: int, pk: bytes, initial: int) -> None:
        _need()

        flow.keys[key_id] = self._aead(pk)
        flow.windows[("down", key_id)] = ReplayWindow(P.OSGP_REPLAY_WINDOW_UNICAST, initial - 1)
        flow.windows[("up", key_id)] = ReplayWindow(
            P.OSGP_REPLAY_WINDOW_UNICAST, P.OSGP_SEQ_FIRST - 1
        )
        flow.hs["psk_key"] = pk

    def _udk(self, rec: FrameRecord, flow: _Flow, plain: bytes) -> None:
        _need()

        try:
            msg = M.decode_message(plain)
        except DecodeError as exc:
            rec.add("malformed", f"protected OSGP message: {exc}")
            return
        rec.osgp_text += f" {type(msg).__name__}"
        if isinstance(msg, M.UpdateDomainKeys) and flow.nid is not None:
            psk = self.keys.psk_for(flow.nid)
            if psk is None:
                return
            try:
                new = K.unwrap_key(K.derive_kek(psk, flow.nid), msg.wrapped_key)
            except DlmsError:
                rec.add("bad-tag", "UpdateDomainKeys key unwrap fails")
                return
            if msg.flags == 0:
                flow.keys[msg.key_id] = self._aead(new)
                rec.osgp_text += f" (new unicast key id {msg.key_id} followed)"
            elif msg.flags == P.OSGP_UDK_FLAG_BROADCAST:
                # the domain broadcast key K_bc: protects broadcast / group PDUs of this domain
                dom = rec.hdr.domain if rec.hdr is not None else b""
                _lru_put(self._bc_keys, (dom, msg.key_id), self._aead(new), 1024)
                rec.osgp_text += f" (broadcast key id {msg.key_id} followed)"
            elif msg.flags == P.OSGP_UDK_FLAG_OMA:
                flow.oma = new[: P.OSGP_OMA_KEY_LEN]  # 12 key bytes, 4 zero bytes of padding
                rec.osgp_text += f" (OMA key id {msg.key_id} followed)"

    # ------------------------------------------------------------------ legacy OSGP
    def _legacy(self, rec: FrameRecord, apdu: bytes, oma: bytes | None = None) -> None:
        _need()

        lk = self.keys.legacy
        assert lk is not None
        oma_key = oma or lk.oma_key  # the key file's, unless an OMA key update was followed
        data = apdu[1:]
        rec.kind = "legacy OSGP"
        try:
            if lk.encrypted:
                plain = legacy.decrypt(data, oma_key)
            else:
                if len(data) < legacy.DIGEST_LEN:
                    raise DecodeError("shorter than its digest", field="digest")
                plain = data[: -legacy.DIGEST_LEN]
                import hmac

                if not hmac.compare_digest(
                    legacy.oma_digest(plain, oma_key), data[-legacy.DIGEST_LEN :]
                ):
                    raise DlmsError("legacy OSGP digest does not verify")
        except DecodeError as exc:
            rec.add("malformed", f"legacy OSGP: {exc}")
            return
        except DlmsError:
            rec.add("bad-tag", "legacy OSGP OMA digest does not verify")
            rec.legacy = {"code": apdu[0], "verified": False}
            return
        rec.legacy = {
            "code": apdu[0],
            "verified": True,
            "encrypted": lk.encrypted,
            "plaintext": plain.hex(),
        }
        rec.osgp_text = f"legacy OSGP 0x{apdu[0]:02X} digest ok{' decrypted' if lk.encrypted else ''} [{len(plain)}B]"

    # ------------------------------------------------------------------ xDLMS
    def _xdlms_segment(
        self,
        rec: FrameRecord,
        flow: _Flow,
        header: bytes,
        data: bytes,
        direction: str,
        seg: int,
        first: bool,
        last: bool,
        counter: int | None,
    ) -> None:
        _need()
        if seg:
            if flow.reasm is None:
                flow.reasm = Reassembler(max_reassemblies=8)
            pdu = AdaptationPdu(
                header[0] & 0x0F, header[1], header[2], data, False, True, first, last, counter
            )
            whole = flow.reasm.feed((direction, header[1], header[2]), pdu, rec.time)
            while flow.reasm.dropped:
                d = flow.reasm.dropped.pop(0)
                rec.add("reassembly", f"reassembly abandoned: {d.reason}")
            if whole is None:
                rec.xdlms_text = "(segment)"
                return
            data = whole
            rec.al_text += f" reassembled {len(whole)}B"
        self._xdlms(rec, flow, data, direction)

    def _xdlms(self, rec: FrameRecord, flow: _Flow, raw: bytes, direction: str) -> None:
        _need()

        rec.apdu_raw = raw
        try:
            apdu = decode_apdu(raw)
        except DecodeError as exc:
            rec.add("malformed", f"xDLMS: {exc}")
            rec.xdlms_text = f"xDLMS ? [{len(raw)}B]"
            return
        name = getattr(apdu, "NAME", type(apdu).__name__)

        if is_ciphered_tag(raw[0]):
            inner = self._dlms_decrypt(rec, flow, raw, direction)
            if inner is None:
                rec.xdlms_text = f"{name} (ciphered) [{len(raw)}B]"
                rec.xdlms = apdu
                return
            rec.xdlms_text = f"{name} -> "
            try:
                apdu = decode_apdu(inner)
            except DecodeError as exc:
                rec.add("malformed", f"xDLMS (deciphered): {exc}")
                return
            rec.apdu_raw = inner
            name = getattr(apdu, "NAME", type(apdu).__name__)
        rec.xdlms = apdu
        self._service(rec, flow, apdu, name)

    def _dlms_decrypt(
        self, rec: FrameRecord, flow: _Flow, raw: bytes, direction: str
    ) -> bytes | None:
        _need()

        dl = self.keys.dlms
        if dl is None:
            return None
        try:
            h = sec.parse_protected(raw)
        except DecodeError as exc:
            rec.add("malformed", f"ciphered APDU: {exc}")
            return None
        st = None
        if not h.kind.general:
            from_client = direction == "down"
            st = flow.client_st if from_client else flow.server_st
            if st is None:
                st = dl.sender_system_title(from_client=from_client)
            if st is None:
                rec.add("no-key", "glo-/ded-ciphered APDU: sender system title unknown")
                return None
        try:
            return sec.unprotect(raw, dl.keys, system_title=st, require=0)
        except DecodeError as exc:
            rec.add("malformed", f"ciphered APDU: {exc}")
        except DlmsError as exc:
            rec.add("bad-tag", f"DLMS suite 0: {type(exc).__name__}: {exc}")
        return None

    def _service(self, rec: FrameRecord, flow: _Flow, apdu: Any, name: str) -> None:
        _need()
        txt = name
        iid = getattr(apdu, "invoke_id_and_priority", None)
        if name in ("aarq",) or type(apdu).__name__ == "AARQ":
            st = getattr(apdu, "calling_ap_title", None)
            if isinstance(st, bytes) and len(st) == 8:
                flow.client_st = st
        elif type(apdu).__name__ == "AARE":
            st = getattr(apdu, "responding_ap_title", None)
            if isinstance(st, bytes) and len(st) == 8:
                flow.server_st = st
        attr = getattr(apdu, "attribute", None) or getattr(apdu, "method", None)
        if attr is not None and hasattr(attr, "instance_id"):
            o = attr.instance_id
            ln = str(o)
            rec.add_obis(ln)
            idx = getattr(attr, "attribute_id", getattr(attr, "method_id", None))
            txt += f" {attr.class_id}/{ln}/{idx}"
            if iid is not None:
                self._remember(rec, flow, iid, attr, apdu)
        descs = []
        for item in getattr(apdu, "attributes", None) or ():
            a = getattr(item, "attribute", item)
            if hasattr(a, "instance_id"):
                rec.add_obis(str(a.instance_id))
                descs.append(a)
        if descs:
            txt += " " + ", ".join(f"{a.class_id}/{a.instance_id}/{a.attribute_id}" for a in descs)
            if iid is not None:
                self._remember(rec, flow, iid, tuple(descs), apdu)
        cname = type(apdu).__name__
        if cname in ("ExceptionResponse", "ConfirmedServiceError") and flow.requests:
            flow.requests.popitem()  # answers the latest request (they carry no invoke id)
        if cname == "GetResponseWithList":
            req = flow.requests.pop(iid & 0x0F, None) if iid is not None else None
            descs_r = req[1] if req and isinstance(req[1], tuple) else ()
            for i, result in enumerate(apdu.results):
                txt += (";" if i else "") + self._value(
                    rec, descs_r[i] if i < len(descs_r) else None, result
                )
        elif cname == "GetResponseNormal":
            req = flow.requests.pop(iid & 0x0F, None) if iid is not None else None
            txt += self._value(
                rec, req[1] if req and not isinstance(req[1], tuple) else None, apdu.result
            )
        elif cname == "GetResponseWithDatablock":
            key = apdu.invoke_id_and_priority & 0x0F
            col = flow.blocks.get(key)
            if apdu.block_number == 1:
                col = DataBlockCollector(max_bytes=_MAX_BLOCK_BYTES)
                _lru_put(flow.blocks, key, col, 8)
            txt += f" block {apdu.block_number}{' last' if apdu.last_block else ''}"
            if apdu.error is not None:
                txt += f" error {apdu.error.name}"
            elif col is None:
                txt += " (transfer start not seen)"
            else:
                try:
                    done = col.add(apdu.last_block, apdu.block_number, apdu.raw_data)
                except DlmsError as exc:
                    rec.add("block-sequence", f"GET block transfer: {exc}")
                    flow.blocks.pop(key, None)
                    done = False
                if done:
                    flow.blocks.pop(key, None)

                    req = flow.requests.pop(key, None)
                    try:
                        value = axdr.decode_all(col.data)
                    except DecodeError as exc:
                        rec.add("malformed", f"reassembled GET blocks: {exc}")
                    else:
                        txt += " complete" + self._value(rec, req[1] if req else None, value)
        elif cname in _BLOCK_APDUS:
            txt += self._blocks(rec, flow, apdu, cname, iid)
        elif cname in ("SetResponseNormal", "SetResponseLastDatablock"):
            if iid is not None:
                flow.requests.pop(iid & 0x0F, None)
            txt += f" = {apdu.result.name}"
        elif cname == "ActionResponseNormal":
            if iid is not None:
                flow.requests.pop(iid & 0x0F, None)
            txt += f" {apdu.result.name}"
            if apdu.return_parameters is not _ABSENT():
                txt += self._value(rec, None, apdu.return_parameters)
        elif cname == "DataNotification":
            txt += self._value(rec, None, apdu.body)
        elif cname in ("GetRequestNext",):
            txt += f" after block {apdu.block_number}"
        rec.xdlms_text += txt

    def _remember(self, rec: FrameRecord, flow: _Flow, iid: int, what: Any, apdu: Any) -> None:
        """Track a request until its response (keyed by invoke id); a confirmed request still
        open when its invoke id comes again was never answered at the xDLMS level."""
        key = iid & 0x0F
        old = flow.requests.get(key)
        if old is not None and old[2]:
            self.late.append(
                Finding(
                    "unanswered",
                    f"xDLMS {old[3]} on {flow.label} (invoke id {key}) not answered "
                    "before its invoke id was used again",
                    (old[0],),
                )
            )
        _lru_put(
            flow.requests,
            key,
            (rec.number, what, bool(iid & 0x40), getattr(apdu, "NAME", "request")),
            _MAX_PER_FLOW,
        )

    def _blocks(self, rec: FrameRecord, flow: _Flow, apdu: Any, cname: str, iid: int | None) -> str:
        """SET datablocks and ACTION parameter blocks (both ways): collect, then decode once
        complete — the SET value typed by its attribute, the ACTION parameters, the ACTION
        result with its return parameters."""
        what, first = _BLOCK_APDUS[cname]
        n = apdu.block_number
        if iid is None:
            return f" block {n}"
        if what is None:  # Set-Response-Datablock, Action-*-Next-Pblock: acknowledgements
            return f" after block {n}"
        key = (what, iid & 0x0F)
        col = flow.blocks.get(key)
        txt = f" block {n}{' last' if apdu.last_block else ''}"
        if first or n == 1:
            col = DataBlockCollector(max_bytes=_MAX_BLOCK_BYTES)
            _lru_put(flow.blocks, key, col, 8)
        elif col is None:  # the start was not captured, or the transfer was abandoned
            return txt + " (transfer start not seen)"
        label = {"set": "SET", "act-req": "ACTION parameter", "act-resp": "ACTION response"}[what]
        try:
            done = col.add(apdu.last_block, n, apdu.raw_data)
        except DlmsError as exc:
            rec.add("block-sequence", f"{label} block transfer: {exc}")
            flow.blocks.pop(key, None)
            return txt
        if not done:
            return txt
        flow.blocks.pop(key, None)
        req = flow.requests.get(iid & 0x0F)
        data = col.data
        try:
            if what == "act-resp":
                from ..xdlms.ln import _dec_action_item

                item, pos = _dec_action_item(data, 0, "action_response_pblock")
                if pos != len(data):
                    raise DecodeError("trailing bytes", field="action_response_pblock", offset=pos)
                flow.requests.pop(iid & 0x0F, None)
                txt += f" complete {item.result.name}"
                if item.return_parameters is not _ABSENT():
                    txt += self._value(rec, None, item.return_parameters)
                return txt
            value = axdr.decode_all(data)
        except DecodeError as exc:
            rec.add("malformed", f"reassembled {label} blocks: {exc}")
            return txt
        attr = req[1] if what == "set" and req and not isinstance(req[1], tuple) else None
        return txt + " complete" + self._value(rec, attr, value)

    def _value(self, rec: FrameRecord, attr: Any, value: Any) -> str:
        """Record one attribute value (typed by its class when the request is known)."""
        _need()
        if isinstance(value, DataAccessResult):
            return f" = {value.name}"
        entry: dict[str, Any] = {"data": axdr.to_jsonable(value)} if self.detail else {}
        text = _short(value)
        if attr is not None:
            ln = str(attr.instance_id)
            rec.add_obis(ln)
            typed = value
            if type(value) not in _PLAIN_SCALARS:  # scalars are never retyped: skip the lookup
                try:
                    typed = decode_attribute(attr.class_id, attr.attribute_id, value)
                except (DlmsError, ValueError, TypeError, KeyError):
                    typed = value
            if self.detail:
                entry.update(
                    class_id=attr.class_id,
                    obis=ln,
                    name=attr.instance_id.name,
                    attribute=attr.attribute_id,
                )
                if typed is not value:
                    entry["typed"] = _typed_jsonable(typed)
            if typed is not value:
                text = _short(typed)
            text = f"{text} ({ln})"
        if self.detail:
            rec.values = (rec.values or []) + [entry]
        return f" = {text}"


_PLAIN_SCALARS: frozenset[type] = frozenset()

#: block APDUs other than GET's: class name -> (collector kind or None for an acknowledgement,
#: first block of a transfer)
_BLOCK_APDUS: dict[str, tuple[str | None, bool]] = {
    "SetRequestWithFirstDatablock": ("set", True),
    "SetRequestWithDatablock": ("set", False),
    "SetResponseDatablock": (None, False),
    "ActionRequestWithFirstPblock": ("act-req", True),
    "ActionRequestWithPblock": ("act-req", False),
    "ActionResponseNextPblock": (None, False),
    "ActionRequestNextPblock": (None, False),
    "ActionResponseWithPblock": ("act-resp", False),
}


def _ABSENT() -> Any:
    from ..xdlms._base import ABSENT

    return ABSENT


def _short(value: Any) -> str:
    s = repr(value) if isinstance(value, (bytes, list)) else str(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _typed_jsonable(v: Any) -> Any:
    import dataclasses
    import enum

    from .. import axdr

    if isinstance(v, enum.Enum):
        return v.name
    if v is None or type(v) in (int, float, bool, str):
        return v
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _typed_jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)) and not isinstance(v, (axdr.Array, axdr.Structure)):
        return [_typed_jsonable(x) for x in v]
    try:
        return axdr.to_jsonable(v)
    except Exception:  # noqa: BLE001 - typed COSEM value without an A-XDR form
        return str(v)


def _fields(msg: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
