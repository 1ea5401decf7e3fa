"""Audit of issue 4 item 2 (osgp._ccm): the no-AES-NI import path, a hypothesis fuzz of every
length of the C API (only ValueError / InvalidTag / a correct result, the C module and the
``cryptography`` fallback behave alike), the GIL really released in the batch (measured, with a
GIL-holding control), and the SP 800-38C payload limit 2^(8L) at its exact boundary for every L
that fits in an address space (L = 2, 3 in memory, L = 4, 5 through sparse memory-mapped files).
"""

from __future__ import annotations

import gc
import mmap
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT, max_pause, require
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given, settings
from hypothesis import strategies as st

from osgp import InvalidTag, _ccm_py

try:
    from osgp import _ccm as _ccm_c
except ImportError:  # pragma: no cover
    _ccm_c = None

KEY = bytes(range(16))


@pytest.fixture(params=["c", "python"])
def impl(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if request.param == "c":
        require(_ccm_c is not None, "built osgp._ccm extension (pip install -e .)")
        return _ccm_c
    return _ccm_py


def _need_c() -> None:
    require(_ccm_c is not None, "built osgp._ccm extension (pip install -e .)")


# ---------------------------------------------------------------- no AES-NI → fallback


def test_no_aesni_import_path_falls_back_to_cryptography() -> None:
    """OSGP_CCM_ASSUME_NO_AESNI makes the built extension refuse to import exactly as on a CPU
    without AES-NI; osgp.ccm must then select the cryptography fallback and work."""
    _need_c()
    code = (
        "import importlib\n"
        "try:\n"
        "    importlib.import_module('osgp._ccm')\n"
        "except ImportError as e:\n"
        "    print('refused:', 'AES-NI' in str(e))\n"
        "else:\n"
        "    print('refused: no')\n"
        "from osgp import ccm, primitives\n"
        "k = ccm.AesCcm(bytes(16))\n"
        "ct = k.encrypt(bytes(13), b'abc', b'h')\n"
        "assert k.decrypt(bytes(13), ct, b'h') == b'abc'\n"
        "print(ccm.IMPLEMENTATION, type(k).__module__, ccm.HAVE_AESNI, ct.hex(), primitives.cmac(k, b'').hex())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OSGP_PURE_PYTHON"}
    outs = {}
    for flag in ("1", "0"):
        env["OSGP_CCM_ASSUME_NO_AESNI"] = flag
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        outs[flag] = r.stdout.split("\n")
    assert outs["1"][0] == "refused: True"
    impl1, mod1, aesni1, ct1, mac1 = outs["1"][1].split()
    assert (impl1, mod1, aesni1) == ("python", "osgp._ccm_py", "False")
    assert outs["0"][0] == "refused: no"
    impl0, mod0, aesni0, ct0, mac0 = outs["0"][1].split()
    assert (impl0, mod0, aesni0) == ("c", "osgp._ccm", "True")
    ref = AESCCM(bytes(16), 8).encrypt(bytes(13), b"abc", b"h").hex()
    assert ct1 == ct0 == ref
    from cryptography.hazmat.primitives.ciphers.algorithms import AES
    from cryptography.hazmat.primitives.cmac import CMAC

    assert mac1 == mac0 == CMAC(AES(bytes(16))).finalize().hex()


# ---------------------------------------------------------------- fuzz every length

_lens = st.integers(min_value=0, max_value=40)


def _outcome(fn: Callable[..., object], *args: object) -> tuple[str, object]:
    try:
        return "ok", fn(*args)
    except InvalidTag:
        return "InvalidTag", None
    except ValueError as e:  # EncodeError is a ValueError
        return "ValueError", getattr(e, "field", None)


@settings(max_examples=150)
@given(
    klen=st.sampled_from([0, 1, 15, 16, 16, 16, 17, 32]),
    tlen=st.integers(min_value=-1, max_value=18),
    nonce=st.binary(min_size=0, max_size=16),
    data=st.binary(max_size=70),
    aad=st.one_of(st.none(), st.binary(max_size=40)),
    buf_delta=st.integers(min_value=-3, max_value=3),
    tag=st.binary(max_size=20),
    as_view=st.booleans(),
)
def test_fuzz_c_api_lengths(
    klen: int, tlen: int, nonce: bytes, data: bytes, aad: bytes | None, buf_delta: int, tag: bytes, as_view: bool
) -> None:
    """Random key/tag/nonce/data/aad/buffer lengths, valid or not: the C module never crashes,
    raises only ValueError (naming the field) or InvalidTag, agrees with the fallback, and with
    cryptography on every valid input; a failed decrypt_into leaves only zeros."""
    _need_c()
    key = bytes(range(klen))
    k_c = _outcome(lambda: _ccm_c.Key(key, tlen))
    k_p = _outcome(lambda: _ccm_py.Key(key, tlen))
    assert k_c[0] == k_p[0] and k_c[0] in ("ok", "ValueError")
    if k_c[0] != "ok":
        assert k_c[1] == k_p[1] in ("key", "tag_length")
        return
    kc, kp = k_c[1], k_p[1]
    wrap = memoryview if as_view else bytes
    n_, d_, a_ = wrap(nonce), wrap(data), (None if aad is None else wrap(aad))
    ref_ok = 7 <= len(nonce) <= 13
    for name in ("encrypt", "decrypt"):
        rc = _outcome(getattr(kc, name), n_, d_, a_)
        rp = _outcome(getattr(kp, name), n_, d_, a_)
        assert rc == rp, (name, rc, rp)
        if name == "encrypt":
            if ref_ok:
                assert rc == ("ok", AESCCM(key, tlen).encrypt(nonce, data, aad))
            else:
                assert rc == ("ValueError", "nonce")
        else:
            assert rc[0] in ("InvalidTag", "ValueError") or rc[0] == "ok"
            if not ref_ok:
                assert rc == ("ValueError", "nonce")
    # the _into variants, with a buffer of the right size or not
    for name, need in (("encrypt_into", len(data) + tlen), ("decrypt_into", len(data) - tlen)):
        size = max(0, need + buf_delta)
        bc, bp = bytearray(b"\xaa" * size), bytearray(b"\xaa" * size)
        rc = _outcome(getattr(kc, name), n_, d_, a_, bc)
        rp = _outcome(getattr(kp, name), n_, d_, a_, bp)
        assert rc == rp, (name, rc, rp)
        assert rc[0] in ("ok", "ValueError", "InvalidTag")
        if rc[0] == "InvalidTag" and need >= 0 and size == need:
            assert bc == bytes(size) and bp == bytes(size)  # output zeroed on failure
        if rc[0] == "ok":
            assert bc == bp
    # batches: same frame through both
    for fn in ("encrypt_batch", "decrypt_batch"):
        rc = _outcome(getattr(_ccm_c, fn), [(kc, n_, d_, a_)])
        rp = _outcome(getattr(_ccm_py, fn), [(kp, n_, d_, a_)])
        assert rc == rp, (fn, rc, rp)
        assert rc[0] in ("ok", "ValueError")
    # truncated CMAC verify with any tag length
    rc = _outcome(lambda: kc.cmac_verify(d_, tag))
    rp = _outcome(lambda: kp.cmac_verify(d_, tag))
    assert rc == rp
    assert rc[0] in ("ok", "ValueError")
    if 4 <= len(tag) <= 16:
        assert rc == ("ok", kc.cmac(data)[: len(tag)] == tag)
    else:
        assert rc == ("ValueError", "tag")


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(5, 15), st.integers(0, 40), st.integers(0, 20), st.booleans()),
                min_size=1, max_size=9))
