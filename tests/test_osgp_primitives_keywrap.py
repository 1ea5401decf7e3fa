"""RFC 3394 AES key wrap of 16-byte keys (UpdateDomainKeys, reference osgp-62056-8-8.md §2.6):
osgp.keys.wrap_key / unwrap_key against RFC 3394 §4.1, the NIST CAVP SP 800-38F KW-AE/KW-AD
AES-128 files (128-bit plaintexts, incl. the FAIL cases) and an independent implementation of
the RFC 3394 §2.2.1 index-based wrap written here on AES-ECB."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import VECTORS
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import ECB
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import AuthenticationFailed
from osgp.keys import unwrap_key, wrap_key

cryptography_vectors = pytest.importorskip("cryptography_vectors")
DOC = json.loads((VECTORS / "osgp" / "rfc3394_keywrap.json").read_text())
KW_DIR = Path(os.path.dirname(cryptography_vectors.__file__)) / DOC["cavp"]["package_path"]


def _rfc3394_wrap(kek: bytes, key: bytes) -> bytes:
    """RFC 3394 §2.2.1, index-based form, written from the RFC."""
    enc = Cipher(AES(kek), ECB()).encryptor()
    a = bytes.fromhex("a6a6a6a6a6a6a6a6")
    r = [key[i : i + 8] for i in range(0, len(key), 8)]
    n = len(r)
    for j in range(6):
        for i in range(n):
            b = enc.update(a + r[i])
            t = n * j + i + 1
            a = (int.from_bytes(b[:8], "big") ^ t).to_bytes(8, "big")
            r[i] = b[8:]
    return a + b"".join(r)


def _cavp(name: str) -> list[dict[str, str]]:
    cases, cur, in_sec = [], None, False
    for raw in (KW_DIR / name).read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            in_sec = line == DOC["cavp"]["section"]
            continue
        if not in_sec or not line or line.startswith("#"):
            continue
        if line.startswith("COUNT"):
            cur = {"count": line.split("=")[1].strip()}
            cases.append(cur)
        elif line == "FAIL":
            assert cur is not None
            cur["fail"] = "1"
        else:
            k, _, v = (x.strip() for x in line.partition("="))
            assert cur is not None
            cur[k] = v
    return cases


def test_rfc3394_section_4_1() -> None:
    for v in DOC["rfc3394"]:
        kek, key, wrapped = (bytes.fromhex(v[x]) for x in ("kek", "key", "wrapped"))
        assert _rfc3394_wrap(kek, key) == wrapped  # the test's own implementation is right
        assert wrap_key(kek, key) == wrapped
        assert unwrap_key(kek, wrapped) == key


def test_cavp_kw_ae_and_ad_128() -> None:
    ae, ad = _cavp("KW_AE_128.txt"), _cavp("KW_AD_128.txt")
    assert len(ae) >= 100 and len(ad) >= 100
    s = DOC["cavp"]["sample"]
    assert {"count": str(s["count"]), "K": s["kek"], "P": s["key"], "C": s["wrapped"]} == ae[0]
    for c in ae:
        assert wrap_key(bytes.fromhex(c["K"]), bytes.fromhex(c["P"])).hex() == c["C"]
    fails = 0
    for c in ad:
        if "fail" in c:
            fails += 1
            with pytest.raises(AuthenticationFailed):
                unwrap_key(bytes.fromhex(c["K"]), bytes.fromhex(c["C"]))
        else:
            assert unwrap_key(bytes.fromhex(c["K"]), bytes.fromhex(c["C"])).hex() == c["P"]
    assert fails > 10


@given(kek=st.binary(min_size=16, max_size=16), key=st.binary(min_size=16, max_size=16), bit=st.integers(0, 191))
def test_wrap_matches_independent_and_any_flip_fails(kek: bytes, key: bytes, bit: int) -> None:
    w = wrap_key(kek, key)
    assert w == _rfc3394_wrap(kek, key)
    bad = bytearray(w)
    bad[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(AuthenticationFailed) as ei:
        unwrap_key(kek, bytes(bad))
    assert key.hex() not in str(ei.value) and kek.hex() not in str(ei.value)
    with pytest.raises(AuthenticationFailed):
        unwrap_key(kek, w[:-1])
