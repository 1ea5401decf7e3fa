"""Deterministic capture generator: composed IEC 62056-8-8 sessions written as pcap.

Each meter (subnet 1, node 10+k, Neuron ID ``04 5E 00 00 01 xx``) is commissioned by a
real OSGP-AES-128-PSK handshake between two :class:`osgp.channel.SecureChannel`
objects (deterministic RANDs), then the head-end (1/1) reads registers with xDLMS
GET-Request-Normal / GET-Response-Normal, every adaptation PDU protected (P = 1),
each carried in a LonTalk SPDU REQUEST/RESPONSE (``docs/wire-format.md`` §3-§4).
The value of read *i* of meter *m* is :func:`expected_value` (tests compare).

Options add: ``suite0`` (xDLMS glo-ciphering inside OSGP, with [dlms] keys),
``extras`` (one segmented response pulled in segments, one GET with datablocks,
one LTEP-proxied exchange with a proxy failure, a retry, a replay, a bad CRC,
an unanswered request) — used by the tests.

Usage: ``python3 tools/gen_capture.py OUT.pcap --frames N [--route cnip|upper-pdu] [--meters M]``.
"""

from __future__ import annotations

import argparse
import binascii
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repository

from dlms14908 import axdr
from dlms14908 import profile as P
from dlms14908.adaptation.pdu import AdaptationPdu, encode_pdu, header_bytes
from dlms14908.obis import Obis
from dlms14908.pcap import LonCaptureWriter
from dlms14908.xdlms import (
    Apdu,
    AttributeDescriptor,
    GetRequestNext,
    GetRequestNormal,
    GetResponseNormal,
    GetResponseWithDatablock,
)
from osgp.channel import BroadcastSender, ChannelConfig, Role, SecureChannel, SendHandshake

PSK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
NNAP_ID = bytes.fromhex("4e4e41500001")
DOMAIN = b"\x42"
HEAD_END = (1, 1)
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT_ST = bytes.fromhex("4D4D4D0000000001")
SERVER_ST = bytes.fromhex("4D4D4D0000BC614E")
OBIS_ENERGY = Obis.parse("1-0:1.8.0.255")

KEYFILE = f"""[dlms]
ek = "{EK.hex()}"
ak = "{AK.hex()}"
client_system_title = "{CLIENT_ST.hex()}"
server_system_title = "{SERVER_ST.hex()}"

[osgp]
psk = "{PSK.hex()}"
nnap_id = "{NNAP_ID.hex()}"
"""


def meter_nid(k: int) -> bytes:
    return bytes((0x04, 0x5E, 0x00, 0x00, 0x01, k & 0xFF))


