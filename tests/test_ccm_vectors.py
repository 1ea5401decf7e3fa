"""AES-128-CCM known answers (NIST CAVP, RFC 3610, SP 800-38C) on both osgp.ccm implementations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import IN_CI, VECTORS, require

from osgp import InvalidTag, _ccm_py

try:
    from osgp import _ccm as _ccm_c
except ImportError:  # pragma: no cover - only where the extension is not built
    _ccm_c = None

cryptography_vectors = pytest.importorskip("cryptography_vectors")
CV_BASE = Path(os.path.dirname(cryptography_vectors.__file__))
OSGP = VECTORS / "osgp"


@pytest.fixture(params=["c", "python"])
def impl(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if request.param == "c":
        require(_ccm_c is not None, "built osgp._ccm extension (pip install -e .)")
        return _ccm_c
    return _ccm_py


def test_c_extension_built_under_ci() -> None:
    if IN_CI:
        assert _ccm_c is not None, "osgp._ccm must be built in CI"
    else:
        require(_ccm_c is not None, "built osgp._ccm extension")
    assert _ccm_c.HAVE_AESNI is True


def parse_rsp(name: str) -> list[dict[str, object]]:
    """Parse a CAVP CCM .rsp file: global/section length headers, then cases."""
    cases: list[dict[str, object]] = []
    state: dict[str, object] = {}
    cur: dict[str, object] | None = None
    prev = ""
    for raw in (CV_BASE / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            for part in line.strip("[]").split(","):
                k, v = (x.strip() for x in part.split("="))
                state[k] = int(v)
            continue
        k, _, v = (x.strip() for x in line.partition("="))
        if k in ("Plen", "Nlen", "Tlen", "Alen"):
            state[k] = int(v)
        elif k in ("Key", "Nonce") and prev != "Count":
            state[k] = v  # shared by the cases that follow
            cur = None
        elif k == "Count":
            cur = dict(state)
            cases.append(cur)
        elif cur is not None:
            cur[k] = v  # includes a per-case Nonce right after Count
        prev = k
    return cases


def _case(c: dict[str, object]) -> tuple[bytes, bytes, bytes, bytes, bytes, int]:
    key = bytes.fromhex(str(c["Key"]))
    nonce = bytes.fromhex(str(c["Nonce"]))
    aad = b"" if c["Alen"] == 0 else bytes.fromhex(str(c["Adata"]))
    pt = b"" if c["Plen"] == 0 else bytes.fromhex(str(c.get("Payload", "")))
    ct = bytes.fromhex(str(c["CT"]))
    return key, nonce, aad, pt, ct, int(c["Tlen"])  # type: ignore[call-overload]


ENC_FILES = ["VADT128.rsp", "VNT128.rsp", "VPT128.rsp", "VTT128.rsp"]


def test_index_matches_package() -> None:
    idx = json.loads((OSGP / "nist_cavp_ccm_aes128_index.json").read_text())
    assert idx["source"].startswith("NIST CAVP")
    for f in idx["files"]:
        assert len(parse_rsp(f["package_path"])) == f["cases"]
    s = idx["sample"]
    k = _ccm_py.Key(bytes.fromhex(s["Key"]), s["Tlen"])
    assert k.encrypt(bytes.fromhex(s["Nonce"]), bytes.fromhex(s["Payload"]), None).hex() == s["CT"]


@pytest.mark.parametrize("fname", ENC_FILES)
def test_nist_cavp_encrypt_decrypt(impl, fname: str) -> None:  # type: ignore[no-untyped-def]
    cases = parse_rsp("ciphers/AES/CCM/" + fname)
    assert len(cases) >= 70
    frames_e, frames_d, expect_ct, expect_pt = [], [], [], []
    for c in cases:
        key, nonce, aad, pt, ct, tlen = _case(c)
        k = impl.Key(key, tlen)
        assert k.encrypt(nonce, pt, aad) == ct
        assert k.decrypt(nonce, ct, aad) == pt
        frames_e.append((k, nonce, pt, aad))
        frames_d.append((k, nonce, ct, aad))
        expect_ct.append(ct)
        expect_pt.append(pt)
    assert impl.encrypt_batch(frames_e) == expect_ct
    assert impl.decrypt_batch(frames_d) == expect_pt


def test_nist_cavp_dvpt(impl) -> None:  # type: ignore[no-untyped-def]
    cases = parse_rsp("ciphers/AES/CCM/DVPT128.rsp")
    assert len(cases) == 240
    frames, expect = [], []
    n_fail = 0
    for c in cases:
        key, nonce, aad, pt, ct, tlen = _case(c)
        k = impl.Key(key, tlen)
        if c["Result"].startswith("Pass"):  # type: ignore[union-attr]
            assert k.decrypt(nonce, ct, aad) == pt
            expect.append(pt)
        else:
            n_fail += 1
            with pytest.raises(InvalidTag):
                k.decrypt(nonce, ct, aad)
            expect.append(None)
        frames.append((k, nonce, ct, aad))
    assert n_fail > 0
    assert impl.decrypt_batch(frames) == expect


def test_rfc3610_packet_vectors(impl) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((OSGP / "rfc3610_ccm_packet_vectors.json").read_text())
    assert "RFC 3610" in doc["source"]
    assert len(doc["vectors"]) == 24
    for v in doc["vectors"]:
        k = impl.Key(bytes.fromhex(v["key"]), v["tag_length"])
        nonce, aad, pt = (bytes.fromhex(v[x]) for x in ("nonce", "aad", "plaintext"))
        ct = bytes.fromhex(v["ciphertext_and_tag"])
        assert k.encrypt(nonce, pt, aad) == ct, v["name"]
        assert k.decrypt(nonce, ct, aad) == pt, v["name"]


def test_sp800_38c_examples(impl) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((OSGP / "sp800_38c_examples.json").read_text())
    assert "800-38C" in doc["source"]
    assert len(doc["vectors"]) == 4
    for v in doc["vectors"]:
        aad = bytes(range(256)) * 256 if "aad_pattern" in v else bytes.fromhex(v["aad"])
        k = impl.Key(bytes.fromhex(v["key"]), v["tag_length"])
        nonce, pt = bytes.fromhex(v["nonce"]), bytes.fromhex(v["plaintext"])
        ct = bytes.fromhex(v["ciphertext_and_tag"])
        assert k.encrypt(nonce, pt, aad) == ct, v["name"]
        assert k.decrypt(nonce, ct, aad) == pt, v["name"]
        assert impl.decrypt_batch([(k, nonce, ct, aad)]) == [pt]
