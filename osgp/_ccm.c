/*
 * osgp._ccm: AES-128-CCM (NIST SP 800-38C / RFC 3610) and AES-CMAC (RFC 4493)
 * with AES-NI, for OSGP-AES-128-PSK (IEC 62056-8-8 Annex D: OSGP_AE/AD, OSGP_MAC).
 *
 * - Key object caching the AES-128 key schedule and the CMAC subkeys K1/K2.
 * - Per-call encrypt/decrypt (nonce 7..13, tag 4..16 even, any AAD), CMAC.
 * - Batch encrypt/decrypt over many frames with per-frame keys: a multi-buffer
 *   kernel runs the CBC-MAC chains of 4 messages interleaved, GIL released.
 * - Tags compared in constant time; decrypt output is zeroed on failure.
 * - GcmKey: AES-128-GCM (NIST SP 800-38D, 96-bit IV, tags 4/8/12..16 bytes) for DLMS
 *   security suite 0, GHASH with PCLMULQDQ (4 blocks per reduction), the key schedule
 *   and h^1..h^4 cached; the tag is verified before any plaintext is computed.  Only
 *   present when the CPU has PCLMULQDQ (HAVE_PCLMULQDQ).
 * - Only AES-NI: the module refuses to import on CPUs (or builds) without it,
 *   and osgp.ccm then falls back to `cryptography`.  There is no table AES here.
 *
 * Policy (counters, replay, state) lives in Python, not here.
 */
#define PY_SSIZE_T_CLEAN
/* Built against the full CPython API by default; setup.py defines Py_LIMITED_API
 * (abi3 wheel) when OSGP_CCM_LIMITED_API=1 is set. */
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CCM_HAVE_X86 1
#include <immintrin.h>
#define TGT __attribute__((target("aes,sse4.1")))
#define INL static inline __attribute__((always_inline, target("aes,sse4.1")))
#else
#define CCM_HAVE_X86 0
#endif

typedef unsigned char u8;

/* Inputs this large release the GIL even in the per-call API. */
#define GIL_RELEASE_BYTES 16384

static PyObject *InvalidTag = NULL;  /* osgp._ccm_errors.InvalidTag */
static PyObject *EncodeError = NULL; /* dlms14908.errors.EncodeError (a ValueError): local misuse */
static PyTypeObject *KeyType = NULL;

static void wipe(void *p, size_t n)
{
    memset(p, 0, n);
#if defined(__GNUC__) || defined(__clang__)
    __asm__ __volatile__("" : : "r"(p) : "memory"); /* keep the memset */
#endif
}

/* memcpy for n <= 16 without a libc call (overlapping word copies) */
static inline void copy16(u8 *d, const u8 *s, size_t n)
{
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++) d[i] = s[i];
    }
}

typedef struct {
    PyObject_HEAD
    _Alignas(16) u8 rk[11 * 16]; /* AES-128 round keys */
    _Alignas(16) u8 k1[16];      /* CMAC subkeys */
    _Alignas(16) u8 k2[16];
    int tag_len;
} KeyObject;

#if CCM_HAVE_X86

#define RK(ks, i) _mm_load_si128((const __m128i *)(ks) + (i))

INL __m128i aes_enc(const u8 *ks, __m128i b)
{
    b = _mm_xor_si128(b, RK(ks, 0));
    b = _mm_aesenc_si128(b, RK(ks, 1));
    b = _mm_aesenc_si128(b, RK(ks, 2));
    b = _mm_aesenc_si128(b, RK(ks, 3));
    b = _mm_aesenc_si128(b, RK(ks, 4));
    b = _mm_aesenc_si128(b, RK(ks, 5));
    b = _mm_aesenc_si128(b, RK(ks, 6));
    b = _mm_aesenc_si128(b, RK(ks, 7));
    b = _mm_aesenc_si128(b, RK(ks, 8));
    b = _mm_aesenc_si128(b, RK(ks, 9));
    return _mm_aesenclast_si128(b, RK(ks, 10));
}

/* Two independent blocks under one key (MAC chain + CTR keystream). */
#define AES2(ks, a, b)                                   \
    do {                                                 \
        __m128i _r = RK(ks, 0);                          \
        a = _mm_xor_si128(a, _r); b = _mm_xor_si128(b, _r); \
        for (int _i = 1; _i < 10; _i++) {                \
            _r = RK(ks, _i);                             \
            a = _mm_aesenc_si128(a, _r);                 \
            b = _mm_aesenc_si128(b, _r);                 \
        }                                                \
        _r = RK(ks, 10);                                 \
        a = _mm_aesenclast_si128(a, _r);                 \
        b = _mm_aesenclast_si128(b, _r);                 \
    } while (0)

/* Four independent blocks under four (possibly different) keys. */
#define AES4K(k0, k1, k2, k3, a, b, c, d)                                          \
    do {                                                                           \
        a = _mm_xor_si128(a, RK(k0, 0)); b = _mm_xor_si128(b, RK(k1, 0));          \
        c = _mm_xor_si128(c, RK(k2, 0)); d = _mm_xor_si128(d, RK(k3, 0));          \
        for (int _i = 1; _i < 10; _i++) {                                          \
            a = _mm_aesenc_si128(a, RK(k0, _i)); b = _mm_aesenc_si128(b, RK(k1, _i)); \
            c = _mm_aesenc_si128(c, RK(k2, _i)); d = _mm_aesenc_si128(d, RK(k3, _i)); \
        }                                                                          \
        a = _mm_aesenclast_si128(a, RK(k0, 10)); b = _mm_aesenclast_si128(b, RK(k1, 10)); \
        c = _mm_aesenclast_si128(c, RK(k2, 10)); d = _mm_aesenclast_si128(d, RK(k3, 10)); \
    } while (0)

INL __m128i expand_step(__m128i k, __m128i kg)
{
    kg = _mm_shuffle_epi32(kg, 0xff);
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, kg);
}

static TGT void aes128_expand(u8 *ks, const u8 *key)
{
    __m128i *r = (__m128i *)ks;
    __m128i k = _mm_loadu_si128((const __m128i *)key);
    r[0] = k;
#define EXP(i, rcon) k = expand_step(k, _mm_aeskeygenassist_si128(k, rcon)); r[i] = k;
    EXP(1, 0x01) EXP(2, 0x02) EXP(3, 0x04) EXP(4, 0x08) EXP(5, 0x10)
    EXP(6, 0x20) EXP(7, 0x40) EXP(8, 0x80) EXP(9, 0x1b) EXP(10, 0x36)
#undef EXP
    k = _mm_setzero_si128();
}

/* GF(2^128) doubling for CMAC subkeys (RFC 4493 §2.3), branch-free. */
static void dbl(u8 *out, const u8 *in)
{
    u8 carry = (u8)(in[0] >> 7);
    for (int i = 0; i < 15; i++) out[i] = (u8)((in[i] << 1) | (in[i + 1] >> 7));
    out[15] = (u8)((in[15] << 1) ^ (0x87 & (u8)(0u - carry)));
}

static TGT void key_setup(KeyObject *k, const u8 *key)
{
    _Alignas(16) u8 l[16];
    aes128_expand(k->rk, key);
    _mm_store_si128((__m128i *)l, aes_enc(k->rk, _mm_setzero_si128()));
    dbl(k->k1, l);
    dbl(k->k2, k->k1);
    wipe(l, sizeof l);
}

INL __m128i bswap_mask(void)
{
    return _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/* pshufb controls for load_partial: byte i < n comes from the low word (i < w) or
 * from the high word loaded at n - w; other bytes are zero.  Built at import. */
static _Alignas(16) u8 part_shuf[16][16];

static void init_part_tables(void)
{
    for (int n = 0; n < 16; n++) {
        int w = n >= 8 ? 8 : 4;
        for (int i = 0; i < 16; i++)
            part_shuf[n][i] = (u8)(i < n ? (i < w ? i : 8 + (i - (n - w))) : 0x80);
    }
}

/* n < 16 bytes at p, zero padded, assembled in a register: two overlapping word
 * loads and one shuffle, never reading outside [p, p + n) and never a byte-store /
 * vector-load round trip (which stalls store forwarding). */
INL __m128i load_partial(const u8 *p, size_t n)
{
    uint64_t lo = 0, hi = 0;
    if (n >= 8) {
        memcpy(&lo, p, 8);
        memcpy(&hi, p + n - 8, 8);
    } else if (n >= 4) {
        uint32_t l4, h4;
        memcpy(&l4, p, 4);
        memcpy(&h4, p + n - 4, 4);
        lo = l4;
        hi = h4;
    } else {
        for (size_t i = 0; i < n; i++) lo |= (uint64_t)p[i] << (8 * i);
    }
    return _mm_shuffle_epi8(_mm_set_epi64x((long long)hi, (long long)lo),
                            _mm_load_si128((const __m128i *)part_shuf[n]));
}

/* ---- CMAC ------------------------------------------------------------------ */

/* CBC-MAC chain with the next block folded into the last round key:
 * aesenclast(s, rk10) ^ m ^ rk0 == aesenclast(s, rk10 ^ m ^ rk0), so the chain is
 * 10 AES rounds per block with no XOR in between (the XORs run off the chain). */
static TGT void cmac_raw(const KeyObject *k, const u8 *m, size_t n, u8 *out)
{
    const u8 *rk = k->rk;
    __m128i last;
    size_t full = n ? (n - 1) / 16 : 0; /* blocks before the last one */
    size_t rem = n - 16 * full;
    if (n && rem == 16) {
        last = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(m + 16 * full)),
                             _mm_load_si128((const __m128i *)k->k1));
    } else {
        /* padding 10*: 0x80 at byte rem */
        __m128i pad = _mm_and_si128(_mm_cmpeq_epi8(_mm_set1_epi8((char)rem),
                                                   _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
                                    _mm_set1_epi8((char)0x80));
        last = _mm_xor_si128(_mm_or_si128(load_partial(m + 16 * full, rem), pad),
                             _mm_load_si128((const __m128i *)k->k2));
    }
    const __m128i r0 = RK(rk, 0), r10 = RK(rk, 10), r0r10 = _mm_xor_si128(r0, r10);
    __m128i x = _mm_xor_si128(full ? _mm_loadu_si128((const __m128i *)m) : last, r0);
    for (size_t i = 0; i <= full; i++) {
        x = _mm_aesenc_si128(x, RK(rk, 1));
        x = _mm_aesenc_si128(x, RK(rk, 2));
        x = _mm_aesenc_si128(x, RK(rk, 3));
        x = _mm_aesenc_si128(x, RK(rk, 4));
        x = _mm_aesenc_si128(x, RK(rk, 5));
        x = _mm_aesenc_si128(x, RK(rk, 6));
        x = _mm_aesenc_si128(x, RK(rk, 7));
        x = _mm_aesenc_si128(x, RK(rk, 8));
        x = _mm_aesenc_si128(x, RK(rk, 9));
        if (i < full) {
            __m128i nxt = i + 1 < full ? _mm_loadu_si128((const __m128i *)(m + 16 * (i + 1))) : last;
            x = _mm_aesenclast_si128(x, _mm_xor_si128(nxt, r0r10));
        } else {
            x = _mm_aesenclast_si128(x, r10);
        }
    }
    _mm_storeu_si128((__m128i *)out, x);
}

