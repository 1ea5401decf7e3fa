"""DLMS/COSEM security suite 0: AES-GCM-128 ciphering of xDLMS APDUs.

IEC 62056-5-3 §5.3 / DLMS UA 1000-2 (Green Book) §9.2.7: the security header
(security control byte ``SC`` and invocation counter ``IC``), glo-, ded-,
general-glo- and general-ded-ciphering, HLS-5 GMAC authentication (pass 3/4),
LLS password check, and the RFC 3394 key wrap used by the Security setup
(class 64) ``global_key_transfer`` method.

Everything here works on bytes; it does not depend on the APDU classes of
:mod:`dlms14908.xdlms`.  Suite 0 rules used throughout:

* ``IV = system title (8 bytes) || IC (4 bytes, big-endian)``;
* SC ``0x30`` (authenticated + encrypted): ``AAD = SC || AK``, output ``C || T``;
* SC ``0x20`` (encrypted only): no AAD, no tag (GCM's counter mode alone);
* SC ``0x10`` (authenticated only): ``AAD = SC || AK || P``, output ``P || T``;
* SC bit 6 (``0x40``) selects the global *broadcast* encryption key instead of
  the unicast one; bit 7 (compression) is not supported and rejected;
* the tag ``T`` is the GCM tag truncated to 12 bytes.

GCM runs on :class:`osgp.ccm.AesGcm` objects with 12-byte tags (the AES-NI +
PCLMULQDQ C extension when available, else ``cryptography``), cached per key in
:class:`SecurityKeys`.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from typing import Any

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from osgp.ccm import AesGcm, InvalidTag

from ..errors import (
    AuthenticationFailed,
    DecodeError,
    EncodeError,
    LocalProtocolError,
    ReplayError,
    SecurityError,
)

__all__ = [
    "DEDICATED_CIPHERED_TAGS",
    "GENERAL_DED_CIPHERING",
    "GENERAL_GLO_CIPHERING",
    "GLOBAL_CIPHERED_TAGS",
    "KEY_LENGTH",
    "SC_AUTHENTICATION",
    "SC_BROADCAST",
    "SC_COMPRESSION",
    "SC_ENCRYPTION",
    "SC_SUITE_MASK",
    "SYSTEM_TITLE_LENGTH",
    "TAG_LENGTH",
    "CipheringContext",
    "CipheringKind",
    "Deciphered",
    "InvocationCounterCheck",
    "KeyId",
    "SecurityHeader",
    "SecurityKeys",
    "SecurityStats",
    "ciphered_tag",
    "decipher",
    "decode_key_transfer",
    "encode_key_transfer",
    "hls_gmac",
    "is_ciphered_tag",
    "parse_protected",
    "protect",
    "unprotect",
    "unwrap_key",
    "verify_hls_gmac",
    "verify_lls_password",
    "wrap_key",
]

# --- security control byte (Green Book §9.2.7.2.3, Table "Security control byte") --------
SC_SUITE_MASK = 0x0F
SC_AUTHENTICATION = 0x10
SC_ENCRYPTION = 0x20
SC_BROADCAST = 0x40  # key set: 0 = unicast, 1 = broadcast
SC_COMPRESSION = 0x80

TAG_LENGTH = 12
SYSTEM_TITLE_LENGTH = 8
KEY_LENGTH = 16  # suite 0: AES-128
SUITE_0 = 0

GENERAL_GLO_CIPHERING = 0xDB  # [219]
GENERAL_DED_CIPHERING = 0xDC  # [220]

#: plain APDU tag -> glo-ciphered tag (IEC 62056-5-3 COSEMpdu CHOICE)
GLOBAL_CIPHERED_TAGS: Mapping[int, int] = {
    0x01: 0x21,  # initiate-request -> glo-initiate-request [33]
    0x05: 0x25,  # read-request [37]
    0x06: 0x26,  # write-request [38]
    0x08: 0x28,  # initiate-response [40]
    0x0C: 0x2C,  # read-response [44]
    0x0D: 0x2D,  # write-response [45]
    0x0E: 0x2E,  # confirmed-service-error [46]
    0x16: 0x36,  # unconfirmed-write-request [54]
    0x18: 0x38,  # information-report-request [56]
    0xC0: 0xC8,  # get-request [200]
    0xC1: 0xC9,  # set-request [201]
    0xC2: 0xCA,  # event-notification-request [202]
    0xC3: 0xCB,  # action-request [203]
    0xC4: 0xCC,  # get-response [204]
    0xC5: 0xCD,  # set-response [205]
    0xC7: 0xCF,  # action-response [207]
}

#: plain APDU tag -> ded-ciphered tag
DEDICATED_CIPHERED_TAGS: Mapping[int, int] = {
    0x01: 0x41,  # ded-initiate-request [65]
    0x05: 0x45,
    0x06: 0x46,
    0x08: 0x48,
    0x0C: 0x4C,
    0x0D: 0x4D,
    0x0E: 0x4E,
    0x16: 0x56,
    0x18: 0x58,
    0xC0: 0xD0,  # ded-get-request [208]
    0xC1: 0xD1,
    0xC2: 0xD2,
    0xC3: 0xD3,
    0xC4: 0xD4,
    0xC5: 0xD5,
    0xC7: 0xD7,
}


class CipheringKind(StrEnum):
    """Which ciphered APDU form, and so which key and where the system title lives."""

    GLOBAL = "glo"
    DEDICATED = "ded"
    GENERAL_GLOBAL = "general-glo"
    GENERAL_DEDICATED = "general-ded"

    @property
    def dedicated(self) -> bool:
        return self in (CipheringKind.DEDICATED, CipheringKind.GENERAL_DEDICATED)

    @property
    def general(self) -> bool:
        return self in (CipheringKind.GENERAL_GLOBAL, CipheringKind.GENERAL_DEDICATED)


_GLO_TAGS: dict[int, int] = dict(GLOBAL_CIPHERED_TAGS)
#: glo-ciphered tag -> the plain tag it must carry (the receive hot path)
_GLO_SERVICE: dict[int, int] = {c: p for p, c in GLOBAL_CIPHERED_TAGS.items()}
_SC_AE = 0x30  # SC_AUTHENTICATION | SC_ENCRYPTION, suite 0, unicast key
_HEAD = struct.Struct(">BBBI")  # glo tag, short length, SC, IC
_B30 = b"\x30"
_GLO = CipheringKind.GLOBAL  # enum member attribute lookups cost a descriptor call in 3.11

# ciphered tag -> (kind, plain tag or None)
_TAG_INFO: dict[int, tuple[CipheringKind, int | None]] = {
    **{c: (CipheringKind.GLOBAL, p) for p, c in GLOBAL_CIPHERED_TAGS.items()},
    **{c: (CipheringKind.DEDICATED, p) for p, c in DEDICATED_CIPHERED_TAGS.items()},
    GENERAL_GLO_CIPHERING: (CipheringKind.GENERAL_GLOBAL, None),
    GENERAL_DED_CIPHERING: (CipheringKind.GENERAL_DEDICATED, None),
}


def is_ciphered_tag(tag: int) -> bool:
    """True for the glo-/ded-/general-glo-/general-ded-ciphering tags handled here."""
    return tag in _TAG_INFO


def ciphered_tag(plain_tag: int, kind: CipheringKind | str) -> int:
    """The ciphered APDU tag for a plain APDU tag (e.g. GET-Request 0xC0 -> glo 0xC8, ded 0xD0)."""
    kind = _kind(kind)
    if kind is CipheringKind.GENERAL_GLOBAL:
        return GENERAL_GLO_CIPHERING
    if kind is CipheringKind.GENERAL_DEDICATED:
        return GENERAL_DED_CIPHERING
    table = GLOBAL_CIPHERED_TAGS if kind is CipheringKind.GLOBAL else DEDICATED_CIPHERED_TAGS
    try:
        return table[plain_tag]
    except KeyError:
        raise EncodeError(
            f"APDU tag 0x{plain_tag:02X} has no {kind.value}-ciphered form; "
            f"use general-{kind.value}-ciphering",
            field="apdu tag",
        ) from None


def _kind(kind: CipheringKind | str) -> CipheringKind:
    try:
        return CipheringKind(kind)
    except ValueError:
        raise EncodeError(
            f"unknown ciphering kind {kind!r} (glo, ded, general-glo, general-ded)", field="kind"
        ) from None


# --- keys --------------------------------------------------------------------------------


def _key_bytes(value: object, name: str, optional: bool = False) -> bytes | None:
    if value is None and optional:
        return None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise EncodeError("must be bytes", field=name)
    b = bytes(value)
    if len(b) != KEY_LENGTH:
        raise EncodeError(f"must be {KEY_LENGTH} bytes, got {len(b)}", field=name)
    return b


@dataclass(frozen=True, eq=False, slots=True)
class SecurityKeys:
    """Suite 0 keys (16 bytes each).  ``ek``: global unicast encryption key,
    ``ak``: authentication key, ``bk``: global broadcast encryption key,
    ``dk``: dedicated key of the current association.  Never shown in a repr."""

    ek: bytes = field(repr=False)
    ak: bytes = field(repr=False)
    bk: bytes | None = field(default=None, repr=False)
    dk: bytes | None = field(default=None, repr=False)
    _gcm_ek: AesGcm | None = field(default=None, init=False, repr=False, compare=False)
    "the AES-GCM object (key schedule, 12-byte tags) of ``ek``, made on first use"
    _gcm: dict[bytes, AesGcm] | None = field(default=None, init=False, repr=False, compare=False)
    "those of the other keys (broadcast, dedicated), made on first use"
    _aad_ae: bytes = field(default=b"", init=False, repr=False, compare=False)
    "the AAD of SC 0x30: ``0x30 || ak``"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ek", _key_bytes(self.ek, "ek"))
        object.__setattr__(self, "ak", _key_bytes(self.ak, "ak"))
        object.__setattr__(self, "bk", _key_bytes(self.bk, "bk", optional=True))
        object.__setattr__(self, "dk", _key_bytes(self.dk, "dk", optional=True))
        object.__setattr__(self, "_aad_ae", _B30 + self.ak)

    def _aead(self, key: bytes) -> AesGcm:
        if key is self.ek:
            g = self._gcm_ek
            if g is None:
                g = AesGcm(key, TAG_LENGTH)
                object.__setattr__(self, "_gcm_ek", g)
            return g
        cache = self._gcm
        if cache is None:
            cache = {}
            object.__setattr__(self, "_gcm", cache)
        g = cache.get(key)
        if g is None:
            g = cache[key] = AesGcm(key, TAG_LENGTH)
        return g

    def __repr__(self) -> str:
        have = ", ".join(
            f"{n}={'<set>' if getattr(self, n) is not None else None}"
            for n in ("ek", "ak", "bk", "dk")
        )
        return f"SecurityKeys({have})"

    def with_dedicated_key(self, dk: bytes | None) -> SecurityKeys:
        """A copy holding ``dk`` as dedicated key (from the xDLMS InitiateRequest)."""
        return replace(self, dk=dk)

    def encryption_key(self, kind: CipheringKind, security_control: int) -> bytes:
        """The block-cipher key selected by ``kind`` and the SC key-set bit."""
        if kind.dedicated:
            if security_control & SC_BROADCAST:
                raise SecurityError("broadcast key bit set on dedicated ciphering")
            if self.dk is None:
                raise SecurityError("dedicated ciphering but no dedicated key is known")
            return self.dk
        if security_control & SC_BROADCAST:
            if self.bk is None:
                raise SecurityError("broadcast key bit set but no broadcast key is configured")
            return self.bk
        return self.ek


# --- small A-XDR helpers (length-prefixed octet strings) --------------------------------


def _encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _decode_length(buf: bytes, pos: int, name: str) -> tuple[int, int]:
    if pos >= len(buf):
        raise DecodeError("length missing", field=name, offset=pos)
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4:
        raise DecodeError(f"bad length form 0x{first:02X}", field=name, offset=pos)
    end = pos + 1 + count
    if end > len(buf):
        raise DecodeError("length truncated", field=name, offset=pos)
    return int.from_bytes(buf[pos + 1 : end], "big"), end


# --- the security header ------------------------------------------------------------------


@dataclass(frozen=True)
class SecurityHeader:
    """A ciphered APDU split into its parts (nothing verified or decrypted yet).

    ``body`` is what follows the IC: ciphertext (or the clear APDU when only
    authenticated) without the tag; ``auth_tag`` is the 12-byte tag or None."""

    tag: int
    kind: CipheringKind
    service_tag: int | None  # the plain APDU tag implied by a glo/ded tag, None for general-*
    system_title: bytes | None  # carried in general-glo/ded only
    security_control: int
    invocation_counter: int
    body: bytes = field(repr=False)
    auth_tag: bytes | None

    @property
    def suite(self) -> int:
        return self.security_control & SC_SUITE_MASK

    @property
    def authenticated(self) -> bool:
        return bool(self.security_control & SC_AUTHENTICATION)

    @property
    def encrypted(self) -> bool:
        return bool(self.security_control & SC_ENCRYPTION)

    @property
    def broadcast(self) -> bool:
        return bool(self.security_control & SC_BROADCAST)

    @property
    def compressed(self) -> bool:
        return bool(self.security_control & SC_COMPRESSION)


@dataclass(frozen=True)
class Deciphered:
    """A verified, decrypted APDU: its header and the plain inner APDU bytes."""

    header: SecurityHeader
    plaintext: bytes = field(repr=False)


def _check_sc(sc: int, *, offset: int | None) -> None:
    if sc & SC_COMPRESSION:
        raise DecodeError(
            "compression (SC bit 7) is not supported", field="security control", offset=offset
        )
    if sc & SC_SUITE_MASK != SUITE_0:
        raise DecodeError(
            f"security suite {sc & SC_SUITE_MASK} is not supported (only suite 0)",
            field="security control",
            offset=offset,
        )


def _as_bytes(data: object) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    to_bytes = getattr(data, "to_bytes", None)
    if callable(to_bytes) and not isinstance(data, int):
        # a decoded ciphered-APDU object (e.g. dlms14908.xdlms.CipheredApdu)
        out = to_bytes()
        if isinstance(out, (bytes, bytearray)):
            return bytes(out)
    raise LocalProtocolError(f"expected bytes or a ciphered APDU object, got {type(data).__name__}")


def parse_protected(data: bytes | bytearray | memoryview | Any) -> SecurityHeader:
    """Split a glo-/ded-/general-glo-/general-ded-ciphered APDU into its parts.

    ``data`` is the APDU's bytes or a decoded APDU object with ``to_bytes()``.
    Raises :class:`DecodeError` (naming the field) on anything malformed,
    including an unsupported security suite or the compression bit."""
    buf = data if type(data) is bytes else _as_bytes(data)
    if not buf:
        raise DecodeError("empty input", field="apdu tag", offset=0)
    tag = buf[0]
    info = _TAG_INFO.get(tag)
    if info is None:
        raise DecodeError(f"0x{tag:02X} is not a ciphered APDU tag", field="apdu tag", offset=0)
    kind, service = info
    pos = 1
    system_title = None
    if service is None:  # general-glo / general-ded: the system title is in the APDU
        n, pos = _decode_length(buf, pos, "system title")
        if n != SYSTEM_TITLE_LENGTH:
            raise DecodeError(
                f"must be {SYSTEM_TITLE_LENGTH} bytes, got {n}", field="system title", offset=pos
            )
        if pos + n > len(buf):
            raise DecodeError("truncated", field="system title", offset=pos)
        system_title = buf[pos : pos + n]
        pos += n
    if pos < len(buf) and buf[pos] < 0x80:  # short length form
        n = buf[pos]
        pos += 1
    else:
        n, pos = _decode_length(buf, pos, "ciphered content")
    if pos + n != len(buf):
        raise DecodeError(
            f"length {n} does not match the {len(buf) - pos} bytes present",
            field="ciphered content",
            offset=pos,
        )
    if n < 5:
        raise DecodeError(
            "shorter than SC + invocation counter", field="security header", offset=pos
        )
    sc = buf[pos]
    if sc & (SC_COMPRESSION | SC_SUITE_MASK):
        _check_sc(sc, offset=pos)
    (ic,) = struct.unpack_from(">I", buf, pos + 1)
    pos += 5
    rest = buf[pos:]
    auth_tag = None
    if sc & SC_AUTHENTICATION:
        if len(rest) < TAG_LENGTH:
            raise DecodeError(
                "authentication tag truncated", field="authentication tag", offset=pos
            )
        rest, auth_tag = rest[:-TAG_LENGTH], rest[-TAG_LENGTH:]
    return SecurityHeader(tag, kind, service, system_title, sc, ic, rest, auth_tag)


# --- receive-side bookkeeping --------------------------------------------------------------


@dataclass(slots=True)
class SecurityStats:
    """Counters of a receiving security context (mutable, cheap)."""

    accepted: int = 0
    authentication_failures: int = 0
    replays: int = 0
    policy_rejections: int = 0
    malformed: int = 0


class InvocationCounterCheck:
    """Receive-side invocation-counter guard for one sender and key.

    An IC is accepted only when strictly greater than the last one accepted.
    :meth:`check` never changes state; :meth:`commit` records an IC after the
    whole APDU verified, so a rejected APDU leaves no trace but the counter of
    rejections."""

    __slots__ = ("last_seen", "rejected")

    def __init__(self, last_seen: int | None = None) -> None:
        self.last_seen = last_seen
        self.rejected = 0

    def check(self, invocation_counter: int) -> None:
        """Raise :class:`ReplayError` (and count it) if the IC is not fresh."""
        if self.last_seen is not None and invocation_counter <= self.last_seen:
            self.rejected += 1
            raise ReplayError(
                f"invocation counter {invocation_counter} not above last accepted {self.last_seen}"
            )

    def commit(self, invocation_counter: int) -> None:
        """Record an IC of a fully verified APDU."""
        self.check(invocation_counter)
        self.last_seen = invocation_counter

    def __repr__(self) -> str:
        return f"InvocationCounterCheck(last_seen={self.last_seen}, rejected={self.rejected})"


# --- the GCM core ---------------------------------------------------------------------------


def _iv(system_title: bytes, invocation_counter: int) -> bytes:
    return system_title + struct.pack(">I", invocation_counter)


def _ctr(gcm: AesGcm, iv: bytes, data: bytes) -> bytes:
    # Encryption only is GCM's counter mode without tag: the keystream starts at
    # inc32(J0) = IV || 00000002.  XOR with it is its own inverse, so one GCM
    # encryption (tag dropped) both enciphers and deciphers.
    return gcm.encrypt(iv, data, None)[: len(data)]


def _seal(gcm: AesGcm, ak: bytes, iv: bytes, sc: int, plain: bytes) -> bytes:
    """body || tag for the given SC (suite 0); ``gcm`` makes 12-byte tags."""
    scb = bytes((sc,))
    auth, enc = sc & SC_AUTHENTICATION, sc & SC_ENCRYPTION
    if auth and enc:
        return gcm.encrypt(iv, plain, scb + ak)
    if enc:
        return _ctr(gcm, iv, plain)
    if auth:
        return plain + gcm.encrypt(iv, b"", scb + ak + plain)
    return plain


def _open(gcm: AesGcm, ak: bytes, iv: bytes, h: SecurityHeader) -> bytes:
    sc = h.security_control
    scb = bytes((sc,))
    if sc & SC_AUTHENTICATION and sc & SC_ENCRYPTION:
        assert h.auth_tag is not None
        # GCM with a 12-byte tag, verified (constant time) before any plaintext is released
        try:
            return gcm.decrypt(iv, h.body + h.auth_tag, scb + ak)
        except InvalidTag:
            raise AuthenticationFailed("GCM tag does not verify") from None
    if h.encrypted:
        return _ctr(gcm, iv, h.body)
    if h.authenticated:
        assert h.auth_tag is not None
        expect = gcm.encrypt(iv, b"", scb + ak + h.body)
        if not hmac.compare_digest(expect, h.auth_tag):
            raise AuthenticationFailed("GMAC tag does not verify")
        return h.body
    return h.body


def _system_title(value: object, name: str = "system_title") -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise EncodeError("must be bytes", field=name)
    b = bytes(value)
    if len(b) != SYSTEM_TITLE_LENGTH:
        raise EncodeError(f"must be {SYSTEM_TITLE_LENGTH} bytes, got {len(b)}", field=name)
    return b


_U32 = struct.Struct(">I")
# every SC byte _check_local_sc accepts: suite 0, no compression, authentication and/or
# encryption, with or without the broadcast-key bit
_VALID_LOCAL_SC = frozenset(
    b | sc for b in (0, SC_BROADCAST) for sc in (SC_AUTHENTICATION, SC_ENCRYPTION, SC_AUTHENTICATION | SC_ENCRYPTION)
)


def _check_local_sc(sc: int) -> None:
    if not isinstance(sc, int) or not 0 <= sc <= 0xFF:
        raise EncodeError("must be one byte", field="security_control")
    if sc & SC_COMPRESSION:
        raise EncodeError("compression (SC bit 7) is not supported", field="security_control")
    if sc & SC_SUITE_MASK != SUITE_0:
        raise EncodeError("only security suite 0 is supported", field="security_control")
    if not sc & (SC_AUTHENTICATION | SC_ENCRYPTION):
        raise EncodeError(
            "neither authentication (0x10) nor encryption (0x20) requested",
            field="security_control",
        )


# --- public API: protect / unprotect ------------------------------------------------------


def protect(
    plain_apdu: bytes | bytearray | memoryview,
    *,
    keys: SecurityKeys,
    system_title: bytes,
    invocation_counter: int,
    security_control: int = SC_AUTHENTICATION | SC_ENCRYPTION,
    kind: CipheringKind | str = CipheringKind.GLOBAL,
) -> bytes:
    """Cipher a plain xDLMS APDU into its glo-/ded-/general-glo-/general-ded- form.

    ``system_title`` is the *sender's* (it forms the IV); ``security_control``
    is 0x10, 0x20 or 0x30, optionally with the broadcast-key bit 0x40.
    Raises :class:`EncodeError` for bad arguments and :class:`SecurityError`
    when the key the SC selects is not configured."""
    plain = plain_apdu if type(plain_apdu) is bytes else bytes(plain_apdu)
    if not plain:
        raise EncodeError("empty APDU", field="plain_apdu")
    k = kind if type(kind) is CipheringKind else _kind(kind)
    st = (system_title if type(system_title) is bytes and len(system_title) == SYSTEM_TITLE_LENGTH
          else _system_title(system_title))
    if not isinstance(invocation_counter, int) or not 0 <= invocation_counter <= 0xFFFFFFFF:
        raise EncodeError("must be 0..2**32-1", field="invocation_counter")
    if type(security_control) is not int or security_control not in _VALID_LOCAL_SC:
        _check_local_sc(security_control)
    tag = _GLO_TAGS.get(plain[0]) if k is _GLO else None
    if tag is not None and not security_control & SC_BROADCAST:
        key = keys.ek  # the common case: glo-ciphering under the global unicast key
    else:
        if k.dedicated and security_control & SC_BROADCAST:
            raise EncodeError("broadcast key bit set on dedicated ciphering", field="security_control")
        tag = ciphered_tag(plain[0], k)
        try:
            key = keys.encryption_key(k, security_control)
        except SecurityError as exc:
            raise LocalProtocolError(str(exc)) from None
    ic = _U32.pack(invocation_counter)
    body = _seal(keys._aead(key), keys.ak, st + ic, security_control, plain)
    n = 5 + len(body)  # SC || IC || body
    head = bytes((tag,))
    if tag >= GENERAL_GLO_CIPHERING:  # general-glo / general-ded carry the system title
        head += _encode_length(SYSTEM_TITLE_LENGTH) + st
    return b"".join((head, bytes((n,)) if n < 0x80 else _encode_length(n), bytes((security_control,)), ic, body))


def decipher(
    ciphered_apdu: bytes | bytearray | memoryview | Any,
    keys: SecurityKeys,
    *,
    system_title: bytes | None = None,
    require: int = SC_AUTHENTICATION,
    counter: InvocationCounterCheck | None = None,
    stats: SecurityStats | None = None,
) -> Deciphered:
    """Verify and decrypt a ciphered APDU; return its header and the plain APDU.

    ``system_title`` is the sender's; required for glo/ded forms, checked
    against the embedded one for general-glo/ded when given.  ``require`` is a
    mask of SC bits (0x10, 0x20) the APDU must carry (security policy; pass 0
    to accept any).  ``counter`` rejects stale invocation counters before any
    crypto and records the IC only after everything verified.  ``stats`` counts
    outcomes.  Failures raise :class:`DecodeError`, :class:`ReplayError`,
    :class:`AuthenticationFailed` or :class:`SecurityError`; nothing partial is
    returned and no state changes on failure except the counters."""
    st_stats = stats if stats is not None else SecurityStats()
    try:
        h = parse_protected(ciphered_apdu)
    except DecodeError:
        st_stats.malformed += 1
        raise
    missing = require & (SC_AUTHENTICATION | SC_ENCRYPTION) & ~h.security_control
    if missing:
        st_stats.policy_rejections += 1
        raise SecurityError(
            f"security control 0x{h.security_control:02X} lacks required protection 0x{missing:02X}"
        )
    if h.service_tag is None:  # general-glo / general-ded: the title is in the APDU
        assert h.system_title is not None
        if system_title is not None and bytes(system_title) != h.system_title:
            st_stats.policy_rejections += 1
            raise SecurityError("system title in the APDU differs from the expected sender")
        st = h.system_title
    elif type(system_title) is bytes and len(system_title) == SYSTEM_TITLE_LENGTH:
        st = system_title
    else:
        if system_title is None:
            raise LocalProtocolError(f"{h.kind.value}-ciphering needs the sender's system title")
        st = _system_title(system_title)
    if counter is not None:
        try:
            counter.check(h.invocation_counter)
        except ReplayError:
            st_stats.replays += 1
            raise
    if h.kind is _GLO and not h.security_control & SC_BROADCAST:
        key = keys.ek
    else:
        try:
            key = keys.encryption_key(h.kind, h.security_control)
        except SecurityError:
            st_stats.policy_rejections += 1
            raise
    try:
        plain = _open(keys._aead(key), keys.ak, st + _U32.pack(h.invocation_counter), h)
    except AuthenticationFailed:
        st_stats.authentication_failures += 1
        raise
    if not plain:
        st_stats.malformed += 1
        raise DecodeError("no APDU inside", field="plaintext")
    if h.service_tag is not None and plain[0] != h.service_tag:
        st_stats.malformed += 1
        raise DecodeError(
            f"inner APDU tag 0x{plain[0]:02X} does not match outer tag 0x{h.tag:02X}",
            field="plaintext apdu tag",
        )
    if counter is not None:
        counter.commit(h.invocation_counter)
    st_stats.accepted += 1
    return Deciphered(h, plain)


def unprotect(
    ciphered_apdu: bytes | bytearray | memoryview | Any,
    keys: SecurityKeys,
    *,
    system_title: bytes | None = None,
    require: int = SC_AUTHENTICATION,
    counter: InvocationCounterCheck | None = None,
    stats: SecurityStats | None = None,
) -> bytes:
    """Verify and decrypt a ciphered APDU; return the plain APDU bytes.

    Same arguments and errors as :func:`decipher`."""
    return decipher(
        ciphered_apdu,
        keys,
        system_title=system_title,
        require=require,
        counter=counter,
        stats=stats,
    ).plaintext


# the rarely non-zero receive counters of a CipheringContext, by index into its ``_rare`` list
_REJECTED, _AUTH_FAILURES, _REPLAYS, _POLICY, _MALFORMED = range(5)


class _ContextCounter(InvocationCounterCheck):
    """A :class:`CipheringContext`'s invocation-counter record seen as an
    :class:`InvocationCounterCheck` (reads and writes go to the context)."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CipheringContext) -> None:
        self._ctx = ctx

    @property
    def last_seen(self) -> int | None:
        return self._ctx._last_seen

    @last_seen.setter
    def last_seen(self, value: int | None) -> None:
        self._ctx._last_seen = value

    @property
    def rejected(self) -> int:
        return self._ctx._rare_get(_REJECTED)

    @rejected.setter
    def rejected(self, value: int) -> None:
        self._ctx._rare_set(_REJECTED, value)


