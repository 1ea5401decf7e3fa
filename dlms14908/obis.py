"""OBIS codes (IEC 62056-6-1): the six value groups A-B:C.D.E.F naming COSEM objects.

Parses the usual notations (``1-0:1.8.0.255``, ``1-0:1.8.0*255``, ``1.0.1.8.0.255``,
hex ``0100010800FF``; ``1-0:1.8.0`` means F = 255) and gives a human name for
common codes, including the ISO/IEC 14908 objects ``0-b:32.D.0.255`` of
IEC 62056-8-8 Annex B (Blue Book Part 1 §6.2.30).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dlms14908.errors import DecodeError, EncodeError

__all__ = ["Obis"]

_RE_STD = re.compile(
    r"([0-9]{1,3})-([0-9]{1,3}):([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})(?:[.*&]([0-9]{1,3}))?"
)
_RE_DOT = re.compile(
    r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})"
)
_RE_HEX = re.compile(r"[0-9A-Fa-f]{12}")


@dataclass(frozen=True, order=True, slots=True)
class Obis:
    """An OBIS code; every group 0..255."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    def __post_init__(self) -> None:
        for g in (self.a, self.b, self.c, self.d, self.e, self.f):
            if isinstance(g, bool) or not isinstance(g, int) or not 0 <= g <= 255:
                raise EncodeError(f"group {g!r} outside 0..255", field="obis")

    @classmethod
    def parse(cls, text: str) -> Obis:
        """Parse ``A-B:C.D.E.F``, ``A-B:C.D.E*F``, ``A.B.C.D.E.F`` or 12 hex digits.

        Raises ``DecodeError(field="obis")`` on anything else."""
        if not isinstance(text, str):
            raise DecodeError(f"not a string: {type(text).__name__}", field="obis")
        s = text.strip()
        m = _RE_STD.fullmatch(s) or _RE_DOT.fullmatch(s)
        if m:
            groups = [255 if g is None else int(g) for g in m.groups()]
        elif _RE_HEX.fullmatch(s):
            groups = list(bytes.fromhex(s))
        else:
            raise DecodeError(f"not an OBIS code: {text[:40]!r}", field="obis")
        if any(g > 255 for g in groups):
            raise DecodeError(f"group above 255 in {text[:40]!r}", field="obis")
        return cls(*groups)

    @classmethod
    def from_bytes(cls, data: bytes) -> Obis:
        """From the 6-octet logical_name."""
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) != 6:
            raise DecodeError("a logical name is 6 octets", field="obis")
        return cls(*bytes(data))

    @classmethod
    def coerce(cls, value: Any) -> Obis:
        """An :class:`Obis` from an Obis, text, 6 bytes or a 6-tuple."""
        if isinstance(value, Obis):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return cls.from_bytes(bytes(value))
        if isinstance(value, (tuple, list)) and len(value) in (5, 6):
            return cls(*value)
        raise DecodeError(f"cannot make an OBIS code from {type(value).__name__}", field="obis")

    def __bytes__(self) -> bytes:
        return bytes((self.a, self.b, self.c, self.d, self.e, self.f))

    def to_bytes(self) -> bytes:
        return bytes(self)

    def __str__(self) -> str:
        return f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}.{self.f}"

    def __repr__(self) -> str:
        return f"Obis('{self}')"

    @property
    def name(self) -> str | None:
        """A human name for common codes, or None."""
        return _name(self)


# ---------------------------------------------------------------------------
# Names (IEC 62056-6-1 / Blue Book Part 1 value-group tables, common subset)
# ---------------------------------------------------------------------------

# Abstract objects, A = 0 (exact C.D.E with F = 255; B = channel, any)
_ABSTRACT: dict[tuple[int, int, int], str] = {
    (1, 0, 0): "Clock",
    (1, 1, 0): "Unix time",
    (2, 0, 0): "Modem configuration",
    (10, 0, 0): "Global meter reset script table",
    (10, 0, 1): "MDI reset / end of billing period script table",
    (10, 0, 100): "Tariffication script table",
    (10, 0, 103): "Push script table",
    (10, 0, 106): "Disconnect control script table",
    (10, 0, 107): "Image activation script table",
    (11, 0, 0): "Special days table",
    (13, 0, 0): "Activity calendar",
    (14, 0, 0): "Register activation",
    (15, 0, 0): "End of billing period single action schedule",
    (15, 0, 2): "Image activation single action schedule",
    (17, 0, 0): "Limiter",
    (25, 9, 0): "Push setup",
    (41, 0, 0): "SAP assignment",
    (42, 0, 0): "COSEM logical device name",
    (44, 0, 0): "Image transfer",
    (96, 1, 0): "Device ID 1 (manufacturing number)",
    (96, 1, 1): "Device ID 2",
    (96, 2, 0): "Number of configuration program changes",
    (96, 3, 10): "Disconnect control",
    (96, 14, 0): "Currently active tariff",
    (96, 50, 0): "Manufacturer specific",
}

