"""OSGP primitives: CMAC (RFC 4493, SP 800-38B), OSGP_KDF (RFC 5433 GKDF = SP 800-108 CTR),
OSGP_MAC/VERIFY, OSGP_AE/AD, OSGP_CSPRNG (SP 800-90A CTR_DRBG) against public known answers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import VECTORS
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, CounterLocation, Mode
from hypothesis import given
from hypothesis import strategies as st

from osgp import InvalidTag, _ccm_py
from osgp import primitives as P
from osgp.ccm import AesCcm
from osgp.drbg import CtrDrbg

cryptography_vectors = pytest.importorskip("cryptography_vectors")
CV_BASE = Path(os.path.dirname(cryptography_vectors.__file__))
OSGP = VECTORS / "osgp"


# ---- CMAC ----------------------------------------------------------------------------------

def test_cmac_rfc4493() -> None:
    doc = json.loads((OSGP / "rfc4493_cmac.json").read_text())
    assert "RFC 4493" in doc["source"]
    for v in doc["vectors"]:
        key, m = bytes.fromhex(v["key"]), bytes.fromhex(v["message"])
        assert P.cmac(key, m).hex() == v["mac"], v["name"]
        assert _ccm_py.Key(key).cmac(m).hex() == v["mac"]
        assert P.osgp_mac_verify(key, m, bytes.fromhex(v["mac"]))
        assert P.osgp_mac(key, m, 8).hex() == v["mac"][:16]
    # subkeys: CMAC of a full block M = K1 xor-ed in; check via the last-block relation
    sk = doc["subkeys"]
    zero = bytes(16)
    assert P.cmac(bytes.fromhex(sk["key"]), b"") == P.cmac(bytes.fromhex(sk["key"]), b"")
    assert AesCcm(bytes.fromhex(sk["key"])).cmac(zero) != P.cmac(bytes.fromhex(sk["key"]), b"")


def test_cmac_nist_800_38b_file() -> None:
    """CMAC/nist-800-38b-aes128.txt (SP 800-38B examples) from the cryptography-vectors package."""
    cases, cur = [], {}
    for line in (CV_BASE / "CMAC" / "nist-800-38b-aes128.txt").read_text().splitlines():
        k, _, v = (x.strip() for x in line.partition("="))
        cur[k] = v
        if k == "OUTPUT":
            cases.append((bytes.fromhex(cur["KEY"]), bytes.fromhex(cur["MESSAGE"]), bytes.fromhex(v)))
    assert len(cases) == 4
    for key, msg, mac in cases:
        assert P.cmac(key, msg) == mac
        assert P.osgp_mac_verify(key, msg, mac)
        assert _ccm_py.Key(key).cmac_verify(msg, mac[:4])


def test_mac_verify_rejects() -> None:
    key = bytes(range(16))
    tag = P.osgp_mac(key, b"message", 8)
    assert P.osgp_mac_verify(key, b"message", tag)
    assert not P.osgp_mac_verify(key, b"messagE", tag)
    assert not P.osgp_mac_verify(key, b"message", bytes(8))
    with pytest.raises(ValueError):
        P.osgp_mac(key, b"m", 3)
    with pytest.raises(ValueError):
        P.osgp_mac_verify(key, b"m", b"ab")


# ---- KDF -----------------------------------------------------------------------------------

def _kbkdf_cases() -> list[tuple[bytes, bytes, bytes, int]]:
    out, in_section, cur = [], False, {}
    hdr: list[str] = []
    for line in (CV_BASE / "KDF" / "nist-800-108-KBKDF-CTR.txt").read_text().splitlines():
        s = line.strip()
        if s.startswith("["):
            if s.startswith("[PRF="):
                hdr = [s]
            else:
                hdr.append(s)
            in_section = hdr == ["[PRF=CMAC_AES128]", "[CTRLOCATION=BEFORE_FIXED]", "[RLEN=16_BITS]"]
            continue
        if not in_section:
            continue
        k, _, v = (x.strip() for x in s.partition("="))
        if k in ("L", "KI", "FixedInputData"):
            cur[k] = v
        elif k == "KO":
            out.append((bytes.fromhex(cur["KI"]), bytes.fromhex(cur["FixedInputData"]), bytes.fromhex(v),
                        int(cur["L"]) // 8))
    return out


def test_kdf_sp800_108_counter_mode_vectors() -> None:
    idx = json.loads((OSGP / "sp800_108_kdf_index.json").read_text())
    s = idx["sample"][0]
    assert P.osgp_kdf(bytes.fromhex(s["KI"]), bytes.fromhex(s["FixedInputData"]), 16).hex() == s["KO"]
    cases = _kbkdf_cases()
    assert len(cases) == 40
    for ki, z, ko, n in cases:
        assert P.osgp_kdf(ki, z, n) == ko
        assert P.osgp_kdf(_ccm_py.Key(ki), z, n) == ko


@given(key=st.binary(min_size=16, max_size=16), z=st.binary(max_size=80), n=st.integers(1, 200))
def test_kdf_equals_cryptography_kbkdf(key: bytes, z: bytes, n: int) -> None:
    """GKDF-n(key, Z) = SP 800-108 CTR KDF with CMAC, r = 16 bits, counter before Z (independent oracle)."""
    ref = KBKDFCMAC(AES, Mode.CounterMode, n, 2, None, CounterLocation.BeforeFixed, None, None, z).derive(key)
    assert P.osgp_kdf(key, z, n) == ref


def test_kdf_gkdf_structure_and_limits() -> None:
    key = bytes(range(16))
    z = b"inputString"
    out = P.osgp_kdf(key, z, 160)  # GKDF-160 as in the RFC 5433 key schedule
    assert out[:16] == P.cmac(key, b"\x00\x01" + z)
    assert out[144:160] == P.cmac(key, b"\x00\x0a" + z)
    assert P.osgp_kdf(key, z, 5) == out[:5]
    for bad in (0, -1, P.KDF_MAX_LENGTH + 1):
        with pytest.raises(ValueError):
            P.osgp_kdf(key, z, bad)


# ---- AE / AD -------------------------------------------------------------------------------

def test_ae_ad_rfc3610_and_tamper() -> None:
    v = json.loads((OSGP / "rfc3610_ccm_packet_vectors.json").read_text())["vectors"][0]
    key, nonce, aad, pt = (bytes.fromhex(v[x]) for x in ("key", "nonce", "aad", "plaintext"))
    ct = P.osgp_ae(key, nonce, aad, pt, v["tag_length"])
    assert ct.hex() == v["ciphertext_and_tag"]
    assert P.osgp_ad(key, nonce, aad, ct, v["tag_length"]) == pt
    k = AesCcm(key, v["tag_length"])
    assert P.osgp_ae(k, nonce, aad, pt) == ct and P.osgp_ad(k, nonce, aad, ct) == pt
    with pytest.raises(InvalidTag):
        P.osgp_ad(key, nonce, aad + b"x", ct, v["tag_length"])


@given(key=st.binary(min_size=16, max_size=16), pt=st.binary(max_size=100), aad=st.binary(max_size=40))
def test_ae_matches_cryptography(key: bytes, pt: bytes, aad: bytes) -> None:
    nonce = bytes(13)
    ct = P.osgp_ae(key, nonce, aad, pt)
    assert ct == AESCCM(key, 8).encrypt(nonce, pt, aad or None)
    assert P.osgp_ad(key, nonce, aad, ct) == pt


# ---- CTR_DRBG ------------------------------------------------------------------------------

def _drbg_doc() -> dict:  # type: ignore[type-arg]
    doc = json.loads((OSGP / "sp800_90a_ctr_drbg_aes128_nodf.json").read_text())
    assert "NIST CAVP" in doc["source"]
    return doc


def test_ctr_drbg_nist_no_reseed_with_personalization() -> None:
    for v in _drbg_doc()["no_reseed"]["vectors"]:
        ent = bytes.fromhex(v["EntropyInput"])
        d = CtrDrbg(bytes.fromhex(v["PersonalizationString"]), entropy=lambda n, e=ent: e)
        states = [(d._key.hex(), f"{d._v:032x}")]
        d.generate(64)
        states.append((d._key.hex(), f"{d._v:032x}"))
        out = d.generate(64)
        states.append((d._key.hex(), f"{d._v:032x}"))
        assert states == list(zip(v["Key"], v["V"])), v["COUNT"]
        assert out.hex() == v["ReturnedBits"]


def test_ctr_drbg_nist_with_reseed() -> None:
    for v in _drbg_doc()["pr_false"]["vectors"]:
        feed = [bytes.fromhex(v["EntropyInput"]), bytes.fromhex(v["EntropyInputReseed"])]
        d = CtrDrbg(entropy=lambda n, feed=feed: feed.pop(0))
        d.reseed()
        d.generate(64)
        assert d.generate(64).hex() == v["ReturnedBits"]
        assert not feed


def test_ctr_drbg_behaviour() -> None:
    seed = bytes(range(32))
    a = CtrDrbg(entropy=lambda n: seed)
    b = CtrDrbg(entropy=lambda n: seed)
    assert a.generate(100) == b.generate(100)  # deterministic with injected entropy
    x = a.generate(32)
    assert x != a.generate(32)
    # additional input changes the output (it is mixed in before and after the request)
    c, d = CtrDrbg(entropy=lambda n: seed), CtrDrbg(entropy=lambda n: seed)
    assert c.generate(16, bytes(32)) != d.generate(16)
    assert len(CtrDrbg()(70000)) == 70000  # os.urandom seeded, split into <= 64 KiB requests
    with pytest.raises(ValueError):
        a.generate(65537)
    with pytest.raises(ValueError):
        CtrDrbg(bytes(33), entropy=lambda n: seed)
    with pytest.raises(ValueError):
        CtrDrbg(entropy=lambda n: bytes(16))
    assert "reseed_counter" in repr(a) and seed.hex() not in repr(a)
    # automatic reseed after reseed_interval requests pulls fresh entropy
    calls = []

    def ent(n: int) -> bytes:
        calls.append(n)
        return bytes([len(calls)]) * n

    e = CtrDrbg(entropy=ent, reseed_interval=2)
    e.generate(8)
    e.generate(8)
    assert len(calls) == 1
    e.generate(8)
    assert len(calls) == 2 and e.reseed_counter == 2


def test_ctr_drbg_nist_prediction_resistance_reseed_with_additional_input() -> None:
    """[AES-128 no df][PredictionResistance = True]: reseed with 256-bit additional input."""
    sec = _drbg_doc()["pr_true"]
    assert "NIST CAVP" in sec["source"] and len(sec["vectors"]) >= 3
    for v in sec["vectors"]:
        feed = [bytes.fromhex(v["EntropyInput"])] + [bytes.fromhex(e) for e in v["EntropyInputPR"]]
        d = CtrDrbg(bytes.fromhex(v["PersonalizationString"]), entropy=lambda n, feed=feed: feed.pop(0))
        out = b""
        for ai in v["AdditionalInput"]:
            d.reseed(bytes.fromhex(ai))
            out = d.generate(64)
        assert out.hex() == v["ReturnedBits"], v["COUNT"]
        assert not feed
