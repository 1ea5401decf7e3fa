"""CipheringContext: a client and a server exchanging suite 0 APDUs and HLS-5 proofs."""

from __future__ import annotations

import json

import pytest

from dlms14908.errors import (
    AuthenticationFailed,
    EncodeError,
    LocalProtocolError,
    ReplayError,
    SecurityError,
)
from dlms14908.xdlms import CipheredApdu, decode_apdu
from dlms14908.xdlms.ciphering import CipheringContext, SecurityKeys, parse_protected, unprotect
from tests.conftest import VECTORS

H = bytes.fromhex
GCM = json.loads((VECTORS / "xdlms" / "security_gcm.json").read_text())
HLS = {
    v["id"]: v
    for v in json.loads((VECTORS / "xdlms" / "security_hls5.json").read_text())["vectors"]
}
KEYS = SecurityKeys(H(GCM["keys"]["ek"]), H(GCM["keys"]["ak"]))
CLIENT, SERVER = H("4D4D4D0000000001"), H("4D4D4D0000BC614E")


def _pair(server_ic: int = 0x01234567) -> tuple[CipheringContext, CipheringContext]:
    client = CipheringContext(
        KEYS, own_system_title=CLIENT, peer_system_title=SERVER, invocation_counter=1
    )
    server = CipheringContext(
        KEYS, own_system_title=SERVER, peer_system_title=CLIENT, invocation_counter=server_ic
    )
    return client, server


def test_server_context_reproduces_green_book_v2_and_counts_up() -> None:
    v2 = GCM["vectors"][0]
    _, server = _pair()
    assert server.protect(H(v2["plaintext"])).hex().upper() == v2["ciphered"]
    assert server.next_invocation_counter == 0x01234568
    assert parse_protected(server.protect(H(v2["plaintext"]))).invocation_counter == 0x01234568


def test_exchange_and_replay() -> None:
    client, server = _pair()
    req = client.protect(H("C0010000080000010000FF0200"))
    assert server.unprotect(req) == H("C0010000080000010000FF0200")
    with pytest.raises(ReplayError):
        server.unprotect(req)
    resp = server.protect(H("C401C1000600001391"))
    assert client.unprotect(resp) == H("C401C1000600001391")
    assert server.stats.accepted == 1 and server.stats.replays == 1
    assert client.receive.last_seen == 0x01234567


def test_hls5_both_passes_match_green_book() -> None:
    client, server = _pair()
    stoc, ctos = H(HLS["V8"]["challenge"]), H(HLS["V9"]["challenge"])
    f_stoc = client.hls_response(stoc)  # pass 3, client IC 1
    assert f_stoc.hex().upper() == HLS["V8"]["response"]
    assert server.verify_hls_response(stoc, f_stoc) == 1
    f_ctos = server.hls_response(ctos)  # pass 4, server IC 0x01234567
    assert f_ctos.hex().upper() == HLS["V9"]["response"]
    assert client.verify_hls_response(ctos, f_ctos) == 0x01234567
    with pytest.raises(ReplayError):  # the same proof twice
        client.verify_hls_response(ctos, f_ctos)
    forged = bytearray(server.hls_response(ctos))
    forged[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        client.verify_hls_response(ctos, bytes(forged))


def test_refused_protect_does_not_burn_an_invocation_counter() -> None:
    client, _ = _pair()
    with pytest.raises(EncodeError):
        client.protect(H("0F00000001000600001391"))  # DataNotification has no glo- form
    with pytest.raises(LocalProtocolError):
        client.protect(H("C0010000080000010000FF0200"), security_control=0x70)  # no broadcast key
    assert client.next_invocation_counter == 1
    assert (
        parse_protected(
            client.protect(H("0F00000001000600001391"), kind="general-glo")
        ).system_title
        == CLIENT
    )


def test_invocation_counter_exhaustion() -> None:
    ctx = CipheringContext(KEYS, own_system_title=SERVER, invocation_counter=0xFFFFFFFF)
    ctx.protect(H("C401C1000600001391"))
    with pytest.raises(LocalProtocolError, match="exhausted"):
        ctx.protect(H("C401C1000600001391"))
    with pytest.raises(EncodeError):
        CipheringContext(KEYS, own_system_title=SERVER, invocation_counter=-1)


def test_policy_default_requires_authentication() -> None:
    client, server = _pair()
    enc_only = client.protect(H("C0010000080000010000FF0200"), security_control=0x20)
    with pytest.raises(SecurityError):
        server.unprotect(enc_only)
    assert server.receive.last_seen is None and server.stats.policy_rejections == 1


def test_accepts_decoded_ciphered_apdu_objects() -> None:
    v2 = GCM["vectors"][0]
    obj = decode_apdu(H(v2["ciphered"]))
    assert isinstance(obj, CipheredApdu)
    assert unprotect(obj, KEYS, system_title=SERVER) == H(v2["plaintext"])
    with pytest.raises(LocalProtocolError):
        unprotect(12345, KEYS, system_title=SERVER)


def test_tag_tables_agree_with_the_apdu_codec() -> None:
    """Our plain->ciphered tables and the xDLMS codec's ciphered->plain tables are inverses."""
    from dlms14908.xdlms.ciphered import CIPHERED_TAGS, DED_TO_PLAIN, GLO_TO_PLAIN
    from dlms14908.xdlms.ciphering import (
        DEDICATED_CIPHERED_TAGS,
        GENERAL_DED_CIPHERING,
        GENERAL_GLO_CIPHERING,
        GLOBAL_CIPHERED_TAGS,
        is_ciphered_tag,
    )

    assert {c: p for p, c in GLOBAL_CIPHERED_TAGS.items()} == GLO_TO_PLAIN
    assert {c: p for p, c in DEDICATED_CIPHERED_TAGS.items()} == DED_TO_PLAIN
    assert {t for t in range(256) if is_ciphered_tag(t)} == set(CIPHERED_TAGS)
    assert CIPHERED_TAGS[GENERAL_GLO_CIPHERING] == "general-glo-ciphering"
    assert CIPHERED_TAGS[GENERAL_DED_CIPHERING] == "general-ded-ciphering"