def _rare_property(i: int) -> Any:
    return property(lambda self: self._ctx._rare_get(i),
                    lambda self, v: self._ctx._rare_set(i, v))


class _ContextStats(SecurityStats):
    """A :class:`CipheringContext`'s counters seen as :class:`SecurityStats` (live)."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CipheringContext) -> None:
        self._ctx = ctx

    @property
    def accepted(self) -> int:
        return self._ctx._accepted

    @accepted.setter
    def accepted(self, value: int) -> None:
        self._ctx._accepted = value

    authentication_failures = _rare_property(_AUTH_FAILURES)
    replays = _rare_property(_REPLAYS)
    policy_rejections = _rare_property(_POLICY)
    malformed = _rare_property(_MALFORMED)

    def _values(self) -> tuple[int, ...]:
        return (self.accepted, self.authentication_failures, self.replays, self.policy_rejections,
                self.malformed)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _ContextStats):
            return self._values() == other._values()
        if isinstance(other, SecurityStats):
            return self._values() == (other.accepted, other.authentication_failures, other.replays,
                                      other.policy_rejections, other.malformed)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        a, f, r, p, m = self._values()
        return (f"SecurityStats(accepted={a}, authentication_failures={f}, replays={r}, "
                f"policy_rejections={p}, malformed={m})")


class CipheringContext:
    """Suite 0 ciphering for one side of an association (sans-I/O, no clock).

    Holds the keys, our system title and the next invocation counter to send,
    the peer's system title and the invocation-counter record of what it sends
    (:attr:`receive`, an :class:`InvocationCounterCheck`), a receive policy
    (``require``) and counters (:attr:`stats`, :class:`SecurityStats`).  Each
    :meth:`protect` uses a fresh IC; the IC space is never wrapped around.

    One context per meter association on a head-end, so it is kept small: the
    counters live in the context itself (``receive`` and ``stats`` are live views
    of them), the rarely non-zero ones in a list made on the first failure."""

    __slots__ = (
        "_accepted",
        "_last_seen",
        "_rare",
        "keys",
        "next_invocation_counter",
        "own_system_title",
        "peer_system_title",
        "require",
        "security_control",
    )

    def __init__(
        self,
        keys: SecurityKeys,
        *,
        own_system_title: bytes,
        peer_system_title: bytes | None = None,
        invocation_counter: int = 0,
        peer_last_invocation_counter: int | None = None,
        security_control: int = SC_AUTHENTICATION | SC_ENCRYPTION,
        require: int = SC_AUTHENTICATION,
    ) -> None:
        _check_local_sc(security_control)
        if not isinstance(invocation_counter, int) or not 0 <= invocation_counter <= 1 << 32:
            raise EncodeError("must be 0..2**32", field="invocation_counter")
        self.keys = keys
        self.own_system_title = _system_title(own_system_title, "own_system_title")
        self.peer_system_title = (
            None
            if peer_system_title is None
            else _system_title(peer_system_title, "peer_system_title")
        )
        self.next_invocation_counter = invocation_counter
        self.security_control = security_control
        self.require = require
        self._last_seen = peer_last_invocation_counter
        self._accepted = 0
        self._rare: list[int] | None = None

    @property
    def receive(self) -> InvocationCounterCheck:
        """The record of the peer's invocation counters (a live view of this context)."""
        return _ContextCounter(self)

    @property
    def stats(self) -> SecurityStats:
        """The receive counters (a live view of this context)."""
        return _ContextStats(self)

    def _rare_get(self, i: int) -> int:
        r = self._rare
        return 0 if r is None else r[i]

    def _rare_set(self, i: int, value: int) -> None:
        r = self._rare
        if r is None:
            if not value:
                return
            r = self._rare = [0, 0, 0, 0, 0]
        r[i] = value

    def _peek_ic(self) -> int:
        ic = self.next_invocation_counter
        if ic > 0xFFFFFFFF:
            raise LocalProtocolError("invocation counter exhausted: the key must be renewed")
        return ic

    def protect(
        self,
        plain_apdu: bytes | bytearray | memoryview,
        *,
        kind: CipheringKind | str = CipheringKind.GLOBAL,
        security_control: int | None = None,
    ) -> bytes:
        """Cipher an outgoing APDU with the next invocation counter (consumed only on success)."""
        if (kind is _GLO and security_control is None and type(plain_apdu) is bytes
                and self.security_control == _SC_AE):
            # hot path: glo-ciphering, SC 0x30, short APDU (same bytes as the general path)
            ic = self.next_invocation_counter
            tag = _GLO_TAGS.get(plain_apdu[0]) if plain_apdu else None
            n = len(plain_apdu) + 17  # SC || IC || C || T
            st = self.own_system_title
            if tag is not None and 0 <= ic <= 0xFFFFFFFF and n < 0x80 and len(st) == SYSTEM_TITLE_LENGTH:
                keys = self.keys
                g = keys._gcm_ek
                if g is None:
                    g = keys._aead(keys.ek)
                head = _HEAD.pack(tag, n, _SC_AE, ic)  # tag, length, SC, IC
                ct = g.encrypt(st + head[3:], plain_apdu, keys._aad_ae)  # C || 12-byte T
                self.next_invocation_counter = ic + 1
                return head + ct
        ic = self._peek_ic()
        out = protect(
            plain_apdu,
            keys=self.keys,
            system_title=self.own_system_title,
            invocation_counter=ic,
            security_control=(
                self.security_control if security_control is None else security_control
            ),
            kind=kind,
        )
        self.next_invocation_counter = ic + 1
        return out

    def unprotect(self, ciphered_apdu: bytes | bytearray | memoryview | Any) -> bytes:
        """Verify and decrypt an incoming APDU from the peer (IC checked and recorded)."""
        # hot path: glo-ciphering, SC 0x30, short length form, a fresh IC, and it verifies.
        # Anything else (including every failure) goes through decipher(), which gives the
        # errors and counts them; the hot path changes state only on success.
        if type(ciphered_apdu) is bytes and 19 < len(ciphered_apdu) < 0x82:
            tag, n, sc, ic = _HEAD.unpack_from(ciphered_apdu)
            service = _GLO_SERVICE.get(tag)
            peer = self.peer_system_title
            n += 2
            if (service is not None and n == len(ciphered_apdu) and sc == _SC_AE
                    and type(peer) is bytes and len(peer) == SYSTEM_TITLE_LENGTH):
                last = self._last_seen
                if last is None or ic > last:
                    keys = self.keys
                    g = keys._gcm_ek
                    if g is None:
                        g = keys._aead(keys.ek)
                    try:  # one GCM decryption; the 12-byte tag is verified in constant time
                        plain = g.decrypt(peer + ciphered_apdu[3:7], ciphered_apdu[7:], keys._aad_ae)
                    except InvalidTag:
                        pass
                    else:
                        if plain[0] == service:
                            self._last_seen = ic
                            self._accepted += 1
                            return plain
        return decipher(
            ciphered_apdu,
            self.keys,
            system_title=self.peer_system_title,
            require=self.require,
            counter=self.receive,
            stats=self.stats,
        ).plaintext

    def hls_response(self, challenge: bytes) -> bytes:
        """Our HLS-5 ``f(challenge)`` for the peer's challenge, with the next IC."""
        ic = self._peek_ic()
        out = hls_gmac(self.keys, self.own_system_title, ic, challenge)
        self.next_invocation_counter = ic + 1
        return out

    def verify_hls_response(self, challenge: bytes, response: bytes) -> int:
        """Check the peer's HLS-5 ``f(challenge)`` for our challenge; returns its IC."""
        if self.peer_system_title is None:
            raise LocalProtocolError("the peer's system title is not known")
        return verify_hls_gmac(
            self.keys,
            self.peer_system_title,
            challenge,
            response,
            counter=self.receive,
            stats=self.stats,
        )

    def __repr__(self) -> str:
        return (
            f"CipheringContext(own={self.own_system_title.hex().upper()}, "
            f"peer={self.peer_system_title.hex().upper() if self.peer_system_title else None}, "
            f"next_ic={self.next_invocation_counter}, {self.stats})"
        )