/* ---- CCM formatting (SP 800-38C A.2) --------------------------------------- */

/* pshufb controls (built once at import): place a nonce of length n (loaded as two
 * overlapping words) at bytes 1..n, and the low L bytes of the payload length
 * big-endian at bytes 16-L..15.  0x80 gives a zero byte. */
static _Alignas(16) u8 nonce_shuf[14][16];
static _Alignas(16) u8 len_shuf[9][16];

static void init_tables(void)
{
    for (int n = 7; n <= 13; n++) {
        int w = n >= 8 ? 8 : 4; /* word size of the two overlapping loads */
        for (int i = 0; i < 16; i++) {
            int j = i - 1; /* nonce byte index */
            u8 c = 0x80;
            if (j >= 0 && j < n) c = (u8)(j < w ? j : 8 + (j - (n - w)));
            nonce_shuf[n][i] = c;
        }
    }
    for (int L = 2; L <= 8; L++)
        for (int i = 0; i < 16; i++) {
            int k = 15 - i; /* byte k of the little-endian length */
            len_shuf[L][i] = (u8)(k < L ? k : 0x80);
        }
}

/* B0 and A0 (counter 0) built in registers (no store-forwarding stalls);
 * returns A0 byte-swapped for counter arithmetic. */
INL __m128i ccm_b0(const u8 *nonce, int nlen, size_t alen, size_t len, int M, __m128i *b0)
{
    int L = 15 - nlen;
    __m128i nv;
    if (nlen >= 8) {
        uint64_t lo, hi;
        memcpy(&lo, nonce, 8);
        memcpy(&hi, nonce + nlen - 8, 8);
        nv = _mm_set_epi64x((long long)hi, (long long)lo);
    } else {
        uint32_t lo, hi;
        memcpy(&lo, nonce, 4);
        memcpy(&hi, nonce + nlen - 4, 4);
        nv = _mm_set_epi64x((long long)hi, (long long)lo);
    }
    nv = _mm_shuffle_epi8(nv, _mm_load_si128((const __m128i *)nonce_shuf[nlen]));
    __m128i lv = _mm_shuffle_epi8(_mm_cvtsi64_si128((long long)len), _mm_load_si128((const __m128i *)len_shuf[L]));
    int flags = (alen ? 0x40 : 0) | (((M - 2) / 2) << 3) | (L - 1);
    *b0 = _mm_or_si128(_mm_or_si128(nv, lv), _mm_cvtsi32_si128(flags));
    __m128i a0 = _mm_or_si128(nv, _mm_cvtsi32_si128(L - 1));
    return _mm_shuffle_epi8(a0, bswap_mask());
}

/* First AAD block: length encoding + head of the AAD, in a register.  *used gets the
 * number of AAD bytes consumed.  The common short encoding (AAD < 0xFF00 bytes) is
 * assembled without a byte-store/vector-load round trip. */
static _Alignas(16) u8 aad_shuf[15][16];

static void init_aad_tables(void)
{
    for (int take = 0; take <= 14; take++) {
        int w = take >= 8 ? 8 : 4;
        for (int i = 0; i < 16; i++) {
            int j = i - 2;
            u8 c = 0x80;
            if (j >= 0 && j < take) c = (u8)(j < w ? j : 8 + (j - (take - w)));
            aad_shuf[take][i] = c;
        }
    }
}

INL __m128i ccm_aad_head(const u8 *aad, size_t alen, size_t *used)
{
    if (alen < 0xFF00) {
        size_t take = alen < 14 ? alen : 14;
        __m128i v;
        if (alen >= 16) {
            v = _mm_slli_si128(_mm_loadu_si128((const __m128i *)aad), 2);
        } else {
            uint64_t lo = 0, hi = 0;
            if (take >= 8) {
                memcpy(&lo, aad, 8);
                memcpy(&hi, aad + take - 8, 8);
            } else if (take >= 4) {
                uint32_t l4, h4;
                memcpy(&l4, aad, 4);
                memcpy(&h4, aad + take - 4, 4);
                lo = l4;
                hi = h4;
            } else {
                for (size_t i = 0; i < take; i++) lo |= (uint64_t)aad[i] << (8 * i);
            }
            v = _mm_shuffle_epi8(_mm_set_epi64x((long long)hi, (long long)lo),
                                 _mm_load_si128((const __m128i *)aad_shuf[take]));
        }
        *used = take;
        return _mm_or_si128(v, _mm_cvtsi32_si128((int)(((alen & 0xFF) << 8) | (alen >> 8))));
    }
    _Alignas(16) u8 blk[16];
    size_t p;
    memset(blk, 0, 16);
    if ((uint64_t)alen <= 0xFFFFFFFFu) {
        blk[0] = 0xFF; blk[1] = 0xFE;
        for (int i = 0; i < 4; i++) blk[2 + i] = (u8)((uint64_t)alen >> (24 - 8 * i));
        p = 6;
    } else {
        blk[0] = 0xFF; blk[1] = 0xFF;
        for (int i = 0; i < 8; i++) blk[2 + i] = (u8)((uint64_t)alen >> (56 - 8 * i));
        p = 10;
    }
    size_t take = 16 - p; /* alen >= 0xFF00 here */
    copy16(blk + p, aad, take);
    *used = take;
    return _mm_load_si128((const __m128i *)blk);
}

/* Constant-time check of a received M-byte tag against the computed tag block:
 * the tag is gathered into a register (two overlapping words, no byte loop) and
 * compared with one vector compare; no early exit.  Returns 0 when equal. */
static _Alignas(16) u8 tag_shuf[17][16];

static void init_tag_tables(void)
{
    for (int m = 4; m <= 16; m++) { /* CCM: even m; GCM: 4, 8, 12..16 */
        int w = m >= 8 ? 8 : 4;
        for (int i = 0; i < 16; i++)
            tag_shuf[m][i] = (u8)(i < m ? (i < w ? i : 8 + (i - (m - w))) : 0x80);
    }
}

INL int tag_mismatch(__m128i t, const u8 *tag, int M)
{
    uint64_t lo, hi;
    if (M >= 8) {
        memcpy(&lo, tag, 8);
        memcpy(&hi, tag + M - 8, 8);
    } else {
        uint32_t l4, h4;
        memcpy(&l4, tag, 4);
        memcpy(&h4, tag + M - 4, 4);
        lo = l4;
        hi = h4;
    }
    __m128i r = _mm_shuffle_epi8(_mm_set_epi64x((long long)hi, (long long)lo),
                                 _mm_load_si128((const __m128i *)tag_shuf[M]));
    /* bytes >= M: received side is 0 by the shuffle, computed side masked to 0 */
    __m128i mask = _mm_shuffle_epi8(_mm_set1_epi8(-1), _mm_load_si128((const __m128i *)tag_shuf[M]));
    __m128i d = _mm_xor_si128(_mm_and_si128(t, mask), r);
    return !_mm_testz_si128(d, d);
}

/* ---- single message (per-call API) ------------------------------------------ */

/* enc: out = C || T (len + M bytes).  dec: in = C, tag = received tag, out = P.
 * Returns 0 on success, -1 on tag mismatch (out zeroed). */
#define ROUNDS_1_9(rk, v)                                     \
    do {                                                      \
        for (int _i = 1; _i < 10; _i++) v = _mm_aesenc_si128(v, RK(rk, _i)); \
    } while (0)

/* Single message.  The CBC-MAC chain (latency-bound) runs with each next block
 * folded into the previous block's last round key (see cmac_raw); the keystream is
 * computed two blocks ahead in the same rounds, so on decrypt the next plaintext
 * block is known before the chain needs it.
 * enc: out = C || T (len + M bytes).  dec: in = C, tag = received tag, out = P.
 * Returns 0 on success, -1 on tag mismatch (out zeroed). */