def test_fuzz_batch_of_mixed_frames(specs: list[tuple[int, int, int, bool]]) -> None:
    """A batch with frames of random nonce/data lengths and some tampered tags: either the whole
    batch raises ValueError naming the bad frame (both implementations alike), or every frame
    equals the per-call result."""
    _need_c()
    kc, kp = _ccm_c.Key(KEY, 6), _ccm_py.Key(KEY, 6)
    fc, fp, want = [], [], []
    for i, (nl, dl, al, tamper) in enumerate(specs):
        nonce, pt, aad = bytes([i]) * nl, bytes([i + 1]) * dl, bytes([i + 2]) * al
        if 7 <= nl <= 13:
            ct = AESCCM(KEY, 6).encrypt(nonce, pt, aad or None)
            if tamper:
                ct = ct[:-1] + bytes([ct[-1] ^ 1])
            want.append(None if tamper else pt)
        else:
            ct = pt + bytes(6)
            want.append(None)
        fc.append((kc, nonce, ct, aad))
        fp.append((kp, nonce, ct, aad))
    bad = [i for i, (nl, *_r) in enumerate(specs) if not 7 <= nl <= 13]
    rc = _outcome(lambda: _ccm_c.decrypt_batch(fc))
    rp = _outcome(lambda: _ccm_py.decrypt_batch(fp))
    assert rc == rp
    if bad:
        assert rc == ("ValueError", "nonce")
        with pytest.raises(ValueError, match=f"frame {bad[0]}:"):
            _ccm_c.decrypt_batch(fc)
    else:
        assert rc == ("ok", want)


# ---------------------------------------------------------------- GIL released in the batch


def test_batch_releases_the_gil() -> None:
    _need_c()
    k = _ccm_c.Key(KEY)
    big = os.urandom(6 << 20)
    enc_frames = [(k, bytes(7), big, None)] * 4
    cts = _ccm_c.encrypt_batch(enc_frames)
    dec_frames = [(k, bytes(7), c, None) for c in cts]
    # control: CMAC (per call, GIL held) of a long message; the measurement must see the stall
    big4 = big * 4
    ctl = [max_pause(lambda: k.cmac(big4)) for _ in range(2)]
    assert max(g / d for g, d in ctl) > 0.7, ctl
    for frames, fn in ((enc_frames, _ccm_c.encrypt_batch), (dec_frames, _ccm_c.decrypt_batch)):
        seen = []
        for _ in range(5):  # the OS may pause this thread on a loaded machine: best of 5
            gap, dur = max_pause(lambda fn=fn, frames=frames: fn(frames))
            seen.append((round(gap, 4), round(dur, 4)))
            if gap < 0.5 * dur:
                break
        else:
            pytest.fail(f"{fn.__name__}: this thread stalled for most of the batch: {seen}")
    assert _ccm_c.decrypt_batch(dec_frames) == [big] * 4