# --- HLS-5 (GMAC) and LLS (Green Book §9.2.7.4 / 62056-5-3 §5.3.4) ------------------------

HLS_GMAC_LENGTH = 1 + 4 + TAG_LENGTH


def hls_gmac(
    keys: SecurityKeys,
    system_title: bytes,
    invocation_counter: int,
    challenge: bytes,
    *,
    security_control: int = SC_AUTHENTICATION,
) -> bytes:
    """HLS-5 ``f(challenge) = SC || IC || GMAC(SC || AK || challenge)``.

    Pass 3: the client answers StoC with its own system title and IC; pass 4:
    the server answers CtoS with its system title and IC.  The GMAC key is the
    global unicast encryption key (the broadcast key if SC bit 6 is set)."""
    st = _system_title(system_title)
    if security_control & ~SC_BROADCAST != SC_AUTHENTICATION:
        raise EncodeError("HLS-5 uses SC 0x10 (optionally | 0x40)", field="security_control")
    if not 0 <= invocation_counter <= 0xFFFFFFFF:
        raise EncodeError("must be 0..2**32-1", field="invocation_counter")
    try:
        key = keys.encryption_key(CipheringKind.GLOBAL, security_control)
    except SecurityError as exc:
        raise LocalProtocolError(str(exc)) from None
    scb = bytes((security_control,))
    tag = keys._aead(key).encrypt(_iv(st, invocation_counter), b"", scb + keys.ak + bytes(challenge))
    return scb + struct.pack(">I", invocation_counter) + tag[:TAG_LENGTH]