INL int ccm_one_impl(const KeyObject *k, const u8 *nonce, int nlen, const u8 *aad, size_t alen,
                     const u8 *in, size_t len, u8 *out, const u8 *tag, int enc)
{
    const u8 *rk = k->rk;
    int M = k->tag_len;
    const __m128i bs = bswap_mask(), one = _mm_set_epi64x(0, 1);
    const __m128i r0 = RK(rk, 0), r10 = RK(rk, 10), r0r10 = _mm_xor_si128(r0, r10);
    __m128i b0;
    __m128i ctr = ccm_b0(nonce, nlen, alen, len, M, &b0); /* byte-swapped A0 */
    /* B0's rounds together with S0 = E(A0), ks1 = E(A1), ks2 = E(A2) */
    __m128i x = _mm_xor_si128(b0, r0);
    __m128i s0 = _mm_xor_si128(_mm_shuffle_epi8(ctr, bs), r0);
    ctr = _mm_add_epi64(ctr, one);
    __m128i ksa = _mm_xor_si128(_mm_shuffle_epi8(ctr, bs), r0);
    ctr = _mm_add_epi64(ctr, one);
    __m128i ksb = _mm_xor_si128(_mm_shuffle_epi8(ctr, bs), r0);
    for (int i = 1; i < 10; i++) {
        __m128i r = RK(rk, i);
        x = _mm_aesenc_si128(x, r);
        s0 = _mm_aesenc_si128(s0, r);
        ksa = _mm_aesenc_si128(ksa, r);
        ksb = _mm_aesenc_si128(ksb, r);
    }
    s0 = _mm_aesenclast_si128(s0, r10);
    ksa = _mm_aesenclast_si128(ksa, r10);
    ksb = _mm_aesenclast_si128(ksb, r10);
    /* x: the current block after rounds 1..9; "fold(b)" finishes it and starts b */
#define FOLD(b) x = _mm_aesenclast_si128(x, _mm_xor_si128((b), r0r10))
    if (alen) {
        size_t used;
        FOLD(ccm_aad_head(aad, alen, &used));
        ROUNDS_1_9(rk, x);
        const u8 *a = aad + used;
        size_t rem = alen - used;
        for (; rem >= 16; rem -= 16, a += 16) {
            FOLD(_mm_loadu_si128((const __m128i *)a));
            ROUNDS_1_9(rk, x);
        }
        if (rem) {
            FOLD(load_partial(a, rem));
            ROUNDS_1_9(rk, x);
        }
    }
    const __m128i idx = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (size_t off = 0; off < len; off += 16) {
        size_t r = len - off;
        __m128i c, o, p;
        if (r >= 16) {
            c = _mm_loadu_si128((const __m128i *)(in + off));
            o = _mm_xor_si128(c, ksa);
            _mm_storeu_si128((__m128i *)(out + off), o);
            p = enc ? c : o;
        } else {
            _Alignas(16) u8 t[16];
            c = load_partial(in + off, r);
            o = _mm_xor_si128(c, ksa);
            _mm_store_si128((__m128i *)t, o);
            copy16(out + off, t, r);
            wipe(t, sizeof t);
            p = enc ? c : _mm_and_si128(o, _mm_cmpgt_epi8(_mm_set1_epi8((char)r), idx));
        }
        FOLD(p);
        /* this block's rounds, and the keystream two blocks ahead */
        ctr = _mm_add_epi64(ctr, one);
        __m128i kn = _mm_xor_si128(_mm_shuffle_epi8(ctr, bs), r0);
        for (int i = 1; i < 10; i++) {
            __m128i rr = RK(rk, i);
            x = _mm_aesenc_si128(x, rr);
            kn = _mm_aesenc_si128(kn, rr);
        }
        ksa = ksb;
        ksb = _mm_aesenclast_si128(kn, r10);
    }
#undef FOLD
    x = _mm_aesenclast_si128(x, r10);
    __m128i tv = _mm_xor_si128(x, s0);
    if (enc) {
        _Alignas(16) u8 T[16];
        _mm_store_si128((__m128i *)T, tv);
        copy16(out + len, T, (size_t)M);
        return 0;
    }
    if (tag_mismatch(tv, tag, M)) {
        wipe(out, len);
        return -1;
    }
    return 0;
}

/* encrypt and decrypt specialised (enc is a compile-time constant in each) */
static TGT int ccm_one_enc(const KeyObject *k, const u8 *nonce, int nlen, const u8 *aad, size_t alen,
                           const u8 *in, size_t len, u8 *out)
{
    return ccm_one_impl(k, nonce, nlen, aad, alen, in, len, out, NULL, 1);
}

static TGT int ccm_one_dec(const KeyObject *k, const u8 *nonce, int nlen, const u8 *aad, size_t alen,
                           const u8 *in, size_t len, u8 *out, const u8 *tag)
{
    return ccm_one_impl(k, nonce, nlen, aad, alen, in, len, out, tag, 0);
}

static int ccm_one(const KeyObject *k, const u8 *nonce, int nlen, const u8 *aad, size_t alen,
                   const u8 *in, size_t len, u8 *out, const u8 *tag, int enc)
{
    return enc ? ccm_one_enc(k, nonce, nlen, aad, alen, in, len, out)
               : ccm_one_dec(k, nonce, nlen, aad, alen, in, len, out, tag);
}

/* ---- multi-buffer kernel (batch API) ------------------------------------------ */

/* Each of 4 lanes carries one message.  Per step, every lane advances its CBC-MAC
 * chain by one block and computes one CTR keystream block (A1..An, then A0 for the
 * tag mask), so 8 independent AES computations are in flight per step.  The CTR
 * side always runs ahead of the MAC side (the MAC first absorbs B0 and the AAD), so
 * on decrypt the plaintext block j exists before the MAC needs it.  A finished lane
 * is refilled at once, so mixed lengths and a different key per lane are fine. */

typedef struct {
    const KeyObject *key;
    const u8 *nonce;
    const u8 *aad;
    const u8 *in;   /* plaintext (enc) or ciphertext (dec) */
    const u8 *tag;  /* received tag (dec) */
    u8 *out;        /* ciphertext||tag (enc) or plaintext (dec) */
    size_t alen, len;
    int nlen;
    int status;     /* 0 ok, -1 tag mismatch, 1 skipped (no work) */
} job_t;

typedef struct {
    const u8 *p;
    size_t n; /* 16-byte blocks */
} run_t;

/* The MAC input of a lane is a list of runs of whole blocks: B0, the AAD head, the
 * AAD's full blocks (in place), its zero-padded tail, the payload's full blocks (in
 * place: plaintext input on encrypt, the plaintext output on decrypt) and its
 * zero-padded tail.  Irregular blocks live in `stage`, so fetching is one load. */
typedef struct {
    job_t *job;
    const u8 *rk;
    const u8 *mp;    /* current MAC run */
    size_t mn;
    size_t mac_left; /* MAC blocks still to absorb */
    int mr;          /* next run */
    run_t runs[6];
    __m128i ctr;     /* byte-swapped counter block of the next payload keystream block */
    __m128i a0;      /* counter block 0 (tag mask), not swapped */
    __m128i s0;
    size_t cfull;    /* full payload keystream blocks still to produce */
    size_t coff;     /* their byte offset */
    int ctail;       /* a partial payload block remains */
    int cs0;         /* the tag mask remains */
    _Alignas(16) u8 stage[4][16]; /* B0, AAD head, AAD tail, payload tail */
} lane_t;

static _Alignas(16) u8 dummy_rk[11 * 16];

INL __m128i lane_fetch(lane_t *l)
{
    if (l->mn == 0) {
        l->mp = l->runs[l->mr].p;
        l->mn = l->runs[l->mr].n;
        l->mr++;
    }
    __m128i b = _mm_loadu_si128((const __m128i *)l->mp);
    l->mp += 16;
    l->mn--;
    return b;
}

/* Touch the data of a job that will be loaded soon (key schedule, nonce, AAD, input),
 * so that its cache misses overlap with the current steps. */
INL void job_prefetch(const job_t *j)
{
    const u8 *rk = j->key->rk;
    __builtin_prefetch(rk);
    __builtin_prefetch(rk + 64);
    __builtin_prefetch(rk + 128);
    __builtin_prefetch(j->nonce);
    __builtin_prefetch(j->aad);
    __builtin_prefetch(j->in);
    __builtin_prefetch(j->out, 1);
}

static TGT void lane_load(lane_t *l, job_t *j, int enc)
{
    const __m128i one = _mm_set_epi64x(0, 1);
    __m128i b0;
    __m128i ctr = ccm_b0(j->nonce, j->nlen, j->alen, j->len, j->key->tag_len, &b0);
    _mm_store_si128((__m128i *)l->stage[0], b0);
    l->a0 = _mm_shuffle_epi8(ctr, bswap_mask());
    l->ctr = _mm_add_epi64(ctr, one);
    l->job = j;
    l->rk = j->key->rk;
    size_t nr = 0, total = 1;
    if (j->alen) {
        size_t used, rem, full;
        _mm_store_si128((__m128i *)l->stage[1], ccm_aad_head(j->aad, j->alen, &used));
        l->runs[nr].p = l->stage[1]; l->runs[nr++].n = 1;
        rem = j->alen - used;
        full = rem / 16;
        if (full) { l->runs[nr].p = j->aad + used; l->runs[nr++].n = full; }
        if (rem & 15) {
            _mm_store_si128((__m128i *)l->stage[2], load_partial(j->aad + used + 16 * full, rem & 15));
            l->runs[nr].p = l->stage[2]; l->runs[nr++].n = 1;
        }
        total += 1 + full + ((rem & 15) != 0);
    }
    size_t full = j->len / 16, tail = j->len & 15;
    if (full) { l->runs[nr].p = enc ? j->in : j->out; l->runs[nr++].n = full; }
    if (tail) {
        if (enc) _mm_store_si128((__m128i *)l->stage[3], load_partial(j->in + 16 * full, tail));
        l->runs[nr].p = l->stage[3]; l->runs[nr++].n = 1;
    }
    total += full + (tail != 0);
    l->mp = l->stage[0];
    l->mn = 1;
    l->mr = 0;
    l->mac_left = total;
    l->cfull = full;
    l->coff = 0;
    l->ctail = tail != 0;
    l->cs0 = 1;
}

/* counter block for this step's keystream (or the tag mask) */
INL __m128i lane_ctr_in(lane_t *l, const __m128i bs, const __m128i one)
{
    if (l->cfull | (size_t)l->ctail) {
        __m128i c = _mm_shuffle_epi8(l->ctr, bs);
        l->ctr = _mm_add_epi64(l->ctr, one);
        return c;
    }
    return l->a0;
}

static TGT void lane_ctr_tail(lane_t *l, __m128i ks, int enc)
{
    job_t *jb = l->job;
    size_t r = jb->len - l->coff;
    __m128i p = _mm_xor_si128(load_partial(jb->in + l->coff, r), ks);
    _Alignas(16) u8 t[16];
    _mm_store_si128((__m128i *)t, p);
    copy16(jb->out + l->coff, t, r);
    if (!enc) /* zero-padded plaintext for the MAC */
        _mm_store_si128((__m128i *)l->stage[3],
                        _mm_and_si128(p, _mm_cmpgt_epi8(_mm_set1_epi8((char)r),
                                                        _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))));
    wipe(t, sizeof t);
    l->ctail = 0;
}

INL void lane_ctr_out(lane_t *l, __m128i ks, int enc)
{
    if (l->cfull) {
        job_t *jb = l->job;
        size_t off = l->coff;
        _mm_storeu_si128((__m128i *)(jb->out + off),
                         _mm_xor_si128(_mm_loadu_si128((const __m128i *)(jb->in + off)), ks));
        l->coff = off + 16;
        l->cfull--;
    } else if (l->ctail) {
        lane_ctr_tail(l, ks, enc);
    } else if (l->cs0) {
        l->s0 = ks;
        l->cs0 = 0;
    }
}

