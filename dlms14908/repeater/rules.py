"""What a proxy repeater, a proxy agent and the proxy source do with an LTEP frame.

Pure functions over :mod:`.ltep` values (no I/O, no clock): a node that
receives a 0x4D frame calls :func:`process`; the head-end builds a chain with
:func:`build_chain` and maps a 0x4C failure back to the failing node with
:func:`failing_node`.  Rules from ``osgp-62056-8-8.md`` §3.4.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..errors import EncodeError, ProxyError
from .ltep import (
    AddressType,
    AltKey,
    BroadcastTarget,
    GroupTarget,
    Hop,
    NeuronIdTarget,
    ProxyFailure,
    ProxyMode,
    ProxyRequest,
    ProxySuccess,
    ServiceType,
    Sicb,
    SubnetNodeTarget,
    Target,
    TxCtrl,
    _target_type,
    decode_request,
    encode_request,
    without_first_hop,
)

__all__ = [
    "AgentSend",
    "Forward",
    "NodeAddress",
    "build_chain",
    "chain_timeout_ms",
    "failing_node",
    "hop_adjust_ms",
    "process",
    "raise_for_completion",
]


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """A LonTalk subnet/node address (the repeaters of a chain)."""

    subnet: int
    node: int
    alt_path: bool = False

    def __str__(self) -> str:
        return f"{self.subnet}/{self.node}"


@dataclass(frozen=True, slots=True)
class Forward:
    """A repeater's action: send ``frame`` (code 0x4D ...) to ``next_hop``."""

    next_hop: NodeAddress
    frame: bytes
    service: ServiceType  #: the service type the repeater received the frame with
    retry: int
    timer_ms: int
    last_retry_adjust_ms: int  #: extra wait on the last retry for the hops still ahead
    local_agent_frame: bytes | None = None  #: all_agents: also act as agent on this frame


@dataclass(frozen=True, slots=True)
class AgentSend:
    """An agent's action: send ``apdu`` to ``target`` with ``service``."""

    target: Target
    target_subnet: int  #: resolved subnet (compact forms filled in)
    service: ServiceType
    retry: int
    timer_ms: int
    apdu: bytes
    alt_path: bool
    mode: ProxyMode
    auth_key: bytes | None = field(default=None, repr=False)  #: ALTKEY: the key to authenticate with


def hop_adjust_ms(hops_after: int, txctrl: TxCtrl, long_timer: bool) -> int:
    """Per-hop timeout growth of a repeater's last retry (lon-stack-dx)."""
    if long_timer or txctrl.timer >= 10:
        return 512 * hops_after
    if txctrl.timer >= 8:
        return 256 * hops_after
    return 256


def process(
    frame: bytes,
    *,
    own_subnet: int,
    src_subnet: int,
    received_service: ServiceType,
    domain_key: bytes | None = None,
) -> Forward | AgentSend:
    """Decide what a node does with a received 0x4D proxy frame.

    ``own_subnet``: this node's subnet; ``src_subnet``: the source subnet of
    the received LonTalk frame; ``domain_key``: this node's domain
    authentication key (6 bytes, or 12 for OMA) needed in ALTKEY mode.
    """
    req = decode_request(frame)
    if req.hops:
        return _repeat(req, own_subnet, src_subnet, received_service)
    return _agent(req, own_subnet, src_subnet, domain_key)


def _repeat(
    req: ProxyRequest, own_subnet: int, src_subnet: int, service: ServiceType
) -> Forward:
    hop = req.hops[0]
    if hop.subnet is not None:
        subnet = hop.subnet
    elif req.uniform_by_dest:
        subnet = own_subnet
    else:
        subnet = src_subnet
    assert req.txctrl is not None  # guaranteed by the codec when hops exist
    fwd = without_first_hop(req)
    local = None
    if req.all_agents and service in (ServiceType.UNACKD, ServiceType.UNACKD_RPT):
        # all_agents: deliver locally as an agent too (header 0x00, what follows the TxCtrl)
        local = encode_request(replace(fwd, hops=(), txctrl=None, all_agents=False))
    return Forward(
        next_hop=NodeAddress(subnet, hop.node, hop.alt_path),
        frame=encode_request(fwd),
        service=service,
        retry=req.txctrl.retry,
        timer_ms=req.txctrl.timer_ms(req.long_timer),
        last_retry_adjust_ms=hop_adjust_ms(len(fwd.hops), req.txctrl, req.long_timer),
        local_agent_frame=local,
    )


