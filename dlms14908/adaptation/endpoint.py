"""IEC 62056-8-8 §5.4 adaptation-layer endpoints (sans-I/O): APDUs ⇄ adaptation PDUs
⇄ optional OSGP-AES-128-PSK channel (Annex D) ⇄ LonTalk application messages.

PDU layout: :mod:`dlms14908.adaptation.pdu` (``docs/wire-format.md`` §3).  Every
adaptation PDU travels as the data of one LonTalk application message whose code is
:data:`dlms14908.profile.AL_MSG_CODE`; the bytes handed to and taken from the owner are
that whole LonTalk APDU (``code || PDU``).

Exchange design [D] (the standard's mapping is not public; reference §1.3):

* A confirmed xDLMS request is cut into segments (``segment_apdu``).  Every segment but
  the last goes with LonTalk ACKD service; the last one with REQUEST.  The RESPONSE
  carries the server's response APDU, or its first segment.
* Further response segments are *pulled*: the client sends a REQUEST whose PDU is a
  segment (S = 1, F = L = 0) with an empty payload and the counter of the segment it
  wants; the RESPONSE carries that segment.  Pulling keeps every exchange initiated by
  the head-end, so it works unchanged through an Annex E proxy chain (a meter never
  needs the head-end's address).
* With OSGP-AES-128-PSK every PDU of TYPE xDLMS (segments and pulls alike) is
  protected on its own (``P = 1``).  The first exchange runs the handshake first
  (ChallengeRequest / CommissionRequest as TYPE-security REQUESTs).  ``dest`` — the
  LonTalk address bound into the AAD — is the *meter's* address (domain ‖ subnet ‖
  node, or domain ‖ Neuron ID when addressed so) as the frame carried it, in both
  directions: the final target of the request, which both ends know whatever the
  repeater chain (the nonce's source ID keeps the directions apart); :func:`address_bytes`.
* A server refuses unprotected xDLMS PDUs when it has a channel and
  ``require_protection`` (the default).  Errors the channel raises
  (AuthenticationFailure / SequenceError) are returned as a TYPE-error RESPONSE.

Servers route on (server SAP, client SAP); reassembly is per (peer, SAP pair) with
:class:`~dlms14908.adaptation.pdu.Reassembler`; pending response segments are bounded;
the class 131 ``inactivity_timeout`` (minutes) bounds both and marks the LNAP out of
communication when the NNAP stays silent.  Every dropped PDU is counted.

The common exchange - one whole xDLMS PDU each way - takes a fast path without PDU
objects (``begin``, ``on_message``, ``feed``); anything else, and every failure,
goes through the general code, so counting and answering are the same on both.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields

from osgp.channel import (
    ChannelEstablished,
    ChannelFailed,
    ChannelState,
    DataReceived,
    FrameDropped,
    HandshakeFailed,
    KeyInstalled,
    OmaKeyReceived,
    PeerErrorReported,
    SecureChannel,
    SendError,
    SendHandshake,
    SendProtected,
)

from .. import profile as P
from ..errors import DecodeError, DlmsTimeout, EncodeError, LocalProtocolError, SecurityError
from .pdu import AdaptationPdu, Reassembler, decode_pdu_at, encode_pdu, header_bytes, segment_apdu

__all__ = [
    "ApduHandler",
    "ClientEndpoint",
    "Done",
    "EndpointCounters",
    "OutOfCommunication",
    "Send",
    "ServerEndpoint",
    "Step",
    "address_bytes",
    "is_adaptation_message",
    "lnap_address_bytes",
]

ApduHandler = Callable[[bytes], "bytes | None"]
_COMMISSIONED = ChannelState.COMMISSIONED
_CODE = bytes((P.AL_MSG_CODE,))
_CODE_INT = P.AL_MSG_CODE
# the hot paths: one whole (unsegmented) xDLMS PDU, plain or protected
_CTRL_X = P.AL_TYPE_XDLMS
_CTRL_PX = P.AL_CTRL_PROTECTED | P.AL_TYPE_XDLMS
_CODE_HDR = struct.Struct(">BBBB")  # message code || ctrl dst SAP src SAP
_MAX_APDU = P.AL_MAX_APDU
assert P.AL_HEADER_LEN == 3 and _CODE_HDR.size == 1 + P.AL_HEADER_LEN
_MAX_PENDING_RESPONSES = 64
_PENDING_RESPONSE_TIMEOUT = P.AL_SEGMENT_GAP_TIMEOUT


def lnap_address_bytes(domain: bytes, subnet: int, node: int) -> bytes:
    """The LonTalk address of a meter as bound into the OSGP AAD: domain ‖ subnet ‖ node."""
    if not 0 <= subnet <= 255 or not 0 <= node <= 127:
        raise EncodeError("subnet 0..255, node 0..127", field="address")
    return bytes(domain) + bytes((subnet, node))


def address_bytes(domain: bytes, *, subnet: int | None = None, node: int | None = None,
                  neuron_id: bytes | None = None) -> bytes:
    """The LonTalk destination address bound into the OSGP AAD (``docs/wire-format.md`` §4.4):
    domain ‖ subnet ‖ node, or domain ‖ Neuron ID when the meter is addressed by its ID."""
    if neuron_id is not None:
        if len(neuron_id) != 6:
            raise EncodeError("a Neuron ID is 6 bytes", field="address.neuron_id")
        return bytes(domain) + bytes(neuron_id)
    if subnet is None or node is None:
        raise EncodeError("need subnet and node, or a Neuron ID", field="address")
    return lnap_address_bytes(domain, subnet, node)


def is_adaptation_message(data: bytes) -> bool:
    """True when a LonTalk APDU (code first) carries an adaptation PDU."""
    return bool(data) and data[0] == P.AL_MSG_CODE


def _message(pdu: AdaptationPdu) -> bytes:
    return _CODE + encode_pdu(pdu)


def _decode_message(data: bytes) -> AdaptationPdu:
    if not data:
        raise DecodeError("empty LonTalk message", field="lon.apdu.code", offset=0)
    if data[0] != P.AL_MSG_CODE:
        raise DecodeError(f"message code 0x{data[0]:02X} is not the adaptation code",
                          field="lon.apdu.code", offset=0)
    return decode_pdu_at(data if type(data) is bytes else bytes(data), 1)


@dataclass(slots=True)
class EndpointCounters:
    """What an endpoint dropped or moved (drops never carry payload)."""

    tx_pdus: int = 0
    rx_pdus: int = 0
    malformed: int = 0
    unknown_sap: int = 0
    unprotected_refused: int = 0
    security_drops: int = 0
    reassembly_dropped: int = 0
    stray_pulls: int = 0
    responses_expired: int = 0
    inactivity_expired: int = 0
    handshakes: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------- client side


@dataclass(frozen=True, slots=True, init=False)
class Send:
    """Send ``data`` (a LonTalk APDU: code ‖ adaptation PDU) to the meter; ``confirmed``:
    with REQUEST service (feed the RESPONSE back), else ACKD (feed ``None`` on completion)."""

    data: bytes
    confirmed: bool

    def __init__(self, data: bytes, confirmed: bool) -> None:
        # frozen: the slots are written through their descriptors, once (one per exchange
        # step, so not through the generated __init__'s object.__setattr__)
        _SEND_DATA(self, data)
        _SEND_CONFIRMED(self, confirmed)


@dataclass(frozen=True, slots=True, init=False)
class Done:
    """The exchange finished; ``apdu`` is the response APDU (None for unconfirmed sends)."""

    apdu: bytes | None

    def __init__(self, apdu: bytes | None) -> None:
        _DONE_APDU(self, apdu)


_SEND_DATA = Send.__dict__["data"].__set__
_SEND_CONFIRMED = Send.__dict__["confirmed"].__set__
_DONE_APDU = Done.__dict__["apdu"].__set__

Step = Send | Done


class ClientEndpoint:
    """The head-end (NNAP) end of the adaptation layer towards one meter and one SAP pair.

    One exchange at a time: :meth:`begin` then :meth:`feed` with each reply until a
    :class:`Done` comes out.  Raises :class:`~dlms14908.errors.SecurityError` when the
    meter rejects protection or the handshake, :class:`~dlms14908.errors.DecodeError`
    for a malformed reply.
    """

    __slots__ = (
        "_confirmed",
        "_next_counter",
        "_parts",
        "_queue",
        "_size",
        "_state",
        "channel",
        "client_sap",
        "counters",
        "dest",
        "max_apdu",
        "max_segment",
        "server_sap",
    )

    def __init__(
        self,
        *,
        client_sap: int = P.SAP_PUBLIC_CLIENT,
        server_sap: int = P.SAP_MANAGEMENT,
        channel: SecureChannel | None = None,
        dest: bytes = b"",
        max_segment: int = P.AL_MAX_SEGMENT_DEFAULT,
        max_apdu: int = P.AL_MAX_APDU,
    ) -> None:
        self.client_sap = client_sap
        self.server_sap = server_sap
        self.channel = channel  # role NNAP
        self.dest = bytes(dest)
        self.max_segment = max_segment
        self.max_apdu = max_apdu
        self.counters = EndpointCounters()
        # segments still to send / response segments received: a shared empty tuple while
        # there are none (an idle endpoint holds no per-exchange buffers)
        self._queue: list[AdaptationPdu] | tuple[()] = ()
        self._confirmed = False
        self._state = "idle"  # idle | hs1 | hs2 | sending | receiving
        self._parts: list[bytes] | tuple[()] = ()
        self._size = 0
        self._next_counter = 0

    @property
    def busy(self) -> bool:
        return self._state != "idle"

    def _pdu(self, type_: int, payload: bytes) -> AdaptationPdu:
        return AdaptationPdu(type_, self.server_sap, self.client_sap, payload)

    def _seal(self, pdu: AdaptationPdu, now: float) -> bytes:
        ch = self.channel
        self.counters.tx_pdus += 1
        if ch is None:
            return _message(pdu)
        hdr = header_bytes(pdu, protected=True)
        body = ch.protect(pdu.payload, header=hdr, dest=self.dest, now=now)
        return b"".join((_CODE, hdr, body))

    def _commissioned(self) -> bool:
        ch = self.channel
        return ch is None or ch.state is _COMMISSIONED

    def begin(self, apdu: bytes, *, confirmed: bool = True, now: float) -> Step:
        """Start sending ``apdu``; returns the first message to send."""
        if self._state != "idle":
            raise LocalProtocolError("an exchange is already running on this endpoint")
        data = apdu if type(apdu) is bytes else bytes(apdu)
        n, ms, ch = len(data), self.max_segment, self.channel
        dst, src = self.server_sap, self.client_sap
        if (
            0 < ms
            and n <= ms
            and n <= _MAX_APDU
            and (ch is None or ch._state is _COMMISSIONED)
            and type(dst) is int
            and type(src) is int
            and not (dst | src) >> 8
        ):
            # one whole PDU on a ready channel: sealed straight into the message (the
            # bytes _seal gives); the state changes only once the message exists
            if ch is None:
                msg = _CODE_HDR.pack(_CODE_INT, _CTRL_X, dst, src) + data
            else:
                msg = ch._seal_pdu(_CODE_INT, _CTRL_PX, dst, src, data, self.dest)
            self.counters.tx_pdus += 1
            self._queue, self._parts, self._size, self._next_counter = (), (), 0, 0
            self._confirmed = confirmed
            self._state = "receiving" if confirmed else "idle"
            return Send(msg, confirmed)
        if 0 < self.max_segment and len(data) <= min(self.max_segment, P.AL_MAX_APDU):  # one whole PDU
            self._queue = [AdaptationPdu(P.AL_TYPE_XDLMS, self.server_sap, self.client_sap, data)]
        else:
            self._queue = list(segment_apdu(data, dst_sap=self.server_sap, src_sap=self.client_sap,
                                            max_segment=self.max_segment, protected=False))
        self._confirmed = confirmed
        self._parts, self._size, self._next_counter = (), 0, 0
        if not self._commissioned():
            ch = self.channel
            self.counters.handshakes += 1
            assert ch is not None
            msg = ch.start_handshake(now)
            self._state = "hs1"
            self.counters.tx_pdus += 1
            return Send(_message(self._pdu(P.AL_TYPE_SECURITY, msg)), True)
        self._state = "sending"
        try:
            return self._next_segment(now)
        except BaseException:
            self.abort()  # (e.g. sequence numbers exhausted): not left busy
            raise

    def abort(self) -> None:
        """Forget the running exchange (after a transport failure)."""
        self._state = "idle"
        self._queue = ()
        self._parts = ()

    def _next_segment(self, now: float) -> Step:
        queue = self._queue
        assert isinstance(queue, list)
        pdu = queue.pop(0)
        last = not queue
        if last:
            self._queue = ()
            self._state = "receiving" if self._confirmed else "idle"
        return Send(self._seal(pdu, now), confirmed=last and self._confirmed)

    def feed(self, reply: bytes | None, now: float) -> Step:
        """Feed the RESPONSE to the last confirmed :class:`Send` (``None`` after an ACKD one)."""
        state = self._state
        if (
            state == "receiving"
            and type(reply) is bytes
            and len(reply) > 4
            and reply[0] == _CODE_INT
            and reply[2] == self.client_sap
            and reply[3] == self.server_sap
            and not self._parts
        ):
            # the common reply: one whole xDLMS PDU for this SAP pair (else the full path)
            ch, ctrl = self.channel, reply[1]
            payload = None
            if ch is None:
                if ctrl == _CTRL_X:
                    payload = reply[4:]
            elif ctrl == _CTRL_PX:
                payload = ch._open_pdu(reply, 1, 4, self.dest)  # None: not verified, unchanged
            if payload is not None:
                self.counters.rx_pdus += 1
                self._state = "idle"
                if not payload:
                    self.abort()
                    raise DlmsTimeout("the meter accepted the request but sent no response APDU")
                return Done(payload)
        if state == "idle":
            raise LocalProtocolError("no exchange is running")
        try:
            if state in ("hs1", "hs2"):
                return self._on_handshake(reply, now)
            if state == "sending":
                if self._queue:
                    return self._next_segment(now)
                self._state = "idle"
                return Done(None)
            if not self._confirmed:  # pragma: no cover - guarded by _next_segment
                self._state = "idle"
                return Done(None)
            return self._on_response(reply, now)
        except BaseException:
            self.abort()
            raise

    def _on_handshake(self, reply: bytes | None, now: float) -> Step:
        if reply is None:
            raise LocalProtocolError("a handshake step needs the RESPONSE")
        pdu = _decode_message(reply)
        self.counters.rx_pdus += 1
        if pdu.type not in (P.AL_TYPE_SECURITY, P.AL_TYPE_ERROR) or pdu.protected:
            raise SecurityError("the meter did not answer the OSGP handshake")
        assert self.channel is not None
        events = self.channel.receive_message(pdu.payload, now)
        for ev in events:
            if isinstance(ev, SendHandshake) and self._state == "hs1":
                self._state = "hs2"
                self.counters.tx_pdus += 1
                return Send(_message(self._pdu(P.AL_TYPE_SECURITY, ev.data)), True)
            if isinstance(ev, ChannelEstablished):
                self._state = "sending"
                return self._next_segment(now)
        raise SecurityError("OSGP handshake failed: " + (", ".join(type(e).__name__ for e in events) or "no answer"))

    def _on_response(self, reply: bytes | None, now: float) -> Step:
        if reply is None:
            raise LocalProtocolError("a confirmed exchange needs the RESPONSE")
        pdu = _decode_message(reply)
        self.counters.rx_pdus += 1
        if pdu.type == P.AL_TYPE_ERROR:
            if self.channel is None:
                raise SecurityError(
                    "the meter requires OSGP-AES-128-PSK and refused an unprotected request: "
                    "give its PSK in the key file's [osgp] table"
                )
            kind = "error"
            if not pdu.protected:
                for ev in self.channel.receive_message(pdu.payload, now):
                    if isinstance(ev, PeerErrorReported):
                        kind = ev.kind
            raise SecurityError(f"the meter rejected the protected PDU ({kind})")
        if pdu.type != P.AL_TYPE_XDLMS:
            raise DecodeError(f"unexpected adaptation type {pdu.type} in a response", field="adaptation.ctrl.type")
        if (pdu.dst_sap, pdu.src_sap) != (self.client_sap, self.server_sap):
            self.counters.unknown_sap += 1
            raise DecodeError("response for another SAP pair", field="adaptation.dst_sap")
        payload = pdu.payload
        if self.channel is not None:
            if not pdu.protected:
                self.counters.unprotected_refused += 1
                raise SecurityError("unprotected response on a protected association")
            payload = self._open(pdu, now)
        elif pdu.protected:
            self.counters.unprotected_refused += 1
            raise SecurityError("protected response but no OSGP key for this meter")
        if not pdu.segmented:
            if self._parts:
                raise DecodeError("unsegmented PDU inside a segmented response", field="adaptation.ctrl")
            self._state = "idle"
            if not payload:
                raise DlmsTimeout("the meter accepted the request but sent no response APDU")
            return Done(payload)
        if pdu.counter != self._next_counter:
            raise DecodeError(f"segment {pdu.counter}, expected {self._next_counter}", field="adaptation.counter")
        self._size += len(payload)
        if self._size > self.max_apdu:
            raise DecodeError(f"response exceeds {self.max_apdu} bytes", field="adaptation.payload")
        if not self._parts:
            self._parts = []
        self._parts.append(payload)
        self._next_counter = (self._next_counter + 1) & 0xFF
        if pdu.last:
            self._state = "idle"
            out = b"".join(self._parts)
            self._parts = ()
            return Done(out)
        pull = AdaptationPdu(P.AL_TYPE_XDLMS, self.server_sap, self.client_sap, b"", segmented=True,
                             counter=self._next_counter)
        return Send(self._seal(pull, now), True)

    def _open(self, pdu: AdaptationPdu, now: float) -> bytes:
        assert self.channel is not None
        events = self.channel.receive_protected(pdu.payload, header=header_bytes(pdu), dest=self.dest, now=now)
        for ev in events:
            if isinstance(ev, DataReceived):
                return ev.data
        self.counters.security_drops += 1
        reason = next((e.reason.value for e in events if isinstance(e, FrameDropped)), "dropped")
        raise SecurityError(f"protected response rejected ({reason})")


# --------------------------------------------------------------------------- server side


@dataclass(frozen=True, slots=True)
class OutOfCommunication:
    """Server: no adaptation message from the NNAP for ``inactivity_timeout`` minutes."""

    since: float


@dataclass(slots=True)
class _Outgoing:
    segments: list[AdaptationPdu]
    deadline: float


Router = Callable[[int, int], "ApduHandler | None"]


class ServerEndpoint:
    """The meter (LNAP) end: serves an :data:`ApduHandler` per (server SAP, client SAP).

    ``handler``: one handler for every SAP pair, or a router
    ``(server_sap, client_sap) -> handler | None`` (``route=``).  :meth:`on_message`
    takes one received LonTalk application message and returns the RESPONSE data for
    a REQUEST (or None).
    """

    def __init__(
        self,
        handler: ApduHandler | None = None,
        *,
        route: Router | None = None,
        channel: SecureChannel | None = None,
        dest: bytes = b"",
        require_protection: bool = True,
        max_segment: int = P.AL_MAX_RESPONSE_SEGMENT_DEFAULT,
        inactivity_timeout: int = 0,
        max_apdu: int = P.AL_MAX_APDU,
    ) -> None:
        if (handler is None) == (route is None):
            raise LocalProtocolError("give exactly one of handler= or route=")
        self._route: Router = route if route is not None else (lambda s, c: handler)
        self.channel = channel  # role LNAP
        self.dest = bytes(dest)
        self.require_protection = require_protection
        self.max_segment = max_segment
        self.counters = EndpointCounters()
        self.events: list[object] = []
        "channel events worth telling the owner (ChannelEstablished, OmaKeyReceived, OutOfCommunication)"
        self._max_apdu = max_apdu
        self._inactivity = 0
        self.reassembler = Reassembler(max_apdu=max_apdu)
        self._pending: OrderedDict[Hashable, _Outgoing] = OrderedDict()
        self.last_rx: float | None = None
        self.in_communication = False
        self.inactivity_timeout = inactivity_timeout
        self._cur_dest = self.dest

    @property
    def inactivity_timeout(self) -> int:
        """Class 131 attribute 2: minutes (0 = disabled)."""
        return self._inactivity

    @inactivity_timeout.setter
    def inactivity_timeout(self, minutes: int) -> None:
        if not 0 <= minutes <= 0xFFFF:
            raise EncodeError("must be 0..65535 minutes", field="inactivity_timeout")
        self._inactivity = minutes
        gap = P.AL_SEGMENT_GAP_TIMEOUT
        if minutes:
            gap = min(gap, minutes * 60.0)
        self.reassembler.gap_timeout = gap

    # -- timers -------------------------------------------------------------------------
    def next_timer(self) -> float | None:
        ra = self.reassembler
        t = ra.next_timer() if ra._partials else None  # (asked after every frame: no call when idle)
        if self._pending:
            pt = min(o.deadline for o in self._pending.values())
            if t is None or pt < t:
                t = pt
        if self._inactivity and self.in_communication and self.last_rx is not None:
            it = self.last_rx + self._inactivity * 60.0
            if t is None or it < t:
                t = it
        return t

    def handle_timer(self, now: float) -> None:
        before = self.reassembler.dropped_count
        self.reassembler.handle_timer(now)
        self.counters.reassembly_dropped += self.reassembler.dropped_count - before
        self.reassembler.dropped.clear()
        for key in [k for k, o in self._pending.items() if now >= o.deadline]:
            del self._pending[key]
            self.counters.responses_expired += 1
        if (self._inactivity and self.in_communication and self.last_rx is not None
                and now >= self.last_rx + self._inactivity * 60.0):
            self.in_communication = False
            self.counters.inactivity_expired += 1
            self.events.append(OutOfCommunication(self.last_rx))

    # -- receive ------------------------------------------------------------------------
    def on_message(self, peer: Hashable, data: bytes, *, confirmed: bool, now: float,
                   dest: bytes | None = None) -> bytes | None:
        """Process one LonTalk application message (code ‖ PDU) from ``peer``.

        ``dest``: the address the frame was sent to (:func:`address_bytes`; default
        :attr:`dest`), bound into the AAD of the request and of its response.
        Returns the RESPONSE data for a REQUEST, or None (nothing to answer: ACKD
        delivery, or a dropped PDU, which is counted)."""
        cur = self._cur_dest = self.dest if dest is None else dest if type(dest) is bytes else bytes(dest)
        counters = self.counters
        if type(data) is bytes and len(data) > 3 and data[0] == _CODE_INT:
            ctrl = data[1]
            if ctrl == _CTRL_PX or ctrl == _CTRL_X:
                # The common request: one whole xDLMS PDU.  The same steps as below, without
                # PDU objects: route, open, deliver, answer.
                counters.rx_pdus += 1
                dst, src = data[2], data[3]
                handler = self._route(dst, src)
                if handler is None:
                    counters.unknown_sap += 1
                    return None
                ch = self.channel
                if ctrl == _CTRL_PX:
                    if ch is None:
                        counters.unprotected_refused += 1
                        return None
                    payload = ch._open_pdu(data, 1, 4, cur)
                    if payload is None:  # not verified by the fast path: the full one decides
                        payload, reply = self._open(ch, data[4:], data[1:4], dst, src, now)
                        if payload is None:
                            return reply if confirmed else None
                elif ch is not None and self.require_protection:
                    return self._refuse(ch, dst, src, confirmed, now)
                else:
                    payload = data[4:]
                self.last_rx = now
                self.in_communication = True
                ra = self.reassembler
                if ra._partials:
                    before = ra.dropped_count
                    ra.feed_whole((peer, dst, src), payload)
                    counters.reassembly_dropped += ra.dropped_count - before
                if ra.dropped:
                    ra.dropped.clear()
                if self._pending:
                    self._pending.pop((peer, dst, src), None)
                response = handler(payload)
                if not confirmed:
                    return None
                if type(response) is bytes and 0 < len(response) <= self.max_segment:
                    counters.tx_pdus += 1
                    if ctrl == _CTRL_PX:
                        assert ch is not None
                        return ch._seal_pdu(_CODE_INT, _CTRL_PX, src, dst, response, cur)
                    return _CODE_HDR.pack(_CODE_INT, _CTRL_X, src, dst) + response
                return self._respond((peer, dst, src), src, dst, response, ctrl == _CTRL_PX, now)
        try:
            pdu = _decode_message(data)
        except DecodeError:
            counters.malformed += 1
            return None
        counters.rx_pdus += 1
        if pdu.type == P.AL_TYPE_SECURITY:
            return self._on_security(pdu, now)
        if pdu.type != P.AL_TYPE_XDLMS:
            counters.malformed += 1  # errors/ATM towards a meter: reported nowhere else
            return None
        handler = self._route(pdu.dst_sap, pdu.src_sap)
        if handler is None:
            counters.unknown_sap += 1
            return None
        payload = pdu.payload
        if pdu.protected:
            if self.channel is None:
                counters.unprotected_refused += 1
                return None
            plain, reply = self._open(self.channel, payload, header_bytes(pdu), pdu.dst_sap, pdu.src_sap, now)
            if plain is None:
                return reply if confirmed else None
            payload = plain
        elif self.channel is not None and self.require_protection:
            return self._refuse(self.channel, pdu.dst_sap, pdu.src_sap, confirmed, now)
        self._alive(now)
        key = (peer, pdu.dst_sap, pdu.src_sap)
        protected = pdu.protected
        if pdu.segmented and not pdu.first and not payload:
            return self._serve_pull(key, pdu, protected, now)
        ra = self.reassembler
        before = ra.dropped_count
        if pdu.segmented:
            apdu = ra.feed(key, AdaptationPdu(pdu.type, pdu.dst_sap, pdu.src_sap, payload, False,
                                              pdu.segmented, pdu.first, pdu.last, pdu.counter), now)
        else:
            apdu = ra.feed_whole(key, payload)
        if ra.dropped_count != before:
            counters.reassembly_dropped += ra.dropped_count - before
        ra.dropped.clear()
        if apdu is None:
            if confirmed:  # a REQUEST for a middle segment: acknowledge with an empty PDU
                return self._seal(AdaptationPdu(P.AL_TYPE_XDLMS, pdu.src_sap, pdu.dst_sap, b""), protected, now)
            return None
        if self._pending:
            self._pending.pop(key, None)
        response = handler(apdu)
        if not confirmed:
            return None
        return self._respond(key, pdu.src_sap, pdu.dst_sap, response, protected, now)

    def _open(self, ch: SecureChannel, body: bytes, header: bytes, dst: int, src: int,
              now: float) -> tuple[bytes | None, bytes | None]:
        """The full receive path of a protected xDLMS PDU: (plaintext or None, the
        TYPE-error answer the channel wants sent or None); a drop is counted."""
        events = ch.receive_protected(body, header=header, dest=self._cur_dest, now=now)
        plain = None
        reply = None
        for ev in events:
            if isinstance(ev, DataReceived):
                plain = ev.data
            elif isinstance(ev, SendError):
                reply = _message(AdaptationPdu(P.AL_TYPE_ERROR, src, dst, ev.data))
        if plain is None:
            self.counters.security_drops += 1
        return plain, reply

    def _refuse(self, ch: SecureChannel, dst: int, src: int, confirmed: bool, now: float) -> bytes | None:
        """An unprotected xDLMS PDU on a node that requires protection: counted, and a
        confirmed request is told why (rate-limited) instead of timing out."""
        self.counters.unprotected_refused += 1
        events = ch.refuse_unprotected(now)
        if confirmed:
            for ev in events:
                if isinstance(ev, SendError):
                    return _message(AdaptationPdu(P.AL_TYPE_ERROR, src, dst, ev.data))
        return None

    def _respond(self, key: Hashable, dst: int, src: int, response: bytes | None, protected: bool,
                 now: float) -> bytes:
        """The RESPONSE data for a served request: the response APDU (``dst``/``src`` are the
        response's SAPs), its first segment (the rest is pulled), or an empty PDU."""
        if not response:
            return self._seal(AdaptationPdu(P.AL_TYPE_XDLMS, dst, src, b""), protected, now)
        if len(response) <= self.max_segment and type(response) is bytes:  # one unsegmented PDU
            return self._seal(AdaptationPdu(P.AL_TYPE_XDLMS, dst, src, response), protected, now)
        segs = list(segment_apdu(response, dst_sap=dst, src_sap=src, max_segment=self.max_segment))
        if len(segs) > 1:
            if len(self._pending) >= _MAX_PENDING_RESPONSES:
                self._pending.popitem(last=False)
                self.counters.responses_expired += 1
            self._pending[key] = _Outgoing(segs, now + min(_PENDING_RESPONSE_TIMEOUT, self.reassembler.gap_timeout))
        return self._seal(segs[0], protected, now)

    def _serve_pull(self, key: Hashable, pdu: AdaptationPdu, protected: bool, now: float) -> bytes | None:
        out = self._pending.get(key)
        if out is None or pdu.counter is None or not 0 < pdu.counter < len(out.segments):
            self.counters.stray_pulls += 1
            return None
        seg = out.segments[pdu.counter]
        if seg.last:
            del self._pending[key]
        else:
            out.deadline = now + min(_PENDING_RESPONSE_TIMEOUT, self.reassembler.gap_timeout)
        return self._seal(seg, protected, now)

    def _alive(self, now: float) -> None:
        self.last_rx = now
        self.in_communication = True

    def _seal(self, pdu: AdaptationPdu, protected: bool, now: float) -> bytes:
        self.counters.tx_pdus += 1
        if not protected:
            return _message(pdu)
        hdr = header_bytes(pdu, protected=True)
        assert self.channel is not None
        body = self.channel.protect(pdu.payload, header=hdr, dest=self._cur_dest, now=now)
        return b"".join((_CODE, hdr, body))

    def _on_security(self, pdu: AdaptationPdu, now: float) -> bytes | None:
        ch = self.channel
        if ch is None:
            self.counters.unprotected_refused += 1
            return None
        if pdu.protected:
            events = ch.receive_protected(pdu.payload, header=header_bytes(pdu), dest=self._cur_dest, now=now,
                                          management=True)
        else:
            events = ch.receive_message(pdu.payload, now)
        reply = None
        for ev in events:
            if isinstance(ev, SendHandshake):
                reply = _message(AdaptationPdu(P.AL_TYPE_SECURITY, pdu.src_sap, pdu.dst_sap, ev.data))
            elif isinstance(ev, SendProtected):
                reply = self._seal(AdaptationPdu(P.AL_TYPE_SECURITY, pdu.src_sap, pdu.dst_sap, ev.data), True, now)
            elif isinstance(ev, SendError):
                reply = _message(AdaptationPdu(P.AL_TYPE_ERROR, pdu.src_sap, pdu.dst_sap, ev.data))
            elif isinstance(ev, (ChannelEstablished, OmaKeyReceived, ChannelFailed, KeyInstalled)):
                self.events.append(ev)
            elif isinstance(ev, (FrameDropped, HandshakeFailed)):
                self.counters.security_drops += 1
        if reply is not None:
            self._alive(now)
        return reply
