"""OSGP-AES-128-PSK secure channel (IEC 62056-8-8 Annex D) — sans-I/O, both roles.

Theory of operation (layouts: reference ``osgp-62056-8-8.md`` §2.4-2.8 [D],
documented in ``docs/wire-format.md`` §4; constants: :mod:`dlms14908.profile` §4):

* One :class:`SecureChannel` per (NNAP, LNAP) pair, in role ``NNAP`` (head-end,
  GPSK server) or ``LNAP`` (meter, GPSK peer).  The NNAP starts with
  :meth:`SecureChannel.start_handshake`; the four messages ChallengeRequest,
  ChallengeResponse, CommissionRequest, CommissionResponse (an EAP-GPSK
  analogue) derive MK/SK/PK from the PSK and two fresh RANDs.  The
  CryptoContext state (NONE → CHALLENGED → COMMISSIONED, FAILED) follows the
  table ``_TRANSITIONS``; FAILED is sticky (a new channel object is the only
  way out) and is entered after ``max_auth_failures`` consecutive
  authentication failures.
* Unprotected management/error messages go in through :meth:`receive_message`;
  protected PDU bodies (``KeyID || SeqNo || ciphertext || tag``) through
  :meth:`receive_protected`, with the adaptation header and the LonTalk
  destination address bytes, which are both authenticated (AAD).  A frame
  that fails any check is counted and dropped as a whole: the replay window
  moves only after the tag verified.
* Transmit sequence numbers are 32-bit and strictly increasing per key; they
  are reserved ahead in blocks through a :class:`SequencePersistence` (the
  reservation ceiling is durable before any number below it is used), so a
  crash never reuses a nonce.  Receivers keep an RFC 4303 sliding bitmap.
* Key renewal (UpdateDomainKeys, RFC 3394 wrapped under K_kek) keeps the old
  receive key until the first frame under the new KeyID has verified.
* AuthenticationFailure / SequenceError are answered for unicast frames only,
  through a token bucket, and carry nothing but KeyID and a sequence number.

Every method takes ``now`` and returns events; outgoing bytes are events too
(:class:`SendHandshake`, :class:`SendError`, :class:`SendProtected`).

State per channel is kept small (a head-end holds one per meter): one key object per
key carries its transmit counters and its receive window (the session key, used both
ways, is one object with one key schedule), and the fields most channels never set
live in one extra object made on first use.  The adaptation endpoint's hot path uses
``_seal_pdu`` / ``_open_pdu``: the same bytes as :meth:`SecureChannel.protect` and the
common case of :meth:`SecureChannel.receive_protected`, which takes over (counting,
answering) whenever the fast path declines; a declined frame has changed nothing.
"""

from __future__ import annotations

import logging
import operator
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar, overload

from dlms14908 import profile as P
from dlms14908.errors import AuthenticationFailed, DecodeError, EncodeError, LocalProtocolError
from osgp.ccm import AesCcm, InvalidTag
from osgp.drbg import CtrDrbg
from osgp.keys import (
    check_key,
    commission_pd_aad,
    commission_pd_nonce,
    commission_response_mac_input,
    derive_kek,
    derive_session_keys,
    handshake_mac,
    handshake_mac_verify,
    unwrap_key,
    wrap_key,
)
from osgp.messages import (
    AuthenticationFailure,
    ChallengeRequest,
    ChallengeResponse,
    CommissionRequest,
    CommissionResponse,
    Message,
    SequenceError,
    UpdateDomainKeys,
    UpdateDomainKeysResponse,
    decode_message,
)

__all__ = [
    "PROTECTED_OVERHEAD",
    "BroadcastSender",
    "BroadcastSnapshot",
    "ChannelConfig",
    "ChannelEstablished",
    "ChannelEvent",
    "ChannelEventT",
    "ChannelFailed",
    "ChannelSnapshot",
    "ChannelState",
    "Counters",
    "DataReceived",
    "DropReason",
    "FrameDropped",
    "HandshakeFailed",
    "KeyActivated",
    "KeyInstalled",
    "KeyKind",
    "KeySnapshot",
    "KeyUpdateConfirmed",
    "MemoryPersistence",
    "OmaKeyReceived",
    "PeerErrorReported",
    "RandomSource",
    "ReplayWindow",
    "Role",
    "SecureChannel",
    "SendError",
    "SendHandshake",
    "SendProtected",
    "SequencePersistence",
]

log = logging.getLogger(__name__)

_PREFIX_LEN = P.OSGP_KEY_ID_LEN + P.OSGP_SEQ_LEN
PROTECTED_OVERHEAD = _PREFIX_LEN + P.OSGP_TAG_LEN
"""Bytes a protected PDU body adds to its plaintext (KeyID, SeqNo, tag)."""

_MAX_PLAINTEXT = (1 << (8 * (15 - P.OSGP_NONCE_LEN))) - 1  # CCM with L = 15 - nonce length
RandomSource = Callable[[int], bytes]
_T = TypeVar("_T")


# --------------------------------------------------------------------------- enums, config
class Role(Enum):
    NNAP = "nnap"
    "Head-end / data concentrator side (GPSK server, ID_S)."
    LNAP = "lnap"
    "Meter side (GPSK peer, ID_C = its Neuron ID)."


class ChannelState(Enum):
    NONE = "none"
    CHALLENGED = "challenged"
    COMMISSIONED = "commissioned"
    FAILED = "failed"


class KeyKind(Enum):
    UNICAST = "unicast"
    BROADCAST = "broadcast"
    OMA = "oma"


class DropReason(Enum):
    MALFORMED = "malformed"
    NOT_READY = "not-ready"
    UNEXPECTED = "unexpected"
    UNKNOWN_KEY = "unknown-key"
    REPLAY = "replay"
    AUTH = "authentication"


class _In(Enum):
    """Inputs of the CryptoContext state table."""

    CHALLENGE_SENT = "challenge-sent"  # NNAP, local
    CHALLENGE_RECEIVED = "challenge-received"  # LNAP, remote (unauthenticated)
    CHALLENGE_ANSWERED = "challenge-answered"  # NNAP, verified ChallengeResponse
    COMMISSIONED = "commissioned"  # both: verified CommissionRequest / CommissionResponse(OK)
    COMMISSION_REFUSED = "commission-refused"  # NNAP: verified CommissionResponse(status != 0)
    FAILURE_LIMIT = "failure-limit"  # both: max_auth_failures consecutive failures


_S = ChannelState
_FAILED, _COMMISSIONED = ChannelState.FAILED, ChannelState.COMMISSIONED  # hot-path aliases
# (role, state) -> {input: next state}.  A pair that is absent is not allowed.
# A re-handshake on an established channel does not leave COMMISSIONED (an
# unauthenticated ChallengeRequest must not take a working channel down).
_TRANSITIONS: dict[Role, dict[ChannelState, dict[_In, ChannelState]]] = {
    Role.NNAP: {
        _S.NONE: {_In.CHALLENGE_SENT: _S.CHALLENGED, _In.FAILURE_LIMIT: _S.FAILED},
        _S.CHALLENGED: {
            _In.CHALLENGE_SENT: _S.CHALLENGED,
            _In.CHALLENGE_ANSWERED: _S.CHALLENGED,
            _In.COMMISSIONED: _S.COMMISSIONED,
            _In.COMMISSION_REFUSED: _S.NONE,
            _In.FAILURE_LIMIT: _S.FAILED,
        },
        _S.COMMISSIONED: {
            _In.CHALLENGE_SENT: _S.COMMISSIONED,
            _In.CHALLENGE_ANSWERED: _S.COMMISSIONED,
            _In.COMMISSIONED: _S.COMMISSIONED,
            _In.COMMISSION_REFUSED: _S.COMMISSIONED,
            _In.FAILURE_LIMIT: _S.FAILED,
        },
        _S.FAILED: {},
    },
    Role.LNAP: {
        _S.NONE: {_In.CHALLENGE_RECEIVED: _S.CHALLENGED, _In.FAILURE_LIMIT: _S.FAILED},
        _S.CHALLENGED: {
            _In.CHALLENGE_RECEIVED: _S.CHALLENGED,
            _In.COMMISSIONED: _S.COMMISSIONED,
            _In.FAILURE_LIMIT: _S.FAILED,
        },
        _S.COMMISSIONED: {
            _In.CHALLENGE_RECEIVED: _S.COMMISSIONED,
            _In.COMMISSIONED: _S.COMMISSIONED,
            _In.FAILURE_LIMIT: _S.FAILED,
        },
        _S.FAILED: {},
    },
}


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """Tunables of one channel (defaults are design choices, docs/wire-format.md §4)."""

    max_auth_failures: int = 8
    "Consecutive authentication failures (handshake MACs, tags) that make the context FAILED."
    unicast_window: int = P.OSGP_REPLAY_WINDOW_UNICAST
    broadcast_window: int = P.OSGP_REPLAY_WINDOW_BROADCAST
    seq_block: int = 1024
    "Transmit sequence numbers reserved (persisted) per block."
    error_burst: int = 2
    "AuthenticationFailure/SequenceError messages that may be sent back to back."
    error_interval: float = 30.0
    "Seconds to earn one more error message (token bucket)."
    handshake_timeout: float = 60.0
    "A pending handshake older than this is ignored."
    rx_save_interval: int = 1
    """Save a snapshot (replay windows) every this many verified frames, before the frame is
    delivered; 1 = a crash can never make a delivered frame acceptable again, 0 = only on key
    changes."""

    def __post_init__(self) -> None:
        if self.max_auth_failures < 1:
            raise EncodeError("must be >= 1", field="max_auth_failures")
        for name in ("unicast_window", "broadcast_window"):
            if not 1 <= getattr(self, name) <= 1024:
                raise EncodeError("must be 1..1024", field=name)
        if self.seq_block < 1:
            raise EncodeError("must be >= 1", field="seq_block")
        if self.error_burst < 0:
            raise EncodeError("must be >= 0", field="error_burst")
        if self.error_interval <= 0:
            raise EncodeError("must be > 0", field="error_interval")
        if self.handshake_timeout <= 0:
            raise EncodeError("must be > 0 (no handshake could complete)", field="handshake_timeout")
        if self.rx_save_interval < 0:
            raise EncodeError("must be >= 0", field="rx_save_interval")


