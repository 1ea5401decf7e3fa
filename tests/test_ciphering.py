"""DLMS security suite 0: Green Book vectors byte-exact, tamper, replay, policy, errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import (
    AuthenticationFailed,
    DecodeError,
    EncodeError,
    LocalProtocolError,
    ProtocolError,
    ReplayError,
    SecurityError,
)
from dlms14908.xdlms.ciphering import (
    DEDICATED_CIPHERED_TAGS,
    GLOBAL_CIPHERED_TAGS,
    CipheringKind,
    InvocationCounterCheck,
    KeyId,
    SecurityKeys,
    SecurityStats,
    ciphered_tag,
    decipher,
    decode_key_transfer,
    encode_key_transfer,
    hls_gmac,
    parse_protected,
    protect,
    unprotect,
    unwrap_key,
    verify_hls_gmac,
    verify_lls_password,
    wrap_key,
)
from tests.conftest import VECTORS

H = bytes.fromhex


def _load(name: str) -> dict:
    return json.loads((VECTORS / "xdlms" / name).read_text())


GCM = _load("security_gcm.json")
GEN = _load("security_generated.json")
HLS = _load("security_hls5.json")
WRAP = _load("security_keywrap.json")

GB_KEYS = SecurityKeys(H(GCM["keys"]["ek"]), H(GCM["keys"]["ak"]))


def _keys(entry: dict, default: dict | None = None) -> SecurityKeys:
    k = entry.get("keys", default)
    return SecurityKeys(
        H(k["ek"]),
        H(k["ak"]),
        bk=H(k["bk"]) if "bk" in k else None,
        dk=H(k["dk"]) if "dk" in k else None,
    )


ALL = [(e, GCM["keys"]) for e in GCM["vectors"]] + [(e, None) for e in GEN["vectors"]]


def _id(p: object) -> str:
    return p[0]["id"] if isinstance(p, tuple) else str(p)


@pytest.mark.parametrize("entry,default", ALL, ids=[e["id"] for e, _ in ALL])
def test_protect_reproduces_vector(entry: dict, default: dict | None) -> None:
    out = protect(
        H(entry["plaintext"]),
        keys=_keys(entry, default),
        system_title=H(entry["system_title"]),
        invocation_counter=int(entry["invocation_counter"], 16),
        security_control=int(entry["security_control"], 16),
        kind=entry["kind"],
    )
    assert out.hex().upper() == entry["ciphered"]


@pytest.mark.parametrize("entry,default", ALL, ids=[e["id"] for e, _ in ALL])
def test_unprotect_recovers_plaintext(entry: dict, default: dict | None) -> None:
    stats = SecurityStats()
    counter = InvocationCounterCheck()
    d = decipher(
        H(entry["ciphered"]),
        _keys(entry, default),
        system_title=H(entry["system_title"]),
        require=0,
        counter=counter,
        stats=stats,
    )
    assert d.plaintext == H(entry["plaintext"])
    assert d.header.security_control == int(entry["security_control"], 16)
    assert d.header.invocation_counter == int(entry["invocation_counter"], 16)
    assert d.header.kind is CipheringKind(entry["kind"])
    assert counter.last_seen == d.header.invocation_counter
    assert stats.accepted == 1 and stats.authentication_failures == 0


def test_green_book_v2_header_fields() -> None:
    h = parse_protected(H(GCM["vectors"][0]["ciphered"]))
    assert (h.tag, h.service_tag, h.security_control, h.invocation_counter) == (
        0xC8,
        0xC0,
        0x30,
        0x01234567,
    )
    assert h.authenticated and h.encrypted and not h.broadcast and not h.compressed and h.suite == 0
    assert h.auth_tag == H("7D825C3BE4A77C3FCC056B6B")
    assert h.body == H("411312FF935A47566827C467BC")


def test_general_glo_carries_system_title() -> None:
    e = next(
        v for v in GEN["vectors"] if v["kind"] == "general-glo" and v["security_control"] == "70"
    )
    h = parse_protected(H(e["ciphered"]))
    assert h.system_title == H(e["system_title"]) and h.broadcast and h.service_tag is None
    # the embedded system title is used; no sender title needed
    assert unprotect(H(e["ciphered"]), _keys(e)) == H(e["plaintext"])
    with pytest.raises(SecurityError):
        unprotect(H(e["ciphered"]), _keys(e), system_title=H("0000000000000000"))


def test_broadcast_needs_broadcast_key() -> None:
    e = next(v for v in GEN["vectors"] if v["security_control"] == "70")
    k = _keys(e)
    without_bk = SecurityKeys(k.ek, k.ak)
    stats = SecurityStats()
    with pytest.raises(SecurityError, match="broadcast"):
        unprotect(H(e["ciphered"]), without_bk, system_title=H(e["system_title"]), stats=stats)
    assert stats.policy_rejections == 1
    # the unicast key does not open a broadcast APDU
    swapped = SecurityKeys(k.ek, k.ak, bk=k.ek)
    with pytest.raises(AuthenticationFailed):
        unprotect(H(e["ciphered"]), swapped, system_title=H(e["system_title"]))


def test_dedicated_needs_dedicated_key() -> None:
    e = next(v for v in GEN["vectors"] if v["kind"] == "ded" and v["security_control"] == "30")
    k = _keys(e)
    with pytest.raises(SecurityError, match="dedicated"):
        unprotect(H(e["ciphered"]), SecurityKeys(k.ek, k.ak), system_title=H(e["system_title"]))
    with pytest.raises(LocalProtocolError):
        protect(
            H(e["plaintext"]),
            keys=SecurityKeys(k.ek, k.ak),
            system_title=H(e["system_title"]),
            invocation_counter=1,
            kind="ded",
        )


# --- tamper ------------------------------------------------------------------------------

V2 = H(GCM["vectors"][0]["ciphered"])
V4 = H(GCM["vectors"][2]["ciphered"])
V6 = H(GCM["vectors"][3]["ciphered"])
ST = H("4D4D4D0000BC614E")


@pytest.mark.parametrize("apdu", [V2, V4, V6], ids=["V2-sc30", "V4-sc10", "V6-sc30"])
def test_every_flipped_bit_after_the_length_is_rejected(apdu: bytes) -> None:
    """A flip in SC, IC, ciphertext/plaintext or tag: rejected, counted, nothing returned."""
    stats = SecurityStats()
    counter = InvocationCounterCheck()
    rejected = 0
    for i in range(2, len(apdu)):
        for bit in range(8):
            bad = bytearray(apdu)
            bad[i] ^= 1 << bit
            with pytest.raises((AuthenticationFailed, DecodeError, SecurityError)):
                unprotect(bytes(bad), GB_KEYS, system_title=ST, counter=counter, stats=stats)
            rejected += 1
    # SC flips: suite/compression -> malformed; auth bit off -> policy; the rest -> tag failure
    assert stats.accepted == 0
    assert stats.authentication_failures + stats.malformed + stats.policy_rejections == rejected
    assert stats.authentication_failures >= rejected - 8
    assert counter.last_seen is None  # nothing committed


@pytest.mark.parametrize("where", ["ciphertext", "tag", "ic", "sc_key_set"])
def test_tamper_is_authentication_failed(where: str) -> None:
    bad = bytearray(V2)
    pos = {"ciphertext": 8, "tag": len(V2) - 1, "ic": 4, "sc_key_set": 2}[where]
    bad[pos] ^= 0x40 if where == "sc_key_set" else 0x01
    keys = SecurityKeys(
        GB_KEYS.ek, GB_KEYS.ak, bk=GB_KEYS.ek
    )  # even with bk == ek, SC is in the AAD
    stats = SecurityStats()
    with pytest.raises(AuthenticationFailed):
        unprotect(bytes(bad), keys, system_title=ST, stats=stats)
    assert stats.authentication_failures == 1 and stats.accepted == 0


def test_wrong_system_title_or_key_fails() -> None:
    with pytest.raises(AuthenticationFailed):
        unprotect(V2, GB_KEYS, system_title=H("4D4D4D0000BC614F"))
    with pytest.raises(AuthenticationFailed):
        unprotect(V2, SecurityKeys(GB_KEYS.ek, bytes(16)), system_title=ST)


def test_outer_tag_swap_is_caught() -> None:
    # the outer tag is not authenticated by GCM; a glo-set-request carrying a GET is refused
    bad = b"\xc9" + V2[1:]
    with pytest.raises(DecodeError, match="outer tag"):
        unprotect(bad, GB_KEYS, system_title=ST)


def test_downgrade_to_encryption_only_is_refused_by_default_policy() -> None:
    bad = bytearray(V2)
    bad[2] = 0x20  # claim "encryption only": no tag would be checked
    stats = SecurityStats()
    with pytest.raises(SecurityError, match="lacks required protection 0x10"):
        unprotect(bytes(bad), GB_KEYS, system_title=ST, stats=stats)
    assert stats.policy_rejections == 1
    v3 = H(GCM["vectors"][1]["ciphered"])
    with pytest.raises(SecurityError):
        unprotect(v3, GB_KEYS, system_title=ST)
    assert unprotect(v3, GB_KEYS, system_title=ST, require=0) == H(GCM["vectors"][1]["plaintext"])
    with pytest.raises(SecurityError):
        unprotect(V4, GB_KEYS, system_title=ST, require=0x30)


# --- invocation counter ------------------------------------------------------------------


def test_replay_rejected_before_crypto_and_counted() -> None:
    counter = InvocationCounterCheck()
    stats = SecurityStats()
    assert unprotect(V2, GB_KEYS, system_title=ST, counter=counter, stats=stats)
    assert counter.last_seen == 0x01234567
    for _ in range(3):
        with pytest.raises(ReplayError):
            unprotect(V2, GB_KEYS, system_title=ST, counter=counter, stats=stats)
    assert counter.rejected == 3 and stats.replays == 3 and stats.accepted == 1
    # a stale IC is refused even when the tag would not verify (checked first, no crypto)
    older = protect(
        H(GCM["vectors"][0]["plaintext"]),
        keys=GB_KEYS,
        system_title=ST,
        invocation_counter=0x01234566,
    )
    with pytest.raises(ReplayError):
        unprotect(older, GB_KEYS, system_title=ST, counter=counter)
    newer = protect(
        H(GCM["vectors"][0]["plaintext"]),
        keys=GB_KEYS,
        system_title=ST,
        invocation_counter=0x01234568,
    )
    assert unprotect(newer, GB_KEYS, system_title=ST, counter=counter, stats=stats)
    assert counter.last_seen == 0x01234568


def test_failed_tag_does_not_advance_counter() -> None:
    counter = InvocationCounterCheck(last_seen=5)
    forged = bytearray(V2)
    forged[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        unprotect(bytes(forged), GB_KEYS, system_title=ST, counter=counter)
    assert counter.last_seen == 5 and counter.rejected == 0
    assert unprotect(V2, GB_KEYS, system_title=ST, counter=counter)
    assert counter.last_seen == 0x01234567


# --- malformed input and local misuse --------------------------------------------------


@pytest.mark.parametrize(
    "data,field",
    [
        (b"", "apdu tag"),
        (b"\xc0\x01", "apdu tag"),
        (b"\xc8", "ciphered content"),
        (b"\xc8\x05\x30\x00\x00\x00", "ciphered content"),
        (b"\xc8\x04\x30\x00\x00\x00", "security header"),
        (b"\xc8\x0a\x30\x00\x00\x00\x01\x00\x00\x00\x00\x00", "authentication tag"),
        (b"\xc8\x05\xb0\x00\x00\x00\x01", "security control"),  # compression bit
        (b"\xc8\x05\x31\x00\x00\x00\x01", "security control"),  # suite 1
        (b"\xdb\x07" + bytes(7) + b"\x05\x20\x00\x00\x00\x01", "system title"),
        (b"\xdb\x08" + bytes(4), "system title"),
        (b"\xc8\x85\x00\x00\x00\x00\x00", "ciphered content"),
    ],
)
def test_malformed_raises_decode_error_naming_field(data: bytes, field: str) -> None:
    stats = SecurityStats()
    with pytest.raises(DecodeError) as ei:
        unprotect(data, GB_KEYS, system_title=ST, require=0, stats=stats)
    assert ei.value.field == field
    assert stats.malformed == 1


def test_compression_bit_rejected_clearly() -> None:
    with pytest.raises(DecodeError, match="compression"):
        parse_protected(b"\xc8\x05\xb0\x00\x00\x00\x01")
    with pytest.raises(EncodeError, match="compression"):
        protect(
            b"\xc0\x01", keys=GB_KEYS, system_title=ST, invocation_counter=1, security_control=0xB0
        )


@given(st.binary(max_size=80))
def test_random_bytes_raise_only_our_errors(data: bytes) -> None:
    for blob in (data, b"\xc8" + data, b"\xdb\x08" + data, b"\xd4" + data):
        try:
            unprotect(blob, GB_KEYS, system_title=ST, require=0)
        except ProtocolError:
            pass


@given(
    st.binary(min_size=1, max_size=300),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0x10, 0x20, 0x30, 0x50, 0x60, 0x70]),
    st.sampled_from(list(CipheringKind)),
    st.binary(min_size=8, max_size=8),
)
def test_round_trip(body: bytes, ic: int, sc: int, kind: CipheringKind, title: bytes) -> None:
    keys = SecurityKeys(
        bytes(range(16)), bytes(range(16, 32)), bk=bytes(range(32, 48)), dk=bytes(16)
    )
    if kind.dedicated:
        sc &= ~0x40
    plain = b"\xc4" + body
    out = protect(
        plain, keys=keys, system_title=title, invocation_counter=ic, security_control=sc, kind=kind
    )
    assert out[0] == ciphered_tag(0xC4, kind)
    got = decipher(out, keys, system_title=None if kind.general else title, require=0)
    assert got.plaintext == plain and got.header.invocation_counter == ic
    body_on_wire = parse_protected(out).body
    if sc & 0x20 and len(plain) >= 8:
        assert body_on_wire != plain  # encrypted: not in clear
    elif not sc & 0x20:
        assert body_on_wire == plain  # authentication only: in clear


def test_tag_mapping() -> None:
    assert ciphered_tag(0xC0, "glo") == 0xC8 and ciphered_tag(0xC0, "ded") == 0xD0
    assert ciphered_tag(0x01, "glo") == 0x21 and ciphered_tag(0x08, "glo") == 0x28
    assert ciphered_tag(0xC7, "ded") == 0xD7 and ciphered_tag(0x0F, "general-glo") == 0xDB
    assert ciphered_tag(0x0F, "general-ded") == 0xDC
    assert all(
        d - g in (0x08, 0x20)
        for g, d in zip(GLOBAL_CIPHERED_TAGS.values(), DEDICATED_CIPHERED_TAGS.values())
    )
    with pytest.raises(EncodeError, match="general-glo"):
        ciphered_tag(0x0F, "glo")  # DataNotification has no glo- form
    with pytest.raises(EncodeError):
        ciphered_tag(0xC0, "nope")


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"system_title": b"short"}, "system_title"),
        ({"invocation_counter": 2**32}, "invocation_counter"),
        ({"invocation_counter": -1}, "invocation_counter"),
        ({"security_control": 0x00}, "security_control"),
        ({"security_control": 0x31}, "security_control"),
        ({"security_control": 0x70, "kind": "ded"}, "security_control"),
    ],
)
def test_protect_rejects_bad_arguments(kwargs: dict, field: str) -> None:
    args = {"keys": GB_KEYS, "system_title": ST, "invocation_counter": 1, **kwargs}
    with pytest.raises(EncodeError) as ei:
        protect(b"\xc0\x01", **args)
    assert ei.value.field == field


def test_keys_never_in_repr_or_errors() -> None:
    ek, ak = H("000102030405060708090A0B0C0D0E0F"), H("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    k = SecurityKeys(ek, ak, bk=bytes(16))
    text = repr(k) + str(k)
    for secret in (ek, ak, bytes(16)):
        assert secret.hex() not in text.lower() and repr(secret) not in text
    assert "bk=<set>" in text and "dk=None" in text
    with pytest.raises(EncodeError) as ei:
        SecurityKeys(ek, ak[:15])
    assert ei.value.field == "ak" and ak[:15].hex() not in str(ei.value).lower()
    d = decipher(V2, GB_KEYS, system_title=ST)
    assert "C0010000" not in repr(d).upper()  # plaintext is not in the repr either


# --- HLS-5 GMAC ------------------------------------------------------------------------


@pytest.mark.parametrize("entry", HLS["vectors"], ids=lambda e: e["id"])
def test_hls5_gmac_vectors(entry: dict) -> None:
    keys = _keys(entry, HLS["keys"])
    st_ = H(entry["system_title"])
    f = hls_gmac(keys, st_, int(entry["invocation_counter"], 16), H(entry["challenge"]))
    assert f.hex().upper() == entry["response"]
    counter = InvocationCounterCheck()
    assert verify_hls_gmac(keys, st_, H(entry["challenge"]), f, counter=counter) == int(
        entry["invocation_counter"], 16
    )
    with pytest.raises(ReplayError):
        verify_hls_gmac(keys, st_, H(entry["challenge"]), f, counter=counter)


def test_hls5_tamper_and_malformed() -> None:
    e = HLS["vectors"][0]
    keys = _keys(e, HLS["keys"])
    resp = H(e["response"])
    stats = SecurityStats()
    for i in range(1, len(resp)):
        bad = bytearray(resp)
        bad[i] ^= 0x80
        with pytest.raises(AuthenticationFailed):
            verify_hls_gmac(keys, H(e["system_title"]), H(e["challenge"]), bytes(bad), stats=stats)
    assert stats.authentication_failures == len(resp) - 1
    with pytest.raises(AuthenticationFailed):  # wrong challenge (e.g. the other pass's)
        verify_hls_gmac(keys, H(e["system_title"]), H("4B35366956616759"), resp)
    with pytest.raises(DecodeError):
        verify_hls_gmac(keys, H(e["system_title"]), H(e["challenge"]), resp[:-1])
    with pytest.raises(DecodeError):
        verify_hls_gmac(keys, H(e["system_title"]), H(e["challenge"]), b"\x30" + resp[1:])


def test_lls_password() -> None:
    verify_lls_password(b"12345678", b"12345678")
    for bad in (b"12345679", b"1234567", b""):
        with pytest.raises(AuthenticationFailed) as ei:
            verify_lls_password(b"12345678", bad)
        assert "1234" not in str(ei.value)


# --- RFC 3394 / key transfer -----------------------------------------------------------


@pytest.mark.parametrize("entry", WRAP["vectors"], ids=lambda e: e["id"])
def test_rfc3394_vector(entry: dict) -> None:
    assert wrap_key(H(entry["kek"]), H(entry["key"])).hex().upper() == entry["wrapped"]
    assert unwrap_key(H(entry["kek"]), H(entry["wrapped"])) == H(entry["key"])
    bad = bytearray(H(entry["wrapped"]))
    bad[0] ^= 1
    with pytest.raises(AuthenticationFailed):
        unwrap_key(H(entry["kek"]), bytes(bad))
    with pytest.raises(DecodeError):
        unwrap_key(H(entry["kek"]), bytes(bad[:-1]))


def test_key_transfer_method_data() -> None:
    e = WRAP["vectors"][0]
    kek = H(e["kek"])
    data = encode_key_transfer(
        kek, [(KeyId.GLOBAL_UNICAST_ENCRYPTION, H(e["key"])), (KeyId.AUTHENTICATION, bytes(16))]
    )
    # array(2) of structure(2) {enum 0, octet-string(24) <RFC 3394 vector>}, ...
    assert data[:8] == H("0102020216000918")
    assert data[8:32] == H(e["wrapped"])
    assert data[32:37] == H("0202160209") and data[37] == 24
    assert decode_key_transfer(kek, data) == [
        (KeyId.GLOBAL_UNICAST_ENCRYPTION, H(e["key"])),
        (KeyId.AUTHENTICATION, bytes(16)),
    ]
    with pytest.raises(AuthenticationFailed):
        decode_key_transfer(bytes(16), data)
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            decode_key_transfer(kek, data[:cut])
    with pytest.raises(DecodeError):
        decode_key_transfer(kek, data + b"\x00")


@given(st.binary(max_size=60))
def test_key_transfer_random_bytes(data: bytes) -> None:
    try:
        decode_key_transfer(bytes(16), b"\x01" + data)
    except ProtocolError:
        pass
