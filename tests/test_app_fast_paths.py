"""Hot paths of the DLMS/COSEM application layer (issue 5, round-trip rate), each against the
general path it short-cuts, against Green Book vectors and against the oracles.

* ``CipheringContext.protect`` / ``unprotect`` (glo-ciphering, SC 0x30, short length form):
  the same octets as :func:`protect`, the same plaintext / error / counters / invocation-counter
  state as :func:`decipher` (which a ``bytearray`` input takes), Green Book V2/V6/V7, gurux;
* ``ClientConnection.get``: the request packed in one go equals ``GetRequestNormal.to_bytes``
  (and gurux reads it the same), every kind of answer gives what the generator path gives;
* ``CosemServer.handle`` on a 13-byte GET-Request-Normal: the same answers (and block-transfer
  state) as the decode/dispatch path, plain and ciphered;
* the meter simulator's per-instant memo of model values.
"""

# ruff: noqa: F811  -- the shared session fixture (gurux) is imported by name
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms14908 import axdr
from dlms14908 import server as server_mod
from dlms14908.client import ClientConnection, ClientSettings
from dlms14908.cosem import CosemAccessError, CosemObject
from dlms14908.errors import (
    DecodeError,
    LocalProtocolError,
    ProtocolError,
    ReplayError,
    SecurityError,
)
from dlms14908.obis import Obis
from dlms14908.sim import MeterSimulator, SimClock
from dlms14908.sim.model import EnergyModel
from dlms14908.xdlms import (
    AttributeDescriptor,
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNormal,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    ServiceErrorCode,
    ServiceErrorType,
    StateError,
    ciphering,
    decode_apdu,
)
from dlms14908.xdlms.ciphering import (
    GLOBAL_CIPHERED_TAGS,
    CipheringContext,
    SecurityKeys,
    protect,
)
from tests.conftest import VECTORS
from tests.test_ciphering_oracle import run_oracle
from tests.test_oracle_data import gurux  # noqa: F401  (session fixture)
from tools.oracle.harness import ours_apdu_norm, project