# ---------------------------------------------------------------- payload < 2^(8L)


@pytest.mark.parametrize("L", [2, 3])
def test_payload_limit_exact_in_memory(impl, L: int) -> None:  # type: ignore[no-untyped-def]
    """2^(8L) - 1 bytes work and equal cryptography; exactly 2^(8L) is a ValueError everywhere."""
    k = impl.Key(KEY, 4)
    nonce = bytes(15 - L)
    limit = 1 << (8 * L)
    ok = bytes(limit - 1)
    ct = k.encrypt(nonce, ok, b"a")
    assert ct == AESCCM(KEY, 4).encrypt(nonce, ok, b"a")
    assert k.decrypt(nonce, ct, b"a") == ok
    over = bytes(limit)
    for call in (
        lambda: k.encrypt(nonce, over, b"a"),
        lambda: k.decrypt(nonce, over + bytes(4), b"a"),
        lambda: k.encrypt_into(nonce, over, b"a", bytearray(limit + 4)),
        lambda: k.decrypt_into(nonce, over + bytes(4), b"a", bytearray(limit)),
        lambda: impl.encrypt_batch([(k, nonce, over, b"a")]),
        lambda: impl.decrypt_batch([(k, nonce, over + bytes(4), b"a")]),
    ):
        with pytest.raises(ValueError) as ei:
            call()
        assert ei.value.field == "data"  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def sparse_views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, memoryview]]:
    """Read-only views of 2^32 + 4 and 2^40 + 4 zero bytes (sparse files, nothing is read)."""
    d = tmp_path_factory.mktemp("sparse")
    views, maps, files = {}, [], []
    try:
        for L in (4, 5):
            p = Path(d) / f"L{L}"
            with open(p, "wb") as f:
                f.truncate((1 << (8 * L)) + 4)
            fh = open(p, "rb")  # noqa: SIM115
            files.append(fh)
            m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            maps.append(m)
            views[L] = memoryview(m)
    except (OSError, OverflowError, ValueError) as e:  # pragma: no cover - exotic file systems
        pytest.skip(f"no sparse 2^40-byte mapping here: {e}")
    yield views
    gc.collect()  # tracebacks kept by pytest.raises hold slices of the views
    for v in views.values():
        v.release()
    for m in maps:
        m.close()
    for fh in files:
        fh.close()


@pytest.mark.parametrize("L", [4, 5])
def test_payload_limit_exact_beyond_memory(impl, sparse_views: dict[int, memoryview], L: int) -> None:  # type: ignore[no-untyped-def]
    """L = 4 and 5: exactly 2^(8L) bytes is refused before any copy or computation; 2^(8L) - 1
    passes the limit check (shown by the next check, the output buffer size, failing instead)."""
    v = sparse_views[L]
    limit = 1 << (8 * L)
    k = impl.Key(KEY, 4)
    nonce = bytes(15 - L)
    over, over_ct = v[:limit], v[: limit + 4]
    t0 = time.perf_counter()
    for call in (
        lambda: k.encrypt(nonce, over, None),
        lambda: k.decrypt(nonce, over_ct, None),
        lambda: k.encrypt_into(nonce, over, None, bytearray(1)),
        lambda: k.decrypt_into(nonce, over_ct, None, bytearray(1)),
        lambda: impl.encrypt_batch([(k, nonce, over, None)]),
        lambda: impl.decrypt_batch([(k, nonce, over_ct, None)]),
    ):
        with pytest.raises(ValueError) as ei:
            call()
        assert ei.value.field == "data"  # type: ignore[attr-defined]
    # one below the limit is accepted by the limit check: the buffer check fires instead
    for call in (
        lambda: k.encrypt_into(nonce, v[: limit - 1], None, bytearray(1)),
        lambda: k.decrypt_into(nonce, v[: limit - 1 + 4], None, bytearray(1)),
    ):
        with pytest.raises(ValueError) as ei:
            call()
        assert ei.value.field == "buf"  # type: ignore[attr-defined]
    # a shorter nonce (larger L) accepts the same length
    with pytest.raises(ValueError) as ei:
        k.encrypt_into(bytes(15 - L - 1), over, None, bytearray(1))
    assert ei.value.field == "buf"  # type: ignore[attr-defined]
    assert time.perf_counter() - t0 < 2.0  # nothing of the 2^(8L) bytes was touched


@pytest.mark.parametrize("tl", [2**70, -(2**70), 8.0, "8", None, True, 3, 18])
def test_bad_tag_length_is_a_value_error_naming_the_field(impl, tl: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as ei:
        impl.Key(KEY, tl)
    assert ei.value.field == "tag_length"  # type: ignore[attr-defined]
