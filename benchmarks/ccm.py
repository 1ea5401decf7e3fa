"""AES-128-CCM / AES-CMAC benchmark: osgp._ccm (AES-NI C extension) vs ``cryptography`` AESCCM.

One process.  Workload per frame: AAD 16 B, nonce 13 B (12 B for 65536 B payloads,
since L = 2 caps the payload at 65535 B), tag 8 B, a different pre-built key per frame.
Implementations are measured in interleaved rounds with shuffled order; each line
prints the median time per frame and the median of the per-round ratios against
``cryptography`` AESCCM called per frame (object reused), measured in the same round.

    python3 benchmarks/ccm.py [--rounds 7] [--target 0.03] [--sizes 16,64,256,1024,65536] [--clock cpu|wall]

Timing uses this process's CPU time by default (``time.process_time_ns``), so other
load on a shared machine does not count against whichever implementation happened
to be descheduled; ``--clock wall`` uses ``time.perf_counter``.

Goals (issue 4, item 7): batch >= 15x, per call >= 7x (64 B frames), CMAC >= 25x.

GCM (DLMS security suite 0, ``osgp.ccm.AesGcm``): AAD 17 B (SC || AK), nonce 12 B,
tag 12 B, one key (suite 0 has one global key per association).  The baseline is
what a 12-byte-tag decrypt costs with ``cryptography`` (AESGCM verifies only 16-byte
tags): two AESGCM.encrypt calls and a constant-time compare.  ``--gcm-only`` runs
just this part.

Note on 1024 B and larger batches: the batch API returns all outputs at once, so
1000 outputs of > 512 bytes come from glibc malloc rather than pymalloc; when the
result list is freed glibc trims the heap top and the next batch page-faults it
back in.  That shows up as a slow batch at 1024 B.  Running with
``MALLOC_TRIM_THRESHOLD_=268435456`` (or processing batches of ~128-512 frames)
removes the effect; the kernel itself is not involved.
"""

from __future__ import annotations

import argparse
import gc
import hmac
import os
import random
import statistics
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.cmac import CMAC

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from osgp import _ccm_py, ccm


def _process_clock() -> float:
    return time.process_time_ns() * 1e-9


_CLOCK: Callable[[], float] = _process_clock


def _time(fn: Callable[[], object], per: int, target: float) -> float:
    """Seconds per frame: repeat fn until ~target seconds, best of a short calibration."""
    clock = _CLOCK
    reps = 1
    while True:
        t0 = clock()
        for _ in range(reps):
            fn()
        dt = clock() - t0
        if dt >= target * 0.2 or reps > 1 << 20:
            break
        reps *= 4
    reps = max(1, int(reps * target / max(dt, 1e-9)))
    t0 = clock()
    for _ in range(reps):
        fn()
    return (clock() - t0) / (reps * per)


Cases = dict[str, tuple[Callable[[], object], int]]


def bench(cases: Cases, base: str, rounds: int, target: float) -> dict[str, tuple[float, float]]:
    times: dict[str, list[float]] = {k: [] for k in cases}
    ratios: dict[str, list[float]] = {k: [] for k in cases}
    gc.disable()
    try:
        for _ in range(rounds):
            order = list(cases)
            random.shuffle(order)
            now = {}
            for name in order:
                fn, per = cases[name]
                now[name] = _time(fn, per, target)
            for name in cases:
                times[name].append(now[name])
                ratios[name].append(now[base] / now[name])
    finally:
        gc.enable()
    return {k: (statistics.median(times[k]), statistics.median(ratios[k])) for k in cases}