def verify_hls_gmac(
    keys: SecurityKeys,
    system_title: bytes,
    challenge: bytes,
    response: bytes,
    *,
    counter: InvocationCounterCheck | None = None,
    stats: SecurityStats | None = None,
) -> int:
    """Check an HLS-5 ``f(challenge)`` computed by the peer whose system title
    is given; return the peer's invocation counter.  Raises
    :class:`AuthenticationFailed` (counted) when it does not verify."""
    st_stats = stats if stats is not None else SecurityStats()
    resp = bytes(response)
    if len(resp) != HLS_GMAC_LENGTH:
        st_stats.malformed += 1
        raise DecodeError(
            f"must be {HLS_GMAC_LENGTH} bytes, got {len(resp)}", field="hls-5 response"
        )
    sc = resp[0]
    if sc & ~SC_BROADCAST != SC_AUTHENTICATION:
        st_stats.malformed += 1
        raise DecodeError(
            f"security control 0x{sc:02X} is not 0x10", field="hls-5 response", offset=0
        )
    ic: int = struct.unpack_from(">I", resp, 1)[0]
    if counter is not None:
        try:
            counter.check(ic)
        except ReplayError:
            st_stats.replays += 1
            raise
    try:
        expect = hls_gmac(keys, system_title, ic, challenge, security_control=sc)
    except LocalProtocolError as exc:
        st_stats.policy_rejections += 1
        raise SecurityError(str(exc)) from None
    if not hmac.compare_digest(expect, resp):
        st_stats.authentication_failures += 1
        raise AuthenticationFailed("HLS-5 GMAC does not verify")
    if counter is not None:
        counter.commit(ic)
    st_stats.accepted += 1
    return ic


