"""Every ACSE / LN / SN / ciphered-framing vector of dlms-vectors.md decodes to its
documented meaning and re-encodes byte-exact (vectors/xdlms/{acse,services,sn}_*.json)."""

from __future__ import annotations

import enum
import json
import re
from pathlib import Path
from typing import Any

import pytest

from dlms14908 import axdr
from dlms14908.obis import Obis
from dlms14908.xdlms import apdu_to_jsonable, decode_apdu, encode_apdu

VEC_DIR = Path(__file__).resolve().parents[1] / "vectors" / "xdlms"
FILES = sorted(p for pat in ("acse_*.json", "services_*.json", "sn_*.json")
               for p in VEC_DIR.glob(pat))


def _load() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in FILES:
        doc = json.loads(f.read_text())
        for v in doc["vectors"]:
            out.append((f"{f.stem}:{v['id']}", v))
    return out


VECTORS = _load()


def test_vector_files_present() -> None:
    names = {f.name for f in FILES}
    assert {"acse_vectors.json", "services_vectors.json", "sn_vectors.json"} <= names
    ids = {i.split(":")[1] for i, _ in VECTORS}
    # every ACSE and LN service vector of dlms-vectors.md §2/§3 is present
    for want in ("A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3", "B4", "R1", "R2", "R3a",
                 "R3b", "R4", "V5", "G1", "G2", "G3", "G4", "G5", "G6", "S1", "S2", "M1", "M2",
                 "N1", "V1"):
        assert want in ids, want


def _resolve(obj: Any, path: str) -> Any:
    for part in path.split("."):
        m = re.fullmatch(r"([A-Za-z_]+)((?:\[\d+\])*)", part)
        assert m, part
        name, idx = m.group(1), m.group(2)
        if name == "__len__":
            obj = len(obj)
        else:
            obj = getattr(obj, name)
        for i in re.findall(r"\[(\d+)\]", idx):
            obj = obj[int(i)]
    return obj


def _check(actual: Any, expected: Any, path: str) -> None:
    if isinstance(expected, str) and expected.startswith("hex:"):
        assert isinstance(actual, (bytes, bytearray)), path
        assert bytes(actual).hex().upper() == expected[4:].upper(), path
    elif isinstance(actual, enum.Enum) and isinstance(expected, str):
        assert actual.name == expected, path
    elif isinstance(actual, Obis):
        assert str(actual) == expected, path
    elif isinstance(expected, dict):
        assert axdr.to_jsonable(actual) == expected, path
    elif expected is None:
        assert actual is None, path
    elif isinstance(expected, list):
        assert list(actual) == expected, path
    else:
        assert actual == expected, path
        if isinstance(expected, bool):
            assert isinstance(actual, bool), path


@pytest.mark.parametrize("vid,vec", VECTORS, ids=[i for i, _ in VECTORS])
def test_vector_meaning_and_reencode(vid: str, vec: dict[str, Any]) -> None:
    assert vec.get("source"), "every vector names its source"
    raw = bytes.fromhex(vec["hex"])
    apdu = decode_apdu(raw)
    assert type(apdu).__name__ == vec["apdu"]
    for path, expected in vec["expect"].items():
        _check(_resolve(apdu, path), expected, path)
    assert encode_apdu(apdu) == raw
    # the JSON view is plain JSON
    json.dumps(apdu_to_jsonable(apdu))


@pytest.mark.parametrize("vid,vec", VECTORS, ids=[i for i, _ in VECTORS])
def test_vector_truncations_raise_decode_error(vid: str, vec: dict[str, Any]) -> None:
    from dlms14908.errors import DecodeError

    raw = bytes.fromhex(vec["hex"])
    step = max(1, len(raw) // 64)
    for n in range(0, len(raw), step):
        with pytest.raises(DecodeError) as ei:
            decode_apdu(raw[:n])
        assert ei.value.field, f"truncation at {n} names no field"
    with pytest.raises(DecodeError):
        decode_apdu(raw + b"\x00")
