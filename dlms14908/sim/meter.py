"""The simulated electricity meter: a realistic COSEM object set on a :class:`CosemServer`.

Objects (OBIS per IEC 62056-6-1; classes 130-133 per IEC 62056-8-8 Annex B, reference
osgp-62056-8-8.md §4.3; utility table per Annex C, §5.1):

* 0-0:1.0.0.255 clock (8); 0-0:42.0.0.255 logical device name (1)
* 1-0:1.8.0/1.8.1/1.8.2/2.8.0.255 energy registers (3, Wh), advancing with simulated time
* 1-0:1.7.0/2.7.0.255 active power import/export (3, W), 1-0:32.7.0.255 voltage (3, 0.1 V),
  1-0:31.7.0.255 current (3, 0.01 A)
* 1-0:99.1.0.255 15-minute load profile (7): clock, +A, -A; range and entry access
* 0-0:40.0.0.255 current association (15) with object_list; 0-0:43.0.0.255 security setup (64)
* 0-0:96.3.10.255 disconnect control (70): while disconnected no energy is imported
* 0-0:44.0.0.255 image transfer (18)
* 0-0:32.0.0.255 .. 0-0:32.3.0.255 ISO/IEC 14908 identification, setup, status, diagnostic
  (130-133); the counters of 132/133 come from a provider callable
* 0-0:65.0.1.255 utility table BT01 (26, general manufacturer identification)

Deterministic for a given ``seed`` and injected ``clock``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping
from typing import Any

from .. import axdr
from ..acse import MechanismName
from ..cosem import (
    AttributeAccess,
    Clock,
    CosemAccessError,
    CosemObject,
    Data,
    DisconnectControl,
    Iso14908Diagnostic,
    Iso14908Identification,
    Iso14908ProtocolSetup,
    Iso14908ProtocolStatus,
    MethodAccess,
    ProfileGeneric,
    Register,
    ScalerUnit,
    Unit,
)
from ..obis import Obis
from ..profile import SAP_MANAGEMENT_CLIENT, SAP_PUBLIC_CLIENT
from ..server import FULL_ACCESS, AssociationConfig, CosemServer, read_only
from ..xdlms import ActionResult, CaptureObjectDefinition, DataAccessResult
from ..xdlms.ciphering import SecurityKeys
from .model import INTERVAL, EnergyModel

__all__ = [
    "DEFAULT_KEYS",
    "DEFAULT_PASSWORD",
    "LOAD_PROFILE",
    "PUBLIC_OBJECTS",
    "CounterProvider",
    "MeterSimulator",
    "SimClock",
]

LOAD_PROFILE = Obis(1, 0, 99, 1, 0, 255)
CLOCK = Obis(0, 0, 1, 0, 0, 255)
IMPORT, IMPORT_T1, IMPORT_T2, EXPORT = (Obis(1, 0, 1, 8, 0, 255), Obis(1, 0, 1, 8, 1, 255),
                                        Obis(1, 0, 1, 8, 2, 255), Obis(1, 0, 2, 8, 0, 255))
P_IMPORT, P_EXPORT, VOLTAGE, CURRENT = (Obis(1, 0, 1, 7, 0, 255), Obis(1, 0, 2, 7, 0, 255),
                                        Obis(1, 0, 32, 7, 0, 255), Obis(1, 0, 31, 7, 0, 255))

#: what the public client may see (read only)
PUBLIC_OBJECTS = (CLOCK, IMPORT, IMPORT_T1, IMPORT_T2, EXPORT, P_IMPORT, P_EXPORT, VOLTAGE, CURRENT,
                  LOAD_PROFILE, Obis(0, 0, 40, 0, 0, 255), Obis(0, 0, 42, 0, 0, 255),
                  Obis(0, 0, 32, 0, 0, 255), Obis(0, 0, 32, 1, 0, 255), Obis(0, 0, 32, 2, 0, 255),
                  Obis(0, 0, 32, 3, 0, 255), Obis(0, 0, 96, 3, 10, 255))

#: lab defaults (Green Book example keys), used when no keys are given
DEFAULT_PASSWORD = b"12345678"
DEFAULT_KEYS = SecurityKeys(ek=bytes(range(16)), ak=bytes(range(0xD0, 0xE0)))

#: returns the current counters of class 132 or 133 by attribute name
CounterProvider = Callable[[], Mapping[str, int]]


class SimClock:
    """An injectable clock: ``clock()`` is the simulated POSIX time; :meth:`advance` moves it."""

    __slots__ = ("now",)

    def __init__(self, start: float) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


_DT = struct.Struct(">HBBBBBBBhB")


def _dt(t: float) -> axdr.OctetString:
    """COSEM date-time (UTC, deviation 0, status 0, hundredths not specified) of POSIX ``t``."""
    days, sec = divmod(int(t), 86400)
    # civil date from days since 1970-01-01 (proleptic Gregorian, era arithmetic)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    weekday = (days + 3) % 7 + 1  # 1970-01-01 was a Thursday; COSEM Monday = 1
    out: axdr.OctetString = axdr.OctetString(_DT.pack(year, month, day, weekday, sec // 3600, sec // 60 % 60,
                                                      sec % 60, 0xFF, 0, 0))
    return out


def _su(scaler: int, unit: Unit) -> ScalerUnit:
    return ScalerUnit(scaler, unit)


#: the Data types the model registers' readers give (AnyData.to_data keeps them as they are)
_VALUE_TYPES = frozenset((axdr.DoubleLongUnsigned, axdr.LongUnsigned))


class _ModelRegister(Register):
    """A register whose value is computed from the meter's model."""

    def __init__(self, ln: Obis, reader: Callable[[float], Any], su: ScalerUnit,
                 meter: MeterSimulator) -> None:
        super().__init__(ln, scaler_unit=su)
        self._reader = reader
        self._meter = meter
        #: the last value read: (now, the outages it was computed with, value)
        self._memo: tuple[float, list[tuple[float, float | None]], Any] = (float("nan"), [], None)
        self.attribute_access[2] = AttributeAccess.READ_ONLY
        self.method_access[1] = MethodAccess.NO_ACCESS

    def read_value(self, now: float | None = None, selection: Any = None) -> Any:
        if selection is not None:
            raise CosemAccessError(DataAccessResult.OTHER_REASON, "value has no selective access")
        if now is None:
            raise CosemAccessError(DataAccessResult.TEMPORARY_FAILURE, "no time source")
        # the value is a function of the time and the supply outages only (the model is
        # deterministic): reads at one simulated instant share one computation
        memo = self._memo
        outages = self._meter.outages
        if memo[0] == now and memo[1] == outages:
            return memo[2]
        v = self._reader(now)
        self._memo = (now, outages[:], v)  # a copy of the list
        return v

    def get(self, index: int, *, selection: Any = None, now: float | None = None) -> Any:
        """GET; the value at a given time without selective access is read_value's answer
        directly (the same Data as the generic dispatch of :meth:`CosemObject.get`)."""
        if type(index) is int and index == 2 and selection is None and now is not None:
            memo = self._memo
            outages = self._meter.outages
            if memo[0] == now and memo[1] == outages:
                v = memo[2]
            else:
                v = self._reader(now)
                self._memo = (now, outages[:], v)
            if type(v) in _VALUE_TYPES:  # what the value attribute's CHOICE keeps as it is
                return v
        return super().get(index, selection=selection, now=now)


