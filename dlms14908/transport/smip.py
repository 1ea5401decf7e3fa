"""Serial-MIP link-layer protocol and MIP/U61 host driver (sans-I/O cores).

Reference notes ``lontalk.md`` §2.1-§2.3 (LonTalk Stack Developer's Guide pp.40-45; EnOcean
LON Stack DX ``lon_usb_link.c``).  Three objects, all bytes-in / bytes-out with an explicit
``now``:

* :class:`LlpEndpoint` - one side (host or MIP) of the Serial-MIP LLP: code packets, sequence
  numbers 1..7 with duplicate drop, the ack bit (piggy-backed or on a CpNull), CpMsgReq /
  CpMsgAck / CpMsgReject buffer handshake (downlink), CpFail on a broken transfer and resend,
  CpResync, ack timeout and retries.
* :class:`U61Endpoint` - the same interface over MIP/U61 framing (``7E 00`` + message; no
  code packets, no seq/ack).
* :class:`MipDriver` - the host driver: the start-up sequence of §2.3 (wait for niRESET ->
  resync -> layer 5 -> read the Unique ID by local NM Read Memory -> layer 2 -> [PL phase
  mode] -> MIP status -> ready), L2 frames down (``0x12``/``0x13``, CRC stripped) and up
  (``0x1A``/``0x1B``/``0x1C``, CRC kept, phase and SSI bytes removed), re-applying the modes
  after every niRESET.
* :class:`VirtualMip` - the transceiver side, used by the pty virtual transceiver.

Inferred details ([I], no hardware to confirm): the niRESET notification is sent with
sequence number 0 (idempotent) so that it is never dropped as a duplicate after the MIP lost
its state; the ack bit acknowledges the peer's outstanding transfer; MIP status answers are a
data message ``E0`` + 4 status bytes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Literal

from ..errors import LocalProtocolError
from ..lon.crc import append_crc, check_crc
from .niframe import (
    CodePacket,
    CpType,
    FramingFault,
    LlpDecoder,
    NiCmd,
    NiMessage,
    U61Decoder,
    encode_code_packet,
    encode_data_message,
    encode_u61,
)

__all__ = [
    "DriverConfig",
    "DriverFailed",
    "DriverReady",
    "DriverState",
    "FrameReceived",
    "FramingError",
    "L2ReceiveError",
    "LinkCounters",
    "LinkResynced",
    "LlpConfig",
    "LlpEndpoint",
    "MipDriver",
    "NiReceived",
    "NiResetReceived",
    "NiShortReceived",
    "PeerResynced",
    "Role",
    "TransferFailed",
    "U61Endpoint",
    "VirtualMip",
    "read_uid_request",
]

MipKind = Literal["u50", "u61"]


class Role(Enum):
    HOST = auto()
    MIP = auto()


@dataclass(frozen=True, slots=True)
class LlpConfig:
    """LLP timers (seconds) and limits (LTS-DG p.43-44; DX ``lon_usb_link.h``)."""

    ack_timeout: float = 0.5
    reject_retry: float = 0.05
    reject_timeout: float = 10.0
    inter_byte_timeout: float = 0.04
    max_attempts: int = 4


@dataclass(slots=True)
class LinkCounters:
    """Link statistics (mutable, read by the adapters and tests)."""

    tx_code_packets: int = 0
    tx_messages: int = 0
    rx_code_packets: int = 0
    rx_messages: int = 0
    duplicates: int = 0
    retransmits: int = 0
    fails_sent: int = 0
    fails_received: int = 0
    rejects_sent: int = 0
    rejects_received: int = 0
    resyncs: int = 0
    framing_errors: int = 0


# -- link events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """Base class of the LLP / U61 endpoint events."""


@dataclass(frozen=True, slots=True)
class NiReceived(LinkEvent):
    message: NiMessage


@dataclass(frozen=True, slots=True)
class NiShortReceived(LinkEvent):
    cmd: int


@dataclass(frozen=True, slots=True)
class LinkResynced(LinkEvent):
    """The MIP answered our CpResync."""


@dataclass(frozen=True, slots=True)
class PeerResynced(LinkEvent):
    """The host sent CpResync (MIP role)."""


@dataclass(frozen=True, slots=True)
class TransferFailed(LinkEvent):
    item: NiMessage | int
    reason: str


@dataclass(frozen=True, slots=True)
class FramingError(LinkEvent):
    fault: FramingFault


class _Tx(Enum):
    IDLE = auto()
    WAIT_BUFFER = auto()  # CpMsgReq sent
    REJECTED = auto()  # waiting to ask again
    WAIT_ACK = auto()  # transfer sent
    RESYNC = auto()  # CpResync sent


@dataclass(slots=True)
class _Pending:
    item: NiMessage | int  # a data message or a short NI command
    priority: bool
    seq: int = 0
    attempts: int = 0
    first_req: float = 0.0


def _next_seq(s: int) -> int:
    return 1 if s >= 7 else s + 1


class LlpEndpoint:
    """One side of the Serial-MIP LLP (sans-I/O)."""

    def __init__(self, role: Role, config: LlpConfig | None = None) -> None:
        self.role = role
        self.config = config or LlpConfig()
        self.counters = LinkCounters()
        self._dec = LlpDecoder()
        self._out = bytearray()
        self._queue: deque[_Pending] = deque()
        self._cur: _Pending | None = None
        self._state = _Tx.IDLE
        self._deadline: float | None = None
        self._tx_seq = 1
        self._rx_last: int | None = None
        self._ack_owed = False
        self._msg_seq: int | None = None  # seq of the CpMsg whose data message is awaited
        self._last_rx: float | None = None
        #: MIP role: answer the next N CpMsgReq with CpMsgReject (flow control / tests).
        self.reject_buffers = 0

    # -- API ----------------------------------------------------------------------------
    def send_message(self, msg: NiMessage, *, priority: bool = False, now: float = 0.0) -> None:
        """Queue an NI data message."""
        self._queue.append(_Pending(msg, priority))
        self._kick(now)

    def send_short(self, cmd: int, *, now: float = 0.0) -> None:
        """Queue a one-byte NI command (CpNiCmdShort)."""
        if not 0 <= cmd <= 255:
            raise LocalProtocolError("NI command out of range")
        self._queue.append(_Pending(cmd, False))
        self._kick(now)

    def send_idempotent_short(self, cmd: int) -> None:
        """Send a CpNiCmdShort with sequence number 0, not queued and not acknowledged."""
        self._emit(CodePacket(CpType.NI_CMD_SHORT, seq=0, param=cmd))

    def resync(self, now: float) -> None:
        """Host: send CpResync and wait for the CpNull answer."""
        if self._cur is not None:
            self._queue.appendleft(self._cur)
            self._cur = None
        self._state = _Tx.RESYNC
        self._rx_last = None
        self._tx_seq = 1
        self._dec.reset()
        self._msg_seq = None
        self._emit(CodePacket(CpType.RESYNC))
        self._deadline = now + self.config.ack_timeout
        self.counters.resyncs += 1

    @property
    def busy(self) -> bool:
        """A transfer is in progress or queued."""
        return self._cur is not None or bool(self._queue) or self._state is _Tx.RESYNC

    def bytes_to_send(self, now: float | None = None) -> bytes:
        """Bytes to write to the serial port."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_timer(self) -> float | None:
        """Earliest deadline (absolute, same clock as ``now``)."""
        t = self._deadline
        if self._last_rx is not None and self._dec_has_partial():
            ib = self._last_rx + self.config.inter_byte_timeout
            t = ib if t is None else min(t, ib)
        return t

    def handle_timer(self, now: float) -> list[LinkEvent]:
        """Process expired timers (safe to call early or twice)."""
        ev: list[LinkEvent] = []
        if (
            self._last_rx is not None
            and self._dec_has_partial()
            and now >= self._last_rx + self.config.inter_byte_timeout
        ):
            self._dec.reset()
            self._last_rx = None
            self.counters.framing_errors += 1
            ev.append(FramingError(FramingFault("inter-byte timeout")))
            if self._msg_seq is not None:
                self._msg_seq = None
                self._send_fail()
        if self._deadline is None or now < self._deadline:
            return ev
        self._deadline = None
        cfg = self.config
        if self._state is _Tx.RESYNC:
            self._emit(CodePacket(CpType.RESYNC))
            self._deadline = now + cfg.ack_timeout
            self.counters.resyncs += 1
            return ev
        cur = self._cur
        if cur is None:
            return ev
        if self._state is _Tx.REJECTED:
            if now - cur.first_req >= cfg.reject_timeout:
                ev.append(self._give_up("buffer rejected until timeout", now))
            else:
                self._request_buffer(now)
            return ev
        cur.attempts += 1
        if cur.attempts >= cfg.max_attempts:
            ev.append(self._give_up("no acknowledgement", now))
            return ev
        self.counters.retransmits += 1
        if self._state is _Tx.WAIT_BUFFER:
            self._request_buffer(now)
        else:
            self._transmit(now)
        return ev

    def receive_bytes(self, data: bytes, now: float) -> list[LinkEvent]:
        """Feed bytes read from the serial port; return the resulting events."""
        ev: list[LinkEvent] = []
        self._last_rx = now
        for item in self._dec.feed(data):
            if isinstance(item, CodePacket):
                self.counters.rx_code_packets += 1
                if self._msg_seq is not None:
                    # a code packet where the data message should be: the transfer broke
                    self._msg_seq = None
                    self._send_fail()
                self._on_code(item, now, ev)
            elif isinstance(item, NiMessage):
                self._on_message(item, ev)
            else:
                self.counters.framing_errors += 1
                ev.append(FramingError(item))
                if self._msg_seq is not None and item.reason != "noise":
                    self._msg_seq = None
                    self._send_fail()
        self._kick(now)
        if self._ack_owed:
            self._emit(CodePacket(CpType.NULL))
        return ev

    # -- internals ----------------------------------------------------------------------
    def _dec_has_partial(self) -> bool:
        return bool(self._dec._buf.pending()) or self._dec._expect_msg

    def _emit(self, cp: CodePacket, data: bytes = b"", *, piggyback: bool = True) -> None:
        if piggyback and self._ack_owed:
            cp = CodePacket(cp.type, cp.seq, True, cp.param)
            self._ack_owed = False
        self._out += encode_code_packet(cp)
        self.counters.tx_code_packets += 1
        if data:
            self._out += data
            self.counters.tx_messages += 1

    def _send_fail(self) -> None:
        self.counters.fails_sent += 1
        self._emit(CodePacket(CpType.FAIL), piggyback=False)  # an ack bit must not ride on a failure

    def _kick(self, now: float) -> None:
        if self._state is not _Tx.IDLE or self._cur is not None or not self._queue:
            return
        cur = self._queue.popleft()
        self._cur = cur
        cur.seq = self._tx_seq
        cur.first_req = now
        if isinstance(cur.item, NiMessage) and self.role is Role.HOST:
            self._request_buffer(now)
        else:
            self._transmit(now)

    def _request_buffer(self, now: float) -> None:
        assert self._cur is not None
        self._emit(CodePacket(CpType.MSG_REQ, param=1 if self._cur.priority else 0))
        self._state = _Tx.WAIT_BUFFER
        self._deadline = now + self.config.ack_timeout

    def _transmit(self, now: float) -> None:
        cur = self._cur
        assert cur is not None
        if isinstance(cur.item, NiMessage):
            self._emit(CodePacket(CpType.MSG, seq=cur.seq, param=1), encode_data_message(cur.item))
        else:
            self._emit(CodePacket(CpType.NI_CMD_SHORT, seq=cur.seq, param=cur.item))
        self._state = _Tx.WAIT_ACK
        self._deadline = now + self.config.ack_timeout

    def _complete(self, now: float) -> None:
        self._cur = None
        self._state = _Tx.IDLE
        self._deadline = None
        self._tx_seq = _next_seq(self._tx_seq)

    def _give_up(self, reason: str, now: float) -> TransferFailed:
        cur = self._cur
        assert cur is not None
        self._cur = None
        self._state = _Tx.IDLE
        self._deadline = None
        self._tx_seq = _next_seq(self._tx_seq)
        return TransferFailed(cur.item, reason)

    def _accept_seq(self, seq: int) -> bool:
        """Duplicate filter: False for a repeated non-zero sequence number."""
        if seq != 0 and seq == self._rx_last:
            self.counters.duplicates += 1
            return False
        if seq != 0:
            self._rx_last = seq
        return True

    def _on_code(self, cp: CodePacket, now: float, ev: list[LinkEvent]) -> None:
        t = cp.type
        if cp.ack and self._state is _Tx.WAIT_ACK:
            self._complete(now)
        if t == CpType.NULL:
            if self._state is _Tx.RESYNC:
                self._state = _Tx.IDLE
                self._deadline = None
                ev.append(LinkResynced())
        elif t == CpType.FAIL:
            self.counters.fails_received += 1
            if self._state is _Tx.WAIT_ACK and self._cur is not None:
                self.counters.retransmits += 1
                self._cur.attempts += 1
                if self._cur.attempts >= self.config.max_attempts:
                    ev.append(self._give_up("peer reported failure", now))
                else:
                    self._transmit(now)
        elif t == CpType.MSG:
            self._msg_seq = cp.seq
        elif t == CpType.MSG_REQ:
            if self.role is Role.MIP:
                if self.reject_buffers > 0:
                    self.reject_buffers -= 1
                    self.counters.rejects_sent += 1
                    self._emit(CodePacket(CpType.MSG_REJECT))
                else:
                    self._emit(CodePacket(CpType.MSG_ACK))
        elif t == CpType.MSG_ACK:
            if self._state is _Tx.WAIT_BUFFER:
                self._transmit(now)
        elif t == CpType.MSG_REJECT:
            self.counters.rejects_received += 1
            if self._state is _Tx.WAIT_BUFFER:
                self._state = _Tx.REJECTED
                self._deadline = now + self.config.reject_retry
        elif t == CpType.NI_CMD_SHORT:
            self._ack_owed = cp.seq != 0 or self._ack_owed
            if self._accept_seq(cp.seq):
                ev.append(NiShortReceived(cp.param))
        elif t == CpType.RESYNC:
            if self.role is Role.MIP:
                self._rx_last = None
                self._tx_seq = 1
                if self._cur is not None:
                    self._queue.appendleft(self._cur)
                    self._cur = None
                    self._state = _Tx.IDLE
                    self._deadline = None
                self._emit(CodePacket(CpType.NULL))
                ev.append(PeerResynced())

    def _on_message(self, msg: NiMessage, ev: list[LinkEvent]) -> None:
        seq = self._msg_seq
        self._msg_seq = None
        if seq is None:
            return
        self.counters.rx_messages += 1
        self._ack_owed = True
        if self._accept_seq(seq):
            ev.append(NiReceived(msg))


