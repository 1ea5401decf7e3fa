"""ISO/IEC 14908-1 transport/session/authentication layers as a sans-I/O object.

Theory of operation (reference ``lontalk.md`` §1.2-§1.4, §4, §5; EnOcean LON Stack DX
``lcs_tsa.c`` read for behaviour only):

* :meth:`LonTransactions.request` queues a message and returns a local transaction id
  (``tid``).  One transaction per priority is on the wire at a time (LonTalk keeps one
  transmit record per priority); each gets the next 4-bit transaction number of its priority.
* ACKD / REQUEST: sent, then re-sent every ``tx_timer`` up to ``retries`` times (numbers:
  0 for the first transaction after a reset, then 1..15 cyclically); the last ``alt_path_retries``
  transmissions (the first one too if there are fewer retries) set the L2 alt_path bit (the PL secondary carrier); ACKs,
  RESPONSEs, challenges and replies travel on the path of the frame they answer.  Group
  messages collect member acks/responses (address format 2b); every retry is a REM/MSG
  whose M_List marks the members that answered (LSB-first bitmap, empty when none has)
  when the list fits in 2 bytes, otherwise a REMINDER followed by the message.  A
  broadcast completes on its first answer, or collects up to
  ``BroadcastDest.max_responses`` answers until the transmit timer runs out (Query ID to
  many nodes).  Every new group/broadcast answer restarts the transmit timer.
  delta_backlog: 1 for unicast, the outstanding acks/responses for groups, 15 for
  broadcast, 0 for REMINDER/ACK/AuthPDU.
* UNACKD_RPT: sent ``1 + repeats`` times, ``repeat_timer`` apart; delta_backlog is the
  number of repeats left on the first copy, 0 on the repeats.  UNACKD: a bare APDU.
* Every message ends in exactly one :class:`MessageCompleted` or :class:`MessageFailed`.
* Receive records (source, priority, group) hold the transaction number and APDU of the
  newest ``records_per_source`` transactions for ``receive_timer`` seconds: a duplicate
  (same number and APDU) is not delivered again, but its ACK or stored RESPONSE is re-sent;
  reminders re-ack when our member bit is clear.  A number-0 message from a source whose
  newest record is another transaction is a restarted sender: that source's records are
  dropped and the message is new (a retry of the number-0 transaction stays a duplicate).
* Authentication: a message with the auth bit set is held, a CHALLENGE (8 random bytes) is
  returned; the sender answers with :func:`auth_transform` of the challenge, the APDU and
  its 48-bit key (OMA: 96-bit key, the OMA destination address prefixed).  Only a matching
  reply delivers and acknowledges the message.

Time is passed in as ``now``; :meth:`next_timer` gives the next deadline and
:meth:`handle_timer` may be called early or twice.  Bad frames never raise: they become
:class:`FrameDropped`.  Caller misuse raises :class:`~dlms14908.errors.LocalProtocolError`.

Hot path: frames go out as bytes assembled from a cached address + domain header per
destination (checked once by the validating frame constructors); a received format-2a
TPDU/SPDU without authentication bit or M_List is read straight from its bytes (CRC by
residue, header meaning cached per address + domain bytes), everything else through
:func:`~dlms14908.lon.frame.decode_frame`.  Both paths end in the same record keeping
(``tests/test_lon_fast.py`` holds them equal).  The caches are per instance, bounded, and
derive only from the frozen config and the bytes of their keys.
"""

from __future__ import annotations

import os
import struct
from binascii import crc_hqx
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CrcError, DecodeError, EncodeError, LocalProtocolError
from .crc import CRC_RESIDUE, append_crc
from .events import _MC as _MC_SET
from .events import _MR as _MR_SET
from .events import _RH as _RH_SET
from .events import _RR as _RR_SET
from .events import (
    AckReceived,
    AuthenticationRejected,
    FrameDropped,
    LonEvent,
    MessageCompleted,
    MessageFailed,
    MessageReceived,
    ReceiveHandle,
    ResponseReceived,
    Service,
)
from .frame import (
    Address,
    AnyApdu,
    Apdu,
    AuthPdu,
    AuthType,
    BroadcastAddress,
    Frame,
    GroupAckAddress,
    GroupAddress,
    NeuronIdAddress,
    Npdu,
    NvApdu,
    Spdu,
    SubnetNodeAddress,
    Tpdu,
    _set_apdu_code,
    _set_apdu_data,
    _set_apdu_raw,
    decode_apdu,
    decode_frame,
    encode_frame,
)

__all__ = [
    "BroadcastDest",
    "Destination",
    "GroupDest",
    "LonConfig",
    "LonTransactions",
    "NeuronIdDest",
    "NodeDest",
    "TransactionCounters",
    "auth_transform",
    "m_list_encode",
    "m_list_members",
    "oma_address",
]

AUTH_KEY_LENGTH = 6
OMA_KEY_LENGTH = 12
#: DX ``ALT_PATH_COUNT``: the last two tries use the alternate path (reference §4).
ALT_PATH_RETRIES = 2


# --------------------------------------------------------------------------- destinations


@dataclass(frozen=True, slots=True)
class NodeDest:
    """Unicast to subnet/node (address format 2a)."""

    subnet: int
    node: int


@dataclass(frozen=True, slots=True)
class GroupDest:
    """Multicast to a group of ``size`` members numbered 0..size-1 (format 1).

    ACKD/REQUEST wait for every member except ourselves (when we are a member)."""

    group: int
    size: int = 0


@dataclass(frozen=True, slots=True)
class BroadcastDest:
    """Broadcast to a subnet (0 = domain-wide, format 0).

    With ``max_responses`` 1 (the default) ACKD/REQUEST complete on the first ack/response,
    as plain broadcast does in lon-stack-dx (``SNReceiveResponse``/``TPReceiveAck``) and
    lon-stack-ex (one expected ack).  With ``max_responses`` N > 1 (the "max responses"
    nibble of the broadcast send address: DX ``IzotSendBroadcast``, EX address type
    ``LT_AT_BROADCAST_GROUP``) every distinct ack/response is reported until N have arrived,
    or until the transmit timer runs out after at least one (each answer restarts it): the
    message then completes without further retries.  With no answer after all retries it
    fails.  This is how one Query ID collects several nodes."""

    subnet: int = 0
    max_responses: int = 1


@dataclass(frozen=True, slots=True)
class NeuronIdDest:
    """Unique node ID addressing (format 3); ``subnet`` 0 passes all routers."""

    neuron_id: bytes
    subnet: int = 0


Destination = NodeDest | GroupDest | BroadcastDest | NeuronIdDest


