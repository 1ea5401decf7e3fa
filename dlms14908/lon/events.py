"""Events returned by the LonTalk transaction layer (:mod:`dlms14908.lon.transaction`).

Frozen, slotted dataclasses under one base (style.md §b4).  Remote garbage never raises out
of the transaction layer: it becomes :class:`FrameDropped`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .frame import Address, AnyApdu

__all__ = [
    "Service",
    "ReceiveHandle",
    "LonEvent",
    "MessageReceived",
    "ResponseReceived",
    "AckReceived",
    "MessageCompleted",
    "MessageFailed",
    "AuthenticationRejected",
    "FrameDropped",
    "LonEventT",
]


class Service(Enum):
    """ISO/IEC 14908-1 message services."""

    ACKD = "ackd"
    UNACKD_RPT = "unackd_rpt"
    UNACKD = "unackd"
    REQUEST = "request"


@dataclass(frozen=True, slots=True)
class ReceiveHandle:
    """Identifies a received REQUEST so that the application can :meth:`respond` to it."""

    key: tuple[object, ...]
    trans_no: int


@dataclass(frozen=True, slots=True)
class LonEvent:
    """Base class of everything the transaction layer returns."""


@dataclass(frozen=True, slots=True)
class MessageReceived(LonEvent):
    """A new message for this node, delivered exactly once per transaction."""

    source: Address
    "The address of the received frame (source subnet/node and destination form)."
    apdu: AnyApdu
    service: Service
    trans_no: int | None
    priority: bool
    domain: bytes
    handle: ReceiveHandle | None = None
    "Set for REQUEST: pass it to ``respond()``."
    authenticated: bool = False
    "True when the sender passed a LonTalk challenge."


@dataclass(frozen=True, slots=True)
class ResponseReceived(LonEvent):
    """A response to our REQUEST ``tid`` (one per responder; duplicates suppressed)."""

    tid: int
    source: Address
    apdu: AnyApdu


@dataclass(frozen=True, slots=True)
class AckReceived(LonEvent):
    """An acknowledgement for ``tid``; ``member`` is set for group (2b) acks."""

    tid: int
    source: Address
    member: int | None = None


@dataclass(frozen=True, slots=True)
class MessageCompleted(LonEvent):
    """Message ``tid`` completed successfully (ACKD: all acks; REQUEST: all responses;
    UNACKD_RPT: last repeat sent; UNACKD: sent)."""

    tid: int
    service: Service
    transmissions: int
    "How many times the message (or its reminder) went on the wire."


@dataclass(frozen=True, slots=True)
class MessageFailed(LonEvent):
    """Message ``tid`` failed: retries exhausted without every ack/response."""

    tid: int
    service: Service
    reason: str
    transmissions: int
    missing: tuple[int, ...] = ()
    "Group members that never acknowledged/responded (multicast only)."


@dataclass(frozen=True, slots=True)
class AuthenticationRejected(LonEvent):
    """A sender failed our challenge; its message was not delivered or acknowledged."""

    source: Address
    trans_no: int


@dataclass(frozen=True, slots=True)
class FrameDropped(LonEvent):
    """A frame that could not be decoded (bad CRC, malformed) and was discarded."""

    reason: str
    data: bytes


LonEventT = (
    MessageReceived
    | ResponseReceived
    | AckReceived
    | MessageCompleted
    | MessageFailed
    | AuthenticationRejected
    | FrameDropped
)
