"""ACSE APDUs in BER: AARQ [APPLICATION 0], AARE [1], RLRQ [2], RLRE [3].

ISO/IEC 8650-1 as profiled by the Green Book (DLMS UA 1000-2 §9.4 / IEC 62056-5-3):
application-context-name ``2.16.756.5.8.1.x`` (1 LN, 2 SN, 3 LN ciphered, 4 SN ciphered),
mechanism-name ``2.16.756.5.8.2.x`` (0 lowest .. 7 HLS-ECDSA), authentication values as
GraphicString (charstring [0]), AP titles as OCTET STRING (AP-title-form2), and the xDLMS
InitiateRequest/InitiateResponse/ConfirmedServiceError (or a glo-/ded-/general- ciphered
one) in the user-information [30] OCTET STRING.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import DecodeError, EncodeError
from .xdlms import _base
from .xdlms._base import Apdu, LenientIntEnum

__all__ = [
    "AARE",
    "AARQ",
    "RLRE",
    "RLRQ",
    "AcseServiceProviderDiagnostic",
    "AcseServiceUserDiagnostic",
    "ApplicationContextName",
    "AssociationResult",
    "MechanismName",
    "ReleaseRequestReason",
    "ReleaseResponseReason",
]

_CONTEXT_PREFIX = bytes.fromhex("608574050801")
_MECHANISM_PREFIX = bytes.fromhex("608574050802")


class ApplicationContextName(LenientIntEnum):
    """Last arc of 2.16.756.5.8.1.x."""

    LOGICAL_NAME = 1
    SHORT_NAME = 2
    LOGICAL_NAME_WITH_CIPHERING = 3
    SHORT_NAME_WITH_CIPHERING = 4


class MechanismName(LenientIntEnum):
    """Last arc of 2.16.756.5.8.2.x (authentication mechanism)."""

    LOWEST = 0
    LOW = 1
    HIGH = 2
    HIGH_MD5 = 3
    HIGH_SHA1 = 4
    HIGH_GMAC = 5
    HIGH_SHA256 = 6
    HIGH_ECDSA = 7


class AssociationResult(LenientIntEnum):
    ACCEPTED = 0
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class AcseServiceUserDiagnostic(LenientIntEnum):
    """result-source-diagnostic acse-service-user [1]."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AP_TITLE_NOT_RECOGNIZED = 3
    CALLING_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 4
    CALLING_AE_QUALIFIER_NOT_RECOGNIZED = 5
    CALLING_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 6
    CALLED_AP_TITLE_NOT_RECOGNIZED = 7
    CALLED_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 8
    CALLED_AE_QUALIFIER_NOT_RECOGNIZED = 9
    CALLED_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 10
    AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED = 11
    AUTHENTICATION_MECHANISM_NAME_REQUIRED = 12
    AUTHENTICATION_FAILURE = 13
    AUTHENTICATION_REQUIRED = 14


class AcseServiceProviderDiagnostic(LenientIntEnum):
    """result-source-diagnostic acse-service-provider [2]."""

    NULL = 0
    NO_REASON_GIVEN = 1
    NO_COMMON_ACSE_VERSION = 2


class ReleaseRequestReason(LenientIntEnum):
    NORMAL = 0
    URGENT = 1
    USER_DEFINED = 30


class ReleaseResponseReason(LenientIntEnum):
    NORMAL = 0
    NOT_FINISHED = 1
    USER_DEFINED = 30


# --------------------------------------------------------------------------- BER helpers