static TGT void lane_finish(lane_t *l, __m128i x, int enc)
{
    job_t *j = l->job;
    int M = j->key->tag_len;
    __m128i tv = _mm_xor_si128(x, l->s0);
    if (enc) {
        _Alignas(16) u8 T[16];
        _mm_store_si128((__m128i *)T, tv);
        copy16(j->out + j->len, T, (size_t)M);
        j->status = 0;
    } else if (tag_mismatch(tv, j->tag, M)) {
        wipe(j->out, j->len);
        j->status = -1;
    } else {
        j->status = 0;
    }
    l->job = NULL;
    l->rk = dummy_rk;
}

/* Multi-buffer state: 4 lanes, the next job, the number of busy lanes. */
#define NL 4
typedef struct {
    lane_t lanes[NL];
    job_t *jobs;
    size_t n, next;
    int active, enc;
} mb_t;

INL void mb_refill(mb_t *m, lane_t *l)
{
    while (m->next < m->n && m->jobs[m->next].status == 1) m->next++;
    if (m->next < m->n) {
        lane_load(l, &m->jobs[m->next++], m->enc);
        m->active++;
        if (m->next + NL < m->n && m->jobs[m->next + NL].status != 1) job_prefetch(&m->jobs[m->next + NL]);
    }
}

INL void mb_init(mb_t *m, job_t *jobs, size_t n, int enc, __m128i *x)
{
    m->jobs = jobs;
    m->n = n;
    m->next = 0;
    m->active = 0;
    m->enc = enc;
#pragma GCC unroll 4
    for (int q = 0; q < NL; q++) {
        m->lanes[q].job = NULL;
        m->lanes[q].rk = dummy_rk;
        x[q] = _mm_setzero_si128();
        mb_refill(m, &m->lanes[q]);
    }
}

/* before the AES rounds of a step: MAC input block and counter block per lane */
INL void mb_in(mb_t *m, __m128i *x, __m128i *c, const u8 **k)
{
    const __m128i bs = bswap_mask(), one = _mm_set_epi64x(0, 1);
#pragma GCC unroll 4
    for (int q = 0; q < NL; q++) {
        lane_t *l = &m->lanes[q];
        k[q] = l->rk;
        c[q] = _mm_setzero_si128();
        if (l->job) {
            x[q] = _mm_xor_si128(x[q], lane_fetch(l));
            c[q] = lane_ctr_in(l, bs, one);
        }
    }
}

/* after the AES rounds: use the keystream, finish and refill lanes */
INL void mb_post(mb_t *m, __m128i *x, const __m128i *c)
{
#pragma GCC unroll 4
    for (int q = 0; q < NL; q++) {
        lane_t *l = &m->lanes[q];
        if (!l->job) continue;
        lane_ctr_out(l, c[q], m->enc);
        if (--l->mac_left == 0) {
            lane_finish(l, x[q], m->enc);
            m->active--;
            x[q] = _mm_setzero_si128();
            mb_refill(m, l);
        }
    }
}

/* AES-NI on xmm registers: 8 independent blocks per step. */
static TGT void ccm_many_xmm(job_t *jobs, size_t n, int enc)
{
    mb_t m;
    __m128i x[NL], c[NL];
    const u8 *k[NL];
    mb_init(&m, jobs, n, enc, x);
    while (m.active) {
        mb_in(&m, x, c, k);
#pragma GCC unroll 4
        for (int q = 0; q < NL; q++) {
            __m128i r = RK(k[q], 0);
            x[q] = _mm_xor_si128(x[q], r);
            c[q] = _mm_xor_si128(c[q], r);
        }
#pragma GCC unroll 9
        for (int i = 1; i < 10; i++) {
#pragma GCC unroll 4
            for (int q = 0; q < NL; q++) {
                __m128i r = RK(k[q], i);
                x[q] = _mm_aesenc_si128(x[q], r);
                c[q] = _mm_aesenc_si128(c[q], r);
            }
        }
#pragma GCC unroll 4
        for (int q = 0; q < NL; q++) {
            __m128i r = RK(k[q], 10);
            x[q] = _mm_aesenclast_si128(x[q], r);
            c[q] = _mm_aesenclast_si128(c[q], r);
        }
        mb_post(&m, x, c);
    }
}

/* VAES on ymm registers: a lane's MAC block and CTR block share the lane's key, so
 * they travel together in one 256-bit register (half the AES instructions). */
#define TGT_VAES __attribute__((target("aes,sse4.1,avx,avx2,vaes")))
static TGT_VAES void ccm_many_ymm(job_t *jobs, size_t n, int enc)
{
    mb_t m;
    __m128i x[NL], c[NL];
    const u8 *k[NL];
    mb_init(&m, jobs, n, enc, x);
    while (m.active) {
        mb_in(&m, x, c, k);
        __m256i v[NL];
#pragma GCC unroll 4
        for (int q = 0; q < NL; q++)
            v[q] = _mm256_xor_si256(_mm256_set_m128i(c[q], x[q]), _mm256_broadcastsi128_si256(RK(k[q], 0)));
#pragma GCC unroll 9
        for (int i = 1; i < 10; i++) {
#pragma GCC unroll 4
            for (int q = 0; q < NL; q++)
                v[q] = _mm256_aesenc_epi128(v[q], _mm256_broadcastsi128_si256(RK(k[q], i)));
        }
#pragma GCC unroll 4
        for (int q = 0; q < NL; q++) {
            v[q] = _mm256_aesenclast_epi128(v[q], _mm256_broadcastsi128_si256(RK(k[q], 10)));
            x[q] = _mm256_castsi256_si128(v[q]);
            c[q] = _mm256_extracti128_si256(v[q], 1);
        }
        mb_post(&m, x, c);
    }
    _mm256_zeroupper();
}

/* 4 lanes: 8 AES blocks in flight per step fill the AES unit while every MAC chain
 * waits on its own latency.  Measured no faster here: 5, 6 or 8 lanes, an AVX-512
 * build with 32 registers, and per-step descriptor windows without data-dependent
 * branches.  VAES (ymm) measured 20-30 % faster than xmm AES-NI and is picked at
 * import when the CPU has it (OSGP_CCM_KERNEL=xmm forces the xmm kernel). */
static int use_vaes = 0;

static void ccm_many(job_t *jobs, size_t n, int enc)
{
    if (use_vaes)
        ccm_many_ymm(jobs, n, enc);
    else
        ccm_many_xmm(jobs, n, enc);
}

#endif /* CCM_HAVE_X86 */

/* ---- AES-GCM (NIST SP 800-38D) with a 96-bit IV: AES-NI + PCLMULQDQ -------------- */

/* Field elements of GF(2^128) are kept "bit-reflected": a 16-byte block byte-reversed
 * into a register, so the coefficient of x^i sits at bit 127 - i.  The carry-less
 * product of two such values, read as a 256-bit reflected value, is a*b*x; the key
 * therefore stores h^k * x^-1 (k = 1..4), and clmul(y, that) is y*h^k exactly.
 * The 256-bit result U:L (U: degrees 0..127, L: degrees 128..255 divided by x^128)
 * is reduced with x^128 = x^7 + x^2 + x + 1:  T = L + (the bits L loses when shifted
 * right by 1, 2 and 7, folded back: L << 127, 126, 121), y = U + T + T>>1 + T>>2 + T>>7. */

typedef struct {
    PyObject_HEAD
    _Alignas(16) u8 rk[11 * 16]; /* AES-128 round keys */
    _Alignas(16) u8 hp[4][16];   /* h^1..h^4 times x^-1, reflected */
    int tag_len;
} GcmKeyObject;

#if CCM_HAVE_X86

#define TGT_GCM __attribute__((target("aes,sse4.1,pclmul")))
#define INLG static inline __attribute__((always_inline, target("aes,sse4.1,pclmul")))

/* acc += a * b, unreduced: lo (bits 0..127), mid (64..191), hi (128..255) */
INLG void clmul_acc(__m128i a, __m128i b, __m128i *lo, __m128i *mid, __m128i *hi)
{
    *lo = _mm_xor_si128(*lo, _mm_clmulepi64_si128(a, b, 0x00));
    *hi = _mm_xor_si128(*hi, _mm_clmulepi64_si128(a, b, 0x11));
    *mid = _mm_xor_si128(*mid, _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01),
                                             _mm_clmulepi64_si128(a, b, 0x10)));
}

INLG __m128i gf_reduce(__m128i lo, __m128i mid, __m128i hi)
{
    __m128i L = _mm_xor_si128(lo, _mm_slli_si128(mid, 8));
    __m128i U = _mm_xor_si128(hi, _mm_srli_si128(mid, 8));
    /* spill of L >> 1, 2, 7 (low lane bits moved to the top of the high lane) */
    __m128i s = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(L, 63), _mm_slli_epi64(L, 62)), _mm_slli_epi64(L, 57));
    __m128i T = _mm_xor_si128(L, _mm_slli_si128(s, 8));
    /* T >> 1 ^ T >> 2 ^ T >> 7 as 128-bit shifts: per lane, plus the high lane's carry */
    __m128i r = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(T, 1), _mm_srli_epi64(T, 2)), _mm_srli_epi64(T, 7));
    __m128i c = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(T, 63), _mm_slli_epi64(T, 62)), _mm_slli_epi64(T, 57));
    r = _mm_xor_si128(r, _mm_srli_si128(c, 8));
    return _mm_xor_si128(_mm_xor_si128(U, T), r);
}

INLG __m128i gf_mul(__m128i a, __m128i b)
{
    __m128i lo = _mm_setzero_si128(), mid = _mm_setzero_si128(), hi = _mm_setzero_si128();
    clmul_acc(a, b, &lo, &mid, &hi);
    return gf_reduce(lo, mid, hi);
}

/* GHASH over n bytes at p (the last partial block zero padded), continuing from y
 * (reflected).  Four blocks per reduction: y' = (y+X1)h^4 + X2 h^3 + X3 h^2 + X4 h. */