def _agent(
    req: ProxyRequest, own_subnet: int, src_subnet: int, domain_key: bytes | None
) -> AgentSend:
    t = req.target
    if isinstance(t, SubnetNodeTarget):
        if t.compact == AddressType.SUBNET_NODE_COMPACT_SRC:
            subnet = src_subnet
        elif t.compact == AddressType.SUBNET_NODE_COMPACT_DEST:
            subnet = own_subnet
        else:
            assert t.subnet is not None
            subnet = t.subnet
        alt = t.alt_path or req.sicb.path
    elif isinstance(t, NeuronIdTarget):
        subnet, alt = (t.subnet if t.subnet is not None else 0), req.sicb.path
    elif isinstance(t, BroadcastTarget):
        subnet, alt = t.subnet, req.sicb.path
    else:
        subnet, alt = own_subnet, req.sicb.path
    service = req.sicb.service
    if isinstance(t, GroupTarget) and t.compact and t.size == 0 and service == ServiceType.ACKD:
        service = ServiceType.UNACKD  # compact group of size 0 => unacknowledged
    key = None
    if req.alt_key is not None:
        if domain_key is None:
            raise EncodeError("ALTKEY frame but this agent has no domain key", field="altkey")
        key = req.alt_key.apply(domain_key)
    return AgentSend(
        target=t,
        target_subnet=subnet,
        service=service,
        retry=req.sicb.txctrl.retry,
        timer_ms=req.sicb.txctrl.timer_ms(False),
        apdu=req.apdu,
        alt_path=alt,
        mode=req.sicb.mode,
        auth_key=key,
    )


_DEFAULT_TXCTRL = TxCtrl(3, 9)


def build_chain(
    chain: Sequence[NodeAddress],
    target: Target,
    apdu: bytes,
    *,
    service: ServiceType = ServiceType.ACKD,
    repeater_txctrl: TxCtrl = _DEFAULT_TXCTRL,
    agent_txctrl: TxCtrl = _DEFAULT_TXCTRL,
    long_timer: bool = False,
    all_agents: bool = False,
    alt_key: AltKey | None = None,
) -> tuple[NodeAddress, bytes]:
    """The proxy source's frame for a chain of repeaters (the last one is the agent).

    Returns the LonTalk destination (the first repeater) and the 0x4D frame.
    Uniform encoding (subnet omitted) is chosen when every hop is on the
    subnet of the node that forwards to it.
    """
    if not chain:
        raise EncodeError("a proxy chain needs at least one repeater (the agent)", field="chain")
    if len(chain) - 1 > 15:
        raise EncodeError(f"{len(chain)} repeaters, at most 16", field="chain")
    first, rest = chain[0], chain[1:]
    uniform = all(h.subnet == prev.subnet for prev, h in zip(chain, rest))
    hops = tuple(Hop(h.node, None if uniform else h.subnet, h.alt_path) for h in rest)
    req = ProxyRequest(
        hops=hops,
        sicb=Sicb(type=_target_type(target), service=service, txctrl=agent_txctrl,
                  mode=ProxyMode.ALTKEY if alt_key is not None else ProxyMode.NORMAL),
        target=target,
        apdu=apdu,
        txctrl=repeater_txctrl if hops else None,
        uniform_by_dest=uniform and bool(hops),
        long_timer=long_timer,
        all_agents=all_agents,
        alt_key=alt_key,
    )
    return first, encode_request(req)


def failing_node(chain: Sequence[NodeAddress], failure: ProxyFailure) -> int:
    """Index into ``chain`` of the node that reported the failure.

    The first repeater receives count ``len(chain) - 1``; the agent receives 0.
    A failure reported by node *i* means the link from node *i* to the next
    node (or, for the agent, to the target) did not complete.
    """
    total = len(chain) - 1
    if failure.count > total:
        raise ProxyError(f"failure count {failure.count} exceeds the chain's {total} hops")
    return total - failure.count


def raise_for_completion(
    chain: Sequence[NodeAddress], completion: ProxySuccess | ProxyFailure
) -> bytes:
    """Return the relayed data of a success; raise :class:`ProxyError` naming the hop otherwise."""
    if isinstance(completion, ProxySuccess):
        return completion.data
    i = failing_node(chain, completion)
    nxt = "the target" if i == len(chain) - 1 else f"repeater {chain[i + 1]}"
    raise ProxyError(f"repeater {chain[i]} could not reach {nxt}", hop=i)


def chain_timeout_ms(
    hops: int, repeater_txctrl: TxCtrl, agent_txctrl: TxCtrl, long_timer: bool = False
) -> int:
    """An upper bound the proxy source should wait for the completion of a chain.

    Every repeater may spend ``(retry + 1) * timer`` plus its last-retry adjust;
    the agent ``(retry + 1) * timer``; plus the 1000 ms a repeater waits for an
    output buffer before replying 0x4C.
    """
    total = (agent_txctrl.retry + 1) * agent_txctrl.timer_ms(False)
    for n in range(hops):
        total += (repeater_txctrl.retry + 1) * repeater_txctrl.timer_ms(long_timer)
        total += hop_adjust_ms(hops - 1 - n, repeater_txctrl, long_timer)
    return total + 1000