@dataclass(frozen=True, slots=True)
class Counters:
    """Intrusion-detection counters of one channel (a snapshot)."""

    auth_failures: int = 0
    "Tags and handshake MACs that did not verify (total)."
    replays: int = 0
    "Frames outside or already seen in the replay window."
    unknown_key: int = 0
    "Protected frames under a KeyID with no active key."
    malformed: int = 0
    not_ready: int = 0
    "Protected frames before COMMISSIONED or after FAILED."
    unexpected: int = 0
    "Well-formed messages not allowed in this role/state or not matching the exchange."
    handshake_failures: int = 0
    errors_sent: int = 0
    errors_suppressed: int = 0
    "Error messages withheld by the rate limit."
    peer_errors: int = 0
    "AuthenticationFailure/SequenceError messages received from the peer."
    frames_ok: int = 0
    unprotected_refused: int = 0
    "Unprotected requests refused because this node requires protection."


# --------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """Base of everything a channel returns."""


@dataclass(frozen=True, slots=True)
class SendHandshake(ChannelEvent):
    data: bytes
    "A management message to send unprotected (adaptation TYPE = security)."


@dataclass(frozen=True, slots=True)
class SendError(ChannelEvent):
    data: bytes
    "An AuthenticationFailure/SequenceError message to send unprotected (TYPE = error)."


@dataclass(frozen=True, slots=True)
class SendProtected(ChannelEvent):
    data: bytes
    "A management message to send protected: ``protect(data, ...)`` with TYPE = security."


@dataclass(frozen=True, slots=True)
class ChannelEstablished(ChannelEvent):
    key_id: int


