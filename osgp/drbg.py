"""OSGP_CSPRNG: NIST SP 800-90A Rev. 1 CTR_DRBG, AES-128, no derivation function (§10.2.1).

Design choice (reference osgp-62056-8-8.md §2.3 [D]): AES-128, no df, seedlen = 256
bits, ctr_len = 128, no prediction resistance.  Entropy comes from ``os.urandom``
unless another source is injected (deterministic tests, NIST CAVP known answers).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NoReturn

from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import ECB

from dlms14908.errors import EncodeError

__all__ = ["MAX_REQUEST", "RESEED_INTERVAL", "SEEDLEN", "CtrDrbg"]

SEEDLEN = 32                 # bytes: keylen 16 + outlen 16 (SP 800-90A Table 3, AES-128)
MAX_REQUEST = 1 << 16        # bytes per Generate (2^19 bits)
RESEED_INTERVAL = 1 << 48    # Generate calls between reseeds
_MASK128 = (1 << 128) - 1


class CtrDrbg:
    """SP 800-90A CTR_DRBG (AES-128, no df).

    ``entropy(n)`` must return ``n`` fresh bytes (default :func:`os.urandom`); it is
    called for 32 bytes on instantiation and on every (automatic or explicit) reseed.
    ``personalization`` and ``additional_input`` are at most 32 bytes (no df).
    """

    __slots__ = ("_enc", "_entropy", "_key", "_reseed_interval", "_v", "reseed_counter")

    def __init__(
        self,
        personalization: bytes = b"",
        *,
        entropy: Callable[[int], bytes] = os.urandom,
        reseed_interval: int = RESEED_INTERVAL,
    ) -> None:
        if not 1 <= reseed_interval <= RESEED_INTERVAL:
            raise EncodeError("reseed_interval must be 1..2^48", field="reseed_interval")
        self._entropy = entropy
        self._reseed_interval = reseed_interval
        self._set_key(bytes(16))
        self._v = 0
        seed = self._xor_seed(self._get_entropy(), personalization, "personalization")
        self._update(seed)
        self.reseed_counter = 1

    def __repr__(self) -> str:
        return f"<CtrDrbg AES-128 no-df reseed_counter={self.reseed_counter}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("CtrDrbg cannot be pickled")

    # -- SP 800-90A §10.2.1 -------------------------------------------------------------
    def _set_key(self, key: bytes) -> None:
        self._key = key
        self._enc = Cipher(AES(key), ECB()).encryptor()

    def _get_entropy(self) -> bytes:
        e = self._entropy(SEEDLEN)
        if not isinstance(e, (bytes, bytearray)) or len(e) != SEEDLEN:
            raise EncodeError("entropy source must return exactly 32 bytes", field="entropy")
        return bytes(e)

    @staticmethod
    def _xor_seed(entropy: bytes, extra: bytes, what: str) -> bytes:
        if len(extra) > SEEDLEN:
            raise EncodeError(f"{what} must be at most {SEEDLEN} bytes (no derivation function)", field=what)
        extra = bytes(extra).ljust(SEEDLEN, b"\0")
        return (int.from_bytes(entropy, "big") ^ int.from_bytes(extra, "big")).to_bytes(SEEDLEN, "big")

    def _blocks(self, n: int) -> bytes:
        v = self._v
        ctr = b"".join(((v + i) & _MASK128).to_bytes(16, "big") for i in range(1, n + 1))
        self._v = (v + n) & _MASK128
        return self._enc.update(ctr)

    def _update(self, provided: bytes) -> None:
        temp = self._blocks(2)
        temp = (int.from_bytes(temp, "big") ^ int.from_bytes(provided, "big")).to_bytes(SEEDLEN, "big")
        self._set_key(temp[:16])
        self._v = int.from_bytes(temp[16:], "big")

    def reseed(self, additional_input: bytes = b"") -> None:
        """Reseed from the entropy source (SP 800-90A §10.2.1.4.1)."""
        self._update(self._xor_seed(self._get_entropy(), additional_input, "additional_input"))
        self.reseed_counter = 1

    def generate(self, n: int, additional_input: bytes = b"") -> bytes:
        """Return ``n`` pseudorandom bytes (SP 800-90A §10.2.1.5.1), 0 <= n <= 65536."""
        if not isinstance(n, int) or n < 0 or n > MAX_REQUEST:
            raise EncodeError("request must be 0..65536 bytes", field="n")
        if self.reseed_counter > self._reseed_interval:
            self.reseed(additional_input)
            additional_input = b""
        if additional_input:
            add = self._xor_seed(bytes(SEEDLEN), additional_input, "additional_input")
            self._update(add)
        else:
            add = bytes(SEEDLEN)
        out = self._blocks((n + 15) // 16)[:n]
        self._update(add)
        self.reseed_counter += 1
        return out

    def __call__(self, n: int) -> bytes:
        """``drbg(n)``: any length, split into requests of at most 64 KiB."""
        if n <= MAX_REQUEST:
            return self.generate(n)
        parts = []
        while n > 0:
            k = min(n, MAX_REQUEST)
            parts.append(self.generate(k))
            n -= k
        return b"".join(parts)