_ISO14908 = {
    0: "ISO/IEC 14908 identification",
    1: "ISO/IEC 14908 protocol setup",
    2: "ISO/IEC 14908 protocol status",
    3: "ISO/IEC 14908 diagnostic",
}

# Electricity quantities, A = 1 (value group C)
_QUANTITY: dict[int, str] = {
    1: "Active power import (+P)",
    2: "Active power export (-P)",
    3: "Reactive power import (+Q)",
    4: "Reactive power export (-Q)",
    5: "Reactive power QI",
    6: "Reactive power QII",
    7: "Reactive power QIII",
    8: "Reactive power QIV",
    9: "Apparent power import (+S)",
    10: "Apparent power export (-S)",
    13: "Power factor",
    14: "Supply frequency",
    15: "Active power |+P|+|-P|",
    16: "Active power +P-(-P)",
}
_LINE_QTY = {
    1: "Active power import (+P)",
    2: "Active power export (-P)",
    3: "Reactive power import (+Q)",
    4: "Reactive power export (-Q)",
    9: "Apparent power import (+S)",
    10: "Apparent power export (-S)",
    11: "Current",
    12: "Voltage",
    13: "Power factor",
    14: "Supply frequency",
}
for _i, _line in ((20, "L1"), (40, "L2"), (60, "L3")):
    for _k, _v in _LINE_QTY.items():
        _QUANTITY[_i + _k] = f"{_v} {_line}"
_QUANTITY[91] = "Current neutral"
_QUANTITY[92] = "Voltage neutral"

_PROCESSING: dict[int, str] = {
    2: "cumulative maximum",
    3: "minimum",
    4: "current average",
    5: "last average",
    6: "maximum",
    7: "instantaneous",
    8: "time integral (energy)",
    9: "time integral 2",
    29: "time integral 5 (load profile interval)",
}

_ENERGY_NAMES = {
    1: "Active energy import (+A)",
    2: "Active energy export (-A)",
    3: "Reactive energy import (+R)",
    4: "Reactive energy export (-R)",
    5: "Reactive energy QI",
    6: "Reactive energy QII",
    7: "Reactive energy QIII",
    8: "Reactive energy QIV",
    9: "Apparent energy import (+S)",
    10: "Apparent energy export (-S)",
    15: "Active energy |+A|+|-A|",
    16: "Active energy +A-(-A)",
}
for _i, _line in ((20, "L1"), (40, "L2"), (60, "L3")):
    for _k in (1, 2, 3, 4, 9, 10):
        _ENERGY_NAMES[_i + _k] = f"{_ENERGY_NAMES[_k]} {_line}"


def _name(o: Obis) -> str | None:
    a, b, c, d, e, f = o.a, o.b, o.c, o.d, o.e, o.f
    suffix = "" if f == 255 else f", historical value {f}"
    if a == 0:
        if c == 32 and d in _ISO14908 and e == 0:
            return _ISO14908[d] + (f" (channel {b})" if b else "") + suffix
        if c == 40 and d == 0:
            return (
                "Current association (Association LN)" if e == 0 else f"Association LN {e}"
            ) + suffix
        if c == 43 and d == 0:
            return f"Security setup {e}" + suffix
        if c == 43 and d == 1:
            return f"Invocation counter (security setup {e})" + suffix
        if c == 99 and d == 98:
            return f"Event log {e}" + suffix
        if c == 65 and d < 64:
            return f"Utility table {256 * (d % 16) + e} (group {d // 16})" + suffix
        if c == 21 and d == 0:
            return f"Display readout list {e}" + suffix
        n = _ABSTRACT.get((c, d, e))
        return None if n is None else n + suffix
    if a == 1:
        if c == 99 and d in (1, 2) and e == 0:
            return f"Load profile {d}" + suffix
        if c == 98 and d == 1:
            return f"Billing profile {e}" + suffix
        if c == 99 and d == 98:
            return f"Event log {e}" + suffix
        if c == 0 and d == 0 and e == 0:
            return "Electricity ID" + suffix
        if c == 0 and d == 9 and e == 1:
            return "Local time" + suffix
        if c == 0 and d == 9 and e == 2:
            return "Local date" + suffix
        if d == 8 and c in _ENERGY_NAMES:
            part = "total" if e == 0 else f"tariff {e}"
            return f"{_ENERGY_NAMES[c]}, {part}" + suffix
        if d == 9 and c in _ENERGY_NAMES:
            part = "total" if e == 0 else f"tariff {e}"
            return f"{_ENERGY_NAMES[c]} (integral 2), {part}" + suffix
        q = _QUANTITY.get(c)
        p = _PROCESSING.get(d)
        if q is not None and p is not None:
            part = "" if e == 0 else f", tariff {e}"
            return f"{q}, {p}{part}" + suffix
    return None
