"""OSGP-AES-128-PSK security suite (IEC 62056-8-8 Annex D) and legacy OSGP decoding.

The heavy modules (secure channel, SQLite store) load on first use.
"""

from __future__ import annotations

from typing import Any

from dlms14908.errors import AuthenticationFailed, ReplayError, SecurityError
from osgp._ccm_errors import InvalidTag

_LAZY = {
    "SecureChannel": "osgp.channel",
    "BroadcastSender": "osgp.channel",
    "ChannelConfig": "osgp.channel",
    "ChannelState": "osgp.channel",
    "Role": "osgp.channel",
    "ChannelStore": "osgp.store",
}

__all__ = [
    "AuthenticationFailed",
    "BroadcastSender",
    "ChannelConfig",
    "ChannelState",
    "ChannelStore",
    "InvalidTag",
    "ReplayError",
    "Role",
    "SecureChannel",
    "SecurityError",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'osgp' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
