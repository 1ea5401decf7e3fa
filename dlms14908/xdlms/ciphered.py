"""Ciphered xDLMS APDUs as opaque containers (Green Book §9.5, security suite framing).

glo-/ded- service ciphering: ``tag, length, SC, IC(4), ciphertext[+tag]``;
general-glo-/general-ded-ciphering [219]/[220]: ``tag, system-title (octet string),
ciphered-content (octet string: SC, IC, ciphertext[+tag])``.  Decryption and
authentication are done by :mod:`dlms14908.xdlms.ciphering` (helper SEC0).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DecodeError, EncodeError
from . import _base as b
from ._base import Apdu, register

__all__ = [
    "CIPHERED_TAGS",
    "DED_TO_PLAIN",
    "GENERAL_DED_CIPHERING",
    "GENERAL_GLO_CIPHERING",
    "GLO_TO_PLAIN",
    "CipheredApdu",
]

GENERAL_GLO_CIPHERING = 0xDB
GENERAL_DED_CIPHERING = 0xDC

#: ciphered tag -> (name, tag of the plaintext APDU it protects)
_GLO = {
    0x21: ("glo-initiate-request", 0x01), 0x25: ("glo-read-request", 0x05),
    0x26: ("glo-write-request", 0x06), 0x28: ("glo-initiate-response", 0x08),
    0x2C: ("glo-read-response", 0x0C), 0x2D: ("glo-write-response", 0x0D),
    0x2E: ("glo-confirmed-service-error", 0x0E), 0x36: ("glo-unconfirmed-write-request", 0x16),
    0x38: ("glo-information-report-request", 0x18),
    0xC8: ("glo-get-request", 0xC0), 0xC9: ("glo-set-request", 0xC1),
    0xCA: ("glo-event-notification-request", 0xC2), 0xCB: ("glo-action-request", 0xC3),
    0xCC: ("glo-get-response", 0xC4), 0xCD: ("glo-set-response", 0xC5),
    0xCF: ("glo-action-response", 0xC7),
}
_DED = {
    0x41: ("ded-initiate-request", 0x01), 0x45: ("ded-read-request", 0x05),
    0x46: ("ded-write-request", 0x06), 0x48: ("ded-initiate-response", 0x08),
    0x4C: ("ded-read-response", 0x0C), 0x4D: ("ded-write-response", 0x0D),
    0x4E: ("ded-confirmed-service-error", 0x0E), 0x56: ("ded-unconfirmed-write-request", 0x16),
    0x58: ("ded-information-report-request", 0x18),
    0xD0: ("ded-get-request", 0xC0), 0xD1: ("ded-set-request", 0xC1),
    0xD2: ("ded-event-notification-request", 0xC2), 0xD3: ("ded-action-request", 0xC3),
    0xD4: ("ded-get-response", 0xC4), 0xD5: ("ded-set-response", 0xC5),
    0xD7: ("ded-action-response", 0xC7),
}
GLO_TO_PLAIN = {t: p for t, (_, p) in _GLO.items()}
DED_TO_PLAIN = {t: p for t, (_, p) in _DED.items()}
CIPHERED_TAGS: dict[int, str] = {t: n for t, (n, _) in (_GLO | _DED).items()}
CIPHERED_TAGS[GENERAL_GLO_CIPHERING] = "general-glo-ciphering"
CIPHERED_TAGS[GENERAL_DED_CIPHERING] = "general-ded-ciphering"


@dataclass(frozen=True, slots=True)
class CipheredApdu(Apdu):
    """A protected APDU, not yet deciphered.

    ``ciphertext`` is everything after the invocation counter: the (possibly
    plain, for authentication-only) information plus the authentication tag when
    the security control byte has the authentication bit (0x10)."""

    tag: int
    security_control: int
    invocation_counter: int
    ciphertext: bytes
    system_title: bytes | None = None

    @property
    def NAME(self) -> str:  # type: ignore[override]
        return CIPHERED_TAGS.get(self.tag, f"ciphered-0x{self.tag:02X}")

    @property
    def is_general(self) -> bool:
        return self.tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)

    @property
    def is_dedicated(self) -> bool:
        return self.tag in DED_TO_PLAIN or self.tag == GENERAL_DED_CIPHERING

    @property
    def security_header(self) -> bytes:
        """SC ‖ IC, the header the ciphering functions authenticate."""
        return bytes((self.security_control,)) + b.pack_u32(self.invocation_counter)

    def to_bytes(self) -> bytes:
        if self.tag not in CIPHERED_TAGS:
            raise EncodeError(f"0x{self.tag:02X} is not a ciphered APDU tag", field="tag")
        content = (bytes((b.check_u8(self.security_control, "security_control"),))
                   + b.pack_u32(b.check_u32(self.invocation_counter, "invocation_counter"))
                   + b.check_bytes(self.ciphertext, "ciphertext"))
        if self.is_general:
            if self.system_title is None:
                raise EncodeError("general-*-ciphering needs a system title", field="system_title")
            return (bytes((self.tag,)) + b.enc_octets(b.check_bytes(self.system_title,
                                                                    "system_title"))
                    + b.enc_octets(content))
        if self.system_title is not None:
            raise EncodeError("only general-*-ciphering carries a system title",
                              field="system_title")
        return bytes((self.tag,)) + b.enc_octets(content)


def _dec_content(buf: bytes, pos: int, tag: int, st: bytes | None) -> CipheredApdu:
    content, pos = b.octets(buf, pos, "ciphered_content")
    b.end(buf, pos, CIPHERED_TAGS[tag])
    if len(content) < 5:
        raise DecodeError("needs security control and invocation counter",
                          field="ciphered_content.security_header", offset=pos - len(content))
    return CipheredApdu(tag, content[0], b.unpack_u32(content, 1)[0], bytes(content[5:]), st)


def _dec_service(buf: bytes) -> CipheredApdu:
    return _dec_content(buf, 1, buf[0], None)


def _dec_general(buf: bytes) -> CipheredApdu:
    st, pos = b.octets(buf, 1, "system_title")
    return _dec_content(buf, pos, buf[0], bytes(st))


for _t in list(_GLO) + list(_DED):
    register(_t)(_dec_service)
register(GENERAL_GLO_CIPHERING)(_dec_general)
register(GENERAL_DED_CIPHERING)(_dec_general)
