"""Deterministic consumption model of the simulated meter.

Power is piecewise constant per 15-minute interval (seeded household load with morning and
evening peaks minus seeded PV generation); energy is its exact integral in watt-seconds, so
registers, the load profile and instantaneous values all derive from one function of time.
"""

from __future__ import annotations

import hashlib
import math

__all__ = ["INTERVAL", "Energies", "EnergyModel"]

INTERVAL = 900
"""Seconds per model interval (and per load-profile entry)."""

#: (import_ws, export_ws, t1_ws, t2_ws) since the model start
Energies = tuple[int, int, int, int]


def _u01(seed: int, k: int, salt: bytes) -> float:
    h = hashlib.blake2b(salt + seed.to_bytes(8, "big", signed=True) + k.to_bytes(8, "big", signed=True),
                        digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def _u01x2(seed: int, k: int) -> tuple[float, float]:
    """Two independent uniform [0, 1) values for interval ``k``."""
    h = hashlib.blake2b(seed.to_bytes(8, "big", signed=True) + k.to_bytes(8, "big", signed=True),
                        digest_size=16, person=b"dlms14908-power").digest()
    return int.from_bytes(h[:8], "big") / 2.0**64, int.from_bytes(h[8:], "big") / 2.0**64


def tariff_of(t: float) -> int:
    """1 (day, 07:00-23:00 UTC) or 2 (night)."""
    hour = int(t // 3600) % 24
    return 1 if 7 <= hour < 23 else 2


class EnergyModel:
    """Power and energy as functions of POSIX time ``t >= start`` (``start`` interval aligned)."""

    __slots__ = ("_base", "_cum", "_last", "_power", "_pv_peak", "seed", "start")

    def __init__(self, seed: int, start: float) -> None:
        self.seed = seed
        self.start = int(start // INTERVAL) * INTERVAL
        self._cum: list[Energies] = [(0, 0, 0, 0)]
        self._power: list[tuple[int, int]] = []
        self._base = 180 + 220 * _u01(seed, 0, b"base")
        self._pv_peak = 2500 * _u01(seed, 1, b"pv")
        #: the last energies() answer (t, value): registers read at one instant share it
        self._last: tuple[float, Energies] = (float("nan"), (0, 0, 0, 0))

    def interval_power(self, k: int) -> tuple[int, int]:
        """(import W, export W) during interval ``k`` (0 = the one starting at ``start``)."""
        while len(self._power) <= k:
            self._power.append(self._compute_power(len(self._power)))
        return self._power[k]

    def _compute_power(self, k: int) -> tuple[int, int]:
        t = self.start + k * INTERVAL
        hour = (t % 86400) / 3600.0
        u_load, u_cloud = _u01x2(self.seed, k)
        peaks = 900 * math.exp(-((hour - 7.5) ** 2) / 1.5) + 1400 * math.exp(-((hour - 19.0) ** 2) / 3.0)
        load = self._base + peaks * (0.5 + u_load)
        sun = max(0.0, math.sin(math.pi * (hour - 6.0) / 13.0)) if 6.0 <= hour <= 19.0 else 0.0
        pv = self._pv_peak * sun * (0.3 + 0.7 * u_cloud)
        net = round(load - pv)
        return (net, 0) if net >= 0 else (0, -net)

    def _extend(self, k: int) -> None:
        cum = self._cum
        while len(cum) <= k:
            j = len(cum) - 1
            imp, exp = self.interval_power(j)
            i0, e0, t10, t20 = cum[-1]
            t = self.start + j * INTERVAL
            di = imp * INTERVAL
            if tariff_of(t) == 1:
                cum.append((i0 + di, e0 + exp * INTERVAL, t10 + di, t20))
            else:
                cum.append((i0 + di, e0 + exp * INTERVAL, t10, t20 + di))

    def energies(self, t: float) -> Energies:
        """Watt-seconds imported, exported, imported in tariff 1 and 2 from ``start`` to ``t``."""
        last = self._last
        if last[0] == t:
            return last[1]
        start = self.start
        s = int(t) - start
        if s <= 0:
            return (0, 0, 0, 0)
        k, rem = divmod(s, INTERVAL)
        cum = self._cum
        if k >= len(cum):
            self._extend(k)
        e = cum[k]
        if rem:
            power = self._power
            imp, exp = power[k] if k < len(power) else self.interval_power(k)
            i0, e0, t10, t20 = e
            di = imp * rem
            if 7 <= (start + k * INTERVAL) // 3600 % 24 < 23:  # tariff_of(...) == 1, inlined
                e = (i0 + di, e0 + exp * rem, t10 + di, t20)
            else:
                e = (i0 + di, e0 + exp * rem, t10, t20 + di)
        self._last = (t, e)
        return e

    def power(self, t: float) -> tuple[int, int]:
        """Instantaneous (import W, export W) at ``t``."""
        s = int(t) - self.start
        if s < 0:
            return (0, 0)
        return self.interval_power(s // INTERVAL)

    def voltage_dv(self, t: float) -> int:
        """Phase voltage in 0.1 V (230 V ± 3 %, changing every minute)."""
        return round(2300 + 69 * (2 * _u01(self.seed, int(t) // 60, b"volt") - 1))
