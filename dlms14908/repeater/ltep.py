"""IEC 62056-8-8 Annex E repeating mechanism = the LonTalk Enhanced Proxy (LTEP).

Bit-exact codec of the proxy frame carried as LonTalk APDU code 0x4D, its
completion codes (0x4D success, 0x4C failure + proxy count), the retry/timer
tables, and the pure processing rules of a repeater and an agent.  Facts:
``osgp-62056-8-8.md`` §3 (lon-stack-dx ``lcs_proxy.c``, lon-stack-ex
``LtProxy.cpp``; both public, MIT).

Frame (all bit fields MSB first)::

    0x4D | ProxyHeader | hop[count] | ProxyTxCtrl (count > 0 only)
         | ProxySicb(2) | [AltKey] | TargetAddress | target APDU (code, data...)

Vocabulary: the *proxy source* (head-end) sends the frame to the first
repeater; each repeater pops the first hop address and forwards; the node that
receives ``count == 0`` is the *agent* and sends the target APDU to the
*target* with the SICB's service.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

from ..errors import DecodeError, EncodeError

__all__ = [
    "LONG_TIMERS_MS",
    "LTEP_CODE",
    "LTEP_FAILURE_CODE",
    "NORMAL_TIMERS_MS",
    "AddressType",
    "AltKey",
    "AuthKeyType",
    "BroadcastTarget",
    "GroupTarget",
    "Hop",
    "NeuronIdTarget",
    "ProxyFailure",
    "ProxyMode",
    "ProxyRequest",
    "ProxySuccess",
    "ServiceType",
    "Sicb",
    "SubnetNodeTarget",
    "Target",
    "TxCtrl",
    "decode_completion",
    "decode_request",
    "encode_completion",
    "encode_request",
]

LTEP_CODE = 0x4D  #: proxy request and success completion (lcs_netmgmt.h LT_APDU_ENHANCED_PROXY)
LTEP_FAILURE_CODE = 0x4C  #: proxy failure completion, followed by the proxy count at the failure

#: ProxyTxCtrl timer index -> milliseconds (LtProxy.cpp), normal table
NORMAL_TIMERS_MS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072)
#: long table, used when the header's long_timer bit is set (indices 0..4)
LONG_TIMERS_MS = (4096, 6144, 8192, 12288, 16384)

MAX_HOPS = 15  # 4-bit count


class AddressType(IntEnum):
    """ProxySicb address type (3 bits); the numeric values are what devices send."""

    GROUP = 0
    SUBNET_NODE = 1
    NEURON_ID = 2
    BROADCAST = 3
    GROUP_COMPACT = 4
    SUBNET_NODE_COMPACT_SRC = 5
    NEURON_ID_COMPACT = 6
    SUBNET_NODE_COMPACT_DEST = 7


class ProxyMode(IntEnum):
    NORMAL = 0
    ZERO_SYNC = 1
    ALTKEY = 2
    ATTENUATE = 3


class ServiceType(IntEnum):
    """LonTalk service type numbering of the SICB (lon_types.h IzotServiceType)."""

    ACKD = 0
    UNACKD_RPT = 1
    UNACKD = 2
    REQUEST = 3


class AuthKeyType(IntEnum):
    STANDARD = 0  #: 6-byte (48-bit) domain key delta
    OMA = 1  #: 12-byte OMA key delta (domain-0 key || domain-1 key)


_KEY_LEN = {AuthKeyType.STANDARD: 6, AuthKeyType.OMA: 12}


def _check(value: int, bits: int, name: str) -> None:
    if not 0 <= value < (1 << bits):
        raise EncodeError(f"{value} does not fit in {bits} bits", field=name)


@dataclass(frozen=True, slots=True)
class TxCtrl:
    """ProxyTxCtrl byte: ``retry(4) | timer(4)``."""

    retry: int
    timer: int

    def __post_init__(self) -> None:
        _check(self.retry, 4, "txctrl.retry")
        _check(self.timer, 4, "txctrl.timer")

    def to_byte(self) -> int:
        return self.retry << 4 | self.timer

    @classmethod
    def from_byte(cls, b: int) -> TxCtrl:
        return cls(b >> 4, b & 0x0F)

    def timer_ms(self, long_timer: bool = False) -> int:
        """The transmit/repeat timer in milliseconds."""
        if long_timer:
            if self.timer >= len(LONG_TIMERS_MS):
                raise EncodeError(f"long timer index {self.timer} > 4", field="txctrl.timer")
            return LONG_TIMERS_MS[self.timer]
        return NORMAL_TIMERS_MS[self.timer]


@dataclass(frozen=True, slots=True)
class Hop:
    """One repeater address.  ``subnet`` is None in uniform mode (implied subnet)."""

    node: int
    subnet: int | None = None
    alt_path: bool = False

    def __post_init__(self) -> None:
        _check(self.node, 7, "hop.node")
        if self.subnet is not None:
            _check(self.subnet, 8, "hop.subnet")


@dataclass(frozen=True, slots=True)
class GroupTarget:
    group: int
    size: int = 0  #: group size; 0 with the compact form means unacknowledged
    compact: bool = False


@dataclass(frozen=True, slots=True)
class SubnetNodeTarget:
    node: int
    subnet: int | None = None  #: None for the compact forms
    alt_path: bool = False
    compact: AddressType | None = None  #: SUBNET_NODE_COMPACT_SRC / _DEST or None


@dataclass(frozen=True, slots=True)
class NeuronIdTarget:
    neuron_id: bytes
    subnet: int | None = None  #: routing subnet; None for the compact form (routing subnet 0)


@dataclass(frozen=True, slots=True)
class BroadcastTarget:
    subnet: int
    backlog: int = 0


Target = GroupTarget | SubnetNodeTarget | NeuronIdTarget | BroadcastTarget


@dataclass(frozen=True, slots=True)
class AltKey:
    """ALTKEY mode: a byte-wise additive delta to the domain key (mod 256)."""

    type: AuthKeyType
    delta: bytes = field(repr=False)

    def apply(self, domain_key: bytes) -> bytes:
        """The alternate key: ``domain_key[i] + delta[i] mod 256`` (OMA: key0 || key1)."""
        if len(domain_key) != len(self.delta):
            raise EncodeError(
                f"domain key is {len(domain_key)} bytes, delta is {len(self.delta)}", field="altkey"
            )
        return bytes((a + b) & 0xFF for a, b in zip(domain_key, self.delta, strict=True))


@dataclass(frozen=True, slots=True)
class Sicb:
    """ProxySicb: ``type(3) | path(1) | service(2) | mode(2)`` then the agent's TxCtrl."""

    type: AddressType
    service: ServiceType
    txctrl: TxCtrl
    path: bool = False
    mode: ProxyMode = ProxyMode.NORMAL


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """A decoded 0x4D proxy frame."""

    hops: tuple[Hop, ...]
    sicb: Sicb
    target: Target
    apdu: bytes  #: the target APDU: message code followed by data
    txctrl: TxCtrl | None = None  #: repeaters' retry/timer; present iff hops
    uniform_by_dest: bool = False
    uniform_by_src: bool = False
    long_timer: bool = False
    all_agents: bool = False
    alt_key: AltKey | None = None

    @property
    def count(self) -> int:
        return len(self.hops)

    @property
    def uniform(self) -> bool:
        return self.uniform_by_dest or self.uniform_by_src


