"""ACSE (AARQ/AARE/RLRQ/RLRE) and xDLMS-Initiate: construction from typed fields
reproduces the public Green Book vectors byte-exact; BER details; errors name fields;
secrets stay out of reprs and JSON."""

from __future__ import annotations

import json

import pytest

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
)
from dlms14908.errors import DecodeError, EncodeError
from dlms14908.xdlms import (
    CipheredApdu,
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    InitiateRequest,
    InitiateResponse,
    ServiceErrorType,
    apdu_to_jsonable,
    decode_apdu,
    encode_apdu,
)

H = bytes.fromhex
CONF_V5 = Conformance(0x007E1F)
IR_NOKEY = InitiateRequest(CONF_V5, 1200)


def test_conformance_bits_follow_green_book_numbering() -> None:
    # V5 meaning: priority-mgmt (9), attr0-get (10), block get/set/action (11-13),
    # multiple-refs (14), get (19), set (20), selective-access (21), event-notif (22), action (23)
    assert CONF_V5.bit_numbers() == [9, 10, 11, 12, 13, 14, 19, 20, 21, 22, 23]
    assert Conformance.from_bit(19) is Conformance.GET
    assert Conformance.from_bit(3) is Conformance.READ
    assert Conformance.from_bit(15) is Conformance.INFORMATION_REPORT
    assert Conformance.from_bit(18) is Conformance.PARAMETERIZED_ACCESS
    assert int(Conformance.READ) == 0x100000  # the wire integer, not a bit-reversed one
    assert len(list(Conformance)) == 24


def test_a1_built_from_fields() -> None:
    assert encode_apdu(AARQ(ApplicationContextName.LOGICAL_NAME, IR_NOKEY)) == H(
        "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")


def test_a2_lls_built_from_fields() -> None:
    aarq = AARQ(ApplicationContextName.LOGICAL_NAME, IR_NOKEY, sender_acse_requirements=True,
                mechanism_name=MechanismName.LOW, calling_authentication_value=b"12345678")
    assert encode_apdu(aarq) == H(
        "6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
        "BE10040E01000000065F1F0400007E1F04B0")


def test_b4_hls_aare_built_from_fields() -> None:
    aare = AARE(ApplicationContextName.LOGICAL_NAME, AssociationResult.ACCEPTED,
                AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED,
                InitiateResponse(Conformance(0x00501F), 500),
                responder_acse_requirements=True, mechanism_name=MechanismName.HIGH_GMAC,
                responding_authentication_value=b"P6wRJ21F")
    # outer authentication-value length is 0x0A (gurux writes 0x08 here: anchors defect 7)
    assert encode_apdu(aare) == H(
        "6142A109060760857405080101A203020100A305A10302010E88020780890760857405080205"
        "AA0A8008503677524A323146BE10040E0800065F1F040000501F01F40007")


def test_b3_confirmed_service_error() -> None:
    aare = decode_apdu(H("611FA109060760857405080101A203020101A305A103020101BE0604040E010601"))
    assert isinstance(aare, AARE) and not aare.accepted
    cse = aare.user_information
    assert cse == ConfirmedServiceError(ConfirmedServiceErrorChoice.INITIATE_ERROR,
                                        ServiceErrorType.INITIATE, 1)
    assert cse.value_name == "dlms-version-too-low"


def test_a4_ciphered_user_information_is_an_opaque_container() -> None:
    aarq = decode_apdu(H(
        "6066A109060760857405080103A60A04084D4D4D0000BC614E8A0207808B0760857405080201"
        "AC0A80083132333435363738BE34043221303001234567801302FF8A7874133D414CED25B42534D28DB"
        "0047720606B175BD52211BE6841DB204D39EE6FDB8E356855"))
    assert isinstance(aarq, AARQ) and aarq.ciphered
    ui = aarq.user_information
    assert isinstance(ui, CipheredApdu)
    assert (ui.tag, ui.security_control, ui.invocation_counter) == (0x21, 0x30, 0x01234567)
    assert ui.NAME == "glo-initiate-request" and not ui.is_general
    assert len(ui.ciphertext) == 31 + 12


