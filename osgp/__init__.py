"""OSGP-AES-128-PSK security suite (IEC 62056-8-8 Annex D) and legacy OSGP decoding."""

from dlms14908.errors import AuthenticationFailed, ReplayError, SecurityError
from osgp._ccm_errors import InvalidTag

__all__ = ["AuthenticationFailed", "InvalidTag", "ReplayError", "SecurityError"]
