"""The profile module: every design-choice byte of dlms14908 lives here.

IEC 62056-8-8 is paywalled.  Public sources give LonTalk, the LTEP proxy
(Annex E), the COSEM classes 130-133 and the crypto primitives exactly, but
nothing about the adaptation-layer header (§5.4) or the Annex D (OSGP-AES-128-PSK)
message layouts.  Those layouts are ours, provisional, and documented with
their provenance in ``docs/wire-format.md``; switching to the real layouts is a
change to this module only.  Other modules import their constants from here
and never spell a design-choice byte themselves.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------
# §3 Adaptation layer (docs/wire-format.md §3) [D]
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# §4 OSGP-AES-128-PSK messages, Annex D (docs/wire-format.md §4) [D]
# ---------------------------------------------------------------------------
