"""DLMS physical unit codes for ``scaler_unit`` (IEC 62056-6-2 §4.3.2, "unit" enumeration)."""

from __future__ import annotations

import enum

__all__ = ["Unit"]


class Unit(enum.IntEnum):
    """The ``unit`` enum of scal_unit_type.  ``symbol`` gives the printed unit."""

    YEAR = 1
    MONTH = 2
    WEEK = 3
    DAY = 4
    HOUR = 5
    MINUTE = 6
    SECOND = 7
    DEGREE = 8  # phase angle
    DEGREE_CELSIUS = 9
    CURRENCY = 10
    METRE = 11
    METRE_PER_SECOND = 12
    CUBIC_METRE = 13
    CUBIC_METRE_CORRECTED = 14
    CUBIC_METRE_PER_HOUR = 15
    CUBIC_METRE_PER_HOUR_CORRECTED = 16
    CUBIC_METRE_PER_DAY = 17
    CUBIC_METRE_PER_DAY_CORRECTED = 18
    LITRE = 19
    KILOGRAM = 20
    NEWTON = 21
    NEWTON_METRE = 22
    PASCAL = 23
    BAR = 24
    JOULE = 25
    JOULE_PER_HOUR = 26
    WATT = 27
    VOLT_AMPERE = 28
    VAR = 29
    WATT_HOUR = 30
    VOLT_AMPERE_HOUR = 31
    VAR_HOUR = 32
    AMPERE = 33
    COULOMB = 34
    VOLT = 35
    VOLT_PER_METRE = 36
    FARAD = 37
    OHM = 38
    OHM_SQUARE_METRE_PER_METRE = 39
    WEBER = 40
    TESLA = 41
    AMPERE_PER_METRE = 42
    HENRY = 43
    HERTZ = 44
    PER_WATT_HOUR = 45  # R_W, active energy meter constant
    PER_VAR_HOUR = 46  # R_B
    PER_VOLT_AMPERE_HOUR = 47  # R_S
    VOLT_SQUARED_HOUR = 48
    AMPERE_SQUARED_HOUR = 49
    KILOGRAM_PER_SECOND = 50
    SIEMENS = 51
    KELVIN = 52
    PER_VOLT_SQUARED_HOUR = 53
    PER_AMPERE_SQUARED_HOUR = 54
    PER_CUBIC_METRE = 55
    PERCENT = 56
    AMPERE_HOUR = 57
    WATT_HOUR_PER_CUBIC_METRE = 60
    JOULE_PER_CUBIC_METRE = 61
    MOLE_PERCENT = 62
    GRAM_PER_CUBIC_METRE = 63
    PASCAL_SECOND = 64
    JOULE_PER_KILOGRAM = 65
    GRAM_PER_SQUARE_CENTIMETRE = 66
    ATMOSPHERE = 67
    DBM = 70
    DB_MICROVOLT = 71
    DB = 72
    OTHER = 254
    COUNT = 255  # no unit, unitless count

    @property
    def symbol(self) -> str:
        return _SYMBOLS.get(self, self.name.lower())

    @classmethod
    def lenient(cls, value: int) -> Unit | int:
        """The member for ``value``, or the plain int when the code is unknown."""
        try:
            return cls(value)
        except ValueError:
            return int(value)


_SYMBOLS = {
    Unit.YEAR: "a",
    Unit.MONTH: "mo",
    Unit.WEEK: "wk",
    Unit.DAY: "d",
    Unit.HOUR: "h",
    Unit.MINUTE: "min",
    Unit.SECOND: "s",
    Unit.DEGREE: "°",
    Unit.DEGREE_CELSIUS: "°C",
    Unit.CURRENCY: "currency",
    Unit.METRE: "m",
    Unit.METRE_PER_SECOND: "m/s",
    Unit.CUBIC_METRE: "m³",
    Unit.CUBIC_METRE_CORRECTED: "m³ (corr.)",
    Unit.CUBIC_METRE_PER_HOUR: "m³/h",
    Unit.CUBIC_METRE_PER_HOUR_CORRECTED: "m³/h (corr.)",
    Unit.CUBIC_METRE_PER_DAY: "m³/d",
    Unit.CUBIC_METRE_PER_DAY_CORRECTED: "m³/d (corr.)",
    Unit.LITRE: "l",
    Unit.KILOGRAM: "kg",
    Unit.NEWTON: "N",
    Unit.NEWTON_METRE: "Nm",
    Unit.PASCAL: "Pa",
    Unit.BAR: "bar",
    Unit.JOULE: "J",
    Unit.JOULE_PER_HOUR: "J/h",
    Unit.WATT: "W",
    Unit.VOLT_AMPERE: "VA",
    Unit.VAR: "var",
    Unit.WATT_HOUR: "Wh",
    Unit.VOLT_AMPERE_HOUR: "VAh",
    Unit.VAR_HOUR: "varh",
    Unit.AMPERE: "A",
    Unit.COULOMB: "C",
    Unit.VOLT: "V",
    Unit.VOLT_PER_METRE: "V/m",
    Unit.FARAD: "F",
    Unit.OHM: "Ω",
    Unit.OHM_SQUARE_METRE_PER_METRE: "Ωm²/m",
    Unit.WEBER: "Wb",
    Unit.TESLA: "T",
    Unit.AMPERE_PER_METRE: "A/m",
    Unit.HENRY: "H",
    Unit.HERTZ: "Hz",
    Unit.PER_WATT_HOUR: "1/(Wh)",
    Unit.PER_VAR_HOUR: "1/(varh)",
    Unit.PER_VOLT_AMPERE_HOUR: "1/(VAh)",
    Unit.VOLT_SQUARED_HOUR: "V²h",
    Unit.AMPERE_SQUARED_HOUR: "A²h",
    Unit.KILOGRAM_PER_SECOND: "kg/s",
    Unit.SIEMENS: "S",
    Unit.KELVIN: "K",
    Unit.PER_VOLT_SQUARED_HOUR: "1/(V²h)",
    Unit.PER_AMPERE_SQUARED_HOUR: "1/(A²h)",
    Unit.PER_CUBIC_METRE: "1/m³",
    Unit.PERCENT: "%",
    Unit.AMPERE_HOUR: "Ah",
    Unit.WATT_HOUR_PER_CUBIC_METRE: "Wh/m³",
    Unit.JOULE_PER_CUBIC_METRE: "J/m³",
    Unit.MOLE_PERCENT: "mol %",
    Unit.GRAM_PER_CUBIC_METRE: "g/m³",
    Unit.PASCAL_SECOND: "Pa s",
    Unit.JOULE_PER_KILOGRAM: "J/kg",
    Unit.GRAM_PER_SQUARE_CENTIMETRE: "g/cm²",
    Unit.ATMOSPHERE: "atm",
    Unit.DBM: "dBm",
    Unit.DB_MICROVOLT: "dBµV",
    Unit.DB: "dB",
    Unit.OTHER: "other",
    Unit.COUNT: "",
}
