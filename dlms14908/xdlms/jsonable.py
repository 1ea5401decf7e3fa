"""JSON-able view of decoded APDUs (used by ``dlms-analyze apdu --json``).

Each APDU / structure becomes ``{"apdu"|"type": name, field: value, ...}``; A-XDR Data
goes through :func:`dlms14908.axdr.to_jsonable`; enums become ``{"value", "name"}``;
bytes become upper-case hex; OBIS codes their text form.  Fields kept out of the repr
(keys, passwords) are replaced by ``"<redacted>"``.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .. import axdr
from ..obis import Obis
from ._base import Absent, Apdu

__all__ = ["apdu_to_jsonable"]

REDACTED = "<redacted>"


def _flag_name(v: enum.Enum) -> str:
    return str(v.name).lower().replace("_", "-")


def _data(v: Any) -> Any:
    if isinstance(v, enum.Enum):  # e.g. a DataAccessResult in a Data-or-result slot
        return _plain(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type) and not isinstance(
            v, (axdr.DateTime, axdr.Date, axdr.Time)):
        return _plain(v)
    return axdr.to_jsonable(v)


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, (bool, str)) and type(v) in (bool, str)):
        return v
    if isinstance(v, enum.Flag):
        return {"value": int(v.value), "hex": f"{int(v.value):06X}",
                "flags": [_flag_name(m) for m in type(v) if m in v]}
    if isinstance(v, enum.Enum):
        return {"value": int(v.value), "name": _flag_name(v)}
    if isinstance(v, Obis):
        return str(v)
    if type(v) in (bytes, bytearray):
        return bytes(v).hex().upper()
    if type(v) is int:
        return v
    if isinstance(v, (list, tuple)) and type(v) in (list, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, (axdr.DateTime, axdr.Date, axdr.Time)):
        return axdr.to_jsonable(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        out: dict[str, Any] = {}
        if isinstance(v, Apdu):
            out["apdu"] = v.NAME
        else:
            out["type"] = type(v).__name__
        for f in dataclasses.fields(v):
            val = getattr(v, f.name)
            if isinstance(val, Absent):
                continue
            if not f.repr and val is not None:
                out[f.name] = REDACTED
            elif f.metadata.get("data"):
                out[f.name] = [_data(x) for x in val] if type(val) is tuple else _data(val)
            else:
                out[f.name] = _plain(val)
        sel = getattr(v, "selector", None)
        if isinstance(sel, int) and "selector" not in out:
            out["selector"] = sel
        return out
    return axdr.to_jsonable(v)


def apdu_to_jsonable(apdu: Apdu) -> dict[str, Any]:
    """A dict of plain JSON types describing ``apdu``."""
    out = _plain(apdu)
    assert isinstance(out, dict)
    return out
