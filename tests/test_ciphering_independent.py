"""Suite 0 (Green Book §9.2.7.2.4) rebuilt from the bare AES primitives of ``cryptography``.

Independent of :mod:`dlms14908.xdlms.ciphering`: the APDU framing (tags per Green Book
xDLMS-APDU, A-XDR length, SC ‖ IC ‖ body, general-* system title), the IV (system title ‖
IC), the AAD (SC ‖ AK, plus the APDU when only authenticated), the 12-byte tag and the
key choice (EK / DK / BK by the broadcast bit) are written out here again, so a mistake
shared by our encoder and decoder cannot pass.  The generated vectors
(``vectors/xdlms/security_generated.json``) and random inputs are checked both ways.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms14908.errors import EncodeError
from dlms14908.xdlms.ciphering import SecurityKeys, protect, unprotect
from tests.conftest import VECTORS

# Green Book xDLMS-APDU: glo-* [33..56, 200..207] and ded-* [65..88, 208..215] tags
GLO = {
    0x01: 0x21, 0x05: 0x25, 0x06: 0x26, 0x08: 0x28, 0x0C: 0x2C, 0x0D: 0x2D, 0x0E: 0x2E,
    0x16: 0x36, 0x18: 0x38, 0xC0: 0xC8, 0xC1: 0xC9, 0xC2: 0xCA, 0xC3: 0xCB, 0xC4: 0xCC,
    0xC5: 0xCD, 0xC7: 0xCF,
}
DED = {
    0x01: 0x41, 0x05: 0x45, 0x06: 0x46, 0x08: 0x48, 0x0C: 0x4C, 0x0D: 0x4D, 0x0E: 0x4E,
    0x16: 0x56, 0x18: 0x58, 0xC0: 0xD0, 0xC1: 0xD1, 0xC2: 0xD2, 0xC3: 0xD3, 0xC4: 0xD4,
    0xC5: 0xD5, 0xC7: 0xD7,
}


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def reference_protect(
    plain: bytes, *, ek: bytes, ak: bytes, bk: bytes | None, dk: bytes | None,
    system_title: bytes, ic: int, sc: int, kind: str,
) -> bytes:
    key = bk if sc & 0x40 else (dk if "ded" in kind else ek)
    assert key is not None
    iv = system_title + ic.to_bytes(4, "big")
    if sc & 0x30 == 0x30:
        sealed = AESGCM(key).encrypt(iv, plain, bytes([sc]) + ak)
        body = sealed[:-16] + sealed[-16:-4]  # ciphertext ‖ 12-byte tag
    elif sc & 0x30 == 0x20:  # GCM without authentication = CTR from J0 + 1
        enc = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).encryptor()
        body = enc.update(plain) + enc.finalize()
    else:  # authentication only: GMAC over SC ‖ AK ‖ APDU
        body = plain + AESGCM(key).encrypt(iv, b"", bytes([sc]) + ak + plain)[:12]
    content = bytes([sc]) + ic.to_bytes(4, "big") + body
    if kind.startswith("general"):
        tag = 0xDB if kind == "general-glo" else 0xDC
        return bytes([tag]) + _len(8) + system_title + _len(len(content)) + content
    tag = (GLO if kind == "glo" else DED)[plain[0]]
    return bytes([tag]) + _len(len(content)) + content


def test_generated_vectors_rebuilt_from_primitives() -> None:
    doc = json.loads((VECTORS / "xdlms" / "security_generated.json").read_text())
    seen = set()
    for v in doc["vectors"]:
        k = {n: bytes.fromhex(x) for n, x in v["keys"].items()}
        sc = int(v["security_control"], 16)
        ref = reference_protect(
            bytes.fromhex(v["plaintext"]), ek=k["ek"], ak=k["ak"], bk=k.get("bk"), dk=k.get("dk"),
            system_title=bytes.fromhex(v["system_title"]),
            ic=int(v["invocation_counter"], 16), sc=sc, kind=v["kind"],
        )
        assert ref.hex().upper() == v["ciphered"].upper(), v["id"]
        seen.add((v["kind"], sc))
    # every form and every SC the vectors claim to cover, broadcast included
    assert {k for k, _ in seen} == {"glo", "ded", "general-glo", "general-ded"}
    assert {sc for _, sc in seen} >= {0x10, 0x20, 0x30, 0x50, 0x70}


_PLAINS = [
    "C0010000080000010000FF0200",  # GET-Request-Normal (V1)
    "C401C1000600001391",  # GET-Response-Normal (G4)
    "C101C100080000010000FF0200090C07E50118FF0E303950FFC400",  # SET (S1)
    "C301C0000F0000280000FF010109111000001A90E6D2221FA2FD85EED61ACC22",  # ACTION (M1)
    "C501C100", "C701C0000100", "0E010601",  # SET/ACTION-Response, ConfirmedServiceError
    "01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0",  # InitiateRequest (V5)
    "0800065F1F0400007C1F04000007",  # InitiateResponse (V7 plaintext)
    "0501022008", "0C01000600000005",  # SN ReadRequest / ReadResponse
    "0F000001DB000600001391",  # DataNotification: general-* only
]


@settings(max_examples=100, deadline=None)
@given(
    plain_hex=st.sampled_from(_PLAINS),
    pad=st.binary(max_size=300),
    keys=st.lists(st.binary(min_size=16, max_size=16), min_size=4, max_size=4),
    title=st.binary(min_size=8, max_size=8),
    ic=st.integers(0, 0xFFFFFFFF),
    sc=st.sampled_from([0x10, 0x20, 0x30, 0x50, 0x60, 0x70]),
    kind=st.sampled_from(["glo", "ded", "general-glo", "general-ded"]),
)
def test_random_protect_matches_primitives_both_ways(
    plain_hex: str, pad: bytes, keys: list[bytes], title: bytes, ic: int, sc: int, kind: str
) -> None:
    plain = bytes.fromhex(plain_hex)
    if kind.startswith("general"):
        plain += pad  # general-* carries any octets; long bodies exercise long-form lengths
    ek, ak, bk, dk = keys
    ours_keys = SecurityKeys(ek, ak, bk=bk, dk=dk)
    table = GLO if kind == "glo" else DED if kind == "ded" else None
    if (table is not None and plain[0] not in table) or ("ded" in kind and sc & 0x40):
        with pytest.raises(EncodeError):
            protect(plain, keys=ours_keys, system_title=title, invocation_counter=ic,
                    security_control=sc, kind=kind)
        return
    ref = reference_protect(plain, ek=ek, ak=ak, bk=bk, dk=dk, system_title=title, ic=ic,
                            sc=sc, kind=kind)
    ours = protect(plain, keys=ours_keys, system_title=title, invocation_counter=ic,
                   security_control=sc, kind=kind)
    assert ours == ref
    assert unprotect(ref, ours_keys, system_title=title, require=0) == plain
