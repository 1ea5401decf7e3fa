"""OSGP-AES-128-PSK security suite (IEC 62056-8-8 Annex D) and legacy OSGP decoding."""

from dlms14908.errors import AuthenticationFailed, ReplayError, SecurityError

__all__ = ["AuthenticationFailed", "ReplayError", "SecurityError"]