GCM = {v["id"]: v for v in json.loads((VECTORS / "xdlms" / "security_gcm.json").read_text())["vectors"]}
GB_KEYS = SecurityKeys(ek=bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
                       ak=bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"))
CLIENT_ST = bytes.fromhex("4D4D4D0000000001")
SERVER_ST = bytes.fromhex("4D4D4D0000BC614E")
T0 = 1_700_000_000.0

keys16 = st.binary(min_size=16, max_size=16)
titles = st.binary(min_size=8, max_size=8)


def outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    """What a call did: ("ok", value) or (exception type, message)."""
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return (type(exc), str(exc))


def rx_state(ctx: CipheringContext) -> tuple[Any, ...]:
    return (ctx.receive.last_seen, ctx.receive.rejected, dataclasses.astuple(ctx.stats))


# =========================================================================== ciphering


@pytest.mark.parametrize("vid", ["V2", "V6", "V7"])
def test_context_hot_path_reproduces_green_book(vid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """glo SC 0x30 vectors go through the hot paths only (protect()/decipher() would fail here)
    and give the Green Book octets both ways; a replay is refused and counted."""
    v = GCM[vid]
    assert v["kind"] == "glo" and v["security_control"] == "30"
    plain, wire = bytes.fromhex(v["plaintext"]), bytes.fromhex(v["ciphered"])
    st_, ic = bytes.fromhex(v["system_title"]), int(v["invocation_counter"], 16)
    tx = CipheringContext(GB_KEYS, own_system_title=st_, invocation_counter=ic)
    rx = CipheringContext(GB_KEYS, own_system_title=CLIENT_ST, peer_system_title=st_,
                          peer_last_invocation_counter=ic - 1)

    def general(*a: Any, **k: Any) -> Any:
        raise AssertionError("general path taken")

    with monkeypatch.context() as m:
        m.setattr(ciphering, "protect", general)
        m.setattr(ciphering, "decipher", general)
        assert tx.protect(plain) == wire
        assert rx.unprotect(wire) == plain
    assert tx.next_invocation_counter == ic + 1
    assert rx_state(rx) == (ic, 0, (1, 0, 0, 0, 0))
    with pytest.raises(ReplayError):
        rx.unprotect(wire)
    assert rx_state(rx) == (ic, 1, (1, 0, 1, 0, 0))


@given(tag=st.sampled_from(sorted(GLOBAL_CIPHERED_TAGS)), body=st.binary(max_size=140),
       ic=st.integers(0, (1 << 32) - 1), ek=keys16, ak=keys16, title=titles)
def test_context_protect_equals_protect(tag: int, body: bytes, ic: int, ek: bytes, ak: bytes,
                                        title: bytes) -> None:
    """Every glo APDU (short and long length form) gets protect()'s octets and uses one IC."""
    keys = SecurityKeys(ek=ek, ak=ak)
    plain = bytes((tag,)) + body
    ctx = CipheringContext(keys, own_system_title=title, invocation_counter=ic)
    assert ctx.protect(plain) == protect(plain, keys=keys, system_title=title, invocation_counter=ic)
    assert ctx.next_invocation_counter == ic + 1


def test_context_protect_exhausted_and_misuse() -> None:
    """The hot path keeps the general path's refusals: exhausted IC, empty APDU, no glo form."""
    ctx = CipheringContext(GB_KEYS, own_system_title=CLIENT_ST, invocation_counter=1 << 32)
    with pytest.raises(LocalProtocolError, match="exhausted"):
        ctx.protect(b"\xC0\x01\xC1")
    assert ctx.next_invocation_counter == 1 << 32
    ctx = CipheringContext(GB_KEYS, own_system_title=CLIENT_ST)
    with pytest.raises(ProtocolError):
        ctx.protect(b"")
    with pytest.raises(ProtocolError):
        ctx.protect(b"\x60\x00")  # AARQ: no glo-ciphered form
    assert ctx.next_invocation_counter == 0


mutations = st.one_of(
    st.none(),
    st.tuples(st.just("set"), st.integers(0, 1 << 16), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 16)),
    st.tuples(st.just("add"), st.binary(min_size=1, max_size=3)),
)


@given(tag=st.sampled_from(sorted(GLOBAL_CIPHERED_TAGS)), body=st.binary(max_size=120),
       ic=st.integers(0, (1 << 32) - 1), last=st.one_of(st.none(), st.integers(0, (1 << 32) - 1)),
       sc=st.sampled_from([0x30, 0x30, 0x30, 0x10, 0x20]), mutation=mutations, ek=keys16, ak=keys16,
       title=titles)
def test_context_unprotect_equals_decipher(tag: int, body: bytes, ic: int, last: int | None, sc: int,
                                           mutation: Any, ek: bytes, ak: bytes, title: bytes) -> None:
    """Valid, replayed, forged, cut and padded APDUs: the hot path (bytes) and decipher()
    (bytearray) return the same plaintext or raise the same error, and leave the same
    invocation-counter record and statistics."""
    keys = SecurityKeys(ek=ek, ak=ak)
    wire = bytearray(protect(bytes((tag,)) + body, keys=keys, system_title=title,
                             invocation_counter=ic, security_control=sc))
    if mutation is not None:
        if mutation[0] == "set":
            wire[mutation[1] % len(wire)] = mutation[2]
        elif mutation[0] == "cut":
            del wire[mutation[1] % len(wire):]
        else:
            wire += mutation[1]
    fast = CipheringContext(keys, own_system_title=CLIENT_ST, peer_system_title=title,
                            peer_last_invocation_counter=last)
    slow = CipheringContext(keys, own_system_title=CLIENT_ST, peer_system_title=title,
                            peer_last_invocation_counter=last)
    got, want = outcome(lambda: fast.unprotect(bytes(wire))), outcome(lambda: slow.unprotect(wire))
    assert got == want
    assert rx_state(fast) == rx_state(slow)
    if got[0] != "ok":
        assert issubclass(got[0], (DecodeError, SecurityError))


@given(st.binary(max_size=80))
def test_context_unprotect_random_bytes(data: bytes) -> None:
    """Random input only ever raises our errors, and leaves no IC recorded."""
    ctx = CipheringContext(GB_KEYS, own_system_title=CLIENT_ST, peer_system_title=SERVER_ST)
    try:
        ctx.unprotect(data)
    except (DecodeError, SecurityError):
        pass
    assert ctx.receive.last_seen is None


def test_context_hot_path_confirmed_by_gurux() -> None:
    """Octets the context hot path produces for GET requests/responses of several sizes (up to
    the short-form limit) are produced identically by gurux's encryptAesGcm."""
    keys = SecurityKeys(ek=bytes(range(16, 32)), ak=bytes(range(64, 80)))
    ctx = CipheringContext(keys, own_system_title=SERVER_ST, invocation_counter=0xFFFFFF00)
    cases, want = [], []
    for n in (0, 1, 9, 13, 40, 110):
        plain = bytes((0xC4, 1, 0xC1, 0)) + bytes((i * 7) & 0xFF for i in range(n))
        ic = ctx.next_invocation_counter
        want.append(ctx.protect(plain).hex().upper())
        cases.append({"op": "gurux_encrypt", "tag": "CC", "st": SERVER_ST.hex(), "ic": ic,
                      "key": keys.ek.hex(), "ak": keys.ak.hex(), "pt": plain.hex(), "sc": "30"})
    for got, w in zip(run_oracle(cases), want):
        assert got["ok"], got
        assert got["result"] == w


# =========================================================================== client


def _pre(ciphered: bool = True, **kw: Any) -> ClientConnection:
    if ciphered:
        s = ClientSettings.management_hls(GB_KEYS, CLIENT_ST, server_system_title=SERVER_ST,
                                          pre_established=True, **kw)
    else:
        s = ClientSettings.public(pre_established=True, **kw)
    return ClientConnection(s)


def _general_get(conn: ClientConnection, class_id: int, obis: Obis, attr: int) -> Any:
    return conn._begin(conn._get_gen(AttributeDescriptor(class_id, obis, attr), None, None))


obis_st = st.builds(Obis, *[st.integers(0, 255)] * 6)
data_st = st.one_of(
    st.none(),
    st.integers(0, 0xFFFFFFFF).map(axdr.DoubleLongUnsigned),
    st.integers(-128, 127).map(axdr.Integer),
    st.binary(max_size=40).map(axdr.OctetString),
    st.lists(st.integers(0, 0xFFFF).map(axdr.LongUnsigned), max_size=4).map(axdr.Structure),
    st.booleans(),
)


@st.composite
def answers(draw: st.DrawFn, iid: int) -> tuple[bytes, bool]:
    """A server answer (plain APDU bytes) to a GET with invoke-id ``iid``, and whether it is
    sent ciphered."""
    other = draw(st.sampled_from([iid, iid, iid, (iid & 0xF0) | ((iid + 1) & 0x0F)]))
    kind = draw(st.sampled_from(["data", "data", "dar", "block", "exc", "cse", "list", "raw", "cut"]))
    if kind == "data":
        plain = GetResponseNormal(other, draw(data_st)).to_bytes()
    elif kind == "dar":
        plain = GetResponseNormal(other, draw(st.sampled_from(list(DataAccessResult)))).to_bytes()
    elif kind == "block":
        plain = GetResponseWithDatablock(other, draw(st.booleans()), draw(st.integers(0, 3)),
                                         axdr.encode(draw(data_st))).to_bytes()
    elif kind == "exc":
        plain = ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                  ServiceErrorCode.OPERATION_NOT_POSSIBLE).to_bytes()
    elif kind == "cse":
        plain = ConfirmedServiceError(ConfirmedServiceErrorChoice.INITIATE_ERROR,
                                      ServiceErrorType.INITIATE, 1).to_bytes()
    elif kind == "list":
        plain = GetResponseWithList(other, (axdr.Unsigned(1),)).to_bytes()
    elif kind == "raw":
        plain = bytes((0xC4, 1, other)) + draw(st.binary(max_size=12))
    else:
        full = GetResponseNormal(other, draw(data_st)).to_bytes()
        plain = full[:draw(st.integers(1, len(full)))] + draw(st.binary(max_size=2))
    return plain, draw(st.sampled_from([True, True, True, False]))


