"""Client/server ACSE output against public vectors (vectors/xdlms/acse_vectors.json A1/A2/A3/B1/B4,
security_hls5.json V8/V9: Green Book examples as reproduced by dlms-cosem, jDLMS, cosemlib)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dlms14908 import axdr
from dlms14908.acse import AARE, AARQ, MechanismName
from dlms14908.client import ClientConnection, ClientSettings
from dlms14908.obis import Obis
from dlms14908.server import AssociationConfig, CosemServer
from dlms14908.xdlms import Conformance, decode_apdu
from dlms14908.xdlms.ciphering import SecurityKeys


def _vec(vectors_dir, name: str, vid: str) -> dict:
    data = json.loads((vectors_dir / "xdlms" / name).read_text())
    for v in data["vectors"]:
        if v["id"] == vid:
            assert v["source"]
            return v
    raise KeyError(vid)


GB_CONF = Conformance(0x007E1F)


def test_public_aarq_matches_green_book_a1(vectors_dir):
    v = _vec(vectors_dir, "acse_vectors.json", "A1")
    conn = ClientConnection(ClientSettings.public(conformance=GB_CONF, max_receive_pdu_size=0x04B0))
    assert conn.connect().request.hex().upper() == v["hex"]


def test_lls_aarq_matches_a2(vectors_dir):
    v = _vec(vectors_dir, "acse_vectors.json", "A2")
    conn = ClientConnection(ClientSettings.management_lls(b"12345678", conformance=GB_CONF,
                                                          max_receive_pdu_size=0x04B0))
    assert conn.connect().request.hex().upper() == v["hex"]


def _hls_keys(vectors_dir) -> SecurityKeys:
    data = json.loads((vectors_dir / "xdlms" / "security_hls5.json").read_text())
    return SecurityKeys(ek=bytes.fromhex(data["keys"]["ek"]), ak=bytes.fromhex(data["keys"]["ak"]))


def test_hls5_aarq_is_a3_plus_calling_ap_title(vectors_dir):
    v = _vec(vectors_dir, "acse_vectors.json", "A3")
    st = bytes.fromhex("4D4D4D0000000001")
    s = ClientSettings.management_hls(_hls_keys(vectors_dir), st, ciphering=None,
                                      conformance=GB_CONF, max_receive_pdu_size=0x04B0)
    conn = ClientConnection(s, random=lambda n: b"K56iVagY")
    ours = decode_apdu(conn.connect().request)
    assert isinstance(ours, AARQ) and ours.calling_ap_title == st
    # A3 carries no AP title; everything else is byte-for-byte the published AARQ
    assert dataclasses.replace(ours, calling_ap_title=None).to_bytes().hex().upper() == v["hex"]


def _server(conf: int, keys: SecurityKeys | None = None, st: bytes = b"SRV00001", rnd=None,
            mechs=(MechanismName.LOWEST,)) -> CosemServer:
    return CosemServer([], [AssociationConfig(0x10, conformance=Conformance(conf), mechanisms=mechs,
                                              keys=keys)],
                       system_title=st, clock=lambda: 0.0, max_receive_pdu_size=0x01F4,
                       random=rnd or bytes)


def test_server_aare_matches_green_book_b1(vectors_dir):
    a1 = bytes.fromhex(_vec(vectors_dir, "acse_vectors.json", "A1")["hex"])
    b1 = _vec(vectors_dir, "acse_vectors.json", "B1")
    srv = _server(0x00501F)
    assert srv.handle(a1, client_sap=0x10).hex().upper() == b1["hex"]


def test_hls5_both_passes_match_v8_v9(vectors_dir):
    """A full HLS-5 association whose pass 3 and pass 4 are the Green Book values."""
    data = json.loads((vectors_dir / "xdlms" / "security_hls5.json").read_text())
    v8, v9 = data["vectors"]
    keys = _hls_keys(vectors_dir)
    client_st, server_st = bytes.fromhex(v8["system_title"]), bytes.fromhex(v9["system_title"])
    srv = _server(0x00501F, keys, server_st, rnd=lambda n: bytes.fromhex(v8["challenge"]),
                  mechs=(MechanismName.HIGH_GMAC,))
    s = ClientSettings.management_hls(keys, client_st, ciphering=None, conformance=GB_CONF,
                                      invocation_counter=int(v8["invocation_counter"], 16))
    conn = ClientConnection(s, random=lambda n: bytes.fromhex(v9["challenge"]))
    ex = conn.connect()
    aare_raw = srv.handle(ex.request, client_sap=0x10)
    aare = decode_apdu(aare_raw)
    assert isinstance(aare, AARE) and aare.responding_authentication_value == bytes.fromhex(v8["challenge"])
    # B4 is the published HLS-5 AARE; ours adds the responding AP title the client needs
    b4 = _vec(vectors_dir, "acse_vectors.json", "B4")
    assert dataclasses.replace(aare, responding_ap_title=None).to_bytes().hex().upper() == b4["hex"]
    srv.sessions[0x10].cipher.next_invocation_counter = int(v9["invocation_counter"], 16)
    pass3 = ex.receive(aare_raw)
    req = decode_apdu(pass3)
    assert req.method.instance_id == Obis(0, 0, 40, 0, 0, 255) and req.method.method_id == 1
    assert bytes(req.parameters).hex().upper() == v8["response"]
    pass4 = srv.handle(pass3, client_sap=0x10)
    resp = decode_apdu(pass4)
    assert bytes(resp.return_parameters).hex().upper() == v9["response"]
    assert ex.receive(pass4) is None
    assert conn.state.value == "associated"
    assert isinstance(resp.return_parameters, axdr.OctetString)


@pytest.mark.parametrize("bad", ["A1", "A2"])
def test_wrong_mechanism_is_rejected_with_diagnostic(vectors_dir, bad):
    raw = bytes.fromhex(_vec(vectors_dir, "acse_vectors.json", bad)["hex"])
    srv = _server(0x00501F, mechs=(MechanismName.HIGH_GMAC,), keys=None)
    aare = decode_apdu(srv.handle(raw, client_sap=0x10))
    assert aare.result != 0
    assert aare.diagnostic.name in ("AUTHENTICATION_MECHANISM_NAME_REQUIRED",
                                    "AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED")