INLG __m128i ghash_update(const GcmKeyObject *k, __m128i y, const u8 *p, size_t n)
{
    const __m128i bs = bswap_mask();
    const __m128i h1 = _mm_load_si128((const __m128i *)k->hp[0]);
    if (n >= 64) {
        const __m128i h2 = _mm_load_si128((const __m128i *)k->hp[1]);
        const __m128i h3 = _mm_load_si128((const __m128i *)k->hp[2]);
        const __m128i h4 = _mm_load_si128((const __m128i *)k->hp[3]);
        for (; n >= 64; n -= 64, p += 64) {
            __m128i lo = _mm_setzero_si128(), mid = _mm_setzero_si128(), hi = _mm_setzero_si128();
            __m128i x1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), bs);
            __m128i x2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), bs);
            __m128i x3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), bs);
            __m128i x4 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), bs);
            clmul_acc(_mm_xor_si128(y, x1), h4, &lo, &mid, &hi);
            clmul_acc(x2, h3, &lo, &mid, &hi);
            clmul_acc(x3, h2, &lo, &mid, &hi);
            clmul_acc(x4, h1, &lo, &mid, &hi);
            y = gf_reduce(lo, mid, hi);
        }
    }
    for (; n >= 16; n -= 16, p += 16)
        y = gf_mul(_mm_xor_si128(y, _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), bs)), h1);
    if (n)
        y = gf_mul(_mm_xor_si128(y, _mm_shuffle_epi8(load_partial(p, n), bs)), h1);
    return y;
}

/* The full tag block: E(J0) + GHASH(A, C, [len(A)]64 || [len(C)]64), natural byte order. */
INLG __m128i gcm_tag(const GcmKeyObject *k, __m128i j0, const u8 *aad, size_t alen, const u8 *c, size_t clen)
{
    const __m128i h1 = _mm_load_si128((const __m128i *)k->hp[0]);
    __m128i ej0 = aes_enc(k->rk, j0); /* independent of the GHASH chain: overlaps it */
    __m128i y = _mm_setzero_si128();
    if (alen) y = ghash_update(k, y, aad, alen);
    if (clen) y = ghash_update(k, y, c, clen);
    /* the length block, reflected: high lane = bit length of A, low lane = of C */
    y = gf_mul(_mm_xor_si128(y, _mm_set_epi64x((long long)((uint64_t)alen << 3), (long long)((uint64_t)clen << 3))), h1);
    return _mm_xor_si128(_mm_shuffle_epi8(y, bswap_mask()), ej0);
}

/* IV || 0^32 in a register (12-byte load as 8 + 4, no over-read) */
INLG __m128i gcm_iv_block(const u8 *iv)
{
    uint64_t a;
    uint32_t b;
    memcpy(&a, iv, 8);
    memcpy(&b, iv + 8, 4);
    return _mm_set_epi64x((long long)b, (long long)a);
}

#define CTRB(base, j) _mm_insert_epi32((base), (int)__builtin_bswap32((uint32_t)(j)), 3)

/* CTR mode from counter 2 (inc32(J0)), four blocks at a time; the counter wraps mod 2^32. */
INLG void gcm_ctr(const GcmKeyObject *k, __m128i base, const u8 *in, size_t len, u8 *out)
{
    const u8 *rk = k->rk;
    uint32_t j = 2;
    for (; len >= 64; len -= 64, in += 64, out += 64, j += 4) {
        __m128i r = RK(rk, 0);
        __m128i a = _mm_xor_si128(CTRB(base, j), r), b = _mm_xor_si128(CTRB(base, j + 1), r);
        __m128i c = _mm_xor_si128(CTRB(base, j + 2), r), d = _mm_xor_si128(CTRB(base, j + 3), r);
        for (int i = 1; i < 10; i++) {
            r = RK(rk, i);
            a = _mm_aesenc_si128(a, r); b = _mm_aesenc_si128(b, r);
            c = _mm_aesenc_si128(c, r); d = _mm_aesenc_si128(d, r);
        }
        r = RK(rk, 10);
        a = _mm_aesenclast_si128(a, r); b = _mm_aesenclast_si128(b, r);
        c = _mm_aesenclast_si128(c, r); d = _mm_aesenclast_si128(d, r);
        _mm_storeu_si128((__m128i *)out, _mm_xor_si128(a, _mm_loadu_si128((const __m128i *)in)));
        _mm_storeu_si128((__m128i *)(out + 16), _mm_xor_si128(b, _mm_loadu_si128((const __m128i *)(in + 16))));
        _mm_storeu_si128((__m128i *)(out + 32), _mm_xor_si128(c, _mm_loadu_si128((const __m128i *)(in + 32))));
        _mm_storeu_si128((__m128i *)(out + 48), _mm_xor_si128(d, _mm_loadu_si128((const __m128i *)(in + 48))));
    }
    if (len > 16) { /* 17..63 bytes left: two blocks at a time */
        for (; len >= 32; len -= 32, in += 32, out += 32, j += 2) {
            __m128i a = CTRB(base, j), b = CTRB(base, j + 1);
            AES2(rk, a, b);
            _mm_storeu_si128((__m128i *)out, _mm_xor_si128(a, _mm_loadu_si128((const __m128i *)in)));
            _mm_storeu_si128((__m128i *)(out + 16), _mm_xor_si128(b, _mm_loadu_si128((const __m128i *)(in + 16))));
        }
        if (len > 16) {
            __m128i a = CTRB(base, j), b = CTRB(base, j + 1);
            AES2(rk, a, b);
            _mm_storeu_si128((__m128i *)out, _mm_xor_si128(a, _mm_loadu_si128((const __m128i *)in)));
            in += 16; out += 16; len -= 16; j++;
            _Alignas(16) u8 t[16];
            _mm_store_si128((__m128i *)t, _mm_xor_si128(b, load_partial(in, len)));
            copy16(out, t, len);
            wipe(t, sizeof t);
            return;
        }
    }
    if (len == 16) {
        _mm_storeu_si128((__m128i *)out, _mm_xor_si128(aes_enc(rk, CTRB(base, j)), _mm_loadu_si128((const __m128i *)in)));
    } else if (len) {
        _Alignas(16) u8 t[16];
        _mm_store_si128((__m128i *)t, _mm_xor_si128(aes_enc(rk, CTRB(base, j)), load_partial(in, len)));
        copy16(out, t, len);
        wipe(t, sizeof t);
    }
}

/* out = C || T (len + tag_len bytes) */
static TGT_GCM void gcm_encrypt(const GcmKeyObject *k, const u8 *iv, const u8 *aad, size_t alen,
                                const u8 *in, size_t len, u8 *out)
{
    __m128i base = gcm_iv_block(iv);
    gcm_ctr(k, base, in, len, out);
    _Alignas(16) u8 T[16];
    _mm_store_si128((__m128i *)T, gcm_tag(k, CTRB(base, 1), aad, alen, out, len));
    copy16(out + len, T, (size_t)k->tag_len);
}

/* in = C (len bytes), tag = the received tag.  The tag is checked (constant time)
 * before anything is deciphered: on a mismatch no plaintext is ever computed and -1
 * is returned; else out = P and 0. */
static TGT_GCM int gcm_decrypt(const GcmKeyObject *k, const u8 *iv, const u8 *aad, size_t alen,
                               const u8 *in, size_t len, const u8 *tag, u8 *out)
{
    __m128i base = gcm_iv_block(iv);
    if (tag_mismatch(gcm_tag(k, CTRB(base, 1), aad, alen, in, len), tag, k->tag_len)) return -1;
    gcm_ctr(k, base, in, len, out);
    return 0;
}

static TGT_GCM void gcm_key_setup(GcmKeyObject *k, const u8 *key)
{
    aes128_expand(k->rk, key);
    /* H = E(0^128), reflected; h * x^-1 = (H << 1) + (h0 ? x^127 + x^6 + x + 1 : 0) */
    _Alignas(16) uint64_t w[2];
    _mm_store_si128((__m128i *)w, _mm_shuffle_epi8(aes_enc(k->rk, _mm_setzero_si128()), bswap_mask()));
    uint64_t top = w[1] >> 63; /* bit 127: the coefficient of x^0 */
    uint64_t hi = (w[1] << 1) | (w[0] >> 63), lo = w[0] << 1;
    uint64_t m = 0u - top;
    hi ^= m & 0xC200000000000000ull;
    lo ^= m & 1u;
    __m128i h1 = _mm_set_epi64x((long long)hi, (long long)lo);
    __m128i hk = h1;
    _mm_store_si128((__m128i *)k->hp[0], h1);
    for (int i = 1; i < 4; i++) { /* (h^i x^-1)(h x^-1) x = h^(i+1) x^-1 */
        hk = gf_mul(hk, h1);
        _mm_store_si128((__m128i *)k->hp[i], hk);
    }
    wipe(w, sizeof w);
    hi = lo = 0;
    h1 = hk = _mm_setzero_si128();
}

#endif /* CCM_HAVE_X86 (GCM) */

/* ---- argument helpers -------------------------------------------------------- */

/* Raise dlms14908.errors.EncodeError(message, field=field); frame >= 0 prefixes the
 * batch frame index. */
static void local_error(const char *field, Py_ssize_t frame, const char *msg)
{
    PyObject *m = frame >= 0 ? PyUnicode_FromFormat("frame %zd: %s", frame, msg) : PyUnicode_FromString(msg);
    if (!m) return;
    PyObject *args = PyTuple_Pack(1, m);
    Py_DECREF(m);
    if (!args) return;
    PyObject *kw = Py_BuildValue("{s:s}", "field", field);
    if (!kw) { Py_DECREF(args); return; }
    PyObject *e = PyObject_Call(EncodeError, args, kw);
    Py_DECREF(args);
    Py_DECREF(kw);
    if (!e) return;
    PyErr_SetObject((PyObject *)Py_TYPE(e), e);
    Py_DECREF(e);
}


/* Item access: macros with the full API, functions under the limited API. */
#ifdef Py_LIMITED_API
#define TUP_ITEM(t, i) PyTuple_GetItem((t), (i))
#define LIST_ITEM(l, i) PyList_GetItem((l), (i))
#define LIST_SIZE(l) PyList_Size(l)
#define TUP_SIZE(t) PyTuple_Size(t)
#define LIST_SET(l, i, v) PyList_SetItem((l), (i), (v))
static inline int bytes_ptr(PyObject *o, const u8 **p, Py_ssize_t *n)
{
    char *s;
    if (PyBytes_AsStringAndSize(o, &s, n) < 0) return -1;
    *p = (const u8 *)s;
    return 0;
}
#define BYTES_WPTR(o) ((u8 *)PyBytes_AsString(o))
#else
#define TUP_ITEM(t, i) PyTuple_GET_ITEM((t), (i))
#define LIST_ITEM(l, i) PyList_GET_ITEM((l), (i))
#define LIST_SIZE(l) PyList_GET_SIZE(l)
#define TUP_SIZE(t) PyTuple_GET_SIZE(t)
#define LIST_SET(l, i, v) PyList_SET_ITEM((l), (i), (v))
static inline int bytes_ptr(PyObject *o, const u8 **p, Py_ssize_t *n)
{
    *p = (const u8 *)PyBytes_AS_STRING(o);
    *n = PyBytes_GET_SIZE(o);
    return 0;
}
#define BYTES_WPTR(o) ((u8 *)PyBytes_AS_STRING(o))
#endif


