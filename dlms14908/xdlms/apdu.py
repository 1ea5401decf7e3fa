"""Top-level xDLMS/ACSE APDU codec: :func:`decode_apdu` and :func:`encode_apdu`
(IEC 62056-5-3 / Green Book §9.5 COSEMpdu CHOICE plus the ACSE APDUs of §9.4)."""

from __future__ import annotations

import struct

from ..errors import DecodeError, EncodeError, LocalProtocolError
from . import ciphered as _ciphered  # noqa: F401  (registers decoders)
from . import initiate as _initiate  # noqa: F401
from . import ln as _ln
from . import notify as _notify  # noqa: F401
from . import sn as _sn  # noqa: F401
from ._base import DECODERS, Apdu

__all__ = ["decode_apdu", "encode_apdu"]

_ACSE_TAGS = (0x60, 0x61, 0x62, 0x63)
_MALFORMED = (IndexError, struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError,
              OverflowError, RecursionError, AttributeError)


def _load_acse() -> None:
    from .. import acse  # noqa: F401  (registers 0x60..0x63)


def decode_apdu(buf: bytes | bytearray | memoryview) -> Apdu:
    """Decode one complete APDU (xDLMS, ciphered container or ACSE).

    Raises :class:`~dlms14908.errors.DecodeError` naming the failing field for any
    malformed input (including trailing bytes)."""
    if type(buf) is not bytes:
        if not isinstance(buf, (bytearray, memoryview)):
            raise LocalProtocolError(f"decode_apdu needs bytes, got {type(buf).__name__}")
        buf = bytes(buf)
    if not buf:
        raise DecodeError("empty APDU", field="tag", offset=0)
    dec = DECODERS.get(buf[0])
    if dec is None:
        if buf[0] in _ACSE_TAGS:
            _load_acse()
            dec = DECODERS[buf[0]]
        else:
            raise DecodeError(f"unknown APDU tag 0x{buf[0]:02X}", field="tag", offset=0)
    try:
        return dec(buf)
    except DecodeError:
        raise
    except _MALFORMED as exc:  # defensive: never leak a non-DecodeError for remote bytes
        raise DecodeError(f"malformed APDU ({type(exc).__name__})",
                          field=f"apdu 0x{buf[0]:02X}") from None


def encode_apdu(apdu: Apdu) -> bytes:
    """Encode an APDU object; :class:`~dlms14908.errors.EncodeError` on bad field values."""
    if not isinstance(apdu, Apdu):
        raise EncodeError(f"not an APDU: {type(apdu).__name__}", field="apdu")
    try:
        return apdu.to_bytes()
    except (EncodeError, LocalProtocolError):
        raise
    except (struct.error, ValueError, TypeError, OverflowError, AttributeError) as exc:
        raise EncodeError(f"cannot encode ({exc})", field=apdu.NAME) from None


# The GET-Response decoder is the hot path of bulk reads: bind it once.
_get_response = _ln._dec_get_response
DECODERS[0xC4] = _get_response