class U61Endpoint:
    """MIP/U61 framing with the :class:`LlpEndpoint` interface (no seq/ack/code packets)."""

    def __init__(self, role: Role, config: LlpConfig | None = None) -> None:
        self.role = role
        self.config = config or LlpConfig()
        self.counters = LinkCounters()
        self._dec = U61Decoder()
        self._out = bytearray()
        self._last_rx: float | None = None
        self.busy = False

    def send_message(self, msg: NiMessage, *, priority: bool = False, now: float = 0.0) -> None:
        self._out += encode_u61(msg)
        self.counters.tx_messages += 1

    def send_short(self, cmd: int, *, now: float = 0.0) -> None:
        """U61 has no code packets: a one-byte command is a message without payload."""
        self.send_message(NiMessage(cmd), now=now)

    def send_idempotent_short(self, cmd: int) -> None:
        self.send_message(NiMessage(cmd))

    def resync(self, now: float) -> None:
        """No sequence state to reset; drop partial input."""
        self._dec.reset()

    def bytes_to_send(self, now: float | None = None) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_timer(self) -> float | None:
        if self._last_rx is not None and self._dec._buf.pending():
            return self._last_rx + self.config.inter_byte_timeout
        return None

    def handle_timer(self, now: float) -> list[LinkEvent]:
        t = self.next_timer()
        if t is None or now < t:
            return []
        self._dec.reset()
        self._last_rx = None
        self.counters.framing_errors += 1
        return [FramingError(FramingFault("inter-byte timeout"))]

    def receive_bytes(self, data: bytes, now: float) -> list[LinkEvent]:
        self._last_rx = now
        ev: list[LinkEvent] = []
        for item in self._dec.feed(data):
            if isinstance(item, NiMessage):
                self.counters.rx_messages += 1
                ev.append(NiReceived(item))
            else:
                self.counters.framing_errors += 1
                ev.append(FramingError(item))
        return ev


