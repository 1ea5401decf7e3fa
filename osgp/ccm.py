"""AES-128-CCM (NIST SP 800-38C) and AES-CMAC (RFC 4493) for OSGP-AES-128-PSK (OSGP_AE/AD, OSGP_MAC).

Selects the AES-NI C extension :mod:`osgp._ccm` when it is built and the CPU has
AES-NI, else the ``cryptography`` fallback :mod:`osgp._ccm_py`; ``OSGP_PURE_PYTHON=1``
forces the fallback, ``OSGP_CCM_ASSUME_NO_AESNI=1`` makes the built extension refuse to
import as on a CPU without AES-NI (tests of that path).  :data:`IMPLEMENTATION` says
which one is in use.

``AesCcm(key, tag_length=8)`` mirrors ``cryptography``'s ``AESCCM`` (nonce 7..13
bytes, tag 4..16 even, payload < 2^(8L) with L = 15 - nonce length, else
``EncodeError``, a ``ValueError``): ``.encrypt(nonce, data, aad)`` returns
ciphertext||tag, ``.decrypt(nonce, data, aad)`` raises :class:`osgp.InvalidTag`, and
``.encrypt_into`` / ``.decrypt_into`` write into a caller buffer of exactly the output
length (zeroed when the tag does not verify).  The same object caches the key
schedule and the CMAC subkeys: ``.cmac(data)``, ``.cmac_verify(data, tag)``
(constant time, tag 4..16 bytes).  Key bytes never appear in reprs or errors and
key objects cannot be pickled.

``AesGcm(key, tag_length=16)`` is AES-128-GCM (NIST SP 800-38D) for DLMS security
suite 0: 12-byte nonces only (J0 = IV || 0x00000001), tags of 4, 8 or 12..16 bytes
(suite 0 uses 12), any data/AAD length; ``.encrypt(nonce, data, aad)`` returns
ciphertext||tag and ``.decrypt(nonce, data, aad)`` verifies the (truncated) tag in
constant time and raises :class:`osgp.InvalidTag`, returning nothing on failure.  The
C ``GcmKey`` needs PCLMULQDQ as well as AES-NI (``OSGP_CCM_ASSUME_NO_PCLMULQDQ=1``
pretends it is missing); :data:`GCM_IMPLEMENTATION` says which one is in use.

``encrypt_batch(frames)`` / ``decrypt_batch(frames)`` take a sequence of
``(key_obj, nonce, data, aad_or_None)`` tuples (a different key per frame is fine)
and return a list with one ``bytes`` per frame; ``decrypt_batch`` gives ``None``
for a frame whose tag does not verify (or that is shorter than its tag).  Argument
errors raise for the whole batch and name the frame.  The C batch releases the GIL
(inputs that are not ``bytes`` are copied first) and runs 4 frames interleaved.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._ccm import HAVE_AESNI, GcmKey, InvalidTag, Key, decrypt_batch, encrypt_batch
elif os.environ.get("OSGP_PURE_PYTHON", "") not in ("", "0"):
    from ._ccm_py import HAVE_AESNI, GcmKey, InvalidTag, Key, decrypt_batch, encrypt_batch
else:
    try:
        from ._ccm import HAVE_AESNI, InvalidTag, Key, decrypt_batch, encrypt_batch
    except ImportError:
        from ._ccm_py import HAVE_AESNI, GcmKey, InvalidTag, Key, decrypt_batch, encrypt_batch
    else:
        try:  # absent when the CPU has no PCLMULQDQ
            from ._ccm import GcmKey
        except ImportError:
            from ._ccm_py import GcmKey

__all__ = [
    "GCM_IMPLEMENTATION",
    "HAVE_AESNI",
    "IMPLEMENTATION",
    "AesCcm",
    "AesGcm",
    "GcmKey",
    "InvalidTag",
    "Key",
    "decrypt_batch",
    "encrypt_batch",
]

#: The key class: ``AesCcm(key, tag_length=8)``.
AesCcm = Key

#: ``"c"`` (AES-NI extension) or ``"python"`` (``cryptography`` fallback).
IMPLEMENTATION: str = "c" if Key.__module__.endswith("._ccm") else "python"

#: The GCM key class: ``AesGcm(key, tag_length=16)``.
AesGcm = GcmKey

#: ``"c"`` (AES-NI + PCLMULQDQ extension) or ``"python"`` (``cryptography`` fallback).
GCM_IMPLEMENTATION: str = "c" if GcmKey.__module__.endswith("._ccm") else "python"
