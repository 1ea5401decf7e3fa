"""COSEM interface-class tables and typed attribute decoding."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from conftest import VECTORS
from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import axdr
from dlms14908.axdr import DataType
from dlms14908.cosem import (
    CLASSES,
    AttributeAccess,
    CaptureObjectDefinition,
    ClockBase,
    ObisSpec,
    ScalerUnit,
    SortMethod,
    Unit,
    UnknownClass,
    class_ids,
    decode_attribute,
    decode_parameter,
    encode_attribute,
    encode_parameter,
    get_class,
)
from dlms14908.errors import DecodeError, EncodeError
from dlms14908.obis import Obis

REQUIRED = [
    1,
    3,
    4,
    5,
    7,
    8,
    9,
    11,
    12,
    15,
    17,
    18,
    20,
    21,
    22,
    26,
    40,
    64,
    70,
    71,
    130,
    131,
    132,
    133,
]
ISO = json.loads((VECTORS / "cosem" / "iso14908_classes.json").read_text())


def test_every_required_class_is_modelled() -> None:
    assert set(REQUIRED) <= set(class_ids())
    for cid in REQUIRED:
        ic = get_class(cid)
        assert ic.class_id == cid and ic.name


@pytest.mark.parametrize("key", sorted(CLASSES), ids=lambda k: f"{k[0]}v{k[1]}")
def test_attribute_1_is_logical_name(key: tuple[int, int]) -> None:
    ic = CLASSES[key]
    a = ic.attribute(1)
    assert a.name == "logical_name" and isinstance(a.type, ObisSpec) and a.static
    assert a.access is AttributeAccess.READ_ONLY
    assert [x.index for x in ic.attributes] == list(range(1, len(ic.attributes) + 1))
    assert [m.index for m in ic.methods] == list(range(1, len(ic.methods) + 1))
    assert len({x.name for x in ic.attributes}) == len(ic.attributes)
    for x in ic.attributes:  # every attribute type has a neutral default that it accepts
        d = x.type.default()
        if d is not None:
            assert x.type.check(d), (ic.name, x.name)
            axdr.encode(d)


@pytest.mark.parametrize("cls", ISO["classes"], ids=lambda c: str(c["class_id"]))
def test_iso14908_tables_match_reference(cls: dict) -> None:
    ic = get_class(cls["class_id"])
    assert ic.version == cls["version"] == 0
    got = [
        [a.index, a.name, axdr.TYPE_NAMES[a.type.tag] if hasattr(a.type, "tag") else "octet-string"]
        for a in ic.attributes
    ]
    assert got == cls["attributes"]
    assert [m.name for m in ic.methods] == cls["methods"]  # version 0: no reset
    assert all(not a.static for a in ic.attributes[1:]) or cls["class_id"] in (130, 131)
    assert Obis.parse(cls["obis"]).name is not None


def test_iso14908_sn_offsets() -> None:
    for cid, attr, off in ISO["sn_offsets"]["checks"]:
        assert get_class(cid).attribute(attr).short_name_offset == off


def test_well_known_attributes() -> None:
    # spot checks of Blue Book tables
    assert get_class(3).attribute(3).name == "scaler_unit"
    assert get_class(7).attribute(3).name == "capture_objects"
    assert get_class(7).attribute(4).type.tag is DataType.DOUBLE_LONG_UNSIGNED
    assert get_class(8).attribute(3).type.tag is DataType.LONG  # time_zone
    assert [m.name for m in get_class(8).methods][5] == "shift_time"
    assert get_class(15).method(1).name == "reply_to_hls_authentication"
    assert get_class(18).method("image_block_transfer").index == 2
    assert get_class(70).method(1).name == "remote_disconnect"
    assert get_class(70).method(2).name == "remote_reconnect"
    assert get_class(64, 0).method(2).name == "global_key_transfer"
    assert get_class(64, 1).method(2).name == "key_transfer"
    assert get_class(12).method(8).name == "reply_to_hls_authentication"
    assert len(get_class(71).attributes) == 11 and len(get_class(20).attributes) == 10


def test_unknown_class() -> None:
    with pytest.raises(UnknownClass):
        get_class(9999)
    with pytest.raises(UnknownClass):
        get_class(3).attribute(9)
    # typed decoding of unmodelled things returns the Data unchanged
    v = axdr.LongUnsigned(7)
    assert decode_attribute(9999, 2, v) is v
    assert decode_attribute(3, 17, v) is v


def test_scaler_unit() -> None:
    data = axdr.decode_all(bytes.fromhex("0202 0FFE 161E"))
    su = decode_attribute(3, 3, data)
    assert su == ScalerUnit(-2, Unit.WATT_HOUR) and su.unit.symbol == "Wh"
    assert su.apply(12345) == pytest.approx(123.45)
    assert ScalerUnit(3, Unit.WATT).apply(2) == 2000
    assert axdr.encode(encode_attribute(3, "scaler_unit", su)) == bytes.fromhex("02020FFE161E")
    assert (
        decode_attribute(3, 3, axdr.Structure([axdr.Integer(0), axdr.Enum(200)])).unit == 200
    )  # unknown unit kept
    with pytest.raises(DecodeError) as ei:
        decode_attribute(3, 3, axdr.Structure([axdr.Unsigned(0), axdr.Enum(30)]))
    assert ei.value.field == "Register.scaler_unit"


def test_capture_objects_and_logical_name() -> None:
    raw = bytes.fromhex(
        "0102 0204 120008 09060000010000FF 0F02 120000 0204 120003 09060100010800FF 0F02 120000"
    )
    co = decode_attribute(7, "capture_objects", axdr.decode_all(raw))
    assert co == [
        CaptureObjectDefinition(8, Obis.parse("0-0:1.0.0.255"), 2, 0),
        CaptureObjectDefinition(3, Obis.parse("1-0:1.8.0.255"), 2, 0),
    ]
    assert axdr.encode(encode_attribute(7, 3, co)) == raw
    assert decode_attribute(1, 1, axdr.OctetString(bytes.fromhex("0000010000FF"))) == Obis(
        0, 0, 1, 0, 0, 255
    )
    with pytest.raises(DecodeError):
        decode_attribute(1, 1, axdr.OctetString(b"12345"))


def test_clock_attributes_typed() -> None:
    t = decode_attribute(8, 2, axdr.OctetString(bytes.fromhex("07E50118FF0E303950FFC400")))
    assert isinstance(t, axdr.DateTime) and t.deviation == -60
    assert decode_attribute(8, 9, axdr.Enum(1)) is ClockBase.INTERNAL_CRYSTAL
    assert decode_attribute(7, 5, axdr.Enum(2)) is SortMethod.LIFO
    assert decode_attribute(7, 5, axdr.Enum(77)) == 77  # unknown enum value kept
    with pytest.raises(DecodeError) as ei:
        decode_attribute(
            8, 2, axdr.OctetString(bytes.fromhex("07E50D18FF0E303950FFC400"))
        )  # month 13
    assert "month" in ei.value.field
    from datetime import datetime

    back = encode_attribute(8, "time", datetime(2021, 1, 24, 13, 48, 57, tzinfo=UTC))
    assert type(back) is axdr.OctetString and len(back) == 12


def test_object_list_round_trip() -> None:
    elem = dict(
        class_id=8,
        version=0,
        logical_name="0-0:1.0.0.255",
        access_rights=dict(
            attribute_access=[
                dict(attribute_id=2, access_mode=AttributeAccess.READ_WRITE, access_selectors=None)
            ],
            method_access=[dict(method_id=1, access_mode=1)],
        ),
    )
    data = encode_attribute(15, "object_list", [elem])
    raw = axdr.encode(data)
    assert raw.hex().upper().startswith("01010204120008110009060000010000FF")
    typed = decode_attribute(15, 2, axdr.decode_all(raw))
    assert typed[0].logical_name == Obis(0, 0, 1, 0, 0, 255)
    assert typed[0].access_rights.attribute_access[0].access_mode is AttributeAccess.READ_WRITE
    assert axdr.encode(encode_attribute(15, 2, typed)) == raw


def test_method_parameters() -> None:
    p = encode_parameter(
        18, "image_transfer_initiate", dict(image_identifier=b"fw-1", image_size=1024)
    )
    assert axdr.encode(p) == bytes.fromhex("0202 0904 66772D31 0600000400".replace(" ", ""))
    typed = decode_parameter(18, 1, p)
    assert typed.image_identifier == b"fw-1" and typed.image_size == 1024
    assert axdr.encode(encode_parameter(70, 1, 0)) == b"\x0f\x00"
    with pytest.raises(EncodeError):
        encode_parameter(8, "shift_time", 100000)


@given(st.integers(-128, 127), st.sampled_from(list(Unit)))
def test_scaler_unit_round_trip(scaler: int, unit: Unit) -> None:
    su = ScalerUnit(scaler, unit)
    data = encode_attribute(3, 3, su)
    assert decode_attribute(3, 3, axdr.decode_all(axdr.encode(data))) == su


@given(st.binary(max_size=40))
def test_random_data_into_typed_decoding_raises_only_decode_error(raw: bytes) -> None:
    try:
        value = axdr.decode_all(raw)
    except DecodeError:
        return
    for cid in REQUIRED:
        ic = get_class(cid)
        for a in ic.attributes:
            try:
                decode_attribute(cid, a.index, value)
            except DecodeError:
                pass


def test_security_setup_certificates_and_key_agreement_typed() -> None:
    # certificate_info and key_agreement_data structures (IEC 62056-6-2 §4.4.7, version 1)
    cert = axdr.Array([axdr.Structure([
        axdr.Enum(0), axdr.Enum(1), axdr.OctetString(b"\x01"), axdr.OctetString(b"CN=ca"),
        axdr.OctetString(b"CN=meter"), axdr.OctetString(b""),
    ])])
    typed = decode_attribute(64, "certificates", cert)
    assert typed[0].certificate_type == 1 and typed[0].subject == b"CN=meter"
    assert encode_attribute(64, 6, typed) == cert
    with pytest.raises(DecodeError, match="certificates"):
        decode_attribute(64, 6, axdr.Array([axdr.Structure([axdr.Enum(0)])]))
    agree = axdr.Array([axdr.Structure([axdr.Enum(0), axdr.OctetString(bytes(64))])])
    assert decode_parameter(64, "key_agreement", agree)[0].key_ciphered_data == bytes(64)