Endpoint = LlpEndpoint | U61Endpoint


def _endpoint(kind: MipKind, role: Role, config: LlpConfig | None) -> Endpoint:
    if kind == "u50":
        return LlpEndpoint(role, config)
    if kind == "u61":
        return U61Endpoint(role, config)
    raise LocalProtocolError(f"unknown MIP kind {kind!r} (expected 'u50' or 'u61')")


# -- host driver ---------------------------------------------------------------------------

#: Local NM Read Memory of the Unique ID: ExpMsgHdr(3) + ExplicitAddr(11) + 6D 01 00 00 06
#: (reference §2.1, "read my own Neuron ID").
_READ_UID = bytes((0x70, 0x00, 0x05)) + bytes(11) + bytes((0x6D, 0x01, 0x00, 0x00, 0x06))


def read_uid_request() -> NiMessage:
    """The local Read Memory request for the interface's Unique ID (cmd 0x22)."""
    return NiMessage(NiCmd.NETMGMT_TQ, _READ_UID)


class DriverState(Enum):
    WAIT_RESET = auto()
    RESYNC = auto()
    SET_L5 = auto()
    READ_UID = auto()
    SET_L2 = auto()
    PHASE = auto()
    STATUS = auto()
    READY = auto()
    FAILED = auto()


