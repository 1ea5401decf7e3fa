"""osgp.ccm GCM (C ``GcmKey`` and the fallback) vs ``cryptography`` AESGCM: hypothesis
differential, tampering, argument errors, buffers, GIL-released inputs, and the selection
of the implementation under the environment switches."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
from typing import Any

import pytest
from conftest import ROOT, require
from cryptography.exceptions import InvalidTag as CryptoInvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import AuthenticationFailed, EncodeError
from osgp import InvalidTag, _ccm_py, ccm

try:
    from osgp import _ccm as _ccm_c
except ImportError:  # pragma: no cover
    _ccm_c = None

C_GCM = getattr(_ccm_c, "GcmKey", None)
TAG_LENGTHS = (4, 8, 12, 13, 14, 15, 16)


@pytest.fixture(params=["c", "python"])
def gcm(request: pytest.FixtureRequest) -> Any:
    if request.param == "c":
        require(C_GCM is not None, "osgp._ccm.GcmKey (built extension on a CPU with PCLMULQDQ)")
        return C_GCM
    return _ccm_py.GcmKey


def _flip(b: bytes, bit: int) -> bytes:
    x = bytearray(b)
    x[bit // 8] ^= 1 << (bit % 8)
    return bytes(x)


def _verify_truncated(key: bytes, iv: bytes, ct: bytes, tag: bytes, aad: bytes) -> bytes:
    """cryptography's own check of a truncated tag (the GCM Cipher with min_tag_length)."""
    dec = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=len(tag))).decryptor()
    dec.authenticate_additional_data(aad)
    return dec.update(ct) + dec.finalize()


@given(
    key=st.binary(min_size=16, max_size=16),
    iv=st.binary(min_size=12, max_size=12),
    data=st.binary(max_size=300),
    aad=st.binary(max_size=64),
    tag_length=st.sampled_from(TAG_LENGTHS),
    flip=st.integers(min_value=0),
)
def test_differential_vs_cryptography(key: bytes, iv: bytes, data: bytes, aad: bytes, tag_length: int,
                                      flip: int) -> None:
    ref = AESGCM(key).encrypt(iv, data, aad)
    n = len(data)
    impls = [_ccm_py.GcmKey] + ([C_GCM] if C_GCM is not None else [])
    for cls in impls:
        k = cls(key, tag_length)
        out = k.encrypt(iv, data, aad)
        assert out == ref[: n + tag_length]
        assert k.decrypt(iv, out, aad) == data
        if tag_length == 16:
            assert AESGCM(key).decrypt(iv, out, aad) == data
        else:
            assert _verify_truncated(key, iv, out[:n], out[n:], aad) == data
        with pytest.raises(InvalidTag):  # any one flipped bit of C || T
            k.decrypt(iv, _flip(out, flip % (len(out) * 8)), aad)
        with pytest.raises(InvalidTag):
            k.decrypt(_flip(iv, flip % 96), out, aad)
        if aad:
            with pytest.raises(InvalidTag):
                k.decrypt(iv, out, _flip(aad, flip % (len(aad) * 8)))
        with pytest.raises(InvalidTag):  # AAD moved into the data, or an extra AAD byte
            k.decrypt(iv, out, aad + b"\x00")


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 79, 80, 127, 128, 129, 1000])
@pytest.mark.parametrize("a", [0, 1, 15, 16, 17, 63, 64, 65, 200])
def test_block_boundaries(gcm: Any, n: int, a: int) -> None:
    """Every split of the 4-block/2-block/1-block/partial paths of CTR and GHASH."""
    key, iv = bytes(range(16)), bytes(range(100, 112))
    data, aad = bytes((i * 7) & 0xFF for i in range(n)), bytes((i * 13) & 0xFF for i in range(a))
    ref = AESGCM(key).encrypt(iv, data, aad)
    assert gcm(key).encrypt(iv, data, aad) == ref
    assert gcm(key).decrypt(iv, ref, aad) == data
    assert gcm(key, 12).encrypt(iv, data, aad) == ref[: n + 12]