def ccm_cases(size: int, nframes: int) -> tuple[Cases, Cases]:
    rnd = random.Random(size)
    nlen = 13 if size < 65536 else 12
    keys = [rnd.randbytes(16) for _ in range(nframes)]
    ckeys = [ccm.AesCcm(k, 8) for k in keys]
    refs = [AESCCM(k, 8) for k in keys]
    nonces = [rnd.randbytes(nlen) for _ in range(nframes)]
    aads = [rnd.randbytes(16) for _ in range(nframes)]
    pts = [rnd.randbytes(size) for _ in range(nframes)]
    cts = [r.encrypt(n, p, a) for r, n, p, a in zip(refs, nonces, pts, aads)]
    dframes = list(zip(ckeys, nonces, cts, aads))
    eframes = list(zip(ckeys, nonces, pts, aads))
    # sanity: both implementations agree before anything is timed
    assert ccm.decrypt_batch(dframes) == pts
    assert ccm.encrypt_batch(eframes) == cts
    assert [k.decrypt(n, c, a) for k, n, c, a in dframes] == pts
    i0 = 0
    r0, k0, n0, c0, a0, p0 = refs[i0], ckeys[i0], nonces[i0], cts[i0], aads[i0], pts[i0]

    def loop_ref_dec() -> None:
        for r, n, c, a in zip(refs, nonces, cts, aads):
            r.decrypt(n, c, a)

    def loop_c_dec() -> None:
        for k, n, c, a in dframes:
            k.decrypt(n, c, a)

    def loop_ref_enc() -> None:
        for r, n, p, a in zip(refs, nonces, pts, aads):
            r.encrypt(n, p, a)

    def loop_c_enc() -> None:
        for k, n, p, a in eframes:
            k.encrypt(n, p, a)

    dec = {
        "cryptography AESCCM.decrypt per frame": (loop_ref_dec, nframes),
        f"osgp.ccm[{ccm.IMPLEMENTATION}] Key.decrypt per frame": (loop_c_dec, nframes),
        f"osgp.ccm[{ccm.IMPLEMENTATION}] decrypt_batch": (lambda: ccm.decrypt_batch(dframes), nframes),
    }
    enc = {
        "cryptography AESCCM.encrypt per frame": (loop_ref_enc, nframes),
        f"osgp.ccm[{ccm.IMPLEMENTATION}] Key.encrypt per frame": (loop_c_enc, nframes),
        f"osgp.ccm[{ccm.IMPLEMENTATION}] encrypt_batch": (lambda: ccm.encrypt_batch(eframes), nframes),
    }
    del r0, k0, n0, c0, a0, p0
    return dec, enc


def cmac_cases(size: int, nkeys: int = 256) -> dict[str, tuple[Callable[[], object], int]]:
    rnd = random.Random(1000 + size)
    keys = [rnd.randbytes(16) for _ in range(nkeys)]
    msgs = [rnd.randbytes(size) for _ in range(nkeys)]
    ck = [ccm.AesCcm(k) for k in keys]
    protos = [CMAC(AES(k)) for k in keys]
    for k, kk, m in zip(keys, ck, msgs):
        c = CMAC(AES(k))
        c.update(m)
        assert c.finalize() == kk.cmac(m)

    def ref() -> None:
        for k, m in zip(keys, msgs):
            c = CMAC(AES(k))
            c.update(m)
            c.finalize()

    def ref_copy() -> None:
        for p, m in zip(protos, msgs):
            c = p.copy()
            c.update(m)
            c.finalize()

    def cc() -> None:
        for k, m in zip(ck, msgs):
            k.cmac(m)

    return {
        "cryptography CMAC(AES(key)) per message": (ref, nkeys),
        "cryptography keyed CMAC .copy() per message": (ref_copy, nkeys),
        f"osgp.ccm[{ccm.IMPLEMENTATION}] Key.cmac": (cc, nkeys),
    }


def gcm_cases(size: int, nframes: int) -> tuple[Cases, Cases]:
    rnd = random.Random(2000 + size)
    key = rnd.randbytes(16)
    ref = AESGCM(key)
    ck = ccm.AesGcm(key, 12)
    pk = _ccm_py.GcmKey(key, 12)
    ivs = [rnd.randbytes(12) for _ in range(nframes)]
    aad = b"\x30" + rnd.randbytes(16)
    pts = [rnd.randbytes(size) for _ in range(nframes)]
    cts = [ref.encrypt(n, p, aad)[: size + 12] for n, p in zip(ivs, pts)]
    cts16 = [ref.encrypt(n, p, aad) for n, p in zip(ivs, pts)]
    assert [ck.decrypt(n, c, aad) for n, c in zip(ivs, cts)] == pts
    assert [ck.encrypt(n, p, aad) for n, p in zip(ivs, pts)] == cts

    def ref_dec12() -> None:
        for n, c in zip(ivs, cts):
            body = c[:size]
            p = ref.encrypt(n, body, None)[:size]
            if not hmac.compare_digest(ref.encrypt(n, p, aad)[size : size + 12], c[size:]):
                raise AssertionError

    def ref_dec16() -> None:
        for n, c in zip(ivs, cts16):
            ref.decrypt(n, c, aad)

    def ref_enc() -> None:
        for n, p in zip(ivs, pts):
            ref.encrypt(n, p, aad)

    def key_dec(k: object) -> Callable[[], None]:
        dec = k.decrypt  # type: ignore[attr-defined]

        def run() -> None:
            for n, c in zip(ivs, cts):
                dec(n, c, aad)
        return run

    def key_enc(k: object) -> Callable[[], None]:
        enc = k.encrypt  # type: ignore[attr-defined]

        def run() -> None:
            for n, p in zip(ivs, pts):
                enc(n, p, aad)
        return run

    impl = ccm.GCM_IMPLEMENTATION
    dec = {
        "cryptography 2x AESGCM.encrypt + compare (12 B tag)": (ref_dec12, nframes),
        "cryptography AESGCM.decrypt (16 B tag)": (ref_dec16, nframes),
        f"osgp.ccm[{impl}] AesGcm.decrypt (12 B tag)": (key_dec(ck), nframes),
    }
    enc = {
        "cryptography AESGCM.encrypt": (ref_enc, nframes),
        f"osgp.ccm[{impl}] AesGcm.encrypt (12 B tag)": (key_enc(ck), nframes),
    }
    if impl == "c":
        dec["osgp._ccm_py GcmKey.decrypt (fallback)"] = (key_dec(pk), nframes)
        enc["osgp._ccm_py GcmKey.encrypt (fallback)"] = (key_enc(pk), nframes)
    return dec, enc


