"""LN/SN service details: fast path equals the general path, field-named errors,
optional-field forms, lenient enums, selective access typing, JSON view, misuse errors."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import axdr
from dlms14908.errors import DecodeError, EncodeError, LocalProtocolError
from dlms14908.obis import Obis
from dlms14908.xdlms import (
    ABSENT,
    AccessSelection,
    ActionRequestNormal,
    AttributeDescriptor,
    CipheredApdu,
    DataAccessResult,
    DataNotification,
    EntryDescriptor,
    EventNotificationRequest,
    ExceptionResponse,
    GetRequestNormal,
    GetResponseNormal,
    InformationReportRequest,
    InvokeIdAndPriority,
    LongInvokeIdAndPriority,
    MethodDescriptor,
    RangeDescriptor,
    ServiceErrorCode,
    SetResponseNormal,
    StateError,
    VariableName,
    WriteResponse,
    apdu_to_jsonable,
    decode_apdu,
    encode_apdu,
)
from dlms14908.xdlms import ln as ln_mod

H = bytes.fromhex
CLOCK = AttributeDescriptor(8, Obis.parse("0-0:1.0.0.255"), 2)
DT = axdr.DateTime(2021, 1, 24, None, 14, 48, 57, 80, -60, 0)


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 255))
def test_get_response_fast_path_equals_general_path(v: int, iid: int) -> None:
    wire = bytes((0xC4, 1, iid, 0, 6)) + struct.pack(">I", v)
    fast = decode_apdu(wire)
    slow = ln_mod._dec_get_response_slow(wire)
    assert fast == slow == GetResponseNormal(iid, axdr.DoubleLongUnsigned(v))
    assert type(fast.result) is axdr.DoubleLongUnsigned
    assert repr(fast) == f"GetResponseNormal(invoke_id_and_priority={iid}, result={fast.result!r})"
    with pytest.raises(AttributeError):
        fast.invoke_id_and_priority = 1  # type: ignore[misc]


def test_invoke_id_and_priority_bits() -> None:
    g = decode_apdu(H("C001C1000100002B0100FF0200"))
    assert (g.invoke_id, g.confirmed, g.high_priority) == (1, True, True)
    assert InvokeIdAndPriority.make(1) == 0xC1
    assert InvokeIdAndPriority.make(5, confirmed=False, high_priority=False) == 0x05
    with pytest.raises(EncodeError):
        InvokeIdAndPriority.make(16)


@pytest.mark.parametrize("hexstr,field", [
    ("C4", "get_response.choice"),
    ("C401C100", "result.data"),
    ("C401C1000600", "result.data"),
    ("C401C100060000139100", "get_response_normal"),
    ("C409C10101", "get_response.choice"),
    ("C401C102", "result"),
    ("C402C10000000001000504", "raw_data"),
    ("C001C1000800000100", "attribute"),
    ("C001C1000800000100 00FF0202".replace(" ", ""), "access_selection"),
    ("C003C105", "attributes"),
    ("C101C1000800000100 00FF0200".replace(" ", ""), "value"),
    ("C301C1000F0000280000FF0102", "parameters"),
    ("C701C10002", "single_response.return_parameters"),
    ("0F00000001", "date_time"),
    ("0F0000000105AABBCCDDEE00", "date_time"),
    ("D80106", "invocation_counter"),
    ("050109", "variables[0]"),
    ("0C0105", "results[0]"),
    ("FE", "tag"),
    ("", "tag"),
])
def test_malformed_names_the_field(hexstr: str, field: str) -> None:
    with pytest.raises(DecodeError) as ei:
        decode_apdu(H(hexstr))
    assert ei.value.field is not None and ei.value.field.startswith(field), ei.value


def test_event_notification_time_both_forms() -> None:
    body = CLOCK.to_bytes() + axdr.encode(axdr.Unsigned(7))
    ours = encode_apdu(EventNotificationRequest(CLOCK, axdr.Unsigned(7), DT))
    assert ours == b"\xC2\x01\x0C" + DT.to_bytes() + body  # length-prefixed form
    fixed = b"\xC2\x01" + DT.to_bytes() + body               # fixed-size A-XDR form
    assert decode_apdu(fixed) == decode_apdu(ours) == EventNotificationRequest(
        CLOCK, axdr.Unsigned(7), DT)
    assert decode_apdu(b"\xC2\x00" + body).time is None


def test_data_notification_with_date_time_and_long_invoke_id() -> None:
    liid = LongInvokeIdAndPriority.make(0x1DB, self_descriptive=True, high_priority=True)
    dn = DataNotification(liid, axdr.Structure([axdr.DoubleLongUnsigned(1)]), DT)
    wire = encode_apdu(dn)
    assert wire[:6] == b"\x0F" + struct.pack(">I", 0x900001DB) + b"\x0C"
    back = decode_apdu(wire)
    assert back == dn and back.invoke_id == 0x1DB and back.self_descriptive
    assert back.high_priority and not back.confirmed and not back.break_on_error


def test_exception_response_forms() -> None:
    assert decode_apdu(H("D80102")) == ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                                         ServiceErrorCode.SERVICE_NOT_SUPPORTED)
    ic = decode_apdu(H("D8010600000457"))
    assert ic.service_error is ServiceErrorCode.INVOCATION_COUNTER_ERROR
    assert ic.invocation_counter == 0x457
    with pytest.raises(EncodeError):
        encode_apdu(ExceptionResponse(StateError.SERVICE_UNKNOWN,
                                      ServiceErrorCode.INVOCATION_COUNTER_ERROR))


def test_unknown_result_codes_survive_as_pseudo_members() -> None:
    r = decode_apdu(H("C501C14D"))
    assert isinstance(r, SetResponseNormal)
    assert isinstance(r.result, DataAccessResult) and int(r.result) == 77
    assert r.result.name == "unknown-77"
    assert encode_apdu(r) == H("C501C14D")


def test_entry_descriptor_layout() -> None:
    # IEC 62056-6-2 entry_descriptor: structure {from_entry dlu, to_entry dlu,
    # from_selected_value lu, to_selected_value lu}; selector 2
    g = GetRequestNormal(0xC1, AttributeDescriptor(7, Obis.parse("1-0:99.1.0.255"), 2),
                         EntryDescriptor(1, 5, 1, 0))
    wire = encode_apdu(g)
    assert wire == H("C001C100070100630100FF02" "01" "02" "0204" "0600000001" "0600000005"
                     "120001" "120000")
    assert decode_apdu(wire) == g


def test_nonstandard_selector_parameters_stay_generic() -> None:
    params = axdr.Structure([axdr.Unsigned(1)])
    g = GetRequestNormal(0xC1, CLOCK, AccessSelection(1, params))
    back = decode_apdu(encode_apdu(g))
    assert isinstance(back.access_selection, AccessSelection)
    assert back == g
    rd = decode_apdu(H("C001C100070100630100FF0201010204020412000809060000010000FF0F02120000"
                       "090C07E20601FF000300FFFF8880090C07E50106FF000300FFFFC4000100"))
    assert isinstance(rd.access_selection, RangeDescriptor)
    assert rd.access_selection.parameters[1] == axdr.OctetString(H("07E20601FF000300FFFF8880"))


def test_action_parameters_absent_vs_null_data() -> None:
    m = MethodDescriptor(15, Obis.parse("0-0:40.0.0.255"), 1)
    absent = encode_apdu(ActionRequestNormal(0xC1, m))
    null = encode_apdu(ActionRequestNormal(0xC1, m, None))
    assert absent == H("C301C1000F0000280000FF0100")
    assert null == H("C301C1000F0000280000FF010100")
    assert decode_apdu(absent).parameters is ABSENT
    assert decode_apdu(null).parameters is None


def test_sn_information_report_and_write_response() -> None:
    ir = InformationReportRequest((VariableName(0xFA00),), (axdr.Unsigned(3),), DT)
    wire = encode_apdu(ir)
    assert wire[:2] == b"\x18\x0C" and wire[14:] == H("0102FA00011103")
    assert decode_apdu(wire) == ir
    wr = decode_apdu(H("0D0300010C0200FF"))
    assert isinstance(wr, WriteResponse)
    assert wr.results[0] is DataAccessResult.SUCCESS
    assert wr.results[1] is DataAccessResult.TYPE_UNMATCHED
    assert wr.results[2].block_number == 0xFF


def test_json_view() -> None:
    js = apdu_to_jsonable(decode_apdu(H("C401C1000600001391")))
    assert js == {"apdu": "get-response-normal", "invoke_id_and_priority": 193,
                  "result": {"type": "double-long-unsigned", "value": 5009}}
    err = apdu_to_jsonable(decode_apdu(H("C401C10101")))
    assert err["result"] == {"value": 1, "name": "hardware-fault"}
    g = apdu_to_jsonable(decode_apdu(H("C001C1000100002B0100FF0200")))
    assert g["attribute"] == {"type": "AttributeDescriptor", "class_id": 1,
                              "instance_id": "0-0:43.1.0.255", "attribute_id": 2}
    c = apdu_to_jsonable(decode_apdu(H("C81220012345674113" "12FF935A47566827C467BC")))
    assert c["apdu"] == "glo-get-request" and c["security_control"] == 0x20
    json.dumps(c)


def test_misuse_raises_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        decode_apdu("C401")  # type: ignore[arg-type]
    with pytest.raises(EncodeError) as ei:
        encode_apdu(GetResponseNormal(256, axdr.Unsigned(1)))
    assert ei.value.field == "invoke_id_and_priority"
    with pytest.raises(EncodeError):
        encode_apdu(GetResponseNormal(1, 5))  # plain int is ambiguous Data
    with pytest.raises(EncodeError) as ei:
        encode_apdu(CipheredApdu(0xC0, 0x30, 1, b""))
    assert ei.value.field == "tag"
    with pytest.raises(EncodeError):
        encode_apdu(CipheredApdu(0xDB, 0x30, 1, b""))  # general-* needs a system title
    with pytest.raises(EncodeError):
        encode_apdu("C4")  # type: ignore[arg-type]


def test_buffer_types_accepted() -> None:
    raw = H("C401C1000600001391")
    assert decode_apdu(bytearray(raw)) == decode_apdu(memoryview(raw)) == decode_apdu(raw)


def test_general_glo_ciphering_container() -> None:
    st_ = H("4D4D4D0000BC614E")
    c = CipheredApdu(0xDB, 0x30, 0x01234567, b"\xAA" * 20, st_)
    wire = encode_apdu(c)
    assert wire == b"\xDB\x08" + st_ + b"\x19\x30\x01\x23\x45\x67" + b"\xAA" * 20
    back = decode_apdu(wire)
    assert back == c and back.is_general and not back.is_dedicated
    assert back.security_header == H("3001234567")
    with pytest.raises(DecodeError) as ei:
        decode_apdu(b"\xDB\x08" + st_ + b"\x03\x30\x01\x23")
    assert ei.value.field.startswith("ciphered_content")