def test_every_tag_bit_and_truncation_detected(gcm: Any) -> None:
    key, iv = bytes(range(16)), bytes(12)
    for tl in TAG_LENGTHS:
        k = gcm(key, tl)
        out = k.encrypt(iv, b"suite 0 APDU", b"\x30" + bytes(16))
        assert len(out) == 12 + tl
        for bit in range(len(out) * 8):
            with pytest.raises(InvalidTag):
                k.decrypt(iv, _flip(out, bit), b"\x30" + bytes(16))
        with pytest.raises(InvalidTag):  # one byte cut off the tag
            k.decrypt(iv, out[:-1], b"\x30" + bytes(16))


def test_short_input_and_errors(gcm: Any) -> None:
    k = gcm(bytes(16), 12)
    iv = bytes(12)
    for n in range(12):  # shorter than the tag
        with pytest.raises(InvalidTag) as ei:
            k.decrypt(iv, bytes(n), None)
        assert isinstance(ei.value, AuthenticationFailed)
    assert k.decrypt(iv, k.encrypt(iv, b"", None), None) == b""
    for bad in (0, 1, 8, 11, 13, 16, 64):
        for call in (k.encrypt, k.decrypt):
            with pytest.raises(EncodeError) as ee:
                call(bytes(bad), bytes(20), None)
            assert ee.value.field == "nonce"
            assert isinstance(ee.value, ValueError)
    for bad_len in (0, 15, 17, 24, 32):  # AES-128 only
        with pytest.raises(EncodeError) as ee:
            gcm(bytes(bad_len))
        assert ee.value.field == "key"
    for tl in (-1, 0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 17, 32, 2**70):
        with pytest.raises(EncodeError) as ee:
            gcm(bytes(16), tl)
        assert ee.value.field == "tag_length"
    with pytest.raises(EncodeError):
        gcm(bytes(16), "12")
    with pytest.raises(TypeError):
        gcm("0123456789abcdef")
    for args in (("x" * 12, b"", None), (iv, "data", None), (iv, b"", "aad"), (iv, 5, None)):
        with pytest.raises(TypeError):
            k.encrypt(*args)
        with pytest.raises(TypeError):
            k.decrypt(*args)
    with pytest.raises(TypeError):
        k.encrypt(iv)  # data missing


def test_buffers_keywords_defaults(gcm: Any) -> None:
    key, iv, aad, data = os.urandom(16), os.urandom(12), os.urandom(20), os.urandom(50)
    ref = AESGCM(key).encrypt(iv, data, aad)
    k = gcm(bytearray(key))
    assert k.tag_length == 16
    assert k.encrypt(memoryview(iv), bytearray(data), memoryview(aad)) == ref
    assert k.decrypt(bytearray(iv), memoryview(ref), bytearray(aad)) == data
    assert k.encrypt(nonce=iv, data=data, associated_data=aad) == ref
    assert k.decrypt(iv, data=ref, associated_data=aad) == data
    no_aad = AESGCM(key).encrypt(iv, data, None)
    assert k.encrypt(iv, data) == k.encrypt(iv, data, None) == k.encrypt(iv, data, b"") == no_aad
    assert k.decrypt(iv, no_aad) == data


def test_key_never_shown_and_not_picklable(gcm: Any) -> None:
    key = bytes.fromhex("00112233445566778899aabbccddeeff")
    k = gcm(key, 12)
    r = repr(k)
    assert "GcmKey" in r and "12" in r
    for form in (key.hex(), key.hex().upper(), repr(key), str(list(key))):
        assert form not in r
    with pytest.raises(TypeError):
        pickle.dumps(k)
    with pytest.raises(EncodeError) as ee:
        gcm(key + b"\x00")
    assert key.hex() not in str(ee.value) and repr(key) not in str(ee.value)


