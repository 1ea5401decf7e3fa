"""A sans-I/O LonTalk node of IEC 62056-8-8: transaction layer + adaptation endpoints +
optional Annex E repeater/agent role + optional COSEM server.

:class:`LonNode` has the shape every driver of this project knows
(``frames_to_send`` / ``receive_frame`` / ``handle_timer`` / ``next_timer``, style.md §b2),
so the same object runs on the virtual-time simulated network
(:mod:`dlms14908.simnet`) and behind a real transport (:mod:`dlms14908.aio_link`).

* **Head-end**: :meth:`LonNode.exchange` runs one adaptation exchange
  (:class:`~dlms14908.adaptation.endpoint.ClientEndpoint`) towards a meter, directly or
  through a repeater chain (:class:`Route`); it ends in exactly one
  :class:`ExchangeDone` or :class:`ExchangeFailed` (``error`` is ``TransactionFailed``,
  ``ProxyError(hop=...)``, ``SecurityError``, ``DecodeError`` or ``DlmsTimeout``).
* **Meter**: adaptation messages (code ``AL_MSG_CODE``) go to a
  :class:`~dlms14908.adaptation.endpoint.ServerEndpoint`; the RESPONSE goes back on the
  LonTalk REQUEST.
* **Repeater / agent** (``repeater=True``): a received LTEP frame (0x4D) is decided by
  :func:`dlms14908.repeater.rules.process` and forwarded with the frame's own
  ProxyTxCtrl retries and timer (the agent: with the SICB's); the last retry waits
  ``last_retry_adjust_ms`` longer (per-hop timeout growth, ``LonTransactions.request``'s
  ``last_retry_extra``).  The outcome goes back up
  as 0x4D (+ relayed response) or 0x4C + the proxy count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache

from . import profile as P
from .adaptation.endpoint import ClientEndpoint, Done, Send, ServerEndpoint, Step, address_bytes
from .errors import (
    DecodeError,
    EncodeError,
    LocalProtocolError,
    ProtocolError,
    ProxyError,
    TransactionFailed,
)
from .lon.events import (
    LonEvent,
    MessageCompleted,
    MessageFailed,
    MessageReceived,
    ReceiveHandle,
    ResponseReceived,
    Service,
)
from .lon.frame import Apdu, NeuronIdAddress, SubnetNodeAddress
from .lon.transaction import (
    BroadcastDest,
    Destination,
    GroupDest,
    LonConfig,
    LonTransactions,
    NeuronIdDest,
    NodeDest,
)
from .repeater.ltep import (
    LONG_TIMERS_MS,
    LTEP_CODE,
    NORMAL_TIMERS_MS,
    BroadcastTarget,
    GroupTarget,
    NeuronIdTarget,
    ProxyFailure,
    ProxySuccess,
    ServiceType,
    SubnetNodeTarget,
    Target,
    TxCtrl,
    decode_completion,
    encode_completion,
)
from .repeater.rules import (
    AgentSend,
    NodeAddress,
    build_chain,
    chain_timeout_ms,
    process,
    raise_for_completion,
)
from .transport.channel import A_BAND_BPS, airtime

__all__ = [
    "ExchangeDone",
    "ExchangeFailed",
    "LonNode",
    "NodeCounters",
    "NodeEvent",
    "Route",
    "SourcePlan",
    "Timing",
    "target_for",
]

_SERVICE_TO_ST = {Service.ACKD: ServiceType.ACKD, Service.UNACKD_RPT: ServiceType.UNACKD_RPT,
                  Service.UNACKD: ServiceType.UNACKD, Service.REQUEST: ServiceType.REQUEST}
_ST_TO_SERVICE = {v: k for k, v in _SERVICE_TO_ST.items()}
_AL_MSG_CODE = P.AL_MSG_CODE
_REQUEST = Service.REQUEST
_new = object.__new__


@dataclass(frozen=True, slots=True)
class Route:
    """How the head-end reaches one meter: its address and the repeater chain (may be empty;
    the last repeater is the agent)."""

    dest: NodeDest | NeuronIdDest
    chain: tuple[NodeAddress, ...] = ()

    def __str__(self) -> str:
        d = self.dest
        meter = f"{d.subnet}/{d.node}" if isinstance(d, NodeDest) else d.neuron_id.hex()
        return " -> ".join([*(str(h) for h in self.chain), meter])


def target_for(dest: Destination) -> Target:
    """The LTEP target address of a LonTalk destination."""
    if isinstance(dest, NodeDest):
        return SubnetNodeTarget(dest.node, dest.subnet)
    if isinstance(dest, NeuronIdDest):
        return NeuronIdTarget(bytes(dest.neuron_id), dest.subnet)
    if isinstance(dest, GroupDest):
        return GroupTarget(dest.group, dest.size)
    return BroadcastTarget(dest.subnet)


def _index_for(ms: float) -> tuple[int, bool]:
    for i, t in enumerate(NORMAL_TIMERS_MS):
        if t >= ms:
            return i, False
    for i, t in enumerate(LONG_TIMERS_MS):
        if t >= ms:
            return i, True
    return len(LONG_TIMERS_MS) - 1, True


# L2 header 1 + NPDU header 1 + source 2 + Neuron ID destination 7 + 1-byte domain + SPDU
# header 1 + CRC 2 around the largest APDU
_MAX_LPDU = P.AL_LON_MAX_APDU + 15


@dataclass(frozen=True, slots=True)
class SourcePlan:
    """What the head-end (proxy source) puts in a chain's frame and how it sends it
    (:meth:`Timing.plan`): ``timer`` seconds between tries, ``retries``, and the extra wait
    after the last try, so that the tries cover ``budget`` seconds."""

    repeater_txctrl: TxCtrl
    agent_txctrl: TxCtrl
    long_timer: bool
    timer: float
    retries: int
    last_retry_extra: float
    budget: float


@dataclass(frozen=True, slots=True)
class Timing:
    """Transaction timers derived from the channel: ``frame_time`` is the airtime of the
    largest frame the adaptation layer produces (an ``AL_LON_MAX_APDU`` APDU in an LPDU
    addressed by Neuron ID: :data:`_MAX_LPDU`).

    Through a repeater chain (Annex E, ``osgp-62056-8-8.md`` §3.4-§3.5; docs/wire-format.md
    §5.1) the frame carries the repeaters' ProxyTxCtrl and the agent's SICB
    TxCtrl (:meth:`txctrl`, both with ``repeater_retries``); the head-end's own timers are
    not on the wire [D]: it retries one chain round trip apart (:meth:`source_timer`)
    for as long as the chain may take (:meth:`source_budget`: ``retries`` lost first-hop
    requests, then the chain's worst case :func:`~dlms14908.repeater.rules.chain_timeout_ms`
    and the first hop's round trip).  A retry that reaches the first repeater while the
    chain works is a duplicate it ignores; once it has the completion it answers every
    duplicate with it.  So a lost first-hop frame costs one round trip, not the chain's
    worst case (which used to be the head-end's per-try timer: two lost first-hop frames
    then outlasted the meter's 60 s segment timers, and more repeater retries made that
    worse).  The repeaters' timers stay the reference's: ``repeater_retries`` tries of the
    ProxyTxCtrl timer, the last one lengthened by the per-hop adjust."""

    frame_time: float = airtime(_MAX_LPDU)
    margin: float = 0.2
    retries: int = 3
    repeater_retries: int = 5
    "ProxyTxCtrl and SICB retries (4 bits); 5 from measurements, docs/wire-format.md §5.1"

    @classmethod
    def for_bit_rate(cls, bit_rate: float = A_BAND_BPS, **kw: float) -> Timing:
        from .transport.channel import ChannelConfig

        return cls(frame_time=airtime(_MAX_LPDU, ChannelConfig(bit_rate=bit_rate)), **kw)  # type: ignore[arg-type]

    @property
    def direct_timer(self) -> float:
        """Head-end -> meter transmit timer (one request and its response on the air)."""
        return 2 * self.frame_time + self.margin

    def txctrl(self, chain_len: int) -> tuple[TxCtrl, TxCtrl, bool]:
        """(repeater ProxyTxCtrl, agent SICB TxCtrl, long_timer) for a chain of ``chain_len``."""
        agent_i, agent_long = _index_for((2 * self.frame_time + self.margin) * 1000)
        if agent_long:  # the SICB timer has no long table: the longest normal timer
            agent_i = len(NORMAL_TIMERS_MS) - 1
        rep_i, long = _index_for((2 * self.frame_time * chain_len + self.margin) * 1000)
        return TxCtrl(self.repeater_retries, rep_i), TxCtrl(self.repeater_retries, agent_i), long

    def source_timer(self, chain_len: int) -> float:
        """Head-end per-try timer towards the first repeater: one round trip through the
        whole chain (``chain_len`` repeaters and the meter)."""
        return 2 * self.frame_time * (chain_len + 1) + self.margin

    def source_budget(self, chain_len: int) -> float:
        """How long the head-end's transaction through a chain lasts: ``retries`` lost
        first-hop tries, then the chain's worst case and the first hop's round trip."""
        return self.retries * self.source_timer(chain_len) + self.chain_timeout(chain_len) + self.direct_timer

    def plan(self, chain_len: int) -> SourcePlan:
        """The head-end's frame fields and timers for a chain of ``chain_len`` (cached)."""
        return _plan(self, chain_len)

    def chain_timeout(self, chain_len: int) -> float:
        """The first repeater's worst case (seconds): :func:`~.repeater.rules.chain_timeout_ms`."""
        rt, at, long = self.txctrl(chain_len)
        return chain_timeout_ms(chain_len - 1, rt, at, long) / 1000.0

    def worst_case(self, route: Route) -> float:
        """Upper bound of one exchange step (all head-end retries included).

        Through a chain the head-end's transaction ends within :meth:`source_budget`; the
        bound kept for callers that wait for the LonTalk layer's own verdict is the larger,
        older ``(retries + 1)`` chain worst cases (a first repeater that served every try
        as a new chain), so no caller's wait shrank with the head-end's shorter timer."""
        if route.chain:
            n = len(route.chain)
            return max(self.source_budget(n), (self.retries + 1) * self.chain_timeout(n)) + 1.0
        return self.direct_timer * (self.retries + 1) + 1.0


@lru_cache(maxsize=256)
def _plan(t: Timing, chain_len: int) -> SourcePlan:
    rt, at, long = t.txctrl(chain_len)
    timer = t.source_timer(chain_len)
    budget = t.source_budget(chain_len)
    # as many tries, one round trip apart, as fit the budget (at least 1 + retries, at most
    # 16: a 4-bit retry count); the last one waits out the rest
    tries = min(16, max(t.retries + 1, int(budget // timer)))
    return SourcePlan(rt, at, long, timer, tries - 1, max(0.0, budget - tries * timer), budget)


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """Base of the events :class:`LonNode` adds to the transaction layer's."""


@dataclass(frozen=True, slots=True, init=False)
class ExchangeDone(NodeEvent):
    xid: int
    apdu: bytes | None

    def __init__(self, xid: int, apdu: bytes | None) -> None:
        # one per exchange: the slots are written through their descriptors (frozen all the same)
        _DONE_XID(self, xid)
        _DONE_APDU(self, apdu)


@dataclass(frozen=True, slots=True)
class ExchangeFailed(NodeEvent):
    xid: int
    error: ProtocolError


_DONE_XID = ExchangeDone.__dict__["xid"].__set__
_DONE_APDU = ExchangeDone.__dict__["apdu"].__set__


@dataclass(slots=True)
class NodeCounters:
    proxy_forwarded: int = 0
    proxy_agent_sends: int = 0
    proxy_failures_sent: int = 0
    proxy_malformed: int = 0
    proxy_ignored: int = 0
    "LTEP frames received by a node that is not a repeater"
    exchanges_done: int = 0
    exchanges_failed: int = 0


@dataclass(slots=True)
class _Exchange:
    xid: int
    endpoint: ClientEndpoint
    route: Route
    confirmed: bool = True
    step_confirmed: bool = True


@dataclass(slots=True)
class _Relay:
    handle: ReceiveHandle | None
    count: int  # proxy count the node received (0 = agent)
    agent: bool


@dataclass(slots=True)
class _Owner:
    exchange: _Exchange | None = None
    relay: _Relay | None = None
    response: bytes | None = None


class LonNode:
    """One LonTalk node (sans-I/O).  See the module docstring for the roles."""

    def __init__(
        self,
        config: LonConfig,
        *,
        server: ServerEndpoint | None = None,
        repeater: bool = False,
        timing: Timing | None = None,
        domain_key: bytes | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        name: str = "",
    ) -> None:
        self.config = config
        self.name = name or f"{config.subnet}/{config.node}"
        self.lon = LonTransactions(config, rng=rng)
        self.server = server
        self.repeater = repeater
        self.timing = timing or Timing()
        self._domain_key = domain_key
        self.counters = NodeCounters()
        self._owners: dict[int, _Owner] = {}
        self._next_xid = 1
        self._events: list[LonEvent | NodeEvent] = []
        self._direct_timer: tuple[Timing | None, float] = (None, 0.0)
        # the driver asks for frames and deadlines several times per frame: without a server
        # these are the transaction layer's own methods (no extra call)
        self.frames_to_send = self.lon.frames_to_send  # type: ignore[method-assign]
        if server is None:
            self.next_timer = self.lon.next_timer  # type: ignore[method-assign]

    def __repr__(self) -> str:
        roles = [r for r, on in (("server", self.server), ("repeater", self.repeater)) if on]
        return f"<LonNode {self.name} {'+'.join(roles) or 'head-end'}>"

    # ------------------------------------------------------------------ head-end API
    def exchange(self, endpoint: ClientEndpoint, route: Route, apdu: bytes, *, confirmed: bool = True,
                 now: float) -> int:
        """Start sending ``apdu`` to the meter of ``route``; returns the exchange id.

        Its outcome comes out of a later call as :class:`ExchangeDone` / :class:`ExchangeFailed`
        (or out of :meth:`poll_events` when it failed at once)."""
        xid = self._next_xid
        self._next_xid += 1
        x = _new(_Exchange)  # _Exchange(xid, endpoint, route, confirmed), without the __init__ call
        x.xid = xid
        x.endpoint = endpoint
        x.route = route
        x.confirmed = confirmed
        x.step_confirmed = True
        try:
            step = endpoint.begin(apdu, confirmed=confirmed, now=now)
        except ProtocolError as exc:
            self._events.append(ExchangeFailed(xid, exc))
            self.counters.exchanges_failed += 1
            return xid
        if type(step) is not Send or route.chain:
            self._step(x, step, now)
            return xid
        # _step(x, step, now) of a direct first step, inline: keep the two in step
        x.step_confirmed = c = step.confirmed
        t = self.timing
        dt = self._direct_timer
        if dt[0] is not t:  # Timing is frozen: its direct_timer, once per Timing object
            dt = self._direct_timer = (t, t.direct_timer)
        try:
            tid = self.lon.request(route.dest, step.data, service=_REQUEST if c else Service.ACKD, now=now,
                                   retries=t.retries, tx_timer=dt[1])
        except (LocalProtocolError, EncodeError) as exc:
            endpoint.abort()
            self.counters.exchanges_failed += 1
            self._events.append(ExchangeFailed(xid, exc))
            return xid
        o = _new(_Owner)  # _Owner(x), without the __init__ call
        o.exchange = x
        o.relay = None
        o.response = None
        self._owners[tid] = o
        return xid

    def poll_events(self) -> list[LonEvent | NodeEvent]:
        """Events produced outside receive_frame/handle_timer (e.g. by :meth:`exchange`)."""
        ev, self._events = self._events, []
        return ev

    def link_counters(self) -> dict[str, dict[str, int]]:
        """Counters for COSEM classes 132/133 and the adaptation layer (the meter simulator's provider)."""
        c = self.lon.counters
        out = {"class132": c.class132(), "class133": c.class133()}
        if self.server is not None:
            out["adaptation"] = self.server.counters.as_dict()
        return out

    # ------------------------------------------------------------------ driver API
    def frames_to_send(self, now: float | None = None) -> list[bytes]:
        return self.lon.frames_to_send(now)

    def next_timer(self) -> float | None:
        lon = self.lon
        t = lon._timer if not lon._timer_dirty else lon.next_timer()  # its cache, without the call
        if self.server is not None:
            st = self.server.next_timer()
            if st is not None and (t is None or st < t):
                t = st
        return t

    def handle_timer(self, now: float) -> list[LonEvent | NodeEvent]:
        out = self._handle(self.lon.handle_timer(now), now)
        if self.server is not None:
            st = self.server.next_timer()
            if st is not None and st <= now:
                self.server.handle_timer(now)
        return out

    def receive_frame(self, data: bytes, now: float) -> list[LonEvent | NodeEvent]:
        # _handle(self.lon.receive_frame(data, now), now), inline: keep the two in step
        events = self.lon.receive_frame(data, now)
        out: list[LonEvent | NodeEvent] = self._events
        self._events = []
        for ev in events:
            t = type(ev)  # the transaction layer's events are final classes
            if t is ResponseReceived:
                o = self._owners.get(ev.tid)  # type: ignore[attr-defined]
                if o is not None and o.response is None:
                    apdu = ev.apdu  # type: ignore[attr-defined]
                    try:
                        o.response = apdu._raw  # what encode() returns, without the call
                    except AttributeError:
                        o.response = apdu.encode()
                continue
            if t is MessageCompleted:
                o = self._owners.pop(ev.tid, None)  # type: ignore[attr-defined]
                if o is not None:
                    x = o.exchange
                    if o.relay is not None or x is None or x.route.chain:
                        self._completed(o, True, now)
                        continue
                    # _completed(o, True, now) of a direct exchange, inline
                    try:
                        step = x.endpoint.feed(o.response if x.step_confirmed else None, now)
                    except ProtocolError as exc:
                        x.endpoint.abort()
                        self.counters.exchanges_failed += 1
                        self._events.append(ExchangeFailed(x.xid, exc))
                        continue
                    if type(step) is Done:  # _step(x, step, now) of the last step, inline
                        self.counters.exchanges_done += 1
                        done = _new(ExchangeDone)
                        _DONE_XID(done, x.xid)
                        _DONE_APDU(done, step.apdu)
                        self._events.append(done)
                    else:
                        self._step(x, step, now)
                    continue
            elif t is MessageReceived:
                apdu = ev.apdu  # type: ignore[attr-defined]
                if type(apdu) is Apdu:
                    code = apdu.code
                    server = self.server
                    if code == _AL_MSG_CODE and server is not None:
                        # _serve(ev, now), inline
                        src = ev.source  # type: ignore[attr-defined]
                        dest = None
                        if type(src) is SubnetNodeAddress:
                            dest = b"".join((ev.domain, bytes((src.dst_subnet, src.dst_node))))  # type: ignore[attr-defined]
                        elif isinstance(src, NeuronIdAddress):
                            dest = address_bytes(ev.domain, neuron_id=src.neuron_id)  # type: ignore[attr-defined]
                        elif isinstance(src, SubnetNodeAddress):
                            dest = address_bytes(ev.domain, subnet=src.dst_subnet, node=src.dst_node)  # type: ignore[attr-defined]
                        try:
                            body = apdu._raw  # what encode() returns, without the call
                        except AttributeError:
                            body = apdu.encode()
                        reply = server.on_message((src.src_subnet, src.src_node), body,
                                                  confirmed=ev.service is _REQUEST, now=now, dest=dest)  # type: ignore[attr-defined]
                        if reply is not None and ev.handle is not None:  # type: ignore[attr-defined]
                            self.lon.respond(ev.handle, reply, now=now)  # type: ignore[attr-defined]
                        continue
                    if code == LTEP_CODE:
                        self._proxy(ev, now)  # type: ignore[arg-type]
                        continue
            elif t is MessageFailed:
                o = self._owners.pop(ev.tid, None)  # type: ignore[attr-defined]
                if o is not None:
                    self._completed(o, False, now, ev)  # type: ignore[arg-type]
                    continue
            out.append(ev)
        if self._events:
            out.extend(self._events)
            self._events = []
        return out

    # ------------------------------------------------------------------ internals
    def _handle(self, events: list[LonEvent], now: float) -> list[LonEvent | NodeEvent]:
        out: list[LonEvent | NodeEvent] = self._events
        self._events = []
        for ev in events:
            t = type(ev)  # the transaction layer's events are final classes
            if t is ResponseReceived:
                o = self._owners.get(ev.tid)  # type: ignore[attr-defined]
                if o is not None and o.response is None:
                    apdu = ev.apdu  # type: ignore[attr-defined]
                    try:
                        o.response = apdu._raw  # what encode() returns, without the call
                    except AttributeError:
                        o.response = apdu.encode()
                continue
            if t is MessageCompleted:
                o = self._owners.pop(ev.tid, None)  # type: ignore[attr-defined]
                if o is not None:
                    self._completed(o, True, now)
                    continue
            elif t is MessageReceived:
                apdu = ev.apdu  # type: ignore[attr-defined]
                if type(apdu) is Apdu:
                    code = apdu.code
                    if code == _AL_MSG_CODE and self.server is not None:
                        self._serve(ev, now)  # type: ignore[arg-type]
                        continue
                    if code == LTEP_CODE:
                        self._proxy(ev, now)  # type: ignore[arg-type]
                        continue
            elif t is MessageFailed:
                o = self._owners.pop(ev.tid, None)  # type: ignore[attr-defined]
                if o is not None:
                    self._completed(o, False, now, ev)  # type: ignore[arg-type]
                    continue
            out.append(ev)
        if self._events:
            out.extend(self._events)
            self._events = []
        return out

    def _serve(self, ev: MessageReceived, now: float) -> None:
        assert self.server is not None
        src = ev.source
        peer: Hashable = (src.src_subnet, src.src_node)
        dest = None
        # address_bytes() of the decoded destination (whose ranges the frame decoder checked)
        if type(src) is SubnetNodeAddress:
            dest = b"".join((ev.domain, bytes((src.dst_subnet, src.dst_node))))
        elif isinstance(src, NeuronIdAddress):
            dest = address_bytes(ev.domain, neuron_id=src.neuron_id)
        elif isinstance(src, SubnetNodeAddress):
            dest = address_bytes(ev.domain, subnet=src.dst_subnet, node=src.dst_node)
        apdu = ev.apdu
        try:
            data = apdu._raw  # type: ignore[union-attr]  # what encode() returns, without the call
        except AttributeError:
            data = apdu.encode()
        reply = self.server.on_message(peer, data, confirmed=ev.service is _REQUEST, now=now, dest=dest)
        if reply is not None and ev.handle is not None:
            self.lon.respond(ev.handle, reply, now=now)

    def _request(self, dest: Destination, data: bytes, service: Service, now: float, *, retries: int,
                 timer: float, last_retry_extra: float = 0.0) -> int:
        # the transaction layer checks the bytes and sends them as they are
        return self.lon.request(dest, data, service=service, now=now, retries=retries, tx_timer=timer,
                                last_retry_extra=last_retry_extra)

    def _step(self, x: _Exchange, step: Step, now: float) -> None:
        if type(step) is Done or isinstance(step, Done):
            self.counters.exchanges_done += 1
            done = _new(ExchangeDone)  # ExchangeDone(x.xid, step.apdu), without the __init__ call
            _DONE_XID(done, x.xid)
            _DONE_APDU(done, step.apdu)
            self._events.append(done)
            return
        x.step_confirmed = step.confirmed
        route, t = x.route, self.timing
        try:
            if not route.chain:
                dt = self._direct_timer
                if dt[0] is not t:  # Timing is frozen: its direct_timer, once per Timing object
                    dt = self._direct_timer = (t, t.direct_timer)
                tid = self.lon.request(route.dest, step.data,
                                       service=_REQUEST if step.confirmed else Service.ACKD, now=now,
                                       retries=t.retries, tx_timer=dt[1])
            else:
                p = _plan(t, len(route.chain))
                first, frame = build_chain(
                    route.chain, target_for(route.dest), step.data,
                    service=ServiceType.REQUEST if step.confirmed else ServiceType.ACKD,
                    repeater_txctrl=p.repeater_txctrl, agent_txctrl=p.agent_txctrl, long_timer=p.long_timer,
                )
                tid = self._request(NodeDest(first.subnet, first.node), frame, Service.REQUEST, now,
                                    retries=p.retries, timer=p.timer, last_retry_extra=p.last_retry_extra)
        except (LocalProtocolError, EncodeError) as exc:
            x.endpoint.abort()
            self.counters.exchanges_failed += 1
            self._events.append(ExchangeFailed(x.xid, exc))
            return
        o = _new(_Owner)  # _Owner(x), without the __init__ call
        o.exchange = x
        o.relay = None
        o.response = None
        self._owners[tid] = o

    def _completed(self, o: _Owner, ok: bool, now: float, failed: MessageFailed | None = None) -> None:
        if o.relay is not None:
            self._relay_done(o.relay, ok, o.response, now)
            return
        x = o.exchange
        assert x is not None
        try:
            if not ok:
                assert failed is not None
                if x.route.chain:
                    raise ProxyError(
                        f"first repeater {x.route.chain[0]} returned no completion "
                        f"({failed.reason} after {failed.transmissions} tries)"
                    )
                raise TransactionFailed(
                    f"meter {x.route} did not answer ({failed.reason} after {failed.transmissions} tries)",
                    hint=failed,
                )
            data = o.response
            if x.route.chain:
                if data is None:
                    raise ProxyError("proxy chain completed without a completion code")
                data = raise_for_completion(x.route.chain, decode_completion(data))
            step = x.endpoint.feed(data if x.step_confirmed else None, now)
        except ProtocolError as exc:
            x.endpoint.abort()
            self.counters.exchanges_failed += 1
            self._events.append(ExchangeFailed(x.xid, exc))
            return
        self._step(x, step, now)

    # -- Annex E ---------------------------------------------------------------------------
    def _proxy(self, ev: MessageReceived, now: float) -> None:
        if not self.repeater:
            self.counters.proxy_ignored += 1
            return
        data = ev.apdu.encode()
        service = _SERVICE_TO_ST[ev.service]
        try:
            action = process(data, own_subnet=self.config.subnet, src_subnet=ev.source.src_subnet,
                             received_service=service, domain_key=self._domain_key)
        except (DecodeError, EncodeError):
            self.counters.proxy_malformed += 1
            return
        count = data[1] & 0x0F if len(data) > 1 else 0
        handle = ev.handle if ev.service is Service.REQUEST else None
        if isinstance(action, AgentSend):
            self._agent(action, handle, now)
            return
        if action.local_agent_frame is not None:
            try:
                local = process(action.local_agent_frame, own_subnet=self.config.subnet,
                                src_subnet=ev.source.src_subnet, received_service=service,
                                domain_key=self._domain_key)
                if isinstance(local, AgentSend):
                    self._agent(local, None, now)
            except (DecodeError, EncodeError):
                self.counters.proxy_malformed += 1
        nh = action.next_hop
        self.counters.proxy_forwarded += 1
        # per-hop timeout growth: the last retry waits last_retry_adjust_ms longer
        tid = self._request(NodeDest(nh.subnet, nh.node), action.frame, _ST_TO_SERVICE[action.service], now,
                            retries=action.retry, timer=action.timer_ms / 1000.0,
                            last_retry_extra=action.last_retry_adjust_ms / 1000.0)
        self._owners[tid] = _Owner(relay=_Relay(handle, count, agent=False))

    def _agent(self, a: AgentSend, handle: ReceiveHandle | None, now: float) -> None:
        t = a.target
        dest: Destination
        if isinstance(t, SubnetNodeTarget):
            dest = NodeDest(a.target_subnet, t.node)
        elif isinstance(t, NeuronIdTarget):
            dest = NeuronIdDest(t.neuron_id, a.target_subnet)
        elif isinstance(t, GroupTarget):
            dest = GroupDest(t.group, t.size)
        else:
            dest = BroadcastDest(a.target_subnet)
        self.counters.proxy_agent_sends += 1
        try:
            tid = self._request(dest, a.apdu, _ST_TO_SERVICE[a.service], now, retries=a.retry,
                                timer=a.timer_ms / 1000.0)
        except LocalProtocolError:
            self.counters.proxy_malformed += 1
            if handle is not None:
                self.counters.proxy_failures_sent += 1
                self.lon.respond(handle, encode_completion(ProxyFailure(0)), now=now)
            return
        self._owners[tid] = _Owner(relay=_Relay(handle, 0, agent=True))

    def _relay_done(self, r: _Relay, ok: bool, response: bytes | None, now: float) -> None:
        if r.handle is None:
            return
        if not ok:
            reply = encode_completion(ProxyFailure(r.count))
            self.counters.proxy_failures_sent += 1
        elif r.agent:
            reply = encode_completion(ProxySuccess(response or b""))
        else:  # relay the downstream completion unchanged (0x4D + data, or 0x4C + count)
            reply = response if response else encode_completion(ProxySuccess(b""))
        try:
            self.lon.respond(r.handle, reply, now=now)
        except LocalProtocolError:  # the upstream record expired meanwhile
            pass