@given(data=st.data(), class_id=st.integers(0, 0xFFFF), obis=obis_st, attr=st.integers(0, 255),
       ciphered=st.booleans(), calls=st.integers(0, 20))
def test_client_get_equals_generator_path(data: st.DataObject, class_id: int, obis: Obis, attr: int,
                                          ciphered: bool, calls: int) -> None:
    """The packed request equals the generator path's (ciphered with the same IC); any answer
    (value, error, block, exception, wrong invoke-id, malformed, clear text in a ciphered
    association) ends the same way: result or error, busy flag, next request."""
    fast, slow = _pre(ciphered), _pre(ciphered)
    for c in (fast, slow):  # advance the invoke-id and the IC alike
        c._iid = calls & 0x0F
        if c._cipher is not None:
            c._cipher.next_invocation_counter = calls
    ex, ey = fast.get(class_id, obis, attr), _general_get(slow, class_id, obis, attr)
    assert ex._gen is None and ey._gen is not None  # the two paths really differ
    assert ex.request == ey.request
    server = CipheringContext(GB_KEYS, own_system_title=SERVER_ST, peer_system_title=CLIENT_ST)
    plain_req = server.unprotect(ex.request) if ciphered else ex.request
    assert plain_req == GetRequestNormal(plain_req[2], AttributeDescriptor(class_id, obis, attr)).to_bytes()
    plain, cipher_it = data.draw(answers(plain_req[2]))
    wire = server.protect(plain) if (ciphered and cipher_it and plain[0] in GLOBAL_CIPHERED_TAGS) else plain
    got, want = outcome(lambda: ex.receive(wire)), outcome(lambda: ey.receive(wire))
    assert got[0] == want[0] and (got[0] != "ok" or got[1] == want[1]), (got, want)
    if got[0] != "ok":
        assert got[1] == want[1]
        assert issubclass(got[0], ProtocolError)
    assert (ex.done, fast._busy) == (ey.done, slow._busy)
    assert type(ex.result) is type(ey.result) and axdr.strict_equal(ex.result, ey.result)
    if fast._cipher is not None:
        assert rx_state(fast._cipher) == rx_state(slow._cipher)