def test_provider_diagnostic_and_optional_components() -> None:
    aare = AARE(result=AssociationResult.REJECTED_TRANSIENT,
                diagnostic=AcseServiceProviderDiagnostic.NO_COMMON_ACSE_VERSION,
                responding_ap_title=b"\x4D\x4D\x4D\x00\x00\xBC\x61\x4E",
                responding_ae_qualifier=b"cert", responding_ap_invocation_id=-1,
                responding_ae_invocation_id=300, protocol_version=b"\x07\x80",
                implementation_information=b"impl")
    wire = encode_apdu(aare)
    assert H("A305A203020102") in wire          # acse-service-provider [2]
    assert H("A40A04084D4D4D0000BC614E") in wire  # AP-title-form2 octet string
    assert H("A506040463657274") in wire          # AE qualifier as octet string
    assert H("A6030201FF") in wire                # INTEGER -1
    assert H("A70402020 12C".replace(" ", "")) in wire  # INTEGER 300
    assert wire.startswith(H("61")) and H("80020780") in wire and H("9D04696D706C") in wire
    assert decode_apdu(wire) == aare


def test_long_form_ber_lengths() -> None:
    big = bytes(range(200))
    aarq = AARQ(calling_ae_qualifier=big, user_information=IR_NOKEY)
    wire = encode_apdu(aarq)
    assert wire[:2] == b"\x60\x81"
    assert H("A781CB0481C8") in wire
    assert decode_apdu(wire) == aarq


def test_unknown_mechanism_and_context_arcs_survive() -> None:
    wire = H("601DA109060760857405080109BE10040E01000000065F1F0400007E1F04B0")
    aarq = decode_apdu(wire)
    assert int(aarq.application_context_name) == 9
    assert aarq.application_context_name.name == "unknown-9"
    assert encode_apdu(aarq) == wire


@pytest.mark.parametrize("hexstr,field", [
    # application context name with a foreign OID
    ("600BA109060760857405090101", "application_context_name"),
    # missing application-context-name
    ("6006BE040402FFFF", "user_information"),
    ("6000", "application_context_name"),
    # duplicate mechanism name
    ("60168B07608574050802018B0760857405080201A1020600", "mechanism_name"),
    # user-information holding garbage
    ("6008BE060404C0FFEE00", "user_information"),
    # AARE without result
    ("610BA109060760857405080101", "result"),
    # length running past the end
    ("601DA109", "aarq"),
    # RLRQ with an unexpected component
    ("62038101 00".replace(" ", ""), "rlrq"),
])
def test_bad_acse_names_the_field(hexstr: str, field: str) -> None:
    with pytest.raises(DecodeError) as ei:
        decode_apdu(H(hexstr))
    assert ei.value.field is not None and ei.value.field.startswith(field), ei.value


def test_nested_acse_in_user_information_is_rejected() -> None:
    inner = H("6203800100")
    wire = H("6209BE07") + bytes((0x04, len(inner))) + inner
    with pytest.raises(DecodeError) as ei:
        decode_apdu(wire)
    assert ei.value.field == "user_information"


def test_secrets_stay_out_of_repr_and_json() -> None:
    aarq = AARQ(IR_NOKEY and ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING,
                InitiateRequest(CONF_V5, 1200, dedicated_key=b"\x00\x11" * 8),
                sender_acse_requirements=True, mechanism_name=MechanismName.LOW,
                calling_authentication_value=b"secretpw")
    text = repr(aarq)
    assert "secretpw" not in text and "0011" not in text and "\\x00\\x11" not in text
    js = json.dumps(apdu_to_jsonable(aarq))
    assert "secretpw" not in js and "736563726574" not in js.lower()
    assert "00110011" not in js
    tree = apdu_to_jsonable(aarq)
    assert tree["calling_authentication_value"] == "<redacted>"
    assert tree["user_information"]["dedicated_key"] == "<redacted>"
    assert tree["mechanism_name"] == {"value": 1, "name": "low"}