def meter_addr(k: int) -> tuple[int, int]:
    return (1 + k // 100, 10 + k % 100)


def expected_value(k: int, i: int) -> int:
    """The register value of read ``i`` of meter ``k``."""
    return (k * 1_000_003 + i * 7919) % 4_000_000_000


class _Rand:
    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._n = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self._n += 1
            out += hashlib.sha256(self._seed + self._n.to_bytes(8, "big")).digest()
        return out[:n]


def lpdu(
    src: tuple[int, int],
    dst: tuple[int, int] | bytes,
    spdu_type: int,
    tn: int,
    apdu: bytes,
    *,
    backlog: int = 0,
) -> bytes:
    """An LPDU with CRC: SPDU, subnet/node (2a) or Neuron ID (3) addressing, 1-byte domain."""
    if isinstance(dst, bytes):
        addr = bytes((src[0], 0x80 | src[1], 0)) + dst
        afmt = 3
    else:
        addr = bytes((src[0], 0x80 | src[1], dst[0], 0x80 | dst[1]))
        afmt = 2
    body = (
        bytes((backlog & 0x3F, (1 << 4) | (afmt << 2) | 1))
        + addr
        + DOMAIN
        + bytes(((spdu_type << 4) | tn,))
        + apdu
    )
    return body + (binascii.crc_hqx(body, 0xFFFF) ^ 0xFFFF).to_bytes(2, "big")


@dataclass
class _Meter:
    k: int
    addr: tuple[int, int]
    nid: bytes
    nnap: SecureChannel
    lnap: SecureChannel
    reads: int = 0
    ic_c: int = 0
    ic_s: int = 0


@dataclass
class GenResult:
    frames: int = 0
    reads: dict[int, int] = field(default_factory=dict)  # meter -> number of completed reads
    notes: dict[str, int] = field(default_factory=dict)  # extras -> frame number


class Generator:
    def __init__(
        self,
        out: BinaryIO,
        *,
        route: str = "cnip",
        meters: int = 4,
        seed: int = 1,
        suite0: bool = False,
        t0: float = 1_700_000_000.0,
    ) -> None:
        self.w = LonCaptureWriter(out, route)  # type: ignore[arg-type]
        self.t = t0
        self.tn = 0
        self.suite0 = suite0
        self.result = GenResult()
        self.meters: list[_Meter] = []
        self.last_request = b""
        self.bc: BroadcastSender | None = None  # made by the first broadcast()
        cfg = ChannelConfig(seq_block=1 << 20, rx_save_interval=0)
        for k in range(meters):
            nid = meter_nid(k)
            s = seed.to_bytes(4, "big") + bytes((k & 0xFF,))
            nnap = SecureChannel(
                role=Role.NNAP,
                local_id=NNAP_ID,
                peer_id=nid,
                psk=PSK,
                config=cfg,
                random=_Rand(b"S" + s),
            )
            lnap = SecureChannel(
                role=Role.LNAP,
                local_id=nid,
                peer_id=NNAP_ID,
                psk=PSK,
                config=cfg,
                random=_Rand(b"C" + s),
            )
            self.meters.append(_Meter(k, meter_addr(k), nid, nnap, lnap))

    # -- low level -----------------------------------------------------------------------
    def write(self, frame: bytes, dt: float = 0.05) -> int:
        self.t += dt
        self.w.write_frame(frame, self.t)
        self.result.frames += 1
        return self.result.frames

    def next_tn(self) -> int:
        self.tn = (self.tn + 1) & 0x0F
        return self.tn

    @staticmethod
    def _al(
        typ: int,
        payload: bytes,
        *,
        protected: bool = False,
        seg: tuple[bool, bool, int] | None = None,
    ) -> AdaptationPdu:
        if seg is None:
            return AdaptationPdu(typ, P.SAP_MANAGEMENT, P.SAP_MANAGEMENT_CLIENT, payload, protected)
        first, last, counter = seg
        return AdaptationPdu(
            typ,
            P.SAP_MANAGEMENT,
            P.SAP_MANAGEMENT_CLIENT,
            payload,
            protected,
            True,
            first,
            last,
            counter,
        )

    def protected(
        self, m: _Meter, plain: bytes, *, up: bool, seg: tuple[bool, bool, int] | None = None
    ) -> bytes:
        pdu = self._al(P.AL_TYPE_XDLMS, b"", protected=True, seg=seg)
        if up:
            pdu = AdaptationPdu(
                pdu.type,
                P.SAP_MANAGEMENT_CLIENT,
                P.SAP_MANAGEMENT,
                b"",
                True,
                pdu.segmented,
                pdu.first,
                pdu.last,
                pdu.counter,
            )
        hdr = header_bytes(pdu)
        dest = DOMAIN + bytes(m.addr)
        ch = m.lnap if up else m.nnap
        body = ch.protect(plain, header=hdr, dest=dest, now=0.0)
        return bytes((P.AL_MSG_CODE,)) + hdr + body

    # -- exchanges -------------------------------------------------------------------------
    def handshake(self, m: _Meter) -> None:
        msg = m.nnap.start_handshake(0.0)
        for _ in range(2):
            tn = self.next_tn()
            down = bytes((P.AL_MSG_CODE,)) + encode_pdu(self._al(P.AL_TYPE_SECURITY, msg))
            self.write(lpdu(HEAD_END, m.addr, 0, tn, down, backlog=1))
            ev = m.lnap.receive_message(msg, 0.0)
            reply = next(e.data for e in ev if isinstance(e, SendHandshake))
            up = bytes((P.AL_MSG_CODE,)) + encode_pdu(self._al(P.AL_TYPE_SECURITY, reply))
            self.write(lpdu(m.addr, HEAD_END, 2, tn, up))
            ev = m.nnap.receive_message(reply, 0.0)
            nxt = [e.data for e in ev if isinstance(e, SendHandshake)]
            if not nxt:
                break
            msg = nxt[0]

    def renew_key(self, m: _Meter) -> None:
        """UpdateDomainKeys (flags 0: new unicast key) and its response, both protected."""
        self._udk_exchange(m, m.nnap.renew_unicast_key(0.0))

    def _udk_exchange(self, m: _Meter, events: list) -> int:
        """Send the UpdateDomainKeys of ``events`` to ``m`` protected, and its response back."""
        from osgp.channel import SendProtected

        dest = DOMAIN + bytes(m.addr)
        msg = next(e.data for e in events if isinstance(e, SendProtected))
        down = AdaptationPdu(
            P.AL_TYPE_SECURITY, P.SAP_MANAGEMENT, P.SAP_MANAGEMENT_CLIENT, b"", True
        )
        hdr = header_bytes(down)
        body = m.nnap.protect(msg, header=hdr, dest=dest, now=0.0)
        tn = self.next_tn()
        first = self.write(lpdu(HEAD_END, m.addr, 0, tn, bytes((P.AL_MSG_CODE,)) + hdr + body))
        ev = m.lnap.receive_protected(body, header=hdr, dest=dest, now=0.0, management=True)
        reply = next(e.data for e in ev if isinstance(e, SendProtected))
        up = AdaptationPdu(P.AL_TYPE_SECURITY, P.SAP_MANAGEMENT_CLIENT, P.SAP_MANAGEMENT, b"", True)
        uhdr = header_bytes(up)
        ubody = m.lnap.protect(reply, header=uhdr, dest=dest, now=0.0)
        self.write(lpdu(m.addr, HEAD_END, 2, tn, bytes((P.AL_MSG_CODE,)) + uhdr + ubody))
        m.nnap.receive_protected(ubody, header=uhdr, dest=dest, now=0.0, management=True)
        return first

    def broadcast(self, value: int, *, distribute_to: _Meter | None) -> tuple[int, int]:
        """A domain-wide broadcast (unacknowledged APDU, LonTalk address format 0) of an
        xDLMS DataNotification protected under a new K_bc, distributed first to
        ``distribute_to`` with UpdateDomainKeys (flags: broadcast).  Returns the frame
        numbers of the UpdateDomainKeys (0 when not distributed) and of the broadcast."""
        from dlms14908.xdlms.notify import DataNotification

        bc = self.bc
        if bc is None:
            bc = self.bc = BroadcastSender(NNAP_ID, random=_Rand(b"B"))
        bc.new_key()
        udk = 0
        if distribute_to is not None:
            udk = self._udk_exchange(
                distribute_to, distribute_to.nnap.send_broadcast_key(bc, 0.0)
            )
        bc.activate()
        hdr = header_bytes(self._al(P.AL_TYPE_XDLMS, b"", protected=True))
        plain = DataNotification(0x80000001, axdr.DoubleLongUnsigned(value)).to_bytes()
        body = bc.protect(plain, header=hdr, dest=DOMAIN, now=0.0)
        head = bytes(
            (HEAD_END[0], 0x80 | HEAD_END[1], 0)
        )  # source, destination subnet 0: domain-wide
        frame = (
            bytes((0, (3 << 4) | (0 << 2) | 1))
            + head
            + DOMAIN
            + bytes((P.AL_MSG_CODE,))
            + hdr
            + body
        )
        frame += (binascii.crc_hqx(frame, 0xFFFF) ^ 0xFFFF).to_bytes(2, "big")
        return udk, self.write(frame)

    def oma_key(self, m: _Meter, key: bytes) -> int:
        """UpdateDomainKeys (flags: OMA key) with a 12-byte LonTalk OMA key for ``m``."""
        return self._udk_exchange(m, m.nnap.send_oma_key(key, 0, 0.0))

    def _cipher(self, m: _Meter, apdu: bytes, *, up: bool) -> bytes:
        if not self.suite0:
            return apdu
        from dlms14908.xdlms import ciphering as sec

        keys = sec.SecurityKeys(ek=EK, ak=AK)
        if up:
            m.ic_s += 1
            return sec.protect(apdu, keys=keys, system_title=SERVER_ST, invocation_counter=m.ic_s)
        m.ic_c += 1
        return sec.protect(apdu, keys=keys, system_title=CLIENT_ST, invocation_counter=m.ic_c)

    def read(self, m: _Meter, *, answer: bool = True, retry: bool = False) -> tuple[int, int]:
        i = m.reads
        iid = 0xC0 | (i & 0x0F)
        req = GetRequestNormal(iid, AttributeDescriptor(3, OBIS_ENERGY, 2)).to_bytes()
        resp = GetResponseNormal(iid, axdr.DoubleLongUnsigned(expected_value(m.k, i))).to_bytes()
        tn = self.next_tn()
        frame = lpdu(
            HEAD_END,
            m.addr,
            0,
            tn,
            self.protected(m, self._cipher(m, req, up=False), up=False),
            backlog=1,
        )
        self.last_request = frame
        a = self.write(frame)
        if retry:
            self.write(frame, dt=1.0)
        if not answer:
            return a, 0
        b = self.write(
            lpdu(
                m.addr, HEAD_END, 2, tn, self.protected(m, self._cipher(m, resp, up=True), up=True)
            )
        )
        m.reads += 1
        self.result.reads[m.k] = m.reads
        return a, b

    def segmented_read(self, m: _Meter, size: int = 450, max_seg: int = 200) -> bytes:
        """A GET whose response is longer than one segment: the client pulls segments 1.."""
        value = bytes((i * 7) & 0xFF for i in range(size))
        iid = 0xC0 | (m.reads & 0x0F)
        req = GetRequestNormal(
            iid, AttributeDescriptor(1, Obis.parse("0-0:96.1.0.255"), 2)
        ).to_bytes()
        resp = self._cipher(m, GetResponseNormal(iid, axdr.OctetString(value)).to_bytes(), up=True)
        tn = self.next_tn()
        self.write(
            lpdu(
                HEAD_END, m.addr, 0, tn, self.protected(m, self._cipher(m, req, up=False), up=False)
            )
        )
        parts = [resp[i : i + max_seg] for i in range(0, len(resp), max_seg)]
        n = len(parts)
        self.write(
            lpdu(
                m.addr, HEAD_END, 2, tn, self.protected(m, parts[0], up=True, seg=(True, n == 1, 0))
            )
        )
        for c in range(1, n):
            tn = self.next_tn()
            self.write(
                lpdu(
                    HEAD_END, m.addr, 0, tn, self.protected(m, b"", up=False, seg=(False, False, c))
                )
            )
            self.write(
                lpdu(
                    m.addr,
                    HEAD_END,
                    2,
                    tn,
                    self.protected(m, parts[c], up=True, seg=(False, c == n - 1, c)),
                )
            )
        m.reads += 1
        return value

    def block_read(self, m: _Meter, blocks: int = 3) -> list[int]:
        """GET with datablocks: the value is an array of double-long-unsigned."""
        value = axdr.Array([axdr.DoubleLongUnsigned(1000 + j) for j in range(30)])
        raw = axdr.encode(value)
        step = (len(raw) + blocks - 1) // blocks
        chunks = [raw[i : i + step] for i in range(0, len(raw), step)]
        iid = 0xC0 | (m.reads & 0x0F)
        req = GetRequestNormal(
            iid, AttributeDescriptor(7, Obis.parse("1-0:99.1.0.255"), 2)
        ).to_bytes()
        for j, chunk in enumerate(chunks, 1):
            tn = self.next_tn()
            self.write(
                lpdu(
                    HEAD_END,
                    m.addr,
                    0,
                    tn,
                    self.protected(m, self._cipher(m, req, up=False), up=False),
                )
            )
            blk = GetResponseWithDatablock(iid, j == len(chunks), j, chunk).to_bytes()
            self.write(
                lpdu(
                    m.addr,
                    HEAD_END,
                    2,
                    tn,
                    self.protected(m, self._cipher(m, blk, up=True), up=True),
                )
            )
            req = GetRequestNext(iid, j).to_bytes()
        m.reads += 1
        return [1000 + j for j in range(30)]

    def _exchange(self, m: _Meter, req: bytes, resp: bytes) -> tuple[int, int]:
        """One protected request / response pair (suite 0 too when enabled)."""
        tn = self.next_tn()
        a = self.write(
            lpdu(
                HEAD_END, m.addr, 0, tn, self.protected(m, self._cipher(m, req, up=False), up=False)
            )
        )
        b = self.write(
            lpdu(
                m.addr, HEAD_END, 2, tn, self.protected(m, self._cipher(m, resp, up=True), up=True)
            )
        )
        return a, b

    def set_blocks(self, m: _Meter, value: Any, block_size: int = 16) -> int:
        """SET with datablocks (Set-Request-With-First-Datablock, -With-Datablock ...,
        Set-Response-Datablock ..., Set-Response-Last-Datablock); returns the number of
        the frame carrying the last request block."""
        from dlms14908.xdlms import (
            DataAccessResult,
            SetResponseDatablock,
            SetResponseLastDatablock,
            set_request_blocks,
        )

        iid = 0xC0 | (m.reads & 0x0F)
        m.reads += 1
        attr = AttributeDescriptor(8, Obis.parse("0-0:1.0.0.255"), 2)
        last = 0
        resp: Apdu
        for apdu in set_request_blocks(iid, attr, axdr.encode(value), block_size):
            if apdu.last_block:
                resp = SetResponseLastDatablock(iid, DataAccessResult.SUCCESS, apdu.block_number)
            else:
                resp = SetResponseDatablock(iid, apdu.block_number)
            last, _ = self._exchange(m, apdu.to_bytes(), resp.to_bytes())
        return last

    def action_blocks(self, m: _Meter, params: Any, ret: Any, block_size: int = 16) -> int:
        """ACTION with parameter blocks both ways; returns the number of the frame carrying
        the last Action-Response-With-Pblock."""
        from dlms14908.xdlms import (
            ActionRequestNextPblock,
            ActionResponseItem,
            ActionResponseNextPblock,
            ActionResponseWithPblock,
            ActionResult,
            MethodDescriptor,
            action_request_blocks,
            split_blocks,
        )

        iid = 0xC0 | (m.reads & 0x0F)
        m.reads += 1
        method = MethodDescriptor(70, Obis.parse("0-0:96.3.10.255"), 1)
        out = split_blocks(ActionResponseItem(ActionResult.SUCCESS, ret).to_bytes(), block_size)
        reqs = action_request_blocks(iid, method, axdr.encode(params), block_size)
        last = 0
        resp: Apdu
        for apdu in reqs:
            if apdu.last_block:
                lb, num, chunk = out[0]
                resp = ActionResponseWithPblock(iid, lb, num, chunk)
            else:
                resp = ActionResponseNextPblock(iid, apdu.block_number)
            _, last = self._exchange(m, apdu.to_bytes(), resp.to_bytes())
        for lb, num, chunk in out[1:]:
            _, last = self._exchange(
                m,
                ActionRequestNextPblock(iid, num - 1).to_bytes(),
                ActionResponseWithPblock(iid, lb, num, chunk).to_bytes(),
            )
        return last

    def proxy_failure(
        self, m: _Meter, repeaters: tuple[tuple[int, int], ...] = ((1, 3), (1, 5))
    ) -> int:
        """An LTEP request via two repeaters that fails at the second (0x4C, count 0)."""
        from dlms14908.repeater import ltep

        inner = self.protected(
            m, GetRequestNormal(0xC1, AttributeDescriptor(3, OBIS_ENERGY, 2)).to_bytes(), up=False
        )
        req = ltep.ProxyRequest(
            hops=tuple(ltep.Hop(node=n, subnet=s) for s, n in repeaters[1:]),
            sicb=ltep.Sicb(
                ltep.AddressType.SUBNET_NODE, ltep.ServiceType.REQUEST, ltep.TxCtrl(3, 8)
            ),
            target=ltep.SubnetNodeTarget(node=m.addr[1], subnet=m.addr[0]),
            apdu=inner,
            txctrl=ltep.TxCtrl(3, 8),
        )
        tn = self.next_tn()
        self.write(lpdu(HEAD_END, repeaters[0], 0, tn, ltep.encode_request(req)))
        fwd = ltep.without_first_hop(req)
        self.write(lpdu(repeaters[0], repeaters[1], 0, tn, ltep.encode_request(fwd)))
        self.write(
            lpdu(repeaters[1], repeaters[0], 2, tn, ltep.encode_completion(ltep.ProxyFailure(0)))
        )
        return self.write(
            lpdu(repeaters[0], HEAD_END, 2, tn, ltep.encode_completion(ltep.ProxyFailure(0)))
        )


def generate(
    out: BinaryIO,
    *,
    frames: int,
    route: str = "cnip",
    meters: int = 4,
    seed: int = 1,
    suite0: bool = False,
    extras: bool = False,
) -> GenResult:
    """Write about ``frames`` frames (handshakes first, then reads round-robin)."""
    g = Generator(out, route=route, meters=meters, seed=seed, suite0=suite0)
    for m in g.meters:
        g.handshake(m)
    if extras:
        m0 = g.meters[0]
        g.result.notes["segmented_value_len"] = len(g.segmented_read(m0))
        g.block_read(m0)
        g.result.notes["proxy_failure"] = g.proxy_failure(m0)
        a, _b = g.read(m0, retry=True)  # the request frame twice, then the answer
        g.result.notes["retry"] = a + 1
        old = g.last_request
        g.read(m0)
        # replay: the old protected request again, in a new transaction
        body = old[:-2]
        body = body[:7] + bytes(((body[7] & 0xF0) | g.next_tn(),)) + body[8:]
        g.result.notes["replay"] = g.write(
            body + (binascii.crc_hqx(body, 0xFFFF) ^ 0xFFFF).to_bytes(2, "big")
        )
        # a corrupted CRC
        bad = bytearray(g.last_request)
        bad[-1] ^= 0x55
        g.result.notes["crc"] = g.write(bytes(bad))
        g.result.notes["unanswered"] = g.read(m0, answer=False)[0]
        g.renew_key(m0)
        g.result.notes["rekeyed_read"] = g.read(m0)[0]
        g.result.notes["set_blocks"] = g.set_blocks(m0, axdr.OctetString(bytes(range(50))))
        g.result.notes["action_blocks"] = g.action_blocks(
            m0,
            axdr.Array([axdr.LongUnsigned(i) for i in range(12)]),
            axdr.VisibleString("done " * 8),
        )
        udk, bc = g.broadcast(777, distribute_to=m0)
        g.result.notes["broadcast_udk"] = udk
        g.result.notes["broadcast"] = bc
    k = 0
    while g.result.frames < frames - 1:
        g.read(g.meters[k % meters])
        k += 1
    g.w.flush()
    return g.result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--route", choices=("cnip", "upper-pdu"), default="cnip")
    ap.add_argument("--meters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--suite0", action="store_true")
    ap.add_argument("--extras", action="store_true")
    ap.add_argument("--keyfile", help="also write the matching TOML key file here")
    a = ap.parse_args(argv)
    with open(a.out, "wb") as f:
        r = generate(
            f,
            frames=a.frames,
            route=a.route,
            meters=a.meters,
            seed=a.seed,
            suite0=a.suite0,
            extras=a.extras,
        )
    if a.keyfile:
        Path(a.keyfile).write_text(KEYFILE)
        Path(a.keyfile).chmod(0o600)
    print(f"{a.out}: {r.frames} frames", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
