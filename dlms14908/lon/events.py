"""Events returned by the LonTalk transaction layer (:mod:`dlms14908.lon.transaction`).

Frozen, slotted dataclasses under one base (style.md §b4).  Remote garbage never raises out
of the transaction layer: it becomes :class:`FrameDropped`.  The events made on every
round trip write their slots through the slot descriptors (``init=False`` + an ``__init__``
with the generated one's signature): the same frozen values, a third cheaper to make.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from .frame import Address, AnyApdu

__all__ = [
    "AckReceived",
    "AuthenticationRejected",
    "FrameDropped",
    "LonEvent",
    "LonEventT",
    "MessageCompleted",
    "MessageFailed",
    "MessageReceived",
    "ReceiveHandle",
    "ResponseReceived",
    "Service",
]


class Service(Enum):
    """ISO/IEC 14908-1 message services."""

    ACKD = "ackd"
    UNACKD_RPT = "unackd_rpt"
    UNACKD = "unackd"
    REQUEST = "request"


def _slot_setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    """The ``__set__`` of each field's slot descriptor, in field order."""
    return tuple(cls.__dict__[f.name].__set__ for f in fields(cls))


@dataclass(frozen=True, slots=True, init=False)
class ReceiveHandle:
    """Identifies a received REQUEST so that the application can :meth:`respond` to it."""

    key: tuple[object, ...]
    trans_no: int

    def __init__(self, key: tuple[object, ...], trans_no: int) -> None:
        s_key, s_trans_no = _RH
        s_key(self, key)
        s_trans_no(self, trans_no)


@dataclass(frozen=True, slots=True)
class LonEvent:
    """Base class of everything the transaction layer returns."""


@dataclass(frozen=True, slots=True, init=False)
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

    def __init__(
        self,
        source: Address,
        apdu: AnyApdu,
        service: Service,
        trans_no: int | None,
        priority: bool,
        domain: bytes,
        handle: ReceiveHandle | None = None,
        authenticated: bool = False,
    ) -> None:
        s0, s1, s2, s3, s4, s5, s6, s7 = _MR
        s0(self, source)
        s1(self, apdu)
        s2(self, service)
        s3(self, trans_no)
        s4(self, priority)
        s5(self, domain)
        s6(self, handle)
        s7(self, authenticated)


@dataclass(frozen=True, slots=True, init=False)
class ResponseReceived(LonEvent):
    """A response to our REQUEST ``tid`` (one per responder; duplicates suppressed)."""

    tid: int
    source: Address
    apdu: AnyApdu

    def __init__(self, tid: int, source: Address, apdu: AnyApdu) -> None:
        s0, s1, s2 = _RR
        s0(self, tid)
        s1(self, source)
        s2(self, apdu)


@dataclass(frozen=True, slots=True, init=False)
class AckReceived(LonEvent):
    """An acknowledgement for ``tid``; ``member`` is set for group (2b) acks."""

    tid: int
    source: Address
    member: int | None = None

    def __init__(self, tid: int, source: Address, member: int | None = None) -> None:
        s0, s1, s2 = _AR
        s0(self, tid)
        s1(self, source)
        s2(self, member)


@dataclass(frozen=True, slots=True, init=False)
class MessageCompleted(LonEvent):
    """Message ``tid`` completed successfully (ACKD: all acks; REQUEST: all responses;
    UNACKD_RPT: last repeat sent; UNACKD: sent)."""

    tid: int
    service: Service
    transmissions: int
    "How many times the message (or its reminder) went on the wire."

    def __init__(self, tid: int, service: Service, transmissions: int) -> None:
        s0, s1, s2 = _MC
        s0(self, tid)
        s1(self, service)
        s2(self, transmissions)


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


_RH = _slot_setters(ReceiveHandle)
_MR = _slot_setters(MessageReceived)
_RR = _slot_setters(ResponseReceived)
_AR = _slot_setters(AckReceived)
_MC = _slot_setters(MessageCompleted)

LonEventT = (
    MessageReceived
    | ResponseReceived
    | AckReceived
    | MessageCompleted
    | MessageFailed
    | AuthenticationRejected
    | FrameDropped
)
