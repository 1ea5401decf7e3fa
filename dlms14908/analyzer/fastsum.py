"""Fast one-line summary of a classic pcap capture (``dlms-analyze capture --summary``).

One tight loop reads the 1 MiB chunks, checks the CRC (``lontalk.md`` §1.6), looks the
LonTalk header up in a cache keyed by its bytes (:func:`.lonhdr.peek` runs once per
distinct header), keeps the same transaction / relay / replay state as
:class:`.engine.Analyzer` (retries, duplicates, unanswered requests, replays — the
same dictionaries, updated the same way) and formats the line of the commonest frame
(an OSGP-protected adaptation PDU, ``docs/wire-format.md`` §3-4, with no OSGP key to
verify it with) in one f-string.  Every other record goes through
:meth:`.engine.Analyzer.process` and :func:`.output.summary_line`, so both paths print
the same lines (``tests/test_analyzer_fastsum.py`` compares them).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, BinaryIO, Literal

from .. import pcap
from .engine import (
    _AL_CODE,
    _AL_TEXT,
    _AL_TYPES,
    _MAX_SEEN,
    _RELAY_WINDOW,
    _TX_TIMEOUT,
    WARNING_KINDS,
    Analyzer,
    Finding,
    FrameRecord,
    _Pending,
    al_target,
)
from .lonhdr import peek
from .output import _code_name, _head, summary_line
from .sources import _UPPER_LEN, _UPPER_PREFIX, CHUNK, _fallback

__all__ = ["fast_summary"]

_HDR = struct.Struct("<IIII")
_HDR_BE = struct.Struct(">IIII")
# Ethernet II / IPv4 / UDP / CN/IP fields at fixed offsets (see sources._iter_classic)
_ETH = struct.Struct(">12xHB5xHxB10xHHH2xHI")
_KS = struct.Struct(">BI")
_DLEN = (0, 1, 3, 6)
_PORTS = (1628, 1629)
#: CRC-16/CCITT register after an LPDU and its (inverted, big-endian) CRC: one call checks a frame
_RESIDUE = 0x1D0F


def _plen_table() -> list[int]:
    """Header length (NPDU + TPDU/SPDU byte) by ``b[1] | (b[3] >> 7) << 8``; 0: no fast path."""
    out = [0] * 512
    for i in range(512):
        h, sel = i & 0xFF, i >> 8
        pfmt, afmt = (h >> 4) & 3, (h >> 2) & 3
        if h >> 6 or pfmt == 2:
            continue
        if afmt == 2:
            pos = 6 if sel else 8
        elif not sel:
            continue
        else:
            pos = 5 if afmt < 2 else 11
        out[i] = pos + _DLEN[h & 3] + (pfmt != 3)
    return out


_PLEN = _plen_table()


def _info(body: bytes, plen: int, rcol: str) -> tuple[Any, ...] | Literal[False] | None:
    """What the fast path needs from a header; False when it never applies to this prefix."""
    h = peek(body)
    if h is None:
        return None  # depends on bytes past the prefix: decide per frame
    if h.apdu != plen or h.m_list is not None:
        return False
    text = rcol + "crc ok " + _head(h)
    if h.layer == "A":
        text += " UNACKD"
    else:
        text += f" {h.svc} tn{h.tn}"
        if h.auth:
            text += " auth"
    text += f" {_code_name(_AL_CODE)} ["
    dom = h.domain
    role = h.role
    req_key = (dom, h.src_subnet, h.src_node, h.tn, h.layer) if role == 1 else None
    resp_key = (
        (dom, h.dst_subnet, h.dst_node, h.tn, h.layer) if role == 2 and h.dst_kind == "sn" else None
    )
    if role == 2:
        key: object = (dom, h.src_subnet, h.src_node)
        label, dest, direction = None, None, "up"
    else:
        key, label, dest = al_target(h)
        direction = "down" if h.layer in ("S", "T") else "?"
    ctrl = body[plen + 1]
    typ = ctrl & 0x0F
    seg = ctrl & 0x40
    if (
        body[plen] != _AL_CODE
        or not ctrl & 0x80
        or typ not in _AL_TYPES
        or (not seg and ctrl & 0x30)
    ):
        return False  # not an OSGP-protected adaptation PDU: the general path
    hkey = body[plen + 1 : plen + 4]
    al_text = _AL_TEXT.get(hkey)
    if al_text is None:
        tname = ("xDLMS", "security", "error", "ATM")[typ]
        al_text = f"AL {tname} P {hkey[1]:02X}<-{hkey[2]:02X}"
    # the line of an unsegmented PDU as a %-template: number, time, APDU length, SeqNo
    tmpl = (
        "%7d %10.3f "
        + text.replace("%", "%%")
        + "%dB] | "
        + al_text.replace("%", "%%")
        + f" | OSGP k{body[plen + 4]} seq %d"
    )
    ks_off = plen + 1 + (4 if seg else 3)  # KeyID after the code and the adaptation header
    return (
        h,
        text,
        role,
        req_key,
        resp_key,
        key,
        label,
        dest,
        direction,
        h.addr,
        h.tn,
        al_text,
        seg,
        tmpl,
        ks_off,
    )


def fast_summary(
    f: BinaryIO, an: Analyzer, write: Callable[[str], object]
) -> tuple[int, list[Finding], float | None, str | None] | None:
    """Print the summary of the classic pcap ``f`` through ``write``.

    Returns ``(records with findings that are not warnings, late findings, t0, fatal
    text)``, or None (nothing read) when ``f`` is not a classic pcap: the caller then
    uses the general path."""
    # Without keys the loop allocates only acyclic objects (tuples, strings, bounded
    # dictionaries): the cyclic collector would only rescan the long-lived state again and
    # again.  With keys the engine decodes deeper layers: the collector stays on.
    import gc

    enabled = gc.isenabled()
    if not an.keys.osgp_enabled and an.keys.dlms is None and an.keys.legacy is None:
        gc.disable()
    try:
        return _summary(f, an, write)
    finally:
        if enabled:
            gc.enable()


def _summary(
    f: BinaryIO, an: Analyzer, write: Callable[[str], object]
) -> tuple[int, list[Finding], float | None, str | None] | None:
    head = f.read(24)
    if len(head) < 24:
        return None
    magic_le = int.from_bytes(head[:4], "little")
    le = magic_le in (0xA1B2C3D4, 0xA1B23C4D)
    magic = magic_le if le else int.from_bytes(head[:4], "big")
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        return None
    unpack = (_HDR if le else _HDR_BE).unpack_from
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    linktype = struct.unpack("<I" if le else ">I", head[20:24])[0] & 0x0FFFFFFF
    eth = linktype == pcap.LINKTYPE_ETHERNET
    upper = linktype == pcap.LINKTYPE_WIRESHARK_UPPER_PDU
    user0 = linktype == pcap.LINKTYPE_USER0
    route = "cnip" if eth else "upper-pdu" if upper else "user0"
    rcol = f"{route:<9} "
    eth_unpack = _ETH.unpack_from
    ks_unpack = _KS.unpack_from
    from binascii import crc_hqx

    fast_ok = not an.keys.osgp_enabled and not an.detail and not an.keep_plain
    cache: dict[bytes, tuple[Any, ...] | Literal[False]] = {}
    plen_t = _PLEN
    pending = an.pending
    seen = an.seen
    late_out: list[Finding] = []
    lines: list[str] = []
    add_line = lines.append
    findings = 0
    t0: float | None = None
    fatal: str | None = None
    read = f.read
    buf = b""
    pos = 0
    index = 0
    base = 24  # file offset of buf[0]
    max_pending = an.max_pending
    count = an._count
    late = an.late

    def slow(number: int, ts: float, rt: str, lpdu: bytes | None, finding: str | None) -> None:
        nonlocal findings, t0, fatal, count
        an._count = count
        rec = an.process(number, ts, rt, lpdu, finding)
        count = an._count
        if rec.findings:
            findings += any(x.kind not in WARNING_KINDS for x in rec.findings)
            if rt == "file" and number == 1:
                fatal = rec.findings[0].text
        if t0 is None and rt != "file":
            t0 = ts
        add_line(summary_line(rec, t0 or 0.0))

    blen = 0
    max_record = pcap.MAX_RECORD
    while True:
        if not index & 4095 and lines:
            lines.append("")
            write("\n".join(lines))
            lines.clear()
        if blen - pos < 16:
            base += pos
            buf = buf[pos:] + read(CHUNK)
            blen = len(buf)
            pos = 0
            if blen < 16:
                if buf:
                    slow(index + 1, 0.0, "file", None, f"truncated record header at byte {base}")
                break
        sec, frac, caplen, _orig = unpack(buf, pos)
        if caplen > max_record:
            slow(
                index + 1,
                0.0,
                "file",
                None,
                f"record length {caplen} at byte {base + pos} exceeds {pcap.MAX_RECORD}",
            )
            break
        end = pos + 16 + caplen
        if end > blen:
            base += pos
            buf = buf[pos:] + read(max(CHUNK, caplen + 16))
            blen = len(buf)
            pos = 0
            end = 16 + caplen
            if end > blen:
                slow(
                    index + 1,
                    0.0,
                    "file",
                    None,
                    f"truncated record at byte {base}: needs {caplen} bytes, file has {blen - 16}",
                )
                break
        index += 1
        ts = sec + frac * scale
        start = pos + 16
        pos = end
        if eth:
            if caplen < 62:
                slow(*_fallback(index, ts, linktype, buf[start:end]))
                continue
            etype, vihl, frag, proto, sport, dport, ulen, size, cn = eth_unpack(buf, start)
            if not (
                etype == 0x0800
                and vihl == 0x45
                and proto == 17
                and not frag & 0x3FFF
                and (dport in _PORTS or sport in _PORTS)
                and cn == 0x01010000
                and 20 <= size <= caplen - 42
                and ulen == size + 8
            ):
                slow(*_fallback(index, ts, linktype, buf[start:end]))
                continue
            lpdu = buf[start + 62 : start + 42 + size]
        elif upper:
            if buf[start : start + _UPPER_LEN] != _UPPER_PREFIX:
                slow(*_fallback(index, ts, linktype, buf[start:end]))
                continue
            lpdu = buf[start + _UPPER_LEN : end]
        elif user0:
            lpdu = buf[start:end]
        else:
            slow(*_fallback(index, ts, linktype, buf[start:end]))
            continue
        # ---- fast path: CRC-good LonTalk frame carrying an OSGP-protected adaptation PDU
        body_end = len(lpdu) - 2
        if not fast_ok or body_end < 5:
            slow(index, ts, route, lpdu, None)
            continue
        plen = plen_t[lpdu[1] | ((lpdu[3] & 0x80) << 1)]
        # the cache key: LonTalk header + message code + the 3-byte adaptation header + one
        # more byte (the KeyID of an unsegmented PDU, the segment counter otherwise)
        if not plen or plen + 4 >= body_end or crc_hqx(lpdu, 0xFFFF) != _RESIDUE:
            slow(index, ts, route, lpdu, None)
            continue
        pk = lpdu[: plen + 5]
        info = cache.get(pk)
        if info is None:
            info = _info(lpdu[:body_end], plen, rcol)
            if info is None:
                slow(index, ts, route, lpdu, None)
                continue
            if len(cache) > 4096:
                cache.clear()
            cache[pk] = info
        if info is False:
            slow(index, ts, route, lpdu, None)
            continue
        (
            h,
            lon_text,
            role,
            req_key,
            resp_key,
            fkey,
            flabel,
            fdest,
            direction,
            leg,
            tn,
            al_text,
            seg,
            tmpl,
            ks_off,
        ) = info
        if body_end < ks_off + 13:  # KeyID, SeqNo, tag: 13 bytes at least
            slow(index, ts, route, lpdu, None)
            continue
        # --- Analyzer.process bookkeeping
        count += 1
        if not count & 63 or len(pending) > max_pending:
            an._count = count
            an._expire(ts)
        if t0 is None:
            t0 = ts
        fnds: list[Finding] | None = None
        # --- Analyzer._transport: transaction tracking
        pend = None
        if role == 1:
            sig = hash(lpdu[plen:body_end])
            old = pending.get(req_key)
            if old is not None and old.sig == sig and ts - old.time <= _TX_TIMEOUT:
                old.tries += 1
                fnds = [
                    Finding(
                        "retry",
                        f"retry #{old.tries - 1} of the request in frame {old.number}",
                        (index, old.number),
                    )
                ]
                pend = old
            elif old is not None:  # transaction number reused: recycle the entry
                if old.answers == 0:
                    late.append(
                        Finding(
                            "unanswered",
                            f"request on {old.leg} not answered before tn reuse",
                            (old.number,),
                        )
                    )
                old.number = index
                old.time = ts
                old.meter = old.dest = old.chain = None
                old.sig = sig
                old.tries = 1
                old.answers = 0
                old.hdr = h
                pending.move_to_end(req_key)
                pend = old
            else:
                pend = pending[req_key] = _Pending(index, ts, None, None, None, sig, h)
        elif role == 2 and resp_key is not None:
            pend = pending.get(resp_key)
            if pend is not None:
                pend.answers += 1
                if pend.answers > pend.tries:
                    fnds = [
                        Finding(
                            "duplicate",
                            f"more answers than requests for frame {pend.number}",
                            (index, pend.number),
                        )
                    ]
        # --- Analyzer._adaptation_frame / _adaptation (no OSGP key: KeyID and SeqNo only)
        if role == 2:
            if pend is not None and pend.meter is not None and pend.meter[0] is not None:
                fkey, flabel = pend.meter
        elif pend is not None:
            pend.meter = (fkey, flabel)
            pend.dest = fdest
        hoff = plen + 1
        pdu = lpdu[hoff:body_end]
        if seg:
            ctrl = pdu[0]
            al_text += f" seg {pdu[3]}{'F' if ctrl & 0x20 else ''}{'L' if ctrl & 0x10 else ''}"
        ssig = (fkey, direction, hash(pdu))
        hit = seen.get(ssig)
        ks = None
        if hit is not None and ts - hit[3] <= _RELAY_WINDOW:
            first_no, sleg, stn, _t, cached, _cached_pdu, legs = hit
            prev = stn if leg == sleg else (legs.get(leg) if legs else None)
            if prev is None or prev == tn:  # a relay copy on a new leg, or a retry
                if prev is None:
                    if legs is None:
                        legs = {}
                        seen[ssig] = (first_no, sleg, stn, _t, cached, _cached_pdu, legs)
                    legs[leg] = tn
                if type(cached) is not tuple:  # decoded by the general path: reuse its record
                    rec = FrameRecord(index, ts, route, lpdu)
                    rec.crc_ok = True
                    rec.hdr = h
                    rec.kind = h.svc
                    if fnds:
                        rec.findings = fnds
                    rec.al_text = al_text
                    an._reuse(rec, cached, _cached_pdu, first_no, relay=sleg != leg)
                    if fnds:
                        findings += any(x.kind not in WARNING_KINDS for x in fnds)
                    add_line(summary_line(rec, t0))
                    continue
                ks = cached
                al_text += (
                    f" (relay of #{first_no})" if sleg != leg else f" (same PDU as #{first_no})"
                )
            else:
                f_ = Finding(
                    "replay",
                    f"protected PDU of frame {first_no} sent again in a new transaction",
                    (index, first_no),
                )
                if fnds:
                    fnds.append(f_)
                else:
                    fnds = [f_]
        if ks is None:
            ks = ks_unpack(lpdu, ks_off)
            seen[ssig] = (index, leg, tn, ts, ks, None, None)
            if len(seen) > _MAX_SEEN:
                seen.popitem(last=False)
        if seg or hit is not None:  # al_text carries a suffix
            line = (f"{index:>7} {ts - t0:10.3f} {lon_text}{body_end - plen - 1}B] | {al_text} "
                    f"| OSGP k{ks[0]} seq {ks[1]}")
        else:
            line = tmpl % (index, ts - t0, body_end - plen - 1, ks[1])
        if fnds:
            findings += any(x.kind not in WARNING_KINDS for x in fnds)
            line += "  ! " + "; ".join(f"{x.kind}: {x.text}" for x in fnds)
        add_line(line)
    an._count = count
    end_findings = an.finish()  # the late findings (evictions), then requests never answered
    late_out.extend(end_findings)
    findings += sum(x.kind not in WARNING_KINDS for x in end_findings)
    if lines:
        lines.append("")
        write("\n".join(lines))
    return findings, late_out, t0, fatal
