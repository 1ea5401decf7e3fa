"""AES-128-GCM known answers on both osgp.ccm GCM implementations (C ``GcmKey`` and the
``cryptography`` fallback): NIST CAVP ``gcmEncryptExtIV128.rsp`` / ``gcmDecrypt128.rsp``
(96-bit IV, every tag length, FAIL cases) and the DLMS suite-0 vectors of
``vectors/xdlms`` through :mod:`dlms14908.xdlms.ciphering` (hot paths and general paths)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, VECTORS, require

from dlms14908.errors import AuthenticationFailed, DecodeError
from dlms14908.xdlms import ciphering
from dlms14908.xdlms.ciphering import (
    CipheringContext,
    InvocationCounterCheck,
    SecurityKeys,
    SecurityStats,
    decipher,
    protect,
)
from osgp import InvalidTag, _ccm_py, ccm

try:
    from osgp import _ccm as _ccm_c
except ImportError:  # pragma: no cover - only where the extension is not built
    _ccm_c = None

cryptography_vectors = pytest.importorskip("cryptography_vectors")
GCM_DIR = Path(os.path.dirname(cryptography_vectors.__file__)) / "ciphers" / "AES" / "GCM"
H = bytes.fromhex
C_GCM = getattr(_ccm_c, "GcmKey", None)


@pytest.fixture(params=["c", "python"])
def gcm(request: pytest.FixtureRequest) -> Any:
    if request.param == "c":
        require(C_GCM is not None, "osgp._ccm.GcmKey (built extension on a CPU with PCLMULQDQ)")
        return C_GCM
    return _ccm_py.GcmKey


def test_c_gcm_built_under_ci() -> None:
    if IN_CI:
        assert C_GCM is not None, "osgp._ccm.GcmKey must be available in CI"
    else:
        require(C_GCM is not None, "osgp._ccm.GcmKey")
    assert _ccm_c is not None and _ccm_c.HAVE_PCLMULQDQ is True
    assert ccm.GCM_IMPLEMENTATION == ("python" if os.environ.get("OSGP_PURE_PYTHON", "") not in ("", "0") else "c")


@functools.cache
def parse_gcm_rsp(name: str) -> tuple[dict[str, Any], ...]:
    """CAVP GCM .rsp: ``[Keylen/IVlen/PTlen/AADlen/Taglen = n]`` section headers, then cases
    (``Count``, ``Key``, ``IV``, ``PT``, ``AAD``, ``CT``, ``Tag``; decrypt files mark a
    failing case with a bare ``FAIL`` line instead of ``PT``)."""
    cases: list[dict[str, Any]] = []
    section: dict[str, int] = {}
    cur: dict[str, Any] | None = None
    for raw in (GCM_DIR / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            k, v = (x.strip() for x in line.strip("[]").split("="))
            section[k] = int(v)
            continue
        if line == "FAIL":
            assert cur is not None
            cur["fail"] = True
            continue
        k, _, v = (x.strip() for x in line.partition("="))
        if k == "Count":
            cur = dict(section, fail=False)
            cases.append(cur)
        else:
            assert cur is not None
            cur[k] = bytes.fromhex(v)
    return tuple(cases)


def _iv96(name: str) -> list[dict[str, Any]]:
    return [c for c in parse_gcm_rsp(name) if c["IVlen"] == 96 and c["Keylen"] == 128]


TAG_BITS = (32, 64, 96, 104, 112, 120, 128)


def test_cavp_files_parse_completely() -> None:
    for name in ("gcmEncryptExtIV128.rsp", "gcmDecrypt128.rsp"):
        cases = _iv96(name)
        assert len(cases) == 2625  # 7 tag lengths x 375
        assert {c["Taglen"] for c in cases} == set(TAG_BITS)
        for c in cases:
            assert len(c["Key"]) == 16 and len(c["IV"]) == 12
            assert len(c["Tag"]) * 8 == c["Taglen"]
            assert len(c["CT"]) * 8 == c["PTlen"] and len(c["AAD"]) * 8 == c["AADlen"]


def test_nist_cavp_encrypt(gcm: Any) -> None:
    cases = _iv96("gcmEncryptExtIV128.rsp")
    assert any(c["PTlen"] % 128 for c in cases) and any(c["AADlen"] % 128 for c in cases)
    for c in cases:
        k = gcm(c["Key"], c["Taglen"] // 8)
        assert k.tag_length == c["Taglen"] // 8
        out = k.encrypt(c["IV"], c["PT"], c["AAD"])
        assert out == c["CT"] + c["Tag"], c
        assert k.decrypt(c["IV"], out, c["AAD"]) == c["PT"]


def test_nist_cavp_decrypt_with_fail_cases(gcm: Any) -> None:
    cases = _iv96("gcmDecrypt128.rsp")
    fails = 0
    for c in cases:
        k = gcm(c["Key"], c["Taglen"] // 8)
        data = c["CT"] + c["Tag"]
        if c["fail"]:
            fails += 1
            with pytest.raises(InvalidTag):
                k.decrypt(c["IV"], data, c["AAD"])
        else:
            assert k.decrypt(c["IV"], data, c["AAD"]) == c["PT"], c
    assert 0 < fails < len(cases)
    assert {c["Taglen"] for c in cases if c["fail"]} == set(TAG_BITS)


def test_sp800_38d_test_case_4() -> None:
    """McGrew & Viega's GCM test case 4 (60-byte plaintext, 20-byte AAD), on whichever
    implementation osgp.ccm selected."""
    k = ccm.AesGcm(H("feffe9928665731c6d6a8f9467308308"))
    pt = H("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
           "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
    aad = H("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    ct = H("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
           "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091")
    tag = H("5bc94fbc3221a5db94fae95ae7121a47")
    assert k.encrypt(H("cafebabefacedbaddecaf888"), pt, aad) == ct + tag
    assert k.decrypt(H("cafebabefacedbaddecaf888"), ct + tag, aad) == pt


# --- DLMS security suite 0 (Green Book and cross-checked vectors) --------------------------

GB = json.loads((VECTORS / "xdlms" / "security_gcm.json").read_text())
GEN = json.loads((VECTORS / "xdlms" / "security_generated.json").read_text())
ALL = [(v, GB["keys"]) for v in GB["vectors"]] + [(v, v["keys"]) for v in GEN["vectors"]]
IDS = [v["id"] for v, _ in ALL]


@pytest.fixture
def suite0_gcm(gcm: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """ciphering.py's GCM class swapped for the implementation under test (the keys made
    inside the test cache objects of that class)."""
    monkeypatch.setattr(ciphering, "AesGcm", gcm)
    return gcm


def _keys(k: dict[str, str]) -> SecurityKeys:
    return SecurityKeys(H(k["ek"]), H(k["ak"]), bk=H(k["bk"]) if "bk" in k else None,
                        dk=H(k["dk"]) if "dk" in k else None)


@pytest.mark.parametrize("entry,keys", ALL, ids=IDS)
def test_suite0_general_paths(suite0_gcm: Any, entry: dict[str, Any], keys: dict[str, str]) -> None:
    sk = _keys(keys)
    st, ic, sc = H(entry["system_title"]), int(entry["invocation_counter"], 16), int(entry["security_control"], 16)
    out = protect(H(entry["plaintext"]), keys=sk, system_title=st, invocation_counter=ic,
                  security_control=sc, kind=entry["kind"])
    assert out.hex().upper() == entry["ciphered"]
    stats = SecurityStats()
    d = decipher(H(entry["ciphered"]), sk, system_title=st, require=0, counter=InvocationCounterCheck(), stats=stats)
    assert d.plaintext == H(entry["plaintext"]) and stats.accepted == 1
    # the GCM objects ciphering.py made are of the implementation under test
    made = [g for g in (sk._gcm_ek, *(sk._gcm or {}).values()) if g is not None]
    assert made and all(type(g) is suite0_gcm and g.tag_length == 12 for g in made)
    if sc & 0x10:  # any flipped bit of the tag fails, counted as an authentication failure
        bad = bytearray(H(entry["ciphered"]))
        bad[-1] ^= 0x01
        stats = SecurityStats()
        with pytest.raises(AuthenticationFailed):
            decipher(bytes(bad), sk, system_title=st, require=0, stats=stats)
        assert stats.authentication_failures == 1 and stats.accepted == 0


HOT = [v for v in GB["vectors"] if v["kind"] == "glo" and v["security_control"] == "30"]


def _no_general(*_a: object, **_k: object) -> None:
    raise AssertionError("the general path was taken")


@pytest.mark.parametrize("entry", HOT, ids=[v["id"] for v in HOT])
def test_suite0_context_hot_paths(suite0_gcm: Any, entry: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """glo-ciphering with SC 0x30: CipheringContext.protect/unprotect serve the Green Book
    vectors without the general protect()/decipher() (one GCM call each)."""
    keys = _keys(GB["keys"])
    st, ic = H(entry["system_title"]), int(entry["invocation_counter"], 16)
    sender = CipheringContext(keys, own_system_title=st, invocation_counter=ic)
    receiver = CipheringContext(keys, own_system_title=H("4D4D4D0000000001"), peer_system_title=st)
    monkeypatch.setattr(ciphering, "protect", _no_general)
    monkeypatch.setattr(ciphering, "decipher", _no_general)
    assert sender.protect(H(entry["plaintext"])).hex().upper() == entry["ciphered"]
    assert sender.next_invocation_counter == ic + 1
    assert receiver.unprotect(H(entry["ciphered"])) == H(entry["plaintext"])
    assert receiver.receive.last_seen == ic and receiver.stats.accepted == 1
    assert type(keys._gcm_ek) is suite0_gcm


@pytest.mark.parametrize("where", ["ciphertext", "tag", "ic"])
def test_suite0_hot_path_failure_goes_to_decipher(suite0_gcm: Any, where: str) -> None:
    """A tampered APDU leaves the hot path: decipher() raises and counts it, and the
    receive state (last IC, accepted) is unchanged."""
    v2 = HOT[0]
    keys = _keys(GB["keys"])
    st = H(v2["system_title"])
    receiver = CipheringContext(keys, own_system_title=H("4D4D4D0000000001"), peer_system_title=st,
                                peer_last_invocation_counter=5)
    bad = bytearray(H(v2["ciphered"]))
    bad[{"ciphertext": 8, "tag": -3, "ic": 6}[where]] ^= 0x40
    with pytest.raises(AuthenticationFailed):
        receiver.unprotect(bytes(bad))
    assert receiver.stats.authentication_failures == 1 and receiver.stats.accepted == 0
    assert receiver.receive.last_seen == 5
    assert receiver.unprotect(H(v2["ciphered"])) == H(v2["plaintext"])


def test_suite0_hot_path_inner_tag_mismatch_is_decode_error(suite0_gcm: Any) -> None:
    """An APDU that verifies but whose inner tag does not match the glo tag: DecodeError
    from decipher(), not accepted."""
    keys = _keys(GB["keys"])
    st = H("4D4D4D0000BC614E")
    sender = CipheringContext(keys, own_system_title=st, invocation_counter=9)
    receiver = CipheringContext(keys, own_system_title=H("4D4D4D0000000001"), peer_system_title=st)
    good = sender.protect(H("C0010000080000010000FF0200"))  # glo-get-request 0xC8
    # same key stream and tag, but claim glo-set-request (0xC9): the tag still verifies
    # (the outer tag is not authenticated in suite 0) and the inner tag then mismatches
    forged = bytes((0xC9,)) + good[1:]
    with pytest.raises(DecodeError):
        receiver.unprotect(forged)
    assert receiver.stats.malformed == 1 and receiver.stats.accepted == 0
    assert receiver.receive.last_seen is None
