"""OSGP-AES-128-PSK primitives (IEC 62056-8-8 Annex D; reference osgp-62056-8-8.md §2.2-2.3).

* ``cmac``                       AES-128-CMAC, RFC 4493 / NIST SP 800-38B.
* ``osgp_kdf`` (OSGP_KDF)        RFC 5433 §6 GKDF-X(Y, Z) with AES-CMAC-128: block i is
                                 ``CMAC_Y(uint16_be(i) || Z)``, i = 1..ceil(X/16), truncated to X
                                 bytes.  Identical to NIST SP 800-108 KDF in counter mode
                                 (PRF = CMAC-AES128, r = 16, counter before the fixed input Z).
* ``osgp_mac`` / ``osgp_mac_verify`` (OSGP_MAC)  AES-CMAC, optionally truncated; constant-time verify.
* ``osgp_ae`` / ``osgp_ad`` (OSGP_AE/AD)  AES-128-CCM, NIST SP 800-38C (nonce 7..13, tag 4..16 even).
* ``CtrDrbg`` (OSGP_CSPRNG)      SP 800-90A CTR_DRBG, AES-128, no df (see :mod:`osgp.drbg`).

Every function accepts either 16 raw key bytes or a cached :class:`osgp.ccm.AesCcm`
key object (hot paths should cache one per peer: key schedule and CMAC subkeys).
"""

from __future__ import annotations

from dlms14908.errors import EncodeError

from . import _ccm_py
from .ccm import AesCcm, InvalidTag, Key
from .drbg import CtrDrbg

__all__ = [
    "KDF_MAX_LENGTH",
    "AesCcm",
    "CtrDrbg",
    "InvalidTag",
    "cmac",
    "osgp_ad",
    "osgp_ae",
    "osgp_kdf",
    "osgp_mac",
    "osgp_mac_verify",
]

_Buf = bytes | bytearray | memoryview
KeyLike = bytes | bytearray | memoryview | Key | _ccm_py.Key
_KEY_TYPES = (Key, _ccm_py.Key)

#: GKDF's counter is 2 octets: at most 65535 blocks of 16 bytes.
KDF_MAX_LENGTH = 0xFFFF * 16


def _key(key: KeyLike, tag_length: int = 8) -> Key | _ccm_py.Key:
    if isinstance(key, _KEY_TYPES):
        return key
    return Key(key, tag_length)


def cmac(key: KeyLike, data: _Buf) -> bytes:
    """AES-128-CMAC of ``data`` (RFC 4493), 16 bytes."""
    return _key(key).cmac(data)


def osgp_kdf(key: KeyLike, z: _Buf, length: int) -> bytes:
    """OSGP_KDF = RFC 5433 GKDF-``length``(key, z) (= SP 800-108 CTR KDF, CMAC, r = 16, counter first)."""
    if not isinstance(length, int) or length < 1 or length > KDF_MAX_LENGTH:
        raise EncodeError(f"KDF output length must be 1..{KDF_MAX_LENGTH} bytes", field="length")
    k = _key(key)
    z = bytes(z)
    n = (length + 15) // 16
    return b"".join([k.cmac(i.to_bytes(2, "big") + z) for i in range(1, n + 1)])[:length]


def osgp_mac(key: KeyLike, data: _Buf, length: int = 16) -> bytes:
    """OSGP_MAC: AES-CMAC of ``data`` truncated to ``length`` (4..16) bytes."""
    if not isinstance(length, int) or length < 4 or length > 16:
        raise EncodeError("MAC length must be 4..16 bytes", field="length")
    return _key(key).cmac(data)[:length]


def osgp_mac_verify(key: KeyLike, data: _Buf, tag: _Buf) -> bool:
    """OSGP_MAC_VERIFY: constant-time check of a (possibly truncated, 4..16 byte) CMAC tag."""
    return _key(key).cmac_verify(data, tag)


def osgp_ae(key: KeyLike, nonce: _Buf, aad: _Buf | None, plaintext: _Buf, tag_length: int = 8) -> bytes:
    """OSGP_AE: AES-128-CCM encrypt; returns ciphertext || tag.

    With a cached key object its own ``tag_length`` applies."""
    return _key(key, tag_length).encrypt(nonce, plaintext, aad)


def osgp_ad(key: KeyLike, nonce: _Buf, aad: _Buf | None, ciphertext: _Buf, tag_length: int = 8) -> bytes:
    """OSGP_AD: AES-128-CCM decrypt and verify; raises :class:`osgp.InvalidTag`."""
    return _key(key, tag_length).decrypt(nonce, ciphertext, aad)