def test_large_inputs_release_the_gil(gcm: Any) -> None:
    """Inputs >= 16 KiB run with the GIL released in C: several threads at once still
    give cryptography's answers."""
    key = os.urandom(16)
    jobs = [(os.urandom(12), os.urandom(40_000 + 17 * i), os.urandom(i * 5)) for i in range(6)]
    refs = [AESGCM(key).encrypt(*j) for j in jobs]
    k = gcm(key)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                assert k.encrypt(*jobs[i]) == refs[i]
                assert k.decrypt(jobs[i][0], refs[i], jobs[i][2]) == jobs[i][1]
                with pytest.raises(InvalidTag):
                    k.decrypt(jobs[i][0], _flip(refs[i], 7), jobs[i][2])
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_fallback_matches_c_error_types() -> None:
    """The same misuse gives the same exception class and field in both implementations."""
    require(C_GCM is not None, "osgp._ccm.GcmKey")
    cases: list[tuple[tuple[object, ...], tuple[object, ...]]] = [
        ((bytes(16), 12), (bytes(11), b"", None)),
        ((bytes(16), 12), (bytes(12), bytes(3), None)),
        ((bytes(16), 12), (bytes(12), "s", None)),
        ((bytes(16), 12), (bytes(12), bytes(40), bytes(3))),
    ]
    for ctor, args in cases:
        outcomes = []
        for cls in (C_GCM, _ccm_py.GcmKey):
            try:
                cls(*ctor).decrypt(*args)
                outcomes.append(None)
            except Exception as e:  # noqa: BLE001 - compared below
                outcomes.append((type(e), getattr(e, "field", None)))
        assert outcomes[0] == outcomes[1], (args, outcomes)


def test_invalid_tag_is_not_cryptographys() -> None:
    k = ccm.AesGcm(bytes(16), 12)
    with pytest.raises(InvalidTag) as ei:
        k.decrypt(bytes(12), bytes(30), None)
    assert not isinstance(ei.value, CryptoInvalidTag)


_PROBE = """
import json, os
import osgp.ccm as c
from dlms14908.xdlms.ciphering import CipheringContext, SecurityKeys
try:
    from osgp import _ccm
    c_gcm = hasattr(_ccm, "GcmKey")
    pcl = _ccm.HAVE_PCLMULQDQ
except ImportError:
    c_gcm, pcl = False, None
v = json.load(open(os.path.join("vectors", "xdlms", "security_gcm.json")))
keys = SecurityKeys(bytes.fromhex(v["keys"]["ek"]), bytes.fromhex(v["keys"]["ak"]))
e = v["vectors"][0]
st = bytes.fromhex(e["system_title"])
tx = CipheringContext(keys, own_system_title=st, invocation_counter=int(e["invocation_counter"], 16))
rx = CipheringContext(keys, own_system_title=bytes(8), peer_system_title=st)
ok = tx.protect(bytes.fromhex(e["plaintext"])).hex().upper() == e["ciphered"]
ok = ok and rx.unprotect(bytes.fromhex(e["ciphered"])) == bytes.fromhex(e["plaintext"])
print(json.dumps([c.IMPLEMENTATION, c.GCM_IMPLEMENTATION, c_gcm, pcl, type(keys._gcm_ek).__module__, ok]))
"""


@pytest.mark.parametrize(
    "env,expect",
    [
        ({}, ["c", "c", True, True, "osgp._ccm", True]),
        ({"OSGP_CCM_ASSUME_NO_PCLMULQDQ": "1"}, ["c", "python", False, False, "osgp._ccm_py", True]),
        ({"OSGP_CCM_ASSUME_NO_PCLMULQDQ": "0"}, ["c", "c", True, True, "osgp._ccm", True]),
        ({"OSGP_CCM_ASSUME_NO_AESNI": "1"}, ["python", "python", False, None, "osgp._ccm_py", True]),
        ({"OSGP_PURE_PYTHON": "1"}, ["python", "python", True, True, "osgp._ccm_py", True]),
    ],
    ids=["default", "no-pclmul", "no-pclmul=0", "no-aesni", "pure"],
)
def test_selection_under_env_switches(env: dict[str, str], expect: list[object]) -> None:
    require(C_GCM is not None, "osgp._ccm.GcmKey")
    base = {k: v for k, v in os.environ.items()
            if k not in ("OSGP_PURE_PYTHON", "OSGP_CCM_ASSUME_NO_AESNI", "OSGP_CCM_ASSUME_NO_PCLMULQDQ")}
    r = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env={**base, **env}, capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == expect
