"""ISO/IEC 14908-1 (LonTalk) layers: frames and CRC (:mod:`.frame`, :mod:`.crc`),
APDU codes (:mod:`.codes`), network management/diagnostics (:mod:`.netmgmt`),
the CN/IP header (:mod:`.cnip`) and the transaction layer (:mod:`.transaction`).

The frame API is re-exported here; the other modules are imported by name.
"""

from __future__ import annotations

from .crc import append_crc, check_crc, crc16, strip_crc
from .frame import *  # noqa: F403
from .frame import __all__ as _frame_all

__all__ = ["crc16", "append_crc", "check_crc", "strip_crc", *_frame_all]
