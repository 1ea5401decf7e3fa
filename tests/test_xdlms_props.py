"""Property tests: every APDU type round-trips object -> bytes -> object; random and
mutated bytes into decode_apdu raise only DecodeError."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import axdr
from dlms14908.acse import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseServiceProviderDiagnostic,
    AcseServiceUserDiagnostic,
    ApplicationContextName,
    AssociationResult,
    MechanismName,
    ReleaseRequestReason,
    ReleaseResponseReason,
)
from dlms14908.errors import DecodeError
from dlms14908.obis import Obis
from dlms14908.xdlms import (
    ABSENT,
    CIPHERED_TAGS,
    AccessSelection,
    ActionRequestNextPblock,
    ActionRequestNormal,
    ActionRequestWithFirstPblock,
    ActionRequestWithList,
    ActionRequestWithListAndFirstPblock,
    ActionRequestWithPblock,
    ActionResponseItem,
    ActionResponseNextPblock,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResponseWithPblock,
    ActionResult,
    AttributeDescriptor,
    AttributeDescriptorWithSelection,
    BlockNumber,
    BlockNumberAccess,
    CaptureObjectDefinition,
    CipheredApdu,
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    DataAccessResult,
    DataBlockResult,
    DataNotification,
    EntryDescriptor,
    EventNotificationRequest,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    InformationReportRequest,
    InitiateRequest,
    InitiateResponse,
    MethodDescriptor,
    ParameterizedAccess,
    RangeDescriptor,
    ReadDataBlockAccess,
    ReadRequest,
    ReadResponse,
    ServiceErrorCode,
    ServiceErrorType,
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    SetRequestWithList,
    SetRequestWithListAndFirstDatablock,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseLastDatablockWithList,
    SetResponseNormal,
    SetResponseWithList,
    StateError,
    UnconfirmedWriteRequest,
    VariableName,
    WriteDataBlockAccess,
    WriteRequest,
    WriteResponse,
    apdu_to_jsonable,
    decode_apdu,
    encode_apdu,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
raw = st.binary(max_size=40)
obis = st.builds(Obis.from_bytes, st.binary(min_size=6, max_size=6))

date_times = st.builds(
    axdr.DateTime,
    st.one_of(st.none(), st.integers(1990, 2100)),
    st.one_of(st.none(), st.integers(1, 12)),
    st.one_of(st.none(), st.integers(1, 28)),
    st.one_of(st.none(), st.integers(1, 7)),
    st.one_of(st.none(), st.integers(0, 23)),
    st.one_of(st.none(), st.integers(0, 59)),
    st.one_of(st.none(), st.integers(0, 59)),
    st.one_of(st.none(), st.integers(0, 99)),
    st.one_of(st.none(), st.integers(-720, 720)),
    st.one_of(st.none(), st.integers(0, 0xFE)),
)

scalars = st.one_of(
    st.none(), st.booleans(),
    st.builds(axdr.Integer, st.integers(-128, 127)),
    st.builds(axdr.Long, st.integers(-32768, 32767)),
    st.builds(axdr.Unsigned, u8),
    st.builds(axdr.LongUnsigned, u16),
    st.builds(axdr.DoubleLong, st.integers(-2**31, 2**31 - 1)),
    st.builds(axdr.DoubleLongUnsigned, u32),
    st.builds(axdr.Long64, st.integers(-2**63, 2**63 - 1)),
    st.builds(axdr.Long64Unsigned, st.integers(0, 2**64 - 1)),
    st.builds(axdr.Enum, u8),
    st.builds(axdr.OctetString, st.binary(max_size=20)),
    st.builds(axdr.VisibleString, st.text(string.ascii_letters + string.digits, max_size=10)),
    date_times,
)
data_values = st.recursive(
    scalars,
    lambda kids: st.one_of(st.builds(axdr.Structure, st.lists(kids, max_size=4)),
                           st.builds(axdr.Array, st.lists(kids, max_size=4))),
    max_leaves=8,
)
dars = st.sampled_from(list(DataAccessResult))
acrs = st.sampled_from(list(ActionResult))
gdr = st.one_of(data_values, dars)
attrs = st.builds(AttributeDescriptor, u16, obis, u8)
methods = st.builds(MethodDescriptor, u16, obis, u8)
cods = st.builds(CaptureObjectDefinition, u16, obis, st.integers(-128, 127), u16)
access = st.one_of(
    st.none(),
    st.builds(RangeDescriptor, cods, data_values, data_values, st.lists(cods, max_size=3).map(tuple)),
    st.builds(EntryDescriptor, u32, u32, u16, u16),
    # a generic selector whose parameters never look like a range/entry descriptor
    st.builds(AccessSelection, st.integers(3, 255), data_values),
)
aws = st.builds(AttributeDescriptorWithSelection, attrs, access)
tup = lambda s: st.lists(s, max_size=4).map(tuple)  # noqa: E731
opt_data = st.one_of(st.just(ABSENT), data_values)
opt_gdr = st.one_of(st.just(ABSENT), gdr)
conformance = st.builds(Conformance, st.integers(0, 0xFFFFFF))

ln_apdus = st.one_of(
    st.builds(GetRequestNormal, u8, attrs, access),
    st.builds(GetRequestNext, u8, u32),
    st.builds(GetRequestWithList, u8, tup(aws)),
    st.builds(GetResponseNormal, u8, gdr),
    st.builds(GetResponseWithDatablock, u8, st.booleans(), u32, raw),
    st.builds(GetResponseWithDatablock, u8, st.booleans(), u32, st.just(b""), dars),
    st.builds(GetResponseWithList, u8, tup(gdr)),
    st.builds(SetRequestNormal, u8, attrs, data_values, access),
    st.builds(SetRequestWithFirstDatablock, u8, attrs, st.booleans(), u32, raw, access),
    st.builds(SetRequestWithDatablock, u8, st.booleans(), u32, raw),
    st.builds(SetRequestWithList, u8, tup(aws), tup(data_values)),
    st.builds(SetRequestWithListAndFirstDatablock, u8, tup(aws), st.booleans(), u32, raw),
    st.builds(SetResponseNormal, u8, dars),
    st.builds(SetResponseDatablock, u8, u32),
    st.builds(SetResponseLastDatablock, u8, dars, u32),
    st.builds(SetResponseLastDatablockWithList, u8, tup(dars), u32),
    st.builds(SetResponseWithList, u8, tup(dars)),
    st.builds(ActionRequestNormal, u8, methods, opt_data),
    st.builds(ActionRequestNextPblock, u8, u32),
    st.builds(ActionRequestWithList, u8, tup(methods), tup(data_values)),
    st.builds(ActionRequestWithFirstPblock, u8, methods, st.booleans(), u32, raw),
    st.builds(ActionRequestWithListAndFirstPblock, u8, tup(methods), st.booleans(), u32, raw),
    st.builds(ActionRequestWithPblock, u8, st.booleans(), u32, raw),
    st.builds(ActionResponseNormal, u8, acrs, opt_gdr),
    st.builds(ActionResponseWithPblock, u8, st.booleans(), u32, raw),
    st.builds(ActionResponseWithList, u8, tup(st.builds(ActionResponseItem, acrs, opt_gdr))),
    st.builds(ActionResponseNextPblock, u8, u32),
)

initiates = st.one_of(
    st.builds(InitiateRequest, conformance, u16, u8, st.one_of(st.none(), st.binary(max_size=32)),
              st.booleans(), st.one_of(st.none(), st.integers(-128, 127))),
    st.builds(InitiateResponse, conformance, u16, u8, u16, st.one_of(st.none(), st.integers(-128, 127))),
    st.builds(ConfirmedServiceError, st.sampled_from(list(ConfirmedServiceErrorChoice)),
              st.sampled_from(list(ServiceErrorType)), u8),
)
other_apdus = st.one_of(
    initiates,
    st.builds(DataNotification, u32, data_values, st.one_of(st.none(), date_times)),
    st.builds(EventNotificationRequest, attrs, data_values, st.one_of(st.none(), date_times)),
    st.builds(ExceptionResponse, st.sampled_from(list(StateError)),
              st.sampled_from([s for s in ServiceErrorCode
                               if s != ServiceErrorCode.INVOCATION_COUNTER_ERROR])),
    st.builds(ExceptionResponse, st.sampled_from(list(StateError)),
              st.just(ServiceErrorCode.INVOCATION_COUNTER_ERROR), u32),
)

var_access = st.one_of(
    st.builds(VariableName, u16),
    st.builds(ParameterizedAccess, u16, u8, data_values),
    st.builds(BlockNumberAccess, u16),
    st.builds(ReadDataBlockAccess, st.booleans(), u16, raw),
    st.builds(WriteDataBlockAccess, st.booleans(), u16),
)
read_results = st.one_of(data_values, dars, st.builds(DataBlockResult, st.booleans(), u16, raw),
                         st.builds(BlockNumber, u16))
sn_apdus = st.one_of(
    st.builds(ReadRequest, tup(var_access)),
    st.builds(ReadResponse, tup(read_results)),
    st.builds(WriteRequest, tup(var_access), tup(data_values)),
    st.builds(UnconfirmedWriteRequest, tup(var_access), tup(data_values)),
    st.builds(WriteResponse, tup(st.one_of(dars, st.builds(BlockNumber, u16)))),
    st.builds(InformationReportRequest, tup(var_access), tup(data_values),
              st.one_of(st.none(), date_times)),
)

service_tags = sorted(t for t in CIPHERED_TAGS if t not in (0xDB, 0xDC))
ciphered = st.one_of(
    st.builds(CipheredApdu, st.sampled_from(service_tags), u8, u32, st.binary(max_size=300)),
    st.builds(CipheredApdu, st.sampled_from([0xDB, 0xDC]), u8, u32, st.binary(max_size=300),
              st.binary(min_size=8, max_size=8)),
)

opt_bytes = st.one_of(st.none(), st.binary(max_size=20))
opt_int = st.one_of(st.none(), st.integers(-2**31, 2**31))
# user-information holds an Initiate or ConfirmedServiceError, plain or glo-/ded-/general- ciphered
initiate_ciphered = st.one_of(
    st.builds(CipheredApdu, st.sampled_from([0x21, 0x28, 0x2E, 0x41, 0x48, 0x4E]), u8, u32,
              st.binary(max_size=300)),
    st.builds(CipheredApdu, st.sampled_from([0xDB, 0xDC]), u8, u32, st.binary(max_size=300),
              st.binary(min_size=8, max_size=8)),
)
user_info = st.one_of(st.none(), initiates, initiate_ciphered)
acse = st.one_of(
    st.builds(AARQ, st.sampled_from(list(ApplicationContextName)), user_info, st.booleans(),
              st.one_of(st.none(), st.sampled_from(list(MechanismName))), opt_bytes, opt_bytes,
              opt_bytes, opt_int, opt_int, opt_bytes, opt_bytes, opt_int, opt_int,
              st.one_of(st.none(), st.just(b"\x07\x80")), opt_bytes),
    st.builds(AARE, st.sampled_from(list(ApplicationContextName)),
              st.sampled_from(list(AssociationResult)),
              st.one_of(st.sampled_from(list(AcseServiceUserDiagnostic)),
                        st.sampled_from(list(AcseServiceProviderDiagnostic))),
              user_info, st.booleans(), st.one_of(st.none(), st.sampled_from(list(MechanismName))),
              opt_bytes, opt_bytes, opt_bytes, opt_int, opt_int,
              st.one_of(st.none(), st.just(b"\x07\x80")), opt_bytes),
    st.builds(RLRQ, st.one_of(st.none(), st.sampled_from(list(ReleaseRequestReason))), user_info),
    st.builds(RLRE, st.one_of(st.none(), st.sampled_from(list(ReleaseResponseReason))), user_info),
)


def _roundtrip(apdu: Any) -> bytes:
    wire = encode_apdu(apdu)
    back = decode_apdu(wire)
    assert back == apdu
    assert type(back) is type(apdu)
    assert encode_apdu(back) == wire
    json.dumps(apdu_to_jsonable(back))
    return wire


@given(ln_apdus)
def test_ln_services_round_trip(apdu: Any) -> None:
    _roundtrip(apdu)


@given(other_apdus)
def test_notifications_initiate_round_trip(apdu: Any) -> None:
    _roundtrip(apdu)


@given(sn_apdus)
def test_sn_services_round_trip(apdu: Any) -> None:
    _roundtrip(apdu)


@given(ciphered)
def test_ciphered_containers_round_trip(apdu: Any) -> None:
    _roundtrip(apdu)


@given(acse)
def test_acse_round_trip(apdu: Any) -> None:
    _roundtrip(apdu)


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        decode_apdu(data)
    except DecodeError:
        pass


# every known tag followed by random bytes: reaches the per-service decoders
_TAGS = [0x01, 0x05, 0x06, 0x08, 0x0C, 0x0D, 0x0E, 0x0F, 0x16, 0x18, 0x60, 0x61, 0x62, 0x63,
         0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC7, 0xD8, *CIPHERED_TAGS]


@given(st.sampled_from(_TAGS), st.integers(0, 7), st.binary(max_size=48))
def test_tagged_random_bytes_raise_only_decode_error(tag: int, choice: int, rest: bytes) -> None:
    try:
        decode_apdu(bytes((tag, choice)) + rest)
    except DecodeError as exc:
        assert exc.field


@given(st.one_of(ln_apdus, sn_apdus, acse, other_apdus), st.data())
def test_mutated_encodings_raise_only_decode_error(apdu: Any, data: st.DataObject) -> None:
    wire = bytearray(encode_apdu(apdu))
    i = data.draw(st.integers(0, len(wire) - 1))
    wire[i] = data.draw(u8)
    cut = data.draw(st.integers(0, len(wire)))
    try:
        decode_apdu(bytes(wire[:cut]))
    except DecodeError:
        pass


def _public_vectors() -> list[bytes]:
    from pathlib import Path

    d = Path(__file__).resolve().parents[1] / "vectors" / "xdlms"
    out = []
    for pat in ("acse_*.json", "services_*.json", "sn_*.json"):
        for f in sorted(d.glob(pat)):
            out += [bytes.fromhex(v["hex"]) for v in json.loads(f.read_text())["vectors"]]
    return out


_PUBLIC = _public_vectors()


@given(st.sampled_from(_PUBLIC), st.lists(st.tuples(st.integers(0, 10**6), u8), min_size=1,
                                          max_size=3))
def test_whatever_decodes_re_encodes_to_the_same_meaning(vec: bytes, edits: list) -> None:
    wire = bytearray(vec)
    for where, value in edits:
        wire[where % len(wire)] = value
    try:
        apdu = decode_apdu(bytes(wire))
    except DecodeError:
        return
    again = encode_apdu(apdu)  # a decoded object never fails to encode
    assert decode_apdu(again) == apdu