typedef struct {
    const u8 *p;
    Py_ssize_t n;
    Py_buffer view;
    int has_view;
} arg_t;

static int get_buf(PyObject *o, arg_t *a, const char *what)
{
    a->has_view = 0;
    if (PyBytes_CheckExact(o)) return bytes_ptr(o, &a->p, &a->n);
    if (PyObject_GetBuffer(o, &a->view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a bytes-like object", what);
        return -1;
    }
    a->has_view = 1;
    a->p = (const u8 *)a->view.buf;
    a->n = a->view.len;
    return 0;
}

static void rel_buf(arg_t *a)
{
    if (a->has_view) {
        PyBuffer_Release(&a->view);
        a->has_view = 0;
    }
}

/* positional-or-keyword parsing for METH_FASTCALL|METH_KEYWORDS */
static int parse_fast(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *const *names,
                      int nreq, int ntot, PyObject **out, const char *fname)
{
    for (int i = 0; i < ntot; i++) out[i] = NULL;
    if (nargs > ntot) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments", fname, ntot);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) out[i] = args[i];
    if (kwnames) {
        Py_ssize_t nk = PyTuple_Size(kwnames);
        for (Py_ssize_t k = 0; k < nk; k++) {
            PyObject *name = PyTuple_GetItem(kwnames, k);
            int found = 0;
            for (int i = 0; i < ntot; i++) {
                if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) {
                    if (out[i]) {
                        PyErr_Format(PyExc_TypeError, "%s() got multiple values for '%s'", fname, names[i]);
                        return -1;
                    }
                    out[i] = args[nargs + k];
                    found = 1;
                    break;
                }
            }
            if (!found) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, name);
                return -1;
            }
        }
    }
    for (int i = 0; i < nreq; i++) {
        if (!out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

static int check_nonce(Py_ssize_t nlen, Py_ssize_t plen, Py_ssize_t frame)
{
    if (nlen < 7 || nlen > 13) {
        local_error("nonce", frame, "nonce must be 7..13 bytes");
        return -1;
    }
    int L = 15 - (int)nlen;
    if (L < 8 && ((uint64_t)plen >> (8 * L)) != 0) {
        local_error("data", frame, "payload too long for this nonce length (must be < 2^(8L))");
        return -1;
    }
    return 0;
}

/* ---- Key type ------------------------------------------------------------------ */

/* (key, tag_length=default) of both key types: the 16 key bytes copied into ``key`` (the
 * caller wipes them), ``*tag_len`` -1 for anything that is no int in 0..16 (a ValueError, as in
 * the fallback); -1 with the exception set when the arguments do not parse or the key is no
 * AES-128 key. */
static int parse_key_args(PyObject *args, PyObject *kwds, const char *fmt, int default_tag,
                          u8 key[16], int *tag_len)
{
    static char *kwlist[] = {"key", "tag_length", NULL};
    Py_buffer kb;
    PyObject *tl = NULL;
    *tag_len = default_tag;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, &kb, &tl)) return -1;
    if (tl) { /* any int (also a huge one) or non-int is a ValueError, as in the fallback */
        int ovf = 0;
        long v = PyLong_Check(tl) ? PyLong_AsLongAndOverflow(tl, &ovf) : -1;
        if (v == -1 && PyErr_Occurred()) PyErr_Clear();
        *tag_len = (ovf || v < 0 || v > 16) ? -1 : (int)v;
    }
    if (kb.len != 16) {
        PyBuffer_Release(&kb);
        local_error("key", -1, "key must be 16 bytes (AES-128)");
        return -1;
    }
    memcpy(key, kb.buf, 16);
    PyBuffer_Release(&kb);
    return 0;
}

static PyObject *Key_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    u8 key[16];
    int tag_len;
    if (parse_key_args(args, kwds, "y*|O:Key", 8, key, &tag_len) < 0) return NULL;
    if (tag_len < 4 || tag_len > 16 || (tag_len & 1)) {
        wipe(key, sizeof key);
        local_error("tag_length", -1, "tag_length must be one of 4, 6, 8, 10, 12, 14, 16");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    KeyObject *self = (KeyObject *)alloc(type, 0);
    if (!self) {
        wipe(key, sizeof key);
        return NULL;
    }
    self->tag_len = tag_len;
#if CCM_HAVE_X86
    key_setup(self, key);
#endif
    wipe(key, sizeof key);
    return (PyObject *)self;
}

static void Key_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    KeyObject *k = (KeyObject *)self;
    wipe(k->rk, sizeof k->rk);
    wipe(k->k1, sizeof k->k1);
    wipe(k->k2, sizeof k->k2);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(self);
    Py_DECREF(tp);
}

static PyObject *Key_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<osgp._ccm.Key tag_length=%d>", ((KeyObject *)self)->tag_len);
}

static PyObject *Key_get_tag_length(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(((KeyObject *)self)->tag_len);
}

static const char *const crypt_names[] = {"nonce", "data", "associated_data"};

static PyObject *key_crypt(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int enc)
{
    KeyObject *k = (KeyObject *)self;
    PyObject *o[3];
    if (parse_fast(args, nargs, kwnames, crypt_names, 2, 3, o, enc ? "encrypt" : "decrypt") < 0) return NULL;
    arg_t an, ad, aa;
    aa.has_view = 0; aa.p = NULL; aa.n = 0;
    PyObject *res = NULL;
    if (get_buf(o[0], &an, "nonce") < 0) return NULL;
    if (get_buf(o[1], &ad, "data") < 0) { rel_buf(&an); return NULL; }
    if (o[2] && o[2] != Py_None && get_buf(o[2], &aa, "associated_data") < 0) goto done;
    Py_ssize_t M = k->tag_len;
    Py_ssize_t plen = enc ? ad.n : ad.n - M;
    if (an.n < 7 || an.n > 13) { check_nonce(an.n, 0, -1); goto done; }
    if (plen < 0) { PyErr_SetNone(InvalidTag); goto done; }
    if (check_nonce(an.n, plen, -1) < 0) goto done;
    res = PyBytes_FromStringAndSize(NULL, enc ? plen + M : plen);
    if (!res) goto done;
    {
        u8 *out = BYTES_WPTR(res);
        int rc = 0;
#if CCM_HAVE_X86
        if (plen + aa.n >= GIL_RELEASE_BYTES) {
            Py_BEGIN_ALLOW_THREADS
            rc = ccm_one(k, an.p, (int)an.n, aa.p, (size_t)aa.n, ad.p, (size_t)plen, out, ad.p + plen, enc);
            Py_END_ALLOW_THREADS
        } else {
            rc = ccm_one(k, an.p, (int)an.n, aa.p, (size_t)aa.n, ad.p, (size_t)plen, out, ad.p + plen, enc);
        }
#else
        rc = -1;
#endif
        if (rc) {
            Py_CLEAR(res);
            PyErr_SetNone(InvalidTag);
        }
    }
done:
    rel_buf(&an); rel_buf(&ad); rel_buf(&aa);
    return res;
}

static const char *const into_names[] = {"nonce", "data", "associated_data", "buf"};

/* encrypt_into / decrypt_into: like cryptography's AESCCM, `buf` must be exactly the
 * output length; on a tag mismatch the plaintext written to `buf` is zeroed. */
static PyObject *key_crypt_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int enc)
{
    KeyObject *k = (KeyObject *)self;
    PyObject *o[4];
    if (parse_fast(args, nargs, kwnames, into_names, 4, 4, o, enc ? "encrypt_into" : "decrypt_into") < 0)
        return NULL;
    arg_t an, ad, aa;
    Py_buffer ob;
    int have_ob = 0;
    aa.has_view = 0; aa.p = NULL; aa.n = 0;
    PyObject *res = NULL;
    if (get_buf(o[0], &an, "nonce") < 0) return NULL;
    if (get_buf(o[1], &ad, "data") < 0) { rel_buf(&an); return NULL; }
    if (o[2] != Py_None && get_buf(o[2], &aa, "associated_data") < 0) goto done;
    if (PyObject_GetBuffer(o[3], &ob, PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "buf must be a writable bytes-like object");
        goto done;
    }
    have_ob = 1;
    Py_ssize_t M = k->tag_len;
    Py_ssize_t plen = enc ? ad.n : ad.n - M;
    if (an.n < 7 || an.n > 13) { check_nonce(an.n, 0, -1); goto done; }
    if (plen < 0) { PyErr_SetNone(InvalidTag); goto done; }
    if (check_nonce(an.n, plen, -1) < 0) goto done;
    Py_ssize_t need = enc ? plen + M : plen;
    if (ob.len != need) {
        local_error("buf", -1, "buf must be exactly the output length");
        goto done;
    }
    {
        u8 *out = (u8 *)ob.buf;
        int rc;
#if CCM_HAVE_X86
        Py_BEGIN_ALLOW_THREADS
        rc = ccm_one(k, an.p, (int)an.n, aa.p, (size_t)aa.n, ad.p, (size_t)plen, out, ad.p + plen, enc);
        Py_END_ALLOW_THREADS
#else
        rc = -1;
#endif
        if (rc)
            PyErr_SetNone(InvalidTag);
        else
            res = PyLong_FromSsize_t(need);
    }
done:
    if (have_ob) PyBuffer_Release(&ob);
    rel_buf(&an); rel_buf(&ad); rel_buf(&aa);
    return res;
}

static PyObject *Key_encrypt_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return key_crypt_into(self, args, nargs, kwnames, 1);
}

static PyObject *Key_decrypt_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return key_crypt_into(self, args, nargs, kwnames, 0);
}

static PyObject *Key_encrypt(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return key_crypt(self, args, nargs, kwnames, 1);
}

static PyObject *Key_decrypt(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return key_crypt(self, args, nargs, kwnames, 0);
}

