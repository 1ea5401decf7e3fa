"""Audit of the GCM part of osgp._ccm: a hypothesis fuzz of every argument length (only
ValueError naming the field / TypeError / InvalidTag / cryptography's answer, the C module
and the fallback alike), the GIL really released for large inputs (measured against a
GIL-holding control), and the SP 800-38D plaintext limit (2^39 - 256 bits) refused before
anything is read, through a sparse memory-mapped file."""

from __future__ import annotations

import gc
import mmap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import max_pause, require
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from osgp import InvalidTag, _ccm_py

try:
    from osgp import _ccm as _ccm_c
except ImportError:  # pragma: no cover
    _ccm_c = None

C_GCM = getattr(_ccm_c, "GcmKey", None)
KEY = bytes(range(16))
MAX_TEXT = (1 << 36) - 32  # bytes


def _need_c() -> None:
    require(C_GCM is not None, "osgp._ccm.GcmKey (built extension on a CPU with PCLMULQDQ)")


@pytest.fixture(params=["c", "python"])
def gcm(request: pytest.FixtureRequest) -> Any:
    if request.param == "c":
        _need_c()
        return C_GCM
    return _ccm_py.GcmKey


def _outcome(fn: Callable[..., object], *args: object) -> tuple[str, object]:
    try:
        return "ok", fn(*args)
    except InvalidTag:
        return "InvalidTag", None
    except ValueError as e:  # EncodeError is a ValueError
        return "ValueError", getattr(e, "field", None)
    except TypeError:
        return "TypeError", None


@settings(max_examples=200)
@given(
    klen=st.sampled_from([0, 15, 16, 16, 16, 17, 32]),
    tlen=st.one_of(st.sampled_from([4, 8, 12, 13, 14, 15, 16]), st.integers(min_value=-1, max_value=18)),
    nonce=st.one_of(st.binary(min_size=0, max_size=16), st.binary(min_size=12, max_size=12)),
    data=st.binary(max_size=90),
    aad=st.one_of(st.none(), st.binary(max_size=70)),
    wrap=st.sampled_from(["bytes", "memoryview", "bytearray", "str"]),
)
def test_fuzz_api_lengths(klen: int, tlen: int, nonce: bytes, data: bytes, aad: bytes | None, wrap: str) -> None:
    """Random key/tag/nonce/data/AAD lengths and argument types, valid or not: the C module
    never crashes, agrees with the fallback, and with cryptography on every valid input."""
    _need_c()
    key = bytes(range(klen))
    k_c = _outcome(lambda: C_GCM(key, tlen))
    k_p = _outcome(lambda: _ccm_py.GcmKey(key, tlen))
    assert k_c[0] == k_p[0] and k_c[0] in ("ok", "ValueError")
    if k_c[0] != "ok":
        assert k_c[1] == k_p[1] in ("key", "tag_length")
        assert klen != 16 or tlen not in (4, 8, 12, 13, 14, 15, 16)
        return
    assert klen == 16
    kc, kp = k_c[1], k_p[1]
    w: Callable[[bytes], object] = {"bytes": bytes, "memoryview": memoryview, "bytearray": bytearray,
                                    "str": lambda b: b.hex()}[wrap]
    n_, d_, a_ = w(nonce), w(data), (None if aad is None else w(aad))
    ref = AESGCM(key)
    for name in ("encrypt", "decrypt"):
        rc = _outcome(getattr(kc, name), n_, d_, a_)
        rp = _outcome(getattr(kp, name), n_, d_, a_)
        assert rc == rp, (name, rc, rp)
        if wrap == "str":
            assert rc == ("TypeError", None)
        elif len(nonce) != 12:
            assert rc == ("ValueError", "nonce")
        elif name == "encrypt":
            assert rc == ("ok", ref.encrypt(nonce, data, aad)[: len(data) + tlen])
        elif len(data) < tlen:
            assert rc == ("InvalidTag", None)
        else:  # random bytes as C || T: accepted only if T is the tag of C
            n = len(data) - tlen
            plain = ref.encrypt(nonce, data[:n], None)[:n]  # counter mode is its own inverse
            tag = ref.encrypt(nonce, plain, aad)[n : n + tlen]
            assert rc == (("ok", plain) if tag == data[n:] else ("InvalidTag", None))
    if wrap != "str" and len(nonce) == 12:  # and a real round trip with these lengths
        ct = kc.encrypt(n_, d_, a_)
        assert kc.decrypt(n_, ct, a_) == kp.decrypt(n_, ct, a_) == data


# ---------------------------------------------------------------- GIL released for large inputs


def test_large_input_releases_the_gil() -> None:
    _need_c()
    assert _ccm_c is not None
    k = C_GCM(KEY, 12)
    big = bytes(24 << 20)
    ct = k.encrypt(bytes(12), big, b"aad")
    # control: CMAC (GIL held) of a long message; the measurement must see that stall
    ck = _ccm_c.Key(KEY)
    ctl = [max_pause(lambda: ck.cmac(big)) for _ in range(2)]
    assert max(g / d for g, d in ctl) > 0.7, ctl
    for name, fn in (("encrypt", lambda: k.encrypt(bytes(12), big, b"aad")),
                     ("decrypt", lambda: k.decrypt(bytes(12), ct, b"aad"))):
        seen = []
        for _ in range(5):  # the OS may pause this thread on a loaded machine: best of 5
            gap, dur = max_pause(fn)
            seen.append((round(gap, 4), round(dur, 4)))
            if gap < 0.5 * dur:
                break
        else:
            pytest.fail(f"{name}: this thread stalled for most of the call: {seen}")
    assert k.decrypt(bytes(12), ct, b"aad") == big


# ---------------------------------------------------------------- plaintext <= 2^39 - 256 bits


@pytest.fixture(scope="module")
def sparse_view(tmp_path_factory: pytest.TempPathFactory) -> Iterator[memoryview]:
    """A read-only view of MAX_TEXT + 1 + 16 zero bytes (a sparse file; nothing is read)."""
    p = Path(tmp_path_factory.mktemp("gcm_sparse")) / "big"
    try:
        with open(p, "wb") as f:
            f.truncate(MAX_TEXT + 1 + 16)
        fh = open(p, "rb")  # noqa: SIM115
        m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, OverflowError, ValueError) as e:  # pragma: no cover - exotic file systems
        pytest.skip(f"no sparse 2^36-byte mapping here: {e}")
    v = memoryview(m)
    yield v
    gc.collect()  # tracebacks kept by pytest.raises hold slices of the view
    v.release()
    m.close()
    fh.close()


def test_plaintext_limit_refused_before_reading(gcm: Any, sparse_view: memoryview) -> None:
    """One byte over 2^36 - 32 is refused (EncodeError naming ``data``) before anything is
    read or copied, for encrypt and for decrypt with every tag length."""
    t0 = time.perf_counter()
    over = sparse_view[: MAX_TEXT + 1]
    for tl in (4, 12, 16):
        k = gcm(KEY, tl)
        for fn, arg in ((k.encrypt, over), (k.decrypt, sparse_view[: MAX_TEXT + 1 + tl])):
            with pytest.raises(ValueError) as ei:
                fn(bytes(12), arg, None)
            assert ei.value.field == "data"
        with pytest.raises(ValueError) as ei:  # the nonce is checked first
            k.encrypt(bytes(11), over, None)
        assert ei.value.field == "nonce"
    assert time.perf_counter() - t0 < 2.0  # nothing of the 64 GiB was touched
