"""dlms-cosem (BSL-1.1) oracle worker: runs ONLY inside the oracle venv, as its own process.

Speaks JSON lines (see ``shared_worker.py``).  Ops:

- ``decode_data {hex}``    A-XDR Data -> norm with ``dlms_cosem.dlms_data.DlmsDataParser``;
- ``encode_data {value}``  norm -> hex with the ``dlms_cosem.dlms_data`` classes' ``to_bytes``;
- ``decode_apdu {hex}``    APDU -> norm with ``XDlmsApduFactory.apdu_from_bytes`` (attrs classes);
- ``encode_apdu {apdu}``   norm -> hex with the attrs APDU classes, where they can encode.

Never imported by the project; never imports the project.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dlms_cosem import cosem, dlms_data, enumerations
from dlms_cosem.connection import XDlmsApduFactory
from dlms_cosem.protocol import acse, xdlms
from dlms_cosem.protocol.xdlms.invoke_id_and_priority import InvokeIdAndPriority
from shared_worker import INT_TYPES, NAME_TAGS, TAG_NAMES, Unsupported, norm, serve

# ----------------------------------------------------------------------------- data decode


_ORIG_DECODE_DATA = dlms_data.DlmsDataParser.decode_data


def _decode_data_keeping_raw(self, data_class):  # type: ignore[no-untyped-def]
    """DlmsDataParser.decode_data, also remembering the octets each scalar came from.

    Installed on the class so every parser dlms-cosem creates internally (e.g. inside
    GetResponseWithList) keeps them too; the decoded values are untouched."""
    start = self.pointer
    obj = _ORIG_DECODE_DATA(self, data_class)
    if self.pointer > len(self.buffer):
        raise ValueError("dlms-cosem read past the end of the buffer")
    obj._raw = bytes(self.buffer[start : self.pointer])
    return obj


dlms_data.DlmsDataParser.decode_data = _decode_data_keeping_raw


def _strip_len(raw: bytes, fixed: int | None) -> bytes:
    if fixed is not None:
        return raw[-fixed:]
    first = raw[0]
    n = 1 + (first & 0x7F if first & 0x80 else 0)
    return raw[n:]


def _norm_obj(obj: Any) -> dict[str, Any]:
    name = TAG_NAMES.get(obj.TAG)
    if name is None:
        raise ValueError(f"unknown class {type(obj).__name__}")
    if name in ("array", "structure"):
        return norm(name, [_norm_obj(x) for x in obj.value])
    v = obj.value
    if name == "null-data":
        return norm(name, None)
    if name == "boolean":
        return norm(name, bool(v))
    if name in INT_TYPES:
        return norm(name, int(v))
    if name == "octet-string":
        return norm(name, bytes(v).hex().upper())
    if name == "visible-string":
        return norm(name, str(v))
    if name in ("date-time", "date", "time"):
        # dlms-cosem parsed it into (datetime/date/time, status); the raw octets it consumed
        # are compared, the parse itself must have succeeded.
        fixed = {"date-time": 12, "date": 5, "time": 4}[name]
        return norm(name, _strip_len(obj._raw, fixed).hex().upper())
    raise Unsupported(f"dlms-cosem decoded {name} into {type(v).__name__}")


def _parse_one(data: bytes) -> dict[str, Any]:
    if not data:
        raise ValueError("empty")
    tag = data[0]
    klass = dlms_data.DlmsDataFactory.MAP.get(tag)
    if klass is None:
        raise ValueError(f"dlms-cosem does not know tag {tag}")
    parser = dlms_data.DlmsDataParser()
    try:
        parsed = parser.parse(bytes(data), limit=1)
    except NotImplementedError as exc:
        raise Unsupported(f"dlms-cosem cannot decode: {exc}") from exc
    if len(parsed) != 1 or parser.pointer != len(data):
        raise ValueError(f"dlms-cosem consumed {parser.pointer} of {len(data)} octets")
    return _norm_obj(parsed[0])


def decode_data(req: dict[str, Any]) -> Any:
    return _parse_one(bytes.fromhex(req["hex"]))


# ----------------------------------------------------------------------------- data encode


def _build(n: dict[str, Any]) -> Any:
    t = n["type"]
    v = n.get("value")
    klass = dlms_data.DlmsDataFactory.MAP.get(NAME_TAGS[t])
    if t in ("array", "structure"):
        return klass(value=[_build(x) for x in v])
    if t in INT_TYPES or t in ("boolean", "visible-string", "utf8-string", "bit-string"):
        return klass(value=v)
    if t == "octet-string":
        return klass(value=bytes.fromhex(v))
    if t == "null-data":
        return klass(value=None)
    raise Unsupported(f"no dlms-cosem encoder mapping for {t}")


def encode_data(req: dict[str, Any]) -> Any:
    obj = _build(req["value"])
    try:
        return obj.to_bytes().hex().upper()
    except NotImplementedError as exc:
        raise Unsupported(f"dlms-cosem cannot encode: {exc}") from exc


# ----------------------------------------------------------------------------- APDU decode


def _iip(x: InvokeIdAndPriority) -> int:
    return x.to_bytes()[0]


def _descriptor(a: Any, member: str) -> dict[str, Any]:
    return {
        "class_id": int(a.interface),
        "instance_id": a.instance.to_bytes().hex().upper(),
        member: int(a.attribute if member == "attribute_id" else a.method),
    }


def _access(sel: Any) -> dict[str, Any] | None:
    if sel is None:
        return None
    # dlms-cosem models selective access (range only) as a RangeDescriptor object; its
    # own to_bytes() gives back selector + parameters.
    raw = sel.to_bytes()
    return {"selector": raw[0], "parameters": _parse_one(raw[1:])}


def _conformance(c: Any) -> int:
    return int.from_bytes(c.to_bytes()[1:], "big")


def _user_info(ui: Any) -> dict[str, Any] | None:
    if ui is None:
        return None
    c = ui.content
    if isinstance(c, xdlms.InitiateRequest):
        return {
            "initiate-request": {
                "dedicated_key": c.dedicated_key.hex().upper() if c.dedicated_key else None,
                "response_allowed": bool(c.response_allowed),
                "proposed_quality_of_service": c.proposed_quality_of_service,
                "proposed_dlms_version_number": c.proposed_dlms_version_number,
                "proposed_conformance": _conformance(c.proposed_conformance),
                "client_max_receive_pdu_size": c.client_max_receive_pdu_size,
            }
        }
    if isinstance(c, xdlms.InitiateResponse):
        return {
            "initiate-response": {
                "negotiated_quality_of_service": c.negotiated_quality_of_service,
                "negotiated_dlms_version_number": c.negotiated_dlms_version_number,
                "negotiated_conformance": _conformance(c.negotiated_conformance),
                "server_max_receive_pdu_size": c.server_max_receive_pdu_size,
                "vaa_name": 7,  # dlms-cosem checks and drops the fixed LN VAA name (0x0007)
            }
        }
    if isinstance(c, (xdlms.GlobalCipherInitiateRequest, xdlms.GlobalCipherInitiateResponse)):
        raw = c.to_bytes()
        n = 1 + (raw[1] & 0x7F if raw[1] & 0x80 else 0)
        return {"ciphered": {"tag": raw[0], "body": raw[1 + n :].hex().upper()}}
    if isinstance(c, xdlms.ConfirmedServiceError):
        raw = c.to_bytes()
        return {
            "confirmed-service-error": {"service": raw[1], "error_type": raw[2], "error": raw[3]}
        }
    raise Unsupported(f"user-information {type(c).__name__}")


def _mech(a: Any) -> int | None:
    return int(a) if a is not None else None


def _hex(b: bytes | None) -> str | None:
    return bytes(b).hex().upper() if b is not None else None


def _apdu_norm(obj: Any) -> dict[str, Any]:
    if isinstance(obj, xdlms.GetRequestNormal):
        return {
            "apdu": "get-request-normal",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "descriptor": _descriptor(obj.cosem_attribute, "attribute_id"),
            "access_selection": _access(obj.access_selection),
        }
    if isinstance(obj, xdlms.GetRequestNext):
        return {
            "apdu": "get-request-next",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "block_number": obj.block_number,
        }
    if isinstance(obj, xdlms.GetRequestWithList):
        return {
            "apdu": "get-request-with-list",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "items": [
                {
                    "descriptor": _descriptor(i.attribute, "attribute_id"),
                    "access_selection": _access(i.access_selection),
                }
                for i in obj.cosem_attributes_with_selection
            ],
        }
    if isinstance(obj, xdlms.GetResponseNormal):
        return {
            "apdu": "get-response-normal",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "result": {"data": _parse_one(obj.data)},
        }
    if isinstance(obj, xdlms.GetResponseNormalWithError):
        return {
            "apdu": "get-response-normal",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "result": {"error": int(obj.error)},
        }
    if isinstance(obj, xdlms.GetResponseWithList):
        results = []
        for r in obj.response_data:
            if isinstance(r, enumerations.DataAccessResult):
                results.append({"error": int(r)})
            else:
                results.append({"data": _norm_obj(r)})
        return {
            "apdu": "get-response-with-list",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "results": results,
        }
    for klass, last in ((xdlms.GetResponseWithBlock, False), (xdlms.GetResponseLastBlock, True)):
        if isinstance(obj, klass):
            return {
                "apdu": "get-response-with-datablock",
                "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
                "last_block": last,
                "block_number": obj.block_number,
                "result": {"raw_data": bytes(obj.data).hex().upper()},
            }
    if isinstance(obj, xdlms.GetResponseLastBlockWithError):
        return {
            "apdu": "get-response-with-datablock",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "last_block": True,
            "block_number": obj.block_number,
            "result": {"error": int(obj.error)},
        }
    if isinstance(obj, xdlms.SetRequestNormal):
        return {
            "apdu": "set-request-normal",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "descriptor": _descriptor(obj.cosem_attribute, "attribute_id"),
            "access_selection": _access(obj.access_selection),
            "value": _parse_one(obj.data),
        }
    if isinstance(obj, xdlms.SetResponseNormal):
        return {
            "apdu": "set-response-normal",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "result": int(obj.result),
        }
    if isinstance(obj, xdlms.ActionRequestNormal):
        return {
            "apdu": "action-request-normal",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "descriptor": _descriptor(obj.cosem_method, "method_id"),
            "parameters": _parse_one(obj.data) if obj.data is not None else None,
        }
    if isinstance(obj, xdlms.ActionResponseNormal):
        return {
            "apdu": "action-response-normal",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "result": int(obj.status),
            "return": None,
        }
    if isinstance(obj, xdlms.ActionResponseNormalWithData):
        return {
            "apdu": "action-response-normal",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "result": int(obj.status),
            "return": {"data": _parse_one(obj.data)},
        }
    if isinstance(obj, xdlms.ActionResponseNormalWithError):
        return {
            "apdu": "action-response-normal",
            "invoke_id_and_priority": _iip(obj.invoke_id_and_priority),
            "result": int(obj.status),
            "return": {"error": int(obj.error)},
        }
    if isinstance(obj, xdlms.DataNotification):
        return {
            "apdu": "data-notification",
            "long_invoke_id_and_priority": int.from_bytes(
                obj.long_invoke_id_and_priority.to_bytes(), "big"
            ),
            # dlms-cosem turns the date-time into a datetime.datetime (status and
            # "not specified" fields are gone): only its presence is reported
            "date_time": None if obj.date_time is None else "present",
            "body": _parse_one(obj.body),
        }
    if isinstance(obj, xdlms.ExceptionResponse):
        return {
            "apdu": "exception-response",
            "state_error": int(obj.state_error),
            "service_error": int(obj.service_error),
        }
    if isinstance(obj, acse.ApplicationAssociationRequest):
        return {
            "apdu": "aarq",
            "application_context_name": 3 if obj.ciphered else 1,
            "ap_title": _hex(obj.system_title),
            "mechanism_name": _mech(obj.authentication),
            "authentication_value": _hex(obj.authentication_value),
            "user_information": _user_info(obj.user_information),
        }
    if isinstance(obj, acse.ApplicationAssociationResponse):
        diag = obj.result_source_diagnostics
        which = (
            "acse-service-user"
            if isinstance(diag, enumerations.AcseServiceUserDiagnostics)
            else "acse-service-provider"
        )
        return {
            "apdu": "aare",
            "application_context_name": 3 if obj.ciphered else 1,
            "ap_title": _hex(obj.system_title),
            "mechanism_name": _mech(obj.authentication),
            "authentication_value": _hex(obj.authentication_value),
            "result": int(obj.result),
            "result_source_diagnostic": {which: int(diag)},
            "user_information": _user_info(obj.user_information),
        }
    if isinstance(obj, acse.ReleaseRequest):
        return {
            "apdu": "rlrq",
            "reason": int(obj.reason) if obj.reason is not None else None,
            "user_information": _user_info(obj.user_information),
        }
    if isinstance(obj, acse.ReleaseResponse):
        return {
            "apdu": "rlre",
            "reason": int(obj.reason) if obj.reason is not None else None,
            "user_information": _user_info(obj.user_information),
        }
    raise Unsupported(f"dlms-cosem class {type(obj).__name__} not mapped")


def decode_apdu(req: dict[str, Any]) -> Any:
    data = bytes.fromhex(req["hex"])
    try:
        obj = XDlmsApduFactory.apdu_from_bytes(data)
    except (NotImplementedError, KeyError) as exc:
        raise Unsupported(f"dlms-cosem: {exc}") from exc
    return _apdu_norm(obj)


# ----------------------------------------------------------------------------- APDU encode


def _mk_iip(b: int) -> InvokeIdAndPriority:
    return InvokeIdAndPriority(
        invoke_id=b & 0x0F, confirmed=bool(b & 0x40), high_priority=bool(b & 0x80)
    )


def _mk_attr(d: dict[str, Any]) -> Any:
    return cosem.CosemAttribute(
        interface=enumerations.CosemInterface(d["class_id"]),
        instance=cosem.Obis.from_bytes(bytes.fromhex(d["instance_id"])),
        attribute=d["attribute_id"],
    )


def _mk_data(n: dict[str, Any]) -> bytes:
    return bytes.fromhex(encode_data({"value": n}))


def encode_apdu(req: dict[str, Any]) -> Any:
    a = req["apdu"]
    kind = a["apdu"]
    if "invoke_id_and_priority" in a:
        if a["invoke_id_and_priority"] & 0x30:
            raise Unsupported("dlms-cosem InvokeIdAndPriority has no reserved bits 4-5")
        iip = _mk_iip(a["invoke_id_and_priority"])
    if kind == "get-request-normal":
        if a["access_selection"] is not None:
            raise Unsupported("access selection not mapped for encode")
        obj: Any = xdlms.GetRequestNormal(
            cosem_attribute=_mk_attr(a["descriptor"]), invoke_id_and_priority=iip
        )
    elif kind == "get-request-next":
        obj = xdlms.GetRequestNext(block_number=a["block_number"], invoke_id_and_priority=iip)
    elif kind == "get-request-with-list":
        if any(i["access_selection"] is not None for i in a["items"]):
            raise Unsupported("access selection not mapped for encode")
        from dlms_cosem.cosem.attribute_with_selection import CosemAttributeWithSelection

        obj = xdlms.GetRequestWithList(
            cosem_attributes_with_selection=[
                CosemAttributeWithSelection(
                    attribute=_mk_attr(i["descriptor"]), access_selection=None
                )
                for i in a["items"]
            ],
            invoke_id_and_priority=iip,
        )
    elif kind == "get-response-normal":
        r = a["result"]
        if "data" in r:
            # dlms-anchors §5 #2: GetResponseNormal.to_bytes() raises TypeError in 25.1.0
            obj = xdlms.GetResponseNormal(data=_mk_data(r["data"]), invoke_id_and_priority=iip)
        else:
            obj = xdlms.GetResponseNormalWithError(
                error=enumerations.DataAccessResult(r["error"]), invoke_id_and_priority=iip
            )
    elif kind == "set-request-normal":
        if a["access_selection"] is not None:
            raise Unsupported("dlms-cosem: no selective access on SET")
        obj = xdlms.SetRequestNormal(
            cosem_attribute=_mk_attr(a["descriptor"]),
            data=_mk_data(a["value"]),
            invoke_id_and_priority=iip,
        )
    elif kind == "set-response-normal":
        obj = xdlms.SetResponseNormal(
            result=enumerations.DataAccessResult(a["result"]), invoke_id_and_priority=iip
        )
    elif kind == "action-request-normal":
        d = a["descriptor"]
        meth = cosem.CosemMethod(
            interface=enumerations.CosemInterface(d["class_id"]),
            instance=cosem.Obis.from_bytes(bytes.fromhex(d["instance_id"])),
            method=d["method_id"],
        )
        params = a["parameters"]
        obj = xdlms.ActionRequestNormal(
            cosem_method=meth, data=_mk_data(params) if params else None, invoke_id_and_priority=iip
        )
    elif kind == "action-response-normal":
        ret = a["return"]
        status = enumerations.ActionResultStatus(a["result"])
        if ret is None:
            obj = xdlms.ActionResponseNormal(status=status, invoke_id_and_priority=iip)
        elif "data" in ret:
            obj = xdlms.ActionResponseNormalWithData(
                status=status, data=_mk_data(ret["data"]), invoke_id_and_priority=iip
            )
        else:
            obj = xdlms.ActionResponseNormalWithError(
                status=status,
                error=enumerations.DataAccessResult(ret["error"]),
                invoke_id_and_priority=iip,
            )
    elif kind in ("aarq", "aare"):
        obj = _mk_association(a)
    elif kind in ("rlrq", "rlre"):
        if a.get("user_information") is not None:
            raise Unsupported("user-information not mapped for encode")
        if kind == "rlrq":
            obj = acse.ReleaseRequest(
                reason=enumerations.ReleaseRequestReason(a["reason"])
                if a["reason"] is not None
                else None
            )
        else:
            obj = acse.ReleaseResponse(
                reason=enumerations.ReleaseResponseReason(a["reason"])
                if a["reason"] is not None
                else None
            )
    else:
        raise Unsupported(f"dlms-cosem encode of {kind} not mapped")
    return obj.to_bytes().hex().upper()


def _mk_conformance(value: int) -> Any:
    from dlms_cosem.protocol.xdlms.conformance import Conformance

    pos = Conformance.conformance_bit_position
    if value & ~sum(1 << p for p in pos.values()):
        raise Unsupported("dlms-cosem Conformance has no field for some of these bits (§5 #3)")
    return Conformance(**{k: bool(value >> p & 1) for k, p in pos.items()})


def _mk_association(a: dict[str, Any]) -> Any:
    from dlms_cosem.protocol.acse.user_information import UserInformation

    ctx = a["application_context_name"]
    if ctx not in (1, 3):
        raise Unsupported("dlms-cosem models only LN application contexts")
    mech = a["mechanism_name"]
    ui = a["user_information"]
    content: Any = None
    if ui and "initiate-request" in ui:
        r = ui["initiate-request"]
        if not r["response_allowed"] or r["proposed_quality_of_service"] is not None:
            raise Unsupported("InitiateRequest.to_bytes writes neither response-allowed nor QoS")
        content = xdlms.InitiateRequest(
            proposed_conformance=_mk_conformance(r["proposed_conformance"]),
            client_max_receive_pdu_size=r["client_max_receive_pdu_size"],
            proposed_dlms_version_number=r["proposed_dlms_version_number"],
            dedicated_key=bytes.fromhex(r["dedicated_key"]) if r["dedicated_key"] else None,
        )
    elif ui and "initiate-response" in ui:
        r = ui["initiate-response"]
        if r["negotiated_quality_of_service"] is not None:
            # InitiateResponse.to_bytes writes the QoS value where the OPTIONAL presence
            # octet belongs (0 = absent): only an absent QoS encodes correctly
            raise Unsupported("InitiateResponse.to_bytes cannot encode a negotiated QoS")
        if r["vaa_name"] != 7:
            raise Unsupported("InitiateResponse.to_bytes always writes VAA name 0x0007")
        content = xdlms.InitiateResponse(
            negotiated_conformance=_mk_conformance(r["negotiated_conformance"]),
            server_max_receive_pdu_size=r["server_max_receive_pdu_size"],
            negotiated_dlms_version_number=r["negotiated_dlms_version_number"],
            negotiated_quality_of_service=0,
        )
    elif ui is not None:
        raise Unsupported("user-information not mapped for encode")
    common = {
        "ciphered": ctx == 3,
        "system_title": bytes.fromhex(a["ap_title"]) if a["ap_title"] else None,
        "authentication": enumerations.AuthenticationMechanism(mech) if mech is not None else None,
        "authentication_value": bytes.fromhex(a["authentication_value"])
        if a["authentication_value"]
        else None,
        "user_information": UserInformation(content=content) if content is not None else None,
    }
    if a["apdu"] == "aarq":
        return acse.ApplicationAssociationRequest(**common)
    ((which, diag),) = a["result_source_diagnostic"].items()
    return acse.ApplicationAssociationResponse(
        result=enumerations.AssociationResult(a["result"]),
        result_source_diagnostics=(
            enumerations.AcseServiceUserDiagnostics(diag)
            if which == "acse-service-user"
            else enumerations.AcseServiceProviderDiagnostics(diag)
        ),
        **common,
    )


def caps(req: dict[str, Any]) -> Any:
    return {
        "class_ids": sorted(int(x) for x in enumerations.CosemInterface),
        "data_access_results": sorted(int(x) for x in enumerations.DataAccessResult),
        "action_results": sorted(int(x) for x in enumerations.ActionResultStatus),
        "mechanisms": sorted(int(x) for x in enumerations.AuthenticationMechanism),
    }


if __name__ == "__main__":
    serve(
        {
            "decode_data": decode_data,
            "encode_data": encode_data,
            "decode_apdu": decode_apdu,
            "encode_apdu": encode_apdu,
            "caps": caps,
        }
    )
