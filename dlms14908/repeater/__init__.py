"""IEC 62056-8-8 Annex E repeating mechanism (LonTalk Enhanced Proxy)."""

from .ltep import *  # noqa: F401,F403
from .ltep import __all__ as _ltep_all
from .rules import *  # noqa: F401,F403
from .rules import __all__ as _rules_all

__all__ = [*_ltep_all, *_rules_all]
