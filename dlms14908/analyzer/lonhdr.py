"""Fast, allocation-light ISO/IEC 14908-1 header peek for the capture analyzer.

Parses the L2 header, NPDU (addresses, domain) and the TPDU/SPDU header of a
version-0 frame straight from bytes (reference ``lontalk.md`` §1.2-1.4) and
leaves the APDU as an offset.  Anything unusual (AuthPDU, version 2, truncated)
returns None so the caller falls back to :func:`dlms14908.lon.frame.decode_frame`,
which is the reference decoder and raises the proper ``DecodeError``.
"""

from __future__ import annotations

__all__ = ["SPDU_TYPES", "TPDU_TYPES", "LonHdr", "peek"]

_DLEN = (0, 1, 3, 6)
TPDU_TYPES = {0: "ACKD", 1: "UNACKD_RPT", 2: "ACK", 4: "REMINDER", 5: "REM_MSG"}
SPDU_TYPES = {0: "REQUEST", 2: "RESPONSE", 4: "REMINDER", 5: "REM_MSG"}
_TSVC = {k: "T:" + v for k, v in TPDU_TYPES.items()}
_SSVC = {k: "S:" + v for k, v in SPDU_TYPES.items()}


class LonHdr:
    """Decoded header fields; ``apdu`` is the offset of the APDU or -1 when there is none."""

    __slots__ = (
        "addr",
        "addr_fmt",
        "alt_path",
        "apdu",
        "auth",
        "backlog",
        "domain",
        "dst_kind",
        "dst_node",
        "dst_subnet",
        "group",
        "layer",
        "m_list",
        "member",
        "neuron_id",
        "npdu",
        "pdu_fmt",
        "priority",
        "ptype",
        "role",
        "src_node",
        "src_subnet",
        "svc",
        "tn",
    )

    addr: bytes
    addr_fmt: int
    alt_path: int
    apdu: int
    auth: int
    backlog: int
    domain: bytes
    dst_kind: str
    dst_node: int | None
    dst_subnet: int | None
    group: int | None
    layer: str
    m_list: bytes | None
    member: int | None
    neuron_id: bytes | None
    npdu: bytes
    pdu_fmt: int
    priority: int
    ptype: int | None
    role: int
    src_node: int
    src_subnet: int
    svc: str
    tn: int | None

    def __init__(self) -> None:
        self.group = None
        self.member = None
        self.neuron_id = None
        self.dst_node = None
        self.m_list = None

    @property
    def service(self) -> str:
        """``S:REQUEST``, ``T:ACKD``, ``UNACKD`` ..."""
        return self.svc

    @property
    def src(self) -> str:
        return f"{self.src_subnet}/{self.src_node}"

    @property
    def dst(self) -> str:
        k = self.dst_kind
        if k == "sn":
            return f"{self.dst_subnet}/{self.dst_node}"
        if k == "nid":
            nid = self.neuron_id
            assert nid is not None  # peek() sets it for Neuron ID addressing
            return f"nid:{nid.hex()}"
        if k == "group":
            return f"group {self.group}"
        if k == "gack":
            return f"{self.dst_subnet}/{self.dst_node}(g{self.group}.{self.member})"
        return f"bcast {self.dst_subnet}" if self.dst_subnet else "bcast"

    def to_jsonable(self) -> dict[str, object]:
        out: dict[str, object] = {
            "priority": bool(self.priority),
            "alt_path": bool(self.alt_path),
            "delta_backlog": self.backlog,
            "pdu_format": ("TPDU", "SPDU", "AuthPDU", "APDU")[self.pdu_fmt],
            "address_format": self.dst_kind,
            "src_subnet": self.src_subnet,
            "src_node": self.src_node,
            "domain": self.domain.hex(),
        }
        if self.dst_kind in ("sn", "gack"):
            out["dst_subnet"] = self.dst_subnet
            out["dst_node"] = self.dst_node
        if self.dst_kind in ("bcast", "nid"):
            out["dst_subnet"] = self.dst_subnet
        if self.group is not None:
            out["group"] = self.group
        if self.member is not None:
            out["member"] = self.member
        if self.neuron_id is not None:
            out["neuron_id"] = self.neuron_id.hex()
        if self.layer in ("T", "S"):
            out["service"] = self.service
            out["trans_no"] = self.tn
            out["auth"] = bool(self.auth)
        if self.m_list is not None:
            out["m_list"] = self.m_list.hex()
        return out


