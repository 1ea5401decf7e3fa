"""Sans-I/O server and client cores: state tables, robustness against garbage, protocol errors."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import axdr
from dlms14908.acse import AARE, AARQ, ApplicationContextName, MechanismName
from dlms14908.client import (
    ASSOCIATION_TRANSITIONS,
    AssocInput,
    AssocState,
    ClientConnection,
    ClientSettings,
    ConfirmedServiceFailure,
    decode_data_results,
    encode_data_results,
)
from dlms14908.errors import LocalProtocolError, ProtocolError
from dlms14908.obis import Obis
from dlms14908.server import SERVER_TRANSITIONS, AssociationConfig, ServerState
from dlms14908.sim import DEFAULT_KEYS, MeterSimulator, SimClock
from dlms14908.xdlms import (
    AttributeDescriptor,
    Conformance,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetResponseWithDatablock,
    InitiateRequest,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    decode_apdu,
)

T0 = 1_750_000_000.0
ENERGY = Obis.parse("1-0:1.8.0.255")


def drive(handler, ex):
    data = ex.request
    while data is not None:
        data = ex.receive(handler(data))
    return ex.result


@pytest.fixture(scope="module")
def meter() -> MeterSimulator:
    return MeterSimulator(seed=2, clock=SimClock(T0))


def test_every_state_has_a_row():
    assert set(ASSOCIATION_TRANSITIONS) == set(AssocState)
    assert set(SERVER_TRANSITIONS) == set(ServerState)
    # the error state is sticky: only RESET leaves it
    assert ASSOCIATION_TRANSITIONS[AssocState.ERROR] == {AssocInput.RESET: AssocState.IDLE}


def test_transitions_are_logged_and_illegal_ones_refused(meter):
    conn = ClientConnection(ClientSettings.public())
    conn.transitions = []
    with pytest.raises(LocalProtocolError, match="not associated"):
        conn.get(3, ENERGY, 2)
    with pytest.raises(LocalProtocolError):
        conn.release()
    h = meter.handler_for(0x10)
    drive(h, conn.connect())
    ex = conn.get(3, ENERGY, 2)
    with pytest.raises(LocalProtocolError, match="in progress"):
        conn.get(3, ENERGY, 2)
    ex.abort()
    drive(h, conn.release())
    assert [(a.value, i.value, b.value) for a, i, b in conn.transitions] == [
        ("idle", "send-aarq", "awaiting-aare"), ("awaiting-aare", "aare-accepted", "associated"),
        ("associated", "send-rlrq", "releasing"), ("releasing", "rlre-received", "idle")]


def test_garbage_answer_to_aarq_moves_client_to_error(meter):
    conn = ClientConnection(ClientSettings.public())
    ex = conn.connect()
    with pytest.raises(ProtocolError):
        ex.receive(b"\x61\x03\x00\x00\x00")
    assert conn.state is AssocState.ERROR
    with pytest.raises(LocalProtocolError):
        conn.connect()
    conn.reset()
    drive(meter.handler_for(0x10), conn.connect())
    assert conn.state is AssocState.ASSOCIATED


@given(st.binary(max_size=300))
def test_server_never_raises_on_random_bytes(data):
    m = _shared_meter()
    for sap in (0x10, 0x01, 0x55):
        out = m.server.handle(data, client_sap=sap, now=T0)
        assert out is None or isinstance(out, bytes)
        if out is not None:
            decode_apdu(out)  # whatever it answers is a valid APDU


@given(st.binary(min_size=1, max_size=200).map(lambda b: bytes((0xC0,)) + b))
def test_server_survives_mutated_get_requests_when_associated(data):
    m = _shared_meter()
    drive(m.handler_for(0x10), ClientConnection(ClientSettings.public()).connect())
    out = m.server.handle(data, client_sap=0x10, now=T0)
    if out is None:  # only a well-formed unconfirmed request goes unanswered
        assert len(data) > 2 and not data[2] & 0x40
        assert not decode_apdu(data).confirmed
    else:
        decode_apdu(out)


_METER: list[MeterSimulator] = []


def _shared_meter() -> MeterSimulator:
    if not _METER:
        _METER.append(MeterSimulator(seed=9, clock=SimClock(T0)))
    return _METER[0]


@given(st.binary(max_size=200))
def test_client_receive_raises_only_our_errors(data):
    m = _shared_meter()
    conn = ClientConnection(ClientSettings.public())
    drive(m.handler_for(0x10), conn.connect())
    ex = conn.get(3, ENERGY, 2)
    try:
        ex.receive(data)
    except ProtocolError:
        pass
    assert not conn._busy  # the exchange ended one way or the other, or wants a next block
    # garbage never leaves a half-open exchange behind
    conn.get(7, Obis.parse("1-0:99.1.0.255"), 7).abort()


def test_get_next_without_transfer_and_with_wrong_number(meter):
    conn = ClientConnection(ClientSettings.public())
    h = meter.handler_for(0x10)
    drive(h, conn.connect())
    r = decode_apdu(h(GetRequestNext(0xC1, 1).to_bytes()))
    assert isinstance(r, GetResponseWithDatablock) and r.error == DataAccessResult.NO_LONG_GET_IN_PROGRESS
    first = decode_apdu(h(GetRequestNormal(0xC2, AttributeDescriptor(7, Obis.parse("1-0:99.1.0.255"), 2)).to_bytes()))
    assert isinstance(first, GetResponseWithDatablock) and first.block_number == 1 and not first.last_block
    r = decode_apdu(h(GetRequestNext(0xC2, 5).to_bytes()))
    assert r.error == DataAccessResult.DATA_BLOCK_NUMBER_INVALID


def test_set_blocks_out_of_sequence(meter):
    conn = ClientConnection(ClientSettings.management_lls(b"12345678"))
    h = meter.handler_for(0x01)
    drive(h, conn.connect())
    ad = AttributeDescriptor(26, Obis.parse("0-0:65.0.1.255"), 4)
    r = decode_apdu(h(SetRequestWithFirstDatablock(0xC1, ad, False, 1, b"\x09\x82\x01\x00" + bytes(10)).to_bytes()))
    assert r.NAME == "set-response-datablock" and r.block_number == 1
    r = decode_apdu(h(SetRequestWithDatablock(0xC1, True, 3, bytes(246)).to_bytes()))
    assert r.result == DataAccessResult.DATA_BLOCK_NUMBER_INVALID
    r = decode_apdu(h(SetRequestWithDatablock(0xC1, True, 2, bytes(246)).to_bytes()))
    assert r.result == DataAccessResult.NO_LONG_SET_IN_PROGRESS


def test_unknown_client_sap_gets_no_answer(meter):
    aarq = ClientConnection(ClientSettings(client_sap=0x77)).connect().request
    assert meter.server.handle(aarq, client_sap=0x77, now=T0) is None


def test_old_dlms_version_gets_initiate_error(meter):
    aarq = AARQ(user_information=InitiateRequest(Conformance.GET, 1024, 5))
    aare = decode_apdu(meter.handler_for(0x10)(aarq.to_bytes()))
    assert isinstance(aare, AARE) and aare.result != 0
    assert aare.user_information.NAME == "confirmed-service-error"
    conn = ClientConnection(ClientSettings.public())
    ex = conn.connect()
    with pytest.raises(ConfirmedServiceFailure, match="dlms-version-too-low"):
        ex.receive(aare.to_bytes())


def test_ciphered_context_without_keys_is_refused(meter):
    srv = meter.server
    srv.configs[0x30] = AssociationConfig(0x30)
    s = ClientSettings(client_sap=0x30, keys=DEFAULT_KEYS, system_title=b"ABCDEFGH", ciphering="glo")
    conn = ClientConnection(s)
    ex = conn.connect()
    aare = decode_apdu(srv.handle(ex.request, client_sap=0x30, now=T0))
    assert aare.diagnostic.name == "APPLICATION_CONTEXT_NAME_NOT_SUPPORTED"


def test_require_ciphering_refuses_plain_context():
    m = MeterSimulator(seed=4, clock=SimClock(T0), require_ciphering=True)
    conn = ClientConnection(ClientSettings.management_lls(b"12345678"))
    ex = conn.connect()
    aare = decode_apdu(m.handler_for(0x01)(ex.request))
    assert aare.result != 0
    s = ClientSettings.management_hls(DEFAULT_KEYS, b"ABCDEFGH")
    c2 = ClientConnection(s)
    drive(m.handler_for(0x01), c2.connect())
    assert c2.state is AssocState.ASSOCIATED
    assert decode_apdu(m.handler_for(0x01)(AARQ(ApplicationContextName.LOGICAL_NAME,
                                                  InitiateRequest(Conformance.GET, 512)).to_bytes())).result != 0


def test_garbage_request_gets_exception_response(meter):
    out = decode_apdu(meter.handler_for(0x10)(b"\xff\x00"))
    assert isinstance(out, ExceptionResponse)


def test_data_result_list_round_trip():
    vals = [axdr.DoubleLongUnsigned(5), DataAccessResult.OBJECT_UNDEFINED, None,
            axdr.Structure([axdr.Integer(-1), axdr.Enum(30)])]
    raw = encode_data_results(vals)
    assert raw.hex() == "04" "00" "0600000005" "0104" "0000" "00" "0202" "0fff" "161e"
    assert decode_data_results(raw) == vals


def test_client_connection_state_is_small(meter):
    """Per-meter protocol state of the client (association; ciphering context measured apart)."""
    conn = ClientConnection(ClientSettings.management_hls(DEFAULT_KEYS, b"ABCDEFGH"))
    drive(meter.handler_for(0x01), conn.connect())
    assert not hasattr(conn, "__dict__")
    own = sys.getsizeof(conn) + sum(
        sys.getsizeof(getattr(conn, s)) for s in type(conn).__slots__
        if s not in ("settings", "_cipher", "_random", "_state", "_kind") and getattr(conn, s, None) is not None)
    assert own < 1024


def test_mechanism_name_of_lowest_is_omitted():
    aarq = decode_apdu(ClientConnection(ClientSettings.public()).connect().request)
    assert aarq.mechanism_name is None and not aarq.sender_acse_requirements
    aarq = decode_apdu(ClientConnection(ClientSettings.management_lls(b"x")).connect().request)
    assert aarq.mechanism_name == MechanismName.LOW


_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-128, 127).map(axdr.Integer), st.integers(0, 0xFFFF).map(axdr.LongUnsigned),
    st.integers(-(2**31), 2**31 - 1).map(axdr.DoubleLong), st.integers(0, 2**64 - 1).map(axdr.Long64Unsigned),
    st.integers(0, 255).map(axdr.Enum), st.binary(max_size=700).map(axdr.OctetString),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(axdr.VisibleString),
    st.text(alphabet="01", max_size=40).map(axdr.BitString),
)
_data = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=6).map(axdr.Array),
                                                       st.lists(inner, max_size=6).map(axdr.Structure)),
                     max_leaves=40)
_RT: list = []


@given(_data)
def test_any_data_survives_set_and_get_through_client_and_server(value):
    """SET then GET of arbitrary Data (block transfer both ways when large) returns it exactly."""
    if not _RT:
        m = MeterSimulator(seed=31, clock=SimClock(T0), max_receive_pdu_size=256)
        c = ClientConnection(ClientSettings.management_lls(b"12345678", max_receive_pdu_size=256))
        drive(m.handler_for(0x01), c.connect())
        _RT.extend((m, c))
    m, c = _RT
    h = m.handler_for(0x01)
    ln = Obis.parse("0-0:42.0.0.255")
    drive(h, c.set(1, ln, 2, value))
    back = drive(h, c.get(1, ln, 2))
    assert axdr.strict_equal(back, value)


def test_endless_block_stream_is_cut_off(monkeypatch):
    """A peer that never sends the last block cannot keep an exchange alive forever."""
    import dlms14908.client as client_mod
    from dlms14908.xdlms.blocks import BlockSequenceError

    monkeypatch.setattr(client_mod, "MAX_BLOCKS", 50)
    m = _shared_meter()
    conn = ClientConnection(ClientSettings.public())
    drive(m.handler_for(0x10), conn.connect())
    ex = conn.get(3, ENERGY, 2)
    n = 0
    with pytest.raises(BlockSequenceError, match="more than 50 blocks"):
        while True:
            n += 1
            ex.receive(GetResponseWithDatablock(ex.request[2], False, n, b"\x00").to_bytes())
    assert n == 50 and not conn._busy
