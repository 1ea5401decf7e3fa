"""The one exception tree of dlms14908 and osgp.

Remote garbage (a frame off the power line, a captured trace) raises a
:class:`RemoteProtocolError` subclass, most often :class:`DecodeError` whose
message names the field.  Lower layers that receive frames turn those into
dropped-frame events and counters; parsers used directly raise them.  Caller
misuse raises :class:`LocalProtocolError`.  No exception message or repr ever
carries key material.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "CrcError",
    "DecodeError",
    "DlmsTimeout",
    "EncodeError",
    "LocalProtocolError",
    "ProtocolError",
    "ProxyError",
    "RemoteProtocolError",
    "ReplayError",
    "SecurityError",
    "ServiceError",
    "TransactionFailed",
]


class ProtocolError(Exception):
    """Root of every exception this project raises on purpose."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol forbids, or gave a bad value."""


class EncodeError(LocalProtocolError, ValueError):
    """A value cannot be encoded (out of range, wrong type, too long)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class RemoteProtocolError(ProtocolError):
    """The peer (or a capture) sent something we cannot accept."""

    def __init__(self, message: str, *, hint: object | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class DecodeError(RemoteProtocolError, ValueError):
    """Bytes that do not parse.  ``field`` names the field that failed and
    ``offset`` (when known) the byte position in the input."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        offset: int | None = None,
        hint: object | None = None,
    ) -> None:
        where = field or "input"
        if offset is not None:
            where = f"{where} (at byte {offset})"
        super().__init__(f"{where}: {message}", hint=hint)
        self.field = field
        self.offset = offset


class CrcError(DecodeError):
    """A frame whose CRC does not match."""


class SecurityError(RemoteProtocolError):
    """A secured PDU was rejected.  Never carries plaintext or key material."""


class AuthenticationFailed(SecurityError):
    """A tag, MAC or authentication value did not verify."""


class ReplayError(SecurityError):
    """A sequence number / frame counter was replayed or is stale."""


class ProxyError(RemoteProtocolError):
    """An ISO/IEC 14908 enhanced proxy (Annex E) chain failed.

    ``hop`` is the index of the failing hop (0 = first repeater) when known."""

    def __init__(self, message: str, *, hop: int | None = None, hint: object | None = None) -> None:
        super().__init__(message if hop is None else f"hop {hop}: {message}", hint=hint)
        self.hop = hop


class TransactionFailed(RemoteProtocolError):
    """A LonTalk transaction completed with failure (retries exhausted, no response)."""


class ServiceError(RemoteProtocolError):
    """The server answered a DLMS service with an error result."""


class DlmsTimeout(RemoteProtocolError, TimeoutError):
    """No answer in time."""
