"""AES-128-CCM (NIST SP 800-38C) and AES-CMAC (RFC 4493) for OSGP-AES-128-PSK (OSGP_AE/AD, OSGP_MAC).

Selects the AES-NI C extension :mod:`osgp._ccm` when it is built and the CPU has
AES-NI, else the ``cryptography`` fallback :mod:`osgp._ccm_py`; ``OSGP_PURE_PYTHON=1``
forces the fallback.  :data:`IMPLEMENTATION` says which one is in use.

``AesCcm(key, tag_length=8)`` mirrors ``cryptography``'s ``AESCCM``:
``.encrypt(nonce, data, aad)`` returns ciphertext‖tag and ``.decrypt(nonce, data, aad)``
raises :class:`osgp.InvalidTag`.  The same object caches the key schedule and the
CMAC subkeys (``.cmac(data)``, ``.cmac_verify(data, tag)``).
``encrypt_batch(frames)`` / ``decrypt_batch(frames)`` take a list of
``(key_obj, nonce, data, aad)`` tuples (a different key per frame is fine) and
return a list of ``bytes`` (``None`` for frames that fail verification).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._ccm import HAVE_AESNI, InvalidTag, Key, decrypt_batch, encrypt_batch
elif os.environ.get("OSGP_PURE_PYTHON", "") not in ("", "0"):
    from ._ccm_py import HAVE_AESNI, InvalidTag, Key, decrypt_batch, encrypt_batch
else:
    try:
        from ._ccm import HAVE_AESNI, InvalidTag, Key, decrypt_batch, encrypt_batch
    except ImportError:
        from ._ccm_py import HAVE_AESNI, InvalidTag, Key, decrypt_batch, encrypt_batch

__all__ = ["AesCcm", "Key", "InvalidTag", "encrypt_batch", "decrypt_batch", "IMPLEMENTATION", "HAVE_AESNI"]

#: The key class: ``AesCcm(key, tag_length=8)``.
AesCcm = Key

#: ``"c"`` (AES-NI extension) or ``"python"`` (``cryptography`` fallback).
IMPLEMENTATION: str = "c" if Key.__module__.endswith("._ccm") else "python"