def verify_lls_password(expected: bytes, received: bytes) -> None:
    """LLS: compare the calling-authentication-value with the secret in
    constant time; raise :class:`AuthenticationFailed` if they differ."""
    if not hmac.compare_digest(bytes(expected), bytes(received)):
        raise AuthenticationFailed("LLS password does not match")


# --- RFC 3394 key wrap, Security setup key_transfer ----------------------------------------


def wrap_key(kek: bytes, key: bytes) -> bytes:
    """RFC 3394 AES key wrap of ``key`` under the master key ``kek``."""
    kek_b = _key_bytes(kek, "kek")
    assert kek_b is not None
    k = bytes(key)
    if len(k) < 16 or len(k) % 8:
        raise EncodeError("must be a multiple of 8 bytes, at least 16", field="key")
    return aes_key_wrap(kek_b, k)


def unwrap_key(kek: bytes, wrapped: bytes) -> bytes:
    """RFC 3394 unwrap; :class:`AuthenticationFailed` when the integrity check fails."""
    kek_b = _key_bytes(kek, "kek")
    assert kek_b is not None
    w = bytes(wrapped)
    if len(w) < 24 or len(w) % 8:
        raise DecodeError("must be a multiple of 8 bytes, at least 24", field="wrapped key")
    try:
        return aes_key_unwrap(kek_b, w)
    except InvalidUnwrap:
        raise AuthenticationFailed("key unwrap integrity check failed") from None