def _len_enc(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    if n <= 0xFFFF:
        return bytes((0x82, n >> 8, n & 0xFF))
    raise EncodeError("BER content longer than 65535 bytes", field="length")


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _len_enc(len(content)) + content


def _read_tlv(buf: bytes, pos: int, end: int, field: str) -> tuple[int, bytes, int]:
    """Read one TLV inside ``buf[pos:end]``: (tag, content, next)."""
    if pos >= end:
        raise DecodeError("truncated: missing tag", field=field, offset=pos)
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise DecodeError(f"multi-byte BER tags are not used in ACSE (0x{tag:02X})",
                          field=field, offset=pos)
    if pos + 1 >= end:
        raise DecodeError("truncated: missing length", field=field, offset=pos + 1)
    n = buf[pos + 1]
    p = pos + 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 2:
            raise DecodeError(f"unsupported BER length form 0x{n:02X}", field=field, offset=pos + 1)
        if p + k > end:
            raise DecodeError("truncated length", field=field, offset=p)
        n = int.from_bytes(buf[p:p + k], "big")
        p += k
    if p + n > end:
        raise DecodeError(f"length {n} exceeds the {end - p} byte(s) available",
                          field=field, offset=pos + 1)
    return tag, bytes(buf[p:p + n]), p + n


def _only(content: bytes, tag: int, field: str) -> bytes:
    """Content of the single inner TLV with ``tag`` that fills ``content``."""
    t, inner, nxt = _read_tlv(content, 0, len(content), field)
    if t != tag:
        raise DecodeError(f"expected tag 0x{tag:02X}, got 0x{t:02X}", field=field)
    if nxt != len(content):
        raise DecodeError("trailing bytes", field=field, offset=nxt)
    return inner


def _int_dec(content: bytes, field: str) -> int:
    if not content or len(content) > 8:
        raise DecodeError("INTEGER must be 1..8 bytes", field=field)
    return int.from_bytes(content, "big", signed=True)


def _int_enc(v: int, field: str) -> bytes:
    if not isinstance(v, int) or isinstance(v, bool):
        raise EncodeError("must be an int", field=field)
    n = max(1, (v + (v < 0)).bit_length() // 8 + 1)
    if n > 8:
        raise EncodeError("INTEGER too large", field=field)
    return v.to_bytes(n, "big", signed=True)


def _oid_arc(content: bytes, prefix: bytes, field: str) -> int:
    if len(content) != len(prefix) + 1 or not content.startswith(prefix):
        raise DecodeError(f"not a DLMS UA object identifier: {content.hex()}", field=field)
    return content[-1]


def _enum_byte(content: bytes, field: str) -> int:
    """An INTEGER/ENUMERATED content holding a small non-negative value."""
    v = _int_dec(content, field)
    if not 0 <= v <= 0xFFFF:
        raise DecodeError(f"value {v} out of range", field=field)
    return v


def _acse_req_dec(content: bytes, field: str) -> bool:
    # ACSE-requirements ::= BIT STRING {authentication(0)}: one content octet plus the
    # unused-bits count (07 80 when set)
    if len(content) != 2 or content[0] > 7:
        raise DecodeError("ACSE-requirements must be a 1-octet BIT STRING", field=field)
    return bool(content[1] & 0x80)


def _acse_req_enc(tag: int, v: bool) -> bytes:
    return _tlv(tag, b"\x07\x80") if v else b""


def _octets_enc(tag: int, v: bytes | None, field: str) -> bytes:
    if v is None:
        return b""
    return _tlv(tag, _tlv(0x04, _base.check_bytes(v, field)))


def _int_field_enc(tag: int, v: int | None, field: str) -> bytes:
    if v is None:
        return b""
    return _tlv(tag, _tlv(0x02, _int_enc(v, field)))


def _auth_enc(tag: int, v: bytes | None, field: str) -> bytes:
    if v is None:
        return b""
    return _tlv(tag, _tlv(0x80, _base.check_bytes(v, field)))


def _user_info_enc(v: Apdu | None) -> bytes:
    if v is None:
        return b""
    if not isinstance(v, Apdu):
        raise EncodeError("must be an Apdu", field="user_information")
    return _tlv(0xBE, _tlv(0x04, v.to_bytes()))


def _user_info_dec(content: bytes) -> Apdu:
    inner = _only(content, 0x04, "user_information")
    from .xdlms.apdu import decode_apdu  # local: xdlms.apdu imports nothing from here
    from .xdlms.ciphered import CipheredApdu

    try:
        apdu = decode_apdu(inner)
    except DecodeError as exc:
        raise DecodeError(_base._strip(str(exc)),
                          field=f"user_information.{exc.field or 'apdu'}") from None
    if apdu.TAG in (0x60, 0x61, 0x62, 0x63):
        raise DecodeError("ACSE APDU nested in user-information", field="user_information")
    tag = apdu.tag if isinstance(apdu, CipheredApdu) else apdu.TAG
    if tag not in _USER_INFO_TAGS:
        raise DecodeError(f"APDU 0x{tag:02X} cannot be user-information (only an xDLMS "
                          "Initiate or ConfirmedServiceError, plain or ciphered)", field="user_information")
    return apdu


# user-information [30] of AARQ/AARE/RLRQ/RLRE carries the xDLMS InitiateRequest (0x01),
# InitiateResponse (0x08) or ConfirmedServiceError (0x0E), plain, glo- (0x21/0x28/0x2E),
# ded- (0x41/0x48/0x4E) or general-glo/-ded ciphered (0xDB/0xDC): Green Book §9.4, §9.5
_USER_INFO_TAGS = frozenset((0x01, 0x08, 0x0E, 0x21, 0x28, 0x2E, 0x41, 0x48, 0x4E, 0xDB, 0xDC))


def _ctx_enc(v: int) -> bytes:
    return _tlv(0xA1, _tlv(0x06, _CONTEXT_PREFIX + bytes((_base.check_u8(
        v, "application_context_name"),))))


def _mech_enc(tag: int, v: int | None) -> bytes:
    if v is None:
        return b""
    return _tlv(tag, _MECHANISM_PREFIX + bytes((_base.check_u8(v, "mechanism_name"),)))


def _pv_enc(v: bytes | None) -> bytes:
    return b"" if v is None else _tlv(0x80, _base.check_bytes(v, "protocol_version"))


#: calling- (AARQ [12]) and responding-authentication-value (AARE [10])
_AUTH_VALUE_TAGS = (0xAC, 0xAA)


def _parse(buf: bytes, apdu_tag: int, name: str,
           fields: dict[int, tuple[str, Callable[[bytes, str], Any]]]) -> dict[str, Any]:
    """Parse ``[APPLICATION n] IMPLICIT SEQUENCE`` into {field name: value}.

    Offsets in errors are absolute positions in ``buf`` (of the failing component)."""
    tag, content, nxt = _read_tlv(buf, 0, len(buf), name)
    if tag != apdu_tag:
        raise DecodeError(f"expected tag 0x{apdu_tag:02X}", field=name, offset=0)
    if nxt != len(buf):
        raise DecodeError(f"{len(buf) - nxt} trailing byte(s)", field=name, offset=nxt)
    out: dict[str, Any] = {}
    pos = nxt - len(content)
    while pos < nxt:
        if (buf[pos] in _AUTH_VALUE_TAGS and pos + 3 < nxt and buf[pos + 2] == 0x80
                and buf[pos + 1] == buf[pos + 3] < 0x80 and pos + 4 + buf[pos + 1] <= nxt):
            # [D] tolerated encoder defect (gurux-dlms _GXAPDU, dlms-anchors.md §5 #7):
            # the outer length of an authentication-value counts only the inner
            # charstring's content (AA 08 80 08 ..).  Valid BER never looks like this
            # (the inner TLV needs two more octets), so nothing valid is misread.
            t, npos = buf[pos], pos + 4 + buf[pos + 1]
            inner = bytes(buf[pos + 2:npos])
        else:
            t, inner, npos = _read_tlv(buf, pos, nxt, name)
        spec = fields.get(t)
        if spec is None:
            raise DecodeError(f"unexpected component tag 0x{t:02X}", field=name, offset=pos)
        fname, conv = spec
        if fname in out:
            raise DecodeError("duplicate component", field=fname, offset=pos)
        try:
            out[fname] = conv(inner, fname)
        except DecodeError as exc:
            where = exc.field or fname
            if not where.startswith(fname):
                where = f"{fname}.{where}"
            raise DecodeError(_base._strip(str(exc)), field=where, offset=pos) from None
        pos = npos
    return out


def _conv_pv(c: bytes, f: str) -> bytes:
    if not c or c[0] > 7:
        raise DecodeError("bad BIT STRING", field=f)
    return c


def _conv_ctx(c: bytes, f: str) -> ApplicationContextName:
    return ApplicationContextName(_oid_arc(_only(c, 0x06, f), _CONTEXT_PREFIX, f))


def _conv_mech(c: bytes, f: str) -> MechanismName:
    return MechanismName(_oid_arc(c, _MECHANISM_PREFIX, f))


def _conv_octets(c: bytes, f: str) -> bytes:
    return _only(c, 0x04, f)


def _conv_int(c: bytes, f: str) -> int:
    return _int_dec(_only(c, 0x02, f), f)


def _conv_auth(c: bytes, f: str) -> bytes:
    t, inner, nxt = _read_tlv(c, 0, len(c), f)
    if t != 0x80 or nxt != len(c):
        raise DecodeError("only the charstring [0] authentication-value is supported", field=f)
    return inner


def _conv_ui(c: bytes, f: str) -> Apdu:
    return _user_info_dec(c)


def _conv_raw(c: bytes, f: str) -> bytes:
    return c


def _conv_reason(enum_cls: type) -> Callable[[bytes, str], Any]:
    def conv(c: bytes, f: str) -> Any:
        return enum_cls(_enum_byte(c, f))
    return conv


# --------------------------------------------------------------------------- AARQ


@dataclass(frozen=True, slots=True)
class AARQ(Apdu):
    """A-ASSOCIATE.request.  ``calling_authentication_value`` (the LLS password or
    the HLS challenge CtoS) is kept out of the repr."""

    application_context_name: ApplicationContextName = ApplicationContextName.LOGICAL_NAME
    user_information: Apdu | None = None
    sender_acse_requirements: bool = False
    mechanism_name: MechanismName | None = None
    calling_authentication_value: bytes | None = field(default=None, repr=False)
    calling_ap_title: bytes | None = None
    calling_ae_qualifier: bytes | None = None
    calling_ap_invocation_id: int | None = None
    calling_ae_invocation_id: int | None = None
    called_ap_title: bytes | None = None
    called_ae_qualifier: bytes | None = None
    called_ap_invocation_id: int | None = None
    called_ae_invocation_id: int | None = None
    protocol_version: bytes | None = None
    implementation_information: bytes | None = None
    TAG = 0x60
    NAME = "aarq"

    @property
    def ciphered(self) -> bool:
        return self.application_context_name in (3, 4)

    def to_bytes(self) -> bytes:
        body = b"".join((
            _pv_enc(self.protocol_version),
            _ctx_enc(self.application_context_name),
            _octets_enc(0xA2, self.called_ap_title, "called_ap_title"),
            _octets_enc(0xA3, self.called_ae_qualifier, "called_ae_qualifier"),
            _int_field_enc(0xA4, self.called_ap_invocation_id, "called_ap_invocation_id"),
            _int_field_enc(0xA5, self.called_ae_invocation_id, "called_ae_invocation_id"),
            _octets_enc(0xA6, self.calling_ap_title, "calling_ap_title"),
            _octets_enc(0xA7, self.calling_ae_qualifier, "calling_ae_qualifier"),
            _int_field_enc(0xA8, self.calling_ap_invocation_id, "calling_ap_invocation_id"),
            _int_field_enc(0xA9, self.calling_ae_invocation_id, "calling_ae_invocation_id"),
            _acse_req_enc(0x8A, self.sender_acse_requirements),
            _mech_enc(0x8B, self.mechanism_name),
            _auth_enc(0xAC, self.calling_authentication_value, "calling_authentication_value"),
            b"" if self.implementation_information is None else _tlv(
                0x9D, _base.check_bytes(self.implementation_information,
                                        "implementation_information")),
            _user_info_enc(self.user_information),
        ))
        return _tlv(0x60, body)


_AARQ_FIELDS: dict[int, tuple[str, Callable[[bytes, str], Any]]] = {
    0x80: ("protocol_version", _conv_pv),
    0xA1: ("application_context_name", _conv_ctx),
    0xA2: ("called_ap_title", _conv_octets),
    0xA3: ("called_ae_qualifier", _conv_octets),
    0xA4: ("called_ap_invocation_id", _conv_int),
    0xA5: ("called_ae_invocation_id", _conv_int),
    0xA6: ("calling_ap_title", _conv_octets),
    0xA7: ("calling_ae_qualifier", _conv_octets),
    0xA8: ("calling_ap_invocation_id", _conv_int),
    0xA9: ("calling_ae_invocation_id", _conv_int),
    0x8A: ("sender_acse_requirements", _acse_req_dec),
    0x8B: ("mechanism_name", _conv_mech),
    0xAC: ("calling_authentication_value", _conv_auth),
    0x9D: ("implementation_information", _conv_raw),
    0xBE: ("user_information", _conv_ui),
}


def _dec_aarq(buf: bytes) -> AARQ:
    f = _parse(buf, 0x60, "aarq", _AARQ_FIELDS)
    if "application_context_name" not in f:
        raise DecodeError("missing application-context-name", field="application_context_name")
    return AARQ(**f)


# --------------------------------------------------------------------------- AARE


@dataclass(frozen=True, slots=True)
class AARE(Apdu):
    """A-ASSOCIATE.response.  ``diagnostic`` is an :class:`AcseServiceUserDiagnostic`
    (acse-service-user [1]) or an :class:`AcseServiceProviderDiagnostic` ([2])."""

    application_context_name: ApplicationContextName = ApplicationContextName.LOGICAL_NAME
    result: AssociationResult = AssociationResult.ACCEPTED
    diagnostic: AcseServiceUserDiagnostic | AcseServiceProviderDiagnostic = \
        AcseServiceUserDiagnostic.NULL
    user_information: Apdu | None = None
    responder_acse_requirements: bool = False
    mechanism_name: MechanismName | None = None
    responding_authentication_value: bytes | None = None
    responding_ap_title: bytes | None = None
    responding_ae_qualifier: bytes | None = None
    responding_ap_invocation_id: int | None = None
    responding_ae_invocation_id: int | None = None
    protocol_version: bytes | None = None
    implementation_information: bytes | None = None
    TAG = 0x61
    NAME = "aare"

    @property
    def accepted(self) -> bool:
        return self.result == AssociationResult.ACCEPTED

    def to_bytes(self) -> bytes:
        if isinstance(self.diagnostic, AcseServiceProviderDiagnostic):
            diag = _tlv(0xA2, _tlv(0x02, _int_enc(int(self.diagnostic), "diagnostic")))
        else:
            diag = _tlv(0xA1, _tlv(0x02, _int_enc(_base.check_u16(self.diagnostic, "diagnostic"),
                                                  "diagnostic")))
        body = b"".join((
            _pv_enc(self.protocol_version),
            _ctx_enc(self.application_context_name),
            _tlv(0xA2, _tlv(0x02, _int_enc(_base.check_u8(self.result, "result"), "result"))),
            _tlv(0xA3, diag),
            _octets_enc(0xA4, self.responding_ap_title, "responding_ap_title"),
            _octets_enc(0xA5, self.responding_ae_qualifier, "responding_ae_qualifier"),
            _int_field_enc(0xA6, self.responding_ap_invocation_id, "responding_ap_invocation_id"),
            _int_field_enc(0xA7, self.responding_ae_invocation_id, "responding_ae_invocation_id"),
            _acse_req_enc(0x88, self.responder_acse_requirements),
            _mech_enc(0x89, self.mechanism_name),
            _auth_enc(0xAA, self.responding_authentication_value,
                      "responding_authentication_value"),
            b"" if self.implementation_information is None else _tlv(
                0x9D, _base.check_bytes(self.implementation_information,
                                        "implementation_information")),
            _user_info_enc(self.user_information),
        ))
        return _tlv(0x61, body)


def _conv_result(c: bytes, f: str) -> AssociationResult:
    return AssociationResult(_enum_byte(_only(c, 0x02, f), f))


def _conv_diag(c: bytes, f: str) -> Any:
    t, inner, nxt = _read_tlv(c, 0, len(c), f)
    if nxt != len(c):
        raise DecodeError("trailing bytes", field=f)
    v = _enum_byte(_only(inner, 0x02, f), f)
    if t == 0xA1:
        return AcseServiceUserDiagnostic(v)
    if t == 0xA2:
        return AcseServiceProviderDiagnostic(v)
    raise DecodeError(f"unknown diagnostic source 0x{t:02X}", field=f)


_AARE_FIELDS: dict[int, tuple[str, Callable[[bytes, str], Any]]] = {
    0x80: ("protocol_version", _conv_pv),
    0xA1: ("application_context_name", _conv_ctx),
    0xA2: ("result", _conv_result),
    0xA3: ("diagnostic", _conv_diag),
    0xA4: ("responding_ap_title", _conv_octets),
    0xA5: ("responding_ae_qualifier", _conv_octets),
    0xA6: ("responding_ap_invocation_id", _conv_int),
    0xA7: ("responding_ae_invocation_id", _conv_int),
    0x88: ("responder_acse_requirements", _acse_req_dec),
    0x89: ("mechanism_name", _conv_mech),
    0xAA: ("responding_authentication_value", _conv_auth),
    0x9D: ("implementation_information", _conv_raw),
    0xBE: ("user_information", _conv_ui),
}


def _dec_aare(buf: bytes) -> AARE:
    f = _parse(buf, 0x61, "aare", _AARE_FIELDS)
    for req in ("application_context_name", "result", "diagnostic"):
        if req not in f:
            raise DecodeError(f"missing {req}", field=req)
    return AARE(**f)


# --------------------------------------------------------------------------- RLRQ / RLRE


@dataclass(frozen=True, slots=True)
class RLRQ(Apdu):
    """A-RELEASE.request."""

    reason: ReleaseRequestReason | None = ReleaseRequestReason.NORMAL
    user_information: Apdu | None = None
    TAG = 0x62
    NAME = "rlrq"

    def to_bytes(self) -> bytes:
        r = b"" if self.reason is None else _tlv(0x80, _int_enc(
            _base.check_u8(self.reason, "reason"), "reason"))
        return _tlv(0x62, r + _user_info_enc(self.user_information))


@dataclass(frozen=True, slots=True)
class RLRE(Apdu):
    """A-RELEASE.response."""

    reason: ReleaseResponseReason | None = ReleaseResponseReason.NORMAL
    user_information: Apdu | None = None
    TAG = 0x63
    NAME = "rlre"

    def to_bytes(self) -> bytes:
        r = b"" if self.reason is None else _tlv(0x80, _int_enc(
            _base.check_u8(self.reason, "reason"), "reason"))
        return _tlv(0x63, r + _user_info_enc(self.user_information))


_RLRQ_FIELDS: dict[int, tuple[str, Callable[[bytes, str], Any]]] = {
    0x80: ("reason", _conv_reason(ReleaseRequestReason)),
    0xBE: ("user_information", _conv_ui),
}
_RLRE_FIELDS: dict[int, tuple[str, Callable[[bytes, str], Any]]] = {
    0x80: ("reason", _conv_reason(ReleaseResponseReason)),
    0xBE: ("user_information", _conv_ui),
}


def _dec_rlrq(buf: bytes) -> RLRQ:
    f = _parse(buf, 0x62, "rlrq", _RLRQ_FIELDS)
    return RLRQ(f.get("reason"), f.get("user_information"))


def _dec_rlre(buf: bytes) -> RLRE:
    f = _parse(buf, 0x63, "rlre", _RLRE_FIELDS)
    return RLRE(f.get("reason"), f.get("user_information"))


_base.register(0x60)(_dec_aarq)
_base.register(0x61)(_dec_aare)
_base.register(0x62)(_dec_rlrq)
_base.register(0x63)(_dec_rlre)
