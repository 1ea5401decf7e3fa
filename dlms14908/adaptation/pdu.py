"""IEC 62056-8-8 §5.4 adaptation-layer PDU: codec, segmentation, reassembly.

The layout is a design choice (the standard's Table 1 is not public): every
constant comes from :mod:`dlms14908.profile` §3 and is documented in
``docs/wire-format.md`` §3::

    ctrl(1) = P S F L TYPE(4) | dst SAP(1) | src SAP(1) | [segment counter(1) if S] | payload

``P = 1``: the payload is the OSGP-AES-128-PSK secured container (Annex D);
this module treats it as opaque bytes and hands it to a protector.  Security is
applied per segment, so every LonTalk frame is checked on its own.

Sans-I/O: :class:`Reassembler` takes segments and ``now`` and returns whole
APDUs; memory is bounded by ``max_apdu`` per reassembly and
``max_reassemblies`` per endpoint.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

from .. import profile as P
from ..errors import DecodeError, EncodeError

__all__ = [
    "AdaptationPdu",
    "Reassembler",
    "ReassemblyDropped",
    "decode_pdu",
    "decode_pdu_at",
    "encode_pdu",
    "header_bytes",
    "segment_apdu",
]


@dataclass(frozen=True, slots=True)
class AdaptationPdu:
    """One adaptation-layer PDU (one LonTalk application message)."""

    type: int
    dst_sap: int
    src_sap: int
    payload: bytes
    protected: bool = False
    segmented: bool = False
    first: bool = False
    last: bool = False
    counter: int | None = None  #: segment counter, present iff segmented

    @property
    def ctrl(self) -> int:
        return (
            (P.AL_CTRL_PROTECTED if self.protected else 0)
            | (P.AL_CTRL_SEGMENTED if self.segmented else 0)
            | (P.AL_CTRL_FIRST if self.first else 0)
            | (P.AL_CTRL_LAST if self.last else 0)
            | self.type
        )


def header_bytes(pdu: AdaptationPdu, *, protected: bool | None = None) -> bytes:
    """The header (ctrl, SAPs, counter): also the AAD prefix of a protected PDU.

    ``protected`` overrides the PDU's P bit (the header of the protected form of a
    plain PDU, without building a second PDU)."""
    typ, dst, src, counter = pdu.type, pdu.dst_sap, pdu.src_sap, pdu.counter
    if typ not in P.AL_TYPES_KNOWN:
        raise EncodeError(f"unknown adaptation type {typ}", field="adaptation.type")
    if not 0 <= dst <= 0xFF:
        raise EncodeError(f"{dst} is not a 1-byte SAP", field="adaptation.dst_sap")
    if not 0 <= src <= 0xFF:
        raise EncodeError(f"{src} is not a 1-byte SAP", field="adaptation.src_sap")
    ctrl = typ
    if pdu.protected if protected is None else protected:
        ctrl |= P.AL_CTRL_PROTECTED
    if counter is None:
        if pdu.segmented:
            raise EncodeError("a segment counter is present exactly when S = 1", field="adaptation.counter")
        if pdu.first or pdu.last:
            raise EncodeError("F/L flags need S = 1", field="adaptation.ctrl")
        return bytes((ctrl, dst, src))
    if not pdu.segmented:
        raise EncodeError("a segment counter is present exactly when S = 1", field="adaptation.counter")
    if not 0 <= counter <= 0xFF:
        raise EncodeError(f"{counter} is not a 1-byte counter", field="adaptation.counter")
    ctrl |= P.AL_CTRL_SEGMENTED
    if pdu.first:
        ctrl |= P.AL_CTRL_FIRST
    if pdu.last:
        ctrl |= P.AL_CTRL_LAST
    return bytes((ctrl, dst, src, counter))


def encode_pdu(pdu: AdaptationPdu) -> bytes:
    return header_bytes(pdu) + pdu.payload


def decode_pdu(data: bytes | bytearray | memoryview) -> AdaptationPdu:
    """Decode one adaptation PDU (the LonTalk message data after the message code)."""
    return decode_pdu_at(data if type(data) is bytes else bytes(data), 0)


def decode_pdu_at(data: bytes, start: int) -> AdaptationPdu:
    """:func:`decode_pdu` of ``data[start:]`` without copying it first (offsets in errors
    are relative to ``start``)."""
    n = len(data) - start
    if n < P.AL_HEADER_LEN:
        raise DecodeError(
            f"{max(n, 0)} byte(s), the header needs {P.AL_HEADER_LEN}", field="adaptation.header", offset=0
        )
    ctrl, dst, src = data[start], data[start + 1], data[start + 2]
    typ = ctrl & P.AL_CTRL_TYPE_MASK
    if typ not in P.AL_TYPES_KNOWN:
        raise DecodeError(f"reserved type {typ}", field="adaptation.ctrl.type", offset=0)
    protected = bool(ctrl & P.AL_CTRL_PROTECTED)
    if not ctrl & (P.AL_CTRL_SEGMENTED | P.AL_CTRL_FIRST | P.AL_CTRL_LAST):
        return AdaptationPdu(typ, dst, src, data[start + P.AL_HEADER_LEN :], protected)
    seg = bool(ctrl & P.AL_CTRL_SEGMENTED)
    first, last = bool(ctrl & P.AL_CTRL_FIRST), bool(ctrl & P.AL_CTRL_LAST)
    if not seg:
        raise DecodeError("F or L set without S", field="adaptation.ctrl", offset=0)
    pos = P.AL_HEADER_LEN
    if n <= pos:
        raise DecodeError("segment counter missing", field="adaptation.counter", offset=pos)
    counter = data[start + pos]
    pos += P.AL_SEGMENT_COUNTER_LEN
    if first and counter != 0:
        raise DecodeError(f"first segment has counter {counter}", field="adaptation.counter", offset=pos - 1)
    return AdaptationPdu(typ, dst, src, data[start + pos :], protected, seg, first, last, counter)


def segment_apdu(
    apdu: bytes,
    *,
    dst_sap: int,
    src_sap: int,
    type: int = P.AL_TYPE_XDLMS,
    max_segment: int = P.AL_MAX_SEGMENT_DEFAULT,
    protected: bool = False,
) -> Iterator[AdaptationPdu]:
    """Split an APDU into adaptation PDUs of at most ``max_segment`` payload bytes.

    An APDU that fits is sent unsegmented (S = 0).  Counters run 0..255 and wrap.
    """
    if max_segment < 1:
        raise EncodeError("must be at least 1", field="max_segment")
    if len(apdu) > P.AL_MAX_APDU:
        raise EncodeError(f"{len(apdu)} bytes exceeds {P.AL_MAX_APDU}", field="apdu")
    if len(apdu) <= max_segment:
        yield AdaptationPdu(type, dst_sap, src_sap, apdu if apdu.__class__ is bytes else bytes(apdu), protected)
        return
    n = (len(apdu) + max_segment - 1) // max_segment
    for i in range(n):
        yield AdaptationPdu(
            type,
            dst_sap,
            src_sap,
            bytes(apdu[i * max_segment : (i + 1) * max_segment]),
            protected,
            segmented=True,
            first=i == 0,
            last=i == n - 1,
            counter=i & 0xFF,
        )


@dataclass(frozen=True, slots=True)
class ReassemblyDropped:
    """A reassembly was abandoned; ``reason`` says why (never carries payload)."""

    key: Hashable
    reason: str


@dataclass(slots=True)
class _Partial:
    next_counter: int
    deadline: float
    parts: list[bytes] = field(default_factory=list)
    size: int = 0


class Reassembler:
    """Reassembles segmented APDUs per key (e.g. ``(peer, dst SAP, src SAP)``).

    ``feed`` returns the whole APDU when the last segment arrives, else None.
    Out-of-order, missing or oversized segments abandon the reassembly; the
    reason is queued in :attr:`dropped` (a bounded list the caller drains).
    """

    def __init__(
        self,
        *,
        max_apdu: int = P.AL_MAX_APDU,
        max_reassemblies: int = P.AL_MAX_REASSEMBLIES,
        gap_timeout: float = P.AL_SEGMENT_GAP_TIMEOUT,
    ) -> None:
        self.max_apdu = max_apdu
        self.max_reassemblies = max_reassemblies
        self.gap_timeout = gap_timeout
        self._partials: OrderedDict[Hashable, _Partial] = OrderedDict()
        self.dropped: list[ReassemblyDropped] = []
        self.dropped_count = 0

    def _drop(self, key: Hashable, reason: str) -> None:
        self._partials.pop(key, None)
        self.dropped_count += 1
        if len(self.dropped) < 1000:
            self.dropped.append(ReassemblyDropped(key, reason))

    def feed_whole(self, key: Hashable, payload: bytes) -> bytes:
        """An unsegmented PDU's payload (what :meth:`feed` does with one, without a PDU
        object): it interrupts any reassembly under ``key`` and is the whole APDU."""
        if key in self._partials:
            self._drop(key, "unsegmented PDU interrupted a reassembly")
        return payload

    def feed(self, key: Hashable, pdu: AdaptationPdu, now: float) -> bytes | None:
        if not pdu.segmented:
            if key in self._partials:
                self._drop(key, "unsegmented PDU interrupted a reassembly")
            return pdu.payload
        assert pdu.counter is not None
        if pdu.first:
            if key in self._partials:
                self._drop(key, "new first segment before the last one")
            if len(self._partials) >= self.max_reassemblies:
                oldest = next(iter(self._partials))
                self._drop(oldest, "too many concurrent reassemblies")
            part = _Partial(next_counter=0, deadline=now + self.gap_timeout)
            self._partials[key] = part
        else:
            found = self._partials.get(key)
            if found is None:
                self._drop(key, f"segment {pdu.counter} without a first segment")
                return None
            part = found
            if now >= part.deadline:
                self._drop(key, "segment gap exceeded the timeout")
                return None
        if pdu.counter != part.next_counter:
            self._drop(key, f"segment {pdu.counter} where {part.next_counter} was expected")
            return None
        part.size += len(pdu.payload)
        if part.size > self.max_apdu:
            self._drop(key, f"reassembled APDU exceeds {self.max_apdu} bytes")
            return None
        part.parts.append(pdu.payload)
        part.next_counter = (part.next_counter + 1) & 0xFF
        part.deadline = now + self.gap_timeout
        if pdu.last:
            del self._partials[key]
            return b"".join(part.parts)
        return None

    def next_timer(self) -> float | None:
        if not self._partials:
            return None
        return min(p.deadline for p in self._partials.values())

    def handle_timer(self, now: float) -> None:
        for key, p in list(self._partials.items()):
            if now >= p.deadline:
                self._drop(key, "segment gap exceeded the timeout")

    @property
    def pending(self) -> int:
        return len(self._partials)

    @property
    def buffered_bytes(self) -> int:
        return sum(p.size for p in self._partials.values())