@dataclass(frozen=True, slots=True)
class ProxySuccess:
    """Completion 0x4D; ``data`` is the target's response relayed back (REQUEST service)."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ProxyFailure:
    """Completion 0x4C: the chain broke at the node that had received ``count``."""

    count: int


# --------------------------------------------------------------------------- codec


def _target_type(target: Target) -> AddressType:
    if isinstance(target, GroupTarget):
        return AddressType.GROUP_COMPACT if target.compact else AddressType.GROUP
    if isinstance(target, SubnetNodeTarget):
        if target.compact is None:
            return AddressType.SUBNET_NODE
        if target.compact not in (
            AddressType.SUBNET_NODE_COMPACT_SRC,
            AddressType.SUBNET_NODE_COMPACT_DEST,
        ):
            raise EncodeError(f"{target.compact!r} is not a compact subnet/node type", field="target")
        return target.compact
    if isinstance(target, NeuronIdTarget):
        return AddressType.NEURON_ID if target.subnet is not None else AddressType.NEURON_ID_COMPACT
    if isinstance(target, BroadcastTarget):
        return AddressType.BROADCAST
    raise EncodeError(f"unknown target {target!r}", field="target")


def _encode_target(target: Target) -> bytes:
    if isinstance(target, GroupTarget):
        _check(target.group, 8, "target.group")
        _check(target.size, 8, "target.size")
        return bytes([target.group]) if target.compact else bytes([target.group, target.size])
    if isinstance(target, SubnetNodeTarget):
        _check(target.node, 7, "target.node")
        pn = (0x80 if target.alt_path else 0) | target.node
        if target.compact is None:
            if target.subnet is None:
                raise EncodeError("non-compact subnet/node target needs a subnet", field="target.subnet")
            _check(target.subnet, 8, "target.subnet")
            return bytes([target.subnet, pn])
        if target.subnet is not None:
            raise EncodeError("compact subnet/node target carries no subnet", field="target.subnet")
        return bytes([pn])
    if isinstance(target, NeuronIdTarget):
        if len(target.neuron_id) != 6:
            raise EncodeError(f"{len(target.neuron_id)} bytes, need 6", field="target.neuron_id")
        if target.subnet is None:
            return bytes(target.neuron_id)
        _check(target.subnet, 8, "target.subnet")
        return bytes([target.subnet]) + target.neuron_id
    assert isinstance(target, BroadcastTarget)
    _check(target.subnet, 8, "target.subnet")
    _check(target.backlog, 8, "target.backlog")
    return bytes([target.subnet, target.backlog])


def encode_request(req: ProxyRequest) -> bytes:
    """Encode a proxy frame, starting with the APDU code 0x4D."""
    n = len(req.hops)
    if n > MAX_HOPS:
        raise EncodeError(f"{n} hops, at most {MAX_HOPS}", field="proxy.count")
    if (req.txctrl is None) != (n == 0):
        raise EncodeError("ProxyTxCtrl is present exactly when there are hops", field="proxy.txctrl")
    if not req.apdu:
        raise EncodeError("target APDU needs at least its message code", field="proxy.apdu")
    if req.long_timer and req.txctrl is not None:
        req.txctrl.timer_ms(True)  # validates the long index
    out = bytearray([LTEP_CODE])
    out.append(
        (0x80 if req.uniform_by_dest else 0)
        | (0x40 if req.long_timer else 0)
        | (0x20 if req.all_agents else 0)
        | (0x10 if req.uniform_by_src else 0)
        | n
    )
    for i, hop in enumerate(req.hops):
        if req.uniform:
            if hop.subnet is not None:
                raise EncodeError("uniform mode hops carry no subnet", field=f"proxy.hop[{i}].subnet")
        else:
            if hop.subnet is None:
                raise EncodeError("non-uniform hops need a subnet", field=f"proxy.hop[{i}].subnet")
            out.append(hop.subnet)
        out.append((0x80 if hop.alt_path else 0) | hop.node)
    if req.txctrl is not None:
        out.append(req.txctrl.to_byte())
    ttype = _target_type(req.target)
    if req.sicb.type != ttype:
        raise EncodeError(f"SICB type {req.sicb.type.name} but target is {ttype.name}", field="sicb.type")
    if (req.sicb.mode == ProxyMode.ALTKEY) != (req.alt_key is not None):
        raise EncodeError("an alternate key is present exactly in ALTKEY mode", field="sicb.mode")
    out.append(
        req.sicb.type << 5
        | (0x10 if req.sicb.path else 0)
        | req.sicb.service << 2
        | req.sicb.mode
    )
    out.append(req.sicb.txctrl.to_byte())
    if req.alt_key is not None:
        if len(req.alt_key.delta) != _KEY_LEN[req.alt_key.type]:
            raise EncodeError(
                f"{req.alt_key.type.name} key delta must be {_KEY_LEN[req.alt_key.type]} bytes",
                field="altkey.delta",
            )
        out.append(int(req.alt_key.type))
        out += req.alt_key.delta
    out += _encode_target(req.target)
    out += req.apdu
    return bytes(out)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int, name: str) -> bytes:
        if self.pos + n > len(self.buf):
            raise DecodeError(
                f"need {n} byte(s), {len(self.buf) - self.pos} left", field=name, offset=self.pos
            )
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self, name: str) -> int:
        return self.take(1, name)[0]


def _decode_target(r: _Reader, t: AddressType) -> Target:
    if t == AddressType.GROUP:
        return GroupTarget(r.u8("target.group"), r.u8("target.size"))
    if t == AddressType.GROUP_COMPACT:
        return GroupTarget(r.u8("target.group"), 0, compact=True)
    if t == AddressType.SUBNET_NODE:
        subnet = r.u8("target.subnet")
        pn = r.u8("target.node")
        return SubnetNodeTarget(pn & 0x7F, subnet, bool(pn & 0x80))
    if t in (AddressType.SUBNET_NODE_COMPACT_SRC, AddressType.SUBNET_NODE_COMPACT_DEST):
        pn = r.u8("target.node")
        return SubnetNodeTarget(pn & 0x7F, None, bool(pn & 0x80), compact=t)
    if t == AddressType.NEURON_ID:
        subnet = r.u8("target.subnet")
        return NeuronIdTarget(r.take(6, "target.neuron_id"), subnet)
    if t == AddressType.NEURON_ID_COMPACT:
        return NeuronIdTarget(r.take(6, "target.neuron_id"), None)
    return BroadcastTarget(r.u8("target.subnet"), r.u8("target.backlog"))


def decode_request(data: bytes) -> ProxyRequest:
    """Decode a proxy frame beginning with the APDU code 0x4D."""
    r = _Reader(bytes(data))
    code = r.u8("proxy.code")
    if code != LTEP_CODE:
        raise DecodeError(f"0x{code:02X} is not the proxy code 0x4D", field="proxy.code", offset=0)
    hdr = r.u8("proxy.header")
    uniform_by_dest, long_timer = bool(hdr & 0x80), bool(hdr & 0x40)
    all_agents, uniform_by_src = bool(hdr & 0x20), bool(hdr & 0x10)
    count = hdr & 0x0F
    uniform = uniform_by_dest or uniform_by_src
    hops = []
    for i in range(count):
        subnet = None if uniform else r.u8(f"proxy.hop[{i}].subnet")
        pn = r.u8(f"proxy.hop[{i}].node")
        hops.append(Hop(pn & 0x7F, subnet, bool(pn & 0x80)))
    txctrl = TxCtrl.from_byte(r.u8("proxy.txctrl")) if count else None
    if long_timer and txctrl is not None and txctrl.timer >= len(LONG_TIMERS_MS):
        raise DecodeError(
            f"long timer index {txctrl.timer} > 4", field="proxy.txctrl.timer", offset=r.pos - 1
        )
    s0 = r.u8("sicb")
    sicb = Sicb(
        type=AddressType(s0 >> 5),
        path=bool(s0 & 0x10),
        service=ServiceType((s0 >> 2) & 3),
        mode=ProxyMode(s0 & 3),
        txctrl=TxCtrl.from_byte(r.u8("sicb.txctrl")),
    )
    alt_key = None
    if sicb.mode == ProxyMode.ALTKEY:
        kb = r.u8("altkey.type")
        if kb & 0xFC:
            raise DecodeError(f"must-be-zero bits set in 0x{kb:02X}", field="altkey.type", offset=r.pos - 1)
        if kb not in (0, 1):
            raise DecodeError(f"unknown key type {kb}", field="altkey.type", offset=r.pos - 1)
        kt = AuthKeyType(kb)
        alt_key = AltKey(kt, r.take(_KEY_LEN[kt], "altkey.delta"))
    target = _decode_target(r, sicb.type)
    apdu = r.buf[r.pos :]
    if not apdu:
        raise DecodeError("missing target APDU message code", field="proxy.apdu", offset=r.pos)
    return ProxyRequest(
        hops=tuple(hops),
        sicb=sicb,
        target=target,
        apdu=apdu,
        txctrl=txctrl,
        uniform_by_dest=uniform_by_dest,
        uniform_by_src=uniform_by_src,
        long_timer=long_timer,
        all_agents=all_agents,
        alt_key=alt_key,
    )


def encode_completion(c: ProxySuccess | ProxyFailure) -> bytes:
    if isinstance(c, ProxySuccess):
        return bytes([LTEP_CODE]) + c.data
    _check(c.count, 4, "proxy.failure.count")
    return bytes([LTEP_FAILURE_CODE, c.count])


def decode_completion(data: bytes) -> ProxySuccess | ProxyFailure:
    """Decode the response that travels back along a chain (0x4D or 0x4C + count)."""
    if not data:
        raise DecodeError("empty completion", field="proxy.completion.code", offset=0)
    if data[0] == LTEP_CODE:
        return ProxySuccess(bytes(data[1:]))
    if data[0] == LTEP_FAILURE_CODE:
        if len(data) != 2:
            raise DecodeError(
                f"failure completion is 2 bytes, got {len(data)}", field="proxy.failure.count", offset=1
            )
        if data[1] > MAX_HOPS:
            raise DecodeError(f"count {data[1]} > 15", field="proxy.failure.count", offset=1)
        return ProxyFailure(data[1])
    raise DecodeError(
        f"0x{data[0]:02X} is neither 0x4D nor 0x4C", field="proxy.completion.code", offset=0
    )


def without_first_hop(req: ProxyRequest) -> ProxyRequest:
    """The frame a repeater forwards: first hop popped, count - 1, TxCtrl dropped at 0."""
    if not req.hops:
        raise EncodeError("an agent frame has no hop to pop", field="proxy.count")
    rest = req.hops[1:]
    return replace(req, hops=rest, txctrl=req.txctrl if rest else None)
