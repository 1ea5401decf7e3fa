"""Typed asyncio DLMS/COSEM client over any :class:`~dlms14908.link.ApduLink`.

A thin adapter (style guide §b1) around the sans-I/O :class:`~dlms14908.client.ClientConnection`:
each call builds an :class:`~dlms14908.client.Exchange` and pumps it through the link.  One
``Client`` per meter; requests on one client are serialised, many clients run concurrently
in one event loop (``asyncio.gather``).  Values come back typed through the COSEM class
tables (:func:`dlms14908.cosem.decode_attribute`); registers can be read scaled.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from . import axdr
from .client import (
    AssocState,
    AttributeRef,
    ClientConnection,
    ClientSettings,
    DataAccessError,
    Exchange,
    MethodRef,
    guess_class_id,
)
from .cosem import (
    CaptureObjectDefinition,
    ProfileBuffer,
    ScalerUnit,
    Unit,
    decode_attribute,
    decode_buffer,
    encode_attribute,
    is_clock_column,
)
from .errors import DecodeError, LocalProtocolError
from .link import ApduLink
from .obis import Obis
from .xdlms import ABSENT, DataAccessResult, EntryDescriptor, InitiateResponse, RangeDescriptor
from .xdlms.types import AccessSelector

__all__ = ["SCALER_ATTRIBUTE", "Client", "Measurement", "ProgressCallback", "resolve_class_id"]

#: ``progress(entries_received, entries_total)`` during a profile read (estimates until done)
ProgressCallback = Callable[[int, int], None]


#: interface class -> index of its scaler_unit attribute (the value is attribute 2)
SCALER_ATTRIBUTE = {3: 3, 4: 3, 5: 4}


def resolve_class_id(obis: Obis, class_id: int | None) -> int:
    """``class_id`` or the usual class of ``obis``; LocalProtocolError when unknown."""
    if class_id is not None:
        return class_id
    guess = guess_class_id(obis)
    if guess is None:
        raise LocalProtocolError(f"{obis}: give the interface class (class_id)")
    return guess


@dataclass(frozen=True, slots=True)
class Measurement:
    """A register value with its scaler and unit applied."""

    value: int | float
    unit: Unit | int
    raw: Any
    scaler_unit: ScalerUnit

    def __str__(self) -> str:
        u = self.unit.symbol if isinstance(self.unit, Unit) else f"unit {self.unit}"
        v = self.value
        text = f"{v:.{-self.scaler_unit.scaler}f}" if isinstance(v, float) and self.scaler_unit.scaler < 0 \
            else str(v)
        return f"{text} {u}".rstrip()


def _obis(x: Obis | str) -> Obis:
    return x if isinstance(x, Obis) else Obis.parse(x)


# open ends of a read_profile time range: the profile's whole span
_RANGE_FLOOR = axdr.DateTime(2000, 1, 1, None, 0, 0, 0, 0, 0, axdr.ClockStatus(0))
_RANGE_CEILING = axdr.DateTime(2099, 12, 31, None, 23, 59, 59, 0, 0, axdr.ClockStatus(0))


def _datetime_data(x: Any) -> axdr.OctetString:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        x = datetime.fromtimestamp(x, UTC)
    if isinstance(x, datetime):
        x = axdr.DateTime.from_datetime(x, status=0, hundredths=False)
    if not isinstance(x, axdr.DateTime):
        raise LocalProtocolError("profile bounds must be aware datetimes, DateTime or POSIX seconds")
    data: axdr.OctetString = axdr.OctetString(x.to_bytes())  # OctetString.__new__ is typed -> Any
    return data


class Client:
    """Asyncio client of one meter (see module docstring)."""

    def __init__(self, link: ApduLink, settings: ClientSettings | None = None, *,
                 timeout: float = 10.0, random: Callable[[int], bytes] = os.urandom) -> None:
        self.link = link
        self.conn = ClientConnection(settings, random=random)
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._scalers: dict[Obis, ScalerUnit] = {}
        self._profiles: dict[Obis, tuple[list[CaptureObjectDefinition], int, int]] = {}

    # ------------------------------------------------------------------ plumbing
    async def _run(self, make: Callable[[], Exchange]) -> Any:
        async with self._lock:
            ex = make()
            data: bytes | None = ex.request
            try:
                while data is not None:
                    resp = await self.link.request(data, timeout=self.timeout)
                    data = ex.receive(resp)
            except BaseException:
                ex.abort()
                raise
            return ex.result

    async def __aenter__(self) -> Self:
        if not self.conn.settings.pre_established:
            await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ association
    async def connect(self) -> InitiateResponse:
        """COSEM-OPEN (AARQ/AARE, HLS-5 pass 3/4 when configured); after a failed
        association or release the connection is reset first."""
        if self.conn.state in (AssocState.ERROR, AssocState.AWAITING_AARE, AssocState.AWAITING_HLS,
                               AssocState.RELEASING) and not self.conn._busy:
            self.conn.reset()
        return await self._run(self.conn.connect)  # type: ignore[no-any-return]

    @property
    def associated(self) -> bool:
        """True while an association is open."""
        return self.conn.state is AssocState.ASSOCIATED

    async def release(self) -> None:
        """COSEM-RELEASE (RLRQ/RLRE)."""
        await self._run(self.conn.release)

    async def close(self) -> None:
        """Release the association when one is open (errors ignored) and close the link."""
        try:
            if self.conn.state is AssocState.ASSOCIATED and not self.conn.settings.pre_established:
                await self.release()
        except Exception:  # noqa: BLE001, S110 - closing must not fail (documented: errors ignored)
            pass
        finally:
            await self.link.close()

    # ------------------------------------------------------------------ GET
    async def get(self, obis: Obis | str, *, class_id: int | None = None, attr: int = 2,
                  selection: AccessSelector | None = None, typed: bool = True,
                  scaled: bool = False) -> Any:
        """GET one attribute.  ``typed``: through the class tables (Obis, ScalerUnit,
        DateTime, records); ``scaled``: a register value as :class:`Measurement`."""
        ob = _obis(obis)
        cid = resolve_class_id(ob, class_id)
        if scaled:
            return await self.read_register(ob, class_id=cid)
        v = await self._run(lambda: self.conn.get(cid, ob, attr, selection))
        return decode_attribute(cid, attr, v) if typed else v

    async def get_with_list(self, refs: Sequence[AttributeRef | tuple[int, Obis | str, int]], *,
                            typed: bool = True) -> list[Any]:
        """GET-with-list: one entry per attribute, the value or a :class:`DataAccessError`."""
        rs = [r if isinstance(r, AttributeRef) else AttributeRef(r[0], _obis(r[1]), r[2]) for r in refs]
        results = await self._run(lambda: self.conn.get_with_list(rs))
        out: list[Any] = []
        for r, v in zip(rs, results):
            if isinstance(v, DataAccessResult):
                out.append(DataAccessError(v, f"{r.obis} attribute {r.attribute}"))
            else:
                out.append(decode_attribute(r.class_id, r.attribute, v) if typed else v)
        return out

    async def read_register(self, obis: Obis | str, *, class_id: int = 3) -> Measurement:
        """Value and scaler_unit of a register (class 3 or 4; class 5: current_average_value),
        in one GET-with-list; the scaler is cached per object."""
        ob = _obis(obis)
        su_attr = SCALER_ATTRIBUTE.get(class_id)
        if su_attr is None:
            raise LocalProtocolError(f"class {class_id} has no scaler_unit")
        su = self._scalers.get(ob)
        if su is None:
            raw, su_v = await self.get_with_list(
                [AttributeRef(class_id, ob, 2), AttributeRef(class_id, ob, su_attr)], typed=False)
            for v in (raw, su_v):
                if isinstance(v, DataAccessError):
                    raise v
            su = decode_attribute(class_id, su_attr, su_v)
            self._scalers[ob] = su
        else:
            raw = await self._run(lambda: self.conn.get(class_id, ob, 2))
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise DecodeError(f"register value is {type(raw).__name__}, not a number", field=str(ob))
        return Measurement(su.apply(raw), su.unit, raw, su)

    # ------------------------------------------------------------------ SET / ACTION
    async def set(self, obis: Obis | str, value: Any, *, class_id: int | None = None,
                  attr: int = 2) -> None:
        """SET one attribute; typed values are converted through the class tables."""
        ob = _obis(obis)
        cid = resolve_class_id(ob, class_id)
        data = value
        if not _is_data(value):
            data = encode_attribute(cid, attr, value)
        await self._run(lambda: self.conn.set(cid, ob, attr, data))

    async def set_with_list(self, items: Sequence[tuple[AttributeRef, Any]]) -> list[DataAccessResult]:
        """SET-with-list of Data values; the Data-Access-Result per attribute."""
        return await self._run(lambda: self.conn.set_with_list(items))  # type: ignore[no-any-return]

    async def action(self, obis: Obis | str, method: int, parameter: Any = ABSENT, *,
                     class_id: int | None = None) -> Any:
        """Invoke a method; returns its return Data (None when there is none)."""
        ob = _obis(obis)
        cid = resolve_class_id(ob, class_id)
        return await self._run(lambda: self.conn.action(cid, ob, method, parameter))

    async def set_unconfirmed(self, obis: Obis | str, value: Any, *, class_id: int | None = None,
                              attr: int = 2) -> None:
        """SET without confirmation (the link's unconfirmed/broadcast send; no answer)."""
        ob = _obis(obis)
        cid = resolve_class_id(ob, class_id)
        data = value if _is_data(value) else encode_attribute(cid, attr, value)
        async with self._lock:
            apdu = self.conn.unconfirmed_set(cid, ob, attr, data)
            await self.link.send(apdu)

    async def action_unconfirmed(self, obis: Obis | str, method: int, parameter: Any = ABSENT, *,
                                 class_id: int | None = None) -> None:
        """ACTION without confirmation (no answer)."""
        ob = _obis(obis)
        cid = resolve_class_id(ob, class_id)
        async with self._lock:
            await self.link.send(self.conn.unconfirmed_action(cid, ob, method, parameter))

    async def action_with_list(self, items: Sequence[tuple[MethodRef, Any]]) -> list[Any]:
        """ACTION-with-list; one ActionResponseItem per method."""
        return await self._run(lambda: self.conn.action_with_list(items))  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ objects and profiles
    async def object_list(self, association: Obis | str = "0-0:40.0.0.255") -> list[Any]:
        """The object_list of the (current) Association LN, typed records."""
        return await self.get(association, class_id=15, attr=2)  # type: ignore[no-any-return]

    async def read_profile(self, obis: Obis | str, *, from_: Any = None, to: Any = None,
                           entries: tuple[int, int] | None = None,
                           columns: Sequence[CaptureObjectDefinition] | None = None,
                           progress: ProgressCallback | None = None) -> ProfileBuffer:
        """Read a profile generic buffer, whole or by time range (``from_``/``to``: aware
        datetimes, DateTime or POSIX seconds) or by entries (``entries=(first, last)``,
        1-based, inclusive; 0 = up to the last).  Returns typed rows.  The profile's
        capture_objects, capture_period and sort_method are read once per client and cached."""
        ob = _obis(obis)
        if entries is not None and (from_ is not None or to is not None):
            raise LocalProtocolError("give a time range or entries, not both")
        meta = self._profiles.get(ob)
        if meta is None:  # capture_objects, capture_period, sort_method: read once per client
            got = await self.get_with_list([AttributeRef(7, ob, 3), AttributeRef(7, ob, 4),
                                            AttributeRef(7, ob, 5)])
            for v in got[:2]:
                if isinstance(v, DataAccessError):
                    raise v
            meta = (list(got[0]), int(got[1]), 1 if isinstance(got[2], DataAccessError) else int(got[2]))
            self._profiles[ob] = meta
        caps, period, sort = meta
        sel: AccessSelector | None = None
        cols = list(caps)
        if from_ is not None or to is not None:
            clock = next((c for c in caps if is_clock_column(c)), None)
            if clock is None:
                raise LocalProtocolError(f"{ob} captures no clock; use entries")
            lo = _datetime_data(from_ if from_ is not None else _RANGE_FLOOR)
            hi = _datetime_data(to if to is not None else _RANGE_CEILING)
            if columns:
                cols = list(columns)
            sel = RangeDescriptor(clock, lo, hi, tuple(columns or ()))
        elif entries is not None:
            first, last = entries
            if first < 1 or (last and last < first):
                raise LocalProtocolError("entries are 1-based: (first, last) with last >= first or 0")
            sel = EntryDescriptor(first, last)
        hook = _ProfileProgress(progress) if progress is not None else None
        buf = await self._run(lambda: self.conn.get(
            7, ob, 2, sel, on_block=hook.on_block if hook is not None else None))
        result = decode_buffer(buf, cols, capture_period=period, sort_method=sort)
        if progress is not None:
            progress(len(result), len(result))
        return result


def _is_data(v: Any) -> bool:
    try:
        axdr.data_type_of(v)
    except Exception:  # noqa: BLE001 - anything not encodable as Data
        return False
    return True


class _ProfileProgress:
    """Turns "bytes received so far" into an entry-count estimate from the first block."""

    __slots__ = ("cb", "header", "per_entry", "total")

    def __init__(self, cb: ProgressCallback) -> None:
        self.cb = cb
        self.total: int | None = None
        self.header = 0
        self.per_entry = 0.0

    def on_block(self, received: int, first: bytes) -> None:
        if self.total is None:
            count, p, pos, n = 0, 0, 0, 0
            try:
                if not first or first[0] != 0x01:
                    return
                n, pos = axdr.decode_length(first, 1)
                self.header = pos
                count, p = 0, pos
                while count < n:
                    _, p = axdr.decode(first, p)
                    count += 1
            except DecodeError:
                pass
            except Exception:  # noqa: BLE001 - an estimate only
                return
            if count == 0:
                return
            self.total = n
            self.per_entry = (p - pos) / count
        done = int((received - self.header) / self.per_entry) if self.per_entry else 0
        self.cb(min(done, self.total), self.total)
