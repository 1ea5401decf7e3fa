"""IEC 62056-8-8 adaptation layer (design-choice layout in :mod:`dlms14908.profile` §3)."""

from .pdu import *  # noqa: F403
from .pdu import __all__ as _pdu_all

__all__ = [*_pdu_all]
