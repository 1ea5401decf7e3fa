"""Serial-MIP link-layer (LLP) and MIP/U61 framing codecs (sans-I/O).

Reference notes ``lontalk.md`` §2.1-§2.3 (LonTalk Stack Developer's Guide pp.40-45;
EnOcean LON Stack DX ``lon_usb_link.c``):

* code packet (4 bytes, never escaped): ``7E | seq(7..5) ack(4) type(3..0) | param | sum``,
  the four bytes sum to 0 mod 256;
* data message (follows a ``CpMsg`` code packet): ``len | ni_cmd | payload | chk`` where
  ``len`` counts cmd + payload (``0xFF`` = a 2-byte big-endian length follows), ``chk`` is the
  negated 8-bit sum of every byte before it, and every ``0x7E`` in it, including ``len`` and
  ``chk``, is doubled; ``7E x`` with ``x != 7E`` aborts the message and starts a new packet;
* MIP/U61 (U20/U70 PL): ``7E 00`` then the same escaped data message, no code packets.

The strict decoders (:func:`decode_code_packet`, :func:`decode_data_message`,
:func:`decode_u61`) raise :class:`NiFrameError`; the incremental decoders
(:class:`LlpDecoder`, :class:`U61Decoder`) never raise on remote bytes: they return
:class:`FramingFault` items instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..errors import DecodeError, EncodeError
from .buffer import ReceiveBuffer

__all__ = [
    "FRAME_SYNC",
    "MAX_MESSAGE",
    "CodePacket",
    "CpType",
    "FramingFault",
    "LlpDecoder",
    "NiCmd",
    "NiFrameError",
    "NiMessage",
    "U61Decoder",
    "checksum",
    "decode_code_packet",
    "decode_data_message",
    "decode_u61",
    "encode_code_packet",
    "encode_data_message",
    "encode_u61",
]

FRAME_SYNC = 0x7E
#: Largest cmd+payload we accept (LON/IP payloads up to 1280 bytes use the extended length).
MAX_MESSAGE = 2048


class NiFrameError(DecodeError):
    """A Serial-MIP / U61 frame that does not parse."""


class CpType(IntEnum):
    """Code packet types (LTS-DG pp.42-43; DX ``LonUsbFrameCommand``)."""

    NULL = 0  #: ack-only / ping
    FAIL = 1  #: previous transfer was broken: resend
    MSG = 2  #: one data message follows (param = 1)
    MSG_REQ = 3  #: downlink buffer request (param = priority)
    MSG_ACK = 4  #: buffer available
    MSG_REJECT = 5  #: no buffer: retry
    NI_CMD_SHORT = 6  #: one-byte NI command in param
    RESYNC = 7  #: reset sequence numbers; the MIP answers CpNull


class NiCmd(IntEnum):
    """NI command bytes used by the transports (reference §2.1)."""

    COMM_TQ = 0x12  #: L2 mode: every outgoing LPDU (no CRC)
    COMM_TQ_P = 0x13  #: the same, priority
    COMM_NTQ = 0x14
    COMM_NTQ_P = 0x15
    RESPONSE = 0x16  #: L5 responses / local NM response
    INCOMING = 0x18
    L2_INCOMING = 0x1A  #: L2 LPDU with CRC
    L2_MODE1 = 0x1B  #: PL phase mode 1: phase byte + LPDU
    L2_MODE2 = 0x1C  #: PL phase mode 2: phase byte + LPDU + 2 SSI bytes
    NETMGMT_TQ = 0x22  #: local NM/ND to the interface itself
    ERROR = 0x30  #: 0x30-0x35 L2 receive errors
    PHASE_MODE = 0x40  #: 0x40|m, 0x42 = PL mode 2
    RESET = 0x50
    FLUSH_CANCEL = 0x60
    ONLINE = 0x70
    OFFLINE = 0x80
    SET_L5 = 0xD0  #: MIP/U50 only
    SET_L2 = 0xD1  #: MIP/U50 only
    STATUS = 0xE0
    LAYER = 0xE5  #: payload 0 = L5, 1 = L2 (U10/U20/U61)
    SERVICE = 0xE6


@dataclass(frozen=True, slots=True)
class CodePacket:
    """A 4-byte LLP code packet."""

    type: int
    seq: int = 0
    ack: bool = False
    param: int = 0


@dataclass(frozen=True, slots=True)
class NiMessage:
    """An NI data message: command byte plus payload (length and checksum implicit)."""

    cmd: int
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class FramingFault:
    """Bytes the incremental decoder had to throw away, and why."""

    reason: str
    data: bytes = b""


def checksum(data: bytes | bytearray) -> int:
    """The negated 8-bit sum that makes ``data + chk`` sum to zero."""
    return -sum(data) & 0xFF


def encode_code_packet(cp: CodePacket) -> bytes:
    """Build the 4 wire bytes of a code packet."""
    if not 0 <= cp.type <= 15:
        raise EncodeError("code packet type out of range", field="cp.type")
    if not 0 <= cp.seq <= 7:
        raise EncodeError("sequence number out of range", field="cp.seq")
    if not 0 <= cp.param <= 255:
        raise EncodeError("parameter out of range", field="cp.param")
    head = bytes((FRAME_SYNC, (cp.seq << 5) | (0x10 if cp.ack else 0) | cp.type, cp.param))
    return head + bytes((checksum(head),))


def decode_code_packet(data: bytes | bytearray | memoryview) -> CodePacket:
    """Parse exactly one 4-byte code packet."""
    b = bytes(data)
    if len(b) != 4:
        raise NiFrameError(f"need 4 bytes, got {len(b)}", field="code_packet", offset=0)
    if b[0] != FRAME_SYNC:
        raise NiFrameError(f"expected 0x7E, got 0x{b[0]:02X}", field="sync", offset=0)
    if sum(b) & 0xFF:
        raise NiFrameError("code packet checksum mismatch", field="cp.sum", offset=3)
    return CodePacket(type=b[1] & 0x0F, seq=b[1] >> 5, ack=bool(b[1] & 0x10), param=b[2])


def _escape(raw: bytes) -> bytes:
    return raw.replace(b"\x7e", b"\x7e\x7e")


def _message_raw(msg: NiMessage) -> bytes:
    if not 0 <= msg.cmd <= 255:
        raise EncodeError("NI command out of range", field="ni.cmd")
    n = 1 + len(msg.payload)
    if n > MAX_MESSAGE:
        raise EncodeError(f"message of {n} bytes exceeds {MAX_MESSAGE}", field="ni.len")
    head = bytes((n,)) if n < 0xFF else bytes((0xFF, n >> 8, n & 0xFF))
    raw = head + bytes((msg.cmd,)) + bytes(msg.payload)
    return raw + bytes((checksum(raw),))


def encode_data_message(msg: NiMessage) -> bytes:
    """``len cmd payload chk`` with 0x7E doubling (what follows a CpMsg code packet)."""
    return _escape(_message_raw(msg))


def encode_u61(msg: NiMessage) -> bytes:
    """A MIP/U61 frame: ``7E 00`` + the escaped data message."""
    return b"\x7e\x00" + encode_data_message(msg)


class _Abort(Exception):
    """``7E x`` (x != 7E) inside a data message."""


_NEED = object()


def _read_escaped(buf: ReceiveBuffer) -> int | None:
    b = buf.read_byte()
    if b is None or b != FRAME_SYNC:
        return b
    nxt = buf.peek_byte()
    if nxt is None:
        return None
    if nxt == FRAME_SYNC:
        buf.read_byte()
        return FRAME_SYNC
    buf.unread(1)
    raise _Abort


def _parse_message(buf: ReceiveBuffer) -> NiMessage | FramingFault | None:
    """Parse one escaped data message from ``buf``; None = need more bytes.

    On a complete message or a fault the caller commits; on None it rolls back.
    """
    raw = bytearray()
    try:
        b = _read_escaped(buf)
        if b is None:
            return None
        raw.append(b)
        n = b
        if b == 0xFF:
            for _ in range(2):
                x = _read_escaped(buf)
                if x is None:
                    return None
                raw.append(x)
            n = (raw[1] << 8) | raw[2]
        if n == 0 or n > MAX_MESSAGE:
            return FramingFault("bad length", bytes(raw))
        for _ in range(n + 1):
            x = _read_escaped(buf)
            if x is None:
                return None
            raw.append(x)
    except _Abort:
        return FramingFault("message aborted by 0x7E", bytes(raw))
    if sum(raw) & 0xFF:
        return FramingFault("message checksum mismatch", bytes(raw))
    hl = len(raw) - n - 1
    return NiMessage(cmd=raw[hl], payload=bytes(raw[hl + 1 : -1]))


def decode_data_message(data: bytes | bytearray | memoryview) -> NiMessage:
    """Parse exactly one escaped data message (``len cmd payload chk``)."""
    buf = ReceiveBuffer()
    buf.feed(bytes(data))
    r = _parse_message(buf)
    if r is None:
        raise NiFrameError("truncated data message", field="ni.message", offset=len(data))
    if isinstance(r, FramingFault):
        field = "ni.chk" if "checksum" in r.reason else "ni.len" if "length" in r.reason else "ni.escape"
        raise NiFrameError(r.reason, field=field, offset=len(r.data))
    if len(buf):
        raise NiFrameError("trailing bytes after data message", field="ni.message",
                           offset=len(data) - len(buf))
    return r


def decode_u61(data: bytes | bytearray | memoryview) -> NiMessage:
    """Parse exactly one MIP/U61 frame (``7E 00`` + escaped data message)."""
    b = bytes(data)
    if len(b) < 2:
        raise NiFrameError("truncated U61 frame", field="u61.sync", offset=len(b))
    if b[0] != FRAME_SYNC or b[1] != 0x00:
        raise NiFrameError("U61 frame must start 7E 00", field="u61.sync", offset=0)
    try:
        return decode_data_message(b[2:])
    except NiFrameError as exc:
        raise NiFrameError(str(exc).split(": ", 1)[-1], field=exc.field,
                           offset=None if exc.offset is None else exc.offset + 2) from None


LlpItem = CodePacket | NiMessage | FramingFault


class LlpDecoder:
    """Incremental Serial-MIP LLP receiver: bytes in, code packets / messages / faults out."""

    def __init__(self) -> None:
        self._buf = ReceiveBuffer()
        self._expect_msg = False

    def reset(self) -> None:
        """Drop buffered bytes and expect a code packet next."""
        self._buf.clear()
        self._expect_msg = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[LlpItem]:
        """Add received bytes and return every complete item."""
        self._buf.feed(data)
        out: list[LlpItem] = []
        noise = bytearray()
        buf = self._buf
        while True:
            if self._expect_msg:
                r = _parse_message(buf)
                if r is None:
                    buf.rollback()
                    break
                buf.commit()
                self._expect_msg = False
                out.append(r)
                continue
            b = buf.read_byte()
            if b is None:
                buf.commit()
                break
            if b != FRAME_SYNC:
                noise.append(b)
                buf.commit()
                continue
            if noise:
                out.append(FramingFault("noise", bytes(noise)))
                noise.clear()
            rest = buf.read(3)
            if rest is None:
                buf.rollback()
                break
            if (FRAME_SYNC + sum(rest)) & 0xFF:
                out.append(FramingFault("code packet checksum mismatch", bytes((FRAME_SYNC,)) + rest))
                buf.rollback()
                buf.read_byte()  # drop only the sync byte and hunt again
                buf.commit()
                continue
            buf.commit()
            cp = CodePacket(type=rest[0] & 0x0F, seq=rest[0] >> 5, ack=bool(rest[0] & 0x10),
                            param=rest[1])
            out.append(cp)
            if cp.type == CpType.MSG:
                self._expect_msg = True
        if noise:
            out.append(FramingFault("noise", bytes(noise)))
        return out


class U61Decoder:
    """Incremental MIP/U61 receiver: bytes in, messages / faults out."""

    def __init__(self) -> None:
        self._buf = ReceiveBuffer()

    def reset(self) -> None:
        """Drop buffered bytes."""
        self._buf.clear()

    def feed(self, data: bytes | bytearray | memoryview) -> list[NiMessage | FramingFault]:
        """Add received bytes and return every complete item."""
        self._buf.feed(data)
        out: list[NiMessage | FramingFault] = []
        noise = bytearray()
        buf = self._buf
        while True:
            b = buf.read_byte()
            if b is None:
                buf.commit()
                break
            if b != FRAME_SYNC:
                noise.append(b)
                buf.commit()
                continue
            nxt = buf.read_byte()
            if nxt is None:
                buf.rollback()
                break
            if nxt != 0x00:
                # not a frame start: drop the sync byte, re-examine the next one
                noise.append(b)
                buf.rollback()
                buf.read_byte()
                buf.commit()
                continue
            if noise:
                out.append(FramingFault("noise", bytes(noise)))
                noise.clear()
            r = _parse_message(buf)
            if r is None:
                buf.rollback()
                break
            buf.commit()
            out.append(r)
        if noise:
            out.append(FramingFault("noise", bytes(noise)))
        return out