def peek(b: bytes) -> LonHdr | None:
    """Parse ``b`` (an LPDU without its CRC); None when the fast path does not apply."""
    n = len(b)
    if n < 5:
        return None
    h = b[1]
    if h >> 6:
        return None  # version 1/2: reference decoder
    pfmt = (h >> 4) & 3
    if pfmt == 2:
        return None  # AuthPDU: reference decoder
    r = LonHdr()
    b0 = b[0]
    r.priority = b0 >> 7
    r.alt_path = (b0 >> 6) & 1
    r.backlog = b0 & 0x3F
    afmt = (h >> 2) & 3
    r.pdu_fmt = pfmt
    r.addr_fmt = afmt
    r.src_subnet = b[2]
    sb = b[3]
    r.src_node = sb & 0x7F
    if afmt != 2 and not sb & 0x80:
        return None  # selector bit 0 is only valid in format 2b
    if afmt == 0:
        r.dst_kind = "bcast"
        r.dst_subnet = b[4]
        pos = 5
    elif afmt == 1:
        r.dst_kind = "group"
        r.dst_subnet = None
        r.group = b[4]
        pos = 5
    elif afmt == 2:
        if n < 6:
            return None
        r.dst_subnet = b[4]
        r.dst_node = b[5] & 0x7F
        if not b[5] & 0x80:
            return None  # reference decoder: destination node byte must have bit 7 set
        if sb & 0x80:
            r.dst_kind = "sn"
            pos = 6
        else:
            if n < 8:
                return None
            r.dst_kind = "gack"
            r.group = b[6]
            if b[7] & 0xC0:
                return None
            r.member = b[7]
            pos = 8
    else:
        if n < 11:
            return None
        r.dst_kind = "nid"
        r.dst_subnet = b[4]
        r.neuron_id = b[5:11]
        pos = 11
    r.addr = b[2:pos]
    dlen = _DLEN[h & 3]
    if pos + dlen > n:
        return None
    r.domain = b[pos : pos + dlen]
    pos += dlen
    r.npdu = b[:pos]
    if pfmt == 3:
        r.layer = "A"
        r.svc = "UNACKD"
        r.role = 0
        r.ptype = None
        r.tn = None
        r.auth = 0
        if pos >= n or (b[pos] & 0x80 and n - pos < 2):
            return None  # no APDU, or a network-variable APDU without its 2-byte selector
        r.apdu = pos
        return r
    if pos >= n:
        return None
    t = b[pos]
    pos += 1
    r.layer = "T" if pfmt == 0 else "S"
    r.auth = t >> 7
    typ = (t >> 4) & 7
    r.ptype = typ
    r.tn = t & 15
    svc = (_TSVC if pfmt == 0 else _SSVC).get(typ)
    if svc is None:
        return None
    r.svc = svc
    r.role = (
        1 if typ in (0, 5) else 2 if typ == 2 else 0
    )  # request (ACKD/REQUEST/REM_MSG), response/ACK
    if typ in (4, 5):
        if pos >= n:
            return None
        ml = b[pos]
        if pos + 1 + ml > n:
            return None
        r.m_list = b[pos + 1 : pos + 1 + ml]
        pos += 1 + ml
    if (pfmt == 0 and typ in (2, 4)) or (pfmt == 1 and typ == 4):
        if pos != n:
            return None  # ACK / REMINDER carry nothing more: let the reference decoder judge
        r.apdu = -1
    else:
        if pos >= n or (b[pos] & 0x80 and n - pos < 2):
            return None
        r.apdu = pos
    return r
