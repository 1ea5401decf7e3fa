"""osgp.ccm vs ``cryptography`` AESCCM: random differential, tamper, batch, limits, fallback selection."""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
import threading
from typing import Protocol

import pytest
from conftest import ROOT, require
from cryptography.exceptions import InvalidTag as CryptoInvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import AuthenticationFailed
from osgp import InvalidTag, _ccm_py, ccm

try:
    from osgp import _ccm as _ccm_c
except ImportError:  # pragma: no cover
    _ccm_c = None

NONCE_LENGTHS = range(7, 14)
TAG_LENGTHS = range(4, 17, 2)


@pytest.fixture(params=["c", "python"])
def impl(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if request.param == "c":
        require(_ccm_c is not None, "built osgp._ccm extension (pip install -e .)")
        return _ccm_c
    return _ccm_py


def _flip(b: bytes, bit: int) -> bytes:
    x = bytearray(b)
    x[bit // 8] ^= 1 << (bit % 8)
    return bytes(x)


@pytest.mark.parametrize("nlen", NONCE_LENGTHS)
@pytest.mark.parametrize("tlen", TAG_LENGTHS)
def test_random_differential(impl, nlen: int, tlen: int) -> None:  # type: ignore[no-untyped-def]
    rnd = random.Random(nlen * 100 + tlen)
    frames_e, frames_d, cts, pts = [], [], [], []
    for _ in range(40):
        key = rnd.randbytes(16)
        nonce = rnd.randbytes(nlen)
        pt = rnd.randbytes(rnd.choice([0, 1, 15, 16, 17, 31, 32, 33, 64, rnd.randint(0, 300)]))
        aad = rnd.randbytes(rnd.choice([0, 1, 14, 15, 16, 17, 30, rnd.randint(0, 300)]))
        ref = AESCCM(key, tlen)
        ct = ref.encrypt(nonce, pt, aad or None)
        k = impl.Key(key, tlen)
        assert k.tag_length == tlen
        assert k.encrypt(nonce, pt, aad) == ct
        assert k.decrypt(nonce, ct, aad) == pt
        assert ref.decrypt(nonce, k.encrypt(nonce, pt, aad), aad or None) == pt
        # tamper: one random bit of ciphertext/tag, AAD and nonce each -> InvalidTag
        with pytest.raises(InvalidTag):
            k.decrypt(nonce, _flip(ct, rnd.randrange(len(ct) * 8)), aad)
        if aad:
            with pytest.raises(InvalidTag):
                k.decrypt(nonce, ct, _flip(aad, rnd.randrange(len(aad) * 8)))
        with pytest.raises(InvalidTag):
            k.decrypt(_flip(nonce, rnd.randrange(nlen * 8)), ct, aad)
        frames_e.append((k, nonce, pt, aad))
        frames_d.append((k, nonce, ct, aad))
        cts.append(ct)
        pts.append(pt)
    assert impl.encrypt_batch(frames_e) == cts
    assert impl.decrypt_batch(frames_d) == pts


def test_tag_bits_all_detected(impl) -> None:  # type: ignore[no-untyped-def]
    k = impl.Key(bytes(range(16)), 16)
    nonce, aad, pt = bytes(13), b"hdr", b"x" * 40
    ct = k.encrypt(nonce, pt, aad)
    for bit in range(len(ct) * 8):
        with pytest.raises(InvalidTag):
            k.decrypt(nonce, _flip(ct, bit), aad)
    frames = [(k, nonce, _flip(ct, bit), aad) for bit in range(len(ct) * 8)]
    assert impl.decrypt_batch(frames) == [None] * len(frames)


def test_invalid_tag_in_error_tree(impl) -> None:  # type: ignore[no-untyped-def]
    k = impl.Key(bytes(16))
    with pytest.raises(AuthenticationFailed) as ei:
        k.decrypt(bytes(13), bytes(20), b"")
    assert type(ei.value) is InvalidTag
    assert impl.InvalidTag is InvalidTag
    with pytest.raises(InvalidTag):  # shorter than the tag
        k.decrypt(bytes(13), bytes(7), b"")


def test_batch_mixed_good_bad_equals_per_call(impl) -> None:  # type: ignore[no-untyped-def]
    rnd = random.Random(7)
    keys = [impl.Key(rnd.randbytes(16), rnd.choice(TAG_LENGTHS)) for _ in range(37)]
    frames, expect = [], []
    for i in range(1500):
        k = keys[i % len(keys)]
        nonce = rnd.randbytes(rnd.choice(NONCE_LENGTHS))
        pt = rnd.randbytes(rnd.choice([0, 5, 16, 64, 100, rnd.randint(0, 600)]))
        aad = rnd.choice([None, b"", rnd.randbytes(16), rnd.randbytes(rnd.randint(0, 40))])
        ct = k.encrypt(nonce, pt, aad)
        r = rnd.random()
        if r < 0.2:
            ct = _flip(ct, rnd.randrange(len(ct) * 8))
        elif r < 0.25:
            ct = ct[: rnd.randrange(k.tag_length)]  # shorter than the tag
        try:
            want: bytes | None = k.decrypt(nonce, ct, aad)
        except InvalidTag:
            want = None
        assert want == (pt if r >= 0.25 else None)
        frames.append((k, nonce, ct, aad))
        expect.append(want)
    assert impl.decrypt_batch(frames) == expect
    assert impl.decrypt_batch([]) == []
    assert impl.encrypt_batch([]) == []


def test_batch_accepts_buffers_and_tuples(impl) -> None:  # type: ignore[no-untyped-def]
    k = impl.Key(bytearray(range(16)))
    nonce, pt, aad = bytes(range(13)), b"payload" * 5, b"aad"
    ct = k.encrypt(nonce, pt, aad)
    frames = ((k, bytearray(nonce), memoryview(ct), bytearray(aad)),)
    assert impl.decrypt_batch(frames) == [pt]
    assert impl.encrypt_batch([(k, memoryview(nonce), bytearray(pt), memoryview(aad))]) == [ct]
    assert k.decrypt(memoryview(nonce), bytearray(ct), memoryview(aad)) == pt
    assert k.encrypt(nonce=nonce, data=pt, associated_data=aad) == ct
    assert k.decrypt(nonce, ct, associated_data=aad) == pt


def test_batch_errors(impl) -> None:  # type: ignore[no-untyped-def]
    k = impl.Key(bytes(16))
    with pytest.raises(TypeError):
        impl.decrypt_batch([(b"not a key", bytes(13), b"x" * 9, None)])
    with pytest.raises(TypeError):
        impl.decrypt_batch([(k, bytes(13), b"x" * 9)])
    with pytest.raises(TypeError):
        impl.encrypt_batch([(k, bytes(13), 12345, None)])
    with pytest.raises(ValueError, match="frame 1"):
        impl.encrypt_batch([(k, bytes(13), b"", None), (k, bytes(6), b"", None)])
    with pytest.raises(ValueError, match="frame 0"):
        impl.decrypt_batch([(k, bytes(14), bytes(20), None)])


def test_key_and_argument_checks(impl) -> None:  # type: ignore[no-untyped-def]
    for bad in (b"", bytes(15), bytes(17), bytes(32)):
        with pytest.raises(ValueError):
            impl.Key(bad)
    for t in (0, 2, 3, 5, 7, 17, 18):
        with pytest.raises(ValueError):
            impl.Key(bytes(16), t)
    with pytest.raises(TypeError):
        impl.Key("sixteen chars!!!")
    k = impl.Key(bytes(16))
    for n in (0, 6, 14, 16):
        with pytest.raises(ValueError):
            k.encrypt(bytes(n), b"", b"")
        with pytest.raises(ValueError):
            k.decrypt(bytes(n), bytes(8), b"")
    with pytest.raises(TypeError):
        k.encrypt(bytes(13), "text", b"")
    with pytest.raises(TypeError):
        k.encrypt(bytes(13))
    for t in (b"", b"abc", bytes(17)):
        with pytest.raises(ValueError):
            k.cmac_verify(b"", t)


def test_repr_has_no_key(impl) -> None:  # type: ignore[no-untyped-def]
    key = bytes.fromhex("00112233445566778899aabbccddeeff")
    r = repr(impl.Key(key))
    assert "00112233" not in r and "tag_length=8" in r


def test_payload_limit_2_pow_8L(impl) -> None:  # type: ignore[no-untyped-def]
    """L = 2 (13-byte nonce): 65535 bytes work, 65536 raise ValueError (cryptography 48 mishandles it)."""
    k = impl.Key(bytes(range(16)))
    nonce13, aad = bytes(13), b"a"
    ok = bytes(65535)
    ct = k.encrypt(nonce13, ok, aad)
    assert ct == AESCCM(bytes(range(16)), 8).encrypt(nonce13, ok, aad)
    assert k.decrypt(nonce13, ct, aad) == ok
    with pytest.raises(ValueError):
        k.encrypt(nonce13, bytes(65536), aad)
    with pytest.raises(ValueError):
        k.decrypt(nonce13, bytes(65536 + 8), aad)
    with pytest.raises(ValueError):
        impl.encrypt_batch([(k, nonce13, bytes(65536), aad)])
    with pytest.raises(ValueError):
        impl.decrypt_batch([(k, nonce13, bytes(65536 + 8), aad)])
    assert impl.decrypt_batch([(k, nonce13, ct, aad)]) == [ok]
    # L = 3 (12-byte nonce) carries 65536 bytes
    ct = k.encrypt(bytes(12), bytes(65536), aad)
    assert ct == AESCCM(bytes(range(16)), 8).encrypt(bytes(12), bytes(65536), aad)


@pytest.mark.parametrize("alen", [0xFEFF, 0xFF00, 0xFF01, 70000])
def test_long_aad_encodings(impl, alen: int) -> None:  # type: ignore[no-untyped-def]
    rnd = random.Random(alen)
    key, nonce, aad, pt = rnd.randbytes(16), rnd.randbytes(12), rnd.randbytes(alen), rnd.randbytes(33)
    ct = AESCCM(key, 10).encrypt(nonce, pt, aad)
    k = impl.Key(key, 10)
    assert k.encrypt(nonce, pt, aad) == ct
    assert k.decrypt(nonce, ct, aad) == pt
    assert impl.decrypt_batch([(k, nonce, ct, aad), (k, nonce, ct, aad[:-1])]) == [pt, None]


def test_large_payload_gil_release_path(impl) -> None:  # type: ignore[no-untyped-def]
    rnd = random.Random(99)
    key, nonce, aad, pt = rnd.randbytes(16), rnd.randbytes(11), rnd.randbytes(20), rnd.randbytes(200_001)
    ct = AESCCM(key, 12).encrypt(nonce, pt, aad)
    k = impl.Key(key, 12)
    assert k.encrypt(nonce, bytearray(pt), aad) == ct
    assert k.decrypt(nonce, memoryview(ct), aad) == pt
    with pytest.raises(InvalidTag):
        k.decrypt(nonce, _flip(ct, 8 * 150_000), aad)


def test_threads_share_keys(impl) -> None:  # type: ignore[no-untyped-def]
    rnd = random.Random(5)
    keys = [impl.Key(rnd.randbytes(16)) for _ in range(8)]
    frames = [(keys[i % 8], rnd.randbytes(13), rnd.randbytes(64), rnd.randbytes(16)) for i in range(400)]
    cts = impl.encrypt_batch(frames)
    dframes = [(k, n, c, a) for (k, n, _p, a), c in zip(frames, cts)]
    pts = [p for _k, _n, p, _a in frames]
    errors: list[str] = []

    def work() -> None:
        for _ in range(20):
            if impl.decrypt_batch(dframes) != pts or impl.encrypt_batch(frames) != cts:
                errors.append("mismatch")

    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_cmac_differential(impl) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.ciphers.algorithms import AES
    from cryptography.hazmat.primitives.cmac import CMAC

    rnd = random.Random(3)
    for n in list(range(50)) + [63, 64, 65, 1000]:
        key, m = rnd.randbytes(16), rnd.randbytes(n)
        c = CMAC(AES(key))
        c.update(m)
        ref = c.finalize()
        k = impl.Key(key)
        assert k.cmac(m) == ref
        assert k.cmac_verify(m, ref) and k.cmac_verify(m, ref[:4])
        assert not k.cmac_verify(m, _flip(ref, rnd.randrange(128)))
        assert not k.cmac_verify(m + b"x", ref[:8])


@given(
    key=st.binary(min_size=16, max_size=16),
    nonce=st.binary(min_size=7, max_size=13),
    pt=st.binary(max_size=200),
    aad=st.binary(max_size=100),
    tlen=st.sampled_from(list(TAG_LENGTHS)),
)
def test_hypothesis_c_equals_cryptography(key: bytes, nonce: bytes, pt: bytes, aad: bytes, tlen: int) -> None:
    ref = AESCCM(key, tlen).encrypt(nonce, pt, aad or None)
    assert ccm.AesCcm(key, tlen).encrypt(nonce, pt, aad) == ref
    assert _ccm_py.Key(key, tlen).decrypt(nonce, ref, aad) == pt


@given(data=st.binary(max_size=120), nonce=st.binary(min_size=13, max_size=13))
def test_hypothesis_random_ciphertext_only_invalid_tag(data: bytes, nonce: bytes) -> None:
    k = ccm.AesCcm(bytes(range(16)))
    try:
        k.decrypt(nonce, data, b"")
    except InvalidTag:
        pass
    else:  # pragma: no cover - a 2^-64 forgery
        with pytest.raises(CryptoInvalidTag):
            AESCCM(bytes(range(16)), 8).decrypt(nonce, data, None)


def _run(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OSGP_PURE_PYTHON"}
    env.update(env_extra)
    code = (
        "from osgp import ccm, primitives\n"
        "k = ccm.AesCcm(bytes(16)); ct = k.encrypt(bytes(13), b'abc', b'h')\n"
        "assert k.decrypt(bytes(13), ct, b'h') == b'abc'\n"
        "assert primitives.cmac(bytes(16), b'').hex() == primitives.cmac(k, b'').hex()\n"
        "print(ccm.IMPLEMENTATION, type(k).__module__, ct.hex())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_fallback_forced_by_env_var() -> None:
    impl, mod, ct = _run({"OSGP_PURE_PYTHON": "1"})
    assert (impl, mod) == ("python", "osgp._ccm_py")
    assert ct == AESCCM(bytes(16), 8).encrypt(bytes(13), b"abc", b"h").hex()


def test_default_selection_prefers_c() -> None:
    require(_ccm_c is not None, "built osgp._ccm extension")
    impl, mod, ct = _run({})
    assert (impl, mod) == ("c", "osgp._ccm")
    assert ct == AESCCM(bytes(16), 8).encrypt(bytes(13), b"abc", b"h").hex()
    assert ccm.IMPLEMENTATION == ("python" if os.environ.get("OSGP_PURE_PYTHON") else "c")


class _KeyApi(Protocol):
    """The API both implementations promise (style.md §b10: keep the fallback honest)."""

    @property
    def tag_length(self) -> int: ...
    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None = None) -> bytes: ...
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None = None) -> bytes: ...
    def cmac(self, data: bytes, /) -> bytes: ...
    def cmac_verify(self, data: bytes, tag: bytes, /) -> bool: ...


def test_both_implementations_share_the_api(impl) -> None:  # type: ignore[no-untyped-def]
    k: _KeyApi = impl.Key(bytes(16), 12)
    for name in ("tag_length", "encrypt", "decrypt", "encrypt_into", "decrypt_into", "cmac", "cmac_verify"):
        assert hasattr(k, name)
    assert {"Key", "InvalidTag", "HAVE_AESNI", "encrypt_batch", "decrypt_batch"} <= set(dir(impl))
    with pytest.raises(TypeError):
        pickle.dumps(k)  # key material never leaves through pickling


def test_length_sweep(impl) -> None:  # type: ignore[no-untyped-def]
    """Every AAD and payload length 0..40 (partial blocks, AAD-head assembly paths), per call and batch."""
    rnd = random.Random(11)
    key = rnd.randbytes(16)
    ref = AESCCM(key, 8)
    k = impl.Key(key)
    frames, cts = [], []
    for alen in range(41):
        for plen in range(0, 41, 3):
            nonce = rnd.randbytes(7 + (alen + plen) % 7)
            aad, pt = rnd.randbytes(alen), rnd.randbytes(plen)
            ct = ref.encrypt(nonce, pt, aad or None)
            assert k.encrypt(nonce, pt, aad) == ct, (alen, plen)
            frames.append((k, nonce, ct, aad))
            cts.append(pt)
    assert impl.decrypt_batch(frames) == cts


def test_misuse_raises_encode_error_with_field(impl) -> None:  # type: ignore[no-untyped-def]
    from dlms14908.errors import EncodeError

    with pytest.raises(EncodeError) as ei:
        impl.Key(bytes(15))
    assert ei.value.field == "key"
    with pytest.raises(EncodeError) as ei:
        impl.Key(bytes(16), 5)
    assert ei.value.field == "tag_length"
    k = impl.Key(bytes(16))
    with pytest.raises(EncodeError) as ei:
        k.encrypt(bytes(6), b"", b"")
    assert ei.value.field == "nonce"
    with pytest.raises(EncodeError) as ei:
        k.encrypt(bytes(13), bytes(65536), b"")
    assert ei.value.field == "data"
    with pytest.raises(EncodeError) as ei:
        impl.decrypt_batch([(k, bytes(13), bytes(9), None), (k, bytes(5), bytes(9), None)])
    assert ei.value.field == "nonce" and "frame 1" in str(ei.value)
    assert "00" * 8 not in str(ei.value)


def test_into_variants_and_zeroing_on_failure(impl) -> None:  # type: ignore[no-untyped-def]
    """decrypt_into writes into the caller's buffer, so "output zeroed on failure" is observable."""
    from dlms14908.errors import EncodeError

    rnd = random.Random(21)
    key, nonce, aad, pt = rnd.randbytes(16), rnd.randbytes(13), rnd.randbytes(16), rnd.randbytes(64)
    ref = AESCCM(key, 8).encrypt(nonce, pt, aad)
    k = impl.Key(key)
    buf = bytearray(len(pt) + 8)
    assert k.encrypt_into(nonce, pt, aad, buf) == len(buf) and bytes(buf) == ref
    out = bytearray(len(pt))
    assert k.decrypt_into(nonce, ref, aad, memoryview(out)) == len(pt) and bytes(out) == pt
    for bit in (0, 8 * 30, 8 * len(pt) + 3, 8 * len(ref) - 1):  # ciphertext and tag bits
        out = bytearray(b"\xaa" * len(pt))
        with pytest.raises(InvalidTag):
            k.decrypt_into(nonce, _flip(ref, bit), aad, out)
        assert out == bytearray(len(pt))  # no unauthenticated plaintext left behind
    out = bytearray(b"\xaa" * len(pt))
    with pytest.raises(InvalidTag):
        k.decrypt_into(nonce, ref, aad + b"!", out)
    assert out == bytearray(len(pt))
    big = rnd.randbytes(40000)  # GIL-released size
    ct = k.encrypt(nonce, big, aad)
    out = bytearray(len(big))
    with pytest.raises(InvalidTag):
        k.decrypt_into(nonce, _flip(ct, 5), aad, out)
    assert not any(out)
    with pytest.raises(EncodeError):
        k.encrypt_into(nonce, pt, aad, bytearray(len(pt) + 7))
    with pytest.raises(EncodeError):
        k.decrypt_into(nonce, ref, aad, bytearray(len(pt) + 1))
    with pytest.raises(TypeError):
        k.decrypt_into(nonce, ref, aad, bytes(len(pt)))  # read-only


_KERNEL_CHECK = """
import random
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from osgp import _ccm
rnd = random.Random(17)
frames, want = [], []
for i in range(700):
    key, tl = rnd.randbytes(16), rnd.choice(range(4, 17, 2))
    nonce = rnd.randbytes(rnd.randint(7, 13))
    pt, aad = rnd.randbytes(rnd.choice([0, 3, 16, 64, rnd.randint(0, 700)])), rnd.randbytes(rnd.randint(0, 40))
    ct = AESCCM(key, tl).encrypt(nonce, pt, aad or None)
    assert _ccm.encrypt_batch([(_ccm.Key(key, tl), nonce, pt, aad)]) == [ct]
    if i % 5 == 0:
        ct = bytes([ct[0] ^ 1]) + ct[1:]
        pt = None
    frames.append((_ccm.Key(key, tl), nonce, ct, aad))
    want.append(pt)
assert _ccm.decrypt_batch(frames) == want
print(_ccm.KERNEL)
"""


@pytest.mark.parametrize("kernel", ["xmm", "default"])
def test_batch_kernels(kernel: str) -> None:
    """Both batch kernels (VAES ymm where the CPU has it, AES-NI xmm) against cryptography."""
    require(_ccm_c is not None, "built osgp._ccm extension")
    env = {k: v for k, v in os.environ.items() if k not in ("OSGP_PURE_PYTHON", "OSGP_CCM_KERNEL")}
    if kernel == "xmm":
        env["OSGP_CCM_KERNEL"] = "xmm"
    out = subprocess.run([sys.executable, "-c", _KERNEL_CHECK], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    got = out.stdout.strip()
    if kernel == "xmm":
        assert got == "aesni-xmm"
    else:
        assert got in ("vaes-ymm", "aesni-xmm")
        if not os.environ.get("OSGP_CCM_KERNEL"):
            assert got == _ccm_c.KERNEL