static PyObject *Key_cmac(PyObject *self, PyObject *arg)
{
    arg_t a;
    if (get_buf(arg, &a, "data") < 0) return NULL;
    PyObject *res = PyBytes_FromStringAndSize(NULL, 16);
    if (res) {
#if CCM_HAVE_X86
        cmac_raw((KeyObject *)self, a.p, (size_t)a.n, BYTES_WPTR(res));
#else
        memset(BYTES_WPTR(res), 0, 16);
#endif
    }
    rel_buf(&a);
    return res;
}

static PyObject *Key_cmac_verify(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "cmac_verify() takes exactly two arguments");
        return NULL;
    }
    arg_t a, tg;
    if (get_buf(args[0], &a, "data") < 0) return NULL;
    if (get_buf(args[1], &tg, "tag") < 0) { rel_buf(&a); return NULL; }
    if (tg.n < 4 || tg.n > 16) {
        rel_buf(&a); rel_buf(&tg);
        local_error("tag", -1, "CMAC tag must be 4..16 bytes");
        return NULL;
    }
    u8 t[16], diff = 0;
#if CCM_HAVE_X86
    cmac_raw((KeyObject *)self, a.p, (size_t)a.n, t);
#else
    memset(t, 0, 16);
    diff = 1;
#endif
    for (Py_ssize_t i = 0; i < tg.n; i++) diff |= (u8)(t[i] ^ tg.p[i]);
    wipe(t, sizeof t);
    rel_buf(&a); rel_buf(&tg);
    return PyBool_FromLong(diff == 0);
}