@dataclass(frozen=True, slots=True)
class DriverConfig:
    kind: MipKind = "u50"
    #: Send the PL phase-mode command (0x42) after layer 2 (PL interfaces).
    phase_mode: bool = False
    reset_wait: float = 0.8
    step_timeout: float = 1.0
    step_retries: int = 2
    llp: LlpConfig = field(default_factory=LlpConfig)


@dataclass(frozen=True, slots=True)
class DriverEvent:
    """Base class of :class:`MipDriver` events."""


@dataclass(frozen=True, slots=True)
class FrameReceived(DriverEvent):
    lpdu: bytes
    "LPDU including its CRC, as received."
    phase: int | None = None
    ssi: bytes | None = None


@dataclass(frozen=True, slots=True)
class DriverReady(DriverEvent):
    unique_id: bytes


@dataclass(frozen=True, slots=True)
class NiResetReceived(DriverEvent):
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class L2ReceiveError(DriverEvent):
    code: int


@dataclass(frozen=True, slots=True)
class DriverFailed(DriverEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class FrameSendFailed(DriverEvent):
    lpdu: bytes
    reason: str


class MipDriver:
    """Host-side driver for a Layer-2 MIP (U50 LLP or U61 framing), sans-I/O."""

    def __init__(self, config: DriverConfig | None = None) -> None:
        self.config = config or DriverConfig()
        self.link = _endpoint(self.config.kind, Role.HOST, self.config.llp)
        self.state = DriverState.WAIT_RESET
        self.unique_id: bytes | None = None
        self.status: bytes | None = None
        self.resets = 0
        self._deadline: float | None = None
        self._tries = 0
        self._reset_sent = False
        self._frames: deque[tuple[bytes, bool]] = deque()
        self._started = False

    # -- API ----------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Begin the start-up sequence: wait for the interface's niRESET."""
        self._started = True
        self.state = DriverState.WAIT_RESET
        self._deadline = now + self.config.reset_wait

    def send_frame(self, lpdu: bytes, now: float) -> None:
        """Queue an LPDU (with CRC) for transmission; sent once the driver is ready."""
        if len(lpdu) < 3:
            raise LocalProtocolError("an LPDU with CRC has at least 3 bytes")
        self._frames.append((bytes(lpdu), bool(lpdu[0] & 0x80)))
        self._flush(now)

    @property
    def ready(self) -> bool:
        return self.state is DriverState.READY

    def bytes_to_send(self, now: float | None = None) -> bytes:
        return self.link.bytes_to_send(now)

    def next_timer(self) -> float | None:
        ts = [t for t in (self._deadline, self.link.next_timer()) if t is not None]
        return min(ts) if ts else None

    def handle_timer(self, now: float) -> list[DriverEvent]:
        ev = self._link_events(self.link.handle_timer(now), now)
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            ev += self._step_timeout(now)
        return ev

    def receive_bytes(self, data: bytes, now: float) -> list[DriverEvent]:
        ev = self._link_events(self.link.receive_bytes(data, now), now)
        self._flush(now)
        return ev

    # -- start-up sequence ----------------------------------------------------------------
    def _enter(self, state: DriverState, now: float) -> None:
        self.state = state
        self._tries = 0
        self._do_step(now)

    def _do_step(self, now: float) -> None:
        u50 = self.config.kind == "u50"
        link = self.link
        s = self.state
        self._deadline = now + self.config.step_timeout
        if s is DriverState.RESYNC:
            if u50:
                link.resync(now)
            else:
                self._enter(DriverState.SET_L5, now)
        elif s is DriverState.SET_L5:
            if u50:
                link.send_short(NiCmd.SET_L5, now=now)
            else:
                link.send_message(NiMessage(NiCmd.LAYER, b"\x00"), now=now)
        elif s is DriverState.READ_UID:
            link.send_message(read_uid_request(), now=now)
        elif s is DriverState.SET_L2:
            if u50:
                link.send_short(NiCmd.SET_L2, now=now)
            else:
                link.send_message(NiMessage(NiCmd.LAYER, b"\x01"), now=now)
        elif s is DriverState.PHASE:
            link.send_short(NiCmd.PHASE_MODE | 2, now=now)
        elif s is DriverState.STATUS:
            link.send_short(NiCmd.STATUS, now=now)
        else:
            self._deadline = None

    def _after(self, state: DriverState, now: float) -> list[DriverEvent]:
        nxt = {
            DriverState.RESYNC: DriverState.SET_L5,
            DriverState.SET_L5: DriverState.READ_UID,
            DriverState.READ_UID: DriverState.SET_L2,
            DriverState.SET_L2: DriverState.PHASE if self.config.phase_mode else DriverState.STATUS,
            DriverState.PHASE: DriverState.STATUS,
            DriverState.STATUS: DriverState.READY,
        }[state]
        if self.unique_id is not None and nxt is DriverState.READ_UID:
            nxt = DriverState.SET_L2  # after a later niRESET the UID is already known
        self._enter(nxt, now)
        if nxt is DriverState.READY:
            self._flush(now)
            return [DriverReady(self.unique_id or b"")]
        return []

    def _step_timeout(self, now: float) -> list[DriverEvent]:
        s = self.state
        if s is DriverState.WAIT_RESET:
            if not self._reset_sent:
                self._reset_sent = True
                self.link.send_idempotent_short(NiCmd.RESET)
                self._deadline = now + self.config.reset_wait
                return []
            self._enter(DriverState.RESYNC, now)  # no reset report: carry on regardless
            return []
        if s in (DriverState.READY, DriverState.FAILED):
            return []
        self._tries += 1
        if self._tries > self.config.step_retries:
            self.state = DriverState.FAILED
            return [DriverFailed(f"no answer in state {s.name}")]
        self._do_step(now)
        return []

    # -- link events ----------------------------------------------------------------------
    def _link_events(self, events: list[LinkEvent], now: float) -> list[DriverEvent]:
        out: list[DriverEvent] = []
        for e in events:
            if isinstance(e, LinkResynced):
                if self.state is DriverState.RESYNC:
                    out += self._after(DriverState.RESYNC, now)
            elif isinstance(e, NiShortReceived):
                out += self._on_ni(e.cmd, b"", now)
            elif isinstance(e, NiReceived):
                out += self._on_ni(e.message.cmd, e.message.payload, now)
            elif isinstance(e, TransferFailed):
                if isinstance(e.item, NiMessage) and e.item.cmd in (NiCmd.COMM_TQ, NiCmd.COMM_TQ_P):
                    out.append(FrameSendFailed(e.item.payload, e.reason))
        return out

    def _on_ni(self, cmd: int, payload: bytes, now: float) -> list[DriverEvent]:
        s = self.state
        if cmd == NiCmd.RESET:
            self.resets += 1
            ev: list[DriverEvent] = [NiResetReceived(payload)]
            if self._started and s is not DriverState.FAILED:
                self._enter(DriverState.RESYNC, now)
            return ev
        if cmd in (NiCmd.L2_INCOMING, NiCmd.L2_MODE1, NiCmd.L2_MODE2):
            if cmd == NiCmd.L2_INCOMING:
                return [FrameReceived(payload)]
            if cmd == NiCmd.L2_MODE1 and len(payload) >= 2:
                return [FrameReceived(payload[1:], phase=payload[0])]
            if cmd == NiCmd.L2_MODE2 and len(payload) >= 4:
                return [FrameReceived(payload[1:-2], phase=payload[0], ssi=payload[-2:])]
            return [L2ReceiveError(cmd)]
        if 0x30 <= cmd <= 0x35:
            return [L2ReceiveError(cmd)]
        if s is DriverState.SET_L5 and (cmd == NiCmd.SET_L5 or (cmd == NiCmd.LAYER and payload[:1] == b"\x00")):
            return self._after(s, now)
        if s is DriverState.SET_L2 and (cmd == NiCmd.SET_L2 or (cmd == NiCmd.LAYER and payload[:1] == b"\x01")):
            return self._after(s, now)
        if s is DriverState.READ_UID and cmd == NiCmd.RESPONSE and len(payload) >= 21 and payload[14] == 0x2D:
            self.unique_id = bytes(payload[15:21])
            return self._after(s, now)
        if s is DriverState.PHASE and cmd == NiCmd.PHASE_MODE:
            return self._after(s, now)
        if s is DriverState.STATUS and cmd == NiCmd.STATUS:
            self.status = payload
            return self._after(s, now)
        return []

    def _flush(self, now: float) -> None:
        if self.state is not DriverState.READY:
            return
        while self._frames:
            lpdu, prio = self._frames.popleft()
            cmd = NiCmd.COMM_TQ_P if prio else NiCmd.COMM_TQ
            self.link.send_message(NiMessage(cmd, lpdu[:-2]), priority=prio, now=now)


# -- the transceiver side -------------------------------------------------------------------


class VirtualMip:
    """The Layer-2 MIP side (sans-I/O): NI commands in, LPDUs to the channel, uplink frames.

    ``frames_to_channel()`` returns LPDUs (with CRC) the host asked to transmit;
    ``frame_from_channel(lpdu)`` hands an LPDU heard on the channel to the host (in L2 mode;
    a bad CRC is reported as niERROR|CRC 0x31, as an L2 MIP does).
    """

    def __init__(
        self,
        kind: MipKind = "u50",
        *,
        unique_id: bytes = bytes.fromhex("04a1b2c3d4e5"),
        config: LlpConfig | None = None,
    ) -> None:
        if len(unique_id) != 6:
            raise LocalProtocolError("a Unique ID has 6 bytes")
        self.kind = kind
        self.unique_id = unique_id
        self.link = _endpoint(kind, Role.MIP, config)
        self.layer2 = False
        self.phase_mode = False
        self._to_channel: list[bytes] = []
        #: corrupt the checksum of the next N uplink data messages (tests)
        self.corrupt_uplink = 0
        self.status_bytes = bytes(4)

    def power_up(self) -> None:
        """Announce a reset to the host (niRESET uplink), as after power-up."""
        self.layer2 = False
        self.phase_mode = False
        self.link.send_idempotent_short(NiCmd.RESET)

    def bytes_to_send(self, now: float | None = None) -> bytes:
        out = self.link.bytes_to_send(now)
        if self.corrupt_uplink and out:
            # flip the last byte of the buffer (a data message checksum or a code packet sum)
            self.corrupt_uplink -= 1
            out = out[:-1] + bytes(((out[-1] ^ 0x01),))
        return out

    def next_timer(self) -> float | None:
        return self.link.next_timer()

    def handle_timer(self, now: float) -> None:
        self.link.handle_timer(now)

    def frames_to_channel(self) -> list[bytes]:
        out, self._to_channel = self._to_channel, []
        return out

    def frame_from_channel(self, lpdu: bytes, now: float, *, phase: int = 0, ssi: bytes = b"\x00\x00") -> None:
        if not self.layer2:
            return
        if not check_crc(lpdu):
            self.link.send_message(NiMessage(0x31), now=now)
        elif self.phase_mode:
            self.link.send_message(NiMessage(NiCmd.L2_MODE2, bytes((phase & 0xFF,)) + lpdu + ssi[:2]), now=now)
        else:
            self.link.send_message(NiMessage(NiCmd.L2_INCOMING, lpdu), now=now)

    def receive_bytes(self, data: bytes, now: float) -> None:
        for e in self.link.receive_bytes(data, now):
            if isinstance(e, NiShortReceived):
                self._on_ni(e.cmd, b"", True, now)
            elif isinstance(e, NiReceived):
                self._on_ni(e.message.cmd, e.message.payload, False, now)

    def _reply(self, cmd: int, payload: bytes, short: bool, now: float) -> None:
        if short and not payload and self.kind == "u50":
            self.link.send_short(cmd, now=now)
        else:
            self.link.send_message(NiMessage(cmd, payload), now=now)

    def _on_ni(self, cmd: int, payload: bytes, short: bool, now: float) -> None:
        if cmd in (NiCmd.COMM_TQ, NiCmd.COMM_TQ_P):
            if self.layer2 and payload:
                self._to_channel.append(append_crc(payload))
        elif cmd == NiCmd.SET_L5:
            self.layer2 = False
            self._reply(cmd, b"", short, now)
        elif cmd == NiCmd.SET_L2:
            self.layer2 = True
            self._reply(cmd, b"", short, now)
        elif cmd == NiCmd.LAYER:
            if payload:
                self.layer2 = payload[0] == 1
            self._reply(cmd, bytes((1 if self.layer2 else 0,)), False, now)
        elif cmd == NiCmd.STATUS:
            self._reply(cmd, self.status_bytes, False, now)
        elif cmd & 0xF0 == NiCmd.PHASE_MODE:
            self.phase_mode = (cmd & 0x0F) == 2
            self._reply(NiCmd.PHASE_MODE, b"", short, now)
        elif cmd == NiCmd.RESET:
            self.power_up()
        elif cmd == NiCmd.NETMGMT_TQ and payload[14:15] == b"\x6d" and len(payload) >= 19:
            mode, off, count = payload[15], (payload[16] << 8) | payload[17], payload[18]
            if mode == 1 and off == 0 and count <= 6:
                data = b"\x2d" + self.unique_id[:count]
            else:
                data = b"\x0d"  # NM failure code for Read Memory
            hdr = bytes((payload[0], 0x01, len(data)))
            self.link.send_message(NiMessage(NiCmd.RESPONSE, hdr + bytes(11) + data), now=now)