def test_client_get_misuse_and_abort() -> None:
    """Refusals are the general path's; abort frees the connection; a request that cannot be
    ciphered (IC exhausted) leaves the connection free."""
    conn = _pre()
    ex = conn.get(3, Obis(1, 0, 1, 8, 0, 255), 2)
    with pytest.raises(LocalProtocolError, match="in progress"):
        conn.get(3, Obis(1, 0, 1, 8, 0, 255), 2)
    ex.abort()
    assert ex.done and not conn._busy
    with pytest.raises(LocalProtocolError, match="finished"):
        ex.receive(b"\xC4")
    idle = ClientConnection(ClientSettings.public())
    with pytest.raises(LocalProtocolError, match="not associated"):
        idle.get(3, Obis(1, 0, 1, 8, 0, 255), 2)
    spent = _pre(invocation_counter=1 << 32)
    for _ in range(2):
        with pytest.raises(LocalProtocolError, match="exhausted"):
            spent.get(3, Obis(1, 0, 1, 8, 0, 255), 2)
        assert not spent._busy
    with pytest.raises(ProtocolError):  # out of range: the general path names the field
        _pre().get(0x10000, Obis(1, 0, 1, 8, 0, 255), 2)


@settings(max_examples=40)
@given(class_id=st.integers(0, 0xFFFF), obis=obis_st, attr=st.integers(0, 255), iid=st.integers(0, 15))
def test_client_get_request_read_by_gurux(gurux: Any, class_id: int, obis: Obis, attr: int,
                                          iid: int) -> None:
    """gurux decodes the packed GET-Request-Normal to the same fields as ours."""
    conn = _pre(ciphered=False)
    conn._iid = iid
    req = conn.get(class_id, obis, attr).request
    theirs = gurux.call("decode_apdu", hex=req.hex())
    assert project("gurux", theirs) == project("gurux", ours_apdu_norm(decode_apdu(req)))


# =========================================================================== server


def _sim() -> MeterSimulator:
    return MeterSimulator(seed=5, clock=SimClock(T0), history_days=0.2, profile_entries=24,
                          max_receive_pdu_size=256)


SIM_OBIS = list(_sim().objects)


def _run_server(requests: list[tuple[int, int, bytes, int]], ciphered: bool, fast: bool) -> list[Any]:
    """Associate (public client, or HLS-5 + glo), then send each GET; the answers (plain)."""
    sim = _sim()
    if ciphered:
        conn = ClientConnection(ClientSettings.management_hls(sim.keys, CLIENT_ST,
                                                              max_receive_pdu_size=256),
                                random=lambda n: bytes(range(n)))
        sap = 0x01
    else:
        conn = ClientConnection(ClientSettings.public(max_receive_pdu_size=256))
        sap = 0x10
    handler = sim.handler_for(sap)
    ex = conn.connect()
    req = ex.request
    while req is not None:
        req = ex.receive(handler(req))
    out: list[Any] = []
    with pytest.MonkeyPatch.context() as m:
        if not fast:
            m.setattr(server_mod, "_ASSOCIATED", object())  # the hot path's guard never holds
        for class_id, attr, raw, iid in requests:
            plain = bytes((0xC0, 1, iid)) + class_id.to_bytes(2, "big") + raw + bytes((attr, 0))
            wire = conn._cipher.protect(plain) if ciphered else plain
            answer = handler(wire)
            if answer is not None and ciphered and answer[0] == 0xCC:
                answer = conn._cipher.unprotect(answer)
            out.append(answer)
            if answer is not None and answer[:2] == b"\xC4\x02" and answer[3] == 0:
                # block transfer: ask for the next block and a wrong one (the state must agree)
                for num in (1, 7):
                    nxt = bytes((0xC0, 2, iid)) + num.to_bytes(4, "big")
                    a = handler(conn._cipher.protect(nxt) if ciphered else nxt)
                    out.append(conn._cipher.unprotect(a) if ciphered and a and a[0] == 0xCC else a)
    sess = sim.server.sessions[sap]
    out.append((sess.get_blocks, {k.logical_name: v is None for k, v in sess.rights.items()}))
    return out