class _LoadProfile(ProfileGeneric):
    """Load profile whose entries are captured lazily at every 15-minute boundary."""

    def __init__(self, meter: MeterSimulator, entries: int) -> None:
        caps = [CaptureObjectDefinition(8, CLOCK, 2, 0), CaptureObjectDefinition(3, IMPORT, 2, 0),
                CaptureObjectDefinition(3, EXPORT, 2, 0)]
        super().__init__(LOAD_PROFILE, capture_objects=caps, capture_period=INTERVAL,
                         sort_method=1, sort_object=caps[0], profile_entries=entries)
        self._meter = meter
        self._next = meter.model.start + INTERVAL  # next boundary to capture
        self._ncols = len(caps)
        self.attribute_access[3] = AttributeAccess.READ_ONLY  # fixed capture objects
        self.method_access = {1: MethodAccess.NO_ACCESS, 2: MethodAccess.NO_ACCESS}

    def sync(self, now: float) -> None:
        """Capture every boundary up to ``now``."""
        limit = int(self._data[8])
        if limit and (now - self._next) / INTERVAL > limit + 1:
            self._next += int((now - self._next) // INTERVAL - limit) * INTERVAL
        while self._next <= now:
            t = self._next
            imp, exp = self._meter.import_export_wh(t)
            self.rows.append(axdr.Structure([_dt(t), axdr.DoubleLongUnsigned(imp),
                                             axdr.DoubleLongUnsigned(exp)]))
            self._next += INTERVAL
        if limit and len(self.rows) > limit:
            del self.rows[: len(self.rows) - limit]

    def read_buffer(self, now: float | None = None, selection: Any = None) -> axdr.Array:
        if now is not None:
            self.sync(now)
        return super().read_buffer(now, selection)

    def read_entries_in_use(self, now: float | None = None, selection: Any = None) -> Any:
        if now is not None:
            self.sync(now)
        return super().read_entries_in_use(now, selection)


class _Disconnect(DisconnectControl):
    def __init__(self, meter: MeterSimulator) -> None:
        super().__init__()
        self._meter = meter

    def do_remote_disconnect(self, parameter: Any, now: float | None = None) -> None:
        super().do_remote_disconnect(parameter, now)
        self._meter._supply_changed(now)

    def do_remote_reconnect(self, parameter: Any, now: float | None = None) -> None:
        super().do_remote_reconnect(parameter, now)
        self._meter._supply_changed(now)


class _ImageTransfer(CosemObject):
    """Image transfer (class 18): initiate, blocks, verify, activate."""

    class_id = 18

    def __init__(self, block_size: int = 192) -> None:
        super().__init__(Obis(0, 0, 44, 0, 0, 255), image_block_size=block_size,
                         image_transferred_blocks_status=axdr.BitString(""),
                         image_first_not_transferred_block_number=0,
                         image_transfer_enabled=True, image_transfer_status=0,
                         image_to_activate_info=[])
        self.identifier = b""
        self.size = 0
        self.blocks: dict[int, bytes] = {}
        self.active_image: bytes | None = None
        self.active_identifier = b""

    def _nblocks(self) -> int:
        bs = int(self._data[2])
        return (self.size + bs - 1) // bs

    def _update(self) -> None:
        n = self._nblocks()
        bits = "".join("1" if i in self.blocks else "0" for i in range(n))
        self._data[3] = axdr.BitString(bits)
        first = next((i for i in range(n) if i not in self.blocks), n)
        self._data[4] = axdr.DoubleLongUnsigned(first)

    def do_image_transfer_initiate(self, parameter: Any, now: float | None = None) -> None:
        if not bool(self._data[5]):
            raise CosemAccessError(ActionResult.TEMPORARY_FAILURE, "image transfer disabled")
        self.identifier = bytes(parameter[0])
        self.size = int(parameter[1])
        self.blocks = {}
        self._data[6] = axdr.Enum(1)
        self._update()

    def do_image_block_transfer(self, parameter: Any, now: float | None = None) -> None:
        if int(self._data[6]) != 1:
            raise CosemAccessError(ActionResult.TEMPORARY_FAILURE, "no transfer initiated")
        num, value = int(parameter[0]), bytes(parameter[1])
        if num >= self._nblocks():
            raise CosemAccessError(ActionResult.OTHER_REASON, "block number out of range")
        self.blocks[num] = value
        self._update()

    def image(self) -> bytes:
        return b"".join(self.blocks[i] for i in range(self._nblocks()))

    def do_image_verify(self, parameter: Any, now: float | None = None) -> None:
        ok = len(self.blocks) == self._nblocks() and len(self.image()) == self.size
        self._data[6] = axdr.Enum(3 if ok else 4)
        if ok:
            digest = hashlib.sha256(self.image()).digest()[:8]
            self._data[7] = axdr.Array([axdr.Structure([
                axdr.DoubleLongUnsigned(self.size), axdr.OctetString(self.identifier),
                axdr.OctetString(digest)])])
        else:
            raise CosemAccessError(ActionResult.OTHER_REASON, "image incomplete")

    def do_image_activate(self, parameter: Any, now: float | None = None) -> None:
        if int(self._data[6]) != 3:
            raise CosemAccessError(ActionResult.TEMPORARY_FAILURE, "image not verified")
        self.active_image = self.image()
        self.active_identifier = self.identifier
        self._data[6] = axdr.Enum(6)


class _SecuritySetup(CosemObject):
    class_id = 64

    def do_security_activate(self, parameter: Any, now: float | None = None) -> None:
        if parameter is None or int(parameter) < int(self._data[2]):
            raise CosemAccessError(ActionResult.OTHER_REASON, "security policy may only be raised")
        self._data[2] = axdr.Enum(int(parameter))


class _CounterFed(CosemObject):
    """Mixin: attributes 2.. of classes 132/133 refreshed from a live counter ``provider``."""

    provider: CounterProvider | None = None

    def get(self, index: int, *, selection: Any = None, now: float | None = None) -> Any:
        if self.provider is not None and index >= 2:
            values = self.provider()
            for a in self.interface.attributes[1:]:
                if a.name in values:
                    cur = self._data[a.index]
                    typ = type(cur)
                    self._data[a.index] = typ(int(values[a.name]) % (typ.MAX + 1))
        return super().get(index, selection=selection, now=now)


class _FedStatus(_CounterFed, Iso14908ProtocolStatus):
    """Class 132 fed from the node's link counters."""


class _FedDiagnostic(_CounterFed, Iso14908Diagnostic):
    """Class 133 fed from the node's link counters."""


class _BoundSetup(Iso14908ProtocolSetup):
    """Class 131 whose ``inactivity_timeout`` is the serving node's own setting (an object with
    an ``inactivity_timeout`` property in minutes, e.g. the adaptation ServerEndpoint)."""

    target: Any = None

    def get(self, index: int, *, selection: Any = None, now: float | None = None) -> Any:
        if index == 2 and self.target is not None:
            self._data[2] = axdr.LongUnsigned(int(self.target.inactivity_timeout))
        return super().get(index, selection=selection, now=now)

    def set(self, index: int, value: Any, *, selection: Any = None, now: float | None = None) -> None:
        super().set(index, value, selection=selection, now=now)
        if index == 2 and self.target is not None:
            self.target.inactivity_timeout = int(self._data[2])


def _bt01(seed: int) -> bytes:
    """ANSI C12.19 BT01 (general manufacturer identification), 32 octets."""
    serial = f"{seed & 0xFFFFFFFF:016d}".encode()
    return b"SIM " + b"DLMS8-8 " + bytes((1, 0, 0, 1)) + serial


class MeterSimulator:
    """A simulated meter: its object set, consumption model and COSEM server.

    ``clock`` is the injected time source (POSIX seconds); ``seed`` makes every value
    reproducible.  ``password`` (LLS) and ``keys`` (HLS-5, ciphering) provision the
    management association (client SAP 0x01); the public client (0x10) reads a
    read-only subset without security."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], float],
                 system_title: bytes | None = None, password: bytes | None = DEFAULT_PASSWORD,
                 keys: SecurityKeys | None = DEFAULT_KEYS, require_ciphering: bool = False,
                 history_days: float = 10.0, profile_entries: int = 960,
                 max_receive_pdu_size: int = 1024, node: tuple[int, int] = (1, 7),
                 neuron_id: bytes | None = None,
                 counters: tuple[CounterProvider | None, CounterProvider | None] = (None, None),
                 random: Callable[[int], bytes] | None = None, domain: bytes = b"\x42",
                 inactivity_timeout: int = 300) -> None:
        self.seed = seed
        self.clock = clock
        now = clock()
        self.model = EnergyModel(seed, now - history_days * 86400)
        h = hashlib.blake2b(seed.to_bytes(8, "big", signed=True), digest_size=16).digest()
        self.system_title = system_title if system_title is not None else b"SIM" + h[:5]
        self.neuron_id = neuron_id if neuron_id is not None else h[5:11]
        # energy at the model start (Wh): a meter that has been in service for a while
        self._base_t1 = 1_000_000 + int.from_bytes(h[11:14], "big") % 3_000_000
        self._base_t2 = 500_000 + int.from_bytes(h[14:16], "big") * 16
        self._base_exp = int.from_bytes(h[0:3], "big") % 400_000
        #: periods without supply: (start, end or None)
        self.outages: list[tuple[float, float | None]] = []
        self.password = password
        self.keys = keys
        self.domain = bytes(domain)
        self._inactivity = inactivity_timeout
        self._build(node, profile_entries, counters, max_receive_pdu_size)
        mechs = [MechanismName.LOWEST] if not require_ciphering else []
        if password is not None:
            mechs.append(MechanismName.LOW)
        if keys is not None:
            mechs.append(MechanismName.HIGH_GMAC)
        rnd = random if random is not None else _seeded_random(seed)
        self.server = CosemServer(
            self.objects.values(),
            [AssociationConfig(SAP_PUBLIC_CLIENT, access=read_only(PUBLIC_OBJECTS)),
             AssociationConfig(SAP_MANAGEMENT_CLIENT, mechanisms=tuple(mechs), secret=password,
                               keys=keys, require_ciphering=require_ciphering, access=FULL_ACCESS)],
            system_title=self.system_title, clock=clock, max_receive_pdu_size=max_receive_pdu_size,
            random=rnd)

    # ------------------------------------------------------------------ model access
    def _ws(self, t: float) -> tuple[int, int, int, int]:
        """Energies since the model start with supply outages removed."""
        e = self.model.energies(t)
        for start, end in self.outages:
            if start >= t:
                continue
            stop = t if end is None or end > t else end
            a, b = self.model.energies(start), self.model.energies(stop)
            e = (e[0] - (b[0] - a[0]), e[1] - (b[1] - a[1]), e[2] - (b[2] - a[2]), e[3] - (b[3] - a[3]))
        return e

    def supplied(self, t: float) -> bool:
        return not any(s <= t and (e is None or t < e) for s, e in self.outages)

    def tariff_wh(self, t: float) -> tuple[int, int]:
        """Import energy in tariff 1 and 2 (Wh) at ``t``."""
        _, _, t1, t2 = self._ws(t)
        return self._base_t1 + t1 // 3600, self._base_t2 + t2 // 3600

    def import_export_wh(self, t: float) -> tuple[int, int]:
        """Registers 1-0:1.8.0 (= 1.8.1 + 1.8.2) and 1-0:2.8.0 in Wh at ``t``."""
        # without supply outages _ws(t) is the model's energies(t)
        _, e, t1, t2 = self._ws(t) if self.outages else self.model.energies(t)
        return (self._base_t1 + t1 // 3600 + self._base_t2 + t2 // 3600,
                self._base_exp + e // 3600)

    def _import_value(self, t: float) -> Any:
        """The value of 1-0:1.8.0 as Data: ``import_export_wh(t)[0]``."""
        _, _, t1, t2 = self._ws(t) if self.outages else self.model.energies(t)
        return axdr.DoubleLongUnsigned(self._base_t1 + t1 // 3600 + self._base_t2 + t2 // 3600)

    def power_w(self, t: float) -> tuple[int, int]:
        return self.model.power(t) if self.supplied(t) else (0, 0)

    def _supply_changed(self, now: float | None) -> None:
        t = self.clock() if now is None else now
        on = bool(self.objects[Obis(0, 0, 96, 3, 10, 255)].data(2))
        if not on and (not self.outages or self.outages[-1][1] is not None):
            self.outages.append((t, None))
        elif on and self.outages and self.outages[-1][1] is None:
            self.outages[-1] = (self.outages[-1][0], t)

    # ------------------------------------------------------------------ objects
    def _build(self, node: tuple[int, int], entries: int,
               counters: tuple[CounterProvider | None, CounterProvider | None],
               max_pdu: int) -> None:
        wh, w = _su(0, Unit.WATT_HOUR), _su(0, Unit.WATT)
        objs: list[CosemObject] = [
            Clock(CLOCK),
            Data(Obis(0, 0, 42, 0, 0, 255),
                 value=axdr.OctetString(b"SIM" + self.system_title[3:].hex().upper().encode())),
            _ModelRegister(IMPORT, self._import_value, wh, self),
            _ModelRegister(IMPORT_T1, lambda t: axdr.DoubleLongUnsigned(self.tariff_wh(t)[0]), wh, self),
            _ModelRegister(IMPORT_T2, lambda t: axdr.DoubleLongUnsigned(self.tariff_wh(t)[1]), wh, self),
            _ModelRegister(EXPORT, lambda t: axdr.DoubleLongUnsigned(self.import_export_wh(t)[1]), wh, self),
            _ModelRegister(P_IMPORT, lambda t: axdr.DoubleLongUnsigned(self.power_w(t)[0]), w, self),
            _ModelRegister(P_EXPORT, lambda t: axdr.DoubleLongUnsigned(self.power_w(t)[1]), w, self),
            _ModelRegister(VOLTAGE, lambda t: axdr.LongUnsigned(self.model.voltage_dv(t)),
                           _su(-1, Unit.VOLT), self),
            _ModelRegister(CURRENT, self._current, _su(-2, Unit.AMPERE), self),
            _LoadProfile(self, entries),
            CosemObject(Obis(0, 0, 40, 0, 0, 255), class_id=15,
                        application_context_name=axdr.OctetString(bytes.fromhex("60857405080101")),
                        xdlms_context_info=axdr.Structure([
                            axdr.BitString("000000000001111000011101"), axdr.LongUnsigned(max_pdu),
                            axdr.LongUnsigned(max_pdu), axdr.Unsigned(6), axdr.Integer(0),
                            axdr.OctetString(b"")]),
                        authentication_mechanism_name=axdr.OctetString(bytes.fromhex("60857405080200")),
                        security_setup_reference=Obis(0, 0, 43, 0, 0, 255), user_list=[]),
            _SecuritySetup(Obis(0, 0, 43, 0, 0, 255), security_policy=axdr.Enum(0),
                           security_suite=axdr.Enum(0), client_system_title=axdr.OctetString(b""),
                           server_system_title=axdr.OctetString(self.system_title)),
            _Disconnect(self),
            _ImageTransfer(),
            Iso14908Identification(node_id=node[1], subnet_id=node[0],
                                   domain_id=axdr.OctetString(self.domain),
                                   program_id=axdr.OctetString(bytes.fromhex("9F FF FF 05 01 0A 04 01")),
                                   unique_node_id=axdr.OctetString(self.neuron_id)),
            _BoundSetup(inactivity_timeout=self._inactivity),
            _FedStatus(),
            _FedDiagnostic(),
            CosemObject(Obis(0, 0, 65, 0, 1, 255), class_id=26, table_id=1,
                        length=axdr.DoubleLongUnsigned(32), buffer=axdr.OctetString(_bt01(self.seed))),
        ]
        # the association object's own methods are handled by the server
        objs[11].method_access = dict.fromkeys(objs[11].method_access, MethodAccess.NO_ACCESS)
        objs[11].method_access[1] = MethodAccess.ACCESS
        self.objects: dict[Obis, CosemObject] = {o.logical_name: o for o in objs}
        self.set_counter_providers(*counters)

    def _current(self, t: float) -> Any:
        imp, exp = self.power_w(t)
        return axdr.LongUnsigned(min(0xFFFF, round((imp + exp) * 1000 / self.model.voltage_dv(t))))

    def set_counter_providers(self, status: CounterProvider | None,
                              diagnostic: CounterProvider | None) -> None:
        """Feed classes 132 (protocol status) and 133 (diagnostic) from live counters."""
        self.objects[Obis(0, 0, 32, 2, 0, 255)].provider = status  # type: ignore[attr-defined]
        self.objects[Obis(0, 0, 32, 3, 0, 255)].provider = diagnostic  # type: ignore[attr-defined]

    def bind_protocol_setup(self, target: Any) -> None:
        """Make class 131 ``inactivity_timeout`` read and write ``target.inactivity_timeout``
        (minutes; the serving adaptation endpoint), set to this meter's value now."""
        obj = self.objects[Obis(0, 0, 32, 1, 0, 255)]
        target.inactivity_timeout = int(obj._data[2])
        obj.target = target  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ convenience
    @property
    def load_profile(self) -> _LoadProfile:
        return self.objects[LOAD_PROFILE]  # type: ignore[return-value]

    def profile_rows(self) -> list[axdr.Structure]:
        """The load profile entries as stored (synced to the clock)."""
        lp = self.load_profile
        lp.sync(self.clock())
        return list(lp.rows)

    def handler_for(self, client_sap: int) -> Callable[[bytes], bytes | None]:
        """The ApduHandler of one client SAP."""
        return self.server.handler_for(client_sap)


def _seeded_random(seed: int) -> Callable[[int], bytes]:
    counter = [0]

    def rnd(n: int) -> bytes:
        counter[0] += 1
        return hashlib.blake2b(b"challenge" + seed.to_bytes(8, "big", signed=True)
                               + counter[0].to_bytes(8, "big"), digest_size=max(1, min(n, 64))).digest()[:n]
    return rnd
