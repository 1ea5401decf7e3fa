"""Fallback for :mod:`osgp._ccm` built on ``cryptography`` (OpenSSL) AES-CCM, AES-CMAC and AES-GCM.

Used where the C extension is not built or the CPU has no AES-NI (for GCM: no
PCLMULQDQ), or when ``OSGP_PURE_PYTHON=1`` is set.  Same API and the same checks as
the C module: AES-128-CCM per NIST SP 800-38C (nonce 7..13 bytes, tag 4..16 even,
payload < 2^(8L) with L = 15 - nonce length), AES-CMAC per RFC 4493 and AES-128-GCM
per NIST SP 800-38D (96-bit IV; tags 4, 8, 12..16 bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from hmac import compare_digest
from typing import NoReturn

from cryptography.exceptions import InvalidTag as _CryptoInvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.cmac import CMAC

from dlms14908.errors import EncodeError

from ._ccm_errors import InvalidTag

__all__ = ["HAVE_AESNI", "HAVE_PCLMULQDQ", "GcmKey", "InvalidTag", "Key", "decrypt_batch", "encrypt_batch"]

HAVE_AESNI = False
HAVE_PCLMULQDQ = False
_TAG_LENGTHS = frozenset((4, 6, 8, 10, 12, 14, 16))
_LIMIT = {n: 1 << (8 * (15 - n)) for n in range(7, 14)}  # payload must be < 2^(8L)
_Buf = bytes | bytearray | memoryview


def _b(x: object, what: str) -> bytes:
    if isinstance(x, bytes):
        return x
    try:
        return bytes(memoryview(x))  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object") from None


def _nbytes(x: object, what: str) -> int:
    """Length in bytes of a buffer, without copying it (limits are checked before a copy)."""
    try:
        return memoryview(x).nbytes  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object") from None


def _precheck(nonce: object, data: object, tag_length: int) -> None:
    """Slow path (inputs that are not ``bytes``): reject a bad nonce or an oversized payload
    before the inputs are copied."""
    ln = _nbytes(nonce, "nonce")
    n = _nbytes(data, "data") - tag_length
    if ln < 7 or ln > 13:
        raise EncodeError("nonce must be 7..13 bytes", field="nonce")
    if n >= 0 and n >> (8 * (15 - ln)):
        raise EncodeError("payload too long for this nonce length (must be < 2^(8L))", field="data")


def _check_nonce(nonce: _Buf, n: int) -> None:
    ln = len(nonce)
    if ln < 7 or ln > 13:
        raise EncodeError("nonce must be 7..13 bytes", field="nonce")
    if n >> (8 * (15 - ln)):
        raise EncodeError("payload too long for this nonce length (must be < 2^(8L))", field="data")


class Key:
    """An AES-128 key for CCM (fixed tag length) and CMAC."""

    __slots__ = ("_aead", "_cmac", "_tag_length")

    def __init__(self, key: _Buf, tag_length: int = 8) -> None:
        if not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError("key must be a bytes-like object")
        if len(key) != 16:
            raise EncodeError("key must be 16 bytes (AES-128)", field="key")
        if not isinstance(tag_length, int) or tag_length not in _TAG_LENGTHS:
            raise EncodeError("tag_length must be one of 4, 6, 8, 10, 12, 14, 16", field="tag_length")
        key = bytes(key)
        self._tag_length = tag_length
        self._aead = AESCCM(key, tag_length)
        self._cmac = CMAC(AES(key))

    @property
    def tag_length(self) -> int:
        return self._tag_length

    def __repr__(self) -> str:
        return f"<osgp._ccm_py.Key tag_length={self._tag_length}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("Key objects cannot be pickled")

    def encrypt(self, nonce: _Buf, data: _Buf, associated_data: _Buf | None = None) -> bytes:
        if not (type(nonce) is bytes and type(data) is bytes
                and (associated_data is None or type(associated_data) is bytes)):
            _precheck(nonce, data, 0)
            nonce, data = _b(nonce, "nonce"), _b(data, "data")
            associated_data = None if associated_data is None else _b(associated_data, "associated_data")
        if len(data) >= _LIMIT.get(len(nonce), 0):
            _check_nonce(nonce, len(data))  # raises
        return self._aead.encrypt(nonce, data, associated_data)

    def decrypt(self, nonce: _Buf, data: _Buf, associated_data: _Buf | None = None) -> bytes:
        if not (type(nonce) is bytes and type(data) is bytes
                and (associated_data is None or type(associated_data) is bytes)):
            _precheck(nonce, data, self._tag_length)
            nonce, data = _b(nonce, "nonce"), _b(data, "data")
            associated_data = None if associated_data is None else _b(associated_data, "associated_data")
        n = len(data) - self._tag_length
        if n < 0 or n >= _LIMIT.get(len(nonce), 0):
            if len(nonce) < 7 or len(nonce) > 13:
                raise EncodeError("nonce must be 7..13 bytes", field="nonce")
            if n < 0:
                raise InvalidTag()
            _check_nonce(nonce, n)  # raises
        try:
            return self._aead.decrypt(nonce, data, associated_data)
        except _CryptoInvalidTag:
            raise InvalidTag() from None

    def encrypt_into(self, nonce: _Buf, data: _Buf, associated_data: _Buf | None, buf: _Buf) -> int:
        mv = _writable(buf)
        _precheck(nonce, data, 0)
        if len(mv) != _nbytes(data, "data") + self._tag_length:
            raise EncodeError("buf must be exactly the output length", field="buf")
        out = self.encrypt(nonce, data, associated_data)
        mv[:] = out
        return len(out)

    def decrypt_into(self, nonce: _Buf, data: _Buf, associated_data: _Buf | None, buf: _Buf) -> int:
        mv = _writable(buf)
        _precheck(nonce, data, self._tag_length)  # nonce length, payload limit
        n = _nbytes(data, "data") - self._tag_length
        if n < 0:
            raise InvalidTag()
        if len(mv) != n:
            raise EncodeError("buf must be exactly the output length", field="buf")
        nonce, data = _b(nonce, "nonce"), _b(data, "data")
        aad = None if associated_data is None else _b(associated_data, "associated_data")
        try:
            mv[:] = self._aead.decrypt(nonce, data, aad)
        except _CryptoInvalidTag:
            mv[:] = bytes(n)
            raise InvalidTag() from None
        return n

    def cmac(self, data: _Buf, /) -> bytes:
        c = self._cmac.copy()
        c.update(_b(data, "data"))
        return c.finalize()

    def cmac_verify(self, data: _Buf, tag: _Buf, /) -> bool:
        tag = _b(tag, "tag")
        tl = len(tag)
        if tl < 4 or tl > 16:
            raise EncodeError("CMAC tag must be 4..16 bytes", field="tag")
        c = self._cmac.copy()
        c.update(_b(data, "data"))
        return compare_digest(c.finalize()[:tl], tag)


def _writable(buf: object) -> memoryview:
    try:
        mv = memoryview(buf).cast("B")  # type: ignore[arg-type]
    except TypeError:
        raise TypeError("buf must be a writable bytes-like object") from None
    if mv.readonly:
        raise TypeError("buf must be a writable bytes-like object")
    return mv


def _frame(fr: object, i: int, decrypt: bool) -> tuple[Key, bytes, bytes, bytes | None]:
    if not isinstance(fr, tuple) or len(fr) != 4:
        raise TypeError(f"frame {i}: expected a (key, nonce, data, aad) tuple")
    k, nonce, data, aad = fr
    if type(k) is not Key:
        raise TypeError(f"frame {i}: key must be an osgp Key object")
    if not (type(nonce) is bytes and type(data) is bytes and (aad is None or type(aad) is bytes)):
        try:
            _precheck(nonce, data, k._tag_length if decrypt else 0)
        except TypeError as e:
            raise TypeError(f"frame {i}: {e}") from None
        except EncodeError as e:
            raise _frame_error(e, i) from None
        try:
            nonce, data = _b(nonce, "nonce"), _b(data, "data")
            aad = None if aad is None else _b(aad, "aad")
        except TypeError as e:
            raise TypeError(f"frame {i}: {e}") from None
    return k, nonce, data, aad


def _frame_error(e: EncodeError, i: int) -> EncodeError:
    msg = str(e).split(": ", 1)[-1]
    return EncodeError(f"frame {i}: {msg}", field=e.field)


def encrypt_batch(frames: Sequence[tuple[Key, _Buf, _Buf, _Buf | None]], /) -> list[bytes]:
    """Encrypt many ``(key, nonce, plaintext, aad)`` frames; returns ciphertext||tag per frame."""
    out: list[bytes] = []
    for i, fr in enumerate(frames):
        if type(fr) is tuple and len(fr) == 4:
            k, nonce, data, aad = fr
            if not (type(k) is Key and type(nonce) is bytes and type(data) is bytes
                    and (aad is None or type(aad) is bytes)):
                k, nonce, data, aad = _frame(fr, i, False)
        else:
            k, nonce, data, aad = _frame(fr, i, False)
        if len(data) >= _LIMIT.get(len(nonce), 0):
            try:
                _check_nonce(nonce, len(data))
            except EncodeError as e:
                raise _frame_error(e, i) from None
        out.append(k._aead.encrypt(nonce, data, aad))
    return out


def decrypt_batch(frames: Sequence[tuple[Key, _Buf, _Buf, _Buf | None]], /) -> list[bytes | None]:
    """Decrypt and verify many ``(key, nonce, ciphertext||tag, aad)`` frames.

    A frame that fails verification (or is shorter than its tag) gives ``None``."""
    out: list[bytes | None] = []
    for i, fr in enumerate(frames):
        if type(fr) is tuple and len(fr) == 4:
            k, nonce, data, aad = fr
            if not (type(k) is Key and type(nonce) is bytes and type(data) is bytes
                    and (aad is None or type(aad) is bytes)):
                k, nonce, data, aad = _frame(fr, i, True)
        else:
            k, nonce, data, aad = _frame(fr, i, True)
        n = len(data) - k._tag_length
        if n < 0 or n >= _LIMIT.get(len(nonce), 0):
            try:
                _check_nonce(nonce, max(0, n))
            except EncodeError as e:
                raise _frame_error(e, i) from None
            if n < 0:
                out.append(None)
                continue
        try:
            out.append(k._aead.decrypt(nonce, data, aad))
        except _CryptoInvalidTag:
            out.append(None)
    return out


# --- AES-GCM (NIST SP 800-38D), 96-bit IV ---------------------------------------------

_GCM_TAG_LENGTHS = frozenset((4, 8, 12, 13, 14, 15, 16))  # SP 800-38D §5.2.1.2
_GCM_MAX_TEXT = (1 << 36) - 32  # 2^39 - 256 bits
_GCM_MAX_AAD = (1 << 61) - 1  # 2^64 - 1 bits


class GcmKey:
    """An AES-128 key for GCM with a fixed tag length (12-byte nonces only)."""

    __slots__ = ("_aead", "_tag_length")

    def __init__(self, key: _Buf, tag_length: int = 16) -> None:
        if not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError("key must be a bytes-like object")
        if len(key) != 16:
            raise EncodeError("key must be 16 bytes (AES-128)", field="key")
        if not isinstance(tag_length, int) or tag_length not in _GCM_TAG_LENGTHS:
            raise EncodeError("tag_length must be one of 4, 8, 12, 13, 14, 15, 16", field="tag_length")
        self._tag_length = tag_length
        self._aead = AESGCM(bytes(key))

    @property
    def tag_length(self) -> int:
        return self._tag_length

    def __repr__(self) -> str:
        return f"<osgp._ccm_py.GcmKey tag_length={self._tag_length}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("GcmKey objects cannot be pickled")

    def _args(self, nonce: object, data: object, aad: object, tl: int) -> tuple[bytes, bytes, bytes | None]:
        """Slow path: checks in the C module's order (types, nonce, AAD limit, data shorter
        than the tag, payload limit), all before anything is copied."""
        ln = _nbytes(nonce, "nonce")
        n = _nbytes(data, "data") - tl
        la = 0 if aad is None else _nbytes(aad, "associated_data")
        if ln != 12:
            raise EncodeError("nonce must be 12 bytes (96-bit IV)", field="nonce")
        if la > _GCM_MAX_AAD:  # pragma: no cover - cannot be allocated
            raise EncodeError("associated data too long for GCM (2^64 - 1 bits)", field="associated_data")
        if n < 0:
            raise InvalidTag()
        if n > _GCM_MAX_TEXT:
            raise EncodeError("payload too long for GCM (2^39 - 256 bits)", field="data")
        return _b(nonce, "nonce"), _b(data, "data"), None if aad is None else _b(aad, "associated_data")

    def encrypt(self, nonce: _Buf, data: _Buf, associated_data: _Buf | None = None) -> bytes:
        aad = associated_data
        if not (type(nonce) is bytes and type(data) is bytes and len(nonce) == 12 and len(data) <= _GCM_MAX_TEXT
                and (aad is None or type(aad) is bytes)):
            nonce, data, aad = self._args(nonce, data, aad, 0)
        n = len(data)
        tl = self._tag_length
        if tl == 16:
            return self._aead.encrypt(nonce, data, aad)
        return self._aead.encrypt(nonce, data, aad)[: n + tl]

    def decrypt(self, nonce: _Buf, data: _Buf, associated_data: _Buf | None = None) -> bytes:
        aad = associated_data
        tl = self._tag_length
        if not (type(nonce) is bytes and type(data) is bytes and len(nonce) == 12
                and tl <= len(data) <= _GCM_MAX_TEXT + tl and (aad is None or type(aad) is bytes)):
            nonce, data, aad = self._args(nonce, data, aad, tl)
        n = len(data) - tl
        g = self._aead
        if tl == 16:
            try:
                return g.decrypt(nonce, data, aad)
            except _CryptoInvalidTag:
                raise InvalidTag() from None
        # A truncated tag: AESGCM verifies only full tags, and a per-call GCM Cipher
        # context costs ~5x more.  GCM's counter mode is its own inverse, so one
        # encryption (tag dropped) gives the candidate plaintext P, and encrypting P
        # again gives the tag over (AAD, C); compared in constant time before P is
        # released.
        body = data[:n]
        plain = g.encrypt(nonce, body, None)[:n]
        if not compare_digest(g.encrypt(nonce, plain, aad)[n : n + tl], data[n:]):
            raise InvalidTag()
        return plain
