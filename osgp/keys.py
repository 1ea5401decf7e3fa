"""OSGP-AES-128-PSK key hierarchy (IEC 62056-8-8 Annex D) — design choice.

Reference ``osgp-62056-8-8.md`` §2.4 [D], which mirrors the RFC 5433 (EAP-GPSK)
ciphersuite-1 key schedule [C]::

    K_kek = OSGP_KDF(PSK, "OSGP-KEK" || 0x00 || NeuronID, 16)       wraps keys (RFC 3394)
    inputString = RAND_C || ID_C || RAND_S || ID_S                    (C = LNAP, S = NNAP)
    MK  = OSGP_KDF(PSK, uint16(len PSK) || PSK || CSuite_Sel || inputString, 16)
    SK  = OSGP_KDF(MK, inputString, 160)[128:144]     handshake MAC key
    PK  = OSGP_KDF(MK, inputString, 160)[144:160]     unicast OSGP_AE key (K_uc)

The domain broadcast key K_bc and renewed unicast keys come from the NNAP's
OSGP_CSPRNG and travel wrapped under K_kek (:func:`wrap_key`).  Every label,
length and offset is a constant of :mod:`dlms14908.profile` §4.  Key material is
never part of a repr or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from dlms14908 import profile as P
from dlms14908.errors import AuthenticationFailed, EncodeError
from osgp.primitives import osgp_kdf, osgp_mac, osgp_mac_verify

__all__ = [
    "SessionKeys",
    "check_key",
    "commission_pd_aad",
    "commission_pd_nonce",
    "commission_response_mac_input",
    "data_nonce",
    "derive_kek",
    "derive_session_keys",
    "handshake_mac",
    "handshake_mac_verify",
    "unwrap_key",
    "wrap_key",
]


def check_key(key: object, name: str = "key", length: int = P.OSGP_KEY_LEN) -> bytes:
    """Return ``key`` as bytes or raise :class:`EncodeError` naming only its length."""
    if not isinstance(key, (bytes, bytearray, memoryview)) or len(key) != length:
        raise EncodeError(f"must be {length} bytes", field=name)
    return bytes(key)


def _check_id(value: object, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != P.OSGP_ID_LEN:
        raise EncodeError(f"must be {P.OSGP_ID_LEN} bytes", field=name)
    return bytes(value)


def derive_kek(psk: bytes, neuron_id: bytes) -> bytes:
    """K_kek of one LNAP: ``OSGP_KDF(PSK, "OSGP-KEK" || 0x00 || NeuronID, 16)``."""
    psk = check_key(psk, "psk", P.OSGP_PSK_LEN)
    z = P.OSGP_KEK_LABEL + P.OSGP_KEK_SEPARATOR + _check_id(neuron_id, "neuron_id")
    return osgp_kdf(psk, z, P.OSGP_KEY_LEN)


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """Keys of one secure channel, from one Challenge/Commission exchange."""

    mk: bytes = field(repr=False)
    sk: bytes = field(repr=False)
    "Handshake MAC key (OSGP_MAC)."
    pk: bytes = field(repr=False)
    "Unicast protection key K_uc (OSGP_AE/AD)."


def derive_session_keys(
    psk: bytes,
    *,
    rand_c: bytes,
    id_c: bytes,
    rand_s: bytes,
    id_s: bytes,
    csuite: bytes = P.OSGP_CSUITE_SEL,
) -> SessionKeys:
    """MK, SK and PK of reference §2.4 (the GPSK ciphersuite-1 schedule)."""
    psk = check_key(psk, "psk", P.OSGP_PSK_LEN)
    for name, value in (("rand_c", rand_c), ("rand_s", rand_s)):
        if not isinstance(value, (bytes, bytearray)) or len(value) != P.OSGP_RAND_LEN:
            raise EncodeError(f"must be {P.OSGP_RAND_LEN} bytes", field=name)
    input_string = bytes(rand_c) + _check_id(id_c, "id_c") + bytes(rand_s) + _check_id(id_s, "id_s")
    pl = len(psk).to_bytes(P.OSGP_MK_PSK_LEN_FIELD, "big")
    mk = osgp_kdf(psk, pl + psk + bytes(csuite) + input_string, P.OSGP_MK_LEN)
    schedule = osgp_kdf(mk, input_string, P.OSGP_SCHEDULE_LEN)
    sk = schedule[P.OSGP_SK_OFFSET : P.OSGP_SK_OFFSET + P.OSGP_KEY_LEN]
    pk = schedule[P.OSGP_PK_OFFSET : P.OSGP_PK_OFFSET + P.OSGP_KEY_LEN]
    return SessionKeys(mk=mk, sk=sk, pk=pk)


def handshake_mac(sk: bytes, data: bytes) -> bytes:
    """MAC_SK of a handshake message: AES-CMAC truncated to ``OSGP_HANDSHAKE_MAC_LEN``."""
    return osgp_mac(sk, data, P.OSGP_HANDSHAKE_MAC_LEN)


def handshake_mac_verify(sk: bytes, data: bytes, tag: bytes) -> bool:
    """Constant-time check of a handshake MAC."""
    if len(tag) != P.OSGP_HANDSHAKE_MAC_LEN:
        return False
    return osgp_mac_verify(sk, data, tag)


def commission_response_mac_input(
    status_part: bytes, *, rand_c: bytes, rand_s: bytes, id_c: bytes, id_s: bytes
) -> bytes:
    """The CommissionResponse MAC input: ``opcode || status || RAND_C || RAND_S || ID_C || ID_S``.

    The RANDs and IDs are not on the wire; covering them binds the answer to this
    exchange (a response cannot be replayed into another handshake)."""
    return bytes(status_part) + rand_c + rand_s + id_c + id_s


def commission_pd_nonce(id_s: bytes) -> bytes:
    """CCM nonce of the CommissionRequest PD block: ``ID_S || 0^4 || 0 || 0 || 0x01``.

    PK is fresh for every exchange and the PD block is its only use with this
    nonce; the last byte separates it from every protected-PDU nonce."""
    return (
        _check_id(id_s, "id_s")
        + bytes(P.OSGP_SEQ_LEN + P.OSGP_KEY_ID_LEN + 1)
        + bytes([P.OSGP_NONCE_DOMAIN_COMMISSION])
    )


def commission_pd_aad(rand_c: bytes, rand_s: bytes, id_s: bytes, csuite: bytes) -> bytes:
    """AAD of the CommissionRequest PD block: the message fields before it."""
    return bytes(rand_c) + bytes(rand_s) + bytes(id_s) + bytes(csuite)


def data_nonce(source_id: bytes, seq: int, key_id: int, ctrl: int) -> bytes:
    """CCM nonce of a protected PDU: ``source ID(6) || SeqNo(4) || KeyID || ctrl || 0x00``."""
    return (
        source_id
        + seq.to_bytes(P.OSGP_SEQ_LEN, "big")
        + bytes((key_id, ctrl, P.OSGP_NONCE_DOMAIN_DATA))
    )


def wrap_key(kek: bytes, key: bytes) -> bytes:
    """RFC 3394 AES key wrap of a 16-byte key (24 bytes out)."""
    return aes_key_wrap(check_key(kek, "kek"), check_key(key, "key"))


def unwrap_key(kek: bytes, wrapped: bytes) -> bytes:
    """RFC 3394 unwrap; raises :class:`AuthenticationFailed` if the integrity check fails."""
    if len(wrapped) != P.OSGP_WRAPPED_KEY_LEN:
        raise AuthenticationFailed("wrapped key has the wrong length")
    try:
        return aes_key_unwrap(check_key(kek, "kek"), bytes(wrapped))
    except InvalidUnwrap:
        raise AuthenticationFailed("key unwrap integrity check failed") from None