def report(title: str, res: dict[str, tuple[float, float]], size: int) -> None:
    print(f"\n{title}")
    for name, (t, ratio) in res.items():
        fps = 1.0 / t
        mbs = fps * size / 1e6
        print(f"  {name:45s} {t * 1e9:10.1f} ns/frame {fps / 1e6:8.3f} M/s {mbs:9.1f} MB/s   x{ratio:6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--target", type=float, default=0.03, help="seconds per measurement")
    ap.add_argument("--sizes", default="16,64,256,1024,65536")
    ap.add_argument("--frames", type=int, default=1000, help="frames per batch (32 for 65536 B)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--gcm-only", action="store_true", help="only the AES-GCM (suite 0) part")
    args = ap.parse_args()
    global _CLOCK
    if args.clock == "wall":
        _CLOCK = time.perf_counter
    print(f"clock: {args.clock}; load average: {os.getloadavg()[0]:.2f} (1 min)")
    print(f"osgp.ccm implementation: {ccm.IMPLEMENTATION} (GCM: {ccm.GCM_IMPLEMENTATION}); "
          f"python {sys.version.split()[0]}")
    print("ratios: median of per-round (cryptography per-frame time / this time), same process")
    for size in (16, 64, 256, 1024):
        dec, enc = gcm_cases(size, 256)
        r = bench(dec, "cryptography 2x AESGCM.encrypt + compare (12 B tag)", args.rounds, args.target)
        report(f"GCM decrypt+verify {size} B payload, 17 B AAD, tag 12, one key", r, size)
        r = bench(enc, "cryptography AESGCM.encrypt", args.rounds, args.target)
        report(f"GCM encrypt {size} B payload, 17 B AAD, tag 12, one key", r, size)
    if args.gcm_only:
        return
    summary = []
    for size in [int(s) for s in args.sizes.split(",")]:
        nf = args.frames if size < 65536 else 32
        dec, enc = ccm_cases(size, nf)
        r = bench(dec, "cryptography AESCCM.decrypt per frame", args.rounds, args.target)
        report(f"decrypt+verify {size} B payload, 16 B AAD, tag 8, {nf} frames, a key per frame", r, size)
        summary.append((size, "decrypt", r))
        r = bench(enc, "cryptography AESCCM.encrypt per frame", args.rounds, args.target)
        report(f"encrypt {size} B payload, 16 B AAD, tag 8, {nf} frames, a key per frame", r, size)
        summary.append((size, "encrypt", r))
    for size in (16, 64, 256, 1024):
        r = bench(cmac_cases(size), "cryptography CMAC(AES(key)) per message", args.rounds, args.target)
        report(f"AES-CMAC {size} B message, a key per message", r, size)
        summary.append((size, "cmac", r))
    print("\nGoals (64 B frames; CMAC at 16 and 64 B):")
    for size, what, r in summary:
        if size == 64 and what in ("decrypt", "encrypt"):
            pc = next(v[1] for k, v in r.items() if "per frame" in k and "osgp" in k)
            bt = next(v[1] for k, v in r.items() if "batch" in k)
            print(f"  {what}: per call x{pc:.2f} (goal >= 7), batch x{bt:.2f} (goal >= 15)")
        if what == "cmac" and size in (16, 64):
            cm = r[f"osgp.ccm[{ccm.IMPLEMENTATION}] Key.cmac"][1]
            print(f"  CMAC {size} B: x{cm:.2f} (goal >= 25)")


if __name__ == "__main__":
    main()