# --------------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True)
class LonConfig:
    """This node's address, keys and transaction timers (seconds)."""

    subnet: int
    node: int
    domain: bytes = b""
    neuron_id: bytes | None = None
    groups: dict[int, int] = field(default_factory=dict)
    "group -> our member number in it"
    retries: int = 3
    tx_timer: float = 0.768
    repeat_timer: float = 0.384
    repeats: int = 3
    receive_timer: float = 8.0
    alt_path_retries: int = ALT_PATH_RETRIES
    auth_key: bytes | None = field(default=None, repr=False)
    "48-bit LonTalk authentication key of our domain"
    oma_key: bytes | None = field(default=None, repr=False)
    "96-bit OMA key (the two 48-bit domain keys concatenated)"
    oma: bool = False
    "challenge incoming authenticated messages with CHALLENGE_OMA"
    max_receive_records: int = 64
    records_per_source: int = 8
    "receive records kept per source and priority (the newest transactions)"

    def __post_init__(self) -> None:
        if not 0 <= self.subnet <= 255 or not 0 <= self.node <= 127:
            raise LocalProtocolError("subnet must be 0..255 and node 0..127")
        if len(self.domain) not in (0, 1, 3, 6):
            raise LocalProtocolError("domain ID must be 0, 1, 3 or 6 bytes")
        if self.neuron_id is not None and len(self.neuron_id) != 6:
            raise LocalProtocolError("neuron_id must be 6 bytes")
        if self.auth_key is not None and len(self.auth_key) != AUTH_KEY_LENGTH:
            raise LocalProtocolError("auth_key must be 6 bytes")
        if self.oma_key is not None and len(self.oma_key) != OMA_KEY_LENGTH:
            raise LocalProtocolError("oma_key must be 12 bytes")
        if not 0 <= self.retries <= 15 or not 0 <= self.repeats <= 15:
            raise LocalProtocolError("retries and repeats must be 0..15")
        if self.tx_timer <= 0 or self.repeat_timer <= 0 or self.receive_timer <= 0:
            raise LocalProtocolError("timers must be positive")
        for g, m in self.groups.items():
            if not 0 <= g <= 255 or not 0 <= m <= 63:
                raise LocalProtocolError("group 0..255, member 0..63")
        if not 1 <= self.records_per_source <= 14:
            # more than 14 would outlive a wrap of the 15 transaction numbers
            raise LocalProtocolError("records_per_source must be 1..14")


@dataclass(slots=True)
class TransactionCounters:
    """Transport/session statistics, named after the LonTalk stack statistics.

    :meth:`class132` / :meth:`class133` map them onto the attributes of COSEM classes 132
    (ISO/IEC 14908 protocol status) and 133 (diagnostic); the mapping is [I]
    (``osgp-62056-8-8.md`` §4.2)."""

    tx_frames: int = 0
    retransmissions: int = 0
    rx_frames: int = 0
    crc_errors: int = 0
    rx_dropped: int = 0
    "frames that did not decode (CRC errors included)"
    l2_received: int = 0
    "frames with a valid CRC"
    l3_received: int = 0
    "frames addressed to this node"
    rx_not_for_us: int = 0
    delivered: int = 0
    "messages handed to the application"
    authenticated: int = 0
    "messages delivered after a successful challenge"
    duplicates: int = 0
    late_acks: int = 0
    completed: int = 0
    failed: int = 0
    receive_records_full: int = 0
    "a receive record had to be recycled before its receive timer ran out"
    challenges_sent: int = 0
    auth_failures: int = 0

    def class132(self) -> dict[str, int]:
        """Values for the class 132 counters (attributes 2..11)."""
        return {
            "transmission_errors": self.crc_errors,
            "transmit_tx_failure": self.failed,
            "transmit_tx_retries": self.retransmissions,
            "receive_tx_full": self.receive_records_full,
            "lost_messages": 0,  # no application buffer limit in this stack
            "missed_messages": 0,  # no network buffer limit in this stack
            "layer2_received": self.l2_received,
            "layer3_received": self.l3_received,
            "messages_received": self.delivered,
            "messages_validated": self.authenticated,
        }

    def class133(self) -> dict[str, int]:
        """Values for the class 133 counters this layer knows (attributes 5..8)."""
        return {
            "no_receive_buffer": self.receive_records_full,
            "transmit_no_data": 0,
            "backlog_overflows": 0,
            "late_ack": self.late_acks,
        }


# --------------------------------------------------------------------------- authentication


def _rotl(n: int) -> int:
    return ((n << 1) | (n >> 7)) & 0xFF


def _rotr(n: int) -> int:
    return ((n >> 1) | (n << 7)) & 0xFF


def auth_transform(challenge: bytes, message: bytes, key: bytes) -> bytes:
    """The LonTalk authentication transform of ``message`` under ``key``.

    Starts from the 8 challenge bytes and consumes the message from its last byte backwards
    (zero once exhausted) while cycling over the key bits: 6 key bytes per pass for the
    48-bit key, 18 (bytes 0-11 then 0-5) for the 96-bit OMA key.  For OMA, ``message`` must
    already carry the 9-byte :func:`oma_address` in front of the APDU.  Described after the
    ``Encrypt`` routine of EnOcean LON Stack DX ``lcs_tsa.c`` (reference ``lontalk.md`` §1.4);
    lon-stack-ex ``LtTx::encrypt`` describes the same steps.  With a zero challenge, the OMA
    key and the message byte-reversed it is the OSGP OMA digest, which gives a public test
    vector (``vectors/lon/auth_transform.json``).
    """
    if len(challenge) != 8:
        raise LocalProtocolError("challenge must be 8 bytes")
    if len(key) == AUTH_KEY_LENGTH:
        rounds = AUTH_KEY_LENGTH
    elif len(key) == OMA_KEY_LENGTH:
        rounds = OMA_KEY_LENGTH + OMA_KEY_LENGTH // 2
    else:
        raise LocalProtocolError("key must be 6 (classic) or 12 (OMA) bytes")
    state = bytearray(challenge)
    left = len(message)
    klen = len(key)
    while left > 0:
        for i in range(rounds):
            kbyte = key[i % klen]
            for j in range(7, -1, -1):
                if left > 0:
                    left -= 1
                    m = message[left]
                else:
                    m = 0
                n = ~(state[j] + j) & 0xFF
                nxt = state[(j + 1) & 7]
                if (kbyte >> (7 - j)) & 1:
                    state[j] = (nxt + m + _rotl(n)) & 0xFF
                else:
                    state[j] = (nxt + m - _rotr(n)) & 0xFF
    return bytes(state)


def oma_address(
    *,
    neuron_id: bytes | None = None,
    domain: bytes = b"",
    subnet: int | None = None,
    node: int | None = None,
    group: int | None = None,
    broadcast: bool = False,
) -> bytes:
    """The 9-byte OMA destination block: unused bytes are 0xFF.

    Physical (Neuron ID): ``NID(6) FF FF FF``.  Logical: ``domain(6, zero padded [I])
    domain_len(1) subnet node(selector bit 0)`` or ``... domain_len group FF``.  Broadcast:
    nine 0xFF (lon-stack-ex ``LtTx::getOmaDestData`` fills no field for it)."""
    if broadcast:
        return b"\xff" * 9
    if neuron_id is not None:
        return bytes(neuron_id) + b"\xff\xff\xff"
    head = bytes(domain).ljust(6, b"\x00") + bytes((len(domain),))
    if group is not None:
        return head + bytes((group, 0xFF))
    if subnet is None or node is None:
        raise LocalProtocolError("OMA address needs a Neuron ID, a group or subnet/node")
    return head + bytes((subnet, node & 0x7F))


