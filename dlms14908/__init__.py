"""DLMS/COSEM over ISO/IEC 14908 (IEC 62056-8-8)."""

from .errors import (
    AuthenticationFailed,
    CrcError,
    DecodeError,
    DlmsTimeout,
    EncodeError,
    LocalProtocolError,
    ProtocolError,
    ProxyError,
    RemoteProtocolError,
    ReplayError,
    SecurityError,
    ServiceError,
    TransactionFailed,
)

__version__ = "0.1.0"
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
    "__version__",
]