@dataclass(frozen=True, slots=True)
class HandshakeFailed(ChannelEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class DataReceived(ChannelEvent):
    data: bytes
    key_id: int
    seq: int
    broadcast: bool = False


@dataclass(frozen=True, slots=True)
class FrameDropped(ChannelEvent):
    reason: DropReason
    key_id: int | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class KeyInstalled(ChannelEvent):
    """LNAP: a key from UpdateDomainKeys is installed (receive side; not yet active)."""

    key_id: int
    kind: KeyKind


@dataclass(frozen=True, slots=True)
class KeyUpdateConfirmed(ChannelEvent):
    """NNAP: the LNAP answered an UpdateDomainKeys."""

    key_id: int
    kind: KeyKind
    accepted: bool


@dataclass(frozen=True, slots=True)
class KeyActivated(ChannelEvent):
    """A first frame under a new key verified: older receive keys of that kind are retired."""

    key_id: int
    kind: KeyKind


@dataclass(frozen=True, slots=True)
class OmaKeyReceived(ChannelEvent):
    """LNAP: a new 12-byte LonTalk OMA (domain authentication) key for the LonTalk layer."""

    key_id: int
    key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class PeerErrorReported(ChannelEvent):
    """The peer sent AuthenticationFailure or SequenceError (unauthenticated: report only)."""

    kind: str
    key_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class ChannelFailed(ChannelEvent):
    """The context entered FAILED (sticky)."""


ChannelEventT = (
    SendHandshake
    | SendError
    | SendProtected
    | ChannelEstablished
    | HandshakeFailed
    | DataReceived
    | FrameDropped
    | KeyInstalled
    | KeyUpdateConfirmed
    | KeyActivated
    | OmaKeyReceived
    | PeerErrorReported
    | ChannelFailed
)


# --------------------------------------------------------------------------- persistence seam
@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """One transmit or receive key of a snapshot."""

    role: str
    "'uc-tx', 'uc-tx-next', 'uc-rx', 'bc-rx', 'bc-tx', 'bc-tx-next'."
    key_id: int
    key: bytes = field(repr=False)
    slot: str | None = None
    "Reservation slot of a transmit key."
    ceiling: int = 0
    "Transmit: reservation ceiling (the restored next SeqNo).  Receive: unused."
    highest: int = 0
    bitmap: int = 0


@dataclass(frozen=True, slots=True)
class ChannelSnapshot:
    """Everything needed to resume a channel after a restart (keys included: repr hides them)."""

    name: str
    role: Role
    local_id: bytes
    peer_id: bytes
    psk: bytes = field(repr=False)
    state: ChannelState = ChannelState.NONE
    generation: int = 0
    keys: tuple[KeySnapshot, ...] = ()
    consecutive_failures: int = 0
    counters: Counters = Counters()


@dataclass(frozen=True, slots=True)
class BroadcastSnapshot:
    name: str
    source_id: bytes
    generation: int = 0
    keys: tuple[KeySnapshot, ...] = ()


class SequencePersistence(Protocol):
    """Where a channel makes its transmit reservations and key changes durable."""

    def reserve(self, slot: str, ceiling: int) -> None:
        """Durably record that sequence numbers below ``ceiling`` may be used in ``slot``.

        Must not return before the ceiling is on stable storage; must never lower it."""

    def save_snapshot(self, snapshot: ChannelSnapshot | BroadcastSnapshot) -> None:
        """Durably record the keys and counters (called on every key change)."""


class MemoryPersistence:
    """Keeps reservations and the latest snapshots in this process (tests, tools that want
    to look at what would have been saved)."""

    def __init__(self) -> None:
        self.ceilings: dict[str, int] = {}
        self.snapshots: dict[str, ChannelSnapshot | BroadcastSnapshot] = {}

    def reserve(self, slot: str, ceiling: int) -> None:
        self.ceilings[slot] = max(ceiling, self.ceilings.get(slot, 0))

    def save_snapshot(self, snapshot: ChannelSnapshot | BroadcastSnapshot) -> None:
        self.snapshots[snapshot.name] = snapshot

    def __repr__(self) -> str:
        return f"<MemoryPersistence slots={len(self.ceilings)}>"


class _Volatile:
    """The default persistence: nothing survives the process, so nothing is copied (the
    channel's own state is all there is).  One shared, stateless instance."""

    __slots__ = ()

    def reserve(self, slot: str, ceiling: int) -> None:
        pass

    def save_snapshot(self, snapshot: ChannelSnapshot | BroadcastSnapshot) -> None:
        pass

    def __repr__(self) -> str:
        return "<volatile persistence>"


_VOLATILE = _Volatile()
# shared read-only stand-in for a channel's empty key tables (most channels never get one)
_NO_KEYS: MappingProxyType[int, object] = MappingProxyType({})
_NO_KEYS_OBJ: object = _NO_KEYS  # the same sentinel, typed so that an identity test against it type-checks
_DEFAULT_CONFIG = ChannelConfig()


# --------------------------------------------------------------------------- building blocks
class ReplayWindow:
    """RFC 4303-style sliding bitmap: bit i set = ``highest - i`` was accepted."""

    __slots__ = ("bitmap", "highest", "size")

    def __init__(self, size: int, highest: int = 0, bitmap: int | None = None) -> None:
        self.size = size
        self.highest = highest
        # Everything at or below the starting point counts as seen.
        self.bitmap = ((1 << size) - 1) if bitmap is None else bitmap & ((1 << size) - 1)

    def check(self, seq: int) -> bool:
        """Would ``seq`` be accepted?  (Does not change the window.)"""
        if seq <= 0 or seq > P.OSGP_SEQ_MAX:
            return False
        if seq > self.highest:
            return True
        diff = self.highest - seq
        return diff < self.size and not (self.bitmap >> diff) & 1

    def update(self, seq: int) -> None:
        """Mark ``seq`` as received; call only after the frame verified."""
        if seq > self.highest:
            shift = seq - self.highest
            self.bitmap = (
                ((self.bitmap << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            )
            self.highest = seq
        else:
            self.bitmap |= 1 << (self.highest - seq)

    def __repr__(self) -> str:
        return f"<ReplayWindow size={self.size} highest={self.highest} bitmap=0x{self.bitmap:x}>"


class _Key:
    """One OSGP key with its transmit and receive state (one object per key, one key schedule).

    Transmit: ``next_seq``, the reservation ``ceiling`` and ``slot`` - the reservation slot
    name when restored from a snapshot, else the generation number the name
    ``"<owner's name>/<kind>/<generation>"`` is built from when it is needed.  Receive:
    the replay window of :class:`ReplayWindow` (``highest``, ``bitmap``; its size is the
    channel's configured window).  The session key PK, used both ways, is one object."""

    __slots__ = ("aead", "bitmap", "ceiling", "highest", "key", "key_id", "next_seq", "slot")

    def __init__(self, key_id: int, key: bytes) -> None:
        self.key_id = key_id
        self.key = key
        self.aead = AesCcm(key, P.OSGP_TAG_LEN)
        self.next_seq = self.ceiling = self.highest = self.bitmap = 0
        self.slot: str | int = 0

    def tx(self, first_seq: int, slot: str | int) -> _Key:
        """Start transmitting at ``first_seq`` (also the reservation ceiling)."""
        self.next_seq = self.ceiling = first_seq
        self.slot = slot
        return self

    def rx(self, size: int, highest: int = 0, bitmap: int | None = None) -> _Key:
        """Start the replay window: everything at or below ``highest`` counts as seen."""
        mask = (1 << size) - 1
        self.highest = highest
        self.bitmap = mask if bitmap is None else bitmap & mask
        return self

    def accepts(self, seq: int, size: int) -> bool:
        """:meth:`ReplayWindow.check` of this key's window."""
        if seq <= 0 or seq > P.OSGP_SEQ_MAX:
            return False
        if seq > self.highest:
            return True
        diff = self.highest - seq
        return diff < size and not (self.bitmap >> diff) & 1

    def mark(self, seq: int, size: int) -> None:
        """:meth:`ReplayWindow.update` of this key's window (after the frame verified)."""
        if seq > self.highest:
            shift = seq - self.highest
            self.bitmap = ((self.bitmap << shift) | 1) & ((1 << size) - 1) if shift < size else 1
            self.highest = seq
        else:
            self.bitmap |= 1 << (self.highest - seq)

    def slot_name(self, owner: str, kind: str) -> str:
        s = self.slot
        return s if type(s) is str else f"{owner}/{kind}/{s}"

    def __repr__(self) -> str:
        return (
            f"<Key id={self.key_id} next_seq={self.next_seq} ceiling={self.ceiling} "
            f"highest={self.highest} bitmap=0x{self.bitmap:x}>"
        )

    def tx_snapshot(self, role: str, owner: str, kind: str) -> KeySnapshot:
        return KeySnapshot(
            role, self.key_id, self.key, slot=self.slot_name(owner, kind), ceiling=self.ceiling
        )

    def rx_snapshot(self, role: str) -> KeySnapshot:
        return KeySnapshot(role, self.key_id, self.key, highest=self.highest, bitmap=self.bitmap)


def _key_like(keys: tuple[_Key | None, ...], key_id: int, key: bytes) -> _Key:
    """The key object among ``keys`` with this id and key bytes, else a new one (a restored
    snapshot shares one key schedule between a key's transmit and receive entries)."""
    for k in keys:
        if k is not None and k.key_id == key_id and k.key == key:
            return k
    return _Key(key_id, key)


class _KeyTable:
    """The unicast receive keys, oldest first (one live, three at most during a renewal):
    the dict operations the cold paths use, as a view of the channel's ``_rx`` (the newest
    key, the only one outside a renewal) and ``_rx_old`` (the older ones)."""

    __slots__ = ("_ch",)

    def __init__(self, channel: SecureChannel) -> None:
        self._ch = channel

    def _keys(self) -> tuple[_Key, ...]:
        ch = self._ch
        rx = ch._rx
        return () if rx is None else ch._rx_old + (rx,)

    def _store(self, keys: tuple[_Key, ...]) -> None:
        ch = self._ch
        ch._rx = keys[-1] if keys else None
        ch._rx_old = keys[:-1]

    def get(self, key_id: int, default: _Key | None = None) -> _Key | None:
        for rx in self._keys():
            if rx.key_id == key_id:
                return rx
        return default

    def __getitem__(self, key_id: int) -> _Key:
        rx = self.get(key_id)
        if rx is None:
            raise KeyError(key_id)
        return rx

    def __contains__(self, key_id: object) -> bool:
        return any(rx.key_id == key_id for rx in self._keys())

    def __setitem__(self, key_id: int, rx: _Key) -> None:
        """Replace the key with this id where it is, else add it as the newest (dict order)."""
        if rx.key_id != key_id:
            raise LocalProtocolError("receive key stored under another KeyID")
        ks = self._keys()
        for i, old in enumerate(ks):
            if old.key_id == key_id:
                self._store(ks[:i] + (rx,) + ks[i + 1 :])
                return
        self._store(ks + (rx,))

    def __delitem__(self, key_id: int) -> None:
        if key_id not in self:
            raise KeyError(key_id)
        self._store(tuple(rx for rx in self._keys() if rx.key_id != key_id))

    def pop(self, key_id: int, default: _Key | None = None) -> _Key | None:
        rx = self.get(key_id)
        if rx is None:
            return default
        del self[key_id]
        return rx

    def clear(self) -> None:
        self._store(())

    def __len__(self) -> int:
        ch = self._ch
        return 0 if ch._rx is None else len(ch._rx_old) + 1

    def __iter__(self) -> Iterator[int]:
        return iter([rx.key_id for rx in self._keys()])

    def __reversed__(self) -> Iterator[int]:
        return iter([rx.key_id for rx in reversed(self._keys())])

    def values(self) -> tuple[_Key, ...]:
        return self._keys()

    def __repr__(self) -> str:
        return f"<KeyTable {[rx.key_id for rx in self._keys()]}>"


class _Counts:
    """The live, mutable counters behind :attr:`SecureChannel.counters`."""

    __slots__ = tuple(Counters.__dataclass_fields__)

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def freeze(self) -> Counters:
        return Counters(**{name: getattr(self, name) for name in self.__slots__})


def _allocate(
    tx: _Key, persistence: SequencePersistence, block: int, owner: str, kind: str
) -> int:
    seq = tx.next_seq
    if seq > P.OSGP_SEQ_MAX:
        raise LocalProtocolError(
            f"sequence numbers exhausted under KeyID {tx.key_id}: re-key first"
        )
    if seq >= tx.ceiling:
        ceiling = min(seq + block, P.OSGP_SEQ_MAX + 1)
        # durable before any number below it is used
        persistence.reserve(tx.slot_name(owner, kind), ceiling)
        tx.ceiling = ceiling
    tx.next_seq = seq + 1
    return seq


# data_nonce(source_id, seq, key_id, ctrl) = source ID(6) || SeqNo(4) || KeyID || ctrl || domain
_NONCE = struct.Struct(">6sIBBB")
_KEY_SEQ = struct.Struct(">BI")  # KeyID || SeqNo, the protected body's prefix
_LEAD_HDR_KEY_SEQ = struct.Struct(">BBBBBI")  # lead byte || 3-byte header || KeyID || SeqNo
_DOMAIN = P.OSGP_NONCE_DOMAIN_DATA
_TAG_LEN = P.OSGP_TAG_LEN
assert _NONCE.size == P.OSGP_NONCE_LEN and _KEY_SEQ.size == _PREFIX_LEN


def _seal(
    tx: _Key,
    source_id: bytes,
    plaintext: bytes,
    header: bytes,
    dest: bytes,
    persistence: SequencePersistence,
    block: int,
    owner: str,
    kind: str,
) -> bytes:
    if not header:
        raise EncodeError("must hold at least the control byte", field="header")
    if len(plaintext) > _MAX_PLAINTEXT:
        raise EncodeError(f"at most {_MAX_PLAINTEXT} bytes per protected PDU", field="plaintext")
    seq = _allocate(tx, persistence, block, owner, kind)
    prefix = _KEY_SEQ.pack(tx.key_id, seq)
    # AAD = header || KeyID || SeqNo || dest
    nonce = _NONCE.pack(source_id, seq, tx.key_id, header[0], _DOMAIN)
    aad = b"".join((header, prefix, dest))
    return prefix + tx.aead.encrypt(nonce, plaintext if type(plaintext) is bytes else bytes(plaintext), aad)


class _TokenBucket:
    __slots__ = ("capacity", "interval", "last", "tokens")

    def __init__(self, capacity: int, interval: float) -> None:
        self.capacity = capacity
        self.interval = interval
        self.tokens = float(capacity)
        self.last: float | None = None

    def take(self, now: float) -> bool:
        if self.last is not None and now > self.last:
            self.tokens = min(float(self.capacity), self.tokens + (now - self.last) / self.interval)
        if self.last is None or now > self.last:
            self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _SharedDrbg:
    """The process's CSPRNG for channels not given their own ``random``: one CtrDrbg seeded
    from ``os.urandom``, behind a lock, reseeded in a forked child (which would otherwise
    repeat the parent's output).  A DRBG per channel would give each of a head-end's
    thousands of channels its own AES context for a few handshakes a day."""

    __slots__ = ("_drbg", "_lock")

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._drbg = CtrDrbg(entropy=os.urandom)

    def __call__(self, n: int) -> bytes:
        with self._lock:
            return self._drbg(n)

    def _after_fork(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._drbg = CtrDrbg(entropy=os.urandom)


_SHARED_RANDOM: _SharedDrbg | None = None


def _default_random() -> RandomSource:
    global _SHARED_RANDOM
    if _SHARED_RANDOM is None:
        _SHARED_RANDOM = shared = _SharedDrbg()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=shared._after_fork)
    return _SHARED_RANDOM


def _check_id(value: object, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != P.OSGP_ID_LEN:
        raise EncodeError(f"must be {P.OSGP_ID_LEN} bytes", field=name)
    return bytes(value)


class _Extra:
    """The fields of a :class:`SecureChannel` that most channels never set."""

    __slots__ = (
        "_bc_rx",
        "_c",
        "_errors",
        "_last_commission",
        "_name",
        "_other_pending",
        "_rx_old",
        "_uc_pending",
        "_uc_tx_next",
    )

    def __init__(self) -> None:
        self._bc_rx: object = _NO_KEYS
        self._c: object = None
        self._errors: object = None
        self._last_commission: object = None
        self._name: object = None
        self._other_pending: object = _NO_KEYS
        self._rx_old: object = ()
        self._uc_pending: object = None
        self._uc_tx_next: object = None

    def __repr__(self) -> str:
        return "<channel extras>"


class _ExtraField(Generic[_T]):
    """A :class:`SecureChannel` field kept in its lazily made :class:`_Extra`: reading gives
    the default while there is none, and writing the default does not make one."""

    __slots__ = ("default", "get", "name")

    def __init__(self, name: str, default: _T) -> None:
        self.name = name
        self.default = default
        self.get = operator.attrgetter(name)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _ExtraField[_T]: ...
    @overload
    def __get__(self, obj: SecureChannel, owner: type | None = None) -> _T: ...
    def __get__(self, obj: SecureChannel | None, owner: type | None = None) -> _T | _ExtraField[_T]:
        if obj is None:
            return self
        x = obj._x
        return self.default if x is None else self.get(x)

    def __set__(self, obj: SecureChannel, value: _T) -> None:
        x = obj._x
        if x is None:
            if value is self.default:
                return
            x = obj._x = _Extra()
        setattr(x, self.name, value)


@dataclass(slots=True)
class _Handshake:
    started: float
    rand_s: bytes
    rand_c: bytes | None = None
    sk: bytes | None = field(default=None, repr=False)
    pk: bytes | None = field(default=None, repr=False)
    key_id: int = 0
    initial_seq: int = P.OSGP_SEQ_FIRST
    response: bytes | None = None
    "NNAP: the ChallengeResponse answered (for retransmissions)."
    commission: bytes | None = None
    "NNAP: the CommissionRequest sent."


# --------------------------------------------------------------------------- the channel
class SecureChannel:
    """The CryptoContext of one NNAP-LNAP pair, sans-I/O.

    Args:
        role: which side this object plays.
        local_id / peer_id: 6-byte IDs (LNAP: its Neuron ID; NNAP: the NNAP ID).
        psk: the LNAP's 16-byte pre-shared key.
        config: tunables.
        random: OSGP_CSPRNG, ``random(n) -> bytes`` (default: a CtrDrbg from os.urandom).
        persistence: durable reservations and snapshots (default: none, nothing is durable;
            :class:`MemoryPersistence` keeps them in memory).
        name: the snapshot/slot name (default derived from role and IDs).
    """

    __slots__ = (
        "_consecutive",
        "_frames_ok",
        "_generation",
        "_hs",
        "_persist",
        "_psk",
        "_random",
        "_rx",
        "_state",
        "_uc_tx",
        "_unsaved",
        "_x",
        "config",
        "local_id",
        "peer_id",
        "role",
    )

    def __init__(
        self,
        *,
        role: Role,
        local_id: bytes,
        peer_id: bytes,
        psk: bytes,
        config: ChannelConfig | None = None,
        random: RandomSource | None = None,
        persistence: SequencePersistence | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(role, Role):
            raise EncodeError("must be a Role", field="role")
        self.role = role
        self.local_id = _check_id(local_id, "local_id")
        self.peer_id = _check_id(peer_id, "peer_id")
        self._psk = check_key(psk, "psk", P.OSGP_PSK_LEN)
        self.config = config or _DEFAULT_CONFIG
        self._random: RandomSource = random or _default_random()
        self._persist: SequencePersistence = persistence or _VOLATILE
        self._x: _Extra | None = None  # what most channels never need, made on first use
        self._name = name  # noqa: PLE0237 - _name is a class-level _ExtraField descriptor, not a slot
        self._state = ChannelState.NONE
        self._generation = 0
        self._hs: _Handshake | None = None
        self._uc_tx: _Key | None = None
        self._rx: _Key | None = None  # the newest unicast receive key (older ones: _rx_old)
        self._consecutive = 0
        self._unsaved = 0
        self._frames_ok = 0

    # Rarely used state lives in one lazily made _Extra object (see _ExtraField).
    _bc_rx = _ExtraField[dict[int, _Key]]("_bc_rx", _NO_KEYS)  # type: ignore[arg-type]
    "Broadcast receive keys, oldest first (a shared empty mapping until the first one)."
    _c = _ExtraField[_Counts | None]("_c", None)
    "The counters other than frames_ok: made on the first thing to count."
    _errors = _ExtraField[_TokenBucket | None]("_errors", None)
    "The error-message rate limit: made on the first error message."
    _last_commission = _ExtraField[tuple[bytes, bytes] | None]("_last_commission", None)
    _name = _ExtraField[str | None]("_name", None)
    _other_pending = _ExtraField[dict[int, KeyKind]]("_other_pending", _NO_KEYS)  # type: ignore[arg-type]
    _uc_pending = _ExtraField[tuple[int, bytes] | None]("_uc_pending", None)
    _uc_tx_next = _ExtraField[_Key | None]("_uc_tx_next", None)
    _rx_old = _ExtraField[tuple[_Key, ...]]("_rx_old", ())
    "Older unicast receive keys (during a renewal), oldest first."

    @property
    def _uc_rx(self) -> _KeyTable:
        """The unicast receive keys as a table (a view; the hot paths use ``_rx``)."""
        return _KeyTable(self)

    def __repr__(self) -> str:
        return (
            f"<SecureChannel {self.role.value} {self.local_id.hex()}->{self.peer_id.hex()} "
            f"state={self._state.value}>"
        )

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("SecureChannel holds keys and cannot be pickled; use snapshot()")

    # -- public state ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The snapshot/slot name (by default derived from role and IDs)."""
        return self._name or f"{self.role.value}:{self.local_id.hex()}-{self.peer_id.hex()}"

    @property
    def state(self) -> ChannelState:
        return self._state

    @property
    def counters(self) -> Counters:
        c = self._c
        if c is None:
            return Counters(frames_ok=self._frames_ok)
        return replace(c.freeze(), frames_ok=self._frames_ok)

    @property
    def _kek(self) -> bytes:
        # K_kek is needed only for UpdateDomainKeys: derived when used, not kept per channel
        return derive_kek(self._psk, self.local_id if self.role is Role.LNAP else self.peer_id)

    @property
    def tx_key_id(self) -> int | None:
        return None if self._uc_tx is None else self._uc_tx.key_id

    @property
    def next_tx_seq(self) -> int | None:
        return None if self._uc_tx is None else self._uc_tx.next_seq

    @property
    def rx_key_ids(self) -> tuple[int, ...]:
        return tuple(self._uc_rx)

    @property
    def broadcast_key_ids(self) -> tuple[int, ...]:
        return tuple(self._bc_rx)

    # -- state table -----------------------------------------------------------------------
    def _allowed(self, inp: _In) -> bool:
        return inp in _TRANSITIONS[self.role][self._state]

    def _fire(self, inp: _In) -> None:
        try:
            new = _TRANSITIONS[self.role][self._state][inp]
        except KeyError:
            raise LocalProtocolError(
                f"{inp.value} not allowed in state {self._state.value} ({self.role.value})"
            ) from None
        if new is not self._state:
            log.debug("%s: %s -> %s (%s)", self.name, self._state.value, new.value, inp.value)
        self._state = new

    # -- helpers ---------------------------------------------------------------------------
    def _count(self, name: str) -> None:
        c = self._c
        if c is None:
            c = self._c = _Counts()
        setattr(c, name, getattr(c, name) + 1)

    def _drop(
        self, reason: DropReason, counter: str, key_id: int | None = None, seq: int | None = None
    ) -> list[ChannelEvent]:
        self._count(counter)
        return [FrameDropped(reason, key_id, seq)]

    def refuse_unprotected(self, now: float) -> list[ChannelEvent]:
        """An unprotected request reached a node that requires protection.

        Counted; answered (rate-limited, like every error message) with an
        AuthenticationFailure carrying KeyID 0 and SeqNo 0 - the refused frame had
        neither - so a confirmed request is told why instead of timing out.
        """
        self._count("unprotected_refused")
        return self._maybe_error(AuthenticationFailure(0, 0), now)

    def _maybe_error(
        self, message: AuthenticationFailure | SequenceError, now: float
    ) -> list[ChannelEvent]:
        if self._errors is None:
            self._errors = _TokenBucket(self.config.error_burst, self.config.error_interval)
        if self._errors.take(now):
            self._count("errors_sent")
            return [SendError(message.encode())]
        self._count("errors_suppressed")
        return []

    def _auth_failure(self, events: list[ChannelEvent]) -> list[ChannelEvent]:
        self._count("auth_failures")
        self._consecutive += 1
        if self._consecutive >= self.config.max_auth_failures and self._allowed(_In.FAILURE_LIMIT):
            self._fire(_In.FAILURE_LIMIT)
            self._wipe()
            events.append(ChannelFailed())
            self._save()
        return events

    def _wipe(self) -> None:
        self._hs = None
        self._last_commission = None
        self._uc_tx = self._uc_tx_next = None
        self._rx = None
        self._rx_old = ()
        self._bc_rx = _NO_KEYS  # type: ignore[assignment]
        self._uc_pending = None
        self._other_pending = _NO_KEYS  # type: ignore[assignment]

    def _bc_keys(self) -> dict[int, _Key]:
        """The broadcast receive keys, for writing (made on the first key)."""
        if self._bc_rx is _NO_KEYS_OBJ:
            self._bc_rx = {}
        return self._bc_rx

    def _pending_kinds(self) -> dict[int, KeyKind]:
        if self._other_pending is _NO_KEYS_OBJ:
            self._other_pending = {}
        return self._other_pending

    def _new_key(self, key_id: int, key: bytes, first_seq: int) -> _Key:
        """A new unicast key, transmitting from ``first_seq``, receiving with a fresh window."""
        self._generation += 1
        return _Key(key_id, key).tx(first_seq, self._generation).rx(self.config.unicast_window)

    def _save(self) -> None:
        self._unsaved = 0
        if self._persist is not _VOLATILE:  # nothing to build when nothing is kept
            self._persist.save_snapshot(self.snapshot())

    def _next_key_id(self) -> int:
        used = set(self._uc_rx) | ({self._uc_tx.key_id} if self._uc_tx else set())
        base = -1 if self._uc_tx is None else self._uc_tx.key_id
        for step in range(1, P.OSGP_KEY_ID_MAX + 2):
            cand = (base + step) % (P.OSGP_KEY_ID_MAX + 1)
            if cand not in used:
                return cand
        raise LocalProtocolError("no free KeyID")  # pragma: no cover - at most 3 in use

    # -- handshake: NNAP -------------------------------------------------------------------
    def start_handshake(self, now: float) -> bytes:
        """NNAP: begin (or restart) a handshake; returns the ChallengeRequest message."""
        if self.role is not Role.NNAP:
            raise LocalProtocolError("only the NNAP starts a handshake")
        if not self._allowed(_In.CHALLENGE_SENT):
            raise LocalProtocolError(f"cannot start a handshake in state {self._state.value}")
        rand_s = self._random(P.OSGP_RAND_LEN)
        self._hs = _Handshake(started=now, rand_s=rand_s)
        self._fire(_In.CHALLENGE_SENT)
        return ChallengeRequest(id_s=self.local_id, rand_s=rand_s).encode()

    def _hs_live(self, now: float) -> _Handshake | None:
        hs = self._hs
        if hs is not None and now - hs.started > self.config.handshake_timeout:
            self._hs = None
            return None
        return hs

    def _nnap_challenge_response(
        self, msg: ChallengeResponse, raw: bytes, now: float
    ) -> list[ChannelEvent]:
        hs = self._hs_live(now)
        if (
            hs is None
            or msg.rand_s != hs.rand_s
            or msg.id_s != self.local_id
            or msg.id_c != self.peer_id
            or msg.csuite != P.OSGP_CSUITE_SEL
        ):
            return self._drop(DropReason.UNEXPECTED, "unexpected")
        if hs.commission is not None:
            if raw == hs.response:  # our CommissionRequest was lost: send it again
                return [SendHandshake(hs.commission)]
            return self._drop(DropReason.UNEXPECTED, "unexpected")
        keys = derive_session_keys(
            self._psk, rand_c=msg.rand_c, id_c=self.peer_id, rand_s=hs.rand_s, id_s=self.local_id
        )
        if not handshake_mac_verify(keys.sk, msg.mac_input(), msg.mac):
            self._count("handshake_failures")
            return self._auth_failure(
                [
                    FrameDropped(DropReason.AUTH),
                    HandshakeFailed("ChallengeResponse MAC does not verify"),
                ]
            )
        self._consecutive = 0
        key_id = self._next_key_id()
        initial = P.OSGP_SEQ_FIRST
        pd_plain = initial.to_bytes(P.OSGP_SEQ_LEN, "big") + bytes((key_id,))
        aead = AesCcm(keys.pk, P.OSGP_TAG_LEN)
        pd = aead.encrypt(
            commission_pd_nonce(self.local_id),
            pd_plain,
            commission_pd_aad(msg.rand_c, hs.rand_s, self.local_id, P.OSGP_CSUITE_SEL),
        )
        req = CommissionRequest(
            rand_c=msg.rand_c,
            rand_s=hs.rand_s,
            id_s=self.local_id,
            csuite=P.OSGP_CSUITE_SEL,
            pd=pd,
            mac=bytes(P.OSGP_HANDSHAKE_MAC_LEN),
        )
        req = replace(req, mac=handshake_mac(keys.sk, req.mac_input()))
        hs.rand_c, hs.sk, hs.pk, hs.key_id, hs.initial_seq = (
            msg.rand_c,
            keys.sk,
            keys.pk,
            key_id,
            initial,
        )
        hs.response, hs.commission = raw, req.encode()
        self._fire(_In.CHALLENGE_ANSWERED)
        return [SendHandshake(hs.commission)]

    def _nnap_commission_response(
        self, msg: CommissionResponse, raw: bytes, now: float
    ) -> list[ChannelEvent]:
        hs = self._hs_live(now)
        if (
            hs is None
            or hs.commission is None
            or hs.sk is None
            or hs.pk is None
            or hs.rand_c is None
        ):
            return self._drop(DropReason.UNEXPECTED, "unexpected")
        mac_in = commission_response_mac_input(
            raw[:2], rand_c=hs.rand_c, rand_s=hs.rand_s, id_c=self.peer_id, id_s=self.local_id
        )
        if not handshake_mac_verify(hs.sk, mac_in, msg.mac):
            self._count("handshake_failures")
            return self._auth_failure(
                [
                    FrameDropped(DropReason.AUTH),
                    HandshakeFailed("CommissionResponse MAC does not verify"),
                ]
            )
        self._consecutive = 0
        self._hs = None
        if msg.status != P.OSGP_STATUS_SUCCESS:
            self._count("handshake_failures")
            self._fire(_In.COMMISSION_REFUSED)
            return [HandshakeFailed(f"LNAP refused commissioning (status {msg.status})")]
        self._install_session(hs.pk, hs.key_id, tx_first=hs.initial_seq, rx_first=P.OSGP_SEQ_FIRST)
        self._fire(_In.COMMISSIONED)
        self._save()
        return [ChannelEstablished(hs.key_id)]

    def _install_session(self, pk: bytes, key_id: int, *, tx_first: int, rx_first: int) -> None:
        """A fresh CryptoContext: new unicast key both ways; broadcast keys stay."""
        key = self._new_key(key_id, pk, tx_first).rx(self.config.unicast_window, rx_first - 1)
        self._uc_tx = self._rx = key  # one key object (one key schedule) both ways
        self._uc_tx_next = None
        self._uc_pending = None
        self._rx_old = ()

    # -- handshake: LNAP -------------------------------------------------------------------
    def _lnap_challenge_request(
        self, msg: ChallengeRequest, raw: bytes, now: float
    ) -> list[ChannelEvent]:
        if msg.id_s != self.peer_id or not self._allowed(_In.CHALLENGE_RECEIVED):
            return self._drop(DropReason.UNEXPECTED, "unexpected")
        if msg.csuite != P.OSGP_CSUITE_SEL:
            self._count("handshake_failures")
            return self._drop(DropReason.UNEXPECTED, "unexpected") + [
                HandshakeFailed("unsupported ciphersuite")
            ]
        rand_c = self._random(P.OSGP_RAND_LEN)
        keys = derive_session_keys(
            self._psk, rand_c=rand_c, id_c=self.local_id, rand_s=msg.rand_s, id_s=self.peer_id
        )
        resp = ChallengeResponse(
            id_c=self.local_id,
            id_s=self.peer_id,
            rand_c=rand_c,
            rand_s=msg.rand_s,
            csuite=P.OSGP_CSUITE_SEL,
            mac=bytes(P.OSGP_HANDSHAKE_MAC_LEN),
        )
        resp = replace(resp, mac=handshake_mac(keys.sk, resp.mac_input()))
        self._hs = _Handshake(started=now, rand_s=msg.rand_s, rand_c=rand_c, sk=keys.sk, pk=keys.pk)
        self._fire(_In.CHALLENGE_RECEIVED)
        return [SendHandshake(resp.encode())]

    def _lnap_commission_request(
        self, msg: CommissionRequest, raw: bytes, now: float
    ) -> list[ChannelEvent]:
        if self._last_commission is not None and raw == self._last_commission[0]:
            # The NNAP did not get our CommissionResponse: answer again, change nothing.
            return [SendHandshake(self._last_commission[1])]
        hs = self._hs_live(now)
        if (
            hs is None
            or hs.sk is None
            or hs.pk is None
            or hs.rand_c is None
            or msg.rand_c != hs.rand_c
            or msg.rand_s != hs.rand_s
            or msg.id_s != self.peer_id
            or msg.csuite != P.OSGP_CSUITE_SEL
            or not self._allowed(_In.COMMISSIONED)
        ):
            return self._drop(DropReason.UNEXPECTED, "unexpected")
        if not handshake_mac_verify(hs.sk, msg.mac_input(), msg.mac):
            self._count("handshake_failures")
            return self._auth_failure(
                [
                    FrameDropped(DropReason.AUTH),
                    HandshakeFailed("CommissionRequest MAC does not verify"),
                ]
            )
        try:
            pd = AesCcm(hs.pk, P.OSGP_TAG_LEN).decrypt(
                commission_pd_nonce(self.peer_id),
                msg.pd,
                commission_pd_aad(msg.rand_c, msg.rand_s, msg.id_s, msg.csuite),
            )
        except InvalidTag:
            self._count("handshake_failures")
            return self._auth_failure(
                [
                    FrameDropped(DropReason.AUTH),
                    HandshakeFailed("CommissionRequest PD does not verify"),
                ]
            )
        self._consecutive = 0
        initial = int.from_bytes(pd[: P.OSGP_SEQ_LEN], "big")
        key_id = pd[P.OSGP_SEQ_LEN]
        status = P.OSGP_STATUS_SUCCESS if initial >= P.OSGP_SEQ_FIRST else P.OSGP_STATUS_REJECTED
        status_part = bytes((P.OSGP_OP_COMMISSION_RESPONSE, status))
        mac = handshake_mac(
            hs.sk,
            commission_response_mac_input(
                status_part,
                rand_c=hs.rand_c,
                rand_s=hs.rand_s,
                id_c=self.local_id,
                id_s=self.peer_id,
            ),
        )
        resp = CommissionResponse(status=status, mac=mac).encode()
        self._hs = None
        if status != P.OSGP_STATUS_SUCCESS:
            self._count("handshake_failures")
            return [SendHandshake(resp), HandshakeFailed("CommissionRequest carried SeqNo 0")]
        self._install_session(hs.pk, key_id, tx_first=P.OSGP_SEQ_FIRST, rx_first=initial)
        self._last_commission = (raw, resp)
        self._fire(_In.COMMISSIONED)
        self._save()
        return [SendHandshake(resp), ChannelEstablished(key_id)]

    # -- unprotected management / error messages --------------------------------------------
    def receive_message(self, data: bytes, now: float) -> list[ChannelEvent]:
        """Process one unprotected management (TYPE = security) or error (TYPE = error) message."""
        if self._state is _FAILED:
            return self._drop(DropReason.NOT_READY, "not_ready")
        raw = bytes(data)
        try:
            msg = decode_message(raw)
        except DecodeError:
            return self._drop(DropReason.MALFORMED, "malformed")
        if isinstance(msg, (AuthenticationFailure, SequenceError)):
            self._count("peer_errors")
            if isinstance(msg, AuthenticationFailure):
                return [PeerErrorReported("authentication-failure", msg.key_id, msg.seq)]
            return [PeerErrorReported("sequence-error", msg.key_id, msg.expected_min_seq)]
        handler = _HANDLERS[self.role].get(type(msg))
        if handler is None:  # wrong role, or a message that must be protected
            return self._drop(DropReason.UNEXPECTED, "unexpected")
        return handler(self, msg, raw, now)

    # -- protected PDUs ----------------------------------------------------------------------
    def protect(self, plaintext: bytes, *, header: bytes, dest: bytes, now: float) -> bytes:
        """Protect one unicast PDU payload; returns ``KeyID || SeqNo || ciphertext || tag``.

        ``header`` is the adaptation header (control byte first), ``dest`` the LonTalk
        destination address bytes; both are authenticated.  Raises
        :class:`LocalProtocolError` unless COMMISSIONED."""
        if self._state is not _COMMISSIONED or self._uc_tx is None:
            raise LocalProtocolError(f"cannot protect in state {self._state.value}")
        return _seal(
            self._uc_tx,
            self.local_id,
            plaintext,
            header,
            dest,
            self._persist,
            self.config.seq_block,
            self.name,
            "uc",
        )

    def _seal_pdu(
        self, lead: int, ctrl: int, dst: int, src: int, plaintext: bytes, dest: bytes
    ) -> bytes:
        """``lead || ctrl dst src || protect(plaintext, header=ctrl dst src, dest=dest)``: a
        whole message with a 3-byte adaptation header in one pass (the adaptation
        endpoint's hot path; the bytes :meth:`protect` gives).  The caller has checked
        that every header field is one byte."""
        tx = self._uc_tx
        if self._state is not _COMMISSIONED or tx is None:
            raise LocalProtocolError(f"cannot protect in state {self._state.value}")
        if len(plaintext) > _MAX_PLAINTEXT:
            raise EncodeError(f"at most {_MAX_PLAINTEXT} bytes per protected PDU", field="plaintext")
        seq = tx.next_seq
        if seq < tx.ceiling:  # reserved (so also <= OSGP_SEQ_MAX)
            tx.next_seq = seq + 1
        else:
            seq = _allocate(tx, self._persist, self.config.seq_block, self.name, "uc")
        kid = tx.key_id
        head = _LEAD_HDR_KEY_SEQ.pack(lead, ctrl, dst, src, kid, seq)
        nonce = _NONCE.pack(self.local_id, seq, kid, ctrl, _DOMAIN)
        return head + tx.aead.encrypt(nonce, plaintext, head[1:] + dest)

    def _open_pdu(self, data: bytes, hstart: int, pstart: int, dest: bytes) -> bytes | None:
        """The common case of :meth:`receive_protected` for a unicast data PDU held in a
        message: ``data[hstart:pstart]`` is the adaptation header, ``data[pstart:]`` the
        protected body.  Returns the plaintext (the frame verified and counted, the window
        moved), or None when the frame needs the full path - not commissioned, a key
        renewal under way, another KeyID, outside the window, a tag that does not
        verify - and then nothing has changed: the caller passes the frame to
        :meth:`receive_protected`, which counts and answers it."""
        rx = self._rx
        if rx is None or self._state is not _COMMISSIONED:
            return None
        x = self._x
        if x is not None and x._rx_old:
            return None
        p = pstart + _PREFIX_LEN
        if len(data) - p < _TAG_LEN:
            return None
        kid, seq = _KEY_SEQ.unpack_from(data, pstart)
        if kid != rx.key_id:
            return None
        size = self.config.unicast_window
        hi = rx.highest
        if seq <= hi:  # (seq > hi >= 0 is in 1..OSGP_SEQ_MAX: four bytes)
            diff = hi - seq
            if seq == 0 or diff >= size or (rx.bitmap >> diff) & 1:
                return None
        try:
            plain = rx.aead.decrypt(
                _NONCE.pack(self.peer_id, seq, kid, data[hstart], _DOMAIN),
                data[p:],
                data[hstart:p] + dest,
            )
        except InvalidTag:
            return None
        # Verified: only now does any state change (as in receive_protected).
        if seq > hi:
            shift = seq - hi
            rx.bitmap = ((rx.bitmap << shift) | 1) & ((1 << size) - 1) if shift < size else 1
            rx.highest = seq
        else:
            rx.bitmap |= 1 << diff
        self._consecutive = 0
        self._frames_ok += 1
        interval = self.config.rx_save_interval
        if interval:  # (_unsaved counts only for this test)
            self._unsaved += 1
            if self._unsaved >= interval:
                self._save()  # the window is durable before the frame is delivered
        return plain

    def receive_protected(
        self,
        body: bytes,
        *,
        header: bytes,
        dest: bytes,
        now: float,
        broadcast: bool = False,
        management: bool = False,
    ) -> list[ChannelEvent]:
        """Verify and open one protected PDU body.

        ``broadcast`` selects the domain broadcast keys; ``management`` says the
        adaptation TYPE is security (the plaintext is an UpdateDomainKeys message or
        its response).  Failures are counted and returned as :class:`FrameDropped`
        (plus a rate-limited error message for unicast); nothing else changes."""
        if self._state is _FAILED:
            return self._drop(DropReason.NOT_READY, "not_ready")
        buf = body if type(body) is bytes else bytes(body)
        if not header or len(buf) < PROTECTED_OVERHEAD:
            return self._drop(DropReason.MALFORMED, "malformed")
        key_id = buf[0]
        seq_bytes = buf[1:_PREFIX_LEN]
        seq = int.from_bytes(seq_bytes, "big")
        table = self._bc_rx if broadcast else self._uc_rx
        rx = table.get(key_id)
        if rx is None:
            if not broadcast and self._state is not ChannelState.COMMISSIONED:
                return self._drop(DropReason.NOT_READY, "not_ready", key_id, seq)
            events = self._drop(DropReason.UNKNOWN_KEY, "unknown_key", key_id, seq)
            if not broadcast:
                events += self._maybe_error(AuthenticationFailure(key_id=key_id, seq=seq), now)
            return events
        size = self.config.broadcast_window if broadcast else self.config.unicast_window
        if not rx.accepts(seq, size):
            events = self._drop(DropReason.REPLAY, "replays", key_id, seq)
            if not broadcast:
                expected = min(rx.highest + 1, P.OSGP_SEQ_MAX)
                events += self._maybe_error(
                    SequenceError(key_id=key_id, expected_min_seq=expected), now
                )
            return events
        # data_nonce(peer_id, seq, key_id, ctrl), from the bytes at hand
        nonce = b"".join((self.peer_id, seq_bytes, bytes((key_id, header[0], P.OSGP_NONCE_DOMAIN_DATA))))
        aad = b"".join((header, buf[:_PREFIX_LEN], dest))
        try:
            plain = rx.aead.decrypt(nonce, buf[_PREFIX_LEN:], aad)
        except InvalidTag:
            events = [FrameDropped(DropReason.AUTH, key_id, seq)]
            if broadcast:
                # Counted, but a forged broadcast must not push a whole domain into FAILED.
                self._count("auth_failures")
                return events
            events += self._maybe_error(AuthenticationFailure(key_id=key_id, seq=seq), now)
            return self._auth_failure(events)
        # Verified: only now does any state change.
        rx.mark(seq, size)
        self._consecutive = 0
        self._frames_ok += 1
        events = [] if len(table) == 1 else self._on_verified(rx, broadcast)
        self._unsaved += 1
        if self.config.rx_save_interval and self._unsaved >= self.config.rx_save_interval:
            self._save()  # the window is durable before the frame is delivered
        if not management:
            events.append(DataReceived(plain, key_id, seq, broadcast))
            return events
        if broadcast:
            return events + self._drop(DropReason.UNEXPECTED, "unexpected", key_id, seq)
        try:
            msg = decode_message(plain)
        except DecodeError:
            return events + self._drop(DropReason.MALFORMED, "malformed", key_id, seq)
        if self.role is Role.LNAP and isinstance(msg, UpdateDomainKeys):
            return events + self._lnap_update_domain_keys(msg)
        if self.role is Role.NNAP and isinstance(msg, UpdateDomainKeysResponse):
            return events + self._nnap_update_response(msg)
        return events + self._drop(DropReason.UNEXPECTED, "unexpected", key_id, seq)

    def _on_verified(self, rx: _Key, broadcast: bool) -> list[ChannelEvent]:
        table = self._bc_rx if broadcast else self._uc_rx
        newest = next(reversed(table))
        if rx.key_id != newest or len(table) == 1:
            return []
        for old in [k for k in table if k != newest]:
            del table[old]
        kind = KeyKind.BROADCAST if broadcast else KeyKind.UNICAST
        if not broadcast and self._uc_tx_next is not None and self._uc_tx_next.key_id == newest:
            self._uc_tx, self._uc_tx_next = self._uc_tx_next, None  # LNAP: the NNAP has switched
        self._save()
        return [KeyActivated(newest, kind)]

    # -- key management ------------------------------------------------------------------------
    def _udk(self, key_id: int, flags: int, key: bytes) -> list[ChannelEvent]:
        msg = UpdateDomainKeys(key_id=key_id, flags=flags, wrapped_key=wrap_key(self._kek, key))
        return [SendProtected(msg.encode())]

    def _require_nnap_commissioned(self) -> None:
        if self.role is not Role.NNAP:
            raise LocalProtocolError("only the NNAP distributes keys")
        if self._state is not ChannelState.COMMISSIONED:
            raise LocalProtocolError(f"cannot update keys in state {self._state.value}")

    def renew_unicast_key(self, now: float) -> list[ChannelEvent]:
        """NNAP: start renewing the unicast key (UpdateDomainKeys, flags 0)."""
        self._require_nnap_commissioned()
        if self._uc_pending is None:
            self._uc_pending = (self._next_key_id(), self._random(P.OSGP_KEY_LEN))
        key_id, key = self._uc_pending
        return self._udk(key_id, 0, key)

    def send_broadcast_key(self, sender: BroadcastSender, now: float) -> list[ChannelEvent]:
        """NNAP: send this LNAP the broadcast key (the pending one, else the current one)."""
        self._require_nnap_commissioned()
        key_id, key = sender._distribution_key()
        self._pending_kinds()[key_id] = KeyKind.BROADCAST
        return self._udk(key_id, P.OSGP_UDK_FLAG_BROADCAST, key)

    def send_oma_key(self, oma_key: bytes, key_id: int, now: float) -> list[ChannelEvent]:
        """NNAP: send a 12-byte LonTalk OMA key (flags bit 1; padded with 4 zero bytes)."""
        self._require_nnap_commissioned()
        key = check_key(oma_key, "oma_key", P.OSGP_OMA_KEY_LEN) + bytes(
            P.OSGP_KEY_LEN - P.OSGP_OMA_KEY_LEN
        )
        if not 0 <= key_id <= P.OSGP_KEY_ID_MAX:
            raise EncodeError("must be 0..255", field="key_id")
        self._pending_kinds()[key_id] = KeyKind.OMA
        return self._udk(key_id, P.OSGP_UDK_FLAG_OMA, key)

    def _lnap_update_domain_keys(self, msg: UpdateDomainKeys) -> list[ChannelEvent]:
        def answer(status: int) -> list[ChannelEvent]:
            return [
                SendProtected(UpdateDomainKeysResponse(key_id=msg.key_id, status=status).encode())
            ]

        if msg.flags == P.OSGP_UDK_FLAGS_KNOWN:  # both bits: meaningless
            self._count("unexpected")
            return answer(P.OSGP_STATUS_UNSUPPORTED)
        try:
            key = unwrap_key(self._kek, msg.wrapped_key)
        except AuthenticationFailed:
            self._count("auth_failures")
            return answer(P.OSGP_STATUS_REJECTED)
        events: list[ChannelEvent]
        if msg.flags & P.OSGP_UDK_FLAG_OMA:
            if any(key[P.OSGP_OMA_KEY_LEN :]):
                return answer(P.OSGP_STATUS_REJECTED)
            return answer(P.OSGP_STATUS_SUCCESS) + [
                OmaKeyReceived(msg.key_id, key[: P.OSGP_OMA_KEY_LEN])
            ]
        if msg.flags & P.OSGP_UDK_FLAG_BROADCAST:
            have = self._bc_rx.get(msg.key_id)
            if have is not None and have.key == key:
                return answer(P.OSGP_STATUS_SUCCESS)  # retransmission
            if have is not None and len(self._bc_rx) == 1:
                return answer(P.OSGP_STATUS_REJECTED)  # would replace the active key in place
            bc = self._bc_keys()
            bc.pop(msg.key_id, None)
            bc[msg.key_id] = _Key(msg.key_id, key).rx(self.config.broadcast_window)
            events = answer(P.OSGP_STATUS_SUCCESS) + [KeyInstalled(msg.key_id, KeyKind.BROADCAST)]
            self._save()
            return events
        # Unicast renewal.
        have = self._uc_rx.get(msg.key_id)
        if have is not None and have.key == key:
            return answer(P.OSGP_STATUS_SUCCESS)
        if self._uc_tx is not None and msg.key_id == self._uc_tx.key_id:
            return answer(P.OSGP_STATUS_REJECTED)
        new = self._new_key(msg.key_id, key, P.OSGP_SEQ_FIRST)
        self._uc_rx.pop(msg.key_id, None)
        self._uc_rx[msg.key_id] = new
        self._uc_tx_next = new
        events = answer(P.OSGP_STATUS_SUCCESS) + [KeyInstalled(msg.key_id, KeyKind.UNICAST)]
        self._save()
        return events

    def _nnap_update_response(self, msg: UpdateDomainKeysResponse) -> list[ChannelEvent]:
        ok = msg.status == P.OSGP_STATUS_SUCCESS
        if self._uc_pending is not None and msg.key_id == self._uc_pending[0]:
            key_id, key = self._uc_pending
            self._uc_pending = None
            if ok:
                # Switch transmit now; keep the old receive key until the LNAP's first
                # frame under the new key.
                new = self._uc_tx = self._new_key(key_id, key, P.OSGP_SEQ_FIRST)
                self._uc_rx.pop(key_id, None)
                self._uc_rx[key_id] = new
                self._save()
            return [KeyUpdateConfirmed(key_id, KeyKind.UNICAST, ok)]
        kind = self._other_pending.get(msg.key_id)
        if kind is not None:
            del self._other_pending[msg.key_id]
        if kind is None:
            return self._drop(DropReason.UNEXPECTED, "unexpected")
        return [KeyUpdateConfirmed(msg.key_id, kind, ok)]

    # -- snapshot / restore ------------------------------------------------------------------
    def snapshot(self) -> ChannelSnapshot:
        """Keys, counters and reservation ceilings (the in-flight handshake is not kept)."""
        keys: list[KeySnapshot] = []
        if self._uc_tx is not None:
            keys.append(self._uc_tx.tx_snapshot("uc-tx", self.name, "uc"))
        if self._uc_tx_next is not None:
            keys.append(self._uc_tx_next.tx_snapshot("uc-tx-next", self.name, "uc"))
        keys += [rx.rx_snapshot("uc-rx") for rx in self._uc_rx.values()]
        keys += [rx.rx_snapshot("bc-rx") for rx in self._bc_rx.values()]
        return ChannelSnapshot(
            name=self.name,
            role=self.role,
            local_id=self.local_id,
            peer_id=self.peer_id,
            psk=self._psk,
            state=self._state,
            generation=self._generation,
            keys=tuple(keys),
            consecutive_failures=self._consecutive,
            counters=self.counters,
        )

    @classmethod
    def from_snapshot(
        cls,
        snap: ChannelSnapshot,
        *,
        config: ChannelConfig | None = None,
        random: RandomSource | None = None,
        persistence: SequencePersistence | None = None,
    ) -> SecureChannel:
        """Resume a channel.  Transmit keys continue at their reservation ceiling, so numbers
        reserved before a crash are skipped, never reused."""
        ch = cls(
            role=snap.role,
            local_id=snap.local_id,
            peer_id=snap.peer_id,
            psk=snap.psk,
            config=config,
            random=random,
            persistence=persistence,
            name=snap.name,
        )
        ch._state = snap.state
        ch._generation = snap.generation
        ch._consecutive = snap.consecutive_failures
        if any(getattr(snap.counters, name) for name in _Counts.__slots__):
            c = ch._c = _Counts()
            for name in _Counts.__slots__:
                setattr(c, name, getattr(snap.counters, name))
        ch._frames_ok = snap.counters.frames_ok
        for k in snap.keys:
            if k.role in ("uc-tx", "uc-tx-next"):
                if k.slot is None:
                    raise DecodeError("transmit key without a slot", field="snapshot.keys.slot")
                tx = _Key(k.key_id, k.key).tx(k.ceiling, k.slot)
                if k.role == "uc-tx":
                    ch._uc_tx = tx
                else:
                    ch._uc_tx_next = tx
            elif k.role not in ("uc-rx", "bc-rx"):
                raise DecodeError(f"unknown key role {k.role!r}", field="snapshot.keys.role")
        for k in snap.keys:
            if k.role == "uc-rx":
                # the session key's transmit and receive entries become one key object again
                rx = _key_like((ch._uc_tx, ch._uc_tx_next), k.key_id, k.key)
                ch._uc_rx[k.key_id] = rx.rx(ch.config.unicast_window, k.highest, k.bitmap)
            elif k.role == "bc-rx":
                ch._bc_keys()[k.key_id] = _Key(k.key_id, k.key).rx(
                    ch.config.broadcast_window, k.highest, k.bitmap
                )
        return ch


_Handler = Callable[[SecureChannel, Message, bytes, float], list[ChannelEvent]]
# class-level dispatch of unprotected handshake messages: role -> message type -> handler
_HANDLERS: dict[Role, dict[type, _Handler]] = {
    Role.NNAP: {
        ChallengeResponse: SecureChannel._nnap_challenge_response,  # type: ignore[dict-item]
        CommissionResponse: SecureChannel._nnap_commission_response,  # type: ignore[dict-item]
    },
    Role.LNAP: {
        ChallengeRequest: SecureChannel._lnap_challenge_request,  # type: ignore[dict-item]
        CommissionRequest: SecureChannel._lnap_commission_request,  # type: ignore[dict-item]
    },
}


# --------------------------------------------------------------------------- broadcast (NNAP)
class BroadcastSender:
    """NNAP side of the domain broadcast key K_bc: protects broadcast PDUs.

    ``new_key()`` makes a pending key to distribute with
    :meth:`SecureChannel.send_broadcast_key`; ``activate()`` switches transmission
    to it (LNAPs keep the old key until they verify a frame under the new one)."""

    def __init__(
        self,
        source_id: bytes,
        *,
        random: RandomSource | None = None,
        persistence: SequencePersistence | None = None,
        name: str | None = None,
        seq_block: int = 1024,
    ) -> None:
        self.source_id = _check_id(source_id, "source_id")
        self._random: RandomSource = random or _default_random()
        self._persist: SequencePersistence = persistence or _VOLATILE
        self.name = name or f"bc:{self.source_id.hex()}"
        if seq_block < 1:
            raise EncodeError("must be >= 1", field="seq_block")
        self._block = seq_block
        self._generation = 0
        self._tx: _Key | None = None
        self._next: _Key | None = None

    def __repr__(self) -> str:
        cur = None if self._tx is None else self._tx.key_id
        nxt = None if self._next is None else self._next.key_id
        return f"<BroadcastSender {self.source_id.hex()} key_id={cur} pending={nxt}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("BroadcastSender holds keys and cannot be pickled; use snapshot()")

    @property
    def key_id(self) -> int | None:
        return None if self._tx is None else self._tx.key_id

    @property
    def pending_key_id(self) -> int | None:
        return None if self._next is None else self._next.key_id

    def new_key(self) -> int:
        """Create the next K_bc (pending until :meth:`activate`); returns its KeyID."""
        if self._next is not None:
            return self._next.key_id
        key_id = 0 if self._tx is None else (self._tx.key_id + 1) % (P.OSGP_KEY_ID_MAX + 1)
        self._generation += 1
        self._next = _Key(key_id, self._random(P.OSGP_KEY_LEN)).tx(P.OSGP_SEQ_FIRST, self._generation)
        self._persist.save_snapshot(self.snapshot())
        return key_id

    def activate(self) -> int:
        """Transmit under the pending key from now on; returns its KeyID."""
        if self._next is None:
            raise LocalProtocolError("no pending broadcast key: call new_key() first")
        self._tx, self._next = self._next, None
        self._persist.save_snapshot(self.snapshot())
        return self._tx.key_id

    def _distribution_key(self) -> tuple[int, bytes]:
        k = self._next or self._tx
        if k is None:
            raise LocalProtocolError("no broadcast key: call new_key() first")
        return k.key_id, k.key

    def protect(self, plaintext: bytes, *, header: bytes, dest: bytes, now: float) -> bytes:
        """Protect one broadcast PDU payload under the active K_bc."""
        if self._tx is None:
            raise LocalProtocolError("no active broadcast key")
        return _seal(
            self._tx, self.source_id, plaintext, header, dest, self._persist, self._block, self.name, "bc"
        )

    def snapshot(self) -> BroadcastSnapshot:
        keys = []
        if self._tx is not None:
            keys.append(self._tx.tx_snapshot("bc-tx", self.name, "bc"))
        if self._next is not None:
            keys.append(self._next.tx_snapshot("bc-tx-next", self.name, "bc"))
        return BroadcastSnapshot(self.name, self.source_id, self._generation, tuple(keys))

    @classmethod
    def from_snapshot(
        cls,
        snap: BroadcastSnapshot,
        *,
        random: RandomSource | None = None,
        persistence: SequencePersistence | None = None,
        seq_block: int = 1024,
    ) -> BroadcastSender:
        s = cls(
            snap.source_id,
            random=random,
            persistence=persistence,
            name=snap.name,
            seq_block=seq_block,
        )
        s._generation = snap.generation
        for k in snap.keys:
            if k.slot is None or k.role not in ("bc-tx", "bc-tx-next"):
                raise DecodeError(f"bad broadcast key entry {k.role!r}", field="snapshot.keys")
            tx = _Key(k.key_id, k.key).tx(k.ceiling, k.slot)
            if k.role == "bc-tx":
                s._tx = tx
            else:
                s._next = tx
        return s