class KeyId(IntEnum):
    """Security setup (class 64) key_id of ``global_key_transfer``."""

    GLOBAL_UNICAST_ENCRYPTION = 0
    GLOBAL_BROADCAST_ENCRYPTION = 1
    AUTHENTICATION = 2
    MASTER = 3


_T_ARRAY, _T_STRUCT, _T_OCTETS, _T_ENUM = 0x01, 0x02, 0x09, 0x16


def encode_key_transfer(kek: bytes, keys: Iterable[tuple[KeyId | int, bytes]]) -> bytes:
    """Method data of Security setup ``global_key_transfer``: A-XDR
    ``array of structure {key_id: enum, key_wrapped: octet-string}``, each key
    wrapped under ``kek`` (RFC 3394)."""
    items = list(keys)
    out = bytearray((_T_ARRAY,)) + _encode_length(len(items))
    for key_id, key in items:
        try:
            kid = KeyId(key_id)
        except ValueError:
            raise EncodeError(f"unknown key id {key_id}", field="key_id") from None
        w = wrap_key(kek, key)
        out += bytes((_T_STRUCT, 2, _T_ENUM, kid, _T_OCTETS)) + _encode_length(len(w)) + w
    return bytes(out)


def decode_key_transfer(
    kek: bytes, data: bytes | bytearray | memoryview
) -> list[tuple[KeyId, bytes]]:
    """Parse and unwrap ``global_key_transfer`` method data.  Malformed data
    raises :class:`DecodeError`; a failed unwrap :class:`AuthenticationFailed`.
    Either all keys are returned or none."""
    buf = bytes(data)

    def expect(pos: int, tag: int, name: str) -> int:
        if pos >= len(buf) or buf[pos] != tag:
            raise DecodeError(f"expected A-XDR tag 0x{tag:02X}", field=name, offset=pos)
        return pos + 1

    pos = expect(0, _T_ARRAY, "key_transfer array")
    count, pos = _decode_length(buf, pos, "key_transfer array")
    raw: list[tuple[KeyId, bytes]] = []
    for _ in range(count):
        pos = expect(pos, _T_STRUCT, "key_data")
        if pos >= len(buf) or buf[pos] != 2:
            raise DecodeError("structure must have 2 elements", field="key_data", offset=pos)
        pos = expect(pos + 1, _T_ENUM, "key_id")
        if pos >= len(buf):
            raise DecodeError("truncated", field="key_id", offset=pos)
        try:
            kid = KeyId(buf[pos])
        except ValueError:
            raise DecodeError(f"unknown key id {buf[pos]}", field="key_id", offset=pos) from None
        pos = expect(pos + 1, _T_OCTETS, "key_wrapped")
        n, pos = _decode_length(buf, pos, "key_wrapped")
        if pos + n > len(buf):
            raise DecodeError("truncated", field="key_wrapped", offset=pos)
        raw.append((kid, buf[pos : pos + n]))
        pos += n
    if pos != len(buf):
        raise DecodeError("trailing bytes", field="key_transfer array", offset=pos)
    return [(kid, unwrap_key(kek, w)) for kid, w in raw]