def test_initiate_request_explicit_response_allowed_and_qos() -> None:
    # response-allowed encoded explicitly FALSE, proposed QoS present
    wire = H("0100010001050 65F1F0400007E1F0400".replace(" ", ""))
    ir = decode_apdu(wire)
    assert isinstance(ir, InitiateRequest)
    assert ir.response_allowed is False and ir.proposed_quality_of_service == 5
    assert ir.client_max_receive_pdu_size == 1024 and ir.dedicated_key is None
    assert encode_apdu(ir) == wire


def test_rlrq_without_reason_and_release_reasons() -> None:
    assert encode_apdu(RLRQ(None)) == H("6200")
    assert decode_apdu(H("6200")) == RLRQ(None)
    assert decode_apdu(H("620380011E")).reason is ReleaseRequestReason.USER_DEFINED
    assert encode_apdu(RLRE()) == H("6303800100")


def test_encode_errors_name_the_field() -> None:
    with pytest.raises(EncodeError) as ei:
        encode_apdu(AARQ(calling_ap_title="not bytes"))  # type: ignore[arg-type]
    assert ei.value.field == "calling_ap_title"
    with pytest.raises(EncodeError) as ei:
        encode_apdu(InitiateRequest(CONF_V5, 70000))
    assert ei.value.field == "client_max_receive_pdu_size"
    with pytest.raises(EncodeError):
        encode_apdu(AARQ(user_information=b"\x01"))  # type: ignore[arg-type]


def test_conformance_bit_out_of_range_is_encode_error() -> None:
    from dlms14908.errors import EncodeError

    for n in (-1, 24):
        with pytest.raises(EncodeError, match="conformance"):
            Conformance.from_bit(n)


def test_gurux_short_authentication_value_length_is_tolerated() -> None:
    # gurux-dlms writes the responding-authentication-value as AA 08 80 08 <8 octets>
    # (outer length 8 instead of 10, dlms-anchors.md §5 #7); a meter built on it must
    # still associate.  Ours decodes it as the Green Book AARE B4 and re-encodes it right.
    b4 = bytes.fromhex(
        "6142A109060760857405080101A203020100A305A10302010E88020780890760857405080205"
        "AA0A8008503677524A323146BE10040E0800065F1F040000501F01F40007"
    )
    quirk = bytearray(b4.replace(bytes.fromhex("AA0A8008"), bytes.fromhex("AA088008")))
    good = decode_apdu(b4)
    assert decode_apdu(bytes(quirk)) == good
    assert encode_apdu(decode_apdu(bytes(quirk))) == b4
    assert good.responding_authentication_value == b"P6wRJ21F"
    # bytes written by gurux-dlms 1.0.203 _GXAPDU.generateAARE (HLS-GMAC, StoC "P6wRJ21F")
    from_gurux = decode_apdu(bytes.fromhex(
        "6142A109060760857405080101A203020100A305A10302010E88020780890760857405080205"
        "AA088008503677524A323146BE10040E0800065F1F0400000000FFFF0007"
    ))
    assert from_gurux.responding_authentication_value == b"P6wRJ21F"
    assert from_gurux.mechanism_name == 5 and from_gurux.diagnostic == 14
    # a length that fits neither form stays an error naming the field
    broken = bytearray(quirk)
    broken[broken.index(0xAA) + 1] = 0x07
    with pytest.raises(DecodeError, match="responding_authentication_value"):
        decode_apdu(bytes(broken))


def test_user_information_holds_only_initiate_or_service_error() -> None:
    """A GET-Request (plain or glo-ciphered) in user-information is rejected by name, as found by
    the mutation differential test (gurux reads such an RLRQ as having no user-information)."""
    from dlms14908.xdlms import decode_apdu

    for inner in (bytes.fromhex("C8 05 30 00000001 AA".replace(" ", "")), bytes.fromhex("C001C100030100010800FF0200")):
        body = bytes((0x04, len(inner))) + inner
        raw = bytes((0x62, 2 + len(body), 0xBE, len(body))) + body
        with pytest.raises(DecodeError) as e:
            decode_apdu(raw)
        assert (e.value.field or "").startswith("user_information")