def m_list_encode(members: set[int] | frozenset[int]) -> bytes:
    """M_List bitmap: member i at byte i//8, bit i%8 (LSB first), minimal length (>= 1)."""
    n = (max(members) // 8 + 1) if members else 1
    out = bytearray(n)
    for m in members:
        out[m // 8] |= 1 << (m % 8)
    return bytes(out)


def m_list_members(m_list: bytes) -> frozenset[int]:
    """Members marked in an M_List."""
    return frozenset(i * 8 + b for i, byte in enumerate(m_list) for b in range(8) if byte >> b & 1)


# --------------------------------------------------------------------------- records


# --------------------------------------------------------------------------- records


_NO_ANSWERS: frozenset[Any] = frozenset()


@dataclass(slots=True)
class _Tx:
    tid: int
    service: Service
    dest: Destination
    apdu: bytes  # the encoded APDU
    head: tuple[int, bytes]  # (address format << 2 | domain code, address + domain bytes)
    priority: bool
    auth: bool
    retries: int
    tx_timer: float
    trans_no: int = 0
    sent: int = 0
    deadline: float | None = None
    last_retry_extra: float = 0.0  # added to the transmit timer after the last try
    expected: frozenset[int] = frozenset()
    # the members / nodes that answered a group or broadcast message: made by request() for
    # those only (a unicast message never looks at them)
    answered: set[int] = _NO_ANSWERS  # type: ignore[assignment]
    responders: set[tuple[object, ...]] = _NO_ANSWERS  # type: ignore[assignment]
    done: bool = False


@dataclass(slots=True)
class _Rx:
    trans_no: int
    apdu_bytes: bytes
    time: float
    service: Service
    src: Address  # the address of the frame that created the record
    domain: bytes
    prio: bool
    pre: tuple[object, ...]  # the record key without the transaction number: the source
    delivered: bool = False
    reply: bytes | None = None  # the ACK/RESPONSE NPDU, re-sent for duplicates
    alt: bool = False  # alt_path of the latest copy received: replies follow it
    challenge: bytes | None = None
    oma: bool = False
    pending: AnyApdu | None = None  # APDU held while authenticating
    seq: int = 0  # creation order
    done: bool = False  # the sender has our reply (its M_List says so): no more re-sends


_CRC = struct.Struct(">H")  # the LPDU's CRC-16, high byte first (lon.crc.append_crc)

#: Bound of each per-instance cache (frame headers, reply headers, destination headers).
_CACHE_MAX = 64
_DOMAIN_CODE = {0: 0, 1: 1, 3: 2, 6: 3}
#: NPDU header byte -> end of its address + domain in the LPDU when the frame can take the
#: fast receive path (version 0, TPDU/SPDU, address format 2), else 0.
_FAST_HDR_END = tuple(
    6 + (0, 1, 3, 6)[h & 3] if h >> 6 == 0 and (h >> 4) & 3 in (0, 1) and (h >> 2) & 3 == 2 else 0
    for h in range(256)
)
_MISS: Any = object()
_new = object.__new__
# the services as module constants: an Enum class attribute is a slow metaclass lookup
_S_REQUEST, _S_ACKD, _S_UNACKD_RPT, _S_UNACKD = Service.REQUEST, Service.ACKD, Service.UNACKD_RPT, Service.UNACKD
#: what a cached format-2a address + domain means here: (for us, address, domain, record key
#: prefix at normal priority, at high priority)
_Head = tuple[bool, SubnetNodeAddress, bytes, tuple[object, ...], tuple[object, ...]]
# what the fast path makes of (SPDU bit << 8 | TPDU/SPDU header byte): 0 = general path (auth
# bit, M_List types, undefined types)
_MESSAGE, _ACK, _RESPONSE, _REQUEST = 1, 2, 3, 4
_FAST_PDU = tuple(
    0 if t & 0x80 else (
        {0: _REQUEST, 2: _RESPONSE}.get(t >> 4, 0) if i >> 8 else {0: _MESSAGE, 1: _MESSAGE, 2: _ACK}.get(t >> 4, 0)
    )
    for i in range(512)
    for t in (i & 0xFF,)
)


def _encoded_apdu(apdu: object) -> bytes | None:
    """The APDU's bytes (checked like :func:`decode_apdu`), or None if ``apdu`` is no APDU."""
    if type(apdu) is bytes:
        raw = apdu
    elif isinstance(apdu, (Apdu, NvApdu)):
        return apdu.encode()
    elif isinstance(apdu, (bytes, bytearray, memoryview)):
        raw = bytes(apdu)
    else:
        return None
    if not raw or (raw[0] & 0x80 and len(raw) < 2):
        try:
            decode_apdu(raw)
        except DecodeError as exc:
            raise LocalProtocolError(f"invalid APDU: {exc}") from None
    return raw


def _source_prefix(a: Address, prio: bool, domain: bytes) -> tuple[object, ...]:
    """A receive record key without its transaction number: (source subnet, source node,
    priority, group, address format + encoded address, domain)."""
    group = a.group if isinstance(a, GroupAddress) else None
    return (a.src_subnet, a.src_node, prio, group, bytes((int(a.format),)) + a.encode(), domain)


class LonTransactions:
    """The LonTalk transaction layer of one node (sans-I/O)."""

    def __init__(self, config: LonConfig, *, rng: Callable[[int], bytes] = os.urandom) -> None:
        self.config = config
        self.counters = TransactionCounters()
        self._rng = rng
        self._outbox: list[bytes] = []
        self._next_tid = 1
        self._trans_no = {False: -1, True: -1}  # the first transaction after a reset uses 0
        self._active: dict[bool, _Tx | None] = {False: None, True: None}
        self._queue: dict[bool, deque[_Tx]] = {False: deque(), True: deque()}
        self._done_soon: list[_Tx] = []  # UNACKD messages: completion reported at the next timer
        self._rx: dict[tuple[object, ...], _Rx] = {}
        # the same records by source (key[:6]), in creation order: newest last
        self._rx_src: dict[tuple[object, ...], dict[tuple[object, ...], _Rx]] = {}
        self._rx_seq = 0
        self._timer: float | None = None
        self._timer_dirty = False
        # bounded caches, all derived from the (frozen) config and the bytes of their keys
        self._heads: dict[bytes, _Head | None] = {}
        self._reply_heads: dict[tuple[bytes, bytes], tuple[int, bytes]] = {}
        self._dest_heads: dict[tuple[int, int], tuple[int, bytes]] = {}

    # ------------------------------------------------------------------ API
    def request(
        self,
        dest: Destination,
        apdu: AnyApdu | bytes,
        *,
        service: Service = Service.ACKD,
        now: float,
        priority: bool = False,
        auth: bool = False,
        retries: int | None = None,
        tx_timer: float | None = None,
        last_retry_extra: float = 0.0,
    ) -> int:
        """Queue a message; return its local transaction id (``tid``).

        ``last_retry_extra`` (seconds) lengthens the wait after the last try only: Annex E
        per-hop timeout growth, where a repeater's last retry waits for the hops still ahead."""
        # an application-message APDU as bytes (the common case) needs no check beyond its code
        raw = apdu if type(apdu) is bytes and apdu and apdu[0] < 0x80 else _encoded_apdu(apdu)
        if raw is None:
            raise LocalProtocolError("apdu must be an Apdu, NvApdu or bytes")
        dt = type(dest)
        if dt is not NodeDest and not isinstance(dest, (NodeDest, GroupDest, BroadcastDest, NeuronIdDest)):
            raise LocalProtocolError("unknown destination type")
        if auth:
            if service not in (_S_ACKD, _S_REQUEST):
                raise LocalProtocolError("authentication needs ACKD or REQUEST service")
            if isinstance(dest, BroadcastDest):
                raise LocalProtocolError("authenticated broadcast is not supported")
        if dt is not NodeDest:
            if isinstance(dest, GroupDest) and service in (_S_ACKD, _S_REQUEST) and dest.size <= 0:
                raise LocalProtocolError("ACKD/REQUEST to a group needs its size")
            if isinstance(dest, BroadcastDest) and not 1 <= dest.max_responses <= 255:
                raise LocalProtocolError("max_responses must be 1..255")
        head = self._dest_heads.get((dest.subnet, dest.node)) if dt is NodeDest else None  # type: ignore[union-attr]
        if head is None:
            head = self._dest_head(dest)  # EncodeError for an address out of range
        tid = self._next_tid
        self._next_tid += 1
        cfg = self.config
        rpt = service is _S_UNACKD_RPT
        tx = _Tx(
            tid,
            service,
            dest,
            raw,
            head,
            priority,
            auth,
            cfg.repeats if rpt else cfg.retries,
            cfg.repeat_timer if rpt else cfg.tx_timer,
        )
        if retries is not None:
            if not 0 <= retries <= 15:
                raise LocalProtocolError("retries must be 0..15")
            tx.retries = retries
        if tx_timer is not None:
            if tx_timer <= 0:
                raise LocalProtocolError("tx_timer must be positive")
            tx.tx_timer = tx_timer
        if not last_retry_extra >= 0.0:
            raise LocalProtocolError("last_retry_extra must be >= 0")
        tx.last_retry_extra = last_retry_extra
        self._timer_dirty = True
        if dt is not NodeDest:
            tx.answered = set()
            tx.responders = set()
        if dt is not NodeDest and isinstance(dest, GroupDest):
            me = cfg.groups.get(dest.group)
            tx.expected = frozenset(m for m in range(dest.size) if m != me)
        if service is _S_UNACKD:
            self._send(self._message_frame(tx, first=True), now)
            tx.sent = 1
            tx.deadline = now
            self._done_soon.append(tx)
            return tid
        queue = self._queue[priority]
        if queue or self._active[priority] is not None:
            queue.append(tx)
            self._start_next(priority, now)
            return tid
        # _start(tx, now), inline: keep the two in step
        last = self._trans_no[priority]
        tx.trans_no = self._trans_no[priority] = trans_no = last % 15 + 1 if last >= 0 else 0
        self._active[priority] = tx
        alt = not rpt and tx.retries < cfg.alt_path_retries
        self.counters.tx_frames += 1
        fmt, addr = head
        if fmt & 0x0C == 0x08 and not alt and (service is _S_REQUEST or service is _S_ACKD):
            raw = b"".join((
                bytes(((0x81 if priority else 0x01), (0x10 if service is _S_REQUEST else 0x00) | fmt)),
                addr, bytes(((0x80 if auth else 0) | trans_no,)), raw,
            ))
            self._outbox.append(raw + _CRC.pack(crc_hqx(raw, 0xFFFF) ^ 0xFFFF))
        else:
            self._outbox.append(self._message_frame(tx, True, alt))
        tx.sent = 1
        tx.deadline = now + tx.tx_timer + last_retry_extra if tx.retries == 0 else now + tx.tx_timer
        return tid

    def respond(self, handle: ReceiveHandle, apdu: AnyApdu | bytes, *, now: float) -> None:
        """Send the RESPONSE to a received REQUEST (kept for duplicate requests)."""
        raw = apdu if type(apdu) is bytes and apdu and apdu[0] < 0x80 else _encoded_apdu(apdu)
        if raw is None:
            raise EncodeError(f"not an APDU: {type(apdu).__name__}", field="spdu.apdu")
        rec = self._rx.get(handle.key)
        if rec is None or rec.trans_no != handle.trans_no or rec.service is not _S_REQUEST:
            raise LocalProtocolError("no such request (expired or superseded)")
        if rec.reply is not None:
            raise LocalProtocolError("request already answered")
        # SPDU RESPONSE (type 2) with the request's transaction number
        tail = bytes((0x20 | handle.trans_no,)) + raw
        h = self._reply_heads.get((rec.pre[4], rec.domain))  # type: ignore[arg-type]
        if h is None:
            rec.reply = reply = self._reply_npdu(rec, 0x10, tail)
        else:  # _reply_npdu, inline
            rec.reply = reply = bytes((0x10 | h[0],)) + h[1] + tail
        # _send_reply, inline
        lpdu = bytes(((0x80 if rec.prio else 0) | (0x40 if rec.alt else 0),)) + reply
        self.counters.tx_frames += 1
        self._outbox.append(lpdu + _CRC.pack(crc_hqx(lpdu, 0xFFFF) ^ 0xFFFF))

    def frames_to_send(self, now: float | None = None) -> list[bytes]:
        """Encoded LPDUs (with CRC) to put on the channel, in order."""
        out, self._outbox = self._outbox, []
        return out

    def next_timer(self) -> float | None:
        """The earliest deadline, or None when idle."""
        if not self._timer_dirty:
            return self._timer
        best: float | None = None
        for tx in self._active.values():
            if tx is not None and tx.deadline is not None and (best is None or tx.deadline < best):
                best = tx.deadline
        for tx in self._done_soon:
            if tx.deadline is not None and (best is None or tx.deadline < best):
                best = tx.deadline
        self._timer = best
        self._timer_dirty = False
        return best

    def handle_timer(self, now: float) -> list[LonEvent]:
        """Retransmit, repeat or fail whatever is due at ``now``."""
        self._timer_dirty = True
        ev: list[LonEvent] = []
        if self._done_soon:
            keep = []
            for sent in self._done_soon:
                if sent.deadline is not None and now >= sent.deadline:
                    self.counters.completed += 1
                    ev.append(MessageCompleted(sent.tid, sent.service, sent.sent))
                else:
                    keep.append(sent)
            self._done_soon = keep
        for prio in (True, False):
            tx = self._active[prio]
            if tx is None or tx.deadline is None or now < tx.deadline:
                continue
            retry = tx.sent  # 1 = first retry
            if tx.service is _S_UNACKD_RPT:
                if retry <= tx.retries:
                    self._send(self._message_frame(tx, first=False), now)
                    tx.sent += 1
                    tx.deadline = self._after_send(tx, now)
                else:
                    ev.append(self._finish(tx, now, ok=True))
                continue
            if isinstance(tx.dest, BroadcastDest) and tx.responders:
                # DX XmitTimerExpiration: a broadcast with at least one answer is done
                ev.append(self._finish(tx, now, ok=True))
                continue
            if retry <= tx.retries:
                self.counters.retransmissions += 1
                alt = retry > tx.retries - self.config.alt_path_retries
                self._retransmit(tx, now, alt)
                tx.sent += 1
                tx.deadline = self._after_send(tx, now)
                continue
            ev.append(self._finish(tx, now, ok=False, reason="retries exhausted"))
        return ev

    def receive_frame(self, data: bytes, now: float) -> list[LonEvent]:
        """Process one received LPDU (with CRC)."""
        counters = self.counters
        counters.rx_frames += 1
        self._timer_dirty = True
        # Fast path: a format-2a TPDU/SPDU without authentication or M_List carrying an
        # application APDU (or an ACK), whose header bytes (address + domain) are cached.
        # Anything else, or anything malformed, takes the general path (decode_frame).
        if type(data) is bytes:
            n = len(data)
            p = _FAST_HDR_END[data[1]] if n >= 9 else 0
            if p and n >= p + 3 and crc_hqx(data, 0xFFFF) == CRC_RESIDUE:
                head = self._heads.get(data[1:p], _MISS)
                if head is _MISS:
                    head = self._head_entry(data, p, data[1:p])
                t = data[p]
                fast = _FAST_PDU[(data[1] & 0x10) << 4 | t] if head is not None else 0
                if fast and (n == p + 3 if fast == _ACK else n >= p + 4 and data[p + 1] < 0x80):
                    counters.l2_received += 1
                    for_us, a, domain, pre0, pre1 = head
                    if not for_us:
                        counters.rx_not_for_us += 1
                        return []
                    counters.l3_received += 1
                    l2 = data[0]
                    prio = l2 >= 0x80
                    if fast == _ACK:
                        return self._on_ack(prio, a, t & 0x0F, None, None, now)
                    raw = data[p + 1 : n - 2]
                    # wire_apdu(raw), inline
                    apdu = _new(Apdu)
                    _set_apdu_code(apdu, raw[0])
                    _set_apdu_data(apdu, raw[1:])
                    _set_apdu_raw(apdu, raw)
                    if fast == _RESPONSE:
                        tx = self._active[prio]
                        if (
                            tx is None
                            or tx.trans_no != t & 0x0F
                            or tx.service is not _S_REQUEST
                            or type(tx.dest) is not NodeDest
                            or a.src_subnet != tx.dest.subnet
                            or a.src_node != tx.dest.node
                        ):  # anything but the answer to our unicast REQUEST
                            return self._on_ack(prio, a, t & 0x0F, apdu, raw, now)
                        # _on_ack(prio, a, t & 0x0F, apdu, raw, now) of that answer, inline
                        first = _new(ResponseReceived)
                        r0, r1, r2 = _RR_SET
                        r0(first, tx.tid)
                        r1(first, a)
                        r2(first, apdu)
                        # _finish(tx, now, ok=True), inline
                        tx.done = True
                        tx.deadline = None
                        self._active[prio] = None
                        if self._queue[prio]:
                            self._start_next(prio, now)
                        counters.completed += 1
                        done_ev = _new(MessageCompleted)
                        c0, c1, c2 = _MC_SET
                        c0(done_ev, tx.tid)
                        c1(done_ev, tx.service)
                        c2(done_ev, tx.sent)
                        return [first, done_ev]
                    return self._on_message(
                        a, domain, pre1 if prio else pre0, prio, l2 & 0x40 != 0, fast == _REQUEST, t >> 4, t & 0x0F,
                        None, apdu, raw, False, now,
                    )
        return self._receive_general(data, now)

    @property
    def idle(self) -> bool:
        """Nothing is queued, on the wire or awaiting completion."""
        return (
            not self._done_soon
            and all(t is None for t in self._active.values())
            and not any(self._queue.values())
        )

    # ------------------------------------------------------------------ receiving
    def _head_entry(self, data: bytes, p: int, hk: bytes) -> _Head | None:
        """Cache what a format-2a address + domain means to this node (None: not 2a)."""
        entry: _Head | None = None
        if data[3] & 0x80 and data[5] & 0x80:  # source selector 1 (2a), destination bit 7 set
            a = SubnetNodeAddress(data[2], data[3] & 0x7F, data[4], data[5] & 0x7F)
            domain = data[6:p]
            akey = b"\x02" + data[2:6]
            entry = (
                self._for_us(a, domain),
                a,
                domain,
                (a.src_subnet, a.src_node, False, None, akey, domain),
                (a.src_subnet, a.src_node, True, None, akey, domain),
            )
        if len(self._heads) >= _CACHE_MAX:
            self._heads.clear()
        self._heads[hk] = entry
        return entry

    def _receive_general(self, data: bytes, now: float) -> list[LonEvent]:
        try:
            frame = decode_frame(data, crc=True)
        except DecodeError as exc:
            self.counters.rx_dropped += 1
            if isinstance(exc, CrcError):
                self.counters.crc_errors += 1
            else:
                self.counters.l2_received += 1
            return [FrameDropped(str(exc), bytes(data))]
        self.counters.l2_received += 1
        npdu = frame.npdu
        a, domain, prio = npdu.address, npdu.domain, frame.l2.priority
        if not self._for_us(a, domain):
            self.counters.rx_not_for_us += 1
            return []
        self.counters.l3_received += 1
        pdu = npdu.pdu
        if isinstance(pdu, (Tpdu, Spdu)):
            kind = int(pdu.type)
            apdu = pdu.apdu
            raw = None if apdu is None else apdu.encode()
            if kind == 2:  # TPDU ACK, SPDU RESPONSE
                return self._on_ack(prio, a, pdu.trans_no, apdu, raw, now)
            return self._on_message(
                a, domain, _source_prefix(a, prio, domain), prio, frame.l2.alt_path, isinstance(pdu, Spdu),
                kind, pdu.trans_no, pdu.m_list, apdu, raw, pdu.auth, now,
            )
        if isinstance(pdu, AuthPdu):
            if pdu.is_challenge:
                return self._on_challenge(frame, pdu, now)
            return self._on_reply(frame, pdu, now)
        # bare APDU: unacknowledged service, no transaction number
        self.counters.delivered += 1
        return [MessageReceived(a, pdu, _S_UNACKD, None, prio, domain)]

    def _for_us(self, a: Address, domain: bytes) -> bool:
        c = self.config
        if domain != c.domain and not (domain == b"" and isinstance(a, (NeuronIdAddress, BroadcastAddress))):
            return False
        if a.src_subnet == c.subnet and a.src_node == c.node and not isinstance(a, GroupAckAddress):
            return False  # our own transmission echoed back
        if isinstance(a, BroadcastAddress):
            return a.dst_subnet in (0, c.subnet)
        if isinstance(a, GroupAddress):
            return a.group in c.groups
        if isinstance(a, (SubnetNodeAddress, GroupAckAddress)):
            return a.dst_subnet == c.subnet and a.dst_node == c.node
        return c.neuron_id is not None and a.neuron_id == c.neuron_id

    def _reply_address(self, src: Address) -> Address:
        """Where ACKs/RESPONSEs/challenges to a message from ``src`` go (2b for groups)."""
        c = self.config
        if isinstance(src, GroupAddress):
            return GroupAckAddress(c.subnet, c.node, src.src_subnet, src.src_node, src.group, c.groups[src.group])
        return SubnetNodeAddress(c.subnet, c.node, src.src_subnet, src.src_node)

    def _reply_npdu(self, rec: _Rx, pdu_fmt: int, tail: bytes) -> bytes:
        """The NPDU of an ACK/RESPONSE to ``rec``'s sender: ``pdu_fmt`` (already shifted) +
        the reply address and domain + ``tail`` (TPDU/SPDU header and APDU)."""
        hk = (rec.pre[4], rec.domain)
        h = self._reply_heads.get(hk)  # type: ignore[arg-type]
        if h is None:
            ra = self._reply_address(rec.src)
            h = ((int(ra.format) << 2) | _DOMAIN_CODE[len(rec.domain)], ra.encode() + rec.domain)
            if not isinstance(rec.src, GroupAddress):  # the member number comes from config.groups
                if len(self._reply_heads) >= _CACHE_MAX:
                    self._reply_heads.clear()
                self._reply_heads[hk] = h  # type: ignore[index]
        return bytes((pdu_fmt | h[0],)) + h[1] + tail

    def _rx_remove(self, key: tuple[object, ...]) -> None:
        rec = self._rx.pop(key, None)
        if rec is not None:
            mine = self._rx_src[rec.pre]
            del mine[key]
            if not mine:
                del self._rx_src[rec.pre]

    def _on_message(
        self,
        a: Address,
        domain: bytes,
        pre: tuple[object, ...],
        prio: bool,
        alt: bool,
        is_request: bool,
        kind: int,
        trans_no: int,
        m_list: bytes | None,
        apdu: AnyApdu | None,
        apdu_bytes: bytes | None,
        auth: bool,
        now: float,
    ) -> list[LonEvent]:
        c = self.config
        service = _S_REQUEST if is_request else (_S_UNACKD_RPT if kind == 1 else _S_ACKD)
        # one record per (source, priority, group, address, domain, transaction number): a
        # late duplicate of an earlier transaction is still recognised after a newer one
        key = pre + (trans_no,)
        rec = self._rx.get(key)
        if rec is not None and now - rec.time > c.receive_timer:
            self._rx_remove(key)
            rec = None
        if kind >= 4:  # REMINDER (4), REM/MSG (5) of either layer
            assert m_list is not None
            me = c.groups.get(a.group) if isinstance(a, GroupAddress) else None
            if me is not None and me in m_list_members(m_list):
                # our answer arrived: the retry that follows a REMINDER needs none (DX
                # ReceiveRem marks the record DONE)
                if rec is not None and rec.trans_no == trans_no and rec.reply is not None:
                    rec.done = True
                return []
            if kind == 4:
                # the message itself follows the REMINDER and is answered then (DX ReceiveRem:
                # "it will be followed by the retry, so we simply ignore it"): one reply, not two
                return []
        assert apdu is not None and apdu_bytes is not None
        if trans_no == 0 and self._restarted(pre, key):
            # Number 0 is used only by the first transaction after a reset: when this source's
            # newest record is another transaction, the sender has restarted and numbers from
            # 0 again.  Its older records would turn its new requests (often identical to the
            # previous run's) into duplicates answered with stale stored responses.
            for k in list(self._rx_src[pre]):
                self._rx_remove(k)
            rec = None
        if rec is not None and rec.trans_no == trans_no and rec.apdu_bytes == apdu_bytes:
            self.counters.duplicates += 1
            rec.time = now
            rec.alt = alt
            if rec.challenge is not None and not rec.delivered:
                self._send_challenge(a, domain, prio, alt, rec, trans_no, now)  # re-challenge
            elif rec.reply is not None and not rec.done:
                self._send_reply(rec, now)
            return []
        self._rx_seq += 1
        if rec is not None:  # same number, another APDU: this record is replaced
            self._rx_remove(key)
        # alt=alt, seq=self._rx_seq, positionally (no keyword matching)
        rec = _Rx(trans_no, apdu_bytes, now, service, a, domain, prio, pre, False, None, alt, None, False, None,
                  self._rx_seq)
        # A source has one transaction at a time per priority and cycles through 15
        # numbers: keep only its newest ``records_per_source`` records, so a number that
        # comes round again (an identical APDU 15 transactions later) is a new message,
        # while a late copy of a recent transaction is still a duplicate.  lon-stack-dx
        # keeps exactly one (RetrieveRR by source and priority); a few more absorb
        # reordering on IP paths and the simulated channel.
        mine = self._rx_src.get(pre)
        if mine is not None and len(mine) >= c.records_per_source:
            extra = len(mine) - c.records_per_source + 1
            if extra == 1:  # the oldest; _rx_remove(k), inline
                k = next(iter(mine))
                old = self._rx.pop(k, None)
                if old is not None:
                    theirs = self._rx_src[old.pre]
                    del theirs[k]
                    if not theirs:
                        del self._rx_src[old.pre]
            else:
                for k in list(mine)[:extra]:  # the oldest
                    self._rx_remove(k)
        rx = self._rx
        if len(rx) >= c.max_receive_records:
            oldest = min(rx, key=lambda k: rx[k].time)
            if now - rx[oldest].time <= c.receive_timer:
                self.counters.receive_records_full += 1
            self._rx_remove(oldest)
        rx[key] = rec
        mine = self._rx_src.get(pre)
        if mine is None:
            self._rx_src[pre] = {key: rec}
        else:
            mine[key] = rec
        if auth and service is not _S_UNACKD_RPT and (c.auth_key or c.oma_key):
            rec.pending = apdu
            rec.oma = c.oma and c.oma_key is not None
            rec.challenge = self._rng(8)
            self._send_challenge(a, domain, prio, alt, rec, trans_no, now)
            return []
        # _deliver(rec, key, apdu, now, authenticated=False), inline
        rec.delivered = True
        self.counters.delivered += 1
        ev = _new(MessageReceived)
        s0, s1, s2, s3, s4, s5, s6, s7 = _MR_SET
        if service is _S_REQUEST:
            handle = _new(ReceiveHandle)
            h0, h1 = _RH_SET
            h0(handle, key)
            h1(handle, trans_no)
            s6(ev, handle)
        else:
            s6(ev, None)
            if service is _S_ACKD:
                rec.reply = self._reply_npdu(rec, 0x00, bytes((0x20 | trans_no,)))  # TPDU ACK
                self._send_reply(rec, now)
        s0(ev, a)
        s1(ev, apdu)
        s2(ev, service)
        s3(ev, trans_no)
        s4(ev, prio)
        s5(ev, domain)
        s7(ev, False)
        return [ev]

    def _restarted(self, pre: tuple[object, ...], key: tuple[object, ...]) -> bool:
        """True when the source ``pre`` (sending a transaction 0 message) has a newest receive
        record for a different transaction; a retry of the newest (number 0) is no restart."""
        mine = self._rx_src.get(pre)
        return bool(mine) and next(reversed(mine)) != key  # type: ignore[arg-type]

    def _deliver(
        self, rec: _Rx, key: tuple[object, ...], apdu: AnyApdu, now: float, *, authenticated: bool
    ) -> list[LonEvent]:
        rec.delivered = True
        counters = self.counters
        counters.delivered += 1
        if authenticated:
            counters.authenticated += 1
        service = rec.service
        if service is _S_REQUEST:
            handle: ReceiveHandle | None = ReceiveHandle(key, rec.trans_no)
        else:
            handle = None
            if service is _S_ACKD:
                rec.reply = self._reply_npdu(rec, 0x00, bytes((0x20 | rec.trans_no,)))  # TPDU ACK
                self._send_reply(rec, now)
        return [MessageReceived(rec.src, apdu, service, rec.trans_no, rec.prio, rec.domain, handle, authenticated)]

    def _send_reply(self, rec: _Rx, now: float) -> None:
        reply = rec.reply
        assert reply is not None
        l2 = (0x80 if rec.prio else 0) | (0x40 if rec.alt else 0)
        self._send(append_crc(bytes((l2,)) + reply), now)

    def _send_challenge(
        self, a: Address, domain: bytes, prio: bool, alt: bool, rec: _Rx, trans_no: int, now: float
    ) -> None:
        assert rec.challenge is not None
        self.counters.challenges_sent += 1
        atype = AuthType.CHALLENGE_OMA if rec.oma else AuthType.CHALLENGE
        group = a.group if isinstance(a, GroupAddress) else None
        auth = AuthPdu(atype, trans_no, int(a.format), rec.challenge, group)
        self._send(
            encode_frame(Frame.make(self._reply_address(a), auth, domain, priority=prio, alt_path=alt)),
            now,
        )

    def _expected_reply(self, rec: _Rx) -> bytes | None:
        c = self.config
        assert rec.challenge is not None and rec.pending is not None
        if rec.oma:
            assert c.oma_key is not None
            a = rec.src
            if isinstance(a, NeuronIdAddress):
                blk = oma_address(neuron_id=a.neuron_id)
            elif isinstance(a, BroadcastAddress):
                blk = oma_address(broadcast=True)
            elif isinstance(a, GroupAddress):
                blk = oma_address(domain=c.domain, group=a.group)
            else:
                blk = oma_address(domain=c.domain, subnet=c.subnet, node=c.node)
            return auth_transform(rec.challenge, blk + rec.apdu_bytes, c.oma_key)
        if c.auth_key is None:
            return None
        return auth_transform(rec.challenge, rec.apdu_bytes, c.auth_key)

    def _on_reply(self, frame: Frame, pdu: AuthPdu, now: float) -> list[LonEvent]:
        a = frame.address
        for key, rec in self._rx.items():
            src = rec.src
            if (
                rec.challenge is None
                or rec.delivered
                or rec.pending is None
                or rec.trans_no != pdu.trans_no
                or (src.src_subnet, src.src_node) != (a.src_subnet, a.src_node)
                or rec.prio != frame.priority
                or int(src.format) != pdu.fmt
                or (pdu.group is not None and getattr(src, "group", None) != pdu.group)
            ):
                continue
            want = self._expected_reply(rec)
            if want is None or pdu.is_oma != rec.oma or want != pdu.value:
                self.counters.auth_failures += 1
                self._rx_remove(key)
                return [AuthenticationRejected(src, pdu.trans_no)]
            apdu = rec.pending
            rec.pending = None
            return self._deliver(rec, key, apdu, now, authenticated=True)
        self.counters.late_acks += 1
        return []

    def _on_challenge(self, frame: Frame, pdu: AuthPdu, now: float) -> list[LonEvent]:
        c = self.config
        tx = self._active[frame.priority]
        if (
            tx is None
            or not tx.auth
            or tx.trans_no != pdu.trans_no
            or tx.head[0] >> 2 != pdu.fmt
            or (isinstance(tx.dest, GroupDest) and pdu.group != tx.dest.group)
        ):
            self.counters.late_acks += 1
            return []
        apdu_bytes = tx.apdu
        if pdu.is_oma:
            if c.oma_key is None:
                return []
            d = tx.dest
            if isinstance(d, NeuronIdDest):
                blk = oma_address(neuron_id=d.neuron_id)
            elif isinstance(d, GroupDest):
                blk = oma_address(domain=c.domain, group=d.group)
            else:
                assert isinstance(d, NodeDest)
                blk = oma_address(domain=c.domain, subnet=d.subnet, node=d.node)
            value = auth_transform(pdu.value, blk + apdu_bytes, c.oma_key)
            rtype = AuthType.REPLY_OMA
        else:
            if c.auth_key is None:
                return []
            value = auth_transform(pdu.value, apdu_bytes, c.auth_key)
            rtype = AuthType.REPLY
        a = frame.address
        reply = AuthPdu(rtype, tx.trans_no, pdu.fmt, value, pdu.group)
        dest = SubnetNodeAddress(c.subnet, c.node, a.src_subnet, a.src_node)
        self._send(
            encode_frame(Frame.make(dest, reply, frame.domain, priority=frame.priority, alt_path=frame.l2.alt_path)),
            now,
        )
        tx.deadline = now + tx.tx_timer  # restart the transmit timer
        return []

    def _on_ack(
        self, prio: bool, a: Address, trans_no: int, apdu: AnyApdu | None, apdu_bytes: bytes | None, now: float
    ) -> list[LonEvent]:
        tx = self._active[prio]
        is_response = apdu is not None
        if (
            tx is None
            or tx.trans_no != trans_no
            or (tx.service is _S_REQUEST) != is_response
            or tx.service not in (_S_ACKD, _S_REQUEST)
        ):
            self.counters.late_acks += 1
            return []
        d = tx.dest
        member: int | None = None
        if type(d) is NodeDest:  # unicast: the answer from that node completes the message
            if type(a) is not SubnetNodeAddress or a.src_subnet != d.subnet or a.src_node != d.node:
                self.counters.late_acks += 1
                return []
            # (a copy of the answer finds the transaction finished: a late ack, as before)
            if is_response:
                first: LonEvent = _new(ResponseReceived)
                r0, r1, r2 = _RR_SET
                r0(first, tx.tid)
                r1(first, a)
                r2(first, apdu)
            else:
                first = AckReceived(tx.tid, a, None)
            # _finish(tx, now, ok=True), inline
            tx.done = True
            tx.deadline = None
            self._active[prio] = None
            if self._queue[prio]:
                self._start_next(prio, now)
            self.counters.completed += 1
            done_ev = _new(MessageCompleted)
            c0, c1, c2 = _MC_SET
            c0(done_ev, tx.tid)
            c1(done_ev, tx.service)
            c2(done_ev, tx.sent)
            return [first, done_ev]
        if isinstance(d, GroupDest):
            if not isinstance(a, GroupAckAddress) or a.group != d.group or a.member not in tx.expected:
                self.counters.late_acks += 1
                return []
            member = a.member
            if member in tx.answered:
                self.counters.duplicates += 1
                return []
            tx.answered.add(member)
        elif isinstance(d, NodeDest):
            if not isinstance(a, SubnetNodeAddress) or (a.src_subnet, a.src_node) != (d.subnet, d.node):
                self.counters.late_acks += 1
                return []
        who: tuple[object, ...] = (a.src_subnet, a.src_node)
        if isinstance(d, BroadcastDest):
            # unconfigured nodes all answer from subnet/node 0/0: tell them apart by content
            who += (apdu_bytes,)
        if who in tx.responders:
            self.counters.duplicates += 1
            return []
        tx.responders.add(who)
        ev: list[LonEvent] = []
        if is_response:
            assert apdu is not None
            ev.append(ResponseReceived(tx.tid, a, apdu))
        else:
            ev.append(AckReceived(tx.tid, a, member))
        if isinstance(d, GroupDest):
            done = tx.answered >= tx.expected
        elif isinstance(d, BroadcastDest):
            done = len(tx.responders) >= d.max_responses
        else:
            done = True
        if not done:
            # each new answer restarts the transmit timer (DX TPReceiveAck/SNReceiveResponse):
            # members still answering on a slow channel are not pre-empted by a retry
            tx.deadline = now + tx.tx_timer
        if done:
            ev.append(self._finish(tx, now, ok=True))
        return ev

    # ------------------------------------------------------------------ sending
    def _send(self, raw: bytes, now: float) -> None:
        self.counters.tx_frames += 1
        self._outbox.append(raw)

    def _start_next(self, prio: bool, now: float) -> None:
        if self._active[prio] is not None or not self._queue[prio]:
            return
        self._start(self._queue[prio].popleft(), now)

    def _start(self, tx: _Tx, now: float) -> None:
        """Put ``tx`` on the wire: the active transaction of its priority (none was)."""
        prio = tx.priority
        # 0 for the first transaction after a reset, then 1..15 (DX lcs_tcs.c: "On node
        # reset, transaction id 0 is used", TransDone "Wrap Around to 1")
        last = self._trans_no[prio]
        tx.trans_no = self._trans_no[prio] = last % 15 + 1 if last >= 0 else 0
        self._active[prio] = tx
        # the last ``alt_path_retries`` transmissions use the alternate path, the first one
        # too when there are fewer retries (DX SendNewMsg ``retryCount <= ALT_PATH_COUNT``,
        # EX ``LtTransmitTx::altPath`` ``m_nRetries < 2``); repeated service never does
        svc = tx.service
        alt = svc is not _S_UNACKD_RPT and tx.retries < self.config.alt_path_retries
        self.counters.tx_frames += 1
        fmt, addr = tx.head
        if fmt & 0x0C == 0x08 and not alt and (svc is _S_REQUEST or svc is _S_ACKD):
            # unicast ACKD/REQUEST, first try (what _message_frame builds: delta_backlog 1)
            raw = b"".join((
                bytes(((0x81 if tx.priority else 0x01), (0x10 if svc is _S_REQUEST else 0x00) | fmt)),
                addr, bytes(((0x80 if tx.auth else 0) | tx.trans_no,)), tx.apdu,
            ))
            self._outbox.append(raw + _CRC.pack(crc_hqx(raw, 0xFFFF) ^ 0xFFFF))
        else:
            self._outbox.append(self._message_frame(tx, True, alt))
        tx.sent = 1
        tx.deadline = now + tx.tx_timer + tx.last_retry_extra if tx.retries == 0 else now + tx.tx_timer

    @staticmethod
    def _after_send(tx: _Tx, now: float) -> float:
        """The deadline after a try: the transmit timer, plus ``last_retry_extra`` after the last."""
        if tx.sent == tx.retries + 1:
            return now + tx.tx_timer + tx.last_retry_extra
        return now + tx.tx_timer

    def _dest_address(self, dest: Destination) -> Address:
        c = self.config
        if isinstance(dest, NodeDest):
            return SubnetNodeAddress(c.subnet, c.node, dest.subnet, dest.node)
        if isinstance(dest, GroupDest):
            return GroupAddress(c.subnet, c.node, dest.group)
        if isinstance(dest, BroadcastDest):
            return BroadcastAddress(c.subnet, c.node, dest.subnet)
        return NeuronIdAddress(c.subnet, c.node, dest.subnet, bytes(dest.neuron_id))

    def _dest_head(self, dest: Destination) -> tuple[int, bytes]:
        """(address format << 2 | domain length code, address + domain bytes) of ``dest``,
        validated by the frame constructors (EncodeError when out of range); cached for
        unicast destinations."""
        node = type(dest) is NodeDest
        if node:
            key = (dest.subnet, dest.node)  # type: ignore[union-attr]
            try:
                h = self._dest_heads.get(key)
            except TypeError:  # unhashable field values: the constructors below reject them
                node = False
            else:
                if h is not None:
                    return h
        a = self._dest_address(dest)
        domain = self.config.domain
        Npdu(a, Apdu(0), domain)  # the checks the frame encoder makes on address and domain
        h = ((int(a.format) << 2) | _DOMAIN_CODE[len(domain)], a.encode() + domain)
        if node:
            if len(self._dest_heads) >= _CACHE_MAX:
                self._dest_heads.clear()
            self._dest_heads[key] = h
        return h

    def _backlog(self, tx: _Tx, first: bool) -> int:
        if type(tx.dest) is NodeDest and (tx.service is _S_REQUEST or tx.service is _S_ACKD):
            return 1
        if tx.service is _S_UNACKD:
            return 0
        if tx.service is _S_UNACKD_RPT:
            return min(tx.retries, 63) if first else 0
        if isinstance(tx.dest, GroupDest):
            # outstanding acknowledgements/responses (DX lcs_tsa.c: destCount - ackCount)
            return min(len(tx.expected - tx.answered), 63)
        if isinstance(tx.dest, BroadcastDest):
            return 15
        return 1

    def _message_frame(self, tx: _Tx, first: bool, alt: bool = False, m_list: bytes | None = None) -> bytes:
        """The LPDU of ``tx``: ``m_list`` makes an ACKD/REQUEST a REM/MSG."""
        svc = tx.service
        fmt, addr = tx.head
        # unicast ACKD/REQUEST (address format 2, only NodeDest has it): delta_backlog 1
        unicast = fmt & 0x0C == 0x08 and (svc is _S_REQUEST or svc is _S_ACKD)
        backlog = 1 if unicast else self._backlog(tx, first)
        l2 = (0x80 if tx.priority else 0) | (0x40 if alt else 0) | backlog
        if svc is _S_UNACKD:  # a bare APDU
            return append_crc(bytes((l2, 0x30 | fmt)) + addr + tx.apdu)
        if svc is _S_UNACKD_RPT:  # TPDU UNACKD_RPT, never authenticated nor with M_List
            return append_crc(bytes((l2, fmt)) + addr + bytes((0x10 | tx.trans_no,)) + tx.apdu)
        # ACKD (TPDU) or REQUEST (SPDU); REM/MSG (type 5) when an M_List goes with it
        pdu_fmt = 0x10 if svc is _S_REQUEST else 0x00
        h = (0x80 if tx.auth else 0) | tx.trans_no
        if m_list is None:
            return append_crc(bytes((l2, pdu_fmt | fmt)) + addr + bytes((h,)) + tx.apdu)
        return append_crc(bytes((l2, pdu_fmt | fmt)) + addr + bytes((h | 0x50, len(m_list))) + m_list + tx.apdu)

    def _retransmit(self, tx: _Tx, now: float, alt: bool) -> None:
        if isinstance(tx.dest, GroupDest):
            # every group retry carries the M_List, empty while nobody has answered (DX
            # XmitTimerExpiration ``length = 0``; EX ``LtAckMap::setMap``)
            ml = m_list_encode(tx.answered) if tx.answered else b""
            if len(ml) <= 2:
                self._send(self._message_frame(tx, first=False, alt=alt, m_list=ml), now)
                return
            # a REMINDER (type 4, M_List, no APDU, delta_backlog 0), then the message
            fmt, addr = tx.head
            l2 = (0x80 if tx.priority else 0) | (0x40 if alt else 0)
            pdu_fmt = 0x10 if tx.service is _S_REQUEST else 0x00
            h = (0x80 if tx.auth else 0) | 0x40 | tx.trans_no
            self._send(append_crc(bytes((l2, pdu_fmt | fmt)) + addr + bytes((h, len(ml))) + ml), now)
        self._send(self._message_frame(tx, first=False, alt=alt), now)

    def _finish(self, tx: _Tx, now: float, *, ok: bool, reason: str = "") -> LonEvent:
        tx.done = True
        tx.deadline = None
        self._active[tx.priority] = None
        if self._queue[tx.priority]:
            self._start_next(tx.priority, now)
        if ok:
            self.counters.completed += 1
            return MessageCompleted(tx.tid, tx.service, tx.sent)
        self.counters.failed += 1
        missing = tuple(sorted(tx.expected - tx.answered)) if isinstance(tx.dest, GroupDest) else ()
        return MessageFailed(tx.tid, tx.service, reason, tx.sent, missing)
