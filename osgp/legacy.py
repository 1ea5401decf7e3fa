"""Legacy OSGP security (pre-AES, ETSI GS OSG 001 era): decode only, for old captures.

Facts from reference notes ``osgp-62056-8-8.md`` §6 [C]:

* The **OMA digest** is an 8-byte state run over the message zero-padded to a
  multiple of 144 bytes, under a 96-bit key used 1.5 times per block (the round
  function of the ISO/IEC 14908-1 OMA challenge-response transform).
* The **encryption key** is ``EN14908(r1, [], k) || EN14908(r2, [], k)`` with two
  fixed 8-byte start states, where ``EN14908`` is the classic 48-bit LonTalk
  authentication transform (only ``k[0:6]``, message walked backwards).
* A message is sent as ``RC4(key', m) || digest`` where ``key'`` is the
  encryption key with its first 8 bytes XORed with the digest of the plaintext.

These schemes are broken (IACR ePrint 2015/428, 2015/088, 2016/455); this module
exists only to read old traffic.  Nothing here encrypts.  RC4 comes from
``cryptography``'s decrepit ARC4.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from dlms14908.errors import AuthenticationFailed, DecodeError, EncodeError

__all__ = [
    "DIGEST_LEN",
    "OMA_KEY_LEN",
    "decrypt",
    "derive_encryption_key",
    "en14908_transform",
    "oma_digest",
]

OMA_KEY_LEN = 12
DIGEST_LEN = 8
_BLOCK = 144
# The two 8-byte start states of the key derivation [C, osgp-62056-8-8.md §6.2].
_KDF_STATE_1 = bytes.fromhex("813f529a7be389ba")
_KDF_STATE_2 = bytes.fromhex("72b0918d4405aa57")


def _rotl1(x: int) -> int:
    return ((x << 1) | (x >> 7)) & 0xFF


def _rotr1(x: int) -> int:
    return ((x >> 1) | (x << 7)) & 0xFF


def _round(state: list[int], j: int, m: int, bit: int) -> None:
    """One byte step of the LonTalk authentication round function (in place)."""
    n = ~(state[j] + j) & 0xFF
    nxt = state[(j + 1) & 7]
    if bit:
        state[j] = (nxt + m + _rotl1(n)) & 0xFF
    else:
        state[j] = (nxt + m - _rotr1(n)) & 0xFF


def _check_key(key: bytes, length: int) -> bytes:
    if not isinstance(key, (bytes, bytearray, memoryview)) or len(key) != length:
        # Never echo the key, only its length.
        raise EncodeError(f"key must be {length} bytes", field="key")
    return bytes(key)


def oma_digest(message: bytes, key: bytes) -> bytes:
    """OSGP OMA digest (8 bytes) of ``message`` under the 12-byte ``key``."""
    k = _check_key(key, OMA_KEY_LEN)
    m = bytes(message)
    m += bytes(-len(m) % _BLOCK)
    state = [0] * 8
    for base in range(0, len(m), _BLOCK):
        for pos in range(_BLOCK):
            j = 7 - (pos & 7)
            bit = (k[(pos >> 3) % OMA_KEY_LEN] >> (7 - j)) & 1
            _round(state, j, m[base + pos], bit)
    return bytes(state)


def en14908_transform(start: bytes, message: bytes, key: bytes) -> bytes:
    """The classic 48-bit ISO/IEC 14908-1 authentication transform.

    ``start`` is the 8-byte initial state (the challenge), ``key`` the 6-byte
    domain key; the message is consumed from its last byte backwards, zeros once
    exhausted, in passes of 48 steps (at least one pass).
    """
    if len(start) != 8:
        raise EncodeError("start state must be 8 bytes", field="start")
    k = _check_key(key, 6)
    state = list(start)
    remaining = len(message) - 1
    while True:
        for i in range(6):
            for j in range(7, -1, -1):
                b = message[remaining] if remaining >= 0 else 0
                remaining -= 1
                _round(state, j, b, (k[i] >> (7 - j)) & 1)
        if remaining < 0:
            return bytes(state)


def derive_encryption_key(key: bytes) -> bytes:
    """The 16-byte legacy RC4 base key derived from the 12-byte OMA key (only bytes 0-5 count)."""
    k = _check_key(key, OMA_KEY_LEN)[:6]
    return en14908_transform(_KDF_STATE_1, b"", k) + en14908_transform(_KDF_STATE_2, b"", k)


def _rc4(key: bytes, data: bytes) -> bytes:
    return Cipher(ARC4(key), mode=None).decryptor().update(data)


def decrypt(data: bytes, key: bytes) -> bytes:
    """Decrypt and verify one legacy OSGP encrypted message ``RC4(m) || digest``.

    Raises :class:`DecodeError` (``field="digest"``) if the input is shorter than
    the digest and :class:`AuthenticationFailed` if the digest does not verify.
    """
    k = _check_key(key, OMA_KEY_LEN)
    buf = bytes(data)
    if len(buf) < DIGEST_LEN:
        raise DecodeError(
            f"need at least {DIGEST_LEN} bytes, got {len(buf)}", field="digest", offset=0
        )
    body, tag = buf[:-DIGEST_LEN], buf[-DIGEST_LEN:]
    rc4_key = bytearray(derive_encryption_key(k))
    for i in range(DIGEST_LEN):
        rc4_key[i] ^= tag[i]
    plain = _rc4(bytes(rc4_key), body)
    if not hmac.compare_digest(oma_digest(plain, k), tag):
        raise AuthenticationFailed("legacy OSGP digest does not verify")
    return plain