requests_st = st.lists(st.tuples(
    st.sampled_from([1, 3, 3, 7, 8, 15, 18, 26, 64, 70, 130, 131, 132, 133]) | st.integers(0, 0xFFFF),
    st.integers(0, 12) | st.integers(0, 255),
    st.sampled_from(SIM_OBIS).map(bytes) | st.binary(min_size=6, max_size=6),
    st.sampled_from([0xC1, 0xC2, 0x41, 0x8F]) | st.integers(0, 255),
), min_size=1, max_size=6)


@settings(max_examples=60)
@given(requests=requests_st, ciphered=st.booleans())
def test_server_get_equals_dispatch_path(requests: list[tuple[int, int, bytes, int]], ciphered: bool) -> None:
    """Any 13-byte GET-Request-Normal (known and unknown objects, classes, attributes, access
    rights, unconfirmed, block transfer) is answered as the decode/dispatch path answers it,
    with the same block-transfer and rights-cache state afterwards."""
    fast, slow = _run_server(requests, ciphered, True), _run_server(requests, ciphered, False)
    assert fast == slow


def test_server_hot_path_answers_a_known_register() -> None:
    """The hot path is really taken (the dispatch table is not consulted) and reads the model."""
    sim = _sim()
    conn = ClientConnection(ClientSettings.public(max_receive_pdu_size=256))
    h = sim.handler_for(0x10)
    ex = conn.connect()
    ex.receive(h(ex.request))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(server_mod, "_DISPATCH", {})
        ex = conn.get(3, Obis(1, 0, 1, 8, 0, 255), 2)
        assert ex.receive(h(ex.request)) is None
    assert ex.result == sim.import_export_wh(T0)[0]
    assert type(ex.result) is axdr.DoubleLongUnsigned


# =========================================================================== simulator


def test_model_register_memo_follows_outages() -> None:
    """A register read twice at one instant with an outage recorded in between reflects the
    outage (the memo is keyed by the outage list), as a fresh meter with that outage does."""
    sim, fresh = _sim(), _sim()
    reg = sim.server.objects[Obis(1, 0, 1, 8, 0, 255)]
    before = reg.get(2, now=T0)
    sim.outages.append((T0 - 3000, None))
    fresh.outages.append((T0 - 3000, None))
    after = reg.get(2, now=T0)
    assert after == fresh.server.objects[Obis(1, 0, 1, 8, 0, 255)].get(2, now=T0)
    assert after == sim.import_export_wh(T0)[0] and after <= before
    sim.outages[-1] = (T0 - 3000, T0 - 1000)
    fresh.outages[-1] = (T0 - 3000, T0 - 1000)
    assert reg.get(2, now=T0) == fresh.server.objects[Obis(1, 0, 1, 8, 0, 255)].get(2, now=T0)


@settings(max_examples=40)
@given(offsets=st.lists(st.floats(-1000, 3 * 86400, allow_nan=False), min_size=1, max_size=6),
       outage=st.none() | st.tuples(st.floats(0, 86400), st.none() | st.floats(0, 3600)))