static PyMethodDef Key_methods[] = {
    {"encrypt", (PyCFunction)(void (*)(void))Key_encrypt, METH_FASTCALL | METH_KEYWORDS,
     "encrypt(nonce, data, associated_data=None) -> ciphertext || tag"},
    {"decrypt", (PyCFunction)(void (*)(void))Key_decrypt, METH_FASTCALL | METH_KEYWORDS,
     "decrypt(nonce, data, associated_data=None) -> plaintext; raises InvalidTag"},
    {"encrypt_into", (PyCFunction)(void (*)(void))Key_encrypt_into, METH_FASTCALL | METH_KEYWORDS,
     "encrypt_into(nonce, data, associated_data, buf) -> bytes written; buf is exactly len(data) + tag"},
    {"decrypt_into", (PyCFunction)(void (*)(void))Key_decrypt_into, METH_FASTCALL | METH_KEYWORDS,
     "decrypt_into(nonce, data, associated_data, buf) -> bytes written; raises InvalidTag and zeroes buf"},
    {"cmac", Key_cmac, METH_O, "cmac(data) -> 16-byte AES-CMAC"},
    {"cmac_verify", (PyCFunction)(void (*)(void))Key_cmac_verify, METH_FASTCALL,
     "cmac_verify(data, tag) -> bool (constant time; tag 4..16 bytes, truncated CMAC)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Key_getset[] = {
    {"tag_length", Key_get_tag_length, NULL, "CCM tag length in bytes", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Key_slots[] = {
    {Py_tp_new, Key_new},
    {Py_tp_dealloc, Key_dealloc},
    {Py_tp_repr, Key_repr},
    {Py_tp_methods, Key_methods},
    {Py_tp_getset, Key_getset},
    {Py_tp_doc, "Key(key, tag_length=8): AES-128 key for CCM (SP 800-38C) and CMAC (RFC 4493), AES-NI."},
    {0, NULL},
};

static PyType_Spec Key_spec = {
    "osgp._ccm.Key", sizeof(KeyObject), 0, Py_TPFLAGS_DEFAULT, Key_slots,
};

/* ---- GcmKey type ----------------------------------------------------------------- */

/* SP 800-38D §5.2.1.2: 128, 120, 112, 104, 96 bits, and 64 or 32 for special uses */
static int gcm_tag_ok(int t)
{
    return (t >= 12 && t <= 16) || t == 8 || t == 4;
}

/* plaintext at most 2^39 - 256 bits, AAD at most 2^64 - 1 bits (SP 800-38D §5.2.1.1) */
#define GCM_MAX_TEXT ((((uint64_t)1) << 36) - 32)
#define GCM_MAX_AAD ((((uint64_t)1) << 61) - 1)

static PyObject *GcmKey_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    u8 key[16];
    int tag_len;
    if (parse_key_args(args, kwds, "y*|O:GcmKey", 16, key, &tag_len) < 0) return NULL;
    if (!gcm_tag_ok(tag_len)) {
        wipe(key, sizeof key);
        local_error("tag_length", -1, "tag_length must be one of 4, 8, 12, 13, 14, 15, 16");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    GcmKeyObject *self = (GcmKeyObject *)alloc(type, 0);
    if (!self) {
        wipe(key, sizeof key);
        return NULL;
    }
    self->tag_len = tag_len;
#if CCM_HAVE_X86
    gcm_key_setup(self, key);
#endif
    wipe(key, sizeof key);
    return (PyObject *)self;
}

static void GcmKey_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    GcmKeyObject *k = (GcmKeyObject *)self;
    wipe(k->rk, sizeof k->rk);
    wipe(k->hp, sizeof k->hp);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(self);
    Py_DECREF(tp);
}

static PyObject *GcmKey_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<osgp._ccm.GcmKey tag_length=%d>", ((GcmKeyObject *)self)->tag_len);
}

static PyObject *GcmKey_get_tag_length(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(((GcmKeyObject *)self)->tag_len);
}

static PyObject *gcm_crypt(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int enc)
{
    GcmKeyObject *k = (GcmKeyObject *)self;
    PyObject *o[3];
    if (kwnames == NULL && nargs == 3) { /* the common call: three positional arguments */
        o[0] = args[0]; o[1] = args[1]; o[2] = args[2];
    } else if (parse_fast(args, nargs, kwnames, crypt_names, 2, 3, o, enc ? "encrypt" : "decrypt") < 0) {
        return NULL;
    }
    arg_t an, ad, aa;
    aa.has_view = 0; aa.p = NULL; aa.n = 0;
    PyObject *res = NULL;
    if (get_buf(o[0], &an, "nonce") < 0) return NULL;
    if (get_buf(o[1], &ad, "data") < 0) { rel_buf(&an); return NULL; }
    if (o[2] && o[2] != Py_None && get_buf(o[2], &aa, "associated_data") < 0) goto done;
    Py_ssize_t M = k->tag_len;
    Py_ssize_t plen = enc ? ad.n : ad.n - M;
    if (an.n != 12) {
        local_error("nonce", -1, "nonce must be 12 bytes (96-bit IV)");
        goto done;
    }
    if ((uint64_t)aa.n > GCM_MAX_AAD) {
        local_error("associated_data", -1, "associated data too long for GCM (2^64 - 1 bits)");
        goto done;
    }
    if (plen < 0) { PyErr_SetNone(InvalidTag); goto done; }
    if ((uint64_t)plen > GCM_MAX_TEXT) {
        local_error("data", -1, "payload too long for GCM (2^39 - 256 bits)");
        goto done;
    }
    res = PyBytes_FromStringAndSize(NULL, enc ? plen + M : plen);
    if (!res) goto done;
    {
        u8 *out = BYTES_WPTR(res);
        int rc = 0;
#if CCM_HAVE_X86
        if (plen + aa.n >= GIL_RELEASE_BYTES) {
            Py_BEGIN_ALLOW_THREADS
            if (enc) gcm_encrypt(k, an.p, aa.p, (size_t)aa.n, ad.p, (size_t)plen, out);
            else rc = gcm_decrypt(k, an.p, aa.p, (size_t)aa.n, ad.p, (size_t)plen, ad.p + plen, out);
            Py_END_ALLOW_THREADS
        } else if (enc) {
            gcm_encrypt(k, an.p, aa.p, (size_t)aa.n, ad.p, (size_t)plen, out);
        } else {
            rc = gcm_decrypt(k, an.p, aa.p, (size_t)aa.n, ad.p, (size_t)plen, ad.p + plen, out);
        }
#else
        rc = -1;
#endif
        if (rc) { /* nothing was deciphered into `out`; it is dropped unseen */
            Py_CLEAR(res);
            PyErr_SetNone(InvalidTag);
        }
    }
done:
    rel_buf(&an); rel_buf(&ad); rel_buf(&aa);
    return res;
}

static PyObject *GcmKey_encrypt(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return gcm_crypt(self, args, nargs, kwnames, 1);
}

static PyObject *GcmKey_decrypt(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return gcm_crypt(self, args, nargs, kwnames, 0);
}

static PyMethodDef GcmKey_methods[] = {
    {"encrypt", (PyCFunction)(void (*)(void))GcmKey_encrypt, METH_FASTCALL | METH_KEYWORDS,
     "encrypt(nonce, data, associated_data=None) -> ciphertext || tag (nonce: 12 bytes)"},
    {"decrypt", (PyCFunction)(void (*)(void))GcmKey_decrypt, METH_FASTCALL | METH_KEYWORDS,
     "decrypt(nonce, data, associated_data=None) -> plaintext; data is ciphertext || tag; raises InvalidTag"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef GcmKey_getset[] = {
    {"tag_length", GcmKey_get_tag_length, NULL, "GCM tag length in bytes", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot GcmKey_slots[] = {
    {Py_tp_new, GcmKey_new},
    {Py_tp_dealloc, GcmKey_dealloc},
    {Py_tp_repr, GcmKey_repr},
    {Py_tp_methods, GcmKey_methods},
    {Py_tp_getset, GcmKey_getset},
    {Py_tp_doc, "GcmKey(key, tag_length=16): AES-128 key for GCM (SP 800-38D, 96-bit IV), AES-NI + PCLMULQDQ."},
    {0, NULL},
};

static PyType_Spec GcmKey_spec = {
    "osgp._ccm.GcmKey", sizeof(GcmKeyObject), 0, Py_TPFLAGS_DEFAULT, GcmKey_slots,
};

/* ---- batch API ------------------------------------------------------------------- */

/* A bytes object with `o`'s content: `o` itself (borrowed) when it is bytes, else a
 * copy kept alive by *copies (created on first use), so that the data stays fixed
 * while the GIL is released. */
static PyObject *frame_bytes(PyObject *o, PyObject **copies, Py_ssize_t i, const char *what)
{
    if (PyBytes_CheckExact(o)) return o;
    if (!PyObject_CheckBuffer(o)) {
        PyErr_Format(PyExc_TypeError, "frame %zd: %s must be a bytes-like object", i, what);
        return NULL;
    }
    if (!*copies && !(*copies = PyList_New(0))) return NULL;
    PyObject *b = PyBytes_FromObject(o);
    if (!b) return NULL;
    int rc = PyList_Append(*copies, b);
    Py_DECREF(b); /* the list keeps it */
    return rc < 0 ? NULL : b;
}

/* Slow path of a batch frame whose data is not bytes: check the nonce and the payload
 * length on the buffer first (a huge payload that is refused anyway is not copied), then
 * copy it like frame_bytes. */
#if defined(__GNUC__) || defined(__clang__)
#define CCM_NOINLINE __attribute__((noinline))
#else
#define CCM_NOINLINE
#endif
static CCM_NOINLINE PyObject *frame_data_copy(PyObject *draw, PyObject *no, const KeyObject *k, int enc,
                                              PyObject **copies, Py_ssize_t i)
{
    if (PyObject_CheckBuffer(draw)) {
        Py_buffer v;
        const u8 *np;
        Py_ssize_t nl0;
        if (bytes_ptr(no, &np, &nl0) < 0) return NULL;
        if (PyObject_GetBuffer(draw, &v, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "frame %zd: data must be a bytes-like object", i);
            return NULL;
        }
        Py_ssize_t pl0 = enc ? v.len : v.len - k->tag_len;
        PyBuffer_Release(&v);
        if (check_nonce(nl0, pl0 < 0 ? 0 : pl0, i) < 0) return NULL;
    }
    return frame_bytes(draw, copies, i, "data");
}

static PyObject *batch(PyObject *frames, int enc)
{
    int is_list = PyList_Check(frames);
    Py_ssize_t n = PySequence_Size(frames);
    if (n < 0) return NULL;
    job_t *jobs = NULL;
    PyObject **refs = NULL; /* 2 per frame: the frame tuple (keeps its items alive), the output */
    PyObject *copies = NULL;
    PyObject *result = NULL;
    Py_ssize_t filled = 0;
    if (n == 0) return PyList_New(0);
    jobs = PyMem_Malloc((size_t)n * sizeof(job_t));
    refs = PyMem_Malloc((size_t)n * 2 * sizeof(PyObject *));
    if (!jobs || !refs) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject **r = refs + 2 * i;
        job_t *j = &jobs[i];
        PyObject *fr;
        if (is_list) {
            if (i >= LIST_SIZE(frames)) { /* cannot shrink while we hold the GIL, but be safe */
                PyErr_SetString(PyExc_RuntimeError, "frames changed size");
                goto done;
            }
            fr = LIST_ITEM(frames, i);
            Py_INCREF(fr);
        } else {
            fr = PySequence_GetItem(frames, i);
            if (!fr) goto done;
        }
        r[0] = fr;
        r[1] = NULL;
        filled = i + 1;
        j->status = 1;
        if (!PyTuple_Check(fr) || TUP_SIZE(fr) != 4) {
            PyErr_Format(PyExc_TypeError, "frame %zd: expected a (key, nonce, data, aad) tuple", i);
            goto done;
        }
        PyObject *ko = TUP_ITEM(fr, 0);
        if (Py_TYPE(ko) != KeyType) {
            PyErr_Format(PyExc_TypeError, "frame %zd: key must be an osgp._ccm.Key", i);
            goto done;
        }
        KeyObject *k = (KeyObject *)ko;
        PyObject *no = frame_bytes(TUP_ITEM(fr, 1), &copies, i, "nonce");
        if (!no) goto done;
        PyObject *draw = TUP_ITEM(fr, 2);
        PyObject *dobj = PyBytes_CheckExact(draw) ? draw : frame_data_copy(draw, no, k, enc, &copies, i);
        if (!dobj) goto done;
        PyObject *ao = TUP_ITEM(fr, 3);
        Py_ssize_t nl, dl, al = 0;
        j->aad = NULL;
        if (ao != Py_None) {
            ao = frame_bytes(ao, &copies, i, "aad");
            if (!ao || bytes_ptr(ao, &j->aad, &al) < 0) goto done;
        }
        if (bytes_ptr(no, &j->nonce, &nl) < 0 || bytes_ptr(dobj, &j->in, &dl) < 0) goto done;
        j->key = k;
        j->alen = (size_t)al;
        j->nlen = (int)nl;
        Py_ssize_t plen = enc ? dl : dl - k->tag_len;
        if (check_nonce(nl, plen < 0 ? 0 : plen, i) < 0) goto done;
        if (plen < 0) continue; /* shorter than the tag: fails, no work (status 1) */
        j->len = (size_t)plen;
        j->tag = j->in + plen;
        r[1] = PyBytes_FromStringAndSize(NULL, enc ? plen + k->tag_len : plen);
        if (!r[1]) goto done;
        j->out = BYTES_WPTR(r[1]);
        j->status = 0;
    }
#if CCM_HAVE_X86
    Py_BEGIN_ALLOW_THREADS
    ccm_many(jobs, (size_t)n, enc);
    Py_END_ALLOW_THREADS
#endif
    result = PyList_New(n);
    if (!result) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v;
        if (jobs[i].status == 0) {
            v = refs[2 * i + 1];
            refs[2 * i + 1] = NULL; /* stolen by the list */
        } else {
            v = Py_None;
            Py_INCREF(v);
        }
        LIST_SET(result, i, v);
    }
done:
    if (refs) {
        for (Py_ssize_t i = 0; i < filled; i++) {
            Py_XDECREF(refs[2 * i]);
            Py_XDECREF(refs[2 * i + 1]);
        }
        PyMem_Free(refs);
    }
    Py_XDECREF(copies);
    PyMem_Free(jobs);
    return result;
}

static PyObject *mod_encrypt_batch(PyObject *m, PyObject *frames)
{
    (void)m;
    return batch(frames, 1);
}

static PyObject *mod_decrypt_batch(PyObject *m, PyObject *frames)
{
    (void)m;
    return batch(frames, 0);
}

static PyMethodDef module_methods[] = {
    {"encrypt_batch", mod_encrypt_batch, METH_O,
     "encrypt_batch(frames) -> list[bytes]; frames: sequence of (Key, nonce, plaintext, aad|None)"},
    {"decrypt_batch", mod_decrypt_batch, METH_O,
     "decrypt_batch(frames) -> list[bytes|None]; frames: sequence of (Key, nonce, ciphertext||tag, aad|None); "
     "None where the tag does not verify"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef ccm_module = {
    PyModuleDef_HEAD_INIT, "osgp._ccm",
    "AES-128-CCM (SP 800-38C) and AES-CMAC (RFC 4493) with AES-NI for OSGP-AES-128-PSK; "
    "AES-128-GCM (SP 800-38D) with AES-NI + PCLMULQDQ for DLMS security suite 0.",
    -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ccm(void)
{
#if CCM_HAVE_X86
    init_tables();
    init_aad_tables();
    init_tag_tables();
    init_part_tables();
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("aes") || !__builtin_cpu_supports("sse4.1")) {
        PyErr_SetString(PyExc_ImportError, "osgp._ccm: CPU has no AES-NI/SSE4.1");
        return NULL;
    }
    {
        /* OSGP_CCM_ASSUME_NO_AESNI=1 takes the same exit as a CPU without AES-NI, so the
         * import-failure path into the `cryptography` fallback can be tested anywhere. */
        const char *no = getenv("OSGP_CCM_ASSUME_NO_AESNI");
        if (no && *no && strcmp(no, "0") != 0) {
            PyErr_SetString(PyExc_ImportError, "osgp._ccm: CPU has no AES-NI/SSE4.1 (OSGP_CCM_ASSUME_NO_AESNI)");
            return NULL;
        }
    }
#else
    PyErr_SetString(PyExc_ImportError, "osgp._ccm: built without AES-NI support");
    return NULL;
#endif
    if (!EncodeError) {
        PyObject *em = PyImport_ImportModule("dlms14908.errors");
        if (!em) return NULL;
        EncodeError = PyObject_GetAttrString(em, "EncodeError");
        Py_DECREF(em);
        if (!EncodeError) return NULL;
    }
    {
        const char *kern = getenv("OSGP_CCM_KERNEL");
        use_vaes = !(kern && strcmp(kern, "xmm") == 0) && __builtin_cpu_supports("avx2") &&
                   __builtin_cpu_supports("vaes");
    }
    PyObject *errmod = PyImport_ImportModule("osgp._ccm_errors");
    if (!errmod) return NULL;
    PyObject *it = PyObject_GetAttrString(errmod, "InvalidTag");
    Py_DECREF(errmod);
    if (!it) return NULL;
    PyObject *m = PyModule_Create(&ccm_module);
    if (!m) { Py_DECREF(it); return NULL; }
    PyTypeObject *kt = (PyTypeObject *)PyType_FromSpec(&Key_spec);
    if (!kt) goto fail;
    /* kt and it: one reference each kept in the globals, one added to the module */
    if (PyModule_AddObjectRef(m, "Key", (PyObject *)kt) < 0) goto fail;
    if (PyModule_AddObjectRef(m, "InvalidTag", it) < 0) goto fail;
    if (PyModule_AddObjectRef(m, "HAVE_AESNI", Py_True) < 0) goto fail;
    if (PyModule_AddStringConstant(m, "KERNEL", use_vaes ? "vaes-ymm" : "aesni-xmm") < 0) goto fail;
    {
        /* GcmKey needs PCLMULQDQ as well; without it (or with OSGP_CCM_ASSUME_NO_PCLMULQDQ=1,
         * for tests) the module has no GcmKey and osgp.ccm uses the `cryptography` GCM. */
        const char *np = getenv("OSGP_CCM_ASSUME_NO_PCLMULQDQ");
        int have_pclmul = __builtin_cpu_supports("pclmul") && !(np && *np && strcmp(np, "0") != 0);
        if (PyModule_AddObjectRef(m, "HAVE_PCLMULQDQ", have_pclmul ? Py_True : Py_False) < 0) goto fail;
        if (have_pclmul) {
            PyObject *gt = PyType_FromSpec(&GcmKey_spec);
            if (!gt) goto fail;
            int rc = PyModule_AddObjectRef(m, "GcmKey", gt);
            Py_DECREF(gt);
            if (rc < 0) goto fail;
        }
    }
    Py_XDECREF((PyObject *)KeyType);
    KeyType = kt;
    Py_XDECREF(InvalidTag);
    InvalidTag = it;
    return m;
fail:
    Py_XDECREF((PyObject *)kt);
    Py_DECREF(it);
    Py_DECREF(m);
    return NULL;
}