def test_model_register_get_equals_generic_get(offsets: list[float],
                                               outage: tuple[float, float | None] | None) -> None:
    """_ModelRegister.get(2) (the hot read) equals the generic CosemObject.get dispatch
    (read_value, then the value CHOICE's to_data) for every model register, with and without
    a supply outage; the 1-0:1.8.0 reader equals import_export_wh(t)[0]."""
    sim, ref = _sim(), _sim()
    if outage is not None:
        start, length = outage
        for m in (sim, ref):
            m.outages.append((T0 + start, None if length is None else T0 + start + length))
    regs = [o for o in sim.server.objects.values() if type(o).__name__ == "_ModelRegister"]
    assert len(regs) >= 8
    for off in offsets:
        t = T0 + off
        for reg in regs:
            other = ref.server.objects[reg.logical_name]
            fast = reg.get(2, now=t)
            slow = CosemObject.get(other, 2, now=t)
            assert fast == slow and type(fast) is type(slow)
            assert reg.get(2, now=t) == fast  # the memo's answer
        assert sim.server.objects[Obis(1, 0, 1, 8, 0, 255)].get(2, now=t) == ref.import_export_wh(t)[0]
    reg = regs[0]
    with pytest.raises(CosemAccessError):
        reg.get(2, selection=object(), now=T0)
    with pytest.raises(CosemAccessError):
        reg.get(2)


@given(st.lists(st.floats(0, 3 * 86400, allow_nan=False), min_size=1, max_size=8))
def test_energy_model_memo(offsets: list[float]) -> None:
    """energies(t) with the last-answer memo equals a fresh model's answer for every t."""
    m = EnergyModel(7, T0)
    for off in offsets + offsets[::-1]:
        t = T0 + off
        assert m.energies(t) == EnergyModel(7, T0).energies(t)


# =========================================================================== per-meter state


def test_connection_settings_shared_without_keys() -> None:
    """Connections with equal settings but their own keys share one settings copy without keys;
    ``settings`` still answers what was given (the same keys object), and the dedicated-key
    case keeps its own settings."""
    own = [SecurityKeys(ek=bytes([i]) * 16, ak=bytes([i + 1]) * 16) for i in range(3)]
    given = [ClientSettings.management_hls(k, CLIENT_ST, max_receive_pdu_size=512) for k in own]
    conns = [ClientConnection(s) for s in given]
    assert conns[0]._settings is conns[1]._settings is conns[2]._settings
    assert conns[0]._settings.keys is None
    for c, s, k in zip(conns, given, own):
        assert c.settings == s and c.settings.keys is k and c.cipher is not None and c.cipher.keys is k
    ded = ClientSettings.management_hls(own[0], CLIENT_ST, ciphering="ded", dedicated_key=bytes(16))
    c = ClientConnection(ded)
    assert c.settings is ded and c.cipher is not None and c.cipher.keys.dk == bytes(16)
    public = ClientSettings.public()
    assert ClientConnection(public).settings is public
    odd = ClientSettings.management_hls(own[0], bytearray(CLIENT_ST))  # unhashable: kept as given
    assert ClientConnection(odd).settings is odd
    assert "SecurityKeys(ek=<set>" in repr(conns[0].settings) and own[0].ek.hex() not in repr(conns[0].settings)


def test_context_counters_are_live_views() -> None:
    """``receive`` and ``stats`` read and write the context's own counters; they compare and
    print like the records they stand for; failures make the rare counters appear."""
    ctx = CipheringContext(GB_KEYS, own_system_title=CLIENT_ST, peer_system_title=SERVER_ST)
    assert not hasattr(ctx, "__dict__") and ctx._rare is None
    assert ctx.stats == ciphering.SecurityStats() and ctx.receive.last_seen is None
    tx = CipheringContext(GB_KEYS, own_system_title=SERVER_ST, invocation_counter=5)
    wire = tx.protect(b"\xC4\x01\xC1\x00\x00")
    rc, stats = ctx.receive, ctx.stats
    ctx.unprotect(wire)
    assert (rc.last_seen, stats.accepted) == (5, 1)
    rc.last_seen = None  # the server resets it for a new client system title
    assert ctx.receive.last_seen is None
    ctx.unprotect(wire)
    with pytest.raises(ReplayError):
        ctx.unprotect(wire)
    with pytest.raises(DecodeError):
        ctx.unprotect(wire[:-1])
    assert ctx.stats == ciphering.SecurityStats(accepted=2, replays=1, malformed=1)
    assert ctx.receive.rejected == 1 and ctx._rare is not None
    assert repr(ctx.stats) == repr(ciphering.SecurityStats(accepted=2, replays=1, malformed=1))
    assert "InvocationCounterCheck(last_seen=5, rejected=1)" == repr(ctx.receive)
    assert dataclasses.astuple(ctx.stats) == (2, 0, 1, 0, 1)
